"""Ports: the small Protocols the services depend on. Adapters live in plantwatch.adapters."""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar, Protocol, Self, runtime_checkable

import numpy as np

from plantwatch.domain.anomaly import Anomaly, ScorePoint, Severity
from plantwatch.domain.drift import DriftEvent, TrainingProfile
from plantwatch.domain.incidents import (
    AuditEntry,
    GroupingResult,
    Incident,
    IncidentAction,
    IncidentPolicy,
    IncidentState,
)
from plantwatch.domain.lifecycle import ModelStages
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
    module_config: dict[str, Any] = field(default_factory=dict)
    """The module configuration (the layout trained on) as it was at training: serving checks readings
    against it. Empty for models trained before modules were configuration."""
    fingerprint: dict[str, Any] = field(default_factory=dict)
    """What the training data looked like: rows, sampling interval, each feature's range and codes."""
    alarm_rule: str = "none"
    """The alarm rule's spec (domain/alarms.py), e.g. "ewma:0.2"; `threshold` applies to its statistic.
    "none" (also for a card saved before models had rules): alarm = score > threshold."""
    alarm_reference: float | None = None
    """The CUSUM rule's reference level, calibrated on normal validation scores (None for other rules)."""


@dataclass(frozen=True)
class HeldOut:
    """Validation readings kept with a model, unseen by its fit: the promotion gate scores a candidate and
    production on the same ones.

    values: (history + T, F) in `feature_names` order; the first `history` rows only complete the first
        windows. normal: (T,) True where the window ending at that reading is all normal.
    """

    values: np.ndarray
    history: int
    normal: np.ndarray
    feature_names: list[str]


@dataclass
class TrainedModel:
    detector: Detector
    card: ModelCard
    profile: TrainingProfile | None = None
    """Statistics of the fitting data, the reference for drift (None for a model saved without one)."""
    held_out: HeldOut | None = None


class ModelRegistry(Protocol):
    def save(
        self,
        detector: Detector,
        card: ModelCard,
        profile: TrainingProfile | None = None,
        held_out: HeldOut | None = None,
    ) -> ModelCard:
        """Store a detector with its card (and drift profile and held-out data); returns the card with the
        version the registry gave it. A saved version is a candidate: it serves only once promoted."""
        ...

    def load(self, module: Module, model_name: str, version: str | None = None) -> TrainedModel:
        """Latest version when `version` is None. Raises NotFoundError, ModelIntegrityError."""
        ...

    def list_cards(self, module: Module | None = None) -> list[ModelCard]: ...

    def stages(self, module: Module, model_name: str) -> ModelStages:
        """The stages of a model's versions; with none recorded yet, the latest version is production."""
        ...

    def change_stages(
        self, module: Module, model_name: str, change: Callable[[ModelStages], ModelStages]
    ) -> ModelStages:
        """Apply `change` to the stored stages atomically (one writer at a time); returns the new stages."""
        ...


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
    model_version: str | None = None
    """Only anomalies scored by this model version."""
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


@dataclass(frozen=True)
class StoredBatch:
    """How many of a batch's scores and anomalies were new to the store."""

    new_scores: int
    new_anomalies: int


class AnomalyRepository(Protocol):
    """Anomalies newest first (window_end, then id, descending). Writes are idempotent by Anomaly.id."""

    def add_many(self, anomalies: Sequence[Anomaly]) -> int:
        """Store anomalies in one transaction; returns how many were new."""
        ...

    def add_batch(self, points: Sequence[ScorePoint], anomalies: Sequence[Anomaly]) -> StoredBatch:
        """Store one scored batch, its scores and its anomalies, in one transaction: all or nothing."""
        ...

    def get(self, anomaly_id: str) -> Anomaly:
        """Raises NotFoundError."""
        ...

    def revision(self) -> int:
        """A number that grows with every write that adds an anomaly (and only then): while it is unchanged,
        every read answers as before. Read it before the reads it guards."""
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

    def latest_scores(
        self,
        module: Module,
        source: str,
        model_name: str,
        model_version: str,
        before: datetime,
        limit: int,
    ) -> list[ScorePoint]:
        """The last `limit` scores of one source by one model version strictly before `before`, oldest
        first: where live scoring continues the alarm rule from."""
        ...


@dataclass(frozen=True)
class IncidentQuery:
    """Incidents newest start first (then id, descending). since/until select incidents that overlap
    [since, until): those ending at or after `since` and starting before `until`."""

    module: Module | None = None
    source: str | None = None
    state: IncidentState | None = None
    since: datetime | None = None
    until: datetime | None = None
    min_severity: Severity | None = None
    limit: int = 100
    cursor: str | None = None
    include_unannunciated: bool = False
    """Without a `state`, only annunciated incidents are listed (not pending or suppressed ones)."""


@dataclass(frozen=True)
class IncidentPage:
    items: list[Incident]
    next_cursor: str | None


@dataclass(frozen=True)
class IncidentDetail:
    incident: Incident
    anomaly_ids: list[str]
    """The anomalies it groups, oldest window_end first."""
    history: list[AuditEntry]
    """Its audit log, oldest first."""


class IncidentRepository(Protocol):
    """Incidents, the anomalies they group and their audit log.

    `record` is idempotent: an anomaly already in an incident is skipped, so a replayed or redelivered batch
    changes nothing. It runs as one transaction per (module, source), serialised against other writers of
    the same source, together with the notifications it enqueues: a crash loses neither.
    """

    def record(
        self,
        module: Module,
        source: str,
        anomalies: Sequence[Anomaly],
        policy: IncidentPolicy,
        observed_until: datetime,
        now: datetime,
        notify: Sequence[str] = (),
    ) -> GroupingResult:
        """Group the anomalies into the source's open incidents and clear those the readings left behind
        (`group_anomalies`); store the changes and, for each event, one notification per target in
        `notify`."""
        ...

    def get(self, incident_id: str) -> IncidentDetail:
        """Raises NotFoundError."""
        ...

    def find(self, query: IncidentQuery) -> IncidentPage: ...

    def act(
        self,
        incident_id: str,
        action: IncidentAction,
        actor: str,
        now: datetime,
        *,
        minutes: int | None = None,
        text: str | None = None,
    ) -> IncidentDetail:
        """Apply an operator's action (`apply_operator_action`) and store it with its audit entry.

        NotFoundError, InvalidTransitionError, InvalidInputError; nothing is stored when one is raised."""
        ...


@dataclass(frozen=True)
class Notification:
    """One incident event waiting to reach one target (a webhook URL, or MQTT_TARGET)."""

    id: int
    event_id: str
    target: str
    payload: str
    """The JSON body, fixed when the event happened."""
    attempts: int


MQTT_TARGET = "mqtt"


class NotificationOutbox(Protocol):
    """The persisted queue of notifications: rows are written with the incident change that caused them
    and leave only once delivered (or given up on), so a restart loses none."""

    def claim_due(self, now: datetime, limit: int, lease: timedelta) -> list[Notification]:
        """Notifications due by `now`, leased for `lease` so another dispatcher does not send them too."""
        ...

    def delivered(self, notification_id: int, now: datetime) -> None: ...

    def failed(self, notification_id: int, error: str, retry_at: datetime | None) -> None:
        """Record a failed attempt; retry at `retry_at`, or never when it is None."""
        ...

    def pending(self) -> int:
        """Notifications not delivered yet and not given up on."""
        ...


class Notifier(Protocol):
    """Sends one notification to its target; raises on failure (any exception is a failed attempt)."""

    def send(self, notification: Notification) -> None: ...


class DriftEventStore(Protocol):
    """Drift warnings, kept so they can be listed (and turned into incidents)."""

    def add_drift_event(self, event: DriftEvent) -> None: ...

    def list_drift_events(self, module: Module | None = None, limit: int = 20) -> list[DriftEvent]:
        """Newest first."""
        ...
