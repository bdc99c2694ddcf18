"""IncidentRepository and NotificationOutbox on SQLAlchemy (SQLite or PostgreSQL)."""

import json
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, Insert, Table, and_, delete, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from plantwatch.adapters.storage.cursor import decode_cursor, encode_position
from plantwatch.adapters.storage.incident_tables import (
    incident_anomalies,
    incident_audit,
    incident_causes,
    incident_locks,
    incidents,
    notification_outbox,
)
from plantwatch.adapters.storage.validation import check_anomalies, check_range, require_naive
from plantwatch.domain.anomaly import Anomaly, Severity
from plantwatch.domain.errors import NotFoundError
from plantwatch.domain.incidents import (
    AuditEntry,
    GroupingResult,
    Incident,
    IncidentAction,
    IncidentCause,
    IncidentPolicy,
    IncidentState,
    apply_operator_action,
    event_payload,
    group_anomalies,
)
from plantwatch.domain.modules import Module
from plantwatch.domain.ports import IncidentDetail, IncidentPage, IncidentQuery, Notification


class SqlIncidentRepository:
    """Incidents, their anomalies, audit log and notification outbox; the tables must exist (see
    create_incident_schema)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def _insert(self, table: Table) -> Insert:
        dialect = self.engine.dialect.name
        if dialect == "postgresql":
            return postgresql.insert(table)  # type: ignore[return-value]
        if dialect == "sqlite":
            return sqlite.insert(table)  # type: ignore[return-value]
        raise NotImplementedError(f"the incident store supports SQLite and PostgreSQL, not {dialect}")

    def _lock_source(self, connection: Connection, module: Module, source: str, now: datetime) -> None:
        # Written before anything is read (see incident_locks): later reads see every committed change.
        statement = self._insert(incident_locks).values(module=module.value, source=source, touched_at=now)
        connection.execute(
            statement.on_conflict_do_update(  # type: ignore[attr-defined]
                index_elements=["module", "source"], set_={"touched_at": now}
            )
        )

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
        own = [a for a in anomalies if a.module == module and a.source == source]
        if len(own) != len(anomalies):
            raise ValueError(f"record takes anomalies of {module.value}/{source} only")
        if not own:
            with self.engine.connect() as connection:
                if not self._has_active(connection, module, source):
                    return GroupingResult()  # nothing to group and nothing to clear: no lock, no write
        # SQLite: the transaction's first statement must be the write, or a read snapshot taken before
        # another writer's commit could not be upgraded to a write (SQLITE_BUSY_SNAPSHOT)
        with self.engine.begin() as connection:
            self._lock_source(connection, module, source, now)
            known = set()
            if own:
                known = set(
                    connection.execute(
                        select(incident_anomalies.c.anomaly_id).where(
                            incident_anomalies.c.anomaly_id.in_([a.id for a in own])
                        )
                    ).scalars()
                )
            rows = connection.execute(
                select(incidents).where(
                    incidents.c.module == module.value,
                    incidents.c.source == source,
                    incidents.c.state.in_([state.value for state in IncidentState if state.is_open]),
                )
            ).mappings()
            open_incidents = _load_incidents(connection, list(rows))
            unique = list({a.id: a for a in own if a.id not in known}.values())
            result = group_anomalies(open_incidents, unique, policy, observed_until, now)
            self._store(connection, result, {a.id: a for a in unique}, notify, now)
        return result

    def _has_active(self, connection: Connection, module: Module, source: str) -> bool:
        # what clearing can change: active and pending incidents
        active = [s.value for s in IncidentState if s.is_active or s is IncidentState.PENDING]
        statement = select(incidents.c.id).where(
            incidents.c.module == module.value, incidents.c.source == source, incidents.c.state.in_(active)
        )
        return connection.execute(statement.limit(1)).first() is not None

    def _store(
        self,
        connection: Connection,
        result: GroupingResult,
        anomalies: dict[str, Anomaly],
        notify: Sequence[str],
        now: datetime,
    ) -> None:
        for incident in result.incidents:
            self._save_incident(connection, incident)
        if result.members:
            connection.execute(
                incident_anomalies.insert(),
                [
                    {"anomaly_id": a_id, "incident_id": i_id, "window_end": anomalies[a_id].window_end}
                    for i_id, a_id in result.members
                ],
            )
        _add_audit(connection, result.audit)
        outbox_rows = [
            {
                "event_id": event.id,
                "target": target,
                "payload": json.dumps(event_payload(event)),
                "attempts": 0,
                "next_attempt_at": now,
                "given_up": False,
            }
            for event in result.events
            for target in notify
        ]
        if outbox_rows:
            connection.execute(
                self._insert(notification_outbox).on_conflict_do_nothing(),  # type: ignore[attr-defined]
                outbox_rows,
            )

    def _save_incident(self, connection: Connection, incident: Incident) -> None:
        row = _incident_row(incident)
        statement = self._insert(incidents).values(**row)
        connection.execute(
            statement.on_conflict_do_update(  # type: ignore[attr-defined]
                index_elements=["id"], set_={k: v for k, v in row.items() if k != "id"}
            )
        )
        connection.execute(delete(incident_causes).where(incident_causes.c.incident_id == incident.id))
        if incident.causes:
            connection.execute(
                incident_causes.insert(),
                [
                    {
                        "incident_id": incident.id,
                        "feature": cause.feature,
                        "windows": cause.windows,
                        "share_total": cause.share_total,
                        "peak_contribution": cause.peak_contribution,
                    }
                    for cause in incident.causes
                ],
            )

    def get(self, incident_id: str) -> IncidentDetail:
        with self.engine.connect() as connection:
            return self._detail(connection, incident_id)

    def _detail(self, connection: Connection, incident_id: str) -> IncidentDetail:
        row = connection.execute(select(incidents).where(incidents.c.id == incident_id)).mappings().first()
        if row is None:
            raise NotFoundError(f"incident {incident_id!r} not found")
        anomaly_ids = connection.execute(
            select(incident_anomalies.c.anomaly_id)
            .where(incident_anomalies.c.incident_id == incident_id)
            .order_by(incident_anomalies.c.window_end, incident_anomalies.c.anomaly_id)
        ).scalars()
        history = connection.execute(
            select(incident_audit)
            .where(incident_audit.c.incident_id == incident_id)
            .order_by(incident_audit.c.id)
        )
        return IncidentDetail(
            incident=_load_incidents(connection, [row])[0],
            anomaly_ids=list(anomaly_ids),
            history=[
                AuditEntry(
                    incident_id=entry.incident_id,
                    at=entry.at,
                    actor=entry.actor,
                    action=IncidentAction(entry.action),
                    from_state=IncidentState(entry.from_state) if entry.from_state else None,
                    to_state=IncidentState(entry.to_state),
                    detail=entry.detail,
                )
                for entry in history
            ],
        )

    def find(self, query: IncidentQuery) -> IncidentPage:
        check_range(query.since, query.until, query.limit)
        statement = select(incidents)
        if query.module is not None:
            statement = statement.where(incidents.c.module == query.module.value)
        if query.source is not None:
            statement = statement.where(incidents.c.source == query.source)
        if query.state is not None:
            statement = statement.where(incidents.c.state == query.state.value)
        elif not query.include_unannunciated:
            shown = [state.value for state in IncidentState if state.annunciated]
            statement = statement.where(incidents.c.state.in_(shown))
        if query.since is not None:
            statement = statement.where(incidents.c.end_at >= query.since)
        if query.until is not None:
            statement = statement.where(incidents.c.start_at < query.until)
        if query.min_severity is not None:
            statement = statement.where(incidents.c.severity_rank >= query.min_severity.rank)
        if query.cursor:
            start, last_id = decode_cursor(query.cursor)
            statement = statement.where(
                or_(
                    incidents.c.start_at < start,
                    and_(incidents.c.start_at == start, incidents.c.id < last_id),
                )
            )
        statement = statement.order_by(incidents.c.start_at.desc(), incidents.c.id.desc()).limit(
            query.limit + 1
        )
        with self.engine.connect() as connection:
            rows = list(connection.execute(statement).mappings())
            items = _load_incidents(connection, rows[: query.limit])
        last = items[-1] if items else None
        next_cursor = encode_position(last.start, last.id) if last and len(rows) > query.limit else None
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
        with self.engine.connect() as connection:
            row = connection.execute(
                select(incidents.c.module, incidents.c.source).where(incidents.c.id == incident_id)
            ).first()
        if row is None:
            raise NotFoundError(f"incident {incident_id!r} not found")
        with self.engine.begin() as connection:
            self._lock_source(connection, Module(row.module), row.source, now)
            current = self._detail(connection, incident_id).incident
            changed, entry = apply_operator_action(current, action, actor, now, minutes=minutes, text=text)
            if changed != current:
                connection.execute(
                    update(incidents)
                    .where(incidents.c.id == incident_id)
                    .values(
                        state=changed.state.value,
                        updated_at=changed.updated_at,
                        shelved_until=changed.shelved_until,
                    )
                )
            _add_audit(connection, [entry])
            return self._detail(connection, incident_id)

    # --- the notification outbox ---

    def claim_due(self, now: datetime, limit: int, lease: timedelta) -> list[Notification]:
        due = and_(
            notification_outbox.c.delivered_at.is_(None),
            notification_outbox.c.given_up.is_(False),
            notification_outbox.c.next_attempt_at <= now,
            or_(notification_outbox.c.leased_until.is_(None), notification_outbox.c.leased_until <= now),
        )
        claimed: list[Notification] = []
        with self.engine.begin() as connection:
            candidates = connection.execute(
                select(notification_outbox).where(due).order_by(notification_outbox.c.id).limit(limit)
            ).mappings()
            for row in list(candidates):
                # the lease is taken only if nobody took it since the select: a conditional update
                taken = connection.execute(
                    update(notification_outbox)
                    .where(notification_outbox.c.id == row["id"], due)
                    .values(leased_until=now + lease)
                ).rowcount
                if taken:
                    claimed.append(
                        Notification(
                            id=row["id"],
                            event_id=row["event_id"],
                            target=row["target"],
                            payload=row["payload"],
                            attempts=row["attempts"],
                        )
                    )
        return claimed

    def delivered(self, notification_id: int, now: datetime) -> None:
        with self.engine.begin() as connection:
            connection.execute(
                update(notification_outbox)
                .where(notification_outbox.c.id == notification_id)
                .values(
                    delivered_at=now,
                    leased_until=None,
                    attempts=notification_outbox.c.attempts + 1,
                )
            )

    def failed(self, notification_id: int, error: str, retry_at: datetime | None) -> None:
        values: dict[str, Any] = {
            "attempts": notification_outbox.c.attempts + 1,
            "leased_until": None,
            "last_error": error[:2000],
        }
        if retry_at is None:
            values["given_up"] = True
        else:
            values["next_attempt_at"] = retry_at
        with self.engine.begin() as connection:
            connection.execute(
                update(notification_outbox)
                .where(notification_outbox.c.id == notification_id)
                .values(**values)
            )

    def pending(self) -> int:
        statement = select(func.count()).where(
            notification_outbox.c.delivered_at.is_(None), notification_outbox.c.given_up.is_(False)
        )
        with self.engine.connect() as connection:
            return int(connection.execute(statement).scalar_one())


def _incident_row(incident: Incident) -> dict[str, Any]:
    return {
        "id": incident.id,
        "module": incident.module.value,
        "source": incident.source,
        "start_at": incident.start,
        "end_at": incident.end,
        "peak_score": incident.peak_score,
        "threshold": incident.threshold,
        "severity": incident.severity.value,
        "severity_rank": incident.severity.rank,
        "window_count": incident.window_count,
        "state": incident.state.value,
        "opened_at": incident.opened_at,
        "updated_at": incident.updated_at,
        "shelved_until": incident.shelved_until,
    }


def _add_audit(connection: Connection, entries: Sequence[AuditEntry]) -> None:
    if not entries:
        return
    connection.execute(
        incident_audit.insert(),
        [
            {
                "incident_id": entry.incident_id,
                "at": entry.at,
                "actor": entry.actor,
                "action": entry.action.value,
                "from_state": entry.from_state.value if entry.from_state else None,
                "to_state": entry.to_state.value,
                "detail": entry.detail,
            }
            for entry in entries
        ],
    )


def _load_incidents(connection: Connection, rows: Sequence[Any]) -> list[Incident]:
    """Incidents for the given rows, their causes read in one query."""
    if not rows:
        return []
    causes: dict[str, list[IncidentCause]] = defaultdict(list)
    for cause in connection.execute(
        select(incident_causes).where(incident_causes.c.incident_id.in_([row["id"] for row in rows]))
    ):
        causes[cause.incident_id].append(
            IncidentCause(
                feature=cause.feature,
                windows=cause.windows,
                share_total=cause.share_total,
                peak_contribution=cause.peak_contribution,
            )
        )
    return [
        Incident(
            id=row["id"],
            module=Module(row["module"]),
            source=row["source"],
            start=row["start_at"],
            end=row["end_at"],
            peak_score=row["peak_score"],
            threshold=row["threshold"],
            severity=Severity(row["severity"]),
            window_count=row["window_count"],
            causes=tuple(sorted(causes[row["id"]], key=lambda c: (-c.share_total, c.feature))),
            state=IncidentState(row["state"]),
            opened_at=row["opened_at"],
            updated_at=row["updated_at"],
            shelved_until=row["shelved_until"],
        )
        for row in rows
    ]
