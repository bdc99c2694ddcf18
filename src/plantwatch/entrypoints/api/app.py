"""The FastAPI application: routers per resource, adapters from the composition root, one error mapping."""

import gc
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import anyio.to_thread
from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from plantwatch.bootstrap import Container, build_container, notification_dispatcher
from plantwatch.domain.access import Role
from plantwatch.domain.modules import known_modules
from plantwatch.entrypoints.api.access import API_KEY_HEADER, AccessControl
from plantwatch.entrypoints.api.errors import ERROR_RESPONSES, install_error_handlers
from plantwatch.entrypoints.api.middleware import BodySizeLimit, RequestContext, SecurityHeaders
from plantwatch.entrypoints.api.page_cache import PageCache
from plantwatch.entrypoints.api.routers import (
    alarm_kpis,
    anomalies,
    chatbot,
    dashboard,
    drift,
    health,
    incidents,
    ingest,
    metrics,
    modules,
    stream,
)
from plantwatch.entrypoints.api.tracing import install_tracing
from plantwatch.entrypoints.metrics import record_models
from plantwatch.settings import Settings, get_settings

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export import SpanExporter

DESCRIPTION = """
Anomalies of a plant's energy use, machines and control network, each with its root cause.

Time: the API stores and sends plant local time, ISO 8601 without an offset (anomaly windows, scores,
incident spans; `detected_at`, `opened_at` and audit times are UTC, also without an offset). It takes either:
a timestamp without an offset (readings, `since`/`until`) is plant local time; one with an offset (`...Z`,
`+02:00`) is an instant, converted to the module's time zone (`timezone` in its configuration, default UTC).
On a read over every module an offset needs the modules to share one time zone, else it is a 422 naming the
field. The document states both as patterns rather than JSON Schema's `date-time`, which requires an offset;
anything else (a date alone, a unix time) is a 422 naming the field. Readings must also fall in the configured
plausible time and value range (422 naming the reading).

Access: with API keys configured, every endpoint but `/health` needs the `X-API-Key` header of a key whose
role allows it (viewer: reads, chatbot, stream, metrics; operator: also acting on incidents; admin: also
ingest); 401 without a valid key, 403 for a role too low, 429 past a key's rate limit. With only the single
`PLANTWATCH_API_KEY`, only writes (ingest, incident actions) need it. The operations the document marks
with the key scheme are the ones this server guards.

Ingest scores every reading that has a full model window: the readings this process saw before for the same
source (or the `context` readings a batch carries) complete the first window; without them the first
`window - 1` readings of a batch are context only. Request bodies over the configured size get a 413.
"""


def _key_requirement(operation: dict[str, Any]) -> dict[str, list[str]] | None:
    for requirement in operation.get("security", []):
        if API_KEY_HEADER.scheme_name in requirement:
            return requirement  # type: ignore[no-any-return]
    return None


def guarded_openapi(app: FastAPI, access: AccessControl) -> Callable[[], dict[str, Any]]:
    """app.openapi, with the key scheme only on the operations this configuration guards. Each role check
    names its role in the requirement; the original single key has no roles, so its requirement names none."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = generate()
        for operations in document["paths"].values():
            for operation in operations.values():
                requirement = _key_requirement(operation)
                if requirement is None:
                    continue
                roles = [Role(name) for name in requirement[API_KEY_HEADER.scheme_name]]
                if not any(access.guards(role) for role in roles):
                    del operation["security"]
                elif not access.has_roles:
                    requirement[API_KEY_HEADER.scheme_name] = []
        app.openapi_schema = document
        return document

    return openapi


def create_app(
    settings: Settings | None = None,
    container: Container | None = None,
    span_exporter: "SpanExporter | None" = None,
) -> FastAPI:
    """The app. With `container`, its adapters are used as given (tests); otherwise they are built from
    `settings` (default: the environment) when the app starts and closed when it stops. `span_exporter`
    traces the app's requests into it whatever the settings say (tests; see tracing.py)."""
    settings = settings or (container.settings if container else get_settings())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Sync endpoints run in anyio's thread pool (40 threads by default). Their work is CPU-bound
        # Python, so many threads only fight over the GIL: on 2 cores, 2 threads served GET /anomalies
        # 1.4x faster under 8-32 concurrent clients, with half the p99 (benchmarks/api_load.py).
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.api_threads
        if container is not None:
            yield
            return
        built = await run_in_threadpool(build_container, settings)
        app.state.container = built
        record_models(built.cards())
        # torch, pandas and the models leave millions of objects that live as long as the process; frozen,
        # the collector's full passes skip them instead of stalling requests for hundreds of milliseconds
        gc.collect()
        gc.freeze()
        # the outbox is shared: every API process and worker may send it, each row leased to one of them
        stop_dispatcher = notification_dispatcher(settings, built.outbox).start() if built.outbox else None
        if built.served is not None and settings.model_reload_interval_s > 0:
            built.served.watch(settings.model_reload_interval_s)
        try:
            yield
        finally:
            if stop_dispatcher is not None:
                stop_dispatcher()
            built.close()

    app = FastAPI(title="plantwatch", version="0.1.0", description=DESCRIPTION, lifespan=lifespan)
    if container is not None:
        app.state.container = container
        record_models(container.cards())
    access = AccessControl(settings)
    app.state.access = access
    app.state.page_cache = PageCache(max_age_s=settings.api_page_cache_max_age_s)
    install_error_handlers(app)
    # the stream route must come before /anomalies/{module}, which would otherwise take "stream" as a module
    for api_router in (
        stream.router,
        anomalies.router,
        ingest.router,
        incidents.router,
        alarm_kpis.router,
        health.router,
        drift.router,
        modules.router,
        metrics.router,
        chatbot.router,
    ):
        app.include_router(api_router, responses=ERROR_RESPONSES)
    app.include_router(dashboard.router)
    document_served_modules(app)
    app.openapi = guarded_openapi(app, access)  # type: ignore[method-assign]
    # added innermost first: the size limit sees the body first, the security headers wrap every answer
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestContext)
    app.add_middleware(SecurityHeaders)
    # outermost of all: the request's span is open while every middleware above logs and measures
    app.state.tracer_provider = install_tracing(app, settings, span_exporter)
    return app


def document_served_modules(app: FastAPI) -> None:
    """List the modules the app serves (they are configuration) as the `module` path parameter's enum."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        document = generate()
        container: Container | None = getattr(app.state, "container", None)
        served = [m.value for m in (container.modules if container is not None else known_modules())]
        for operations in document.get("paths", {}).values():
            for operation in operations.values():
                for parameter in operation.get("parameters", []):
                    if parameter.get("name") == "module" and parameter.get("in") == "path":
                        parameter["schema"]["enum"] = served
        return document

    app.openapi = openapi  # type: ignore[method-assign]
