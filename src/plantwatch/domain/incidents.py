"""Incidents: nearby anomalous windows of one source grouped into one alarm, with its ISA-18.2 lifecycle.

An operator judges an alarm system by alarms, not by scored rows: hundreds of flagged windows of one attack
are one alarm. Anomalies of one (module, source) whose window_end lies within `gap` of an incident's span
join it; a later one opens a new incident. Grouping works on data time (the readings' own timestamps), so a
replay of old data groups exactly as the live stream did.

Lifecycle (ISA-18.2 alarm states, "cleared" being its return-to-normal):

    active_unacknowledged --acknowledge--> active_acknowledged --clear or resolve--> closed
            |clear                                  ^
            v                                       |
    cleared_unacknowledged --acknowledge or resolve-+--> closed

An incident clears when the readings have gone on for longer than `gap` past its last anomalous window. An
anomaly that joins a cleared incident returns it to active_unacknowledged.

On-delay (ISA-18.2's remedy for nuisance alarms): an incident is annunciated (active_unacknowledged, notified,
counted as an alarm) only once it holds `on_delay_windows` windows or a critical one; until then it is
pending, and one that clears while pending is suppressed: stored, so a replay stays idempotent, never shown
as an alarm. Shelving hides an open incident
from notifications until it expires, without changing its state. Every change is an audit entry naming who
did it and when; the system is the actor of what the readings do (open, escalate, clear, return).
"""

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum

from plantwatch.domain.anomaly import Anomaly, Severity
from plantwatch.domain.errors import InvalidInputError, InvalidTransitionError
from plantwatch.domain.modules import Module

INCIDENT_NAMESPACE = uuid.UUID("0d7f6a43-5f0e-4a55-9a43-1b6f3f6c2e19")
SYSTEM_ACTOR = "plantwatch"
MAX_ACTOR_CHARS = 100
MAX_COMMENT_CHARS = 2000
# ISA-18.2 asks for a shelving time limit; a week is the longest a shelved alarm stays hidden here.
MAX_SHELVE_MINUTES = 7 * 24 * 60


class IncidentState(StrEnum):
    ACTIVE_UNACKNOWLEDGED = "active_unacknowledged"
    ACTIVE_ACKNOWLEDGED = "active_acknowledged"
    CLEARED_UNACKNOWLEDGED = "cleared_unacknowledged"
    CLOSED = "closed"
    # the on-delay: too few windows yet to annunciate; and one that cleared before it was annunciated
    PENDING = "pending"
    SUPPRESSED = "suppressed"

    @property
    def is_active(self) -> bool:
        return self in (IncidentState.ACTIVE_UNACKNOWLEDGED, IncidentState.ACTIVE_ACKNOWLEDGED)

    @property
    def annunciated(self) -> bool:
        """Shown to operators, counted as an alarm and notified: past its on-delay."""
        return self not in (IncidentState.PENDING, IncidentState.SUPPRESSED)

    @property
    def is_open(self) -> bool:
        """New anomalies of its source may still join it."""
        return self not in (IncidentState.CLOSED, IncidentState.SUPPRESSED)


class IncidentAction(StrEnum):
    # what the readings do
    OPEN = "open"
    ESCALATE = "escalate"
    CLEAR = "clear"
    RETURN = "return"
    # what an operator does
    ACKNOWLEDGE = "acknowledge"
    SHELVE = "shelve"
    COMMENT = "comment"
    RESOLVE = "resolve"


OPERATOR_ACTIONS = (
    IncidentAction.ACKNOWLEDGE,
    IncidentAction.SHELVE,
    IncidentAction.COMMENT,
    IncidentAction.RESOLVE,
)


@dataclass(frozen=True)
class IncidentCause:
    """One feature's part in an incident, summed over the windows whose root cause names it.

    share_total: the sum, over the incident's windows, of the feature's share of that window's
        contributions (contribution / sum of the window's contributions). Divided by the incident's window
        count it is the feature's mean share of the incident's score.
    peak_contribution: its largest contribution (error in units of its usual error on normal data).
    """

    feature: str
    windows: int
    share_total: float
    peak_contribution: float


@dataclass(frozen=True)
class Incident:
    """Anomalous windows of one source, `start` to `end` (naive, plant local time), as one alarm.

    opened_at, updated_at and shelved_until are wall-clock times (naive UTC), as Anomaly.detected_at.
    causes are ranked by share_total, largest first.
    """

    id: str
    module: Module
    source: str
    start: datetime
    end: datetime
    peak_score: float
    threshold: float
    """The threshold the peak score crossed."""
    severity: Severity
    window_count: int
    causes: tuple[IncidentCause, ...]
    state: IncidentState
    opened_at: datetime
    updated_at: datetime
    shelved_until: datetime | None = None

    @property
    def ongoing(self) -> bool:
        return self.state.is_active

    def shelved(self, now: datetime) -> bool:
        return self.shelved_until is not None and self.shelved_until > now

    def top_causes(self, k: int = 5) -> tuple[IncidentCause, ...]:
        return self.causes[:k]

    def mean_share(self, cause: IncidentCause) -> float:
        return cause.share_total / self.window_count if self.window_count else 0.0


@dataclass(frozen=True)
class AuditEntry:
    """One change of an incident: who (an operator, or SYSTEM_ACTOR for the readings) did what, when."""

    incident_id: str
    at: datetime
    """Wall-clock time, naive UTC."""
    actor: str
    action: IncidentAction
    from_state: IncidentState | None
    to_state: IncidentState
    detail: str | None = None


class IncidentEventKind(StrEnum):
    OPENED = "opened"
    ESCALATED = "escalated"


@dataclass(frozen=True)
class IncidentEvent:
    """What operators are notified of: an incident opened, or its severity rose."""

    kind: IncidentEventKind
    incident: Incident

    @property
    def id(self) -> str:
        """Stable per incident, kind and severity, so a receiver can drop a redelivered notification."""
        key = f"{self.incident.id}|{self.kind.value}|{self.incident.severity.value}"
        return str(uuid.uuid5(INCIDENT_NAMESPACE, key))


@dataclass(frozen=True)
class IncidentPolicy:
    """How anomalies group: those within `gap` of an incident's span join it; an incident is annunciated
    once it holds `on_delay_windows` windows, or at once for a critical window."""

    gap: timedelta
    on_delay_windows: int = 1

    def __post_init__(self) -> None:
        if self.gap <= timedelta(0):
            raise InvalidInputError(f"the incident gap must be positive, got {self.gap}", field="gap")
        if self.on_delay_windows < 1:
            raise InvalidInputError(
                f"on_delay_windows must be at least 1, got {self.on_delay_windows}", field="on_delay_windows"
            )

    def annunciates(self, incident: "Incident") -> bool:
        return incident.window_count >= self.on_delay_windows or incident.severity is Severity.CRITICAL


@dataclass
class GroupingResult:
    """What grouping changed: the incidents in their new state, new memberships, audit entries, events."""

    incidents: list[Incident] = field(default_factory=list)
    members: list[tuple[str, str]] = field(default_factory=list)
    """(incident id, anomaly id) pairs to store."""
    audit: list[AuditEntry] = field(default_factory=list)
    events: list[IncidentEvent] = field(default_factory=list)


def incident_id(module: Module, source: str, first_anomaly_id: str) -> str:
    """Deterministic, so replaying the same readings into an empty store gives the same incidents."""
    return str(uuid.uuid5(INCIDENT_NAMESPACE, f"{module.value}|{source}|{first_anomaly_id}"))


def _shares(anomaly: Anomaly) -> list[tuple[str, float, float]]:
    """(feature, share of the window's contributions, contribution) for the anomaly's root cause."""
    total = sum(max(cause.contribution, 0.0) for cause in anomaly.root_cause)
    return [
        (cause.feature, max(cause.contribution, 0.0) / total if total > 0 else 0.0, cause.contribution)
        for cause in anomaly.root_cause
    ]


def _merge_causes(causes: Iterable[IncidentCause], anomaly: Anomaly) -> tuple[IncidentCause, ...]:
    by_feature = {cause.feature: cause for cause in causes}
    for feature, share, contribution in _shares(anomaly):
        known = by_feature.get(feature)
        by_feature[feature] = (
            IncidentCause(feature, 1, share, contribution)
            if known is None
            else IncidentCause(
                feature,
                known.windows + 1,
                known.share_total + share,
                max(known.peak_contribution, contribution),
            )
        )
    return tuple(sorted(by_feature.values(), key=lambda c: (-c.share_total, c.feature)))


def _opened_by(anomaly: Anomaly, now: datetime) -> Incident:
    return Incident(
        id=incident_id(anomaly.module, anomaly.source, anomaly.id),
        module=anomaly.module,
        source=anomaly.source,
        start=anomaly.window_end,
        end=anomaly.window_end,
        peak_score=anomaly.score,
        threshold=anomaly.threshold,
        severity=anomaly.severity,
        window_count=1,
        causes=_merge_causes((), anomaly),
        state=IncidentState.PENDING,
        opened_at=now,
        updated_at=now,
    )


def _absorb(incident: Incident, anomaly: Anomaly, now: datetime) -> Incident:
    peak = anomaly.score > incident.peak_score
    return replace(
        incident,
        start=min(incident.start, anomaly.window_end),
        end=max(incident.end, anomaly.window_end),
        peak_score=anomaly.score if peak else incident.peak_score,
        threshold=anomaly.threshold if peak else incident.threshold,
        severity=max(incident.severity, anomaly.severity, key=lambda s: s.rank),
        window_count=incident.window_count + 1,
        causes=_merge_causes(incident.causes, anomaly),
        updated_at=now,
    )


def group_anomalies(
    open_incidents: Sequence[Incident],
    anomalies: Sequence[Anomaly],
    policy: IncidentPolicy,
    observed_until: datetime,
    now: datetime,
) -> GroupingResult:
    """Group new anomalies of one source into its open incidents (`IncidentState.is_open`), then clear
    stale ones.

    `anomalies` must be new: none may already belong to an incident (the store filters them, which is what
    makes replays idempotent). `observed_until` is the newest reading seen for the source: an active
    incident whose last window is more than `gap` before it has cleared. `now` is the wall clock.
    """
    incidents = {incident.id: incident for incident in open_incidents}
    before = dict(incidents)
    result = GroupingResult()

    for anomaly in sorted(anomalies, key=lambda a: (a.window_end, a.id)):
        candidates = [
            incident
            for incident in incidents.values()
            if incident.start - policy.gap <= anomaly.window_end <= incident.end + policy.gap
        ]
        if candidates:
            joined = max(candidates, key=lambda incident: (incident.end, incident.id))
            grown = _absorb(joined, anomaly, now)
            if joined.state is IncidentState.CLEARED_UNACKNOWLEDGED:
                grown = replace(grown, state=IncidentState.ACTIVE_UNACKNOWLEDGED)
                result.audit.append(
                    AuditEntry(grown.id, now, SYSTEM_ACTOR, IncidentAction.RETURN, joined.state, grown.state)
                )
        else:
            grown = _opened_by(anomaly, now)
        if grown.state is IncidentState.PENDING and policy.annunciates(grown):
            grown = replace(grown, state=IncidentState.ACTIVE_UNACKNOWLEDGED)
            result.audit.append(
                AuditEntry(grown.id, now, SYSTEM_ACTOR, IncidentAction.OPEN, None, grown.state)
            )
        incidents[grown.id] = grown
        result.members.append((grown.id, anomaly.id))

    cleared_states = {
        IncidentState.ACTIVE_ACKNOWLEDGED: IncidentState.CLOSED,
        IncidentState.ACTIVE_UNACKNOWLEDGED: IncidentState.CLEARED_UNACKNOWLEDGED,
        IncidentState.PENDING: IncidentState.SUPPRESSED,
    }
    for key, incident in list(incidents.items()):
        if incident.state in cleared_states and observed_until - incident.end > policy.gap:
            cleared_state = cleared_states[incident.state]
            incidents[key] = replace(incident, state=cleared_state, updated_at=now)
            result.audit.append(
                AuditEntry(key, now, SYSTEM_ACTOR, IncidentAction.CLEAR, incident.state, cleared_state)
            )

    for key, incident in incidents.items():
        previous = before.get(key)
        if previous == incident:
            continue
        result.incidents.append(incident)
        if not incident.state.annunciated:
            continue
        if previous is None or not previous.state.annunciated:
            result.events.append(IncidentEvent(IncidentEventKind.OPENED, incident))
        elif incident.severity.rank > previous.severity.rank:
            # a shelved incident still escalates in its audit log, but tells nobody until the shelf expires
            if not incident.shelved(now):
                result.events.append(IncidentEvent(IncidentEventKind.ESCALATED, incident))
            result.audit.append(
                AuditEntry(
                    key,
                    now,
                    SYSTEM_ACTOR,
                    IncidentAction.ESCALATE,
                    previous.state,
                    incident.state,
                    detail=f"{previous.severity.value} -> {incident.severity.value}",
                )
            )
    return result


def check_actor(actor: str) -> str:
    cleaned = actor.strip()
    if not cleaned or len(cleaned) > MAX_ACTOR_CHARS or not cleaned.isprintable():
        raise InvalidInputError(
            f"actor must be 1 to {MAX_ACTOR_CHARS} printable characters, got {actor!r}", field="actor"
        )
    return cleaned


def apply_operator_action(
    incident: Incident,
    action: IncidentAction,
    actor: str,
    now: datetime,
    *,
    minutes: int | None = None,
    text: str | None = None,
) -> tuple[Incident, AuditEntry]:
    """The incident after an operator's action, and its audit entry.

    InvalidTransitionError (HTTP 409) when the incident's state does not allow the action; InvalidInputError
    for a bad actor, shelving time or comment.
    """
    actor = check_actor(actor)
    state = incident.state
    detail: str | None = None
    changed = incident
    if action is IncidentAction.ACKNOWLEDGE:
        if state is IncidentState.ACTIVE_UNACKNOWLEDGED:
            changed = replace(incident, state=IncidentState.ACTIVE_ACKNOWLEDGED)
        elif state is IncidentState.CLEARED_UNACKNOWLEDGED:
            changed = replace(incident, state=IncidentState.CLOSED)
        else:
            raise InvalidTransitionError(incident.id, state.value, action.value)
    elif action is IncidentAction.SHELVE:
        if minutes is None or not 1 <= minutes <= MAX_SHELVE_MINUTES:
            raise InvalidInputError(
                f"minutes must be 1 to {MAX_SHELVE_MINUTES}, got {minutes}", field="minutes"
            )
        if not state.is_open or not state.annunciated:
            raise InvalidTransitionError(incident.id, state.value, action.value)
        changed = replace(incident, shelved_until=now + timedelta(minutes=minutes))
        detail = f"{minutes} min"
    elif action is IncidentAction.COMMENT:
        detail = (text or "").strip()
        if not detail or len(detail) > MAX_COMMENT_CHARS:
            raise InvalidInputError(f"text must be 1 to {MAX_COMMENT_CHARS} characters", field="text")
    elif action is IncidentAction.RESOLVE:
        # an alarm nobody acknowledged cannot be closed unseen: acknowledge first (ISA-18.2)
        if state not in (IncidentState.ACTIVE_ACKNOWLEDGED, IncidentState.CLEARED_UNACKNOWLEDGED):
            raise InvalidTransitionError(incident.id, state.value, action.value)
        changed = replace(incident, state=IncidentState.CLOSED, shelved_until=None)
    else:
        raise InvalidInputError(f"{action.value} is not an operator action", field="action")
    changed = replace(changed, updated_at=now)
    return changed, AuditEntry(incident.id, now, actor, action, state, changed.state, detail)


def event_payload(event: IncidentEvent) -> dict[str, object]:
    """The JSON a webhook or the MQTT topic receives for an event."""
    incident = event.incident
    return {
        "event_id": event.id,
        "event": event.kind.value,
        "incident": {
            "id": incident.id,
            "module": incident.module.value,
            "source": incident.source,
            "start": incident.start.isoformat(),
            "end": incident.end.isoformat(),
            "state": incident.state.value,
            "severity": incident.severity.value,
            "peak_score": incident.peak_score,
            "threshold": incident.threshold,
            "window_count": incident.window_count,
            "top_causes": [cause.feature for cause in incident.top_causes(3)],
        },
    }
