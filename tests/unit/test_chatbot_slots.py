"""Slot parsing: time phrases resolved against a fixed now, sensors from the models' feature lists."""

from datetime import datetime, time

import pytest

from plantwatch.domain.anomaly import Severity
from plantwatch.domain.modules import Module
from plantwatch.services.chatbot import SlotParser
from plantwatch.services.chatbot.slots import parse_time
from tests.chatbot.fixture_store import FEATURE_NAMES

NOW = datetime(2024, 3, 14, 12, 0)  # a Thursday


def d(text: str) -> datetime:
    return datetime.fromisoformat(text)


@pytest.mark.parametrize(
    ("phrase", "start", "end"),
    [
        ("what went wrong in the last 24 h", "2024-03-13 12:00", None),
        ("anomalies over the past 3 days", "2024-03-11 12:00", None),
        ("in the last hour", "2024-03-14 11:00", None),
        ("the last 30 minutes", "2024-03-14 11:30", None),
        ("past week", "2024-03-07 12:00", None),
        ("today", "2024-03-14 00:00", "2024-03-15 00:00"),
        ("yesterday", "2024-03-13 00:00", "2024-03-14 00:00"),
        ("the day before yesterday", "2024-03-12 00:00", "2024-03-13 00:00"),
        ("this week", "2024-03-11 00:00", "2024-03-18 00:00"),
        ("last week", "2024-03-04 00:00", "2024-03-11 00:00"),
        ("since Monday", "2024-03-11 00:00", None),
        ("since yesterday", "2024-03-13 00:00", None),
        ("on Tuesday", "2024-03-12 00:00", "2024-03-13 00:00"),
        ("on thursday", "2024-03-14 00:00", "2024-03-15 00:00"),
        ("last thursday", "2024-03-07 00:00", "2024-03-08 00:00"),
        ("on 2024-03-09", "2024-03-09 00:00", "2024-03-10 00:00"),
        ("since 2024-03-01", "2024-03-01 00:00", None),
        ("on March 12", "2024-03-12 00:00", "2024-03-13 00:00"),
        ("12th march", "2024-03-12 00:00", "2024-03-13 00:00"),
        ("on December 24", "2023-12-24 00:00", "2023-12-25 00:00"),
        ("this month", "2024-03-01 00:00", None),
        ("last month", "2024-02-01 00:00", "2024-03-01 00:00"),
        ("last night", "2024-03-13 18:00", "2024-03-14 06:00"),
        ("this morning", "2024-03-14 00:00", "2024-03-14 12:00"),
    ],
)
def test_time_phrases_resolve_against_now(phrase: str, start: str, end: str | None) -> None:
    ranges, _, _ = parse_time(phrase, NOW)
    assert len(ranges) == 1, ranges
    assert ranges[0].start == d(start)
    assert ranges[0].end == (d(end) if end else None)


def test_two_periods_keep_their_order() -> None:
    ranges, _, _ = parse_time("compare this week with last week", NOW)
    assert [r.start for r in ranges] == [d("2024-03-11 00:00"), d("2024-03-04 00:00")]


def test_previous_and_following_periods() -> None:
    (today,), _, _ = parse_time("today", NOW)
    (yesterday,), _, _ = parse_time("yesterday", NOW)
    assert (today.previous(NOW).start, today.previous(NOW).end) == (yesterday.start, yesterday.end)
    assert (yesterday.following(NOW).start, yesterday.following(NOW).end) == (today.start, today.end)
    assert yesterday.following(NOW).label.startswith("today")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("why was the anomaly at 10:32 flagged", time(10, 32)),
        ("what happened around 9:05", time(9, 5)),
        ("at 10:32:15", time(10, 32, 15)),
        ("at 3 pm", time(15, 0)),
        ("at 12 am", time(0, 0)),
        ("at 25:10", None),
        ("in the last 24 h", None),
    ],
)
def test_time_of_day(text: str, expected: time | None) -> None:
    _, at_time, _ = parse_time(text, NOW)
    assert at_time == expected


def test_a_day_and_a_time_together_name_one_moment() -> None:
    slots = SlotParser(FEATURE_NAMES).parse("why was the anomaly yesterday at 10:32 flagged", NOW)
    assert slots.at_time == time(10, 32)
    assert slots.at_date == d("2024-03-13 00:00").date()
    iso = SlotParser(FEATURE_NAMES).parse("explain 2024-03-12T03:00", NOW)
    assert (iso.at_date, iso.at_time) == (d("2024-03-12 00:00").date(), time(3, 0))


def test_sensors_come_from_the_feature_lists_and_imply_their_module() -> None:
    parser = SlotParser(FEATURE_NAMES)
    slots = parser.parse("is p101 involved in any anomaly", NOW)
    assert slots.features == ("P101",)
    assert slots.modules == (Module.CYBER,)
    spaced = parser.parse("anything about usage kwh or Spindle-RPM?", NOW)
    assert spaced.features == ("usage_kwh", "spindle_rpm")
    # temperature_c is a feature of two modules: the module stays open
    assert parser.parse("is temperature_c involved", NOW).modules == ()


def test_an_unknown_tag_is_still_a_sensor_slot() -> None:
    assert SlotParser(FEATURE_NAMES).parse("is P999 involved", NOW).features == ("P999",)
    assert SlotParser({}).parse("is LIT101 involved", NOW).features == ("LIT101",)


def test_feature_words_do_not_count_as_module_words() -> None:
    # "power_kw" holds "power" (an energy word) and "spindle_rpm" holds "spindle" (a machine word)
    parser = SlotParser({Module.CYBER: ["power_kw", "spindle_rpm"]})
    assert parser.parse("is power_kw involved", NOW).modules == (Module.CYBER,)
    assert parser.parse("energy and machine anomalies", NOW).modules == (Module.ENERGY, Module.MACHINE)


@pytest.mark.parametrize(
    ("text", "severity"),
    [
        ("critical anomalies", Severity.CRITICAL),
        ("high severity alerts", Severity.HIGH),
        ("any severe incidents", Severity.HIGH),
        ("medium ones", Severity.MEDIUM),
        ("high vibration anomalies", None),
    ],
)
def test_severity(text: str, severity: Severity | None) -> None:
    assert SlotParser(FEATURE_NAMES).parse(text, NOW).min_severity == severity


def test_anomaly_id_and_ordinal() -> None:
    parser = SlotParser(FEATURE_NAMES)
    slots = parser.parse("explain 2754DAAF-6eb6-535e-9df4-120f7406f844 please", NOW)
    assert slots.anomaly_id == "2754daaf-6eb6-535e-9df4-120f7406f844"
    assert slots.features == ()
    assert parser.parse("explain the second one", NOW).ordinal == 1
    assert parser.parse("why the 3rd anomaly?", NOW).ordinal == 2


def test_follow_up_slots_override_only_what_they_name() -> None:
    parser = SlotParser(FEATURE_NAMES)
    first = parser.parse("critical energy anomalies yesterday", NOW)
    second = parser.parse("what about cyber?", NOW).over(first)
    assert second.modules == (Module.CYBER,)
    assert second.min_severity == Severity.CRITICAL
    assert second.time_range == first.time_range
