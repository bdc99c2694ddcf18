"""Streaming through the real Mosquitto: generated SWaT attacks published over MQTT become anomalies served by
the API, with the injected attack's feature ranked first; messages are acknowledged only once stored."""

import socket
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient

from plantwatch.adapters.datasets import load_sample
from plantwatch.adapters.detectors import build_detector
from plantwatch.adapters.registry import FileModelRegistry
from plantwatch.adapters.storage import SqlAnomalyRepository, create_engine_from_url, create_schema
from plantwatch.adapters.wire import CONTEXT_READINGS
from plantwatch.bootstrap import build_container, reading_publisher
from plantwatch.domain.frames import SensorFrame
from plantwatch.domain.modules import Module
from plantwatch.domain.ports import AnomalyRepository, TrainedModel
from plantwatch.domain.thresholds import build_thresholder
from plantwatch.entrypoints.api.app import create_app
from plantwatch.entrypoints.worker.mqtt_worker import MqttWorker
from plantwatch.services.training import train_model
from plantwatch.settings import Settings
from tests.streaming_support import rows

pytestmark = pytest.mark.integration
torch.set_num_threads(1)

BATCH = 10
TEST_SESSION_EXPIRY_S = 120  # long enough to survive a reconnect, short enough not to pile up in the broker


def mosquitto_reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    defaults = Settings()
    if not mosquitto_reachable(defaults.mqtt_host, defaults.mqtt_port):
        pytest.skip(f"Mosquitto is not reachable at {defaults.mqtt_host}:{defaults.mqtt_port}")
    tag = uuid.uuid4().hex[:10]
    # a topic prefix and share group of its own keep parallel runs and leftover sessions apart
    return Settings(
        database_url=f"sqlite:///{tmp_path / 'store.db'}",
        models_dir=tmp_path / "models",
        cyber_model="pca",
        mqtt_topic_prefix=f"plantwatch-test-{tag}",
        mqtt_share_group=f"workers-{tag}",
    )


@pytest.fixture(scope="module")
def swat() -> SensorFrame:
    return load_sample(Module.CYBER)


def first_attack(frame: SensorFrame) -> int:
    assert frame.labels is not None
    return int(np.argmax(frame.labels.to_numpy() == 1))


@pytest.fixture
def trained_settings(settings: Settings, swat: SensorFrame) -> Settings:
    """Settings whose registry holds a PCA model of the cyber module fitted on the sample's normal prefix."""
    normal, _ = swat.split(first_attack(swat) / len(swat))
    train_model(
        normal,
        build_detector("pca", window=4),
        build_thresholder("quantile", q=0.995),
        FileModelRegistry(settings.models_dir),
    )
    return settings


def publish(settings: Settings, frame: SensorFrame, start: int, stop: int) -> int:
    """Publish rows [start, stop) in batches, each carrying the readings before it as context."""
    messages = 0
    with reading_publisher(settings) as publisher:
        for begin in range(start, stop, BATCH):
            readings = rows(frame, begin, min(begin + BATCH, stop))
            context = rows(frame, begin - CONTEXT_READINGS, begin)
            publisher.publish(Module.CYBER, frame.source, readings, context)
            messages += 1
    return messages


def wait_until(condition: Callable[[], bool], timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the workers")
        time.sleep(0.1)


@contextmanager
def running_workers(
    settings: Settings, models: dict[Module, TrainedModel], repository: AnomalyRepository, count: int
) -> Iterator[list[MqttWorker]]:
    workers = [
        MqttWorker(
            settings,
            models,
            repository,
            client_id=f"{settings.mqtt_share_group}-{n}",
            session_expiry_s=TEST_SESSION_EXPIRY_S,
        )
        for n in range(count)
    ]
    threads = [worker.start() for worker in workers]
    try:
        for worker in workers:
            assert worker.subscribed.wait(10), "worker did not subscribe"
        yield workers
    finally:
        for worker in workers:
            worker.stop()
        for thread in threads:
            thread.join(10)


def test_published_attacks_become_anomalies_served_by_the_api(trained_settings: Settings, swat: SensorFrame):
    settings = trained_settings
    container = build_container(settings, [Module.CYBER])
    start = first_attack(swat)
    expected_scores = len(swat) - start
    try:
        with running_workers(settings, container.models, container.repository, count=2) as workers:
            messages = publish(settings, swat, start, len(swat))
            wait_until(lambda: sum(w.stats.stored for w in workers) == messages)
            # the shared subscription split the messages between the two workers
            assert all(w.stats.stored > 0 for w in workers)
            assert sum(w.stats.rejected + w.stats.failed for w in workers) == 0
        stored = container.repository.list_scores(Module.CYBER, limit=100_000)
        assert len(stored) == expected_scores  # every published reading scored once, none twice
    finally:
        container.close()

    with TestClient(create_app(settings)) as client:
        items: list[dict] = []
        cursor = None
        while True:
            params: dict[str, str | int] = {"limit": 50, **({"cursor": cursor} if cursor else {})}
            page = client.get("/anomalies/cyber", params=params).json()
            items += page["items"]
            cursor = page["next_cursor"]
            if cursor is None:
                break
    assert items, "no anomaly was stored"
    assert swat.root_causes is not None
    injected = {ts.isoformat(): feature for ts, feature in swat.root_causes.items() if feature}
    found_features = {injected[a["window_end"]] for a in items if a["window_end"] in injected}
    assert len(found_features) >= 2, f"attacks found: {found_features}"
    in_attacks = [a for a in items if a["window_end"] in injected]
    ranked_first = [a for a in in_attacks if a["root_cause"][0]["feature"] == injected[a["window_end"]]]
    assert len(ranked_first) >= 0.9 * len(in_attacks)


class FailsOnce:
    """The SQL store, except the first write raises: a worker that dies before storing."""

    def __init__(self, inner: SqlAnomalyRepository) -> None:
        self.inner = inner
        self.score_writes = 0

    def add_batch(self, points, anomalies):  # type: ignore[no-untyped-def]
        self.score_writes += 1
        if self.score_writes == 1:
            raise ConnectionError("store went away before the commit")
        return self.inner.add_batch(points, anomalies)

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return getattr(self.inner, name)


def test_message_is_acked_only_after_store_and_redelivered_after_a_failed_write(
    trained_settings: Settings, swat: SensorFrame
):
    settings = trained_settings
    engine = create_engine_from_url(settings.database_url)
    create_schema(engine)
    repository = FailsOnce(SqlAnomalyRepository(engine))
    model = FileModelRegistry(settings.models_dir).load(Module.CYBER, "pca")
    start = first_attack(swat)
    try:
        with running_workers(settings, {Module.CYBER: model}, repository, count=1) as (worker,):  # type: ignore[arg-type]
            publish(settings, swat, start, start + BATCH)
            wait_until(lambda: worker.stats.stored == 1, timeout_s=30)
            assert worker.stats.failed == 1 and worker.stats.reconnects >= 1
            assert worker.stats.received == 2  # the same message, delivered again after the reconnect
        stored = repository.inner.list_scores(Module.CYBER, limit=1000)
        assert len(stored) == BATCH  # context made every reading of the batch scorable; each stored once
        assert repository.score_writes == 2
    finally:
        engine.dispose()


def test_poison_messages_are_acked_and_counted_not_looped(trained_settings: Settings, swat: SensorFrame):
    import paho.mqtt.publish as mqtt_publish

    settings = trained_settings
    container = build_container(settings, [Module.CYBER])
    topic = f"{settings.mqtt_topic_prefix}/cyber/readings"
    start = first_attack(swat)
    try:
        with running_workers(settings, container.models, container.repository, count=1) as (worker,):
            mqtt_publish.single(
                topic, b"{not json", qos=1, hostname=settings.mqtt_host, port=settings.mqtt_port
            )
            mqtt_publish.single(
                topic,
                # a reading without most of the model's features
                b'{"source": "plc", "readings": [{"timestamp": "2015-12-28T10:00:00", "values": {"FIT101": 1}}]}',  # noqa: E501
                qos=1,
                hostname=settings.mqtt_host,
                port=settings.mqtt_port,
            )
            publish(settings, swat, start, start + BATCH)
            wait_until(lambda: worker.stats.stored == 1 and worker.stats.rejected == 2, timeout_s=30)
            time.sleep(0.5)
            assert worker.stats.received == 3  # rejected messages were acked: nothing came back
            assert any("readings[0].values." in reason for reason in worker.stats.rejected_reasons)
    finally:
        container.close()
