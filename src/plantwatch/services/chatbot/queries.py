"""Reads of anomalies (not counts) the answers need beyond one AnomalyRepository call: every match up to a
cap, and the anomalies at a time of day."""

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, time, timedelta

from plantwatch.domain.anomaly import Anomaly
from plantwatch.domain.modules import Module
from plantwatch.domain.ports import AnomalyQuery, AnomalyRepository
from plantwatch.services.chatbot.facts import score_ratio

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


def latest(repository: AnomalyRepository, modules: frozenset[Module] | None = None) -> Anomaly | None:
    page = repository.find(AnomalyQuery(modules=modules, limit=1))
    return page.items[0] if page.items else None


def at_minute(
    repository: AnomalyRepository, modules: frozenset[Module] | None, moment: datetime, tolerance: timedelta
) -> list[Anomaly]:
    """Anomalies flagged within the minute of `moment`; failing that, the nearest ones within `tolerance`."""
    minute = moment.replace(second=0, microsecond=0)
    exact = repository.find(
        AnomalyQuery(modules=modules, since=minute, until=minute + timedelta(minutes=1))
    ).items
    if exact:
        return exact
    near = repository.find(
        AnomalyQuery(modules=modules, since=moment - tolerance, until=moment + tolerance)
    ).items
    if not near:
        return []
    closest = min(abs(a.window_end - moment) for a in near)
    return [a for a in near if abs(a.window_end - moment) == closest]


def at_time_of_day(
    repository: AnomalyRepository,
    modules: frozenset[Module] | None,
    clock_time: time,
    before: datetime,
    cap: int,
) -> list[Anomaly]:
    """The most recent anomalies, at or before `before`, flagged in the minute `clock_time` of whatever day.

    For a question naming only a time of day ("the anomaly at 10:32") on replayed historical data, where that
    minute of today holds nothing.
    """
    recent = fetch(repository, AnomalyQuery(modules=modules, until=before), cap).anomalies
    for anomaly in recent:
        if (anomaly.window_end.hour, anomaly.window_end.minute) == (clock_time.hour, clock_time.minute):
            day = anomaly.window_end.replace(second=0, microsecond=0)
            return [a for a in recent if a.window_end.replace(second=0, microsecond=0) == day]
    return []


def most_severe_first(anomalies: Iterable[Anomaly]) -> list[Anomaly]:
    return sorted(anomalies, key=lambda a: (a.severity.rank, score_ratio(a), a.window_end), reverse=True)
