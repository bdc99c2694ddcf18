"""Workers on the real Mosquitto follow a promotion and a rollback without a restart while readings keep
arriving: every published reading is scored and stored exactly once, by v0001, v0002, then v0001 again."""

import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from plantwatch.adapters.detectors import build_detector
from plantwatch.adapters.registry import FileModelRegistry
from plantwatch.adapters.wire import CONTEXT_READINGS
from plantwatch.bootstrap import build_container, reading_publisher
from plantwatch.domain.modules import Module
from plantwatch.domain.thresholds import QuantileThresholder
from plantwatch.entrypoints.worker.mqtt_worker import MqttWorker
from plantwatch.services.lifecycle import promote_version, rollback_production
from plantwatch.services.training import train_model
from plantwatch.settings import Settings
from tests.integration.test_mqtt_streaming import TEST_SESSION_EXPIRY_S, mosquitto_reachable
from tests.streaming_support import START, STEP, normal_frame, rows

pytestmark = pytest.mark.integration
torch.set_num_threads(1)

MODULE = Module.CYBER
WINDOW = 4
BATCH = 10
MESSAGES = 150


def wait_until(condition: Callable[[], bool], what: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        time.sleep(0.02)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    defaults = Settings()
    if not mosquitto_reachable(defaults.mqtt_host, defaults.mqtt_port):
        pytest.skip(f"Mosquitto is not reachable at {defaults.mqtt_host}:{defaults.mqtt_port}")
    tag = uuid.uuid4().hex[:10]
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'store.db'}",
        models_dir=tmp_path / "models",
        cyber_model="pca",
        mqtt_topic_prefix=f"plantwatch-reload-{tag}",
        mqtt_share_group=f"reload-{tag}",
    )
    registry = FileModelRegistry(settings.models_dir)
    for seed in (1, 2):
        train_model(
            normal_frame(1500, module=MODULE, seed=seed),
            build_detector("pca", window=WINDOW),
            QuantileThresholder(0.995),
            registry,
        )
    return settings


def test_workers_follow_promotion_and_rollback_while_readings_flow(settings: Settings) -> None:
    container = build_container(settings, [MODULE])
    assert container.served is not None and container.model(MODULE).card.version == "v0001"
    container.served.watch(0.05)
    workers = [
        MqttWorker(
            settings,
            container.models,
            container.repository,
            client_id=f"{settings.mqtt_share_group}-{n}",
            session_expiry_s=TEST_SESSION_EXPIRY_S,
            drift=container.drift,
        )
        for n in range(2)
    ]
    threads = [worker.start() for worker in workers]
    stream = normal_frame(MESSAGES * BATCH, module=MODULE, seed=9, start=START + 5000 * STEP)
    published = [0]

    def publish_readings() -> None:
        with reading_publisher(settings) as publisher:
            for message in range(MESSAGES):
                begin = message * BATCH
                context = rows(stream, begin - CONTEXT_READINGS, begin)
                publisher.publish(MODULE, "plc-1", rows(stream, begin, begin + BATCH), context)
                published[0] = message + 1
                time.sleep(0.01)

    stored = lambda: sum(w.stats.stored for w in workers)  # noqa: E731
    served_version = lambda: container.model(MODULE).card.version  # noqa: E731
    publisher = threading.Thread(target=publish_readings)
    registry = FileModelRegistry(settings.models_dir)  # another process's view, as `plantwatch models` has
    try:
        for worker in workers:
            assert worker.subscribed.wait(10), "worker did not subscribe"
        publisher.start()
        wait_until(lambda: stored() >= 20, "messages were scored by v0001")
        promote_version(registry, MODULE, "pca", "v0002", force=True)  # the gate has its own tests
        wait_until(lambda: served_version() == "v0002", "the workers serve v0002")
        promoted_at = stored()
        wait_until(lambda: stored() >= promoted_at + 20, "messages were scored by v0002")
        rollback_production(registry, MODULE, "pca")
        wait_until(lambda: served_version() == "v0001", "the workers serve v0001 again")
        assert published[0] < MESSAGES - 10, "the stream ended before the rollback: make it longer"
        publisher.join()
        wait_until(lambda: stored() == MESSAGES, "every message was stored")
        assert sum(w.stats.rejected + w.stats.failed for w in workers) == 0
    finally:
        for worker in workers:
            worker.stop()
        for thread in threads:
            thread.join(10)
        container.close()

    points = container.repository.list_scores(MODULE, limit=100_000)
    timestamps = sorted(p.timestamp for p in points)
    # the first message has no context, so its first WINDOW - 1 readings are not scored; the rest once each
    assert len(points) == MESSAGES * BATCH - (WINDOW - 1)
    assert timestamps == list(stream.values.index[WINDOW - 1 :])
    by_time = sorted(points, key=lambda p: p.timestamp)
    assert {p.model_version for p in by_time} == {"v0001", "v0002"}
    assert by_time[0].model_version == "v0001" and by_time[-1].model_version == "v0001"
