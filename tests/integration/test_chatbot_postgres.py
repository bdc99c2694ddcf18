"""The chatbot's counts, rankings and histograms through the SQL store on a real PostgreSQL."""

from collections.abc import Iterator
from datetime import datetime, time, timedelta

import pytest
from sqlalchemy import Engine

from plantwatch.adapters.storage import SqlAnomalyRepository, create_engine_from_url, create_schema
from plantwatch.domain.modules import Module
from plantwatch.services.chatbot import ChatbotService, Intent, RuleBasedIntentClassifier
from tests.chatbot.fixture_store import FEATURE_NAMES
from tests.chatbot.generator import NOW, build_generated_anomalies, check_reply, generate

pytestmark = pytest.mark.integration


@pytest.fixture
def engine(postgres_url: str) -> Iterator[Engine]:
    engine = create_engine_from_url(postgres_url)
    create_schema(engine)
    yield engine
    engine.dispose()


def test_generated_questions_on_postgres(engine: Engine) -> None:
    anomalies = build_generated_anomalies()
    repository = SqlAnomalyRepository(engine)
    repository.add_many(anomalies)
    bot = ChatbotService(RuleBasedIntentClassifier(), FEATURE_NAMES, clock=lambda: NOW)
    questions = generate(anomalies, count=200, seed=77)
    failures = []
    for question in questions:
        reply = bot.answer(repository, question.text)
        problems = check_reply(question, reply.intent.value, reply.facts, reply.cited_anomaly_ids)
        if problems:
            failures.append((question.text, problems))
    assert len(failures) <= 0.02 * len(questions), failures[:10]
    trend = bot.answer(repository, "is the number of machine anomalies going up this week?")
    assert trend.intent is Intent.TREND
    monday = datetime.combine(NOW.date(), time(0)) - timedelta(days=NOW.weekday())
    per_day = [
        sum(
            1
            for a in anomalies
            if a.module is Module.MACHINE
            and monday + timedelta(days=i) <= a.window_end < monday + timedelta(days=i + 1)
        )
        for i in range(7)
    ]
    assert trend.facts["counts"] == per_day
    assert sum(per_day) > 0
