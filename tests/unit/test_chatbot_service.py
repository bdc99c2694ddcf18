"""The chatbot service on the fixture store: the evaluation set, grounding, follow-ups, empty periods."""

import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import pytest

from plantwatch.domain.errors import InvalidInputError
from plantwatch.domain.modules import Module
from plantwatch.services.chatbot import (
    ChatbotService,
    ConversationMemory,
    Intent,
    RuleBasedIntentClassifier,
    TimeAnchor,
    ungrounded_numbers,
)
from tests.chatbot.evaluation import load_conversations, run_evaluation
from tests.chatbot.fixture_store import FEATURE_NAMES, NOW, build_store
from tests.fakes import InMemoryAnomalyRepository


@pytest.fixture
def store() -> tuple[InMemoryAnomalyRepository, dict[str, Any]]:
    return build_store()


def chatbot(**kwargs: Any) -> ChatbotService:
    return ChatbotService(RuleBasedIntentClassifier(), FEATURE_NAMES, clock=lambda: NOW, **kwargs)


def test_evaluation_set_with_keyword_rules(store: tuple[InMemoryAnomalyRepository, dict[str, Any]]) -> None:
    repository, fixture = store
    conversations = load_conversations(with_model=False)
    outcomes = list(run_evaluation(chatbot(), repository, fixture, conversations))
    assert len(outcomes) >= 60
    failures = [(o.question, o.problems) for o in outcomes if not o.correct]
    assert len(failures) <= 0.05 * len(outcomes), failures


def test_every_number_in_an_answer_comes_from_the_store(
    store: tuple[InMemoryAnomalyRepository, dict[str, Any]],
) -> None:
    """Numbers in the text are in the facts or in the cited anomalies (dates and times included)."""
    repository, fixture = store
    bot = chatbot()
    ids = {name: anomaly.id for name, anomaly in fixture.items()}
    checked = 0
    for conversation in load_conversations(with_model=False):
        conversation_id = None
        for turn in conversation:
            reply = bot.answer(repository, turn.question.format(**ids), conversation_id)
            conversation_id = reply.conversation_id
            if reply.intent in (Intent.HELP, Intent.UNKNOWN):
                continue  # the help text's numbers are in its example questions, not figures
            cited = [repository.get(i) for i in reply.cited_anomaly_ids]
            sources = json.dumps(reply.facts, default=str) + json.dumps(
                [
                    [a.window_end, a.score, a.threshold, a.source, a.model_version]
                    + [[c.contribution, c.observed, c.expected] for c in a.root_cause]
                    for a in cited
                ],
                default=str,
            )
            assert ungrounded_numbers(reply.answer, sources, {}) == [], (turn.question, reply.answer)
            checked += 1
    assert checked >= 60


def test_an_empty_period_says_so_and_names_the_latest_anomaly(
    store: tuple[InMemoryAnomalyRepository, dict[str, Any]],
) -> None:
    repository, fixture = store
    reply = chatbot().answer(repository, "what went wrong in energy last month")
    assert reply.intent is Intent.LIST_ANOMALIES
    assert reply.facts["count"] == 0
    assert "No anomalies in energy last month" in reply.answer
    assert "2024-03-14 10:15" in reply.answer
    assert reply.cited_anomaly_ids == [fixture["E1"].id]


def test_an_empty_store_answers_without_error() -> None:
    reply = chatbot().answer(InMemoryAnomalyRepository(), "summary across all modules")
    assert reply.facts["count"] == 0
    assert "holds no anomalies" in reply.answer
    assert reply.cited_anomaly_ids == []


def test_latest_anchor_counts_back_from_the_newest_anomaly(
    store: tuple[InMemoryAnomalyRepository, dict[str, Any]],
) -> None:
    repository, fixture = store
    years_later = NOW + timedelta(days=900)
    by_clock = ChatbotService(RuleBasedIntentClassifier(), FEATURE_NAMES, clock=lambda: years_later)
    assert by_clock.answer(repository, "how many anomalies in the last 24 h").facts["count"] == 0
    anchored = ChatbotService(
        RuleBasedIntentClassifier(), FEATURE_NAMES, clock=lambda: years_later, anchor=TimeAnchor.LATEST
    )
    # newest is M1 at 11:00 on the 14th: the last 24 h are the 13th 11:00:01 to the 14th 11:00:01
    reply = anchored.answer(repository, "how many anomalies in the last 24 h")
    assert reply.facts["count"] == 10
    assert fixture["M1"].id in reply.cited_anomaly_ids


def test_explaining_a_time_of_day_on_replayed_data_finds_that_time_on_an_earlier_day(
    store: tuple[InMemoryAnomalyRepository, dict[str, Any]],
) -> None:
    repository, fixture = store
    bot = ChatbotService(RuleBasedIntentClassifier(), FEATURE_NAMES, clock=lambda: NOW + timedelta(days=30))
    reply = bot.answer(repository, "why was the cyber anomaly at 10:32 flagged")
    assert reply.facts["anomaly_id"] == fixture["C1"].id


@pytest.mark.parametrize("question", ["", "   ", "x" * 501])
def test_empty_or_oversize_question_is_an_error_naming_the_field(
    store: tuple[InMemoryAnomalyRepository, dict[str, Any]], question: str
) -> None:
    with pytest.raises(InvalidInputError) as error:
        chatbot().answer(store[0], question)
    assert error.value.field == "question"


def test_follow_ups_stay_within_their_conversation(
    store: tuple[InMemoryAnomalyRepository, dict[str, Any]],
) -> None:
    repository, _ = store
    bot = chatbot()
    energy = bot.answer(repository, "what went wrong in energy yesterday")
    other = bot.answer(repository, "what went wrong in machine today")
    follow_up = bot.answer(repository, "and the day before yesterday?", energy.conversation_id)
    assert follow_up.facts["module"] == "energy"
    assert follow_up.facts["since"] == "2024-03-12T00:00:00"
    assert follow_up.facts["count"] == 2
    unrelated = bot.answer(repository, "and the day before yesterday?", "fresh-conversation")
    assert unrelated.intent is not Intent.LIST_ANOMALIES or unrelated.facts.get("module") != "energy"
    assert other.conversation_id != energy.conversation_id


def test_memory_forgets_the_oldest_and_the_expired() -> None:
    clock = [0.0]
    memory = ConversationMemory(max_conversations=2, ttl_seconds=10, monotonic=lambda: clock[0])
    bot = chatbot(memory=memory)
    repository, _ = build_store()
    for name in ("a", "b", "c"):
        bot.answer(repository, "summary for today", name)
    assert memory.recall("a") is None
    assert memory.recall("c") is not None
    clock[0] = 11.0
    assert memory.recall("c") is None


class ScriptedRephraser:
    def __init__(self, text: str | None) -> None:
        self.text = text
        self.calls: list[tuple[str, str, Mapping[str, Any]]] = []

    def rephrase(self, question: str, answer: str, facts: Mapping[str, Any]) -> str | None:
        self.calls.append((question, answer, facts))
        return self.text


def test_a_rephrasing_with_only_grounded_numbers_is_used(
    store: tuple[InMemoryAnomalyRepository, dict[str, Any]],
) -> None:
    rephraser = ScriptedRephraser(
        "Energy had 3 anomalies in the last 24 hours, mostly from usage_kwh (2 of them)."
    )
    reply = chatbot(rephraser=rephraser).answer(store[0], "what went wrong in energy in the last 24 h")
    assert reply.rephrased
    assert reply.answer.startswith("Energy had 3 anomalies")
    assert rephraser.calls[0][2]["count"] == 3


@pytest.mark.parametrize(
    "invented",
    [
        "Energy had 4 anomalies in the last 24 hours.",
        "Energy had three anomalies, about 12.5% more than usual.",
        "Energy had a dozen anomalies.",
    ],
)
def test_a_rephrasing_with_an_invented_number_falls_back_to_the_template(
    store: tuple[InMemoryAnomalyRepository, dict[str, Any]], invented: str
) -> None:
    reply = chatbot(rephraser=ScriptedRephraser(invented)).answer(
        store[0], "what went wrong in energy in the last 24 h"
    )
    assert not reply.rephrased
    assert reply.answer.startswith("3 anomalies in energy in the last 24 h")


def test_a_failed_rephrasing_keeps_the_template(
    store: tuple[InMemoryAnomalyRepository, dict[str, Any]],
) -> None:
    reply = chatbot(rephraser=ScriptedRephraser(None)).answer(store[0], "summary across all modules")
    assert not reply.rephrased
    assert reply.answer.startswith("Summary for all modules")


def test_grounding_check_allows_rounding_only_to_the_written_precision() -> None:
    facts = {"score": 3.14159, "count": 12}
    assert ungrounded_numbers("score 3.1, 12 anomalies, twelve in all", "", facts) == []
    assert ungrounded_numbers("score 3.2", "", facts) == ["3.2"]
    assert ungrounded_numbers("13 anomalies", "", facts) == ["13"]


def test_counts_come_from_the_store_beyond_the_citation_cap(
    store: tuple[InMemoryAnomalyRepository, dict[str, Any]],
) -> None:
    """Issue 14: counts are counted by the store, so a citation cap no longer turns them into lower bounds
    (this test used to assert "at least 5"); only the citations are capped, and the facts say so."""
    reply = chatbot(cite_cap=5).answer(store[0], "how many anomalies this week")
    assert reply.facts["count"] == 17
    assert reply.facts["cited_all"] is False
    assert len(reply.cited_anomaly_ids) == 5
    assert reply.answer.startswith("17 anomalies")


def test_feature_names_decide_which_sensors_are_known(
    store: tuple[InMemoryAnomalyRepository, dict[str, Any]],
) -> None:
    bot = chatbot()
    assert bot.answer(store[0], "is P101 involved").facts["known_feature"] is True
    bot.use_feature_names({Module.ENERGY: ["usage_kwh"]})
    assert bot.answer(store[0], "is P101 involved").facts["known_feature"] is False
    assert bot.feature_names == {Module.ENERGY: ["usage_kwh"]}


def test_naive_clock_is_used_as_is_and_an_aware_one_converted(
    store: tuple[InMemoryAnomalyRepository, dict[str, Any]],
) -> None:
    aware = NOW.astimezone()
    bot = ChatbotService(RuleBasedIntentClassifier(), FEATURE_NAMES, clock=lambda: aware)
    assert bot.answer(store[0], "how many anomalies today").facts["since"] == "2024-03-14T00:00:00"
    assert isinstance(datetime.now(), datetime)
