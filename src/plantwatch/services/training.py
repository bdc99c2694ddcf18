"""Train a detector on a module's normal data, calibrate its threshold without labels, store it.

The frame is split in time order: the first `train_fraction` is the training part (the rest is never looked
at, it stays unseen for evaluation); the training part is split again into a fitting slice and, after it, a
validation slice of `validation_fraction`. The detector fits on the normal rows of the fitting slice; the
alarm rule (domain/alarms.py: the CUSUM's reference) and its threshold are calibrated on its scores of the
validation slice's normal windows, data it was not fitted on. The card records the rule's spec, its
reference and the threshold of its statistic, which live scoring applies (services/scoring.py).

Beside the detector the registry keeps the profile of the fitting data (the reference for drift) and the end
of the validation slice (the held-out normal data the promotion gate compares versions on). The new version
is a candidate; the first version of a model is promoted at once (see services/lifecycle.py).
"""

import hashlib
import math
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from plantwatch.domain.alarms import AlarmRule
from plantwatch.domain.drift import TrainingProfile
from plantwatch.domain.errors import InvalidInputError
from plantwatch.domain.frames import SensorFrame
from plantwatch.domain.ports import Detector, HeldOut, ModelCard, ModelRegistry, Thresholder
from plantwatch.services.lifecycle import pin_production, register_candidate
from plantwatch.services.structure import structure_auc

# Fewer normal validation scores than this cannot say where the tail of normal scores lies.
MIN_VALIDATION_SCORES = 50
# The promotion gate compares versions on at most this many validation readings (the latest ones), which
# keeps a model folder small however large its training file was.
MAX_HELD_OUT_ROWS = 5000


def data_hash(values: np.ndarray, feature_names: Sequence[str]) -> str:
    """sha256 of the training values (float64, row-major) and their feature names: which data made a model."""
    digest = hashlib.sha256()
    digest.update("\x1f".join(feature_names).encode())
    digest.update(np.ascontiguousarray(values, dtype=np.float64).tobytes())
    return digest.hexdigest()


def data_fingerprint(frame: SensorFrame) -> dict[str, Any]:
    """What a model's training data looked like: rows, median sampling interval, and per feature its range,
    mean and spread (and its values, when it takes few: codes and states)."""
    values = frame.values
    stamps = pd.DatetimeIndex(values.index).as_unit("ns").asi8
    steps = np.diff(stamps) / 1e9 if len(values) > 1 else np.array([])
    features: dict[str, Any] = {}
    for name in frame.feature_names:
        column = values[name].to_numpy(dtype=np.float64)
        summary: dict[str, Any] = {
            "min": float(column.min()),
            "max": float(column.max()),
            "mean": float(column.mean()),
            "std": float(column.std()),
        }
        distinct = np.unique(column)
        if len(distinct) <= 20:
            summary["values"] = [float(v) for v in distinct]
        features[name] = summary
    return {
        "rows": len(frame),
        "sampling_interval_s": float(np.median(steps)) if len(steps) else None,
        "features": features,
    }


def readings_per_day(frame: SensorFrame) -> float:
    """Readings a day at the frame's median sampling interval (what an alarm budget per day needs)."""
    stamps = pd.DatetimeIndex(frame.values.index).as_unit("ns").asi8
    steps = np.diff(stamps)
    step_s = float(np.median(steps)) / 1e9 if len(steps) else 0.0
    if not step_s > 0.0:
        raise InvalidInputError(
            f"{frame.source}: cannot tell the sampling interval (fewer than two distinct timestamps), which "
            "an alarm budget per day needs",
            field="timestamp",
        )
    return 86400.0 / step_s


def normal_window_mask(frame: SensorFrame, window: int) -> np.ndarray:
    """True at row t when every reading of the window ending at t is normal (always when unlabelled)."""
    if frame.labels is None:
        return np.ones(len(frame), dtype=bool)
    normal = pd.Series((frame.labels == 0).to_numpy(dtype=float))
    return (normal.rolling(window, min_periods=window).min() == 1.0).to_numpy()


def _check_fraction(name: str, value: float, low: float, high: float) -> None:
    if not low < value <= high:
        raise InvalidInputError(f"{name} must be in ({low}, {high}], got {value}", field=name)


def train_model(
    frame: SensorFrame,
    detector: Detector,
    thresholder: Thresholder,
    registry: ModelRegistry,
    validation_fraction: float = 0.2,
    train_fraction: float = 1.0,
    model_name: str | None = None,
    promote_first: bool = True,
    module_config: Mapping[str, Any] | None = None,
    structure_seed: int = 0,
    alarm_rule: AlarmRule | None = None,
) -> ModelCard:
    """Fit, calibrate and store `detector` as a candidate; returns the card the registry saved, with its
    version. With `promote_first`, the first version of the model becomes production at once.

    module_config (the module's configuration of the data's layout) is stored on the card with a fingerprint
    of the data, so serving can refuse readings that do not fit. metrics["structure_auc"] says whether the
    data had structure to learn (services/structure.py). `alarm_rule`: how scores turn into alarms (the plain
    score > threshold when None); one with a minimum gap is refused, as live scoring cannot apply it."""
    rule = alarm_rule or AlarmRule()
    if not rule.applies_live:
        raise InvalidInputError(
            f"alarm rule {rule.spec!r}: a minimum gap (gap:N) marks readings as alarms only once a later "
            "alarm comes, which live scoring cannot do; leave it out (incidents group nearby alarms live)",
            field="alarm_rule",
        )
    _check_fraction("train_fraction", train_fraction, 0.0, 1.0)
    _check_fraction("validation_fraction", validation_fraction, 0.0, 0.9)
    training_part, _ = frame.split(train_fraction) if train_fraction < 1.0 else (frame, None)
    fitting, validation = training_part.split(1.0 - validation_fraction)
    fitting_normal = fitting.normal_only()
    if len(fitting_normal) == 0:
        raise InvalidInputError(f"{frame.source}: the fitting slice holds no normal rows", field="labels")
    if len(validation) == 0:
        raise InvalidInputError(f"{frame.source}: the validation slice is empty", field="validation_fraction")

    started = time.perf_counter()
    fit_values = fitting_normal.to_numpy()
    detector.fit(fit_values, frame.feature_names)
    training_seconds = time.perf_counter() - started

    # the fitting readings before the validation slice give its first rows full windows
    scores = detector.score(validation.to_numpy(), history=fitting.to_numpy())
    normal_windows = normal_window_mask(training_part, detector.window)[len(fitting) :]
    normal_scores = scores[normal_windows & np.isfinite(scores)]
    if len(normal_scores) < MIN_VALIDATION_SCORES:
        raise InvalidInputError(
            f"{frame.source}: only {len(normal_scores)} normal validation windows to calibrate the threshold "
            f"on (need {MIN_VALIDATION_SCORES}); give more data or a larger validation_fraction",
            field="validation_fraction",
        )
    rule, threshold = rule.calibrate(normal_scores, thresholder)
    validation_alarms = rule.alarms(normal_scores, threshold)

    metrics: dict[str, Any] = {
        "fit_rows": len(fitting_normal),
        "validation_rows": len(validation),
        "validation_normal_windows": len(normal_scores),
        "train_fraction": train_fraction,
        "validation_fraction": validation_fraction,
        "train_until": training_part.values.index[-1].isoformat(),
        "training_seconds": round(training_seconds, 3),
        "threshold": threshold,
        "alarm_rule": rule.spec,
        "validation_false_alarm_rate": float(np.mean(validation_alarms)),
        **{f"validation_score_p{q}": float(np.quantile(normal_scores, q / 100)) for q in (50, 90, 99)},
        "validation_score_max": float(normal_scores.max()),
    }
    metrics["structure_auc"] = structure_auc(
        detector, validation.to_numpy(), history=fitting.to_numpy(), seed=structure_seed
    )
    training_metrics = getattr(detector, "training_metrics", None)
    if callable(training_metrics):
        metrics.update(training_metrics())

    card = ModelCard(
        module=frame.module,
        model_name=model_name or detector.name,
        version="",
        feature_names=list(frame.feature_names),
        window=detector.window,
        threshold=threshold,
        threshold_method=thresholder.method,
        data_hash=data_hash(fit_values, frame.feature_names),
        training_source=frame.source,
        created_at=datetime.now(UTC).replace(tzinfo=None),
        metrics=metrics,
        module_config=dict(module_config or {}),
        fingerprint=data_fingerprint(training_part),
        alarm_rule=rule.spec,
        alarm_reference=None if math.isnan(rule.reference) else rule.reference,
    )
    kept = min(len(validation), MAX_HELD_OUT_ROWS)
    history = min(len(training_part) - kept, detector.window - 1)
    held_out = HeldOut(
        values=training_part.to_numpy()[len(training_part) - kept - history :],
        history=history,
        normal=normal_windows[len(validation) - kept :],
        feature_names=list(frame.feature_names),
    )
    pin_production(registry, card.module, card.model_name)
    saved = registry.save(detector, card, TrainingProfile.of(fit_values, frame.feature_names), held_out)
    register_candidate(registry, saved, promote_first=promote_first)
    return saved
