"""The compose topology as native processes: two workers on one shared subscription, PostgreSQL, Mosquitto and
the API.

A replayed data set is published over MQTT while one worker is killed with SIGKILL mid-stream and started
again under the same client id, as compose's `restart: unless-stopped` does with a crashed container. Then
every reading that has a full window must have exactly one row in the scores table, and the API must serve
exactly the anomalies that scoring the same data in-process gives.

Each run has its own PostgreSQL schema, MQTT topic prefix, share group and client ids, so parallel runs and
other tests never see each other's messages or rows.
"""

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import torch
from sqlalchemy import Engine, create_engine, text

from plantwatch.adapters.datasets import load_dataset
from plantwatch.adapters.datasets.samples import sample_path
from plantwatch.adapters.registry import FileModelRegistry
from plantwatch.domain.modules import Module
from plantwatch.services.scoring import score_frame

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
PLANTWATCH = Path(sys.executable).parent / "plantwatch"
MODULE = Module.ENERGY
MODEL = "pca"
READINGS = 2000  # enough messages for a kill mid-stream, few enough to stay well under the time budget
START_TIMEOUT_S = 60.0
SETTLE_TIMEOUT_S = 90.0


def _mqtt_unreachable_reason() -> str | None:
    try:
        with socket.create_connection(("127.0.0.1", 1883), timeout=3):
            return None
    except OSError as error:
        return f"Mosquitto at 127.0.0.1:1883 is not reachable: {error}"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Service:
    """A `plantwatch` sub-command running as a child process, its output in a log file."""

    name: str
    args: list[str]
    env: dict[str, str]
    log_path: Path
    one_shot: bool = False
    """Exits by itself when done (replay); a long-running service exiting is a failure."""
    process: subprocess.Popen[bytes] | None = None
    killed: bool = False

    def start(self) -> "Service":
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [str(PLANTWATCH), *self.args],
            env=self.env,
            cwd=self.log_path.parent,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def tail(self, lines: int = 40) -> str:
        return f"--- {self.name} ({self.log_path}) ---\n" + "\n".join(self.log().splitlines()[-lines:])

    def died(self) -> bool:
        """Exited though it should not have: not killed by the test, not a one-shot command that succeeded."""
        if self.process is None or self.killed:
            return False
        code = self.process.poll()
        return code is not None and not (self.one_shot and code == 0)

    def kill(self) -> None:
        self.killed = True
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.kill()


def _wait_for(what: str, condition: Callable[[], bool], timeout: float, services: list[Service]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        for service in services:
            if service.died():
                assert service.process is not None
                pytest.fail(
                    f"{service.name} exited with {service.process.returncode} while waiting for {what}\n"
                    + service.tail()
                )
        time.sleep(0.25)
    pytest.fail(
        f"timed out after {timeout:.0f} s waiting for {what}\n" + "\n".join(s.tail() for s in services)
    )


@pytest.fixture
def topology_env(postgres_url: str, tmp_path: Path) -> dict[str, str]:
    reason = _mqtt_unreachable_reason()
    if reason is not None:
        pytest.skip(reason)
    if not PLANTWATCH.exists():
        pytest.skip(f"the plantwatch command is not installed at {PLANTWATCH}")
    run_id = uuid.uuid4().hex[:10]
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "PYTHONUNBUFFERED": "1",
        "OMP_NUM_THREADS": "1",
        "PLANTWATCH_DATABASE_URL": postgres_url,
        "PLANTWATCH_MODELS_DIR": str(tmp_path / "models"),
        "PLANTWATCH_DATASETS_DIR": str(tmp_path / "datasets"),
        "PLANTWATCH_MQTT_HOST": "127.0.0.1",
        "PLANTWATCH_MQTT_PORT": "1883",
        "PLANTWATCH_MQTT_TOPIC_PREFIX": f"plantwatch-scale-{run_id}",
        "PLANTWATCH_MQTT_SHARE_GROUP": f"scale-{run_id}",
        f"PLANTWATCH_{MODULE.upper()}_MODEL": MODEL,
    }


@pytest.fixture
def services() -> Iterator[list[Service]]:
    started: list[Service] = []
    try:
        yield started
    finally:
        for service in started:
            service.stop()


def _stored_scores(engine: Engine) -> dict[datetime, list[float]]:
    """Every score row of the module, grouped by reading timestamp."""
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT timestamp, score FROM scores WHERE module = :module"), {"module": MODULE.value}
        ).all()
    per_timestamp: dict[datetime, list[float]] = defaultdict(list)
    for timestamp, score in rows:
        per_timestamp[timestamp].append(score)
    return per_timestamp


def _served_anomaly_ids(api: httpx.Client) -> list[str]:
    ids: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 1000, **({"cursor": cursor} if cursor else {})}
        response = api.get(f"/anomalies/{MODULE.value}", params=params)
        response.raise_for_status()
        page = response.json()
        ids.extend(item["id"] for item in page["items"])
        cursor = page["next_cursor"]
        if not cursor:
            return ids


def test_killed_worker_loses_and_duplicates_nothing(
    topology_env: dict[str, str], services: list[Service], tmp_path: Path
) -> None:
    torch.set_num_threads(1)
    env = topology_env

    # The data set: the first READINGS rows of the generated sample, as a file in the module's own layout.
    source_sample = sample_path(MODULE, ROOT / "datasets")
    if not source_sample.exists():
        pytest.skip(f"generated sample {source_sample} is missing (run `plantwatch samples`)")
    lines = source_sample.read_text().splitlines(keepends=True)
    data_file = tmp_path / f"{MODULE.value}_replay.csv"
    data_file.write_text("".join(lines[: READINGS + 1]))

    # Trained on the whole labelled sample (its normal rows), as the compose trainer job does.
    train = subprocess.run(
        [str(PLANTWATCH), "train", MODULE.value, "--model", MODEL],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert train.returncode == 0, train.stdout + train.stderr

    # What the topology must end up with: the same data scored in-process by the same model.
    model = FileModelRegistry(Path(env["PLANTWATCH_MODELS_DIR"])).load(MODULE, MODEL)
    expected = score_frame(load_dataset(MODULE, data_file), model)
    expected_scores = {point.timestamp: point.score for point in expected.points}
    expected_ids = {anomaly.id for anomaly in expected.anomalies}
    assert expected_ids, "the sample has injected anomalies, the model must flag some of them"

    api_port = _free_port()
    worker_ids = [f"scale-worker-{env['PLANTWATCH_MQTT_SHARE_GROUP']}-{n}" for n in (1, 2)]

    def worker(n: int) -> Service:
        return Service(
            name=f"worker-{n}",
            args=["worker", "--module", MODULE.value, "--client-id", worker_ids[n - 1]],
            env=env,
            log_path=tmp_path / f"worker-{n}.log",
        )

    api = Service(
        name="api",
        args=["serve", "--host", "127.0.0.1", "--port", str(api_port)],
        env=env,
        log_path=tmp_path / "api.log",
    )
    workers = [worker(1), worker(2)]
    # Started together, as compose starts replicas: the store's schema creation must cope with the race.
    for service in [*workers, api]:
        services.append(service.start())

    client = httpx.Client(base_url=f"http://127.0.0.1:{api_port}", timeout=10)
    store = create_engine(env["PLANTWATCH_DATABASE_URL"])
    try:

        def api_healthy() -> bool:
            try:
                return client.get("/health").status_code == 200
            except httpx.TransportError:
                return False

        def subscribed(service: Service) -> Callable[[], bool]:
            # logged once the SUBSCRIBE is sent; replay's own start-up (seconds) leaves the broker time for it
            return lambda: "subscribed" in service.log()

        _wait_for("the API's /health", api_healthy, START_TIMEOUT_S, services)
        for service in workers:
            _wait_for(f"{service.name} to subscribe", subscribed(service), START_TIMEOUT_S, services)

        replay = Service(
            name="replay",
            args=["replay", MODULE.value, str(data_file), "--speed", "max", "--to", "mqtt"],
            env=env,
            log_path=tmp_path / "replay.log",
            one_shot=True,
        )
        services.append(replay.start())

        def scored() -> int:
            return len(_stored_scores(store))

        # Kill one worker once the stream is well under way but far from done.
        _wait_for(
            "a third of the readings to be scored",
            lambda: scored() >= len(expected_scores) // 3,
            SETTLE_TIMEOUT_S,
            services,
        )
        workers[0].kill()
        killed_at = scored()
        assert killed_at < len(expected_scores), "the stream ended before the kill: raise READINGS"
        # compose restarts a crashed container under the same hostname, hence the same client id and session
        services.append(worker(1).start())

        assert replay.process is not None
        replay.process.wait(timeout=SETTLE_TIMEOUT_S)
        assert replay.process.returncode == 0, replay.tail()

        # Poll until every reading is scored and the count has not moved for a few seconds.
        last, stable_since = -1, time.monotonic()
        deadline = time.monotonic() + SETTLE_TIMEOUT_S
        while time.monotonic() < deadline:
            now = scored()
            if now != last:
                last, stable_since = now, time.monotonic()
            elif now >= len(expected_scores) and time.monotonic() - stable_since > 3:
                break
            time.sleep(0.5)

        stored = _stored_scores(store)
        missing = sorted(set(expected_scores) - set(stored))
        unexpected = sorted(set(stored) - set(expected_scores))
        duplicated = {ts: len(scores) for ts, scores in stored.items() if len(scores) != 1}
        logs = "\n".join(s.tail() for s in services)
        assert not missing, (
            f"{len(missing)} of {len(expected_scores)} readings never scored, first {missing[:3]} "
            f"(worker-1 killed with {killed_at} scored)\n{logs}"
        )
        assert not unexpected, f"scores for readings that were not published: {unexpected[:3]}"
        assert not duplicated, f"readings scored more than once: {list(duplicated.items())[:3]}"
        # every reading was scored with its full window, whichever worker got it and whatever it saw before
        wrong = {
            ts: (scores[0], expected_scores[ts])
            for ts, scores in stored.items()
            if scores[0] != pytest.approx(expected_scores[ts], rel=1e-6, abs=1e-9)
        }
        assert not wrong, f"{len(wrong)} scores differ from in-process scoring: {list(wrong.items())[:3]}"

        served = _served_anomaly_ids(client)
        assert len(served) == len(set(served)), "the API served an anomaly twice"
        assert set(served) == expected_ids, (
            f"served {len(served)} anomalies, in-process scoring gives {len(expected_ids)}: "
            f"{len(expected_ids - set(served))} missing, {len(set(served) - expected_ids)} unexpected"
        )
    finally:
        client.close()
        store.dispose()
