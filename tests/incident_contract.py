"""The behaviour every IncidentRepository (and NotificationOutbox) must have, as functions of a fresh store.

tests/unit/test_incident_store.py runs them over the in-memory fake and SQLite, and
tests/integration/test_incident_store_postgres.py over PostgreSQL, so the fake cannot drift from the store.
"""

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from plantwatch.domain.anomaly import Anomaly, Severity
from plantwatch.domain.errors import InvalidInputError, InvalidTransitionError, NotFoundError
from plantwatch.domain.incidents import (
    IncidentAction,
    IncidentEventKind,
    IncidentPolicy,
    IncidentState,
    incident_id,
)
from plantwatch.domain.modules import Module
from plantwatch.domain.ports import IncidentQuery
from tests.fakes import BASE_TIME, make_anomaly

POLICY = IncidentPolicy(gap=timedelta(minutes=10))
NOW = datetime(2024, 3, 2, 9, 0, 0)
HOOK = "http://hooks.example/plantwatch"

# The store under test: an IncidentRepository that is also a NotificationOutbox.
Store = Any


def _burst(start: datetime, count: int, **options: Any) -> list[Anomaly]:
    """Anomalies one minute apart: one incident under POLICY."""
    return [make_anomaly(start + timedelta(minutes=i), **options) for i in range(count)]


def _record(store: Store, anomalies: list[Anomaly], observed_until: datetime | None = None, **kw: Any) -> Any:
    first = anomalies[0]
    until = observed_until or max(a.window_end for a in anomalies)
    return store.record(first.module, first.source, anomalies, POLICY, until, NOW, **kw)


def _all(store: Store, **filters: Any) -> list[Any]:
    items, cursor = [], None
    while True:
        page = store.find(IncidentQuery(limit=2, cursor=cursor, **filters))
        items.extend(page.items)
        if page.next_cursor is None:
            return items
        cursor = page.next_cursor


def check_nearby_anomalies_form_one_incident_and_a_gap_starts_another(store: Store) -> None:
    first = _burst(BASE_TIME, 5, severity=Severity.MEDIUM, features=("voltage", "current"))
    peak = make_anomaly(BASE_TIME + timedelta(minutes=5), score=9.0, severity=Severity.CRITICAL)
    later = _burst(BASE_TIME + timedelta(minutes=30), 2, features=("power",))
    result = _record(store, [*later, peak, *first])  # any order: grouping sorts by window_end

    assert {e.kind for e in result.events} == {IncidentEventKind.OPENED}
    newest, oldest = _all(store)
    assert oldest.start == BASE_TIME and oldest.end == BASE_TIME + timedelta(minutes=5)
    assert oldest.window_count == 6 and oldest.peak_score == 9.0 and oldest.severity is Severity.CRITICAL
    assert oldest.causes[0].feature == "voltage" and oldest.causes[0].windows == 6
    # 10/(10+5) of each window's contributions: the top cause's mean share
    assert oldest.mean_share(oldest.causes[0]) == pytest.approx(2 / 3)
    # the readings moved on more than the gap past the first burst: it has cleared
    assert oldest.state is IncidentState.CLEARED_UNACKNOWLEDGED
    assert newest.state is IncidentState.ACTIVE_UNACKNOWLEDGED
    assert [c.feature for c in newest.causes] == ["power"]

    detail = store.get(oldest.id)
    assert detail.anomaly_ids == [a.id for a in [*first, peak]]
    assert [(h.action, h.actor) for h in detail.history] == [
        (IncidentAction.OPEN, "plantwatch"),
        (IncidentAction.CLEAR, "plantwatch"),
    ]


def check_replays_are_idempotent_and_batches_group_as_one(store: Store) -> None:
    stream = _burst(BASE_TIME, 12) + _burst(BASE_TIME + timedelta(hours=1), 3)
    for start in range(0, len(stream), 4):  # as a stream would send it
        _record(store, stream[start : start + 4])
    incidents = _all(store)
    histories = [store.get(i.id).history for i in incidents]

    replay = _record(store, stream)

    assert replay.incidents == [] and replay.members == [] and replay.events == []
    assert _all(store) == incidents
    assert [store.get(i.id).history for i in incidents] == histories
    assert [i.window_count for i in incidents] == [3, 12]


def check_same_readings_give_the_same_incident_ids(store: Store) -> None:
    anomalies = _burst(BASE_TIME, 3, source="press-9", module=Module.MACHINE)
    _record(store, anomalies)
    (incident,) = _all(store)
    assert incident.module is Module.MACHINE and incident.source == "press-9"
    assert incident.id == incident_id(Module.MACHINE, "press-9", anomalies[0].id)


def check_sources_group_apart(store: Store) -> None:
    _record(store, _burst(BASE_TIME, 2, source="meter-1"))
    _record(store, _burst(BASE_TIME, 2, source="meter-2"))
    assert sorted(i.source for i in _all(store)) == ["meter-1", "meter-2"]
    assert len(_all(store, source="meter-2")) == 1


def check_lifecycle_and_audit(store: Store) -> None:
    _record(store, _burst(BASE_TIME, 3))
    (incident,) = _all(store)
    with pytest.raises(InvalidTransitionError):
        store.act(incident.id, IncidentAction.RESOLVE, "ana", NOW)  # acknowledge first
    acked = store.act(incident.id, IncidentAction.ACKNOWLEDGE, "ana", NOW)
    assert acked.incident.state is IncidentState.ACTIVE_ACKNOWLEDGED
    with pytest.raises(InvalidTransitionError, match="active_acknowledged"):
        store.act(incident.id, IncidentAction.ACKNOWLEDGE, "ana", NOW)
    shelved = store.act(incident.id, IncidentAction.SHELVE, "ben", NOW, minutes=30)
    assert shelved.incident.shelved_until == NOW + timedelta(minutes=30)
    assert shelved.incident.shelved(NOW) and not shelved.incident.shelved(NOW + timedelta(minutes=31))
    store.act(incident.id, IncidentAction.COMMENT, "ben", NOW, text="  pump 2 isolated ")
    resolved = store.act(incident.id, IncidentAction.RESOLVE, "cy", NOW + timedelta(minutes=1))
    assert resolved.incident.state is IncidentState.CLOSED
    with pytest.raises(InvalidTransitionError):
        store.act(incident.id, IncidentAction.RESOLVE, "cy", NOW)
    with pytest.raises(InvalidTransitionError):
        store.act(incident.id, IncidentAction.SHELVE, "cy", NOW, minutes=5)

    history = store.get(incident.id).history
    assert [(h.action, h.actor, h.detail) for h in history] == [
        (IncidentAction.OPEN, "plantwatch", None),
        (IncidentAction.ACKNOWLEDGE, "ana", None),
        (IncidentAction.SHELVE, "ben", "30 min"),
        (IncidentAction.COMMENT, "ben", "pump 2 isolated"),
        (IncidentAction.RESOLVE, "cy", None),
    ]
    assert history[-1].from_state is IncidentState.ACTIVE_ACKNOWLEDGED
    assert history[-1].to_state is IncidentState.CLOSED
    assert history[-1].at == NOW + timedelta(minutes=1)

    # a closed incident takes no more anomalies: the next ones open a new incident
    _record(store, _burst(BASE_TIME + timedelta(minutes=3), 1))
    assert len(_all(store)) == 2


def check_clearing_follows_the_state(store: Store) -> None:
    acked_first = _burst(BASE_TIME, 2, source="a")
    unacked = _burst(BASE_TIME, 2, source="b")
    _record(store, acked_first)
    _record(store, unacked)
    a = _all(store, source="a")[0]
    store.act(a.id, IncidentAction.ACKNOWLEDGE, "ana", NOW)
    later = BASE_TIME + timedelta(hours=1)
    # normal readings only (no anomaly) move the source on: both clear
    for source in ("a", "b"):
        store.record(Module.ENERGY, source, [], POLICY, later, NOW)
    assert _all(store, source="a")[0].state is IncidentState.CLOSED
    b = _all(store, source="b")[0]
    assert b.state is IncidentState.CLEARED_UNACKNOWLEDGED
    assert store.act(b.id, IncidentAction.ACKNOWLEDGE, "ana", NOW).incident.state is IncidentState.CLOSED
    # an anomaly arriving late, inside the gap of a cleared incident, returns it to alarm
    _record(store, _burst(BASE_TIME, 2, source="c"), observed_until=later)
    c = _all(store, source="c")[0]
    assert c.state is IncidentState.CLEARED_UNACKNOWLEDGED
    late = make_anomaly(BASE_TIME + timedelta(minutes=5), source="c")
    store.record(Module.ENERGY, "c", [late], POLICY, late.window_end, NOW)
    c = _all(store, source="c")[0]
    assert c.state is IncidentState.ACTIVE_UNACKNOWLEDGED and c.window_count == 3
    assert store.get(c.id).history[-1].action is IncidentAction.RETURN


def check_find_filters_and_pages(store: Store) -> None:
    _record(store, _burst(BASE_TIME, 2, severity=Severity.LOW))
    _record(store, _burst(BASE_TIME + timedelta(hours=1), 2, severity=Severity.HIGH))
    _record(store, _burst(BASE_TIME + timedelta(hours=2), 2, severity=Severity.MEDIUM))
    _record(store, _burst(BASE_TIME, 2, module=Module.CYBER, source="plc-1", severity=Severity.CRITICAL))
    everything = _all(store)
    assert [i.start for i in everything] == sorted((i.start for i in everything), reverse=True)
    assert len(everything) == 4
    assert len(_all(store, module=Module.ENERGY)) == 3
    assert [i.severity for i in _all(store, min_severity=Severity.HIGH)] == [Severity.HIGH, Severity.CRITICAL]
    # overlap: ending at or after since, starting before until
    window = _all(store, since=BASE_TIME + timedelta(minutes=1), until=BASE_TIME + timedelta(hours=1))
    assert {i.severity for i in window} == {Severity.LOW, Severity.CRITICAL}
    assert len(_all(store, state=IncidentState.ACTIVE_UNACKNOWLEDGED)) == 2  # the last energy one, cyber
    with pytest.raises(InvalidInputError) as error:
        store.find(IncidentQuery(cursor="not-a-cursor!"))
    assert error.value.field == "cursor"
    with pytest.raises(InvalidInputError) as error:
        store.find(IncidentQuery(since=BASE_TIME.replace(tzinfo=UTC)))
    assert error.value.field == "since"


def check_unknown_ids_and_bad_input_store_nothing(store: Store) -> None:
    with pytest.raises(NotFoundError, match="nope"):
        store.get("nope")
    with pytest.raises(NotFoundError):
        store.act("nope", IncidentAction.ACKNOWLEDGE, "ana", NOW)
    _record(store, _burst(BASE_TIME, 1))
    (incident,) = _all(store)
    for action, kw, field in (
        (IncidentAction.ACKNOWLEDGE, {"actor": "  "}, "actor"),
        (IncidentAction.SHELVE, {"minutes": 0}, "minutes"),
        (IncidentAction.COMMENT, {"text": " "}, "text"),
    ):
        with pytest.raises(InvalidInputError) as error:
            store.act(incident.id, action, kw.pop("actor", "ana"), NOW, **kw)
        assert error.value.field == field
    assert len(store.get(incident.id).history) == 1
    with pytest.raises(InvalidInputError):
        store.record(Module.ENERGY, "meter-1", [], POLICY, BASE_TIME.replace(tzinfo=UTC), NOW)
    bad = make_anomaly(BASE_TIME + timedelta(hours=5), score=float("nan"))
    with pytest.raises(InvalidInputError):
        _record(store, [bad])
    assert _all(store) == [incident]


def check_events_fill_the_outbox_once(store: Store) -> None:
    _record(store, _burst(BASE_TIME, 2, severity=Severity.LOW), notify=[HOOK, "mqtt"])
    escalation = _record(
        store,
        [make_anomaly(BASE_TIME + timedelta(minutes=3), severity=Severity.CRITICAL, score=20.0)],
        notify=[HOOK, "mqtt"],
    )
    assert [e.kind for e in escalation.events] == [IncidentEventKind.ESCALATED]
    assert store.get(escalation.incidents[0].id).history[-1].detail == "low -> critical"
    assert store.pending() == 4
    claimed = store.claim_due(NOW, 10, timedelta(seconds=30))
    assert len(claimed) == 4
    assert {n.target for n in claimed} == {HOOK, "mqtt"}
    payloads = [json.loads(n.payload) for n in claimed]
    to_hook = [p for n, p in zip(claimed, payloads, strict=True) if n.target == HOOK]
    assert [p["event"] for p in to_hook] == ["opened", "escalated"]
    assert payloads[0]["incident"]["severity"] == "low"
    # leased: a second dispatcher gets none of them until the lease ends
    assert store.claim_due(NOW, 10, timedelta(seconds=30)) == []
    store.delivered(claimed[0].id, NOW)
    store.failed(claimed[1].id, "HTTP 500", NOW + timedelta(seconds=5))
    store.failed(claimed[2].id, "HTTP 410", None)
    assert store.pending() == 2
    retried = store.claim_due(NOW + timedelta(seconds=5), 10, timedelta(seconds=30))
    assert [n.id for n in retried] == [claimed[1].id]
    assert retried[0].attempts == 1
    assert [n.id for n in store.claim_due(NOW + timedelta(minutes=1), 10, timedelta(seconds=30))] == [
        claimed[1].id,
        claimed[3].id,
    ]
    # nothing new to say: a replay enqueues nothing
    _record(store, _burst(BASE_TIME, 2, severity=Severity.LOW), notify=[HOOK, "mqtt"])
    assert store.pending() == 2


def check_on_delay_holds_back_short_incidents(store: Store) -> None:
    held = IncidentPolicy(gap=timedelta(minutes=10), on_delay_windows=3)

    def record(anomalies: list[Anomaly], observed_until: datetime | None = None) -> Any:
        first = anomalies[0]
        until = observed_until or max(a.window_end for a in anomalies)
        return store.record(first.module, first.source, anomalies, held, until, NOW, notify=[HOOK])

    burst = _burst(BASE_TIME, 3, severity=Severity.MEDIUM)
    assert record(burst[:2]).events == []
    assert _all(store) == []  # not an alarm yet
    (pending,) = _all(store, state=IncidentState.PENDING)
    assert pending.window_count == 2 and _all(store, include_unannunciated=True) == [pending]
    with pytest.raises(InvalidTransitionError):
        store.act(pending.id, IncidentAction.ACKNOWLEDGE, "ana", NOW)
    with pytest.raises(InvalidTransitionError):
        store.act(pending.id, IncidentAction.SHELVE, "ana", NOW, minutes=5)
    assert [e.kind for e in record(burst[2:]).events] == [IncidentEventKind.OPENED]
    (annunciated,) = _all(store)
    assert annunciated.id == pending.id and annunciated.state is IncidentState.ACTIVE_UNACKNOWLEDGED
    assert [h.action for h in store.get(annunciated.id).history] == [IncidentAction.OPEN]

    blip = [make_anomaly(BASE_TIME, source="blip", severity=Severity.HIGH)]
    assert record(blip, observed_until=BASE_TIME + timedelta(hours=1)).events == []
    (suppressed,) = _all(store, state=IncidentState.SUPPRESSED)
    assert suppressed.source == "blip" and len(_all(store)) == 1
    assert record(blip).incidents == []  # a replay changes nothing
    later = make_anomaly(BASE_TIME + timedelta(hours=2), source="blip", severity=Severity.HIGH)
    record([later])
    assert len(_all(store, source="blip", include_unannunciated=True)) == 2  # suppressed is not reopened

    critical = [make_anomaly(BASE_TIME, source="spike", severity=Severity.CRITICAL)]
    assert [e.kind for e in record(critical).events] == [IncidentEventKind.OPENED]
    assert _all(store, source="spike")[0].state is IncidentState.ACTIVE_UNACKNOWLEDGED
    assert store.pending() == 2  # a notification for each annunciated incident, none for the others


def check_a_shelved_incident_escalates_without_notifying(store: Store) -> None:
    _record(store, _burst(BASE_TIME, 2, severity=Severity.LOW), notify=[HOOK])
    (incident,) = _all(store)
    store.act(incident.id, IncidentAction.SHELVE, "ana", NOW, minutes=60)
    escalation = make_anomaly(BASE_TIME + timedelta(minutes=3), severity=Severity.HIGH)
    assert _record(store, [escalation], notify=[HOOK]).events == []
    assert store.get(incident.id).history[-1].action is IncidentAction.ESCALATE
    assert store.pending() == 1  # the opening only


CONTRACT: list[Callable[[Store], None]] = [
    check_nearby_anomalies_form_one_incident_and_a_gap_starts_another,
    check_replays_are_idempotent_and_batches_group_as_one,
    check_same_readings_give_the_same_incident_ids,
    check_sources_group_apart,
    check_lifecycle_and_audit,
    check_clearing_follows_the_state,
    check_find_filters_and_pages,
    check_unknown_ids_and_bad_input_store_nothing,
    check_events_fill_the_outbox_once,
    check_on_delay_holds_back_short_incidents,
    check_a_shelved_incident_escalates_without_notifying,
]
CONTRACT_IDS = [check.__name__.removeprefix("check_") for check in CONTRACT]
