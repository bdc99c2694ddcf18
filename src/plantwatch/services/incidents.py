"""Incident use cases: group what ingest flagged into incidents, and judge the alarm system (KPIs).

Ingest (HTTP and the MQTT worker alike, see services/ingest.py) hands every stored batch to
`IncidentTracking.track`; the store groups and notifies in one transaction per source.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from plantwatch.domain.alarm_kpis import AlarmKpis, AlarmLimits, alarm_kpis
from plantwatch.domain.anomaly import Anomaly
from plantwatch.domain.incidents import GroupingResult, Incident, IncidentPolicy
from plantwatch.domain.modules import Module
from plantwatch.domain.ports import IncidentQuery, IncidentRepository

KPI_PAGE = 1000


@dataclass(frozen=True)
class IncidentTracking:
    """Where incidents go, how each module's anomalies group, and which targets hear of new ones."""

    repository: IncidentRepository
    policies: Mapping[Module, IncidentPolicy]
    notify: Sequence[str] = ()
    """Webhook URLs, and MQTT_TARGET for the MQTT topic."""

    def track(
        self,
        module: Module,
        source: str,
        anomalies: Sequence[Anomaly],
        observed_until: datetime,
        now: datetime,
    ) -> GroupingResult:
        """Group a stored batch's anomalies; `observed_until` is its newest reading (clears stale ones)."""
        return self.repository.record(
            module, source, anomalies, self.policies[module], observed_until, now, notify=self.notify
        )


def incidents_between(
    repository: IncidentRepository, module: Module, since: datetime | None, until: datetime | None
) -> list[Incident]:
    """Every incident of `module` overlapping [since, until), walking all pages."""
    found: list[Incident] = []
    cursor = None
    while True:
        page = repository.find(
            IncidentQuery(module=module, since=since, until=until, limit=KPI_PAGE, cursor=cursor)
        )
        found.extend(page.items)
        if page.next_cursor is None:
            return found
        cursor = page.next_cursor


def module_kpis(
    repository: IncidentRepository,
    module: Module,
    since: datetime | None = None,
    until: datetime | None = None,
    limits: AlarmLimits | None = None,
) -> AlarmKpis | None:
    """The module's alarm KPIs over [since, until). An open bound defaults to its first incident's start or
    its last incident's end (at least an hour apart); None when there is nothing to judge."""
    incidents = incidents_between(repository, module, since, until)
    if not incidents and (since is None or until is None):
        return None
    start = since or min(i.start for i in incidents)
    end = until or max(i.end for i in incidents) + timedelta(microseconds=1)
    end = max(end, start + timedelta(hours=1)) if until is None else end
    return alarm_kpis(module, incidents, start, end, limits)
