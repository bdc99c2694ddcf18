"""The chatbot's incident answers through the SQL incident store on a real PostgreSQL, against the fake's."""

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from plantwatch.adapters.storage import (
    SqlIncidentRepository,
    create_engine_from_url,
    create_incident_schema,
    create_schema,
)
from plantwatch.domain.incidents import IncidentAction
from plantwatch.domain.modules import Module
from tests.chatbot.fixture_store import build_store
from tests.fakes import InMemoryIncidentRepository
from tests.unit.test_chatbot_incidents import build_incidents, chatbot, open_ids

pytestmark = pytest.mark.integration


@pytest.fixture
def engine(postgres_url: str) -> Iterator[Engine]:
    engine = create_engine_from_url(postgres_url)
    create_schema(engine)
    create_incident_schema(engine)
    yield engine
    engine.dispose()


def test_incident_answers_on_postgres_match_the_fake_scenario(engine: Engine) -> None:
    anomalies, _ = build_store()
    fake, ids = build_incidents(InMemoryIncidentRepository())
    store, sql_ids = build_incidents(SqlIncidentRepository(engine))
    assert sql_ids == ids  # incident ids are derived from their first anomaly, the same in both stores
    bot = chatbot()
    opened = bot.answer(anomalies, "what is open?", incidents=store)
    assert set(opened.cited_incident_ids) == open_ids(fake)
    in_machine = bot.answer(anomalies, "and in machine?", opened.conversation_id, incidents=store)
    assert set(in_machine.cited_incident_ids) == open_ids(fake, Module.MACHINE)
    counted = bot.answer(anomalies, "how many incidents in machine last week?", incidents=store)
    assert set(counted.cited_incident_ids) == {ids["machine_resolved"], ids["machine_last_week"]}
    acknowledged = bot.answer(
        anomalies, "who acknowledged the last cyber incident yesterday?", incidents=store
    )
    history = fake.get(ids["cyber_yesterday"]).history
    acknowledgement = next(e for e in history if e.action is IncidentAction.ACKNOWLEDGE)
    assert acknowledged.facts["actor"] == acknowledgement.actor == "alice"
    assert acknowledged.facts["acknowledged_at"] == acknowledgement.at.isoformat()
