"""The FastAPI application: routers per resource, adapters from the composition root, one error mapping."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio.to_thread
from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from plantwatch.bootstrap import Container, build_container, notification_dispatcher
from plantwatch.domain.modules import known_modules
from plantwatch.entrypoints.api.errors import ERROR_RESPONSES, install_error_handlers
from plantwatch.entrypoints.api.routers import (
    alarm_kpis,
    anomalies,
    chatbot,
    dashboard,
    drift,
    health,
    incidents,
    ingest,
    modules,
    stream,
)
from plantwatch.settings import Settings, get_settings

DESCRIPTION = """
Anomalies of a plant's energy use, machines and control network, each with its root cause.

Timestamps are naive, in plant local time. Write endpoints need the `X-API-Key` header when the server has
an API key set. Ingest scores every reading that has a full model window: the readings this process saw
before for the same source (or the `context` readings a batch carries) complete the first window; without
them the first `window - 1` readings of a batch are context only.
"""


def create_app(settings: Settings | None = None, container: Container | None = None) -> FastAPI:
    """The app. With `container`, its adapters are used as given (tests); otherwise they are built from
    `settings` (default: the environment) when the app starts and closed when it stops."""
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
        chatbot.router,
    ):
        app.include_router(api_router, responses=ERROR_RESPONSES)
    app.include_router(dashboard.router)
    document_served_modules(app)
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
