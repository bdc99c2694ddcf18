"""evaluate_detector on generated readings with injected faults whose feature is known, using PCA."""

from collections.abc import Sequence
from typing import Any, Self

import numpy as np
import pandas as pd
import pytest

from plantwatch.adapters.detectors import PcaDetector
from plantwatch.domain.alarms import parse_alarm_rule
from plantwatch.domain.errors import InvalidInputError
from plantwatch.domain.frames import SensorFrame
from plantwatch.domain.modules import Module
from plantwatch.domain.thresholds import QuantileThresholder
from plantwatch.services.evaluation import calibrate_detector, evaluate_detector, judge

FEATURES = ["flow", "pressure", "level", "power"]
TRAIN_ROWS, TEST_ROWS = 1_500, 600
# (first test row, length, feature): faults put on one feature, the others keep following the plant
FAULTS = [(0, 3, "pressure"), (150, 12, "flow"), (320, 10, "level"), (480, 15, "power")]


def plant_readings(rows: int, seed: int) -> np.ndarray:
    """Four sensors driven by two hidden cycles plus noise: what PCA should learn to reconstruct."""
    rng = np.random.default_rng(seed)
    t = np.arange(rows) * 2 * np.pi / 48
    slow, fast = np.sin(t), np.cos(3 * t)
    return np.column_stack([slow, 2 * slow + fast, fast, slow - fast]) + rng.normal(0, 0.05, (rows, 4))


def frames(test_gap: str = "1h") -> tuple[SensorFrame, SensorFrame]:
    """Hourly training readings and test readings starting `test_gap` after the last of them."""
    readings = plant_readings(TRAIN_ROWS + TEST_ROWS, seed=1)
    train_index = pd.date_range("2024-01-01", periods=TRAIN_ROWS, freq="h", name="timestamp")
    test_index = pd.date_range(train_index[-1] + pd.Timedelta(test_gap), periods=TEST_ROWS, freq="h")
    train_values = pd.DataFrame(readings[:TRAIN_ROWS], columns=FEATURES, index=train_index)
    test_values = pd.DataFrame(readings[TRAIN_ROWS:], columns=FEATURES, index=test_index.rename("timestamp"))
    labels = np.zeros(TEST_ROWS)
    causes = np.full(TEST_ROWS, "", dtype=object)
    for first, length, feature in FAULTS:
        rows = slice(first, first + length)
        test_values.iloc[rows, FEATURES.index(feature)] += 1.5
        labels[rows] = 1.0
        causes[rows] = feature
    train = SensorFrame(Module.CYBER, "plant", train_values, labels=pd.Series(0.0, index=train_values.index))
    test = SensorFrame(
        Module.CYBER,
        "plant",
        test_values,
        labels=pd.Series(labels, index=test_values.index),
        root_causes=pd.Series(causes, index=test_values.index),
    )
    return train, test


class RecordingThresholder(QuantileThresholder):
    def calibrate(self, normal_scores: np.ndarray) -> float:
        self.seen = np.asarray(normal_scores).copy()
        return super().calibrate(normal_scores)


class RecordingPca(PcaDetector):
    def fit(self, values: np.ndarray, feature_names: Sequence[str]) -> Self:
        self.fitted_on = np.asarray(values).copy()
        return super().fit(values, feature_names)


def evaluate(train: SensorFrame, test: SensorFrame, **options: Any) -> Any:
    return evaluate_detector(train, test, PcaDetector(window=4), QuantileThresholder(0.995), **options)


def test_pca_finds_injected_faults_and_their_feature() -> None:
    train, test = frames()
    report = evaluate(train, test)
    assert report.model_name == "pca" and report.threshold_method == "quantile"
    assert report.readings == TEST_ROWS
    assert report.events == len(FAULTS)
    assert report.event_recall == 1.0
    assert report.auc_pr > 0.7 > report.prevalence
    assert report.root_cause_events == len(FAULTS)
    assert report.root_cause_top1 >= 0.5
    assert report.root_cause_top3 == 1.0
    assert report.fit_seconds > 0 and report.score_ms_per_1k > 0


def test_threshold_comes_from_held_out_normal_training_rows_only() -> None:
    train, test = frames()
    assert train.labels is not None
    labels = train.labels.copy()
    labels.iloc[200:260] = 1.0  # a labelled fault in the training data must not be fitted on
    train = SensorFrame(train.module, train.source, train.values, labels=labels)
    detector, thresholder = RecordingPca(window=4), RecordingThresholder(0.995)
    report = evaluate_detector(train, test, detector, thresholder, calibration_fraction=0.2)

    normal_rows = TRAIN_ROWS - 60
    fit_rows = int(normal_rows * 0.8)
    assert len(detector.fitted_on) == fit_rows
    assert len(thresholder.seen) == normal_rows - fit_rows
    assert np.isfinite(thresholder.seen).all()  # the fit rows give the first calibration windows a history
    # the same threshold whatever the test labels say
    assert test.labels is not None
    flipped = SensorFrame(test.module, test.source, test.values, labels=1.0 - test.labels)
    assert evaluate(train, flipped).threshold == pytest.approx(report.threshold)


def test_unlabelled_test_rows_are_left_out() -> None:
    train, test = frames()
    assert test.labels is not None
    labels = test.labels.copy()
    labels.iloc[300:400] = np.nan  # hides the third fault
    hidden = SensorFrame(test.module, test.source, test.values, labels=labels, root_causes=test.root_causes)
    report = evaluate(train, hidden)
    assert report.readings == TEST_ROWS - 100
    assert report.events == len(FAULTS) - 1
    assert report.root_cause_events == len(FAULTS) - 1


def test_training_tail_gives_the_first_test_windows_their_history_only_when_contiguous() -> None:
    train, test = frames()
    # the first fault sits on test rows 0-2: without history a window-4 detector cannot score them
    assert evaluate(train, test).detected_events == len(FAULTS)
    _, later = frames(test_gap="300D")
    assert evaluate(train, later).detected_events == len(FAULTS) - 1


def test_bad_inputs_are_named() -> None:
    train, test = frames()
    with pytest.raises(InvalidInputError) as error:
        evaluate(train, SensorFrame(test.module, test.source, test.values))
    assert error.value.field == "labels"
    renamed = SensorFrame(test.module, test.source, test.values.rename(columns={"flow": "flux"}), test.labels)
    with pytest.raises(InvalidInputError) as error:
        evaluate(train, renamed)
    assert error.value.field == "features"
    with pytest.raises(InvalidInputError) as error:
        evaluate(train, test, calibration_fraction=1.0)
    assert error.value.field == "calibration_fraction"


def test_a_short_training_run_is_calibrated_on_cross_fitted_scores_of_every_normal_row() -> None:
    train, test = frames()
    short = train.slice_mask(np.arange(len(train)) >= len(train) - 300)
    detector, thresholder = RecordingPca(window=4), RecordingThresholder(0.995)
    calibrated = calibrate_detector(short, detector, thresholder)
    # 300 * 0.2 = 60 held-out scores could not place a 99.5 % threshold; every row gets an out-of-fold score
    assert len(thresholder.seen) == 300
    assert np.isfinite(thresholder.seen[4:]).all()
    assert "cross-fitted" in calibrated.calibration
    assert len(detector.fitted_on) == 300  # the served detector is fitted on all the normal rows
    report = judge(calibrated, test)
    assert report.detected_events == len(FAULTS)


def test_an_alarm_rule_is_calibrated_on_normal_rows_and_reported() -> None:
    train, test = frames()
    plain = evaluate(train, test)
    persistent = evaluate(train, test, alarm_rule=parse_alarm_rule("2of3+gap:5"))
    assert persistent.alarm_rule == "2of3+gap:5" and plain.alarm_rule == "none"
    assert persistent.false_alarm_runs <= plain.false_alarm_runs
    assert 0.0 <= persistent.far <= 1.0 and 0.0 <= persistent.mar <= 1.0
    assert persistent.mar == pytest.approx(1.0 - persistent.recall)
