"""Score readings with a trained model and apply its alarm rule.

Every reading gets a ScorePoint (score, the rule's statistic and threshold, alarm); those where the rule
alarms also get an Anomaly. The rule is the one the model was calibrated with (ModelCard.alarm_rule,
domain/alarms.py), continued from `alarm_state` (where it stood after the readings before the frame), so
scoring a series in one frame or in many gives the same alarms as `AlarmRule.alarms` over the whole series.
An anomaly keeps the raw score as `score`; its `threshold` is the threshold of the rule's statistic (the
score itself under the plain rule), and its severity says how far the statistic is past that threshold.
"""

from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from plantwatch.domain.alarms import AlarmState, rule_of_card
from plantwatch.domain.anomaly import Anomaly, ScorePoint, severity_for
from plantwatch.domain.errors import require_same_features
from plantwatch.domain.frames import SensorFrame
from plantwatch.domain.ports import TrainedModel
from plantwatch.domain.root_cause import rank_root_causes


@dataclass(frozen=True)
class ScoringResult:
    points: list[ScorePoint]
    anomalies: list[Anomaly]
    alarm_state: AlarmState = field(default_factory=AlarmState)
    """Where the alarm rule stands after the frame's last reading."""


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
    alarm_state: AlarmState | None = None,
) -> ScoringResult:
    """Score `frame` in time order.

    `history`: readings right before the frame's first one (already scored, in the model's feature order),
    so the first new readings have full windows; they produce no points or anomalies.
    `alarm_state`: where the model's alarm rule stood after the scored readings before the frame (None: a
    fresh start, as for the first readings of a source).
    """
    card = model.card
    rule = rule_of_card(card)
    values = aligned_values(frame, card.feature_names)
    before = history.to_numpy(dtype=np.float64) if history is not None and len(history) else None
    scores = model.detector.score(values, history=before)
    # a reading without a finite score gets no point, so it takes no part in the rule either
    finite = np.isfinite(scores)
    applied = rule.run(np.where(finite, scores, np.nan), card.threshold, alarm_state)
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
        if not finite[t]:
            continue
        alarm = bool(applied.alarms[t])
        points.append(
            ScorePoint(
                module=frame.module,
                source=frame.source,
                timestamp=timestamps[offset + t],
                score=float(scores[t]),
                threshold=card.threshold,
                model_name=card.model_name,
                model_version=card.version,
                statistic=float(applied.statistic[t]),
                alarm=alarm,
            )
        )
        if alarm:
            flagged.append(t)

    anomalies: list[Anomaly] = []
    if flagged:
        # explain once for the whole frame: per-window calls would redo the same forward passes
        explanation = model.detector.explain(values, history=before)
        for t in flagged:
            anomalies.append(
                Anomaly(
                    module=frame.module,
                    source=frame.source,
                    window_start=timestamps[max(0, offset + t - window + 1)],
                    window_end=timestamps[offset + t],
                    score=float(scores[t]),
                    threshold=card.threshold,
                    severity=severity_for(float(applied.statistic[t]), card.threshold),
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
    return ScoringResult(points=points, anomalies=anomalies, alarm_state=applied.state)
