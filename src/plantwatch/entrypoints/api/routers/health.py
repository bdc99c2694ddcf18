"""GET /health (store reachable, models loaded) and GET /models (what each module serves, and every
registered version with its stage)."""

import logging
import time
from typing import Any, Literal

import anyio
import anyio.to_thread
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict

from plantwatch.adapters.wire import NaiveTimestamp
from plantwatch.bootstrap import Container
from plantwatch.domain.lifecycle import Stage
from plantwatch.domain.modules import Module
from plantwatch.domain.ports import ModelCard
from plantwatch.entrypoints.api.access import ViewerDep
from plantwatch.entrypoints.api.dependencies import ContainerDep
from plantwatch.services.lifecycle import VersionView, list_versions

router = APIRouter(tags=["health"])
log = logging.getLogger(__name__)


class ModuleHealthOut(BaseModel):
    module: Module
    model_loaded: bool
    model_name: str
    model_version: str | None
    problem: str | None


class HealthOut(BaseModel):
    status: Literal["ok", "degraded", "down"]
    """ok: store reachable and every module has a model; degraded: some module has none; down: no store.
    Lists the seed modules and every other configured module that has a model (or one that failed to load);
    one never trained is opt-in and not listed."""
    database: Literal["ok", "unreachable"]
    database_error: str | None = None
    modules: list[ModuleHealthOut]


class ModelOut(BaseModel):
    """A registry ModelCard with its stage: built from the card's attributes. `data_hash` is the training
    data's fingerprint (sha256 of the fitted values and feature names)."""

    model_config = ConfigDict(from_attributes=True)

    module: Module
    model_name: str
    version: str
    feature_names: list[str]
    window: int
    threshold: float
    """The threshold of the alarm rule's statistic (of the score itself under the plain rule)."""
    threshold_method: str
    alarm_rule: str = "none"
    """How scores turn into alarms (domain/alarms.py), e.g. "ewma:0.2"; "none": score > threshold."""
    alarm_reference: float | None = None
    """The CUSUM rule's reference level, from normal validation scores (null for other rules)."""
    training_source: str
    data_hash: str
    created_at: NaiveTimestamp
    metrics: dict[str, Any]
    stage: Stage | None = None
    """candidate, production or archived (None when the app runs without a registry)."""


class ModelsOut(BaseModel):
    models: list[ModelOut]
    """The versions being served, one per module."""
    versions: list[ModelOut]
    """Every registered version of each module's configured model, with its stage."""
    missing: dict[Module, str]
    """Modules with no model loaded, and what to do about it."""


# /health runs its store check on a thread of its own, not in the pool the sync routes share: when they
# saturate the pool, a health check queued behind them would time out and get the server restarted.
_HEALTH_THREAD = anyio.CapacityLimiter(1)
HEALTH_TIMEOUT_S = 2.0


def store_problem(error: BaseException) -> str:
    """What went wrong reaching the store, in words that name no host, user or driver (those are logged)."""
    text = str(error).lower()
    if isinstance(error, TimeoutError) or "timeout" in text or "timed out" in text:
        return "the store did not answer in time"
    if isinstance(error, ConnectionRefusedError) or "refused" in text:
        return "connection refused"
    if "authentication" in text or "password" in text:
        return "the store refused the credentials"
    return "the store is unreachable"


class StoreCheck:
    """The last store check's outcome, reused for `max_age_s`: a probe every few seconds from each
    orchestrator and load balancer need not each cost a connection, and under load a cached answer does not
    wait for the GIL behind the busy threads. Past the max age one request checks again; the others keep the
    last outcome meanwhile, for at most HEALTH_TIMEOUT_S more."""

    def __init__(self, max_age_s: float) -> None:
        self.max_age_s = max_age_s
        self._last: tuple[str | None, float] | None = None  # (problem or None, when checked)
        self._checking = False

    async def problem(self, container: Container) -> str | None:
        """None when the store answered, else what went wrong (no host, user or driver in it)."""
        last = self._last
        if last is not None:
            age = time.monotonic() - last[1]
            if age < self.max_age_s or (self._checking and age < self.max_age_s + HEALTH_TIMEOUT_S):
                return last[0]
        self._checking = True
        checked_at = time.monotonic()
        try:
            with anyio.fail_after(HEALTH_TIMEOUT_S):
                await anyio.to_thread.run_sync(
                    container.check_database, abandon_on_cancel=True, limiter=_HEALTH_THREAD
                )
            problem = None
        except Exception as error:  # any failure to reach the store is what this endpoint reports
            log.warning("health check: store unreachable: %s", error)
            problem = store_problem(error)
        finally:
            self._checking = False
        self._last = (problem, checked_at)
        return problem


def _store_check(request: Request, container: Container) -> StoreCheck:
    check: StoreCheck | None = getattr(request.app.state, "store_check", None)
    if check is None:
        check = StoreCheck(container.settings.health_check_max_age_s)
        request.app.state.store_check = check
    return check


@router.get("/health", response_model=HealthOut, responses={503: {"model": HealthOut}})
async def health(request: Request, container: ContainerDep) -> Any:
    database_error = await _store_check(request, container).problem(container)
    modules = []
    # a configured module beyond the seed's never trained is not in service yet (GET /modules lists it)
    for module in filter(container.model_expected, container.modules):
        trained = container.models.get(module)
        modules.append(
            ModuleHealthOut(
                module=module,
                model_loaded=trained is not None,
                model_name=trained.card.model_name if trained else container.settings.model_for(module),
                model_version=trained.card.version if trained else None,
                problem=None if trained else container.model_problem(module),
            )
        )
    if database_error:
        status: Literal["ok", "degraded", "down"] = "down"
    elif all(m.model_loaded for m in modules):
        status = "ok"
    else:
        status = "degraded"
    body = HealthOut(
        status=status,
        database="unreachable" if database_error else "ok",
        database_error=database_error,
        modules=modules,
    )
    return JSONResponse(body.model_dump(mode="json"), status_code=503 if database_error else 200)


@router.get(
    "/models",
    response_model=ModelsOut,
    summary="Served and registered model versions: stage, training data fingerprint, threshold, metrics",
)
def list_models(container: ContainerDep, _caller: ViewerDep) -> ModelsOut:
    registry = container.registry
    versions: list[VersionView] = []
    if registry is not None:
        configured = {m: container.settings.model_for(m) for m in container.modules}
        versions = [
            view
            for view in list_versions(registry)
            if configured.get(view.card.module) == view.card.model_name
        ]
    stage_of = {(v.card.module, v.card.model_name, v.card.version): v.stage for v in versions}
    models = [
        _model_out(card, stage_of.get((card.module, card.model_name, card.version)))
        for card in container.cards()
    ]
    missing = {
        m: container.model_problem(m)
        for m in filter(container.model_expected, container.modules)
        if m not in container.models
    }
    return ModelsOut(models=models, versions=[_model_out(v.card, v.stage) for v in versions], missing=missing)


def _model_out(card: ModelCard, stage: Stage | None) -> ModelOut:
    return ModelOut.model_validate(card).model_copy(update={"stage": stage})
