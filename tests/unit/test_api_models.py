"""GET /models with stages and training data fingerprints, an app built from settings following a promotion,
and GET /anomalies?model_version=."""

import time
from pathlib import Path

import pytest
import torch
from fastapi.testclient import TestClient

from plantwatch.adapters.detectors import build_detector
from plantwatch.adapters.registry import FileModelRegistry
from plantwatch.domain.modules import Module
from plantwatch.domain.thresholds import QuantileThresholder
from plantwatch.entrypoints.api.app import create_app
from plantwatch.services.lifecycle import promote_version
from plantwatch.services.training import train_model
from plantwatch.settings import Settings
from tests.streaming_support import START, STEP, as_json_readings, normal_frame, spike_frame

torch.set_num_threads(1)

MODULE = Module.MACHINE


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    registry = FileModelRegistry(tmp_path / "models")
    for seed in (1, 2):
        train_model(
            normal_frame(1500, module=MODULE, seed=seed),
            build_detector("pca", window=4),
            QuantileThresholder(0.995),
            registry,
        )
    return Settings(
        database_url=f"sqlite:///{tmp_path / 'store.db'}",
        models_dir=tmp_path / "models",
        machine_model="pca",
        model_reload_interval_s=0.05,
        chatbot_embeddings=False,
    )


def served_version(client: TestClient) -> str | None:
    machine = next(m for m in client.get("/health").json()["modules"] if m["module"] == MODULE.value)
    return machine["model_version"]


def wait_for_version(client: TestClient, version: str, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while served_version(client) != version:
        assert time.monotonic() < deadline, f"the app still serves {served_version(client)}, not {version}"
        time.sleep(0.05)


def test_models_lists_the_served_version_and_every_version_with_its_stage(settings: Settings) -> None:
    with TestClient(create_app(settings)) as client:
        body = client.get("/models").json()
    (served,) = body["models"]
    assert (served["module"], served["version"], served["stage"]) == ("machine", "v0001", "production")
    assert len(served["data_hash"]) == 64 and served["metrics"]["validation_false_alarm_rate"] < 0.05
    assert [(v["version"], v["stage"]) for v in body["versions"]] == [
        ("v0001", "production"),
        ("v0002", "candidate"),
    ]
    assert body["versions"][0]["data_hash"] != body["versions"][1]["data_hash"]  # other seeds, other data
    assert set(body["missing"]) == {"energy", "cyber"}


def test_an_app_built_from_settings_follows_promotion_and_filters_anomalies_by_version(
    settings: Settings,
) -> None:
    registry = FileModelRegistry(settings.models_dir)
    with TestClient(create_app(settings)) as client:
        assert served_version(client) == "v0001"
        before = spike_frame(60, 40, "pressure", module=MODULE, start=START + 3000 * STEP)
        response = client.post(
            "/ingest/machine", json={"source": "press-1", "readings": as_json_readings(before)}
        )
        assert response.status_code == 200 and response.json()["new_anomalies"] >= 1

        # what `plantwatch models promote machine v0002 --force` does from another process (the gate has
        # its own tests)
        promote_version(registry, MODULE, "pca", "v0002", force=True)
        wait_for_version(client, "v0002")
        after = spike_frame(60, 40, "pressure", module=MODULE, start=START + 3060 * STEP)
        response = client.post(
            "/ingest/machine", json={"source": "press-1", "readings": as_json_readings(after)}
        )
        assert response.status_code == 200 and response.json()["new_anomalies"] >= 1
        assert {a["model"]["version"] for a in response.json()["anomalies"]} == {"v0002"}

        by_version = {
            version: client.get("/anomalies", params={"model_version": version}).json()["items"]
            for version in ("v0001", "v0002", "v0003")
        }
        assert by_version["v0001"] and by_version["v0002"] and by_version["v0003"] == []
        assert {a["model"]["version"] for a in by_version["v0001"]} == {"v0001"}
        assert all(a["window_end"] < after.values.index[0].isoformat() for a in by_version["v0001"])
        assert {a["model"]["version"] for a in by_version["v0002"]} == {"v0002"}
        module_page = client.get("/anomalies/machine", params={"model_version": "v0002"}).json()["items"]
        assert [a["id"] for a in module_page] == [a["id"] for a in by_version["v0002"]]
        bad = client.get("/anomalies", params={"model_version": "v\x00"})
        assert bad.status_code == 422 and bad.json()["field"] == "model_version"
