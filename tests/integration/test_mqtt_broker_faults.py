"""A broker that restarts or is killed loses no reading, on a Mosquitto of this test's own (never the shared
one on 1883), configured as docker/mosquitto.conf: persistence on, saved after every change.

- restart: the broker stops (SIGTERM, it saves its state) in the middle of a replay and comes back; the
  publisher reconnects and sends again what it had not had acknowledged, the workers' persistent sessions
  resume, and every reading is scored exactly once.
- kill: the broker is killed (SIGKILL, no chance to save) with a backlog queued for an offline worker; after
  the restart the worker gets the whole backlog, because the broker had saved each message as it queued it.
- database hang: the store stops answering for a while during a burst larger than Mosquitto's default queue
  of 1,000 messages per session; the worker stops reading (it stores before it acknowledges), the backlog
  waits in the broker's queue (sized in the configuration) and is stored once the store answers again.
"""

import getpass
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
import torch
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from plantwatch.adapters.broker.publisher import ReadingPublisher
from plantwatch.adapters.storage import SqlAnomalyRepository, create_engine_from_url, create_schema
from plantwatch.adapters.wire import shared_subscription
from plantwatch.domain.modules import Module
from plantwatch.domain.ports import TrainedModel
from plantwatch.entrypoints.worker.mqtt_worker import MqttWorker
from plantwatch.settings import Settings
from tests.streaming_support import normal_frame, rows, trained_pca

pytestmark = pytest.mark.integration
torch.set_num_threads(1)

MODULE = Module.ENERGY
WINDOW = 4
CONTEXT = 8
SETTLE_TIMEOUT_S = 45.0
REPO_ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class OwnBroker:
    """A Mosquitto in a temporary directory, on a free port, that the test may stop, kill and restart."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.directory = directory
        # the compose broker's persistence settings, on this broker's own port and directory
        shipped = (REPO_ROOT / "docker" / "mosquitto.conf").read_text(encoding="utf-8")
        kept = [
            line
            for line in shipped.splitlines()
            if line.split(" ")[0] in ("autosave_interval", "autosave_on_changes", "max_queued_messages")
        ]
        self.config = directory / "mosquitto.conf"
        self.config.write_text(
            "\n".join(
                [
                    "persistence true",
                    f"persistence_location {directory}/",
                    *kept,
                    f"listener {self.port} 127.0.0.1",
                    "allow_anonymous true",
                    # run as whoever runs the test: mosquitto started as root drops to its own user,
                    # which may not write into this directory
                    f"user {getpass.getuser()}",
                ]
            )
            + "\n",
            encoding="utf-8",
        )
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["mosquitto", "-c", str(self.config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("mosquitto did not start")

    def stop(self, how: signal.Signals = signal.SIGTERM) -> None:
        assert self.process is not None
        self.process.send_signal(how)
        self.process.wait(10)
        self.process = None


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[OwnBroker]:
    if shutil.which("mosquitto") is None:
        pytest.skip("mosquitto is not installed")
    own = OwnBroker(tmp_path)
    own.start()
    try:
        yield own
    finally:
        if own.process is not None:
            own.stop(signal.SIGKILL)


@pytest.fixture(scope="module")
def model() -> TrainedModel:
    return trained_pca(MODULE, window=WINDOW)


def settings_for(broker: OwnBroker, tmp_path: Path) -> Settings:
    tag = uuid.uuid4().hex[:8]
    return Settings(
        database_url=f"sqlite:///{tmp_path / 'store.db'}",
        mqtt_port=broker.port,
        mqtt_topic_prefix=f"faults-{tag}",
        mqtt_share_group=f"faults-{tag}",
    )


def publish_all(settings: Settings, messages: int, batch: int, *, on_message=None) -> ReadingPublisher:  # type: ignore[no-untyped-def]
    frame = normal_frame(messages * batch, module=MODULE, source="line-1")
    publisher = ReadingPublisher(
        settings.mqtt_host, settings.mqtt_port, settings.mqtt_topic_prefix, resume_timeout_s=60
    )
    with publisher:
        for n in range(messages):
            begin = n * batch
            publisher.publish(
                MODULE, "line-1", rows(frame, begin, begin + batch), rows(frame, begin - CONTEXT, begin)
            )
            if on_message is not None:
                on_message(n)
    return publisher


def stored_scores(repository: SqlAnomalyRepository) -> int:
    return len(repository.list_scores(MODULE, limit=1_000_000))


def wait_for(count: int, repository: SqlAnomalyRepository) -> int:
    """Scores stored once `count` are, or once none came for SETTLE_TIMEOUT_S (a backlog drains slowly on a
    busy machine: the broker rewrites its store after every acknowledgement)."""
    stored, last_progress = stored_scores(repository), time.monotonic()
    while stored < count and time.monotonic() - last_progress < SETTLE_TIMEOUT_S:
        time.sleep(0.5)
        now = stored_scores(repository)
        if now > stored:
            stored, last_progress = now, time.monotonic()
    return stored


def start_workers(settings: Settings, model: TrainedModel, repository, count: int) -> list[MqttWorker]:  # type: ignore[no-untyped-def]
    workers = [
        MqttWorker(
            settings, {MODULE: model}, repository, f"{settings.mqtt_share_group}-{n}", session_expiry_s=300
        )
        for n in range(count)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        assert worker.subscribed.wait(10)
    return workers


def test_a_broker_restart_during_a_replay_loses_and_duplicates_nothing(broker, model, tmp_path) -> None:
    settings = settings_for(broker, tmp_path)
    engine = create_engine_from_url(settings.database_url)
    create_schema(engine)
    repository = SqlAnomalyRepository(engine)
    messages, batch = 300, 5
    workers = start_workers(settings, model, repository, 2)

    def restart_midway(n: int) -> None:
        if n == messages // 2:
            broker.stop(signal.SIGTERM)
            time.sleep(1.5)
            broker.start()

    try:
        publisher = publish_all(settings, messages, batch, on_message=restart_midway)
        expected = messages * batch - (WINDOW - 1)  # the first readings have no earlier context
        assert wait_for(expected, repository) == expected
        assert publisher.reconnects >= 1
        assert all(worker.stats.reconnects >= 1 for worker in workers)
        time.sleep(1.0)
        assert stored_scores(repository) == expected  # nothing came twice (the store would refuse it anyway)
    finally:
        for worker in workers:
            worker.stop()
        engine.dispose()


def test_a_killed_broker_keeps_the_backlog_it_had_acknowledged(broker, model, tmp_path) -> None:
    settings = settings_for(broker, tmp_path)
    engine = create_engine_from_url(settings.database_url)
    create_schema(engine)
    repository = SqlAnomalyRepository(engine)
    messages, batch = 200, 5
    client_id = f"{settings.mqtt_share_group}-0"
    leave_session_behind(settings, client_id)  # a worker that subscribed, then crashed
    try:
        publish_all(settings, messages, batch)  # every message acknowledged: queued for the offline worker
        time.sleep(0.5)
        broker.stop(signal.SIGKILL)
        broker.start()
        (worker,) = start_workers(settings, model, repository, 1)
        expected = messages * batch - (WINDOW - 1)
        assert wait_for(expected, repository) == expected
        worker.stop()
    finally:
        engine.dispose()


def leave_session_behind(settings: Settings, client_id: str) -> None:
    """Subscribe as `client_id` with a persistent session and go away without ending it, as a crash does."""
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=client_id, protocol=MQTTProtocolVersion.MQTTv5
    )
    properties = Properties(PacketTypes.CONNECT)
    properties.SessionExpiryInterval = 300
    client.connect(settings.mqtt_host, settings.mqtt_port, clean_start=False, properties=properties)
    client.loop_start()
    topic = shared_subscription(settings.mqtt_share_group, settings.mqtt_topic_prefix, MODULE)
    client.subscribe(topic, qos=1)[1]
    time.sleep(0.5)
    client.disconnect()  # the session outlives the connection: its expiry is 300 s
    client.loop_stop()


class HangingStore(SqlAnomalyRepository):
    """The SQL store, except that writes block while `hang` is set: a database that stops answering."""

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.hang = threading.Event()

    def add_batch(self, points, anomalies):  # type: ignore[no-untyped-def]
        while self.hang.is_set():
            time.sleep(0.05)
        return super().add_batch(points, anomalies)


def test_a_hanging_database_during_a_burst_loses_nothing(broker, model, tmp_path) -> None:
    settings = settings_for(broker, tmp_path)
    engine = create_engine_from_url(settings.database_url)
    create_schema(engine)
    repository = HangingStore(engine)
    messages, batch = 1500, 1  # past Mosquitto's default of 1,000 queued messages per session
    workers = start_workers(settings, model, repository, 1)
    repository.hang.set()
    try:
        publish_all(settings, messages, batch)
        repository.hang.clear()
        expected = messages * batch - (WINDOW - 1)
        assert wait_for(expected, repository) == expected
    finally:
        repository.hang.clear()
        for worker in workers:
            worker.stop()
        engine.dispose()
