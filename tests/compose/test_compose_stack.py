"""The compose stack in real containers, end to end: built images, PostgreSQL, Mosquitto with password auth,
the trainer job, two workers per worker image and the API.

The three generated samples are replayed over MQTT through the broker's published port, paced to last about
STREAM_S seconds. Once a third of a worker image's readings are scored, one of its two containers is killed
with `docker kill` (SIGKILL, no drain) and started again a few seconds later: same container, same hostname,
hence the same MQTT client id and persistent session, so the broker sends its unacknowledged and queued
messages again. Then every published reading must have exactly one score, equal to scoring the sample
in-process with the model the trainer wrote, and the API must serve exactly the in-process anomaly ids.

Run by `make compose-e2e` (PLANTWATCH_COMPOSE_E2E=1), which first starts Docker and builds the local base
images; skipped otherwise, since it builds images and takes minutes. By default the stack runs with the
docker/compose.local.yml overlay (no image registry here); PLANTWATCH_COMPOSE_OVERLAY= (empty) uses the public
base images instead.
"""

import json
import os
import secrets
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import torch

from plantwatch.adapters.broker.publisher import BrokerUnavailableError, ReadingPublisher
from plantwatch.adapters.datasets import load_dataset
from plantwatch.adapters.datasets.samples import sample_path
from plantwatch.adapters.registry import FileModelRegistry
from plantwatch.domain.modules import Module
from plantwatch.services.scoring import ScoringResult, score_frame

pytestmark = pytest.mark.compose

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
COMPOSE = Path(sys.executable).parent / "docker-compose"
PROJECT = "plantwatch-e2e"
OVERLAY = os.environ.get("PLANTWATCH_COMPOSE_OVERLAY", "compose.local.yml")
MODULES = (Module.ENERGY, Module.MACHINE, Module.CYBER)
WORKERS = {"worker-energy": (Module.ENERGY, Module.MACHINE), "worker-cyber": (Module.CYBER,)}
REPLICAS = 2
STREAM_S = 30.0
DOWNTIME_S = 5.0
BUILD_TIMEOUT_S = 3600.0
START_TIMEOUT_S = 600.0
SETTLE_TIMEOUT_S = 300.0

if os.environ.get("PLANTWATCH_COMPOSE_E2E") != "1":
    pytest.skip(
        "builds and runs the compose stack (minutes): run it with `make compose-e2e`", allow_module_level=True
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class Stack:
    env: dict[str, str]
    api: httpx.Client
    mqtt_port: int
    timings: dict[str, float]

    def compose(self, *args: str, timeout: float = 600.0, check: bool = True) -> str:
        files = ["-f", str(DOCKER / "docker-compose.yml")]
        if OVERLAY:
            files += ["-f", str(DOCKER / OVERLAY)]
        result = subprocess.run(
            [str(COMPOSE), "-p", PROJECT, *files, *args],
            capture_output=True,
            text=True,
            env=self.env,
            cwd=DOCKER,
            timeout=timeout,
        )
        if check:
            assert result.returncode == 0, (
                f"docker compose {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
            )
        return result.stdout + result.stderr

    def served_models(self) -> dict[Module, str]:
        """Each module's model as the compose file sets it (PLANTWATCH_<MODULE>_MODEL of the workers)."""
        config = json.loads(self.compose("config", "--format", "json"))
        environment = config["services"]["api"]["environment"]
        return {module: environment[f"PLANTWATCH_{module.value.upper()}_MODEL"] for module in MODULES}

    def containers(self, service: str) -> list[str]:
        """The service's container names, replica 1 first."""
        names = self.compose("ps", "--all", "--format", "{{.Name}}", service).split()
        return sorted(name for name in names if name.startswith(f"{PROJECT}-{service}-"))

    def logs(self, tail: int = 40) -> str:
        return self.compose("logs", "--no-color", "--tail", str(tail), timeout=60, check=False)


def _docker(*args: str) -> str:
    result = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"docker {' '.join(args)}: {result.stderr}"
    return result.stdout.strip()


def _wait_for(what: str, condition: Callable[[], bool], timeout: float, stack: Stack) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(1.0)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}\n{stack.logs()}")


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    api_port, mqtt_port = _free_port(), _free_port()
    env = {
        "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
        "HOME": os.environ.get("HOME", "/root"),
        "POSTGRES_PASSWORD": secrets.token_hex(12),
        "PLANTWATCH_API_KEY": secrets.token_hex(12),
        "MQTT_PASSWORD": secrets.token_hex(12),
        "PLANTWATCH_API_HOST_PORT": str(api_port),
        "PLANTWATCH_MQTT_HOST_PORT": str(mqtt_port),
    }
    stack = Stack(env, httpx.Client(base_url=f"http://127.0.0.1:{api_port}", timeout=30), mqtt_port, {})
    stack.compose("down", "--volumes", "--remove-orphans", timeout=300)  # a previous run's leftovers
    try:
        started = time.monotonic()
        # The API image first and alone: the worker images then take every stage but their last from its
        # cache instead of three parallel builds of the same dependencies on a shared CPU.
        stack.compose("build", "api", timeout=BUILD_TIMEOUT_S)
        stack.compose("up", "--detach", "--build", timeout=BUILD_TIMEOUT_S)
        stack.timings["build and up"] = time.monotonic() - started
        yield stack
    finally:
        if sys.exc_info()[0] is not None:
            print(stack.logs(tail=80))
        started = time.monotonic()
        stack.compose("down", "--volumes", "--remove-orphans", timeout=300, check=False)
        stack.api.close()
        print(f"compose down: {time.monotonic() - started:.0f} s")


def _healthy(container: str) -> bool:
    return _docker("inspect", "--format", "{{.State.Health.Status}}", container) == "healthy"


def _reference(stack: Stack, tmp_path: Path) -> dict[Module, ScoringResult]:
    """Each sample scored in-process with the model version the trainer wrote into the models volume."""
    models_dir = tmp_path / "models"
    stack.compose("cp", "trainer:/data/models", str(models_dir))
    registry = FileModelRegistry(models_dir)
    torch.set_num_threads(1)
    return {
        module: score_frame(
            load_dataset(module, sample_path(module, ROOT / "datasets")), registry.load(module, name)
        )
        for module, name in stack.served_models().items()
    }


def _replay(stack: Stack, module: Module, tmp_path: Path) -> subprocess.Popen[bytes]:
    path = sample_path(module, ROOT / "datasets")
    index = load_dataset(module, path).values.index
    speed = (index[-1] - index[0]).total_seconds() / STREAM_S
    env = {
        **os.environ,
        "PLANTWATCH_MQTT_HOST": "127.0.0.1",
        "PLANTWATCH_MQTT_PORT": str(stack.mqtt_port),
        "PLANTWATCH_MQTT_USERNAME": "plantwatch",
        "PLANTWATCH_MQTT_PASSWORD": stack.env["MQTT_PASSWORD"],
    }
    log = (tmp_path / f"replay-{module.value}.log").open("wb")
    # cwd: a developer's .env in the repository must not redirect the replay
    return subprocess.Popen(
        [sys.executable, "-m", "plantwatch", "replay", module.value, str(path), "--speed", f"{speed:.3f}x"],
        env=env,
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def _served_scores(stack: Stack, module: Module) -> Counter[datetime]:
    response = stack.api.get(f"/scores/{module.value}", params={"limit": 50_000})
    response.raise_for_status()
    return Counter(datetime.fromisoformat(point["timestamp"]) for point in response.json()["points"])


def _served_score_values(stack: Stack, module: Module) -> dict[datetime, float]:
    response = stack.api.get(f"/scores/{module.value}", params={"limit": 50_000})
    response.raise_for_status()
    return {datetime.fromisoformat(p["timestamp"]): float(p["score"]) for p in response.json()["points"]}


def _served_anomaly_ids(stack: Stack, module: Module) -> list[str]:
    ids: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 1000, **({"cursor": cursor} if cursor else {})}
        response = stack.api.get(f"/anomalies/{module.value}", params=params)
        response.raise_for_status()
        page = response.json()
        ids.extend(item["id"] for item in page["items"])
        cursor = page["next_cursor"]
        if not cursor:
            return ids


def test_the_broker_refuses_anonymous_clients(stack: Stack) -> None:
    _wait_for("the broker", lambda: _healthy(f"{PROJECT}-mosquitto-1"), START_TIMEOUT_S, stack)
    with (
        pytest.raises(BrokerUnavailableError, match="refused the client: Not authorized"),
        ReadingPublisher("127.0.0.1", stack.mqtt_port, "plantwatch"),
    ):
        pass
    with (
        pytest.raises(BrokerUnavailableError, match="Not authorized"),
        ReadingPublisher("127.0.0.1", stack.mqtt_port, "plantwatch", username="plantwatch", password="x"),
    ):
        pass


def test_a_killed_worker_loses_and_duplicates_nothing(stack: Stack, tmp_path: Path) -> None:
    started = time.monotonic()
    workers = {service: stack.containers(service) for service in WORKERS}
    for service, names in workers.items():
        assert len(names) == REPLICAS, f"{service}: {names}"

    def everything_healthy() -> bool:
        containers = [f"{PROJECT}-api-1", *(name for names in workers.values() for name in names)]
        return all(_healthy(name) for name in containers)

    _wait_for("the API and every worker to be healthy", everything_healthy, START_TIMEOUT_S, stack)
    _wait_for(
        "every worker to subscribe",
        lambda: (
            stack.compose("logs", "--no-color", *WORKERS).count("subscribed to") >= REPLICAS * len(WORKERS)
        ),
        START_TIMEOUT_S,
        stack,
    )
    stack.timings["healthy after up"] = time.monotonic() - started

    expected = _reference(stack, tmp_path)
    expected_scores = {
        module: {p.timestamp: p.score for p in result.points} for module, result in expected.items()
    }
    for module, result in expected.items():
        assert result.anomalies, f"the {module.value} sample has injected anomalies: the model must flag some"

    started = time.monotonic()
    replays = {module: _replay(stack, module, tmp_path) for module in MODULES}

    def scored(modules: tuple[Module, ...]) -> int:
        return sum(sum(_served_scores(stack, module).values()) for module in modules)

    # Kill one replica of each worker image once a third of its readings are scored, start it again later.
    killed: dict[str, tuple[str, int, float]] = {}
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    while len(killed) < len(WORKERS) and time.monotonic() < deadline:
        for service, modules in WORKERS.items():
            total = sum(len(expected_scores[m]) for m in modules)
            if service not in killed and scored(modules) >= total // 3:
                victim = workers[service][0]
                _docker("kill", victim)
                at = scored(modules)
                assert at < total, f"{service}'s stream ended before the kill: lower STREAM_S's pace"
                killed[service] = (victim, at, time.monotonic())
        for victim, _, when in killed.values():
            if (
                time.monotonic() - when >= DOWNTIME_S
                and _docker("inspect", "-f", "{{.State.Running}}", victim) != "true"
            ):
                _docker("start", victim)
        time.sleep(0.5)
    assert len(killed) == len(WORKERS), (
        f"only {sorted(killed)} reached a third of their readings\n{stack.logs()}"
    )
    for victim, _, when in killed.values():
        time.sleep(max(0.0, DOWNTIME_S - (time.monotonic() - when)))
        if _docker("inspect", "-f", "{{.State.Running}}", victim) != "true":
            _docker("start", victim)

    for module, replay in replays.items():
        assert replay.wait(timeout=SETTLE_TIMEOUT_S) == 0, (
            tmp_path / f"replay-{module.value}.log"
        ).read_text()

    # Until every reading is scored and the counts have not moved for a few seconds.
    total = sum(len(s) for s in expected_scores.values())
    last, stable_since = -1, time.monotonic()
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    while time.monotonic() < deadline:
        now = scored(MODULES)
        if now != last:
            last, stable_since = now, time.monotonic()
        elif now >= total and time.monotonic() - stable_since > 5:
            break
        time.sleep(1.0)
    stack.timings["stream, kill and restart until all scored"] = time.monotonic() - started

    report = {service: f"{victim} killed at {at} scored" for service, (victim, at, _) in killed.items()}
    for module, reference in expected_scores.items():
        served = _served_scores(stack, module)
        missing = sorted(set(reference) - set(served))
        unexpected = sorted(set(served) - set(reference))
        duplicated = {ts: n for ts, n in served.items() if n != 1}
        assert not missing, (
            f"{module.value}: {len(missing)} of {len(reference)} readings never scored, first {missing[:3]} "
            f"({report})\n{stack.logs()}"
        )
        assert not unexpected, f"{module.value}: scores for readings never published: {unexpected[:3]}"
        assert not duplicated, (
            f"{module.value}: readings scored more than once: {list(duplicated.items())[:3]}"
        )
        values = _served_score_values(stack, module)
        wrong = {
            ts: (values[ts], score)
            for ts, score in reference.items()
            if values[ts] != pytest.approx(score, rel=1e-5, abs=1e-8)
        }
        assert not wrong, (
            f"{module.value}: {len(wrong)} scores differ from in-process: {list(wrong.items())[:3]}"
        )

        served_ids = _served_anomaly_ids(stack, module)
        expected_ids = {anomaly.id for anomaly in expected[module].anomalies}
        assert len(served_ids) == len(set(served_ids)), f"{module.value}: the API served an anomaly twice"
        assert set(served_ids) == expected_ids, (
            f"{module.value}: served {len(served_ids)} anomalies, in-process scoring gives "
            f"{len(expected_ids)}: {len(set(served_ids) - expected_ids)} extra, "
            f"{len(expected_ids - set(served_ids))} missing"
        )

    for names in workers.values():
        for name in names:
            assert _healthy(name) or _docker("inspect", "-f", "{{.State.Running}}", name) == "true", name
    print(
        f"\ncompose e2e: {total} readings of {len(MODULES)} modules scored exactly once; "
        + "; ".join(report.values())
        + "; "
        + ", ".join(f"{phase} {seconds:.0f} s" for phase, seconds in stack.timings.items())
    )
