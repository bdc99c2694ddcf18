"""GET /alarm-kpis: the alarm system judged per module, as ISA-18.2 and EEMUA 191 measure it."""

from typing import Annotated

from fastapi import APIRouter, Query

from plantwatch.adapters.wire import TimestampIn
from plantwatch.domain.access import Role
from plantwatch.domain.modules import known_modules
from plantwatch.entrypoints.api.access import role_dependency
from plantwatch.entrypoints.api.dependencies import (
    MODULE_SCHEMA,
    ContainerDep,
    module_or_404,
    plant_time,
)
from plantwatch.entrypoints.api.schemas import AlarmKpisOut
from plantwatch.services.incidents import module_kpis

router = APIRouter(tags=["incidents"], dependencies=[role_dependency(Role.VIEWER)])


@router.get(
    "/alarm-kpis",
    response_model=list[AlarmKpisOut],
    summary="Alarms per hour, floods, chattering and stale alarms per module",
)
def alarm_kpis(
    container: ContainerDep,
    module: Annotated[
        str | None, Query(description="one module; default all", json_schema_extra=MODULE_SCHEMA)
    ] = None,
    since: Annotated[
        TimestampIn | None, Query(description="plant local time; default the first incident's start")
    ] = None,
    until: Annotated[
        TimestampIn | None, Query(description="plant local time; default the last incident's end")
    ] = None,
) -> list[AlarmKpisOut]:
    modules = [module_or_404(module)] if module is not None else known_modules()
    repository = container.incident_repository()
    # each module's bounds in its own plant time
    found = (
        module_kpis(repository, m, plant_time(since, "since", m), plant_time(until, "until", m))
        for m in modules
    )
    return [AlarmKpisOut.from_domain(kpis) for kpis in found if kpis is not None]
