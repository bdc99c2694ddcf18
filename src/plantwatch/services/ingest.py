"""Ingest: validate a batch of readings, score it with the module's model and store scores and anomalies.

Window context rule. A detector scores the window that ends at each reading, so the first reading of a batch
needs the `window - 1` readings before it. They come, in this order of preference, from:

1. the readings this process has already seen for the same (module, source) (`ReadingContext`), and
2. readings the caller sends as context (an MQTT message carries the previous readings, because a shared
   subscription splits consecutive messages between workers).

Only readings strictly earlier than the batch's first reading are used as context. Every reading of the batch
that has a full window is scored; when no context is known, the first `window - 1` readings of the batch are
context only and get no score. Writes are idempotent (deterministic anomaly ids, score keys), so re-sending
the same readings, or a redelivered message, stores nothing twice.
"""

import math
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import pandas as pd

from plantwatch.domain.anomaly import Anomaly
from plantwatch.domain.errors import InvalidInputError
from plantwatch.domain.frames import SensorFrame
from plantwatch.domain.modules import Module
from plantwatch.domain.ports import AnomalyRepository, TrainedModel
from plantwatch.services.scoring import aligned_values, score_frame


@dataclass(frozen=True)
class Reading:
    """One reading of one source: a timestamp (naive, plant local time) and a value per feature."""

    timestamp: datetime
    values: Mapping[str, float]


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


def readings_frame(
    module: Module,
    source: str,
    readings: Sequence[Reading],
    feature_names: Sequence[str],
    *,
    field: str = "readings",
) -> SensorFrame:
    """A SensorFrame of `readings` in time order, checked against the model's features.

    Errors name the offending reading and feature the way a JSON body addresses them, for example
    `readings[3].values.usage_kwh`.
    """
    if not source or not source.strip():
        raise InvalidInputError("source: must be a non-empty string", field="source")
    if not readings:
        raise InvalidInputError(f"{field}: at least one reading is needed", field=field)
    wanted = list(feature_names)
    wanted_set = set(wanted)
    rows: list[list[float]] = []
    index: list[datetime] = []
    first_seen: dict[datetime, int] = {}
    for position, reading in enumerate(readings):
        where = f"{field}[{position}]"
        if reading.timestamp.tzinfo is not None:
            raise InvalidInputError(
                f"{where}.timestamp: must be a naive timestamp in plant local time, "
                f"got {reading.timestamp.isoformat()}",
                field=f"{where}.timestamp",
            )
        if reading.timestamp in first_seen:
            raise InvalidInputError(
                f"{where}.timestamp: duplicates {field}[{first_seen[reading.timestamp]}] "
                f"({reading.timestamp.isoformat()})",
                field=f"{where}.timestamp",
            )
        first_seen[reading.timestamp] = position
        for name in wanted:
            if name not in reading.values:
                raise InvalidInputError(f"{where}.values.{name}: missing", field=f"{where}.values.{name}")
        for name, value in reading.values.items():
            if name not in wanted_set:
                raise InvalidInputError(
                    f"{where}.values.{name}: not a feature of the {module.value} model "
                    f"(expected {', '.join(wanted)})",
                    field=f"{where}.values.{name}",
                )
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise InvalidInputError(
                    f"{where}.values.{name}: must be a finite number, got {value!r}",
                    field=f"{where}.values.{name}",
                )
        rows.append([float(reading.values[name]) for name in wanted])
        index.append(reading.timestamp)
    values = pd.DataFrame(
        rows, columns=wanted, index=pd.DatetimeIndex(index, name="timestamp"), dtype="float64"
    )
    return SensorFrame(module=module, source=source, values=values.sort_index())


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
) -> IngestResult:
    """Score `frame` (with window context, see the module doc) and store its scores and anomalies.

    The readings are remembered as context only once they are stored, so a failed write leaves no trace.
    """
    feature_names = model.card.feature_names
    aligned_values(frame, feature_names)  # a missing or extra feature is an error naming it
    batch = SensorFrame(module=frame.module, source=frame.source, values=frame.values[feature_names])
    before = window_context(batch, max(0, model.card.window - 1), context, sent_context)
    combined = pd.concat([before, batch.values]) if len(before) else batch.values
    result = score_frame(
        SensorFrame(module=batch.module, source=batch.source, values=combined),
        model,
        emit_from=len(before),
        now=now,
    )
    new_scores = repository.add_scores(result.points)
    new_anomalies = repository.add_many(result.anomalies)
    context.remember(batch.module, batch.source, batch.values)
    return IngestResult(
        module=batch.module,
        source=batch.source,
        readings=len(batch),
        scored=len(result.points),
        anomalies=result.anomalies,
        new_anomalies=new_anomalies,
        new_scores=new_scores,
    )
