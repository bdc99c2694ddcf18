"""Alarm-system KPIs of one module (ISA-18.2 / EEMUA 191), with incidents as the alarms.

- alarms per hour: incidents opened per hour of the period (EEMUA 191: about 6 per operator-hour is the most
  that is manageable, 1 is the aim);
- floods: fixed 10-minute intervals holding more than 10 new alarms;
- chattering: a source raising 3 or more alarms within one minute;
- stale: an alarm still active 24 hours after it started.

Times are data times (naive, plant local), so a replay of old data is judged as the live stream would be.
"""

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from plantwatch.domain.errors import InvalidInputError
from plantwatch.domain.incidents import Incident
from plantwatch.domain.modules import Module


@dataclass(frozen=True)
class AlarmLimits:
    flood_interval: timedelta = timedelta(minutes=10)
    flood_alarms: int = 10
    """More than this many new alarms in one flood interval is a flood."""
    chatter_window: timedelta = timedelta(minutes=1)
    chatter_alarms: int = 3
    stale_after: timedelta = timedelta(hours=24)
    manageable_per_hour: float = 6.0


@dataclass(frozen=True)
class AlarmKpis:
    module: Module
    since: datetime
    until: datetime
    alarms: int
    alarms_per_hour: float
    peak_alarms_per_interval: int
    """The most new alarms in one flood interval."""
    flood_intervals: int
    chattering_sources: tuple[str, ...]
    stale_alarms: int
    active_alarms: int
    manageable: bool
    """At most `manageable_per_hour` alarms per hour and no flood."""

    @property
    def hours(self) -> float:
        return (self.until - self.since).total_seconds() / 3600


def alarm_kpis(
    module: Module,
    incidents: Sequence[Incident],
    since: datetime,
    until: datetime,
    limits: AlarmLimits | None = None,
) -> AlarmKpis:
    """KPIs of the incidents that started in [since, until); staleness is judged at `until`."""
    limits = limits or AlarmLimits()
    if until <= since:
        raise InvalidInputError(
            f"until ({until.isoformat()}) must be after since ({since.isoformat()})", field="until"
        )
    started = sorted(
        (i for i in incidents if i.module == module and i.state.annunciated and since <= i.start < until),
        key=lambda i: i.start,
    )
    per_interval = Counter((i.start - since) // limits.flood_interval for i in started)
    by_source: dict[str, list[datetime]] = defaultdict(list)
    for incident in started:
        by_source[incident.source].append(incident.start)
    chattering = tuple(
        sorted(
            source
            for source, starts in by_source.items()
            if any(
                starts[k + limits.chatter_alarms - 1] - starts[k] <= limits.chatter_window
                for k in range(len(starts) - limits.chatter_alarms + 1)
            )
        )
    )
    active = [i for i in incidents if i.module == module and i.state.is_active and i.start < until]
    hours = (until - since).total_seconds() / 3600
    per_hour = len(started) / hours
    floods = sum(1 for count in per_interval.values() if count > limits.flood_alarms)
    return AlarmKpis(
        module=module,
        since=since,
        until=until,
        alarms=len(started),
        alarms_per_hour=per_hour,
        peak_alarms_per_interval=max(per_interval.values(), default=0),
        flood_intervals=floods,
        chattering_sources=chattering,
        stale_alarms=sum(1 for i in active if until - i.start >= limits.stale_after),
        active_alarms=len(active),
        manageable=per_hour <= limits.manageable_per_hour and floods == 0,
    )
