"""Typed queries over the AnomalyRepository port and the figures the chatbot derives from their results."""

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, time, timedelta

from plantwatch.domain.anomaly import Anomaly, Severity
from plantwatch.domain.modules import Module
from plantwatch.domain.ports import AnomalyQuery, AnomalyRepository

PAGE_SIZE = 500


@dataclass(frozen=True)
class Fetched:
    """Anomalies newest first. truncated: the store holds more than the cap, so counts are lower bounds."""

    anomalies: list[Anomaly]
    truncated: bool


def fetch(repository: AnomalyRepository, query: AnomalyQuery, cap: int) -> Fetched:
    """Every anomaly matching `query` (its limit is ignored), newest first, up to `cap`."""
    collected: list[Anomaly] = []
    cursor: str | None = None
    while True:
        page = repository.find(replace(query, limit=min(PAGE_SIZE, cap - len(collected) + 1), cursor=cursor))
        collected.extend(page.items)
        if len(collected) > cap:
            return Fetched(collected[:cap], truncated=True)
        if page.next_cursor is None:
            return Fetched(collected, truncated=False)
        if len(collected) == cap:
            return Fetched(collected, truncated=True)
        cursor = page.next_cursor


def latest(repository: AnomalyRepository, module: Module | None = None) -> Anomaly | None:
    page = repository.find(AnomalyQuery(module=module, limit=1))
    return page.items[0] if page.items else None


def at_minute(
    repository: AnomalyRepository, module: Module | None, moment: datetime, tolerance: timedelta
) -> list[Anomaly]:
    """Anomalies flagged within the minute of `moment`; failing that, the nearest ones within `tolerance`."""
    minute = moment.replace(second=0, microsecond=0)
    exact = repository.find(
        AnomalyQuery(module=module, since=minute, until=minute + timedelta(minutes=1))
    ).items
    if exact:
        return exact
    near = repository.find(
        AnomalyQuery(module=module, since=moment - tolerance, until=moment + tolerance)
    ).items
    if not near:
        return []
    closest = min(abs(a.window_end - moment) for a in near)
    return [a for a in near if abs(a.window_end - moment) == closest]


def at_time_of_day(
    repository: AnomalyRepository, module: Module | None, clock_time: time, before: datetime, cap: int
) -> list[Anomaly]:
    """The most recent anomalies, at or before `before`, flagged in the minute `clock_time` of whatever day.

    For a question naming only a time of day ("the anomaly at 10:32") on replayed historical data, where that
    minute of today holds nothing.
    """
    recent = fetch(repository, AnomalyQuery(module=module, until=before), cap).anomalies
    for anomaly in recent:
        if (anomaly.window_end.hour, anomaly.window_end.minute) == (clock_time.hour, clock_time.minute):
            day = anomaly.window_end.replace(second=0, microsecond=0)
            return [a for a in recent if a.window_end.replace(second=0, microsecond=0) == day]
    return []


def score_ratio(anomaly: Anomaly) -> float:
    return anomaly.score / anomaly.threshold if anomaly.threshold > 0 else float("inf")


def most_severe_first(anomalies: Iterable[Anomaly]) -> list[Anomaly]:
    return sorted(anomalies, key=lambda a: (a.severity.rank, score_ratio(a), a.window_end), reverse=True)


def count_by_module(anomalies: Sequence[Anomaly]) -> dict[str, int]:
    counts = Counter(a.module.value for a in anomalies)
    return {module.value: counts.get(module.value, 0) for module in Module}


def count_by_severity(anomalies: Sequence[Anomaly]) -> dict[str, int]:
    counts = Counter(a.severity.value for a in anomalies)
    return {severity.value: counts.get(severity.value, 0) for severity in Severity}


def top_causes(anomalies: Sequence[Anomaly]) -> list[tuple[str, int]]:
    """How often each feature is an anomaly's main root cause; most often first, then by name."""
    counts = Counter(a.top_feature for a in anomalies if a.top_feature is not None)
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))


def timeline(
    anomalies: Sequence[Anomaly], start: datetime | None, end: datetime | None
) -> list[dict[str, object]]:
    """Counts per hour (ranges up to two days) or per day, oldest first, with empty buckets included."""
    if not anomalies:
        return []
    first = start if start is not None else min(a.window_end for a in anomalies)
    last = end if end is not None else max(a.window_end for a in anomalies)
    hourly = last - first <= timedelta(days=2)
    step = timedelta(hours=1) if hourly else timedelta(days=1)

    def bucket(moment: datetime) -> datetime:
        if hourly:
            return moment.replace(minute=0, second=0, microsecond=0)
        return datetime.combine(moment.date(), time(0))

    counts = Counter(bucket(a.window_end) for a in anomalies)
    buckets: list[dict[str, object]] = []
    current, stop = bucket(first), bucket(max(last, max(counts)))
    while current <= stop and len(buckets) < 24 * 62:
        buckets.append({"bucket": current.isoformat(), "count": counts.get(current, 0)})
        current += step
    return buckets
