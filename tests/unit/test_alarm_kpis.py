"""Alarm KPIs: alarms per hour, floods (more than 10 new alarms in 10 minutes), chattering, stale alarms."""

from dataclasses import replace
from datetime import timedelta

import pytest

from plantwatch.domain.alarm_kpis import alarm_kpis
from plantwatch.domain.anomaly import Severity
from plantwatch.domain.errors import InvalidInputError
from plantwatch.domain.incidents import Incident, IncidentState
from plantwatch.domain.modules import Module
from tests.fakes import BASE_TIME

T0 = BASE_TIME


def incident(start_minutes: float, source: str = "s1", **changes) -> Incident:
    start = T0 + timedelta(minutes=start_minutes)
    base = Incident(
        id=f"{source}-{start_minutes}",
        module=Module.MACHINE,
        source=source,
        start=start,
        end=start + timedelta(minutes=1),
        peak_score=2.0,
        threshold=1.0,
        severity=Severity.HIGH,
        window_count=1,
        causes=(),
        state=IncidentState.CLOSED,
        opened_at=start,
        updated_at=start,
    )
    return replace(base, **changes)


def test_a_quiet_day_is_manageable() -> None:
    incidents = [incident(60 * h) for h in range(0, 24, 4)]
    kpis = alarm_kpis(Module.MACHINE, incidents, T0, T0 + timedelta(hours=24))
    assert kpis.alarms == 6 and kpis.alarms_per_hour == pytest.approx(0.25) and kpis.hours == 24
    assert kpis.flood_intervals == 0 and kpis.peak_alarms_per_interval == 1
    assert kpis.chattering_sources == () and kpis.stale_alarms == 0 and kpis.manageable


def test_eleven_alarms_in_ten_minutes_are_a_flood_ten_are_not() -> None:
    ten = [incident(i * 0.9, source=f"s{i}") for i in range(10)]
    kpis = alarm_kpis(Module.MACHINE, ten, T0, T0 + timedelta(hours=24))
    assert kpis.flood_intervals == 0 and kpis.peak_alarms_per_interval == 10
    eleven = [*ten, incident(9.5, source="s-extra")]
    kpis = alarm_kpis(Module.MACHINE, eleven, T0, T0 + timedelta(hours=24))
    assert kpis.flood_intervals == 1 and kpis.peak_alarms_per_interval == 11 and not kpis.manageable


def test_three_alarms_of_one_source_within_a_minute_chatter() -> None:
    incidents = [incident(0.0), incident(0.4), incident(0.9), incident(5, source="s2"), incident(6, "s2")]
    kpis = alarm_kpis(Module.MACHINE, incidents, T0, T0 + timedelta(hours=1))
    assert kpis.chattering_sources == ("s1",)
    spread = [incident(0.0), incident(0.6), incident(1.2)]
    assert alarm_kpis(Module.MACHINE, spread, T0, T0 + timedelta(hours=1)).chattering_sources == ()


def test_active_a_day_after_it_started_is_stale() -> None:
    standing = incident(0, state=IncidentState.ACTIVE_ACKNOWLEDGED)
    fresh = incident(60 * 20, source="s2", state=IncidentState.ACTIVE_UNACKNOWLEDGED)
    kpis = alarm_kpis(Module.MACHINE, [standing, fresh], T0, T0 + timedelta(hours=25))
    assert kpis.stale_alarms == 1 and kpis.active_alarms == 2


def test_only_the_module_and_period_count_and_the_period_must_be_forward() -> None:
    other = replace(incident(1), module=Module.CYBER)
    before = incident(-30)
    kpis = alarm_kpis(Module.MACHINE, [other, before, incident(2)], T0, T0 + timedelta(hours=2))
    assert kpis.alarms == 1
    with pytest.raises(InvalidInputError) as error:
        alarm_kpis(Module.MACHINE, [], T0, T0)
    assert error.value.field == "until"
