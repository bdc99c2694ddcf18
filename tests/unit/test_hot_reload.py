"""Hot reload: promote and rollback switch the version the API serves without a restart, while readings keep
flowing in; every reading is scored exactly once (none lost, none scored twice by the two versions)."""

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from fastapi.testclient import TestClient

from plantwatch.adapters.detectors import build_detector
from plantwatch.adapters.registry import FileModelRegistry
from plantwatch.bootstrap import Container, production_models
from plantwatch.domain.modules import Module
from plantwatch.domain.thresholds import QuantileThresholder
from plantwatch.entrypoints.api.app import create_app
from plantwatch.services.lifecycle import promote_version, rollback_production
from plantwatch.services.training import train_model
from plantwatch.settings import Settings
from tests.fakes import InMemoryAnomalyRepository
from tests.streaming_support import as_json_readings, normal_frame, rows

torch.set_num_threads(1)

MODULE = Module.ENERGY
WINDOW = 4
BATCH = 5
BATCHES = 160
RELOAD_INTERVAL_S = 0.02


def wait_until(condition: Callable[[], bool], what: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        time.sleep(0.005)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(database_url="sqlite://", models_dir=tmp_path / "models", energy_model="pca")


def test_promote_and_rollback_switch_the_served_version_while_readings_flow(settings: Settings) -> None:
    registry = FileModelRegistry(settings.models_dir)
    for seed in (1, 2):
        train_model(
            normal_frame(1500, module=MODULE, seed=seed),
            build_detector("pca", window=WINDOW),
            QuantileThresholder(0.995),
            registry,
        )
    served = production_models(registry, settings, [MODULE])
    repository = InMemoryAnomalyRepository()
    container = Container(
        settings=settings,
        repository=repository,
        models=served.models,
        model_problems=served.problems,
        registry=registry,
        served=served,
    )
    assert container.model(MODULE).card.version == "v0001"
    served.watch(RELOAD_INTERVAL_S)  # what the API's lifespan starts: the real hot reload path

    stream = normal_frame(BATCHES * BATCH, module=MODULE, seed=9)
    sent = [0]
    failures: list[str] = []

    def send_readings() -> None:
        client = TestClient(create_app(settings, container))
        for batch in range(BATCHES):
            body = {
                "source": "line-1",
                "readings": as_json_readings(rows(stream, batch * BATCH, (batch + 1) * BATCH)),
            }
            response = client.post(f"/ingest/{MODULE.value}", json=body)
            if response.status_code != 200:
                failures.append(f"batch {batch}: {response.status_code} {response.text}")
            sent[0] = batch + 1
            time.sleep(0.002)  # a plant sends batches apart, not back to back

    sender = threading.Thread(target=send_readings)
    sender.start()
    try:
        served_version = lambda: container.model(MODULE).card.version  # noqa: E731
        wait_until(lambda: sent[0] >= 20, "some batches were scored by v0001")
        promote_version(registry, MODULE, "pca", "v0002", force=True)  # the gate has its own tests
        wait_until(lambda: served_version() == "v0002", "the API serves the promoted version")
        promoted_at = sent[0]
        wait_until(lambda: sent[0] >= promoted_at + 20, "batches were scored by v0002")
        rollback_production(registry, MODULE, "pca")
        wait_until(lambda: served_version() == "v0001", "the API serves the rolled-back version")
        rolled_back_at = sent[0]
        assert rolled_back_at < BATCHES - 10, "the stream ended before the rollback: make it longer"
    finally:
        sender.join()
        served.stop()

    assert failures == []
    points = sorted(repository.scores.values(), key=lambda p: p.timestamp)
    timestamps = [p.timestamp for p in points]
    # every reading with a full window was scored, and scored once: the first batch's first WINDOW - 1
    # readings only give context, every later batch has its context from the readings before it
    assert len(points) == BATCHES * BATCH - (WINDOW - 1)
    assert len(set(timestamps)) == len(points)
    assert timestamps == list(stream.values.index[WINDOW - 1 :])
    # the served version changed between batches, twice: v0001, then v0002, then v0001 again
    runs: list[str] = []
    for point in points:
        if not runs or runs[-1] != point.model_version:
            runs.append(point.model_version)
    assert runs == ["v0001", "v0002", "v0001"]


def test_a_promoted_version_that_fails_its_checksum_leaves_the_served_one_in_place(
    settings: Settings,
) -> None:
    registry = FileModelRegistry(settings.models_dir)
    for seed in (1, 2):
        train_model(
            normal_frame(1500, module=MODULE, seed=seed),
            build_detector("pca", window=WINDOW),
            QuantileThresholder(0.995),
            registry,
        )
    served = production_models(registry, settings, [MODULE])
    assert served.models[MODULE].card.version == "v0001"
    promote_version(registry, MODULE, "pca", "v0002", force=True)  # the gate has its own tests
    weights = registry.model_dir(MODULE, "pca") / "v0002" / "pca_components.npy"
    weights.write_bytes(weights.read_bytes()[:-1] + b"\x00")
    assert served.refresh() == []
    assert served.models[MODULE].card.version == "v0001" and MODULE not in served.problems

    stages_file = registry.model_dir(MODULE, "pca") / "stages.json"
    stages_file.write_text("{not json")
    assert served.refresh() == [] and served.models[MODULE].card.version == "v0001"
    # a process starting now has nothing it can trust, and says why
    fresh = production_models(registry, settings, [MODULE])
    assert MODULE not in fresh.models and "stages cannot be read" in fresh.problems[MODULE]
