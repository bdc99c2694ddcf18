"""GET /health and GET /models: store reachability, loaded models, and what to do when one is missing."""

import time

import pytest
import torch
from fastapi.testclient import TestClient

from plantwatch.adapters.registry import FileModelRegistry
from plantwatch.bootstrap import Container, build_container, missing_model_message
from plantwatch.domain.modules import Module
from plantwatch.entrypoints.api.app import create_app
from plantwatch.settings import Settings
from tests.fakes import InMemoryAnomalyRepository
from tests.streaming_support import trained_pca

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def machine_model():
    return trained_pca(Module.MACHINE)


def test_health_reports_missing_models_as_degraded(machine_model):
    settings = Settings(database_url="sqlite://")
    container = Container(
        settings=settings,
        repository=InMemoryAnomalyRepository(),
        models={Module.MACHINE: machine_model},
        model_problems={m: missing_model_message(settings, m) for m in (Module.ENERGY, Module.CYBER)},
    )
    client = TestClient(create_app(settings, container))
    health = client.get("/health")
    assert health.status_code == 200
    body = health.json()
    assert body["status"] == "degraded" and body["database"] == "ok"
    by_module = {m["module"]: m for m in body["modules"]}
    assert by_module["machine"]["model_loaded"] and by_module["machine"]["model_version"] == "v1"
    assert "plantwatch train energy" in by_module["energy"]["problem"]

    models = client.get("/models").json()
    assert [m["module"] for m in models["models"]] == ["machine"]
    card = models["models"][0]
    assert card["threshold"] == pytest.approx(machine_model.card.threshold)
    assert card["feature_names"] == ["flow", "pressure", "temperature"]
    assert card["metrics"] == {"train_rows": 600}
    assert set(models["missing"]) == {"energy", "cyber"}


def test_unreachable_store_is_a_503():
    def unreachable() -> None:
        raise ConnectionRefusedError("connection refused")

    settings = Settings(database_url="sqlite://")
    container = Container(settings=settings, repository=InMemoryAnomalyRepository(), models={})
    container.check_database = unreachable
    response = TestClient(create_app(settings, container)).get("/health")
    assert response.status_code == 503
    assert response.json()["status"] == "down"
    assert "connection refused" in response.json()["database_error"]


def test_the_store_check_is_reused_for_its_max_age_then_repeated():
    checks = 0
    store_up = True

    def check() -> None:
        nonlocal checks
        checks += 1
        if not store_up:
            raise ConnectionRefusedError("connection refused")

    settings = Settings(database_url="sqlite://", health_check_max_age_s=0.3)
    container = Container(settings=settings, repository=InMemoryAnomalyRepository(), models={})
    container.check_database = check
    client = TestClient(create_app(settings, container))
    assert [client.get("/health").status_code for _ in range(3)] == [200, 200, 200]
    assert checks == 1
    store_up = False
    assert client.get("/health").status_code == 200, "within the max age the last outcome stands"
    time.sleep(0.35)
    assert client.get("/health").status_code == 503 and checks == 2


def test_app_built_from_settings_loads_the_registry_latest_model(tmp_path, machine_model):
    registry = FileModelRegistry(tmp_path / "models")
    registry.save(machine_model.detector, machine_model.card)
    saved = registry.save(machine_model.detector, machine_model.card)
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'store.db'}", models_dir=tmp_path / "models", machine_model="pca"
    )
    with TestClient(create_app(settings)) as client:
        body = client.get("/health").json()
        machine = next(m for m in body["modules"] if m["module"] == "machine")
        assert machine["model_loaded"] and machine["model_version"] == saved.version
        assert body["status"] == "degraded"  # energy and cyber have no model in this registry
    container = build_container(settings)
    try:
        assert set(container.models) == {Module.MACHINE}
        assert "plantwatch train cyber" in container.model_problems[Module.CYBER]
    finally:
        container.close()
