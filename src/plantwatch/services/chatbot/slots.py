"""Slots: what a question names besides its intent (module, time range, time of day, sensors, severity, id).

Time phrases resolve against an explicit `now` (naive, plant local time, like every timestamp in the store),
so the same question gives the same range in tests. Ranges are half-open [start, end); end None means "up to
now". The phrases are a small closed grammar (relative ranges, calendar periods, weekdays, dates, times of
day): a generic date parser gives one instant per phrase, while the chatbot needs the period it covers.
"""

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta

from plantwatch.domain.anomaly import Severity
from plantwatch.domain.modules import Module
from plantwatch.services.chatbot.dates import Moment, Precision, parse_moment


@dataclass(frozen=True)
class TimeRange:
    start: datetime | None
    end: datetime | None
    label: str

    def single_day(self) -> date | None:
        """The day this range covers when it is exactly one calendar day ("yesterday", "on 2024-03-12")."""
        if self.start is None or self.end is None or self.start.time() != time(0):
            return None
        return self.start.date() if self.end - self.start == timedelta(days=1) else None

    def previous(self, now: datetime) -> "TimeRange":
        """The period of the same length just before this one: yesterday for today, last week for this."""
        if self.start is None:
            raise ValueError("an unbounded range has no previous period")
        end = self.end if self.end is not None else now
        length = end - self.start
        start = self.start - length
        return TimeRange(start, self.start, f"in the period before ({_fmt(start)} to {_fmt(self.start)})")

    def following(self, now: datetime) -> "TimeRange":
        """The period of the same length just after this one: today for yesterday, this week for last week."""
        if self.start is None or self.end is None:
            raise ValueError("an open range has no following period")
        length = self.end - self.start
        end = self.end + length
        today = _midnight(now)
        if length == timedelta(days=1) and self.end == today:
            return _day(today.date(), "today")
        monday = today - timedelta(days=now.weekday())
        if length == timedelta(days=7) and self.end == monday:
            return TimeRange(monday, end, f"this week (since Monday {monday.date().isoformat()})")
        return TimeRange(self.end, end, f"from {_fmt(self.end)} to {_fmt(end)}")


@dataclass(frozen=True)
class Slots:
    modules: tuple[Module, ...] = ()
    time_ranges: tuple[TimeRange, ...] = ()
    at_time: time | None = None
    at_date: date | None = None
    features: tuple[str, ...] = ()
    severities: frozenset[Severity] = frozenset()
    """The severities asked for; empty: any. "high" means high or worse, "high or medium" exactly those."""
    anomaly_id: str | None = None
    ordinal: int | None = None
    """0-based position in the previous answer's list ("the second one" is 1)."""
    limit: int | None = None
    """How many anomalies a "last 3" / "top 5" asks for."""
    future: bool = False
    """The question names a time that has not come yet ("tomorrow", "next week")."""
    unread_time: str | None = None
    """A time phrase the parser could not read ("2024-13-45", "at 25:10"): answering without it would
    answer another question."""

    @property
    def min_severity(self) -> Severity | None:
        """The lowest severity asked for, when the set is "that severity or worse"; None otherwise."""
        if not self.severities:
            return None
        lowest = min(self.severities, key=lambda s: s.rank)
        return lowest if self.severities == at_least(lowest) else None

    @property
    def module(self) -> Module | None:
        return self.modules[0] if len(self.modules) == 1 else None

    @property
    def time_range(self) -> TimeRange | None:
        return self.time_ranges[0] if self.time_ranges else None

    @property
    def feature(self) -> str | None:
        return self.features[0] if self.features else None

    def is_empty(self) -> bool:
        return self == Slots()

    def over(self, previous: "Slots") -> "Slots":
        """These slots on top of a previous turn's: what this turn names wins, the rest carries over."""
        merged = previous
        for name in ("modules", "time_ranges", "features", "severities"):
            if getattr(self, name):
                merged = replace(merged, **{name: getattr(self, name)})
        for name in ("at_time", "at_date", "anomaly_id", "ordinal", "limit"):
            if getattr(self, name) is not None:
                merged = replace(merged, **{name: getattr(self, name)})
        if self.time_ranges and self.at_time is None:
            # A new period replaces the old point in time, or the old time of day would still narrow it.
            merged = replace(merged, at_time=None, at_date=None)
        return replace(merged, future=self.future, unread_time=self.unread_time)


def at_least(severity: Severity) -> frozenset[Severity]:
    return frozenset(s for s in Severity if s.rank >= severity.rank)


_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_MONTH_NAMES = (
    r"(january|february|march|april|may|june|july|august|september|october|november|december"
    r"|jan|feb|mar|apr|jun|jul|aug|sept|sep|oct|nov|dec)\.?"
)
_NUMBER_WORDS = {
    "a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "couple of": 2, "few": 3,
}  # fmt: skip
_UNITS = {
    "min": timedelta(minutes=1), "minute": timedelta(minutes=1), "h": timedelta(hours=1),
    "hr": timedelta(hours=1), "hour": timedelta(hours=1), "d": timedelta(days=1), "day": timedelta(days=1),
    "w": timedelta(weeks=1), "wk": timedelta(weeks=1), "week": timedelta(weeks=1),
    "month": timedelta(days=30),
}  # fmt: skip

_MODULE_WORDS: dict[Module, re.Pattern[str]] = {
    Module.ENERGY: re.compile(r"\b(energy|electric\w*|power|consumption|grid|kwh)\b"),
    Module.MACHINE: re.compile(r"\b(machines?|machinery|mechanical|equipment|motors?|spindles?|bearings?)\b"),
    Module.CYBER: re.compile(
        r"\b(cyber\w*|security|network|intrusions?|attacks?|swat|water treatment|scada)\b"
    ),
}
_SEVERITY_NAMES = "low|medium|high|critical"
# "high or critical", "medium, high and critical": exactly the severities listed.
_SEVERITY_LIST = re.compile(
    rf"\b({_SEVERITY_NAMES})((?:\s*,\s*|\s*,?\s+(?:or|and|and/or|&)\s+)(?:{_SEVERITY_NAMES}))+\b"
)
# One severity named: that one or worse ("high" includes critical), except "low", which means low only.
_SEVERITY_WORDS: tuple[tuple[Severity, re.Pattern[str]], ...] = (
    (Severity.CRITICAL, re.compile(r"\bcritical\b")),
    (
        Severity.HIGH,
        re.compile(
            r"\bhigh[- ](severity|priority)\b|\bseverity (is |of )?high\b|\b(severe|serious|major)\b"
            r"|\bhigh (anomal\w*|alerts?|incidents?|ones|events?|alarms?)\b|\bhigh\b(?=\s*\??$)"
        ),
    ),
    (Severity.MEDIUM, re.compile(r"\bmedium\b|\bmoderate\b")),
    (
        Severity.LOW,
        re.compile(
            r"\blow[- ](severity|priority)\b|\bseverity (is |of )?low\b"
            r"|\blow (anomal\w*|alerts?|incidents?|ones|events?|alarms?)\b|\bminor\b"
        ),
    ),
)
_EXACTLY = re.compile(r"\b(only|exactly|just|strictly)\s+(?:the\s+)?$")


_ONLY_ONE = re.compile(rf"\b(?:only|exactly|just|strictly)\s+(?:the\s+)?({_SEVERITY_NAMES})\b")


def parse_severities(text: str) -> frozenset[Severity]:
    listed = _SEVERITY_LIST.search(text)
    if listed is not None:
        return frozenset(Severity(word) for word in re.findall(_SEVERITY_NAMES, listed.group(0)))
    only = _ONLY_ONE.search(text)
    if only is not None:
        return frozenset({Severity(only.group(1))})
    for severity, pattern in _SEVERITY_WORDS:
        match = pattern.search(text)
        if match is not None:
            exact = severity is Severity.LOW or _EXACTLY.search(text[: match.start()]) is not None
            return frozenset({severity}) if exact else at_least(severity)
    return frozenset()


_UUID = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b")
_ORDINAL = re.compile(
    r"\b(first|second|third|fourth|fifth|1st|2nd|3rd|4th|5th)\b(?=\s+(one|anomal|alert|of them)|\s*\??$)"
)
_ORDINALS = {
    "first": 0, "1st": 0, "second": 1, "2nd": 1, "third": 2, "3rd": 2, "fourth": 3, "4th": 3,
    "fifth": 4, "5th": 4,
}  # fmt: skip
# A tag such as P101, LIT101 or FIT-201: how plant sensors are named when no model lists them.
_TAG = re.compile(r"\b[A-Z]{1,4}[-_]?\d{2,4}[A-Z]?\b")

_N = r"(\d+|" + "|".join(sorted(_NUMBER_WORDS, key=len, reverse=True)) + r")"
_UNIT = r"(minutes?|mins?|hours?|hrs?|h|days?|d|weeks?|wks?|w|months?)"
_ISO_DATE = r"(\d{4})-(\d{2})-(\d{2})"
_MONTH_DATE = _MONTH_NAMES + r"\s+(\d{1,2})(?:st|nd|rd|th)?(?:,?\s+(\d{4}))?"
_DAY_MONTH = r"(\d{1,2})(?:st|nd|rd|th)?\s+" + _MONTH_NAMES + r"(?:,?\s+(\d{4}))?"
_TIME_OF_DAY = re.compile(
    r"(?:\b(?:at|around|about|near)\s+|@\s*|\b)(\d{1,2}):(\d{2})(?::(\d{2}))?\s*(am|pm)?\b"
    r"|\b(?:at|around|about)\s+(\d{1,2})\s*(am|pm)\b"
)


# The times a question can name. Ranges are shifted by their own length (the period before, the period
# after) and widened by tolerances, so they stay well inside what a datetime can hold (years 1 to 9999).
EARLIEST = datetime(1900, 1, 1)
LATEST = datetime(2200, 1, 1)

# A regex match and `now` to the period it names; None when the match is not a valid period.
RangeBuilder = Callable[[re.Match[str], datetime], TimeRange | None]


def _blank(text: str, match: re.Match[str]) -> str:
    """`text` with the match's span replaced by spaces: later patterns cannot match it, positions stay put."""
    return text[: match.start()] + " " * (match.end() - match.start()) + text[match.end() :]


def _fmt(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M")


def _midnight(moment: datetime) -> datetime:
    return datetime.combine(moment.date(), time(0))


def _most_recent_weekday(now: datetime, name: str, strictly_before: bool = False) -> datetime:
    back = (now.weekday() - _WEEKDAYS.index(name)) % 7
    if back == 0 and strictly_before:
        back = 7
    return _midnight(now) - timedelta(days=back)


def _unit(word: str) -> timedelta:
    return _UNITS[word.rstrip("s")]


def _calendar_date(now: datetime, year: str | None, month: int, day: int) -> date | None:
    try:
        candidate = date(int(year) if year else now.year, month, day)
    except ValueError:
        return None
    if not EARLIEST <= datetime.combine(candidate, time(0)) < LATEST:
        return None  # outside the times a question can name: ignored, like 31 February
    if year is None and candidate > now.date():
        candidate = candidate.replace(year=now.year - 1)
    return candidate


def _day(day: date, label: str) -> TimeRange:
    start = datetime.combine(day, time(0))
    return TimeRange(start, start + timedelta(days=1), f"{label} ({day.isoformat()})")


class _RangeFinder:
    """Finds time phrases; a matched span is blanked so shorter phrases inside it do not match again."""

    def __init__(self, text: str, now: datetime) -> None:
        self.text = text
        self.now = now
        self.found: list[tuple[int, TimeRange]] = []
        self.at_time: time | None = None
        self.at_date: date | None = None

    def take(self, pattern: str, build: RangeBuilder) -> None:
        for match in list(re.finditer(pattern, self.text)):
            result = build(match, self.now)
            if result is not None:
                self.found.append((match.start(), result))
                self.text = _blank(self.text, match)

    def ranges(self) -> tuple[TimeRange, ...]:
        return tuple(r for _, r in sorted(self.found, key=lambda item: item[0]))


def _rolling(match: re.Match[str], now: datetime) -> TimeRange | None:
    which, amount, unit_word = match.group(1), match.group(2), match.group(3)
    unit = _unit(unit_word)
    if amount is None and which in ("last", "previous") and unit in (_UNITS["week"], _UNITS["month"]):
        return None  # calendar "last week" / "last month", handled by their own patterns
    count = 1 if amount is None else int(amount) if amount.isdigit() else _NUMBER_WORDS[amount]
    if count <= 0:
        return None
    # "the last 99999999 days" reaches back past any stored anomaly: it means since the earliest time
    start = EARLIEST if count > (now - EARLIEST) // unit else now - unit * count
    noun = unit_word if amount is None else f"{count} {unit_word}"
    return TimeRange(start, None, f"in the {which} {noun} (since {_fmt(start)})")


def _since(match: re.Match[str], now: datetime) -> TimeRange | None:
    target = match.group(1)
    if target in _WEEKDAYS:
        start = _most_recent_weekday(now, target)
    elif target == "yesterday":
        start = _midnight(now) - timedelta(days=1)
    elif target == "today" or target == "midnight":
        start = _midnight(now)
    else:
        return None
    name = target.capitalize() if target in _WEEKDAYS else target
    return TimeRange(start, None, f"since {name} ({_fmt(start)})")


def _named_period(match: re.Match[str], now: datetime) -> TimeRange | None:
    phrase = " ".join(match.group(0).split())
    today = _midnight(now)
    monday = today - timedelta(days=now.weekday())
    first_of_month = today.replace(day=1)
    if phrase == "today":
        return _day(today.date(), "today")
    if phrase == "yesterday":
        return _day((today - timedelta(days=1)).date(), "yesterday")
    if phrase == "day before yesterday":
        return _day((today - timedelta(days=2)).date(), "the day before yesterday")
    if phrase in ("this week", "the week"):
        return TimeRange(
            monday, monday + timedelta(days=7), f"this week (since Monday {monday.date().isoformat()})"
        )
    if phrase in ("last week", "previous week"):
        start = monday - timedelta(days=7)
        return TimeRange(
            start, monday, f"last week ({start.date().isoformat()} to {monday.date().isoformat()})"
        )
    if phrase == "this month":
        return TimeRange(first_of_month, None, f"this month (since {first_of_month.date().isoformat()})")
    if phrase in ("last month", "previous month"):
        start = (first_of_month - timedelta(days=1)).replace(day=1)
        return TimeRange(start, first_of_month, f"last month ({start.strftime('%Y-%m')})")
    if phrase == "this morning":
        return TimeRange(today, today + timedelta(hours=12), f"this morning ({today.date().isoformat()})")
    if phrase == "this afternoon":
        return TimeRange(today + timedelta(hours=12), today + timedelta(hours=18), "this afternoon")
    if phrase in ("this evening", "tonight"):
        return TimeRange(today + timedelta(hours=18), today + timedelta(days=1), "this evening")
    if phrase == "last night":
        return TimeRange(
            today - timedelta(hours=6), today + timedelta(hours=6), "last night (18:00 to 06:00)"
        )
    return None


def _weekday(match: re.Match[str], now: datetime) -> TimeRange | None:
    qualifier, name = match.group(1), match.group(2)
    start = _most_recent_weekday(now, name, strictly_before=qualifier == "last")
    return _day(start.date(), f"on {name.capitalize()}")


def _iso_date(match: re.Match[str], now: datetime) -> TimeRange | None:
    since = match.group(1) is not None
    day = _calendar_date(now, match.group(2), int(match.group(3)), int(match.group(4)))
    return _date_range(day, since)


def _month_date(match: re.Match[str], now: datetime) -> TimeRange | None:
    since = match.group(1) is not None
    month = _MONTHS.index(match.group(2)[:3]) + 1
    return _date_range(_calendar_date(now, match.group(4), month, int(match.group(3))), since)


def _day_month(match: re.Match[str], now: datetime) -> TimeRange | None:
    since = match.group(1) is not None
    month = _MONTHS.index(match.group(3)[:3]) + 1
    return _date_range(_calendar_date(now, match.group(4), month, int(match.group(2))), since)


def _date_range(day: date | None, since: bool) -> TimeRange | None:
    if day is None:
        return None
    start = datetime.combine(day, time(0))
    if since:
        return TimeRange(start, None, f"since {day.isoformat()}")
    return TimeRange(start, start + timedelta(days=1), f"on {day.isoformat()}")


def _month_start(year: int, month: int) -> datetime:
    return datetime(year, month, 1)


def _after(moment: Moment) -> datetime:
    """The end of the period a moment names: the next minute, day, month or year."""
    start = moment.start
    if moment.precision is Precision.MINUTE:
        return start + timedelta(minutes=1)
    if moment.precision is Precision.DAY:
        return start + timedelta(days=1)
    if moment.precision is Precision.MONTH:
        return _month_start(start.year + start.month // 12, start.month % 12 + 1)
    return datetime(start.year + 1, 1, 1)


_YEAR_IN = re.compile(r"\b(\d{4})\b")
_DATE_WORD = re.compile(r"\d|\b" + _MONTH_NAMES.removesuffix(r"\.?") + r"\b")


def _between(match: re.Match[str], now: datetime) -> TimeRange | None:
    """ "between X and Y", "from X to Y": X's start up to Y (a time of day: up to that minute; a day, month or
    year: up to its end). A bare time of day takes the other end's day."""
    first_text, second_text = match.group(1), match.group(2)
    if not (_DATE_WORD.search(first_text) and _DATE_WORD.search(second_text)):
        return None  # "between this week and last week" is two periods to compare, not one range
    year = _YEAR_IN.search(second_text)
    if (
        year is not None
        and _YEAR_IN.search(first_text) is None
        and not re.search(r"\d{1,2}:\d{2}", first_text)
    ):
        first_text = f"{first_text} {year.group(1)}"
    first, second = parse_moment(first_text, now), parse_moment(second_text, now)
    if first is None or second is None:
        return None
    if first.precision is Precision.MINUTE and not first.has_date and second.has_date:
        first = Moment(datetime.combine(second.start.date(), first.start.time()), first.precision, True)
    if second.precision is Precision.MINUTE and not second.has_date:
        second = Moment(datetime.combine(first.start.date(), second.start.time()), second.precision, True)
    start = first.start
    end = second.start if second.precision is Precision.MINUTE else _after(second)
    if end <= start or not EARLIEST <= start < LATEST:
        return None
    return TimeRange(start, end, f"between {_fmt(start)} and {_fmt(end)}")


def _named_month(match: re.Match[str], now: datetime) -> TimeRange | None:
    since, month_word, year = match.group(1), match.group(2), match.group(3)
    if month_word.startswith("may") and not (since or year):
        return None  # "may" alone is the verb
    month = _MONTHS.index(month_word[:3]) + 1
    start_year = int(year) if year else now.year if month <= now.month else now.year - 1
    if not 1900 <= start_year < 2200:
        return None
    start = _month_start(start_year, month)
    if since and since.strip() == "since":
        return TimeRange(start, None, f"since {start.strftime('%B %Y')}")
    end = _after(Moment(start, Precision.MONTH, True))
    return TimeRange(start, end, f"in {start.strftime('%B %Y')} ({start.date()} to {end.date()})")


def _named_year(match: re.Match[str], now: datetime) -> TimeRange | None:
    year = int(match.group(2))
    if not 1900 <= year < 2200:
        return None
    start = datetime(year, 1, 1)
    if match.group(1) == "since":
        return TimeRange(start, None, f"since {year}")
    return TimeRange(start, datetime(year + 1, 1, 1), f"in {year}")


_ENDPOINT = r"([\w:/.\- ]{1,40}?)"
_RANGE_PATTERNS: tuple[tuple[str, RangeBuilder], ...] = (
    (
        rf"\b(?:between|from)\s+{_ENDPOINT}\s+(?:and|to|until|till|through|-|–)\s+{_ENDPOINT}"
        r"\s*(?=$|[?!;,]|\.(?:\s|$)|\b(?:in|for|with|at|involving|are|is|were|was|had|have|by|than|compared)\b"
        r"(?!\s*\d))",
        _between,
    ),
    (rf"\b(since\s+)?{_ISO_DATE}(?:\b|t(?=\d))", _iso_date),
    (rf"\b(since\s+)?(?:on\s+)?{_MONTH_DATE}\b", _month_date),
    (rf"\b(since\s+)?(?:on\s+)?(?:the\s+)?{_DAY_MONTH}\b", _day_month),
    (r"\bsince\s+(" + "|".join((*_WEEKDAYS, "yesterday", "today", "midnight")) + r")\b", _since),
    (rf"\b(last|past|previous)\s+(?:{_N}\s*)?{_UNIT}\b", _rolling),
    (
        r"\b(day before yesterday|yesterday|today|this\s+week|the\s+week|last\s+week|previous\s+week|"
        r"this\s+month|last\s+month|previous\s+month|this\s+morning|this\s+afternoon|this\s+evening|tonight|last\s+night)\b",
        _named_period,
    ),
    (r"\b(on|last|this)?\s*(" + "|".join(_WEEKDAYS) + r")\b", _weekday),
    (
        # not "March 45": a day that is no date is left for the unread-time check
        rf"\b(in|during|for|over|of|since|throughout|whole)?\s*{_MONTH_NAMES}(?!\s+\d{{1,2}}(?:st|nd|rd|th)?\b)"
        r"(?:\s+(\d{4}))?\b",
        _named_month,
    ),
    (r"\b(in|during|for|of|since|throughout)\s+(\d{4})\b", _named_year),
)

_FUTURE = re.compile(
    r"\b(tomorrow|next\s+(week|month|year|hour|day|" + "|".join(_WEEKDAYS) + r")"
    r"|in the (next|coming)\s+\w+|will (there|it|we)\b|upcoming|forecast|predict\w*)"
)
_COUNT_WORDS = {
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
}
_LIMIT_N = r"(\d{1,3}|" + "|".join(_COUNT_WORDS) + r")"
_RANKED = (
    r"(?:last|latest|most recent|newest|recent|first|earliest|oldest|top|highest|lowest|biggest|largest"
    r"|smallest|worst)"
)
_LIMIT = re.compile(rf"\b{_RANKED}\s+{_LIMIT_N}\b|\b{_LIMIT_N}\s+{_RANKED}\b")


# What is left of a time phrase after every phrase the grammar reads has been blanked out.
_UNREAD_TIME = re.compile(
    r"\b\d{4}-\d{1,2}-\d{1,2}\b|\b\d{1,2}:\d{2}\b|\b\d{1,2}(st|nd|rd|th)\b"
    r"|\b(between|from)\s+[^?]*?\d[^?]*"
    r"|\b(january|february|march|april|june|july|august|september|october|november|december)\b[^?,.]*"
)


def parse_limit(text: str) -> int | None:
    """N of "the last 3 anomalies", "top 5", "3 most recent" (time spans are blanked out before)."""
    match = _LIMIT.search(text)
    if match is None:
        return None
    word = match.group(1) or match.group(2)
    count = int(word) if word.isdigit() else _COUNT_WORDS[word]
    return count if count > 0 else None


def parse_time(text: str, now: datetime) -> tuple[tuple[TimeRange, ...], time | None, str]:
    """Time ranges in order of mention, a time of day if one is named, and the text with them blanked."""
    finder = _RangeFinder(text.lower(), now)
    for pattern, build in _RANGE_PATTERNS:
        finder.take(pattern, build)
    at_time = None
    match = _TIME_OF_DAY.search(finder.text)
    if match is not None:
        at_time = _clock_time(match)
        if at_time is not None:
            finder.text = _blank(finder.text, match)
    return finder.ranges(), at_time, finder.text


def _clock_time(match: re.Match[str]) -> time | None:
    if match.group(1) is not None:
        hour, minute, second, half = (
            int(match.group(1)),
            int(match.group(2)),
            int(match.group(3) or 0),
            match.group(4),
        )
    else:
        hour, minute, second, half = int(match.group(5)), 0, 0, match.group(6)
    if half == "pm" and hour < 12:
        hour += 12
    elif half == "am" and hour == 12:
        hour = 0
    if hour > 23 or minute > 59 or second > 59:
        return None
    return time(hour, minute, second)


@dataclass
class SlotParser:
    """Reads slots from a question. Sensor names come from the loaded models' feature lists, per module."""

    feature_names: Mapping[Module, Sequence[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.feature_modules: dict[str, set[Module]] = {}
        for module, names in self.feature_names.items():
            for name in names:
                self.feature_modules.setdefault(name, set()).add(Module(module))
        self._by_lower = {name.lower(): name for name in self.feature_modules}
        alternatives = [
            r"[_\-\s]?".join(re.escape(part) for part in re.split(r"[_\-\s]+", name.lower()) if part)
            for name in sorted(self.feature_modules, key=len, reverse=True)
        ]
        self._feature_pattern = (
            re.compile(r"(?<![\w])(" + "|".join(alternatives) + r")(?![\w])") if alternatives else None
        )

    def parse(self, text: str, now: datetime) -> Slots:
        features, text_without_features = self._features(text)
        time_ranges, at_time, rest = parse_time(text_without_features, now)
        at_date = time_ranges[0].single_day() if at_time is not None and time_ranges else None
        anomaly_match = _UUID.search(text.lower())
        rest = _UUID.sub(" ", rest)
        ordinal_match = _ORDINAL.search(rest)
        unread = _UNREAD_TIME.search(rest)
        return Slots(
            modules=self._modules(rest, features),
            time_ranges=time_ranges,
            at_time=at_time,
            at_date=at_date,
            features=features,
            severities=parse_severities(rest),
            anomaly_id=anomaly_match.group(0) if anomaly_match else None,
            ordinal=_ORDINALS[ordinal_match.group(1)] if ordinal_match else None,
            limit=parse_limit(rest),
            future=_FUTURE.search(text.lower()) is not None,
            unread_time=" ".join(unread.group(0).split()) if unread else None,
        )

    def modules_of(self, feature: str) -> set[Module]:
        return self.feature_modules.get(feature, set())

    def _features(self, text: str) -> tuple[tuple[str, ...], str]:
        found: list[str] = []
        blanked = text
        if self._feature_pattern is not None:
            for match in self._feature_pattern.finditer(text.lower()):
                name = self._canonical(match.group(1))
                if name is not None and name not in found:
                    found.append(name)
                blanked = _blank(blanked, match)
        for match in _TAG.finditer(blanked):
            if match.group(0) not in found:
                found.append(match.group(0))
            blanked = _blank(blanked, match)
        return tuple(found), blanked

    def _canonical(self, written: str) -> str | None:
        squeezed = re.sub(r"[_\-\s]+", "", written)
        for lower, name in self._by_lower.items():
            if re.sub(r"[_\-\s]+", "", lower) == squeezed:
                return name
        return None

    def _modules(self, text: str, features: Sequence[str]) -> tuple[Module, ...]:
        named = [module for module, pattern in _MODULE_WORDS.items() if pattern.search(text)]
        # A configured module is also called by its own name ("the valve module").
        named += [
            Module(module)
            for module in self.feature_names
            if module not in _MODULE_WORDS and re.search(rf"\b{re.escape(str(module))}\b", text)
        ]
        if named:
            return tuple(named)
        # A sensor that only one module has tells which module is meant (P101 is a cyber tag).
        owners = {module for feature in features for module in self.modules_of(feature)}
        return (owners.pop(),) if len(owners) == 1 else ()
