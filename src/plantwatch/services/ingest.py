"""Ingest: validate a batch of readings, score it with the module's model and store scores and anomalies.

Window context rule. A detector scores the window that ends at each reading, so the first reading of a batch
needs the `window - 1` readings before it. They come, in this order of preference, from:

1. the readings this process has already seen for the same (module, source) (`ReadingContext`), and
2. readings the caller sends as context (an MQTT message carries the previous readings, because a shared
   subscription splits consecutive messages between workers).

Only readings strictly earlier than the batch's first reading are used as context. Every reading of the batch
that has a full window is scored; when no context is known, the first `window - 1` readings of the batch are
context only and get no score. A batch's scores and anomalies commit in one transaction, so a crash leaves
the batch wholly stored or wholly absent. Writes are idempotent (deterministic anomaly ids, score keys), so
re-sending the same readings, or a redelivered message, stores nothing twice.

Incidents: given an `IncidentTracking`, each stored batch's anomalies are grouped into incidents (the same
path for HTTP ingest and the MQTT worker); that write is idempotent too.
"""

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pandas as pd

from plantwatch.domain.anomaly import Anomaly
from plantwatch.domain.frames import SensorFrame
from plantwatch.domain.incidents import GroupingResult
from plantwatch.domain.modules import Module
from plantwatch.domain.ports import AnomalyRepository, TrainedModel
from plantwatch.services.conformance import check_codes
from plantwatch.services.drift import DriftMonitor
from plantwatch.services.incidents import IncidentTracking
from plantwatch.services.scoring import aligned_values, score_frame


@dataclass(frozen=True)
class IngestResult:
    module: Module
    source: str
    readings: int
    scored: int
    """Readings that had a full window and got a score."""
    anomalies: list[Anomaly]
    """Every anomaly found in the batch, new or already stored."""
    new_anomalies: int
    new_scores: int
    incidents: GroupingResult = field(default_factory=GroupingResult)
    """What the batch changed in incidents (nothing when ingest tracks none)."""


class ReadingContext:
    """The last readings this process saw per (module, source): window context for the next batch.

    Thread-safe: the API scores batches in a thread pool.
    """

    def __init__(self, max_readings: int = 256) -> None:
        if max_readings < 1:
            raise ValueError("max_readings must be at least 1")
        self.max_readings = max_readings
        self._recent: dict[tuple[Module, str], pd.DataFrame] = {}
        self._lock = threading.Lock()

    def before(
        self, module: Module, source: str, timestamp: datetime, columns: Sequence[str]
    ) -> pd.DataFrame:
        """Remembered readings strictly before `timestamp` with exactly `columns`, oldest first."""
        with self._lock:
            recent = self._recent.get((module, source))
        if recent is None or list(recent.columns) != list(columns):
            return _empty(columns)
        return recent[recent.index < timestamp]

    def remember(self, module: Module, source: str, values: pd.DataFrame) -> None:
        key = (module, source)
        with self._lock:
            recent = self._recent.get(key)
            if recent is not None and list(recent.columns) == list(values.columns):
                merged = pd.concat([recent, values])
                # a re-sent reading replaces the remembered one: the newest copy is what the plant reported
                merged = merged[~merged.index.duplicated(keep="last")].sort_index()
            else:
                merged = values.sort_index()
            self._recent[key] = merged.iloc[-self.max_readings :]


def _empty(columns: Sequence[str]) -> pd.DataFrame:
    return pd.DataFrame(columns=list(columns), index=pd.DatetimeIndex([], name="timestamp"), dtype="float64")


def window_context(
    frame: SensorFrame,
    needed: int,
    context: ReadingContext,
    sent_context: SensorFrame | None = None,
) -> pd.DataFrame:
    """Up to `needed` readings right before the frame's first one: remembered ones first, then sent ones."""
    columns = frame.feature_names
    if needed <= 0 or len(frame) == 0:
        return _empty(columns)
    first = frame.values.index[0]
    parts = [context.before(frame.module, frame.source, first, columns)]
    if sent_context is not None and len(sent_context):
        sent = sent_context.values[columns]
        parts.append(sent[sent.index < first])
    non_empty = [part for part in parts if len(part)]
    if not non_empty:
        return _empty(columns)
    merged = pd.concat(non_empty) if len(non_empty) > 1 else non_empty[0]
    merged = merged[~merged.index.duplicated(keep="first")].sort_index()
    return merged.iloc[-needed:]


def ingest_frame(
    frame: SensorFrame,
    model: TrainedModel,
    repository: AnomalyRepository,
    context: ReadingContext,
    *,
    sent_context: SensorFrame | None = None,
    now: datetime | None = None,
    incidents: IncidentTracking | None = None,
    drift: DriftMonitor | None = None,
) -> IngestResult:
    """Score `frame` (with window context, see the module doc) and store its scores and anomalies, then
    group them into incidents when `incidents` is given.

    The readings are remembered as context (and counted for `drift`) only once they are stored, so a failed
    write leaves no trace; a failed incident write fails the batch too, and re-sending it stores nothing
    twice.
    """
    feature_names = model.card.feature_names
    aligned_values(frame, feature_names)  # a missing or extra feature is an error naming it
    batch = SensorFrame(module=frame.module, source=frame.source, values=frame.values[feature_names])
    check_codes(batch, model.card)  # a coded feature (load type, valve state) takes only its codes
    before = window_context(batch, max(0, model.card.window - 1), context, sent_context)
    result = score_frame(batch, model, history=before, now=now)
    # one transaction: a crash mid-write leaves the batch wholly stored or wholly absent, never scores
    # without their anomalies
    stored = repository.add_batch(result.points, result.anomalies)
    grouped = GroupingResult()
    if incidents is not None and len(batch):
        grouped = incidents.track(
            batch.module,
            batch.source,
            result.anomalies,
            observed_until=batch.values.index.max().to_pydatetime(),
            now=now or datetime.now(UTC).replace(tzinfo=None),
        )
    context.remember(batch.module, batch.source, batch.values)
    if drift is not None:
        drift.observe(batch, model)
    return IngestResult(
        module=batch.module,
        source=batch.source,
        readings=len(batch),
        scored=len(result.points),
        anomalies=result.anomalies,
        new_anomalies=stored.new_anomalies,
        new_scores=stored.new_scores,
        incidents=grouped,
    )
