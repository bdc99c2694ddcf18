"""The questions issue 14 found answered wrongly, as regression tests.

Each expected figure is computed here from the fixture tables with plain Python, not taken from the chatbot.
"""

import re
from datetime import datetime, timedelta
from typing import Any

import pytest

from plantwatch.domain.anomaly import Anomaly, Severity
from plantwatch.domain.modules import Module
from plantwatch.services.chatbot import ChatbotService, Intent, RuleBasedIntentClassifier, TimeAnchor
from tests.chatbot.fixture_store import FEATURE_NAMES, NOW, build_store
from tests.chatbot.replay_store import build_replay_store
from tests.fakes import InMemoryAnomalyRepository

Store = tuple[InMemoryAnomalyRepository, dict[str, Anomaly]]


@pytest.fixture
def store() -> Store:
    return build_store()


def ask(repository: InMemoryAnomalyRepository, question: str, **kwargs: Any) -> Any:
    bot = ChatbotService(RuleBasedIntentClassifier(), FEATURE_NAMES, clock=lambda: NOW, **kwargs)
    return bot.answer(repository, question)


def of_module(fixture: dict[str, Anomaly], module: Module) -> list[Anomaly]:
    return [a for a in fixture.values() if a.module is module]


def test_highest_score_in_a_module(store: Store) -> None:
    repository, fixture = store
    best = max(of_module(fixture, Module.CYBER), key=lambda a: a.score)
    reply = ask(repository, "What was the highest anomaly score in cyber?")
    assert reply.intent is Intent.HIGHEST_SCORE
    assert (reply.facts["anomaly_id"], reply.facts["score"]) == (best.id, best.score)
    assert reply.cited_anomaly_ids == [best.id]


def test_first_anomaly_of_a_module(store: Store) -> None:
    repository, fixture = store
    oldest = min(of_module(fixture, Module.CYBER), key=lambda a: a.window_end)
    reply = ask(repository, "When was the first cyber anomaly?")
    assert reply.intent is Intent.FIRST_ANOMALY
    assert reply.facts["time"] == oldest.window_end.isoformat()
    assert reply.cited_anomaly_ids == [oldest.id]


def test_share_of_a_severity(store: Store) -> None:
    repository, fixture = store
    machine = of_module(fixture, Module.MACHINE)
    critical = [a for a in machine if a.severity is Severity.CRITICAL]
    reply = ask(repository, "What share of machine anomalies are critical?")
    assert reply.intent is Intent.SHARE
    assert (reply.facts["part"], reply.facts["total"]) == (len(critical), len(machine))
    assert reply.facts["share_pct"] == round(100 * len(critical) / len(machine), 1)
    assert sorted(reply.cited_anomaly_ids) == sorted(a.id for a in critical)


def test_last_n_anomalies(store: Store) -> None:
    repository, fixture = store
    newest = sorted(of_module(fixture, Module.MACHINE), key=lambda a: a.window_end, reverse=True)[:3]
    reply = ask(repository, "Show me the last 3 machine anomalies")
    assert reply.intent is Intent.LATEST_ANOMALY
    assert [a["anomaly_id"] for a in reply.facts["anomalies"]] == [a.id for a in newest]
    assert reply.cited_anomaly_ids == [a.id for a in newest]


def test_a_severity_list_counts_every_severity_named(store: Store) -> None:
    repository, fixture = store
    serious = [
        a for a in of_module(fixture, Module.CYBER) if a.severity in (Severity.HIGH, Severity.CRITICAL)
    ]
    reply = ask(repository, "How many high or critical anomalies in cyber?")
    assert reply.intent is Intent.LIST_ANOMALIES
    assert reply.facts["count"] == len(serious)
    assert reply.facts["severities"] == ["critical", "high"]
    assert "high or critical" in reply.interpretation


def test_compare_two_modules(store: Store) -> None:
    repository, fixture = store
    reply = ask(repository, "Compare the number of anomalies in energy and cyber")
    assert reply.intent is Intent.COMPARE_MODULES
    assert reply.facts["counts"] == {
        "energy": len(of_module(fixture, Module.ENERGY)),
        "cyber": len(of_module(fixture, Module.CYBER)),
    }


def test_an_explicit_clock_range_is_counted_not_the_whole_day() -> None:
    repository, anomalies = build_replay_store()
    start, end = datetime(2015, 12, 28, 10, 17), datetime(2015, 12, 28, 10, 18)
    serious = [
        a
        for a in anomalies
        if a.module is Module.CYBER
        and start <= a.window_end < end
        and a.severity in (Severity.HIGH, Severity.CRITICAL)
    ]
    reply = ask(
        repository, "How many high or critical cyber anomalies between 10:17 and 10:18 on 2015-12-28?"
    )
    assert reply.facts["count"] == len(serious)
    assert (reply.facts["since"], reply.facts["until"]) == (start.isoformat(), end.isoformat())
    assert "2015-12-28 10:17" in reply.interpretation


def test_a_named_month_is_that_month() -> None:
    repository, anomalies = build_replay_store()
    december = [a for a in anomalies if a.window_end.year == 2015 and a.window_end.month == 12]
    reply = ask(repository, "how many cyber anomalies in December 2015")
    assert reply.facts["count"] == len(december)
    assert reply.facts["since"] == "2015-12-01T00:00:00"
    assert reply.facts["until"] == "2016-01-01T00:00:00"


def test_the_second_one_explains_the_second_anomaly_listed(store: Store) -> None:
    repository, fixture = store
    newest = sorted(of_module(fixture, Module.MACHINE), key=lambda a: a.window_end, reverse=True)
    bot = ChatbotService(RuleBasedIntentClassifier(), FEATURE_NAMES, clock=lambda: NOW)
    first = bot.answer(repository, "Show me the last 3 machine anomalies")
    second = bot.answer(repository, "the second one", first.conversation_id)
    assert second.intent is Intent.EXPLAIN_ANOMALY
    assert second.facts["anomaly_id"] == newest[1].id


@pytest.mark.parametrize(
    ("question", "days_back"),
    [("how many anomalies yesterdy", 1), ("how many anomlies last wek", None)],
)
def test_typos_in_time_words(store: Store, question: str, days_back: int | None) -> None:
    repository, fixture = store
    midnight = datetime.combine(NOW.date(), datetime.min.time())
    if days_back is not None:
        start, end = midnight - timedelta(days=days_back), midnight
    else:
        monday = midnight - timedelta(days=NOW.weekday())
        start, end = monday - timedelta(days=7), monday
    expected = [a for a in fixture.values() if start <= a.window_end < end]
    reply = ask(repository, question)
    assert reply.intent is Intent.LIST_ANOMALIES
    assert reply.facts["count"] == len(expected)


def test_trend_question(store: Store) -> None:
    repository, fixture = store
    start = NOW - timedelta(days=7)
    days = [
        sum(
            1
            for a in of_module(fixture, Module.CYBER)
            if start + timedelta(days=i) <= a.window_end < start + timedelta(days=i + 1)
        )
        for i in range(7)
    ]
    reply = ask(repository, "Is the number of cyber anomalies going up?")
    assert reply.intent is Intent.TREND
    assert reply.facts["counts"] == days
    # least squares by hand: x = 0..6
    mean = sum(days) / 7
    slope = sum((x - 3) * (c - mean) for x, c in enumerate(days)) / 28
    expected = "flat" if abs(6 * slope) < max(1, 0.2 * mean) else "rising" if slope > 0 else "falling"
    assert reply.facts["direction"] == expected


def test_an_out_of_scope_question_gives_no_figures(store: Store) -> None:
    repository, _ = store
    reply = ask(repository, "What is the weather tomorrow?")
    assert reply.intent is Intent.UNKNOWN
    assert reply.cited_anomaly_ids == []
    assert "count" not in reply.facts
    figures = re.sub(r'"[^"]*"', "", reply.answer)  # example questions quoted in the help text aside
    assert not re.search(r"\d", figures), reply.answer


def test_the_time_anchor_is_per_module() -> None:
    repository, anomalies = build_replay_store()
    newest_cyber = max(a.window_end for a in anomalies if a.module is Module.CYBER)
    anchor = newest_cyber + timedelta(seconds=1)
    expected = [
        a for a in anomalies if a.module is Module.CYBER and anchor - timedelta(hours=24) <= a.window_end
    ]
    reply = ask(repository, "how many cyber anomalies in the last 24 hours", anchor=TimeAnchor.LATEST)
    assert reply.facts["count"] == len(expected) > 0
    assert reply.query["now"] == anchor.isoformat()
    energy = ask(repository, "how many energy anomalies in the last 24 hours", anchor=TimeAnchor.LATEST)
    assert energy.facts["count"] == 1  # the energy data ends in 2018: its own last day


def test_follow_ups_why_then_another_period_then_another_module(store: Store) -> None:
    repository, fixture = store
    bot = ChatbotService(RuleBasedIntentClassifier(), FEATURE_NAMES, clock=lambda: NOW)
    first = bot.answer(repository, "how many critical anomalies today")
    why = bot.answer(repository, "why?", first.conversation_id)
    assert why.intent is Intent.EXPLAIN_ANOMALY
    assert why.facts["anomaly_id"] == first.anomalies[0].id
    midnight = datetime.combine(NOW.date(), datetime.min.time())
    monday = midnight - timedelta(days=NOW.weekday())
    last_week = [a for a in fixture.values() if monday - timedelta(days=7) <= a.window_end < monday]
    again = bot.answer(repository, "what about last week?", first.conversation_id)
    assert again.intent is Intent.LIST_ANOMALIES
    assert again.facts["count"] == sum(a.severity is Severity.CRITICAL for a in last_week)
    machine = bot.answer(repository, "and in machine?", first.conversation_id)
    assert machine.facts["module"] == "machine"
    assert machine.facts["since"] == (monday - timedelta(days=7)).isoformat()


@pytest.mark.parametrize(
    ("question", "unread"),
    [
        ("how many anomalies on 2024-13-45", "2024-13-45"),
        ("explain the anomaly at 25:10", "25:10"),
        ("how many anomalies on march 45", "march 45"),
    ],
)
def test_a_time_it_cannot_read_is_said_not_dropped(store: Store, question: str, unread: str) -> None:
    """Counting the whole store for an unreadable date would answer another question."""
    reply = ask(store[0], question)
    assert reply.intent is Intent.UNKNOWN
    assert reply.facts["reason"] == "unsure"
    assert unread in reply.answer
    assert reply.cited_anomaly_ids == []
