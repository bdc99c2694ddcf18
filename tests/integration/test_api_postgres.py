"""The API over a real PostgreSQL store, adapters built by the composition root from Settings."""

from pathlib import Path

import pytest
import torch
from fastapi.testclient import TestClient

from plantwatch.adapters.registry import FileModelRegistry
from plantwatch.domain.modules import Module
from plantwatch.entrypoints.api.app import create_app
from plantwatch.settings import Settings
from tests.streaming_support import START, STEP, as_json_readings, normal_frame, spike_frame, trained_pca

pytestmark = pytest.mark.integration
torch.set_num_threads(1)


@pytest.fixture
def client(postgres_url: str, tmp_path: Path):
    model = trained_pca(Module.MACHINE, window=4)
    FileModelRegistry(tmp_path / "models").save(model.detector, model.card)
    settings = Settings(database_url=postgres_url, models_dir=tmp_path / "models", machine_model="pca")
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def test_ingest_then_query_over_postgres(client: TestClient):
    health = client.get("/health").json()
    assert health["database"] == "ok"
    assert {m["module"]: m["model_loaded"] for m in health["modules"]} == {
        "energy": False,
        "machine": True,
        "cyber": False,
    }

    frame = spike_frame(60, 50, "flow", module=Module.MACHINE, source="press-3")
    body = {"source": "press-3", "readings": as_json_readings(frame)}
    first = client.post("/ingest/machine", json=body).json()
    assert first["new_anomalies"] >= 1 and first["scored"] == 57
    spike_end = (START + 50 * STEP).isoformat()
    spike = next(a for a in first["anomalies"] if a["window_end"] == spike_end)
    assert spike["root_cause"][0]["feature"] == "flow"

    # the next batch continues the series: this process remembers the window context
    follow = normal_frame(5, module=Module.MACHINE, source="press-3", start=START + 60 * STEP)
    later = client.post("/ingest/machine", json={"source": "press-3", "readings": as_json_readings(follow)})
    assert later.json()["scored"] == 5

    resend = client.post("/ingest/machine", json=body).json()
    assert resend["new_anomalies"] == 0 and resend["new_scores"] == 0

    stored = client.get(f"/anomalies/machine/{spike['id']}").json()
    assert stored["root_cause"] == spike["root_cause"]
    listed = client.get("/anomalies", params={"source": "press-3", "feature": "flow", "limit": 1000}).json()
    assert spike["id"] in {a["id"] for a in listed["items"]}
    assert listed["count"] == len({a["id"] for a in listed["items"]})

    series = client.get("/scores/machine", params={"limit": 1000}).json()
    assert len(series["points"]) == 57 + 5
    assert series["threshold"] == pytest.approx(stored["threshold"])

    assert client.post("/ingest/cyber", json=body).status_code == 503
    assert client.get("/anomalies/machine/not-an-id").status_code == 404
