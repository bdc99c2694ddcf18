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

Alarm rule state. The model's alarm rule (EWMA or CUSUM of the score, k-of-n persistence) makes a reading's
alarm depend on the readings before it. Every stored score carries the rule's statistic, and a batch
continues the rule from the latest stored scores of its source under the same model version (the store is
the one state HTTP ingest, every MQTT worker and a restarted process share), so its alarms are those of the
whole series. A shared subscription can hand a worker the next message of a source before another worker
has stored the one before; when the sent context shows a previous reading that should have a stored score
and the store is behind it, ingest waits for it (up to `alarm_state_wait_s`, then continues from what is
stored and logs it). A model version's first batch of a source starts the rule afresh.

Incidents: given an `IncidentTracking`, each stored batch's anomalies are grouped into incidents (the same
path for HTTP ingest and the MQTT worker); that write is idempotent too.
"""

import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pandas as pd

from plantwatch.domain.alarms import AlarmRule, AlarmState, rule_of_card
from plantwatch.domain.anomaly import Anomaly
from plantwatch.domain.frames import SensorFrame
from plantwatch.domain.incidents import GroupingResult
from plantwatch.domain.modules import Module
from plantwatch.domain.ports import AnomalyRepository, TrainedModel
from plantwatch.services.conformance import check_codes
from plantwatch.services.drift import DriftMonitor
from plantwatch.services.incidents import IncidentTracking
from plantwatch.services.scoring import aligned_values, score_frame

log = logging.getLogger(__name__)

# How long a batch waits for the stored score of the reading right before it (another worker's message);
# past it the batch continues from what is stored.
DEFAULT_ALARM_STATE_WAIT_S = 5.0
ALARM_STATE_POLL_S = 0.05


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


def previous_scored_reading(
    frame: SensorFrame, window: int, sent_context: SensorFrame | None
) -> datetime | None:
    """The reading right before the frame, when the sent context shows it and it had a full window (so some
    process scored and stored it); None otherwise."""
    if sent_context is None or len(sent_context) == 0 or len(frame) == 0:
        return None
    earlier = sent_context.values.index[sent_context.values.index < frame.values.index[0]]
    if len(earlier) < max(1, window):
        return None
    return pd.Timestamp(earlier.max()).to_pydatetime()


def alarm_state_before(
    frame: SensorFrame,
    model: TrainedModel,
    rule: AlarmRule,
    repository: AnomalyRepository,
    sent_context: SensorFrame | None = None,
    *,
    wait_s: float = DEFAULT_ALARM_STATE_WAIT_S,
    sleep: Callable[[float], None] = time.sleep,
) -> AlarmState:
    """Where the model's alarm rule stood after the stored scores of the frame's source before its first
    reading (see the module doc)."""
    card = model.card
    first = pd.Timestamp(frame.values.index[0]).to_pydatetime()
    expected = previous_scored_reading(frame, card.window, sent_context)
    deadline = time.monotonic() + wait_s
    while True:
        points = repository.latest_scores(
            frame.module, frame.source, card.model_name, card.version, first, rule.history_needed
        )
        # nothing stored under this version: its first batch of the source, which starts the rule afresh
        caught_up = expected is None or not points or points[-1].timestamp >= expected
        if caught_up or time.monotonic() >= deadline:
            break
        sleep(ALARM_STATE_POLL_S)
    if not caught_up:
        log.warning(
            "%s/%s: no stored score at %s (the reading before this batch) after %.1f s; continuing the "
            "alarm rule from the score at %s",
            frame.module.value,
            frame.source,
            expected,
            wait_s,
            points[-1].timestamp,
        )
    statistics = [math.nan if p.statistic is None else p.statistic for p in points]
    return rule.state_after(statistics, card.threshold)


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
    alarm_state_wait_s: float = DEFAULT_ALARM_STATE_WAIT_S,
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
    rule = rule_of_card(model.card)
    state = None
    if rule.needs_state and len(batch):
        state = alarm_state_before(batch, model, rule, repository, sent_context, wait_s=alarm_state_wait_s)
    result = score_frame(batch, model, history=before, now=now, alarm_state=state)
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
