"""GET /metrics: the Prometheus text of this server (see plantwatch.entrypoints.metrics)."""

from fastapi import APIRouter, Response
from starlette.concurrency import run_in_threadpool

from plantwatch.entrypoints.api.access import ViewerDep
from plantwatch.entrypoints.metrics import scrape

router = APIRouter(tags=["health"])


@router.get(
    "/metrics",
    summary="Prometheus metrics: request latency per route, readings scored, anomalies, models, worker",
    response_class=Response,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
async def metrics(_caller: ViewerDep) -> Response:
    # in multiprocess mode a scrape reads every process's files: off the event loop
    body, content_type = await run_in_threadpool(scrape)
    return Response(body, media_type=content_type)
