"""Generated readings and a quickly fitted PCA model for the ingest, API and worker tests.

The readings are smooth periodic signals with a little noise; `spike_frame` puts a large excursion on one
known feature so a test can check that the anomaly is found and that feature is ranked first.
"""

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from plantwatch.adapters.detectors.catalog import build_detector
from plantwatch.adapters.wire import ReadingIn
from plantwatch.domain.alarms import parse_alarm_rule
from plantwatch.domain.frames import SensorFrame
from plantwatch.domain.modules import Module
from plantwatch.domain.ports import ModelCard, TrainedModel
from plantwatch.domain.thresholds import QuantileThresholder

FEATURES = ["flow", "pressure", "temperature"]
START = datetime(2024, 3, 1)
STEP = timedelta(minutes=1)


def normal_frame(
    rows: int,
    *,
    module: Module = Module.ENERGY,
    source: str = "line-1",
    start: datetime = START,
    seed: int = 0,
) -> SensorFrame:
    rng = np.random.default_rng(seed)
    t = np.arange(rows, dtype=np.float64)
    # offset the phase by the start so consecutive frames continue the same signal
    phase = (start - START) / STEP
    base = np.column_stack(
        [
            10 + 2 * np.sin((t + phase) / 7),
            5 + np.cos((t + phase) / 11),
            60 + 3 * np.sin((t + phase) / 17 + 1),
        ]
    )
    values = base + rng.normal(0, 0.05, size=base.shape)
    index = pd.DatetimeIndex([start + i * STEP for i in range(rows)], name="timestamp")
    return SensorFrame(
        module=module, source=source, values=pd.DataFrame(values, index=index, columns=FEATURES)
    )


def spike_frame(rows: int, spike_at: int, feature: str, *, size: float = 25.0, **kwargs: Any) -> SensorFrame:
    frame = normal_frame(rows, **kwargs)
    values = frame.values.copy()
    values.iloc[spike_at, values.columns.get_loc(feature)] += size
    return SensorFrame(module=frame.module, source=frame.source, values=values)


def rows(frame: SensorFrame, start: int, stop: int) -> SensorFrame:
    """Rows [start, stop) of `frame` by position; a negative start counts from the first row."""
    mask = np.zeros(len(frame), dtype=bool)
    mask[max(0, start) : stop] = True
    return frame.slice_mask(mask)


def trained_pca(module: Module = Module.ENERGY, window: int = 4, rows: int = 600) -> TrainedModel:
    """A PCA detector fitted on generated normal readings, threshold just above the largest normal score."""
    train = normal_frame(rows, module=module, seed=1)
    detector = build_detector("pca", window=window).fit(train.to_numpy(), FEATURES)
    scores = detector.score(train.to_numpy())
    threshold = float(np.nanmax(scores)) * 1.5
    card = ModelCard(
        module=module,
        model_name="pca",
        version="v1",
        feature_names=list(FEATURES),
        window=window,
        threshold=threshold,
        threshold_method="max_normal_x1.5",
        data_hash="generated",
        training_source="tests.streaming_support.normal_frame",
        created_at=datetime.now(UTC).replace(tzinfo=None),
        metrics={"train_rows": rows},
    )
    return TrainedModel(detector=detector, card=card)


def as_readings(frame: SensorFrame) -> list[ReadingIn]:
    return [
        ReadingIn(timestamp=ts.to_pydatetime(), values={k: float(v) for k, v in row.items()})
        for ts, row in frame.values.iterrows()
    ]


def as_json_readings(frame: SensorFrame) -> list[dict[str, Any]]:
    return [
        {"timestamp": ts.isoformat(), "values": {str(k): float(v) for k, v in row.items()}}
        for ts, row in frame.values.iterrows()
    ]


def with_alarm_rule(model: TrainedModel, spec: str, quantile: float = 0.98) -> TrainedModel:
    """`model` with the alarm rule `spec` calibrated, as `train` does, on scores of normal readings it was
    not fitted on; the threshold is the rule statistic's."""
    normal = normal_frame(800, module=model.card.module, seed=11)
    scores = model.detector.score(normal.to_numpy())
    rule, threshold = parse_alarm_rule(spec).calibrate(scores, QuantileThresholder(quantile))
    card = replace(
        model.card,
        threshold=threshold,
        threshold_method="quantile",
        alarm_rule=rule.spec,
        alarm_reference=None if np.isnan(rule.reference) else rule.reference,
    )
    return TrainedModel(detector=model.detector, card=card)


def drifting_frame(rows: int, **kwargs: Any) -> SensorFrame:
    """Normal readings with a sustained small offset on pressure over the middle third and one spike on
    flow: what smoothing and persistence are for (a single reading's score barely moves under the shift)."""
    frame = normal_frame(rows, **kwargs)
    values = frame.values.copy()
    values.iloc[rows // 3 : 2 * rows // 3, values.columns.get_loc("pressure")] += 0.6
    values.iloc[5 * rows // 6, values.columns.get_loc("flow")] += 25.0
    return SensorFrame(module=frame.module, source=frame.source, values=values)
