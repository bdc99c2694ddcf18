"""GET /anomalies/stream: anomalies pushed by ingest in this process and polled from the store, each once."""

import asyncio
import json
import threading
from datetime import datetime, timedelta

from fastapi.testclient import TestClient

from plantwatch.bootstrap import Container
from plantwatch.domain.anomaly import Anomaly, FeatureContribution
from plantwatch.domain.modules import Module
from plantwatch.entrypoints.api.app import create_app
from plantwatch.entrypoints.api.routers.stream import SeenIds, anomaly_events
from plantwatch.settings import Settings
from tests.fakes import InMemoryAnomalyRepository

T0 = datetime(2024, 3, 1, 12, 0)


def anomaly(minute: int, module: Module = Module.CYBER) -> Anomaly:
    return Anomaly(
        module=module,
        source="plc-1",
        window_start=T0 + timedelta(minutes=minute - 1),
        window_end=T0 + timedelta(minutes=minute),
        score=3.0,
        threshold=1.0,
        root_cause=(FeatureContribution("LIT101", 9.0, 2.0, 1.0),),
        model_name="pca",
        model_version="v1",
        detected_at=T0,
    )


def container() -> Container:
    settings = Settings(database_url="sqlite://")
    return Container(settings=settings, repository=InMemoryAnomalyRepository(), models={})


def test_stream_sends_pushed_and_polled_anomalies_once_and_not_history():
    app_container = container()
    app_container.repository.add_many([anomaly(0)])  # stored before the client connected: not sent

    async def collect() -> list[str]:
        events = anomaly_events(app_container, Module.CYBER, poll_seconds=0.05)
        received: list[str] = []

        async def read() -> None:
            async for event in events:
                received.append(json.loads(event.data)["id"])
                if len(received) == 3:
                    return

        reader = asyncio.create_task(read())
        await asyncio.sleep(0.1)
        pushed = anomaly(1)
        # ingest publishes from a worker thread, and stores too: the poll must not send it a second time
        app_container.repository.add_many([pushed])
        thread = threading.Thread(
            target=app_container.feed.publish, args=([pushed, anomaly(2, Module.ENERGY)],)
        )
        thread.start()
        thread.join()
        await asyncio.sleep(0.2)
        # stored by another process: found by the poll
        app_container.repository.add_many([anomaly(3), anomaly(4)])
        await asyncio.wait_for(reader, timeout=5)
        await events.aclose()
        return received

    received = asyncio.run(collect())
    assert received == [anomaly(1).id, anomaly(3).id, anomaly(4).id]
    assert app_container.feed.listener_count == 0


def test_seen_ids_forget_the_oldest():
    seen = SeenIds(capacity=2)
    assert seen.add("a") and seen.add("b") and not seen.add("a")
    assert seen.add("c")
    assert seen.add("a")  # "a" was forgotten when "c" came


def test_stream_route_rejects_unknown_module():
    client = TestClient(create_app(container().settings, container()))
    response = client.get("/anomalies/stream", params={"module": "water"})
    assert response.status_code == 404
