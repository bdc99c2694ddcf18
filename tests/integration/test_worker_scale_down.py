"""Scaling the workers down through the real Mosquitto loses nothing.

Mosquitto keeps a disconnected member of a share group and goes on queueing its share of new messages in
that member's persistent session until the same client id reconnects. A worker removed for good must therefore
drain its queue and delete its session when it stops; here one of two workers is stopped gracefully in the
middle of a stream, with a backlog, and never started again, and every published reading must still be scored
once.
"""

import socket
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
import torch
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from plantwatch.adapters.storage import SqlAnomalyRepository, create_engine_from_url, create_schema
from plantwatch.bootstrap import reading_publisher
from plantwatch.domain.frames import SensorFrame
from plantwatch.domain.modules import Module
from plantwatch.entrypoints.worker.mqtt_worker import MqttWorker
from plantwatch.services.ingest import IngestResult
from plantwatch.settings import Settings
from tests.streaming_support import normal_frame, rows, trained_pca

pytestmark = pytest.mark.integration
torch.set_num_threads(1)

MODULE = Module.ENERGY
BATCH = 10
CONTEXT = 8  # readings sent before each batch: more than the model's window of 4
MESSAGES_BEFORE_STOP = 80
MESSAGES_AFTER_STOP = 80
# The stopped worker is slowed down so that the broker holds a backlog for it when it is told to stop.
SLOW_WORKER_DELAY_S = 0.04
TEST_SESSION_EXPIRY_S = 120  # long enough to matter, short enough not to pile up in the broker
SETTLE_TIMEOUT_S = 30.0


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    defaults = Settings()
    try:
        socket.create_connection((defaults.mqtt_host, defaults.mqtt_port), timeout=2).close()
    except OSError as error:
        pytest.skip(f"Mosquitto is not reachable at {defaults.mqtt_host}:{defaults.mqtt_port}: {error}")
    tag = uuid.uuid4().hex[:10]
    return Settings(
        database_url=f"sqlite:///{tmp_path / 'store.db'}",
        models_dir=tmp_path / "models",
        mqtt_topic_prefix=f"plantwatch-scale-down-{tag}",
        mqtt_share_group=f"scale-down-{tag}",
    )


def publish(settings: Settings, frame: SensorFrame, first_message: int, messages: int) -> None:
    """Publish messages [first_message, first_message + messages) of BATCH readings, each with its context."""
    with reading_publisher(settings) as publisher:
        for n in range(first_message, first_message + messages):
            begin = CONTEXT + n * BATCH
            publisher.publish(
                MODULE, frame.source, rows(frame, begin, begin + BATCH), rows(frame, begin - CONTEXT, begin)
            )


def session_present(settings: Settings, client_id: str) -> bool:
    """Whether the broker still holds a session for `client_id`; the probe's own session ends with it."""
    connected = threading.Event()
    present: list[bool] = []

    def on_connect(_c: mqtt.Client, _u: object, flags: mqtt.ConnectFlags, _r: object, _p: object) -> None:
        present.append(flags.session_present)
        connected.set()

    probe = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=client_id, protocol=MQTTProtocolVersion.MQTTv5, manual_ack=True
    )
    probe.on_connect = on_connect
    properties = Properties(PacketTypes.CONNECT)
    properties.SessionExpiryInterval = 0  # the probe takes the session over and lets it end when it leaves
    probe.connect(settings.mqtt_host, settings.mqtt_port, clean_start=False, properties=properties)
    probe.loop_start()
    try:
        assert connected.wait(10), "the probe got no CONNACK"
    finally:
        probe.disconnect()
        probe.loop_stop()
    return present[0]


def test_a_gracefully_stopped_worker_that_never_returns_leaves_no_reading_unscored(settings: Settings):
    frame = normal_frame(CONTEXT + (MESSAGES_BEFORE_STOP + MESSAGES_AFTER_STOP) * BATCH, module=MODULE)
    published_readings = (MESSAGES_BEFORE_STOP + MESSAGES_AFTER_STOP) * BATCH
    engine = create_engine_from_url(settings.database_url)
    create_schema(engine)
    repository = SqlAnomalyRepository(engine)
    model = trained_pca(MODULE)
    group = settings.mqtt_share_group

    def slowly(_result: IngestResult) -> None:
        time.sleep(SLOW_WORKER_DELAY_S)

    leaving = MqttWorker(
        settings,
        {MODULE: model},
        repository,
        client_id=f"{group}-leaving",
        on_stored=slowly,
        session_expiry_s=TEST_SESSION_EXPIRY_S,
    )
    staying = MqttWorker(
        settings,
        {MODULE: model},
        repository,
        client_id=f"{group}-staying",
        session_expiry_s=TEST_SESSION_EXPIRY_S,
    )
    leaving_thread, staying_thread = leaving.start(), staying.start()
    try:
        assert leaving.subscribed.wait(10) and staying.subscribed.wait(10), "a worker did not subscribe"
        publish(settings, frame, 0, MESSAGES_BEFORE_STOP)
        deadline = time.monotonic() + SETTLE_TIMEOUT_S
        while leaving.stats.stored < 5 and time.monotonic() < deadline:
            time.sleep(0.02)
        backlog_at_stop = MESSAGES_BEFORE_STOP // 2 - leaving.stats.received
        assert backlog_at_stop > 10, "the broker held no backlog for the leaving worker: nothing to drain"

        stopped_at = time.monotonic()
        leaving.stop()
        # the rest of the stream arrives while the leaving worker drains, and after it is gone
        publish(settings, frame, MESSAGES_BEFORE_STOP, MESSAGES_AFTER_STOP // 2)
        leaving_thread.join(SETTLE_TIMEOUT_S)
        assert not leaving_thread.is_alive(), "run() did not return after stop()"
        stop_took_s = time.monotonic() - stopped_at
        publish(settings, frame, MESSAGES_BEFORE_STOP + MESSAGES_AFTER_STOP // 2, MESSAGES_AFTER_STOP // 2)

        deadline = time.monotonic() + SETTLE_TIMEOUT_S
        while len(repository.list_scores(MODULE, limit=100_000)) < published_readings:
            if time.monotonic() > deadline:
                break
            time.sleep(0.1)
        time.sleep(0.5)  # time for a duplicate to show up
        scored = Counter(point.timestamp for point in repository.list_scores(MODULE, limit=100_000))
        published = {ts.to_pydatetime() for ts in frame.values.index[CONTEXT:]}
        missing = published - set(scored)
        assert not missing, (
            f"{len(missing)} of {published_readings} readings never scored: the stopped worker's session "
            f"kept its share (stopped worker: {leaving.stats}; remaining worker: {staying.stats})"
        )
        assert set(scored) == published and all(count == 1 for count in scored.values())
        assert leaving.stats.failed == staying.stats.failed == 0

        # what the broker had queued for the leaving worker when it stopped was processed by it, not lost
        assert leaving.stats.drained >= backlog_at_stop
        assert leaving.stats.session_released
        assert leaving.stats.stored + staying.stats.stored == MESSAGES_BEFORE_STOP + MESSAGES_AFTER_STOP
        # the drain ends one quiet period after the backlog, far below its limit
        assert stop_took_s < leaving.drain_limit_s
    finally:
        leaving.stop()
        staying.stop()
        leaving_thread.join(SETTLE_TIMEOUT_S)
        staying_thread.join(SETTLE_TIMEOUT_S)
        engine.dispose()
    assert not session_present(settings, leaving.client_id), "the stopped worker's session is still held"
    assert staying.stats.session_released
