"""Ports: the small Protocols the services depend on. Adapters live in plantwatch.adapters."""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar, Protocol, Self, runtime_checkable

import numpy as np

from plantwatch.domain.anomaly import Anomaly, ScorePoint, Severity
from plantwatch.domain.modules import Module


@dataclass(frozen=True)
class Explanation:
    """Per-reading, per-feature view of a detector's score.

    contributions: (T, F) each feature's error divided by that feature's mean error on normal training data,
        so 1.0 means "as usual" and 10.0 "ten times its usual error". NaN where the detector has no full
        window.
    expected: (T, F) what the detector expected each feature to read, in the data's own units.
    """

    contributions: np.ndarray
    expected: np.ndarray


@runtime_checkable
class Detector(Protocol):
    """One interface for every model (river/PyOD style). Higher score = more anomalous.

    Inputs are raw (unscaled) arrays of shape (T, F) in time order; the detector owns its scaling, fitted
    in `fit`. `score` returns (T,) where entry t scores the window that ends at reading t; the first
    `window - 1` entries are NaN. So `score(X)[t] == score(X[t - window + 1 : t + 1])[-1]`: a stream
    keeps the last `window` readings. `history` (as Merlion's `time_series_prev`) is the readings right
    before `values`: they complete the first windows and get no score of their own, so
    `score(X[k:], history=X[:k]) == score(X)[k:]`.
    Thresholds are not part of a detector.
    """

    name: ClassVar[str]
    window: int
    feature_names: list[str]

    def fit(self, values: np.ndarray, feature_names: Sequence[str]) -> Self: ...

    def score(self, values: np.ndarray, history: np.ndarray | None = None) -> np.ndarray: ...

    def explain(self, values: np.ndarray, history: np.ndarray | None = None) -> Explanation: ...

    def save(self, directory: Path) -> None: ...

    @classmethod
    def load(cls, directory: Path, device: str | None = None) -> Self: ...


class Thresholder(Protocol):
    """Turns scores of normal data into a threshold (river's QuantileThresholder, SPOT/POT)."""

    method: str

    def calibrate(self, normal_scores: np.ndarray) -> float: ...


@dataclass(frozen=True)
class ModelCard:
    """What the registry records beside a detector's weights."""

    module: Module
    model_name: str
    version: str
    feature_names: list[str]
    window: int
    threshold: float
    threshold_method: str
    data_hash: str
    training_source: str
    created_at: datetime
    metrics: dict[str, Any] = field(default_factory=dict)


@dataclass
class TrainedModel:
    detector: Detector
    card: ModelCard


class ModelRegistry(Protocol):
    def save(self, detector: Detector, card: ModelCard) -> ModelCard:
        """Store a detector with its card; returns the card with the version the registry gave it."""
        ...

    def load(self, module: Module, model_name: str, version: str | None = None) -> TrainedModel:
        """Latest version when `version` is None. Raises NotFoundError, ModelIntegrityError."""
        ...

    def list_cards(self, module: Module | None = None) -> list[ModelCard]: ...


@dataclass(frozen=True)
class AnomalyQuery:
    module: Module | None = None
    modules: frozenset[Module] | None = None
    """Only anomalies of one of these modules ("energy and cyber"); None: any."""
    since: datetime | None = None
    until: datetime | None = None
    min_severity: Severity | None = None
    severities: frozenset[Severity] | None = None
    """Only anomalies of one of these severities ("high or critical"); None: any."""
    feature: str | None = None
    """Only anomalies whose root cause names this feature."""
    source: str | None = None
    limit: int = 100
    cursor: str | None = None
    """Opaque keyset cursor from a previous page's next_cursor."""


@dataclass(frozen=True)
class AnomalyPage:
    items: list[Anomaly]
    next_cursor: str | None


class AnomalyOrder(StrEnum):
    """Orders of AnomalyRepository.top; each breaks ties by newest window_end, then id descending."""

    OLDEST = "oldest"
    HIGHEST_SCORE = "highest_score"
    LOWEST_SCORE = "lowest_score"
    MOST_SEVERE = "most_severe"
    """Severity, then score/threshold (a threshold of 0 or less counts as infinitely exceeded)."""


@dataclass(frozen=True)
class AnomalyTally:
    """Aggregates over every anomaly matching a query, counted by the store (not from a page of rows)."""

    total: int
    by_module: dict[Module, int]
    """Every module, zero included."""
    by_severity: dict[Severity, int]
    """Every severity, zero included."""
    by_top_feature: dict[str, int]
    """How often each feature is the main (rank 0) root cause; anomalies without a root cause are left out."""
    earliest: datetime | None
    latest: datetime | None
    latest_by_module: dict[Module, datetime | None]
    """Every module, None where it has no match."""
    top_features_by_module: dict[Module, dict[str, int]]
    """by_top_feature per module; every module, empty where it has none."""


def tally_of(
    by_module: dict[Module, int],
    by_severity: dict[Severity, int],
    top_features_by_module: dict[Module, dict[str, int]],
    earliest: datetime | None,
    latest_by_module: dict[Module, datetime | None],
) -> AnomalyTally:
    """An AnomalyTally from per-module figures: the totals over modules are derived, not counted again."""
    by_top_feature: dict[str, int] = {}
    for causes in top_features_by_module.values():
        for feature, count in causes.items():
            by_top_feature[feature] = by_top_feature.get(feature, 0) + count
    latest_times = [t for t in latest_by_module.values() if t is not None]
    return AnomalyTally(
        total=sum(by_module.values()),
        by_module=by_module,
        by_severity=by_severity,
        by_top_feature=by_top_feature,
        earliest=earliest,
        latest=max(latest_times, default=None),
        latest_by_module=latest_by_module,
        top_features_by_module=top_features_by_module,
    )


class AnomalyRepository(Protocol):
    """Anomalies newest first (window_end, then id, descending). Writes are idempotent by Anomaly.id."""

    def add_many(self, anomalies: Sequence[Anomaly]) -> int:
        """Store anomalies in one transaction; returns how many were new."""
        ...

    def get(self, anomaly_id: str) -> Anomaly:
        """Raises NotFoundError."""
        ...

    def find(self, query: AnomalyQuery) -> AnomalyPage: ...

    def tally(self, query: AnomalyQuery) -> AnomalyTally:
        """Counts over every anomaly matching the query's filters (its limit and cursor are ignored)."""
        ...

    def top(self, query: AnomalyQuery, order: AnomalyOrder) -> list[Anomaly]:
        """The first `query.limit` anomalies matching the query's filters in `order` (cursor ignored)."""
        ...

    def histogram(self, query: AnomalyQuery, start: datetime, step: timedelta, buckets: int) -> list[int]:
        """Anomalies matching the filters per bucket [start + i * step, start + (i + 1) * step), i < buckets.

        The query's since/until narrow it further; `start` and `step` are whole seconds.
        """
        ...

    def add_scores(self, points: Sequence[ScorePoint]) -> int:
        """Store every reading's score; idempotent by (module, source, timestamp, model name and version)."""
        ...

    def list_scores(
        self, module: Module, since: datetime | None = None, until: datetime | None = None, limit: int = 5000
    ) -> list[ScorePoint]:
        """Oldest first."""
        ...
