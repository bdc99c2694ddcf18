"""Alarm logic apart from the score: EWMA, CUSUM, k-of-n persistence and minimum gap, calibrated on normal
scores only."""

import numpy as np
import pytest

from plantwatch.domain.alarms import AlarmRule, parse_alarm_rule
from plantwatch.domain.errors import InvalidInputError
from plantwatch.domain.thresholds import QuantileThresholder, alarm_runs


def normal_scores(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).exponential(size=n)


def test_plain_rule_is_score_over_threshold() -> None:
    scores = np.array([0.5, np.nan, 3.0, 1.0])
    np.testing.assert_array_equal(AlarmRule().alarms(scores, 0.9), [False, False, True, True])


def test_persistence_needs_k_of_the_last_n_readings_over_the_threshold() -> None:
    scores = np.array([5, 0, 0, 5, 0, 5, 5, 0, 0, 0], dtype=float)
    alarms = AlarmRule(k=2, n=3).alarms(scores, 1.0)
    np.testing.assert_array_equal(alarms, [False, False, False, False, False, True, True, True, False, False])


def test_min_gap_merges_alarm_runs_that_come_close_together() -> None:
    over = np.array([5, 0, 0, 5, 0, 0, 0, 0, 5], dtype=float)
    assert alarm_runs(AlarmRule().alarms(over, 1.0)) == 3
    merged = AlarmRule(min_gap=3).alarms(over, 1.0)
    np.testing.assert_array_equal(merged[:4], [True, True, True, True])
    assert alarm_runs(merged) == 2


def test_ewma_finds_a_small_sustained_shift_the_raw_score_misses() -> None:
    normal = normal_scores(20_000)
    test = np.concatenate([normal_scores(2_000, seed=1), normal_scores(500, seed=2) + 1.5])
    truth = np.r_[np.zeros(2_000), np.ones(500)].astype(bool)
    quantile = QuantileThresholder(0.999)
    plain, plain_threshold = AlarmRule().calibrate(normal, quantile)
    ewma, ewma_threshold = AlarmRule(smoothing="ewma", ewma_alpha=0.05).calibrate(normal, quantile)
    plain_recall = plain.alarms(test, plain_threshold)[truth].mean()
    ewma_alarms = ewma.alarms(test, ewma_threshold)
    assert ewma_alarms[truth].mean() > 0.8 > 0.2 > plain_recall
    assert ewma_alarms[~truth].mean() < 0.01  # still calibrated on normal scores


def test_cusum_reference_comes_from_normal_scores_and_accumulates_a_shift() -> None:
    normal = normal_scores(20_000)
    rule, threshold = AlarmRule(smoothing="cusum").calibrate(normal, QuantileThresholder(0.999))
    assert rule.reference == pytest.approx(np.quantile(normal, 0.9))
    shifted = normal_scores(300, seed=3) + 2.0
    assert rule.alarms(shifted, threshold)[150:].all()
    assert rule.alarms(normal_scores(5_000, seed=4), threshold).mean() < 0.01


def test_cusum_before_calibration_is_an_error() -> None:
    with pytest.raises(InvalidInputError, match="calibrate"):
        AlarmRule(smoothing="cusum").statistic(np.ones(5))


def test_spec_round_trips_and_bad_parts_are_named() -> None:
    rule = parse_alarm_rule("ewma:0.1+2of3+gap:12")
    assert (rule.smoothing, rule.ewma_alpha, rule.k, rule.n, rule.min_gap) == ("ewma", 0.1, 2, 3, 12)
    assert parse_alarm_rule(rule.spec) == rule
    assert parse_alarm_rule("none") == AlarmRule()
    assert parse_alarm_rule("cusum").smoothing == "cusum"
    with pytest.raises(InvalidInputError, match="'wobble'"):
        parse_alarm_rule("ewma+wobble")
    with pytest.raises(InvalidInputError, match="k <= n"):
        parse_alarm_rule("4of3")
    with pytest.raises(InvalidInputError, match="both ewma and cusum"):
        parse_alarm_rule("ewma+cusum")
