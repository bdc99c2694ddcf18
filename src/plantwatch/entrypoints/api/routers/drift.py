"""GET /models/{module}/drift: how far the readings this process scored lately sit from the served model's
training data, and the drift warnings stored by every process (API and workers)."""

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict
from starlette.concurrency import run_in_threadpool

from plantwatch.adapters.wire import NaiveTimestamp
from plantwatch.domain.access import Role
from plantwatch.domain.modules import Module
from plantwatch.entrypoints.api.access import role_dependency
from plantwatch.entrypoints.api.dependencies import ContainerDep, ModuleDep

router = APIRouter(tags=["models"], dependencies=[role_dependency(Role.VIEWER)])

MAX_EVENTS = 100


class DriftLevelsOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    psi: float
    out_of_range_share: float
    min_readings: int


class FeatureDriftOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    feature: str
    out_of_range_share: float
    """Share of the window's readings outside [training_low, training_high]."""
    below_share: float
    above_share: float
    psi: float
    """Population stability index over the training deciles: < 0.1 stable, > 0.25 shifted."""
    training_low: float
    training_high: float


class DriftEventOut(BaseModel):
    """A stored drift warning: the window of readings that crossed a level, and the features that did."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    module: Module
    model_name: str
    model_version: str
    raised_at: NaiveTimestamp
    first_reading: NaiveTimestamp | None
    last_reading: NaiveTimestamp | None
    readings: int
    max_psi: float
    max_out_of_range_share: float
    features: list[str]


class DriftOut(BaseModel):
    module: Module
    model_name: str
    model_version: str
    status: Literal["ok", "warning", "too_few_readings", "no_readings", "no_profile"]
    """no_profile: the model was saved without training statistics (retrain it to watch drift)."""
    window_readings: int
    """How many of the latest readings drift is measured over."""
    readings: int
    first_reading: NaiveTimestamp | None
    last_reading: NaiveTimestamp | None
    levels: DriftLevelsOut
    drifted_features: list[str]
    """Features over a level, worst first."""
    features: list[FeatureDriftOut]
    events: list[DriftEventOut]
    """Stored drift warnings of this module, newest first."""


@router.get(
    "/models/{module}/drift",
    response_model=DriftOut,
    summary="Drift of live readings from the served model's training data, with stored drift warnings",
)
async def module_drift(
    container: ContainerDep,
    module: ModuleDep,
    events: Annotated[int, Query(ge=0, le=MAX_EVENTS, description="how many stored warnings")] = 10,
) -> DriftOut:
    model = container.model(module)
    monitor = container.drift
    report = monitor.report(module, model)
    stored = []
    if container.drift_events is not None and events:
        stored = await run_in_threadpool(container.drift_events.list_drift_events, module, events)
    if model.profile is None:
        status: Literal["ok", "warning", "too_few_readings", "no_readings", "no_profile"] = "no_profile"
    elif report is None or report.readings == 0:
        status = "no_readings"
    elif report.readings < monitor.levels.min_readings:
        status = "too_few_readings"
    else:
        status = "warning" if report.warning else "ok"
    return DriftOut(
        module=module,
        model_name=model.card.model_name,
        model_version=model.card.version,
        status=status,
        window_readings=monitor.window,
        readings=report.readings if report else 0,
        first_reading=report.first_reading if report else None,
        last_reading=report.last_reading if report else None,
        levels=DriftLevelsOut.model_validate(monitor.levels),
        drifted_features=report.drifted_features if report else [],
        features=[FeatureDriftOut.model_validate(f) for f in report.features] if report else [],
        events=[DriftEventOut.model_validate(e) for e in stored],
    )
