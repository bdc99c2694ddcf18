"""GET /anomalies/stream: new anomalies as server-sent events.

Two sources, both deduplicated by anomaly id: the in-process feed (ingest in this process, pushed at once) and
a poll of the store's newest page every `poll_seconds` (anomalies an MQTT worker stores from another process).
A new client gets only what is stored after it connected.
"""

import asyncio
from collections import OrderedDict
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Query
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.concurrency import run_in_threadpool

from plantwatch.bootstrap import Container
from plantwatch.domain.access import Role
from plantwatch.domain.anomaly import Anomaly
from plantwatch.domain.modules import Module
from plantwatch.domain.ports import AnomalyQuery
from plantwatch.entrypoints.api.access import role_dependency
from plantwatch.entrypoints.api.dependencies import MODULE_SCHEMA, ContainerDep, module_or_404
from plantwatch.entrypoints.api.schemas import AnomalyOut

router = APIRouter(tags=["anomalies"], dependencies=[role_dependency(Role.VIEWER)])

POLL_PAGE = 200
# Enough ids to recognise anything still on the newest polled page; older ones can be forgotten.
SEEN_CAPACITY = 5 * POLL_PAGE


class SeenIds:
    """Ids already sent, oldest forgotten first."""

    def __init__(self, capacity: int = SEEN_CAPACITY) -> None:
        self._ids: OrderedDict[str, None] = OrderedDict()
        self.capacity = capacity

    def add(self, anomaly_id: str) -> bool:
        """True when the id is new."""
        if anomaly_id in self._ids:
            return False
        self._ids[anomaly_id] = None
        while len(self._ids) > self.capacity:
            self._ids.popitem(last=False)
        return True


def _event(anomaly: Anomaly) -> ServerSentEvent:
    return ServerSentEvent(
        data=AnomalyOut.from_domain(anomaly).model_dump_json(), event="anomaly", id=anomaly.id
    )


async def anomaly_events(
    container: Container, module: Module | None = None, poll_seconds: float = 1.0
) -> AsyncIterator[ServerSentEvent]:
    """Events for anomalies stored from now on, oldest first within each poll."""
    query = AnomalyQuery(module=module, limit=POLL_PAGE)
    seen = SeenIds()
    listener = container.feed.subscribe()
    try:
        for anomaly in (await run_in_threadpool(container.repository.find, query)).items:
            seen.add(anomaly.id)
        while True:
            try:
                pushed = await asyncio.wait_for(listener.queue.get(), timeout=poll_seconds)
            except TimeoutError:
                page = await run_in_threadpool(container.repository.find, query)
                for anomaly in reversed(page.items):
                    if seen.add(anomaly.id):
                        yield _event(anomaly)
                continue
            if (module is None or pushed.module == module) and seen.add(pushed.id):
                yield _event(pushed)
    finally:
        container.feed.unsubscribe(listener)


@router.get(
    "/anomalies/stream",
    summary="New anomalies as server-sent events (event: anomaly, data: AnomalyOut JSON)",
    response_class=EventSourceResponse,
)
async def stream_anomalies(
    container: ContainerDep,
    module: Annotated[
        str | None, Query(description="only this module's anomalies", json_schema_extra=MODULE_SCHEMA)
    ] = None,
) -> EventSourceResponse:
    selected = module_or_404(module) if module is not None else None
    return EventSourceResponse(anomaly_events(container, selected), ping=15)
