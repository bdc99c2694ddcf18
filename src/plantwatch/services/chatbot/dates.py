"""Free-form dates and times ("28 Dec 2015 10:17", "10:17", "March 5th", "December 2015") with dateparser.

dateparser turns a phrase into one instant and says how precise the phrase was (a time, a day, a month, a
year); the chatbot needs the period a phrase covers, so `parse_moment` returns both and the slot grammar
decides the span.
"""

import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from functools import lru_cache

from dateparser.date import DateDataParser

# A phrase names a time of day when it has hh:mm or an am/pm hour.
_HAS_TIME = re.compile(r"\d{1,2}:\d{2}|\b\d{1,2}\s*(am|pm)\b", re.IGNORECASE)
_HAS_DAY = re.compile(r"\b\d{1,2}(st|nd|rd|th)?\b(?!:)|\d{4}-\d{2}-\d{2}|/", re.IGNORECASE)
_ONLY_YEAR = re.compile(r"^\s*\d{4}\s*$")


class Precision(StrEnum):
    MINUTE = "minute"
    DAY = "day"
    MONTH = "month"
    YEAR = "year"


@dataclass(frozen=True)
class Moment:
    start: datetime
    precision: Precision
    has_date: bool
    """False for a bare time of day ("10:17"): the caller decides which day it is."""


def parse_moment(phrase: str, now: datetime) -> Moment | None:
    """The start of the period `phrase` names, relative to `now` (earlier dates preferred); None if none."""
    phrase = phrase.strip(" ,.?!")
    if not phrase or not re.search(r"\d|[a-z]{3}", phrase, re.IGNORECASE):
        return None
    if _ONLY_YEAR.match(phrase):
        return Moment(datetime(int(phrase), 1, 1), Precision.YEAR, True)
    try:
        data = _parse(phrase, now)
    except (ValueError, OverflowError):
        return None
    if data is None:
        return None
    parsed, period = data
    has_time = _HAS_TIME.search(phrase) is not None
    if has_time:
        moment = parsed.replace(second=0, microsecond=0)
        has_date = re.search(r"[a-z]{3}|\d{4}|/", _HAS_TIME.sub(" ", phrase), re.IGNORECASE) is not None
        return Moment(moment, Precision.MINUTE, has_date)
    midnight = parsed.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "year":
        return Moment(midnight.replace(month=1, day=1), Precision.YEAR, True)
    if period == "month" and _HAS_DAY.search(phrase) is None:
        return Moment(midnight.replace(day=1), Precision.MONTH, True)
    return Moment(midnight, Precision.DAY, True)


@lru_cache(maxsize=64)
def _parser(now: datetime) -> DateDataParser:
    # English only: detecting the language of every phrase is what makes dateparser slow.
    settings = {
        "RELATIVE_BASE": now,
        "PREFER_DATES_FROM": "past",
        "RETURN_AS_TIMEZONE_AWARE": False,
        "PREFER_DAY_OF_MONTH": "first",
    }
    return DateDataParser(languages=["en"], settings=settings)


def _parse(phrase: str, now: datetime) -> tuple[datetime, str] | None:
    data = _parser(now).get_date_data(phrase)
    if data.date_obj is None:
        return None
    return data.date_obj, str(data.period or "day")
