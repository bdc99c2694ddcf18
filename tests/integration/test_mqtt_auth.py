"""Publisher and worker against a broker that refuses anonymous clients, as the compose stack's Mosquitto
does.

The test starts its own Mosquitto (password file, `allow_anonymous false`) on a free port in a temporary
folder: the team's shared broker on 1883 is anonymous and must not be reconfigured.
"""

import getpass
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from plantwatch.adapters.broker.publisher import BrokerUnavailableError
from plantwatch.bootstrap import reading_publisher
from plantwatch.domain.modules import Module
from plantwatch.entrypoints.worker.mqtt_worker import MqttWorker
from plantwatch.settings import Settings
from tests.fakes import InMemoryAnomalyRepository
from tests.streaming_support import normal_frame, rows, trained_pca

pytestmark = pytest.mark.integration

USER, PASSWORD = "plant-gateway", "s3cret-" + uuid.uuid4().hex[:8]


@pytest.fixture
def broker_port(tmp_path: Path) -> Iterator[int]:
    mosquitto, mosquitto_passwd = (
        shutil.which("mosquitto", path="/usr/sbin:/usr/bin"),
        shutil.which("mosquitto_passwd"),
    )
    if mosquitto is None or mosquitto_passwd is None:
        pytest.skip("mosquitto and mosquitto_passwd are not installed")
    passwords = tmp_path / "passwd"
    subprocess.run([mosquitto_passwd, "-c", "-b", str(passwords), USER, PASSWORD], check=True, timeout=30)
    passwords.chmod(0o600)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    config = tmp_path / "mosquitto.conf"
    config.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous false\npassword_file {passwords}\npersistence false\n"
        # run as root it would switch to the mosquitto user, who cannot read the test's private folder
        f"user {getpass.getuser()}\n"
    )
    broker = subprocess.Popen(
        [mosquitto, "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or broker.poll() is not None:
                    pytest.fail(f"mosquitto did not start on port {port}")
                time.sleep(0.1)
        yield port
    finally:
        broker.terminate()
        broker.wait(timeout=10)


def _settings(port: int, tmp_path: Path, **login: object) -> Settings:
    return Settings(
        database_url=f"sqlite:///{tmp_path / 'store.db'}",
        mqtt_host="127.0.0.1",
        mqtt_port=port,
        mqtt_topic_prefix=f"auth-{uuid.uuid4().hex[:8]}",
        **login,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    "login",
    [{}, {"mqtt_username": USER, "mqtt_password": SecretStr("wrong")}],
    ids=["anonymous", "wrong-password"],
)
def test_the_publisher_names_a_refused_login(
    broker_port: int, tmp_path: Path, login: dict[str, object]
) -> None:
    settings = _settings(broker_port, tmp_path, **login)
    with (
        pytest.raises(
            BrokerUnavailableError, match=rf"127\.0\.0\.1:{broker_port} refused the client: Not auth"
        ),
        reading_publisher(settings),
    ):
        pass


def test_a_worker_with_the_login_scores_what_a_publisher_with_the_login_sends(
    broker_port: int, tmp_path: Path
) -> None:
    settings = _settings(broker_port, tmp_path, mqtt_username=USER, mqtt_password=SecretStr(PASSWORD))
    model = trained_pca(Module.ENERGY)
    repository = InMemoryAnomalyRepository()
    worker = MqttWorker(
        settings, {Module.ENERGY: model}, repository, client_id=f"auth-{uuid.uuid4().hex[:8]}"
    )
    thread = worker.start()
    try:
        assert worker.subscribed.wait(10), "the worker did not get its subscription with the login"
        frame = normal_frame(40)
        with reading_publisher(settings) as publisher:
            publisher.publish(Module.ENERGY, "line-1", rows(frame, 0, 40))
        deadline = time.monotonic() + 20
        while worker.stats.stored < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert worker.stats.stored == 1 and worker.stats.rejected == 0
        assert worker.stats.scores == 40 - (model.card.window - 1)
    finally:
        worker.stop()
        thread.join(timeout=30)
