"""In-memory fakes of the domain ports, for service and API tests that need no database.

InMemoryAnomalyRepository passes the same contract tests (tests/repository_contract.py) as the SQL store, and
InMemoryIncidentRepository those of tests/incident_contract.py.
"""

import json
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from plantwatch.adapters.storage.cursor import decode_cursor, encode_cursor, encode_position
from plantwatch.adapters.storage.validation import (
    check_anomalies,
    check_query,
    check_range,
    check_score_points,
    require_naive,
)
from plantwatch.domain.anomaly import Anomaly, FeatureContribution, ScorePoint, Severity
from plantwatch.domain.drift import DriftEvent
from plantwatch.domain.errors import InvalidInputError, NotFoundError
from plantwatch.domain.incidents import (
    AuditEntry,
    GroupingResult,
    Incident,
    IncidentAction,
    IncidentPolicy,
    apply_operator_action,
    event_payload,
    group_anomalies,
)
from plantwatch.domain.modules import Module, known_modules
from plantwatch.domain.ports import (
    AnomalyOrder,
    AnomalyPage,
    AnomalyQuery,
    AnomalyTally,
    IncidentDetail,
    IncidentPage,
    IncidentQuery,
    Notification,
    StoredBatch,
    tally_of,
)

ScoreKey = tuple[Module, str, datetime, str, str]

BASE_TIME = datetime(2024, 3, 1, 12, 0, 0)


def make_anomaly(
    window_end: datetime = BASE_TIME,
    *,
    module: Module = Module.ENERGY,
    source: str = "meter-1",
    score: float = 3.0,
    threshold: float = 1.0,
    severity: Severity = Severity.HIGH,
    features: Sequence[str] = ("voltage", "current"),
    model_name: str = "lstm_ae",
    model_version: str = "1",
    window_seconds: int = 60,
) -> Anomaly:
    """A valid Anomaly; root-cause contributions fall with rank, as a detector would give them."""
    root_cause = tuple(
        FeatureContribution(feature=name, contribution=10.0 / (rank + 1), observed=1.5 + rank, expected=1.0)
        for rank, name in enumerate(features)
    )
    return Anomaly(
        module=module,
        source=source,
        window_start=window_end - timedelta(seconds=window_seconds),
        window_end=window_end,
        score=score,
        threshold=threshold,
        root_cause=root_cause,
        model_name=model_name,
        model_version=model_version,
        detected_at=datetime(2024, 3, 2, 8, 30, 15, 123456),
        severity=severity,
    )


def make_score_point(
    timestamp: datetime = BASE_TIME,
    *,
    module: Module = Module.ENERGY,
    source: str = "meter-1",
    score: float = 0.5,
    threshold: float = 1.0,
    model_name: str = "lstm_ae",
    model_version: str = "1",
    statistic: float | None = None,
    alarm: bool | None = None,
) -> ScorePoint:
    return ScorePoint(
        module=module,
        source=source,
        timestamp=timestamp,
        score=score,
        threshold=threshold,
        model_name=model_name,
        model_version=model_version,
        statistic=statistic,
        alarm=alarm,
    )


def _sort_key(anomaly: Anomaly) -> tuple[datetime, str]:
    return anomaly.window_end, anomaly.id


class InMemoryAnomalyRepository:
    """AnomalyRepository kept in dicts; same ordering, filters, cursors and errors as SqlAnomalyRepository."""

    def __init__(self) -> None:
        self.anomalies: dict[str, Anomaly] = {}
        self.scores: dict[ScoreKey, ScorePoint] = {}
        self._revision = 0

    def add_many(self, anomalies: Sequence[Anomaly]) -> int:
        check_anomalies(anomalies)
        new = {a.id: a for a in anomalies if a.id not in self.anomalies}
        self.anomalies.update(new)
        self._revision += bool(new)
        return len(new)

    def revision(self) -> int:
        return self._revision

    def add_batch(self, points: Sequence[ScorePoint], anomalies: Sequence[Anomaly]) -> StoredBatch:
        # both checks before either write: the batch is stored whole or not at all, like the SQL transaction
        check_score_points(points)
        check_anomalies(anomalies)
        return StoredBatch(new_scores=self.add_scores(points), new_anomalies=self.add_many(anomalies))

    def get(self, anomaly_id: str) -> Anomaly:
        try:
            return self.anomalies[anomaly_id]
        except KeyError:
            raise NotFoundError(f"anomaly {anomaly_id!r} not found") from None

    def find(self, query: AnomalyQuery) -> AnomalyPage:
        check_query(query)
        after = decode_cursor(query.cursor) if query.cursor else None
        matches = sorted(
            (
                a
                for a in self.anomalies.values()
                if self._matches(a, query) and (after is None or _sort_key(a) < after)
            ),
            key=_sort_key,
            reverse=True,
        )
        items = matches[: query.limit]
        next_cursor = encode_cursor(items[-1]) if len(matches) > query.limit else None
        return AnomalyPage(items=items, next_cursor=next_cursor)

    def tally(self, query: AnomalyQuery) -> AnomalyTally:
        check_query(query)
        matches = [a for a in self.anomalies.values() if self._matches(a, query)]
        modules = Counter(a.module for a in matches)
        severities = Counter(a.severity for a in matches)
        return tally_of(
            by_module={m: modules.get(m, 0) for m in known_modules()},
            by_severity={s: severities.get(s, 0) for s in Severity},
            top_features_by_module={
                m: dict(
                    Counter(a.top_feature for a in matches if a.module == m and a.top_feature is not None)
                )
                for m in known_modules()
            },
            earliest=min((a.window_end for a in matches), default=None),
            latest_by_module={
                m: max((a.window_end for a in matches if a.module == m), default=None)
                for m in known_modules()
            },
        )

    def top(self, query: AnomalyQuery, order: AnomalyOrder) -> list[Anomaly]:
        check_query(query)
        # Newest first, then a stable sort on the order's own key keeps "newest first" as the tie-break.
        matches = sorted(
            (a for a in self.anomalies.values() if self._matches(a, query)), key=_sort_key, reverse=True
        )
        if order is AnomalyOrder.OLDEST:
            matches.reverse()
        elif order is AnomalyOrder.HIGHEST_SCORE:
            matches.sort(key=lambda a: a.score, reverse=True)
        elif order is AnomalyOrder.LOWEST_SCORE:
            matches.sort(key=lambda a: a.score)
        else:
            matches.sort(
                key=lambda a: (a.severity.rank, a.score / a.threshold if a.threshold > 0 else float("inf")),
                reverse=True,
            )
        return matches[: query.limit]

    def histogram(self, query: AnomalyQuery, start: datetime, step: timedelta, buckets: int) -> list[int]:
        check_query(query)
        require_naive(start, "start")
        if step < timedelta(seconds=1) or buckets < 1:
            raise InvalidInputError(
                "a histogram needs a step of at least a second and one bucket", field="step"
            )
        counts = [0] * buckets
        for anomaly in self.anomalies.values():
            if self._matches(anomaly, query) and start <= anomaly.window_end < start + step * buckets:
                counts[(anomaly.window_end - start) // step] += 1
        return counts

    @staticmethod
    def _matches(anomaly: Anomaly, query: AnomalyQuery) -> bool:
        return (
            (query.module is None or anomaly.module == query.module)
            and (query.modules is None or anomaly.module in query.modules)
            and (query.source is None or anomaly.source == query.source)
            and (query.model_version is None or anomaly.model_version == query.model_version)
            and (query.since is None or anomaly.window_end >= query.since)
            and (query.until is None or anomaly.window_end < query.until)
            and (query.min_severity is None or anomaly.severity.rank >= query.min_severity.rank)
            and (query.severities is None or anomaly.severity in query.severities)
            and (query.feature is None or any(c.feature == query.feature for c in anomaly.root_cause))
        )

    def add_scores(self, points: Sequence[ScorePoint]) -> int:
        check_score_points(points)
        new = {}
        for point in points:
            key = (point.module, point.source, point.timestamp, point.model_name, point.model_version)
            if key not in self.scores:
                new[key] = point
        self.scores.update(new)
        return len(new)

    def list_scores(
        self, module: Module, since: datetime | None = None, until: datetime | None = None, limit: int = 5000
    ) -> list[ScorePoint]:
        check_range(since, until, limit)
        selected = [
            p
            for p in self.scores.values()
            if p.module == module
            and (since is None or p.timestamp >= since)
            and (until is None or p.timestamp < until)
        ]
        selected.sort(key=lambda p: (p.timestamp, p.source, p.model_name, p.model_version))
        return selected[:limit]

    def latest_scores(
        self,
        module: Module,
        source: str,
        model_name: str,
        model_version: str,
        before: datetime,
        limit: int,
    ) -> list[ScorePoint]:
        check_range(None, before, limit)
        selected = sorted(
            (
                p
                for p in self.scores.values()
                if (p.module, p.source, p.model_name, p.model_version)
                == (module, source, model_name, model_version)
                and p.timestamp < before
            ),
            key=lambda p: p.timestamp,
        )
        return selected[-limit:]


@dataclass
class _OutboxRow:
    notification: Notification
    next_attempt_at: datetime
    leased_until: datetime | None = None
    delivered_at: datetime | None = None
    given_up: bool = False
    last_error: str | None = None


class InMemoryIncidentRepository:
    """IncidentRepository and NotificationOutbox kept in dicts; same grouping, order, filters and errors as
    SqlIncidentRepository."""

    def __init__(self) -> None:
        self.incidents: dict[str, Incident] = {}
        self.members: dict[str, tuple[str, datetime]] = {}
        """anomaly id -> (incident id, window_end)"""
        self.audit: list[AuditEntry] = []
        self.outbox: dict[int, _OutboxRow] = {}
        self._lock = threading.Lock()

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
        check_anomalies(anomalies)
        require_naive(observed_until, "observed_until")
        if any(a.module != module or a.source != source for a in anomalies):
            raise ValueError(f"record takes anomalies of {module.value}/{source} only")
        with self._lock:
            open_incidents = [
                i
                for i in self.incidents.values()
                if i.module == module and i.source == source and i.state.is_open
            ]
            new = list({a.id: a for a in anomalies if a.id not in self.members}.values())
            result = group_anomalies(open_incidents, new, policy, observed_until, now)
            window_ends = {a.id: a.window_end for a in new}
            for incident in result.incidents:
                self.incidents[incident.id] = incident
            for incident_id, anomaly_id in result.members:
                self.members[anomaly_id] = (incident_id, window_ends[anomaly_id])
            self.audit.extend(result.audit)
            known = {(row.notification.event_id, row.notification.target) for row in self.outbox.values()}
            for event in result.events:
                for target in notify:
                    if (event.id, target) in known:
                        continue
                    row_id = len(self.outbox) + 1
                    self.outbox[row_id] = _OutboxRow(
                        Notification(row_id, event.id, target, json.dumps(event_payload(event)), 0), now
                    )
        return result

    def get(self, incident_id: str) -> IncidentDetail:
        try:
            incident = self.incidents[incident_id]
        except KeyError:
            raise NotFoundError(f"incident {incident_id!r} not found") from None
        members = sorted(
            (window_end, anomaly_id)
            for anomaly_id, (owner, window_end) in self.members.items()
            if owner == incident_id
        )
        return IncidentDetail(
            incident=incident,
            anomaly_ids=[anomaly_id for _, anomaly_id in members],
            history=[entry for entry in self.audit if entry.incident_id == incident_id],
        )

    def find(self, query: IncidentQuery) -> IncidentPage:
        check_range(query.since, query.until, query.limit)
        after = decode_cursor(query.cursor) if query.cursor else None
        matches = sorted(
            (
                i
                for i in self.incidents.values()
                if (query.module is None or i.module == query.module)
                and (query.source is None or i.source == query.source)
                and (
                    i.state == query.state
                    if query.state is not None
                    else query.include_unannunciated or i.state.annunciated
                )
                and (query.since is None or i.end >= query.since)
                and (query.until is None or i.start < query.until)
                and (query.min_severity is None or i.severity.rank >= query.min_severity.rank)
                and (after is None or (i.start, i.id) < after)
            ),
            key=lambda i: (i.start, i.id),
            reverse=True,
        )
        items = matches[: query.limit]
        last = items[-1] if items else None
        next_cursor = encode_position(last.start, last.id) if last and len(matches) > query.limit else None
        return IncidentPage(items=items, next_cursor=next_cursor)

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
        with self._lock:
            current = self.get(incident_id).incident
            changed, entry = apply_operator_action(current, action, actor, now, minutes=minutes, text=text)
            self.incidents[incident_id] = changed
            self.audit.append(entry)
        return self.get(incident_id)

    def claim_due(self, now: datetime, limit: int, lease: timedelta) -> list[Notification]:
        claimed = []
        with self._lock:
            for row in sorted(self.outbox.values(), key=lambda r: r.notification.id):
                if len(claimed) == limit:
                    break
                if (
                    row.delivered_at is None
                    and not row.given_up
                    and row.next_attempt_at <= now
                    and (row.leased_until is None or row.leased_until <= now)
                ):
                    row.leased_until = now + lease
                    claimed.append(row.notification)
        return claimed

    def delivered(self, notification_id: int, now: datetime) -> None:
        row = self.outbox[notification_id]
        row.delivered_at, row.leased_until = now, None
        row.notification = replace(row.notification, attempts=row.notification.attempts + 1)

    def failed(self, notification_id: int, error: str, retry_at: datetime | None) -> None:
        row = self.outbox[notification_id]
        row.leased_until, row.last_error = None, error
        row.notification = replace(row.notification, attempts=row.notification.attempts + 1)
        if retry_at is None:
            row.given_up = True
        else:
            row.next_attempt_at = retry_at

    def pending(self) -> int:
        return sum(1 for row in self.outbox.values() if row.delivered_at is None and not row.given_up)


class InMemoryDriftEventStore:
    """DriftEventStore kept in a list; newest first like SqlDriftEventStore."""

    def __init__(self) -> None:
        self.events: list[DriftEvent] = []

    def add_drift_event(self, event: DriftEvent) -> None:
        if all(stored.id != event.id for stored in self.events):
            self.events.append(event)

    def list_drift_events(self, module: Module | None = None, limit: int = 20) -> list[DriftEvent]:
        matching = [e for e in self.events if module is None or e.module == module]
        return sorted(matching, key=lambda e: (e.raised_at, e.id), reverse=True)[:limit]
