"""Anomaly: what plantwatch stores and serves, with its root cause."""

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from plantwatch.domain.modules import Module

# Fixed namespace so the same (module, source, timestamp, model name and version) always gives the same id:
# this is what makes writes idempotent across re-sent readings and redelivered messages.
ANOMALY_NAMESPACE = uuid.UUID("6f1c5f4e-8f0c-4b7e-9a51-3c2b1d0e7a42")


class Severity(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return list(Severity).index(self)


def severity_for(score: float, threshold: float) -> Severity:
    """Severity from how far the score is past the threshold (score/threshold ratio)."""
    if threshold <= 0:  # a degenerate threshold: anything above it is as severe as it gets
        return Severity.CRITICAL if score > threshold else Severity.LOW
    ratio = score / threshold
    if ratio >= 4.0:
        return Severity.CRITICAL
    if ratio >= 2.0:
        return Severity.HIGH
    if ratio >= 1.3:
        return Severity.MEDIUM
    return Severity.LOW


@dataclass(frozen=True)
class FeatureContribution:
    """One feature's share in an anomaly: its error normalised by its own error on normal data."""

    feature: str
    contribution: float
    observed: float
    expected: float


def anomaly_id(module: Module, source: str, timestamp: datetime, model_name: str, model_version: str) -> str:
    key = f"{module.value}|{source}|{timestamp.isoformat()}|{model_name}|{model_version}"
    return str(uuid.uuid5(ANOMALY_NAMESPACE, key))


@dataclass(frozen=True)
class Anomaly:
    """A scored window at which the model's alarm rule alarmed (under the plain rule: the score crossed
    the threshold).

    window_end is the timestamp of the reading that was flagged; window_start the first reading of the
    window the detector looked at. root_cause is ranked, largest contribution first. `score` is the
    detector's raw score; `threshold` the threshold of the rule's statistic (EWMA or CUSUM of the score, or
    the score itself), which severity compares the statistic with.
    """

    module: Module
    source: str
    window_start: datetime
    window_end: datetime
    score: float
    threshold: float
    root_cause: tuple[FeatureContribution, ...]
    model_name: str
    model_version: str
    detected_at: datetime
    severity: Severity = field(default=Severity.LOW)
    id: str = ""

    def __post_init__(self) -> None:
        if not self.id:
            object.__setattr__(
                self,
                "id",
                anomaly_id(self.module, self.source, self.window_end, self.model_name, self.model_version),
            )

    @property
    def top_feature(self) -> str | None:
        return self.root_cause[0].feature if self.root_cause else None


@dataclass(frozen=True)
class ScorePoint:
    """The score of one reading, anomalous or not.

    The series the dashboard draws and the scale-out test counts.
    """

    module: Module
    source: str
    timestamp: datetime
    score: float
    threshold: float
    """The threshold of the alarm rule's statistic (of the score itself under the plain rule)."""
    model_name: str
    model_version: str
    statistic: float | None = None
    """The alarm rule's statistic at this reading (EWMA or CUSUM of the score, or the score); None for a
    point stored before scores carried it. Live scoring continues the rule from the latest stored ones."""
    alarm: bool | None = None
    """Whether the alarm rule alarmed at this reading (None: stored before scores carried it)."""
