"""Evaluate a detector as it will run: fitted and thresholded on normal data only, judged on labelled data.

Test labels never reach the fit or the threshold: the detector is fitted on the first part of the training
frame's normal rows and the threshold is calibrated on the scores of the held-out rest of them. When that
rest would be too short to say where the tail of normal scores lies (a 500-reading training run leaves 100),
the scores come from cross-fitting instead: the normal rows are cut into contiguous folds, each fold is
scored by a copy of the detector fitted on the other folds, and the detector itself is fitted on all of them.
Every normal reading then has an out-of-sample score, and none of them was fitted on.
"""

import copy
import dataclasses
import itertools
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from plantwatch.domain.alarms import AlarmRule
from plantwatch.domain.errors import InvalidInputError
from plantwatch.domain.frames import SensorFrame
from plantwatch.domain.metrics import ROOT_CAUSE_TOP_K, DetectionReport, detection_report
from plantwatch.domain.ports import Detector, Thresholder
from plantwatch.domain.root_cause import rank_root_causes

# Share of the training frame's normal rows (its chronological end) held out to calibrate the threshold.
CALIBRATION_FRACTION = 0.2
# The test frame continues the training frame when its first reading comes at most this many sampling
# intervals after the last training reading; then the training tail fills the first test windows.
CONTIGUOUS_GAP_STEPS = 1.5
# Below this many held-out calibration scores the threshold is calibrated on cross-fitted scores instead.
MIN_HOLDOUT_SCORES = 200
CROSSFIT_FOLDS = 5


@dataclass(frozen=True)
class CalibratedDetector:
    """A detector fitted on normal data with its alarm rule and threshold, all without test labels."""

    detector: Detector
    alarm_rule: AlarmRule
    threshold: float
    threshold_method: str
    fit_seconds: float
    calibration: str
    train: SensorFrame


def calibrate_detector(
    train: SensorFrame,
    detector: Detector,
    thresholder: Thresholder,
    *,
    alarm_rule: AlarmRule | None = None,
    calibration_fraction: float = CALIBRATION_FRACTION,
) -> CalibratedDetector:
    """Fit `detector` (fresh) on `train`'s normal rows and calibrate the alarm rule's threshold on held-out
    (or cross-fitted, see the module docstring) normal scores."""
    if not 0.0 < calibration_fraction < 1.0:
        raise InvalidInputError(
            f"calibration_fraction must be in (0, 1), got {calibration_fraction}",
            field="calibration_fraction",
        )
    rule = alarm_rule or AlarmRule()
    normal = train.normal_only()
    feature_names = train.feature_names
    fit_part, calibration_part = normal.split(1.0 - calibration_fraction)
    if len(calibration_part) >= MIN_HOLDOUT_SCORES or len(normal) < CROSSFIT_FOLDS * (detector.window + 1):
        started = time.perf_counter()
        detector.fit(fit_part.to_numpy(), feature_names)
        fit_seconds = time.perf_counter() - started
        calibration_scores = detector.score(calibration_part.to_numpy(), history=fit_part.to_numpy())
        calibration = f"held-out last {calibration_fraction:.0%} of normal training rows"
    else:
        calibration_scores = cross_fitted_scores(normal.to_numpy(), feature_names, detector)
        started = time.perf_counter()
        detector.fit(normal.to_numpy(), feature_names)
        fit_seconds = time.perf_counter() - started
        calibration = f"{CROSSFIT_FOLDS}-fold cross-fitted scores of all {len(normal)} normal training rows"
    rule, threshold = rule.calibrate(calibration_scores, thresholder)
    return CalibratedDetector(detector, rule, threshold, thresholder.method, fit_seconds, calibration, train)


def cross_fitted_scores(
    values: np.ndarray, feature_names: Sequence[str], detector: Detector, folds: int = CROSSFIT_FOLDS
) -> np.ndarray:
    """Score of every row by a copy of the (unfitted) `detector` fitted on the other contiguous folds."""
    edges = np.linspace(0, len(values), folds + 1).round().astype(int)
    scores = np.full(len(values), np.nan)
    for start, end in itertools.pairwise(edges):
        fold_detector = copy.deepcopy(detector)
        fold_detector.fit(np.concatenate([values[:start], values[end:]]), feature_names)
        history = values[:start] if start else None
        scores[start:end] = fold_detector.score(values[start:end], history=history)
    return scores


def evaluate_detector(
    train: SensorFrame,
    test: SensorFrame,
    detector: Detector,
    thresholder: Thresholder,
    *,
    calibration_fraction: float = CALIBRATION_FRACTION,
    tolerance: int = 0,
    alarm_rule: AlarmRule | None = None,
) -> DetectionReport:
    """Fit `detector` (fresh) on `train`'s normal rows, threshold it, score `test` and measure it.

    Metrics are computed on `test`'s labelled rows only (NaN labels left out), in time order; root-cause hit
    rates too when `test.root_causes` names injected features. `tolerance`: readings after an event in which
    an alarm still counts as detecting it. fit_seconds times `fit`; score_ms_per_1k times `score` on the test.
    `alarm_rule`: how scores turn into alarms (plain score > threshold when None), calibrated on normal data.
    """
    _check_test(train, test)
    calibrated = calibrate_detector(
        train, detector, thresholder, alarm_rule=alarm_rule, calibration_fraction=calibration_fraction
    )
    return judge(calibrated, test, tolerance=tolerance)


def evaluate_runs(
    calibrated: CalibratedDetector, runs: Mapping[str, SensorFrame], *, tolerance: int = 0
) -> dict[str, DetectionReport]:
    """One calibrated detector judged on several labelled runs (e.g. one per fault of a benchmark)."""
    for run in runs.values():
        _check_test(calibrated.train, run)
    return {name: judge(calibrated, run, tolerance=tolerance) for name, run in runs.items()}


@dataclass(frozen=True)
class ScoredRun:
    """Scores, the alarm statistic, the threshold and alarms of every reading of one test frame."""

    scores: np.ndarray
    statistic: np.ndarray
    threshold: float
    alarms: np.ndarray
    score_ms_per_1k: float


def score_run(calibrated: CalibratedDetector, test: SensorFrame) -> ScoredRun:
    """Score `test` (continuing the training readings when it follows them) and apply the alarm rule."""
    history = calibrated.train.to_numpy() if _continues(calibrated.train, test) else None
    values = test.to_numpy()
    started = time.perf_counter()
    scores = calibrated.detector.score(values, history=history)
    score_ms_per_1k = (time.perf_counter() - started) * 1e6 / max(len(values), 1)
    rule = calibrated.alarm_rule
    return ScoredRun(
        scores=scores,
        statistic=rule.statistic(scores),
        threshold=calibrated.threshold,
        alarms=rule.alarms(scores, calibrated.threshold),
        score_ms_per_1k=score_ms_per_1k,
    )


def judge(calibrated: CalibratedDetector, test: SensorFrame, *, tolerance: int = 0) -> DetectionReport:
    """Every metric of a calibrated detector on `test`'s labelled rows."""
    if test.labels is None or not test.labels.notna().any():
        raise InvalidInputError(
            f"test frame {test.source!r} has no labelled rows to evaluate on", field="labels"
        )
    detector, feature_names = calibrated.detector, test.feature_names
    scored = score_run(calibrated, test)
    values = test.to_numpy()
    labelled = np.flatnonzero(test.labels.notna().to_numpy())
    rank_features: Callable[[int], list[str]] | None = None
    root_causes: Sequence[str] | None = None
    if test.root_causes is not None and (test.root_causes.fillna("").astype(str) != "").any():
        root_causes = test.root_causes.fillna("").astype(str).to_numpy()[labelled].tolist()
        history = calibrated.train.to_numpy() if _continues(calibrated.train, test) else None
        explanation = detector.explain(values, history=history)
        contributions, expected, observed = explanation.contributions, explanation.expected, values

        def ranked_at(t: int) -> list[str]:
            row = labelled[t]
            ranked = rank_root_causes(
                feature_names, contributions[row], observed[row], expected[row], top_k=ROOT_CAUSE_TOP_K
            )
            return [item.feature for item in ranked]

        rank_features = ranked_at

    report = detection_report(
        test.labels.to_numpy(dtype=np.float64)[labelled],
        scored.statistic[labelled],
        calibrated.threshold,
        pd.DatetimeIndex(test.values.index[labelled]),
        model_name=type(detector).name,
        threshold_method=calibrated.threshold_method,
        tolerance=tolerance,
        root_causes=root_causes,
        rank_features=rank_features,
        alarms=scored.alarms[labelled],
        alarm_rule=calibrated.alarm_rule.spec,
    )
    return dataclasses.replace(
        report, fit_seconds=calibrated.fit_seconds, score_ms_per_1k=scored.score_ms_per_1k
    )


def _check_test(train: SensorFrame, test: SensorFrame) -> None:
    if test.labels is None or not test.labels.notna().any():
        raise InvalidInputError(
            f"test frame {test.source!r} has no labelled rows to evaluate on", field="labels"
        )
    if test.feature_names != train.feature_names:
        raise InvalidInputError(
            f"train and test features differ: {train.feature_names} vs {test.feature_names}", field="features"
        )


def _continues(train: SensorFrame, test: SensorFrame) -> bool:
    """Whether the test readings pick up right where the training readings stop."""
    if len(train) == 0 or len(test) < 2:
        return False
    step = pd.Series(test.values.index).diff().median()
    gap = test.values.index[0] - train.values.index[-1]
    return bool(pd.Timedelta(0) < gap <= step * CONTIGUOUS_GAP_STEPS)
