"""POST /ingest/{module}: JSON and CSV bodies, field-named 422s, 401/404/413/503, no duplicates on re-send."""

from datetime import datetime

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient

from plantwatch.adapters.datasets import load_sample, sample_path
from plantwatch.adapters.detectors import build_detector
from plantwatch.bootstrap import Container, missing_model_message
from plantwatch.domain.modules import Module
from plantwatch.domain.ports import ModelCard, TrainedModel
from plantwatch.entrypoints.api.app import create_app
from plantwatch.settings import Settings
from tests.fakes import InMemoryAnomalyRepository
from tests.streaming_support import START, STEP, as_json_readings, normal_frame, spike_frame, trained_pca

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def energy_model():
    return trained_pca(Module.ENERGY, window=4)


def make_client(model, **settings) -> tuple[TestClient, Container]:
    settings_obj = Settings(
        database_url="sqlite://", max_batch_readings=settings.pop("max_batch_readings", 100), **settings
    )
    container = Container(
        settings=settings_obj,
        repository=InMemoryAnomalyRepository(),
        models={Module.ENERGY: model},
        model_problems={Module.CYBER: missing_model_message(settings_obj, Module.CYBER)},
    )
    return TestClient(create_app(settings_obj, container)), container


def test_json_batch_is_scored_and_stored_once(energy_model):
    client, container = make_client(energy_model)
    # a page cached before the batch: ingest through this process must not leave it stale
    assert client.get("/anomalies/energy", params={"source": "line-7"}).json()["count"] == 0
    body = {
        "source": "line-7",
        "readings": as_json_readings(spike_frame(40, 30, "temperature", source="line-7")),
    }
    first = client.post("/ingest/energy", json=body)
    assert first.status_code == 200, first.text
    result = first.json()
    assert result["readings"] == 40 and result["scored"] == 37
    assert result["new_anomalies"] == len(result["anomalies"]) >= 1
    spike = next(a for a in result["anomalies"] if a["window_end"] == (START + 30 * STEP).isoformat())
    assert spike["root_cause"][0]["feature"] == "temperature"
    assert spike["source"] == "line-7" and spike["model"] == {"name": "pca", "version": "v1"}

    again = client.post("/ingest/energy", json=body).json()
    assert again["new_anomalies"] == 0 and again["new_scores"] == 0
    assert len(container.repository.anomalies) == result["new_anomalies"]  # type: ignore[attr-defined]

    listed = client.get("/anomalies/energy", params={"source": "line-7"}).json()
    assert {a["id"] for a in listed["items"]} == {a["id"] for a in result["anomalies"]}


def test_missing_feature_is_a_422_naming_it(energy_model):
    client, _ = make_client(energy_model)
    readings = as_json_readings(normal_frame(5))
    del readings[3]["values"]["pressure"]
    response = client.post("/ingest/energy", json={"source": "s", "readings": readings})
    assert response.status_code == 422
    assert response.json() == {
        "detail": "readings[3].values.pressure: missing",
        "field": "readings[3].values.pressure",
    }


def test_malformed_body_is_a_422_with_the_field_path(energy_model):
    client, _ = make_client(energy_model)
    readings = as_json_readings(normal_frame(3))
    readings[1]["values"]["flow"] = "lots"
    readings[2]["timestamp"] = "yesterday"
    response = client.post("/ingest/energy", json={"source": "s", "readings": readings})
    assert response.status_code == 422
    error = response.json()
    assert error["field"] == "readings[1].values.flow"
    assert "readings[2].timestamp" in error["detail"]

    not_json = client.post(
        "/ingest/energy", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert not_json.status_code == 422
    assert client.post("/ingest/energy", json={"readings": readings}).json()["field"] == "source"


def test_oversize_batch_is_a_413(energy_model):
    client, _ = make_client(energy_model, max_batch_readings=10)
    response = client.post(
        "/ingest/energy", json={"source": "s", "readings": as_json_readings(normal_frame(11))}
    )
    assert response.status_code == 413
    assert "at most 10" in response.json()["detail"]


def test_unknown_module_is_404_and_untrained_module_is_503(energy_model):
    client, _ = make_client(energy_model)
    body = {"source": "s", "readings": as_json_readings(normal_frame(3))}
    unknown = client.post("/ingest/water", json=body)
    assert unknown.status_code == 404 and "energy, machine, cyber" in unknown.json()["detail"]
    untrained = client.post("/ingest/cyber", json=body)
    assert untrained.status_code == 503
    assert "plantwatch train cyber" in untrained.json()["detail"]


def test_api_key_guards_writes_only(energy_model):
    client, _ = make_client(energy_model, api_key="s3cret")
    body = {"source": "s", "readings": as_json_readings(normal_frame(5))}
    assert client.post("/ingest/energy", json=body).status_code == 401
    assert client.post("/ingest/energy", json=body, headers={"X-API-Key": "wrong"}).status_code == 401
    assert client.post("/ingest/energy", json=body, headers={"X-API-Key": "s3cret"}).status_code == 200
    assert client.get("/anomalies").status_code == 200


def test_context_readings_complete_the_first_window(energy_model):
    client, _ = make_client(energy_model)
    whole = as_json_readings(normal_frame(12))
    response = client.post(
        "/ingest/energy", json={"source": "s", "context": whole[:8], "readings": whole[8:]}
    )
    assert response.status_code == 200
    assert response.json()["scored"] == 4


def test_csv_upload_of_the_raw_sample_file_is_scored():
    sample = load_sample(Module.ENERGY)
    normal = sample.slice_mask((sample.labels == 0).to_numpy())
    detector = build_detector("pca", window=4).fit(normal.to_numpy()[:1500], sample.feature_names)
    threshold = float(np.nanquantile(detector.score(normal.to_numpy()[1500:]), 0.99))
    card = ModelCard(
        module=Module.ENERGY,
        model_name="pca",
        version="v1",
        feature_names=sample.feature_names,
        window=4,
        threshold=threshold,
        threshold_method="quantile",
        data_hash="sample",
        training_source=str(sample_path(Module.ENERGY)),
        created_at=datetime(2024, 1, 1),
    )
    client, container = make_client(TrainedModel(detector=detector, card=card), max_batch_readings=10_000)
    raw = sample_path(Module.ENERGY).read_bytes()
    response = client.post(
        "/ingest/energy", files={"file": ("steel.csv", raw, "text/csv")}, data={"source": "plant-a"}
    )
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["readings"] == len(sample) and result["source"] == "plant-a"
    assert result["scored"] == len(sample) - 3 == len(container.repository.scores)  # type: ignore[attr-defined]
    # the raw file went through the real loader: the stored series is the file's, in its own timestamps
    stored = sorted(container.repository.scores.values(), key=lambda p: p.timestamp)  # type: ignore[attr-defined]
    assert stored[0].timestamp == sample.values.index[3] and stored[-1].timestamp == sample.values.index[-1]
    assert result["new_anomalies"] == len(container.repository.anomalies)  # type: ignore[attr-defined]
    assert all(a["score"] > threshold for a in result["anomalies"])

    too_many = make_client(container.models[Module.ENERGY], max_batch_readings=100)[0].post(
        "/ingest/energy", files={"file": ("steel.csv", raw, "text/csv")}
    )
    assert too_many.status_code == 413

    broken = client.post("/ingest/energy", files={"file": ("bad.csv", b"when,what\n1,2\n", "text/csv")})
    assert broken.status_code == 422
    assert "bad.csv" in broken.json()["detail"]


@pytest.mark.parametrize(
    ("source", "problem"),
    [("line\x007", "match pattern"), ("line\t7", "match pattern"), ("x" * 201, "at most 200 characters")],
)
def test_source_the_store_cannot_hold_is_a_422(energy_model, source, problem):
    # PostgreSQL refuses a NUL in text and a source over its 200-character column: both were 500s there
    client, container = make_client(energy_model)
    body = {"source": source, "readings": as_json_readings(normal_frame(5))}
    response = client.post("/ingest/energy", json=body)
    assert response.status_code == 422
    assert response.json()["field"] == "source" and problem in response.json()["detail"]
    assert not container.repository.scores  # type: ignore[attr-defined]


def test_csv_upload_source_and_file_name_follow_the_same_rules(energy_model):
    client, _ = make_client(energy_model)
    csv = "\n".join(sample_path(Module.ENERGY).read_text(encoding="utf-8").splitlines()[:10]).encode()
    too_long = client.post(
        "/ingest/energy", files={"file": ("e.csv", csv, "text/csv")}, data={"source": "x" * 5000}
    )
    assert too_long.status_code == 422 and too_long.json()["field"] == "source"
    with_nul = client.post(
        "/ingest/energy", files={"file": ("e.csv", csv, "text/csv")}, data={"source": "a\x00b"}
    )
    assert with_nul.status_code == 422 and with_nul.json()["field"] == "source"
    # without a source field the file name is the source, so it is held to the same limit
    long_name = client.post("/ingest/energy", files={"file": ("e" * 300 + ".csv", csv, "text/csv")})
    assert long_name.status_code == 422 and long_name.json()["field"] == "file"


@pytest.mark.parametrize("value", [True, "1.5", None])
def test_a_value_that_is_not_a_json_number_is_a_422(energy_model, value):
    # lax parsing used to read true as 1.0 and "1.5" as 1.5
    client, _ = make_client(energy_model)
    readings = as_json_readings(normal_frame(5))
    readings[2]["values"]["flow"] = value
    response = client.post("/ingest/energy", json={"source": "s", "readings": readings})
    assert response.status_code == 422
    assert response.json()["field"] == "readings[2].values.flow"


def test_malformed_multipart_body_is_a_422_naming_the_file(energy_model):
    # Starlette's own answer was a 400 the OpenAPI document did not list
    client, _ = make_client(energy_model)
    response = client.post(
        "/ingest/energy", content=b"--x\r\nbroken", headers={"content-type": "multipart/form-data"}
    )
    assert response.status_code == 422
    assert response.json()["field"] == "file" and "boundary" in response.json()["detail"]


def test_openapi_ingest_body_resolves_and_names_the_key_scheme(energy_model):
    client, _ = make_client(energy_model, api_key="s3cret")
    document = client.get("/openapi.json").json()
    operation = document["paths"]["/ingest/{module}"]["post"]
    json_body = operation["requestBody"]["content"]["application/json"]["schema"]
    # pydantic's `#/$defs/ReadingIn` pointed at the document root, where there is no $defs
    assert "$ref" not in str(json_body) and "$defs" not in json_body
    assert json_body["properties"]["readings"]["items"]["properties"]["values"]["additionalProperties"] == {
        "type": "number"
    }
    assert operation["security"] == [{"APIKeyHeader": []}]
    assert document["components"]["securitySchemes"]["APIKeyHeader"]["name"] == "X-API-Key"
    assert "security" not in document["paths"]["/anomalies"]["get"]
    module = next(p for p in operation["parameters"] if p["name"] == "module")
    assert module["schema"]["enum"] == ["energy", "machine", "cyber"]
