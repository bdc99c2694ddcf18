"""Incidents: the list an operator works from, one incident with its anomalies and audit log, and the
operator's actions on it (acknowledge, shelve, comment, resolve).

Who acts (`acting_actor`, the one place that decides it): with API keys set, the name of the key the request
came with (its api_keys `name`, or `key-` and the start of its digest), so one operator cannot act as
another; a body `actor` or X-Actor header naming anyone else is refused with a 403. With no key set, the
body's `actor`, else the X-Actor header.
"""

from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Header, Path, Query
from starlette.concurrency import run_in_threadpool

from plantwatch.adapters.wire import MAX_NAME_CHARS, NO_CONTROL_CHARS, TimestampIn
from plantwatch.bootstrap import Container
from plantwatch.domain.access import Role
from plantwatch.domain.anomaly import Severity
from plantwatch.domain.errors import ForbiddenError, InvalidInputError
from plantwatch.domain.incidents import MAX_ACTOR_CHARS, IncidentAction, IncidentState
from plantwatch.domain.ports import AnomalyQuery, IncidentDetail, IncidentQuery
from plantwatch.entrypoints.api.access import Caller, OperatorDep, role_dependency
from plantwatch.entrypoints.api.dependencies import (
    MODULE_SCHEMA,
    ContainerDep,
    module_or_404,
    plant_time,
)
from plantwatch.entrypoints.api.schemas import (
    AnomalyOut,
    AuditEntryOut,
    CommentIn,
    IncidentDetailOut,
    IncidentOut,
    IncidentPageOut,
    OperatorActionIn,
    ShelveIn,
)

router = APIRouter(tags=["incidents"])

MAX_PAGE = 1000
# An incident of a long attack can group thousands of windows: the detail shows the newest ones in full.
MAX_DETAIL_ANOMALIES = 500


def _utc_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def incident_query(
    module: Annotated[
        str | None, Query(description="energy, machine or cyber", json_schema_extra=MODULE_SCHEMA)
    ] = None,
    state: Annotated[IncidentState | None, Query()] = None,
    source: Annotated[str | None, Query(max_length=MAX_NAME_CHARS, pattern=NO_CONTROL_CHARS)] = None,
    since: Annotated[TimestampIn | None, Query(description="ending at or after, plant local time")] = None,
    until: Annotated[TimestampIn | None, Query(description="starting before, plant local time")] = None,
    min_severity: Annotated[Severity | None, Query(description="low, medium, high or critical")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
) -> IncidentQuery:
    selected = module_or_404(module) if module is not None else None
    return IncidentQuery(
        module=selected,
        source=source,
        state=state,
        since=plant_time(since, "since", selected),
        until=plant_time(until, "until", selected),
        min_severity=min_severity,
        limit=limit,
        cursor=cursor,
    )


IncidentId = Annotated[str, Path(pattern=NO_CONTROL_CHARS, max_length=64, description="`id` of an incident")]


def request_actor(
    x_actor: Annotated[
        str | None,
        Header(
            max_length=MAX_ACTOR_CHARS,
            description="Who acts, when the body names nobody; with API keys set, the key's name or absent.",
        ),
    ] = None,
) -> str | None:
    return x_actor


ActorDep = Annotated[str | None, Depends(request_actor)]


def acting_actor(caller: Caller, body: OperatorActionIn | None, header: str | None) -> str:
    """Who the audit log records for this action (see the module's docstring)."""
    named = [
        (field, name)
        for field, name in (("actor", body.actor if body is not None else None), ("X-Actor", header))
        if name
    ]
    if caller.name is not None:
        for field, name in named:
            if name != caller.name:
                raise ForbiddenError(
                    f"{field}: this API key acts as {caller.name!r} and cannot act as {name!r}; "
                    "leave the actor out, it comes from the key",
                    field=field,
                )
        return caller.name
    if not named:
        raise InvalidInputError(
            "actor: say who acts, in the body's actor or the X-Actor header", field="actor"
        )
    return named[0][1]


def _detail_out(container: Container, detail: IncidentDetail) -> IncidentDetailOut:
    incident = detail.incident
    members = set(detail.anomaly_ids)
    # one range query over the incident's span instead of one lookup per anomaly
    page = container.repository.find(
        AnomalyQuery(
            module=incident.module,
            source=incident.source,
            since=incident.start,
            until=incident.end + timedelta(microseconds=1),
            limit=MAX_DETAIL_ANOMALIES,
        )
    )
    anomalies = [a for a in reversed(page.items) if a.id in members]
    return IncidentDetailOut(
        **IncidentOut.fields_of(incident, _utc_now()),
        anomaly_ids=detail.anomaly_ids,
        anomalies=[AnomalyOut.from_domain(a) for a in anomalies],
        history=[AuditEntryOut.from_domain(entry) for entry in detail.history],
    )


@router.get(
    "/incidents",
    response_model=IncidentPageOut,
    summary="Incidents, newest first",
    dependencies=[role_dependency(Role.VIEWER)],
)
def list_incidents(
    container: ContainerDep, query: Annotated[IncidentQuery, Depends(incident_query)]
) -> IncidentPageOut:
    page = container.incident_repository().find(query)
    now = _utc_now()
    return IncidentPageOut(
        items=[IncidentOut.from_domain(i, now) for i in page.items], next_cursor=page.next_cursor
    )


@router.get(
    "/incidents/{incident_id}",
    dependencies=[role_dependency(Role.VIEWER)],
    response_model=IncidentDetailOut,
    summary="One incident with its anomalies and audit log",
)
def get_incident(container: ContainerDep, incident_id: IncidentId) -> IncidentDetailOut:
    return _detail_out(container, container.incident_repository().get(incident_id))


async def _act(
    container: Container,
    incident_id: str,
    action: IncidentAction,
    actor: str,
    *,
    minutes: int | None = None,
    text: str | None = None,
) -> IncidentDetailOut:
    act = partial(container.incident_repository().act, minutes=minutes, text=text)
    detail = await run_in_threadpool(act, incident_id, action, actor, _utc_now())
    return await run_in_threadpool(_detail_out, container, detail)


_ACTION_RESPONSES: dict[int | str, dict[str, Any]] = {
    409: {"description": "The incident's state does not allow this action."}
}


@router.post(
    "/incidents/{incident_id}/acknowledge",
    response_model=IncidentDetailOut,
    summary="Acknowledge: an operator has seen it",
    responses=_ACTION_RESPONSES,
)
async def acknowledge_incident(
    container: ContainerDep,
    incident_id: IncidentId,
    caller: OperatorDep,
    header_actor: ActorDep,
    body: Annotated[OperatorActionIn | None, Body()] = None,
) -> IncidentDetailOut:
    actor = acting_actor(caller, body, header_actor)
    return await _act(container, incident_id, IncidentAction.ACKNOWLEDGE, actor)


@router.post(
    "/incidents/{incident_id}/shelve",
    response_model=IncidentDetailOut,
    summary="Shelve: no notifications for it until the time runs out",
    responses=_ACTION_RESPONSES,
)
async def shelve_incident(
    container: ContainerDep,
    incident_id: IncidentId,
    body: ShelveIn,
    caller: OperatorDep,
    header_actor: ActorDep,
) -> IncidentDetailOut:
    actor = acting_actor(caller, body, header_actor)
    return await _act(container, incident_id, IncidentAction.SHELVE, actor, minutes=body.minutes)


@router.post(
    "/incidents/{incident_id}/comment",
    response_model=IncidentDetailOut,
    summary="Add a comment to its audit log",
    responses=_ACTION_RESPONSES,
)
async def comment_incident(
    container: ContainerDep,
    incident_id: IncidentId,
    body: CommentIn,
    caller: OperatorDep,
    header_actor: ActorDep,
) -> IncidentDetailOut:
    actor = acting_actor(caller, body, header_actor)
    return await _act(container, incident_id, IncidentAction.COMMENT, actor, text=body.text)


@router.post(
    "/incidents/{incident_id}/resolve",
    response_model=IncidentDetailOut,
    summary="Resolve: close an acknowledged or cleared incident",
    responses=_ACTION_RESPONSES,
)
async def resolve_incident(
    container: ContainerDep,
    incident_id: IncidentId,
    caller: OperatorDep,
    header_actor: ActorDep,
    body: Annotated[OperatorActionIn | None, Body()] = None,
) -> IncidentDetailOut:
    actor = acting_actor(caller, body, header_actor)
    return await _act(container, incident_id, IncidentAction.RESOLVE, actor)
