"""Score readings with a trained model.

Every reading gets a ScorePoint; those past the threshold also get an Anomaly.
"""

from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from plantwatch.domain.anomaly import Anomaly, ScorePoint, severity_for
from plantwatch.domain.errors import require_same_features
from plantwatch.domain.frames import SensorFrame
from plantwatch.domain.ports import TrainedModel
from plantwatch.domain.root_cause import rank_root_causes


@dataclass(frozen=True)
class ScoringResult:
    points: list[ScorePoint]
    anomalies: list[Anomaly]


def aligned_values(frame: SensorFrame, feature_names: list[str]) -> np.ndarray:
    """The frame's values in the model's feature order; a missing or extra feature is an error naming it."""
    require_same_features(frame.feature_names, feature_names, "readings do not match the model")
    return frame.values[feature_names].to_numpy(dtype=np.float64)


def score_frame(
    frame: SensorFrame,
    model: TrainedModel,
    *,
    history: pd.DataFrame | None = None,
    now: datetime | None = None,
) -> ScoringResult:
    """Score `frame` in time order.

    `history`: readings right before the frame's first one (already scored, in the model's feature order),
    so the first new readings have full windows; they produce no points or anomalies.
    """
    card = model.card
    values = aligned_values(frame, card.feature_names)
    before = history.to_numpy(dtype=np.float64) if history is not None and len(history) else None
    scores = model.detector.score(values, history=before)
    detected_at = now or datetime.now(UTC).replace(tzinfo=None)
    own = pd.DatetimeIndex(frame.values.index)
    # a window can start in the history: its first timestamp comes from there
    all_times = own if history is None or before is None else pd.DatetimeIndex(history.index).append(own)
    timestamps = pd.DatetimeIndex(all_times).to_pydatetime()
    offset = len(all_times) - len(own)
    window = max(1, card.window)

    points: list[ScorePoint] = []
    flagged: list[int] = []
    for t in range(len(frame)):
        score = float(scores[t])
        if not np.isfinite(score):
            continue
        points.append(
            ScorePoint(
                module=frame.module,
                source=frame.source,
                timestamp=timestamps[offset + t],
                score=score,
                threshold=card.threshold,
                model_name=card.model_name,
                model_version=card.version,
            )
        )
        if score > card.threshold:
            flagged.append(t)

    anomalies: list[Anomaly] = []
    if flagged:
        # explain once for the whole frame: per-window calls would redo the same forward passes
        explanation = model.detector.explain(values, history=before)
        for t in flagged:
            score = float(scores[t])
            anomalies.append(
                Anomaly(
                    module=frame.module,
                    source=frame.source,
                    window_start=timestamps[max(0, offset + t - window + 1)],
                    window_end=timestamps[offset + t],
                    score=score,
                    threshold=card.threshold,
                    severity=severity_for(score, card.threshold),
                    root_cause=rank_root_causes(
                        card.feature_names,
                        explanation.contributions[t],
                        values[t],
                        explanation.expected[t],
                    ),
                    model_name=card.model_name,
                    model_version=card.version,
                    detected_at=detected_at,
                )
            )
    return ScoringResult(points=points, anomalies=anomalies)
