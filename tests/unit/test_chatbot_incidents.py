"""The chatbot on incidents: open ones, counts, who acknowledged, follow-ups, and no incident store wired.

The store is the in-memory fake filled through its own `record` and `act`; every expected answer is worked
out from the fake's incidents and audit log directly, not through the chatbot's queries.
"""

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import TypeVar

import pytest
from fastapi.testclient import TestClient

from plantwatch.bootstrap import Container
from plantwatch.domain.anomaly import Severity
from plantwatch.domain.incidents import IncidentAction, IncidentPolicy, IncidentState
from plantwatch.domain.modules import Module
from plantwatch.domain.ports import IncidentRepository
from plantwatch.services.chatbot import ChatbotService, Intent, RuleBasedIntentClassifier
from plantwatch.services.incidents import IncidentTracking
from plantwatch.settings import Settings
from tests.chatbot.fixture_store import FEATURE_NAMES, NOW, build_store
from tests.fakes import InMemoryAnomalyRepository, InMemoryIncidentRepository, make_anomaly
from tests.unit.test_chatbot_api import app_with

IncidentStore = TypeVar("IncidentStore", bound=IncidentRepository)
POLICY = IncidentPolicy(gap=timedelta(minutes=10), on_delay_windows=1)
# name: (module, source, first window_end, windows, severity, main cause)
INCIDENTS = {
    "cyber_today": (Module.CYBER, "swat", datetime(2024, 3, 14, 9, 0), 2, Severity.HIGH, "P101"),
    "cyber_yesterday": (Module.CYBER, "swat-2", datetime(2024, 3, 13, 10, 0), 1, Severity.CRITICAL, "LIT101"),
    "cyber_old": (Module.CYBER, "swat", datetime(2024, 3, 6, 10, 0), 1, Severity.MEDIUM, "FIT101"),
    "machine_resolved": (
        Module.MACHINE,
        "press-2",
        datetime(2024, 3, 5, 8, 0),
        3,
        Severity.HIGH,
        "current_a",
    ),
    "machine_last_week": (
        Module.MACHINE,
        "press-2",
        datetime(2024, 3, 7, 14, 0),
        1,
        Severity.LOW,
        "vibration_mm_s",
    ),
    "machine_this_week": (
        Module.MACHINE,
        "press-3",
        datetime(2024, 3, 12, 6, 0),
        2,
        Severity.HIGH,
        "spindle_rpm",
    ),
}


def build_incidents(store: IncidentStore) -> tuple[IncidentStore, dict[str, str]]:
    """The scenario above recorded into `store` (the fake, or a SQL store in the integration test)."""
    ids: dict[str, str] = {}
    for name, (module, source, first, windows, severity, cause) in sorted(
        INCIDENTS.items(), key=lambda item: item[1][2]
    ):
        anomalies = [
            make_anomaly(
                first + timedelta(minutes=k),
                module=module,
                source=source,
                severity=severity,
                features=(cause, "other"),
            )
            for k in range(windows)
        ]
        result = store.record(module, source, anomalies, POLICY, anomalies[-1].window_end, first)
        # the result also holds the source's older incident this grouping cleared
        ids[name] = next(i.id for i in result.incidents if i.start == first)
    # the readings went on past the gap: every incident but today's clears
    for module, source in {(m, s) for m, s, *_ in INCIDENTS.values()}:
        store.record(
            module, source, [], POLICY, NOW if source != "swat" else datetime(2024, 3, 14, 9, 5), NOW
        )
    store.act(ids["cyber_yesterday"], IncidentAction.ACKNOWLEDGE, "alice", datetime(2024, 3, 13, 10, 30))
    store.act(ids["cyber_old"], IncidentAction.RESOLVE, "bob", datetime(2024, 3, 6, 11, 0))
    store.act(ids["machine_resolved"], IncidentAction.RESOLVE, "bob", datetime(2024, 3, 5, 9, 0))
    return store, ids


@pytest.fixture
def stores() -> tuple[InMemoryAnomalyRepository, InMemoryIncidentRepository, dict[str, str]]:
    anomalies, _ = build_store()
    incidents, ids = build_incidents(InMemoryIncidentRepository())
    return anomalies, incidents, ids


def chatbot() -> ChatbotService:
    return ChatbotService(RuleBasedIntentClassifier(), FEATURE_NAMES, clock=lambda: NOW)


def open_ids(store: InMemoryIncidentRepository, module: Module | None = None) -> set[str]:
    return {
        i.id
        for i in store.incidents.values()
        if i.state is not IncidentState.CLOSED
        and i.state.annunciated
        and (module is None or i.module is module)
    }


def test_the_scenario_has_open_closed_and_acknowledged_incidents(
    stores: tuple[InMemoryAnomalyRepository, InMemoryIncidentRepository, dict[str, str]],
) -> None:
    _, incidents, ids = stores
    states = {name: incidents.incidents[ids[name]].state for name in ids}
    assert states["cyber_today"] is IncidentState.ACTIVE_UNACKNOWLEDGED
    assert states["cyber_yesterday"] is IncidentState.CLOSED  # cleared, then acknowledged
    assert states["cyber_old"] is IncidentState.CLOSED
    assert states["machine_resolved"] is IncidentState.CLOSED
    assert states["machine_last_week"] is IncidentState.CLEARED_UNACKNOWLEDGED


@pytest.mark.parametrize("question", ["what is open?", "which incidents are open?"])
def test_what_is_open_lists_every_incident_not_closed(
    stores: tuple[InMemoryAnomalyRepository, InMemoryIncidentRepository, dict[str, str]], question: str
) -> None:
    anomalies, incidents, _ = stores
    reply = chatbot().answer(anomalies, question, incidents=incidents)
    expected = open_ids(incidents)
    assert reply.intent is Intent.OPEN_INCIDENTS
    assert reply.facts["count"] == len(expected)
    assert set(reply.cited_incident_ids) == expected
    assert {line["incident_id"] for line in reply.facts["incidents"]} == expected
    for line in reply.facts["incidents"]:
        incident = incidents.incidents[line["incident_id"]]
        assert line["state"] == incident.state.value
        assert line["severity"] == incident.severity.value
        assert line["start"] == incident.start.isoformat()
        assert line["top_cause"] == incident.causes[0].feature
        assert incident.id in reply.answer and incident.causes[0].feature in reply.answer


def test_open_in_cyber_then_follow_up_in_machine(
    stores: tuple[InMemoryAnomalyRepository, InMemoryIncidentRepository, dict[str, str]],
) -> None:
    anomalies, incidents, ids = stores
    bot = chatbot()
    first = bot.answer(anomalies, "which incidents are open in cyber?", incidents=incidents)
    assert first.intent is Intent.OPEN_INCIDENTS
    assert set(first.cited_incident_ids) == open_ids(incidents, Module.CYBER)
    assert ids["cyber_old"] not in first.cited_incident_ids
    assert "open incidents; cyber" in first.interpretation
    follow = bot.answer(anomalies, "and in machine?", first.conversation_id, incidents=incidents)
    assert follow.intent is Intent.OPEN_INCIDENTS
    assert set(follow.cited_incident_ids) == open_ids(incidents, Module.MACHINE)
    assert follow.facts["module"] == "machine"


def test_how_many_incidents_in_machine_last_week(
    stores: tuple[InMemoryAnomalyRepository, InMemoryIncidentRepository, dict[str, str]],
) -> None:
    anomalies, incidents, ids = stores
    bot = chatbot()
    reply = bot.answer(anomalies, "how many incidents in machine last week?", incidents=incidents)
    monday, previous_monday = datetime(2024, 3, 11), datetime(2024, 3, 4)
    expected = {
        i.id
        for i in incidents.incidents.values()
        if i.module is Module.MACHINE and i.start < monday and i.end >= previous_monday
    }
    assert expected == {ids["machine_resolved"], ids["machine_last_week"]}
    assert reply.intent is Intent.COUNT_INCIDENTS
    assert reply.facts["count"] == 2
    assert set(reply.cited_incident_ids) == expected
    assert reply.facts["by_state"] == {"closed": 1, "cleared_unacknowledged": 1}
    assert reply.answer.startswith("2 incidents in machine last week")
    follow = bot.answer(anomalies, "and in cyber?", reply.conversation_id, incidents=incidents)
    assert follow.intent is Intent.COUNT_INCIDENTS
    assert set(follow.cited_incident_ids) == {ids["cyber_old"]}


def test_nobody_acknowledged_the_last_cyber_incident(
    stores: tuple[InMemoryAnomalyRepository, InMemoryIncidentRepository, dict[str, str]],
) -> None:
    anomalies, incidents, ids = stores
    reply = chatbot().answer(anomalies, "who acknowledged the last cyber incident?", incidents=incidents)
    assert not any(e.action is IncidentAction.ACKNOWLEDGE for e in incidents.get(ids["cyber_today"]).history)
    assert reply.intent is Intent.INCIDENT_ACKNOWLEDGER
    assert reply.facts["acknowledged"] is False
    assert reply.facts["actor"] is None
    assert reply.facts["incident"]["incident_id"] == ids["cyber_today"]
    assert reply.cited_incident_ids == [ids["cyber_today"]]
    assert "not been acknowledged by anyone" in reply.answer


def test_who_acknowledged_names_the_actor_and_time_from_the_audit_log(
    stores: tuple[InMemoryAnomalyRepository, InMemoryIncidentRepository, dict[str, str]],
) -> None:
    anomalies, incidents, ids = stores
    acknowledged_at = datetime(2024, 3, 14, 9, 30, 12)
    incidents.act(ids["cyber_today"], IncidentAction.ACKNOWLEDGE, "carol", acknowledged_at)
    bot = chatbot()
    reply = bot.answer(anomalies, "who acknowledged the last cyber incident?", incidents=incidents)
    assert reply.facts["acknowledged"] is True
    assert reply.facts["actor"] == "carol"
    assert reply.facts["acknowledged_at"] == acknowledged_at.isoformat()
    assert "carol" in reply.answer and "2024-03-14 09:30:12" in reply.answer
    follow = bot.answer(anomalies, "and in machine?", reply.conversation_id, incidents=incidents)
    assert follow.intent is Intent.INCIDENT_ACKNOWLEDGER
    assert follow.facts["incident"]["incident_id"] == ids["machine_this_week"]
    assert follow.facts["acknowledged"] is False


def test_without_an_incident_store_the_answer_says_so_without_figures(
    stores: tuple[InMemoryAnomalyRepository, InMemoryIncidentRepository, dict[str, str]],
) -> None:
    anomalies, _, _ = stores
    bot = chatbot()
    for question in (
        "what is open?",
        "how many incidents in machine last week?",
        "who acked the last incident?",
    ):
        reply = bot.answer(anomalies, question)
        assert reply.facts["incident_store"] is False
        assert reply.cited_incident_ids == []
        assert "No incident store" in reply.answer
        answer_only = reply.answer.split(" (Read as:")[0]
        assert not any(ch.isdigit() for ch in answer_only), reply.answer


def test_anomaly_questions_keep_their_intents() -> None:
    rules = RuleBasedIntentClassifier()
    assert rules.classify("any critical incidents today?")[0] is Intent.LIST_ANOMALIES
    assert rules.classify("what was the last incident")[0] is Intent.LATEST_ANOMALY
    assert rules.classify("how many anomalies were there this week")[0] is Intent.LIST_ANOMALIES


@pytest.fixture
def client_and_ids() -> Iterator[tuple[TestClient, InMemoryIncidentRepository]]:
    anomalies, _ = build_store()
    incidents, _ = build_incidents(InMemoryIncidentRepository())
    container = Container(
        settings=Settings(chatbot_embeddings=False),
        repository=anomalies,
        models={},
        incidents=IncidentTracking(incidents, {}),
    )
    with TestClient(app_with(container, chatbot())) as client:
        yield client, incidents


def test_open_incidents_over_http(client_and_ids: tuple[TestClient, InMemoryIncidentRepository]) -> None:
    client, incidents = client_and_ids
    response = client.post("/chatbot/query", json={"question": "which incidents are open in cyber?"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["intent"] == "open_incidents"
    assert set(body["cited_incident_ids"]) == open_ids(incidents, Module.CYBER)
    assert body["facts"]["count"] == len(open_ids(incidents, Module.CYBER))
    follow = client.post(
        "/chatbot/query", json={"question": "and in machine?", "conversation_id": body["conversation_id"]}
    )
    assert set(follow.json()["cited_incident_ids"]) == open_ids(incidents, Module.MACHINE)
