"""Detection metrics on tiny cases computed by hand, plus the classic point-adjust trap."""

import math

import numpy as np
import pandas as pd
import pytest

from plantwatch.domain.errors import InvalidInputError
from plantwatch.domain.metrics import (
    batadal_s_score,
    days_covered,
    detection_report,
    error_rates,
    point_adjust,
    ranking_scores,
    root_cause_hit_rates,
    runs,
    times_to_detection,
)

# Two events: readings 2-4 and 7-8. One alarm inside the first, one lone alarm before it, and an alarm run of
# two readings just after the second event (caught only with a tolerance).
LABELS = np.array([0, 0, 1, 1, 1, 0, 0, 1, 1, 0, 0, 0], dtype=float)
ALARMS = np.array([1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 1], dtype=bool)
HOURLY = pd.date_range("2024-01-01", periods=len(LABELS), freq="h", name="timestamp")


def scores_for(alarms: np.ndarray) -> np.ndarray:
    return np.where(alarms, 2.0, 0.5)


def test_runs_finds_start_and_end_of_each_true_run() -> None:
    assert runs(np.array([1, 1, 0, 1, 0, 0, 1], dtype=bool)).tolist() == [[0, 2], [3, 4], [6, 7]]
    assert runs(np.zeros(4, dtype=bool)).tolist() == []
    assert runs(np.ones(3, dtype=bool)).tolist() == [[0, 3]]


def test_point_scores_are_not_adjusted() -> None:
    report = detection_report(LABELS, scores_for(ALARMS), 1.0, HOURLY)
    # TP 1 (reading 3), FP 3 (0, 10, 11), FN 4
    assert report.precision == pytest.approx(1 / 4)
    assert report.recall == pytest.approx(1 / 5)
    assert report.f1 == pytest.approx(2 * 0.25 * 0.2 / 0.45)
    assert (report.readings, report.anomalous_readings, report.alarms) == (12, 5, 4)


def test_event_recall_and_false_alarms_per_day() -> None:
    report = detection_report(LABELS, scores_for(ALARMS), 1.0, HOURLY)
    assert (report.events, report.detected_events) == (2, 1)
    assert report.event_recall == pytest.approx(0.5)
    # alarm runs [0], [3], [10, 11]: the first and last overlap no event; 12 hourly readings = half a day
    assert report.false_alarm_runs == 2
    assert report.days == pytest.approx(0.5)
    assert report.false_alarms_per_day == pytest.approx(4.0)


def test_tolerance_lets_a_late_alarm_detect_the_event_and_stop_being_false() -> None:
    report = detection_report(LABELS, scores_for(ALARMS), 1.0, HOURLY, tolerance=2)
    assert report.event_recall == pytest.approx(1.0)
    assert report.false_alarm_runs == 1
    assert report.precision == pytest.approx(1 / 4)  # point metrics ignore the tolerance


def test_point_adjust_fills_every_detected_event() -> None:
    adjusted = point_adjust(LABELS, ALARMS)
    assert adjusted.astype(int).tolist() == [1, 0, 1, 1, 1, 0, 0, 0, 0, 0, 1, 1]
    report = detection_report(LABELS, scores_for(ALARMS), 1.0, HOURLY)
    # TP 3, FP 3, FN 2 -> P 0.5, R 0.6
    assert report.pa_f1 == pytest.approx(2 * 0.5 * 0.6 / 1.1)


def test_ranking_scores_by_hand_and_nan_scores_left_out() -> None:
    labels = np.array([0, 0, 1, 1, 1])
    scores = np.array([0.1, 0.4, 0.35, 0.8, np.nan])
    auc_pr, roc_auc = ranking_scores(labels, scores)
    # ranked 0.8 (hit, P=1, R=1/2), 0.4 (miss), 0.35 (hit, P=2/3, R=1): AP = 1/2 * 1 + 1/2 * 2/3
    assert auc_pr == pytest.approx(0.5 + 1 / 3)
    # positive/negative pairs ordered right: 0.35>0.1, 0.8>0.1, 0.8>0.4, not 0.35>0.4 -> 3 of 4
    assert roc_auc == pytest.approx(0.75)


def test_ranking_scores_are_nan_with_one_class() -> None:
    auc_pr, roc_auc = ranking_scores(np.zeros(4), np.arange(4.0))
    assert math.isnan(auc_pr) and math.isnan(roc_auc)


def test_readings_without_a_score_raise_no_alarm() -> None:
    scores = scores_for(ALARMS)
    scores[:3] = np.nan  # the detector's first window: reading 0's alarm disappears
    report = detection_report(LABELS, scores, 1.0, HOURLY)
    assert report.alarms == 3
    assert report.false_alarm_runs == 1


def test_days_covered_ignores_gaps_in_the_timestamps() -> None:
    stamps = pd.DatetimeIndex(
        list(pd.date_range("2024-01-01", periods=6, freq="h"))
        + list(pd.date_range("2024-03-01", periods=6, freq="h"))
    )
    assert days_covered(stamps) == pytest.approx(12 / 24)
    assert math.isnan(days_covered(stamps[:1]))


def test_root_cause_hits_are_judged_at_the_peak_alarm_of_each_detected_event() -> None:
    labels = np.array([0, 1, 1, 1, 0, 1, 1, 0, 1, 1, 0])
    alarms = np.array([0, 1, 0, 1, 0, 1, 1, 0, 0, 0, 0], dtype=bool)
    scores = np.array([0, 3, 0, 5, 0, 4, 2, 0, 0, 0, 0], dtype=float)
    causes = ["", "b", "b", "b", "", "c", "c", "", "a", "a", ""]
    rankings = {3: ["b", "a", "c"], 5: ["a", "b", "c"]}
    asked: list[int] = []

    def rank_features(t: int) -> list[str]:
        asked.append(t)
        return rankings[t]

    judged, top1, top3 = root_cause_hit_rates(labels, alarms, scores, causes, rank_features, top_k=3)
    # third event has no alarm, so it is not judged; the peaks of the first two are readings 3 and 5
    assert asked == [3, 5]
    assert judged == 2
    assert top1 == pytest.approx(0.5)
    assert top3 == pytest.approx(1.0)


def test_root_cause_hits_at_the_first_alarm_accept_any_of_the_alternatives() -> None:
    labels = np.array([0, 1, 1, 1, 0, 1, 1, 0])
    alarms = np.array([0, 1, 0, 1, 0, 0, 1, 0], dtype=bool)
    scores = np.array([0, 3, 0, 5, 0, 0, 2, 0], dtype=float)
    causes = ["", "v|m", "v|m", "v|m", "", "c", "c", ""]
    rankings = {1: ["m", "a", "c"], 6: ["a", "b", "c"]}
    asked: list[int] = []

    def rank_features(t: int) -> list[str]:
        asked.append(t)
        return rankings[t]

    judged, top1, top3 = root_cause_hit_rates(
        labels, alarms, scores, causes, rank_features, top_k=3, at_first_alarm=True
    )
    assert asked == [1, 6]
    assert (judged, top1, top3) == (2, 0.5, 1.0)


def test_far_mar_and_the_batadal_s_score() -> None:
    truth = np.array([0, 0, 1, 1, 1, 1, 0, 0, 1, 1], dtype=bool)
    alarms = np.array([1, 0, 0, 1, 1, 1, 0, 0, 0, 0], dtype=bool)
    far, mar = error_rates(truth, alarms)
    assert far == pytest.approx(1 / 4) and mar == pytest.approx(3 / 6)
    # event 1 found after 1 of its 4 hours, event 2 missed: S_TTD = 1 - (1/4 + 1) / 2
    s_ttd, s = batadal_s_score(truth, alarms)
    assert s_ttd == pytest.approx(0.375)
    assert s == pytest.approx(0.5 * 0.375 + 0.5 * ((1 - 3 / 6) + (1 - 1 / 4)) / 2)
    assert times_to_detection(truth, alarms) == [(4, 1), (2, None)]


def test_root_cause_rates_are_nan_without_known_causes() -> None:
    report = detection_report(
        LABELS, scores_for(ALARMS), 1.0, HOURLY, root_causes=[""] * len(LABELS), rank_features=lambda t: ["x"]
    )
    assert report.root_cause_events == 0
    assert math.isnan(report.root_cause_top1) and math.isnan(report.root_cause_top3)


def test_random_scores_get_a_high_point_adjusted_f1_but_a_low_point_f1() -> None:
    rng = np.random.default_rng(0)
    labels = np.zeros(10_000)
    for start in range(500, 10_000, 1_000):
        labels[start : start + 200] = 1.0  # ten long events, 20 % of readings
    scores = rng.random(labels.size)
    threshold = float(np.quantile(scores, 0.99))
    stamps = pd.date_range("2024-01-01", periods=labels.size, freq="min")
    report = detection_report(labels, scores, threshold, stamps)
    assert report.f1 < 0.05
    assert report.pa_f1 > 0.7
    assert report.auc_pr == pytest.approx(report.prevalence, abs=0.02)
    assert report.roc_auc == pytest.approx(0.5, abs=0.03)


def test_unlabelled_or_misaligned_input_is_rejected_with_the_field_named() -> None:
    with pytest.raises(InvalidInputError) as error:
        detection_report(np.array([0.0, np.nan]), np.zeros(2), 1.0, HOURLY[:2])
    assert error.value.field == "labels"
    with pytest.raises(InvalidInputError) as error:
        detection_report(np.zeros(3), np.zeros(2), 1.0, HOURLY[:3])
    assert error.value.field == "scores"
    with pytest.raises(InvalidInputError) as error:
        detection_report(np.zeros(3), np.zeros(3), 1.0, HOURLY[:3], tolerance=-1)
    assert error.value.field == "tolerance"
