"""The chatbot on questions generated from a grammar, with answers computed independently of it.

The tuning split is the one whose failures were looked at while building the chatbot; the held-back split
was only ever run for the score (see tests/chatbot/generator.py).
"""

from collections import Counter

import pytest

from plantwatch.services.chatbot import ChatbotService, RuleBasedIntentClassifier
from tests.chatbot.fixture_store import FEATURE_NAMES
from tests.chatbot.generator import (
    HELD_BACK,
    NOW,
    TUNING,
    GeneratedQuestion,
    build_generated_store,
    check_reply,
    generate,
    split_questions,
)
from tests.fakes import InMemoryAnomalyRepository

TARGET = 0.98


@pytest.fixture(scope="module")
def generated() -> tuple[InMemoryAnomalyRepository, list[GeneratedQuestion]]:
    repository, anomalies = build_generated_store()
    return repository, generate(anomalies)


def test_the_grammar_covers_every_operation_and_both_splits_are_large(
    generated: tuple[InMemoryAnomalyRepository, list[GeneratedQuestion]],
) -> None:
    _, questions = generated
    held_back = list(split_questions(questions, HELD_BACK))
    assert len(held_back) >= 300
    assert len(list(split_questions(questions, TUNING))) >= 300
    assert set(Counter(q.operation for q in held_back)) == {
        "list_anomalies",
        "latest_anomaly",
        "first_anomaly",
        "highest_score",
        "lowest_score",
        "share",
        "compare_modules",
        "top_root_cause",
    }
    # the answers are not trivially empty: most questions have something to count
    counted = [q for q in questions if "count" in q.expected]
    assert sum(q.expected["count"] > 0 for q in counted) > 0.5 * len(counted)


@pytest.mark.parametrize("split", [TUNING, HELD_BACK])
def test_generated_questions_are_answered_correctly(
    generated: tuple[InMemoryAnomalyRepository, list[GeneratedQuestion]], split: str
) -> None:
    repository, questions = generated
    bot = ChatbotService(RuleBasedIntentClassifier(), FEATURE_NAMES, clock=lambda: NOW)
    chosen = list(split_questions(questions, split))
    failures = []
    for question in chosen:
        reply = bot.answer(repository, question.text)
        problems = check_reply(question, reply.intent.value, reply.facts, reply.cited_anomaly_ids)
        if problems:
            failures.append((question.text, problems))
    assert len(failures) <= (1 - TARGET) * len(chosen), failures[:20]
