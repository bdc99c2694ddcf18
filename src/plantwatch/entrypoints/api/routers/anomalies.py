"""Read side of the store: anomaly pages, one anomaly with its root cause, and the score series."""

from dataclasses import replace
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict

from plantwatch.adapters.wire import MAX_NAME_CHARS, NO_CONTROL_CHARS, NaiveTimestamp, TimestampIn
from plantwatch.bootstrap import Container
from plantwatch.domain.access import Role
from plantwatch.domain.anomaly import Severity
from plantwatch.domain.errors import NotFoundError
from plantwatch.domain.modules import Module
from plantwatch.domain.ports import AnomalyQuery
from plantwatch.entrypoints.api.access import role_dependency
from plantwatch.entrypoints.api.dependencies import ContainerDep, ModuleDep, PageCacheDep, plant_time
from plantwatch.entrypoints.api.page_cache import PageCache
from plantwatch.entrypoints.api.schemas import AnomalyOut, AnomalyPageOut

router = APIRouter(tags=["anomalies"], dependencies=[role_dependency(Role.VIEWER)])

MAX_PAGE = 1000
MAX_SCORES = 50_000


async def anomaly_query(
    since: Annotated[
        TimestampIn | None, Query(description="window_end at or after, plant local time")
    ] = None,
    until: Annotated[TimestampIn | None, Query(description="window_end before, plant local time")] = None,
    min_severity: Annotated[Severity | None, Query(description="low, medium, high or critical")] = None,
    feature: Annotated[
        str | None,
        Query(
            description="only anomalies whose root cause names this feature",
            max_length=MAX_NAME_CHARS,
            pattern=NO_CONTROL_CHARS,
        ),
    ] = None,
    source: Annotated[str | None, Query(max_length=MAX_NAME_CHARS, pattern=NO_CONTROL_CHARS)] = None,
    model_version: Annotated[
        str | None,
        Query(
            description="only anomalies scored by this model version (e.g. v0003; see GET /models)",
            max_length=MAX_NAME_CHARS,
            pattern=NO_CONTROL_CHARS,
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
) -> AnomalyQuery:
    """The filters every anomaly list takes, for all modules; a module route narrows it."""
    return AnomalyQuery(
        since=since,
        until=until,
        min_severity=min_severity,
        feature=feature,
        source=source,
        model_version=model_version,
        limit=limit,
        cursor=cursor,
    )


QueryDep = Annotated[AnomalyQuery, Depends(anomaly_query)]


async def _page(request: Request, container: Container, cache: PageCache, query: AnomalyQuery) -> Response:
    since, until = (
        plant_time(query.since, "since", query.module),
        plant_time(query.until, "until", query.module),
    )
    local = replace(query, since=since, until=until)

    def render() -> bytes:
        page = container.repository.find(local)
        return AnomalyPageOut.from_domain(page.items, page.next_cursor).model_dump_json().encode()

    return await cache.answer(request, ("anomalies", local), container.repository.revision, render)


@router.get("/anomalies", response_model=AnomalyPageOut, summary="Anomalies of every module, newest first")
async def list_all_anomalies(
    request: Request, container: ContainerDep, cache: PageCacheDep, query: QueryDep
) -> Response:
    return await _page(request, container, cache, query)


@router.get(
    "/anomalies/{module}", response_model=AnomalyPageOut, summary="Anomalies of one module, newest first"
)
async def list_module_anomalies(
    request: Request, container: ContainerDep, cache: PageCacheDep, module: ModuleDep, query: QueryDep
) -> Response:
    return await _page(request, container, cache, replace(query, module=module))


@router.get(
    "/anomalies/{module}/{anomaly_id}", response_model=AnomalyOut, summary="One anomaly with its root cause"
)
def get_anomaly(
    container: ContainerDep,
    module: ModuleDep,
    anomaly_id: Annotated[str, Path(pattern=NO_CONTROL_CHARS, description="`id` of an anomaly")],
) -> AnomalyOut:
    anomaly = container.repository.get(anomaly_id)
    if anomaly.module != module:
        raise NotFoundError(f"anomaly {anomaly_id!r} is not a {module.value} anomaly")
    return AnomalyOut.from_domain(anomaly)


class ScorePointOut(BaseModel):
    """A ScorePoint without its module (the series names it once), read from its attributes."""

    model_config = ConfigDict(from_attributes=True)

    timestamp: NaiveTimestamp
    source: str
    score: float
    threshold: float
    """The threshold of the alarm rule's statistic (of the score itself under the plain rule)."""
    model_name: str
    model_version: str
    statistic: float | None = None
    """The alarm rule's statistic (EWMA or CUSUM of the score, or the score); null when stored before it."""
    alarm: bool | None = None
    """Whether the alarm rule alarmed at this reading; null when stored before it."""


class ScoreSeriesOut(BaseModel):
    module: Module
    threshold: float | None
    """The served model's threshold (None when the module has no model loaded)."""
    points: list[ScorePointOut]


@router.get("/scores/{module}", response_model=ScoreSeriesOut, summary="Score of every reading, oldest first")
def list_scores(
    container: ContainerDep,
    module: ModuleDep,
    since: Annotated[TimestampIn | None, Query(description="at or after, plant local time")] = None,
    until: Annotated[TimestampIn | None, Query(description="before, plant local time")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_SCORES)] = 5000,
) -> ScoreSeriesOut:
    since, until = plant_time(since, "since", module), plant_time(until, "until", module)
    points = container.repository.list_scores(module, since=since, until=until, limit=limit)
    model = container.models.get(module)
    return ScoreSeriesOut(
        module=module,
        threshold=model.card.threshold if model else None,
        points=[ScorePointOut.model_validate(p) for p in points],
    )
