"""Evaluate a detector as it will run: fitted and thresholded on normal data only, judged on labelled data.

Test labels never reach the fit or the threshold: the detector is fitted on the first part of the training
frame's normal rows and the threshold is calibrated on the scores of the held-out rest of them.
"""

import dataclasses
import time
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

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


def evaluate_detector(
    train: SensorFrame,
    test: SensorFrame,
    detector: Detector,
    thresholder: Thresholder,
    *,
    calibration_fraction: float = CALIBRATION_FRACTION,
    tolerance: int = 0,
) -> DetectionReport:
    """Fit `detector` (fresh) on `train`'s normal rows, threshold it, score `test` and measure it.

    Metrics are computed on `test`'s labelled rows only (NaN labels left out), in time order; root-cause hit
    rates too when `test.root_causes` names injected features. `tolerance`: readings after an event in which
    an alarm still counts as detecting it. fit_seconds times `fit`; score_ms_per_1k times `score` on the test.
    """
    if not 0.0 < calibration_fraction < 1.0:
        raise InvalidInputError(
            f"calibration_fraction must be in (0, 1), got {calibration_fraction}",
            field="calibration_fraction",
        )
    if test.labels is None or not test.labels.notna().any():
        raise InvalidInputError(
            f"test frame {test.source!r} has no labelled rows to evaluate on", field="labels"
        )
    if test.feature_names != train.feature_names:
        raise InvalidInputError(
            f"train and test features differ: {train.feature_names} vs {test.feature_names}", field="features"
        )
    feature_names = train.feature_names
    fit_part, calibration_part = train.normal_only().split(1.0 - calibration_fraction)

    started = time.perf_counter()
    detector.fit(fit_part.to_numpy(), feature_names)
    fit_seconds = time.perf_counter() - started

    calibration_scores = detector.score(calibration_part.to_numpy(), history=fit_part.to_numpy())
    threshold = thresholder.calibrate(calibration_scores)

    history = train.to_numpy() if _continues(train, test) else None
    values = test.to_numpy()
    started = time.perf_counter()
    scores = detector.score(values, history=history)
    score_ms_per_1k = (time.perf_counter() - started) * 1e6 / len(values)

    labelled = np.flatnonzero(test.labels.notna().to_numpy())
    rank_features: Callable[[int], list[str]] | None = None
    root_causes: Sequence[str] | None = None
    if test.root_causes is not None and (test.root_causes.fillna("").astype(str) != "").any():
        root_causes = test.root_causes.fillna("").astype(str).to_numpy()[labelled].tolist()
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
        scores[labelled],
        threshold,
        pd.DatetimeIndex(test.values.index[labelled]),
        model_name=type(detector).name,
        threshold_method=thresholder.method,
        tolerance=tolerance,
        root_causes=root_causes,
        rank_features=rank_features,
    )
    return dataclasses.replace(report, fit_seconds=fit_seconds, score_ms_per_1k=score_ms_per_1k)


def _continues(train: SensorFrame, test: SensorFrame) -> bool:
    """Whether the test readings pick up right where the training readings stop."""
    if len(train) == 0 or len(test) < 2:
        return False
    step = pd.Series(test.values.index).diff().median()
    gap = test.values.index[0] - train.values.index[-1]
    return bool(pd.Timedelta(0) < gap <= step * CONTIGUOUS_GAP_STEPS)
