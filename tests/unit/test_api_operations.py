"""What running the API in a plant needs: a body size limit enforced while the body streams in, security
headers, a generic 503 when the store is down, plausible readings only, /metrics, request ids in JSON logs."""

import json
import logging
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from plantwatch.adapters.datasets import sample_path
from plantwatch.adapters.storage import SqlAnomalyRepository, create_engine_from_url
from plantwatch.bootstrap import Container
from plantwatch.domain.errors import StoreUnavailableError
from plantwatch.domain.modules import Module
from plantwatch.entrypoints.api.app import create_app
from plantwatch.entrypoints.logs import configure_logging
from plantwatch.settings import Settings
from tests.fakes import InMemoryAnomalyRepository
from tests.fuzz_support import sample_model
from tests.streaming_support import as_json_readings, normal_frame, trained_pca

BODY_LIMIT = 64 * 1024


@pytest.fixture(scope="module")
def energy_model():
    return trained_pca(Module.ENERGY, window=4)


def make_client(model, repository=None, **overrides) -> TestClient:  # type: ignore[no-untyped-def]
    settings = Settings(
        database_url="sqlite://", chatbot_embeddings=False, max_body_bytes=BODY_LIMIT, **overrides
    )
    container = Container(
        settings=settings,
        repository=repository or InMemoryAnomalyRepository(),
        models={Module.ENERGY: model},
    )
    return TestClient(create_app(settings, container), raise_server_exceptions=False)


def test_a_body_over_the_limit_is_refused_before_it_is_parsed(energy_model) -> None:
    client = make_client(energy_model)
    big = b'{"source": "s", "readings": [' + b" " * (2 * BODY_LIMIT) + b"]}"
    declared = client.post("/ingest/energy", content=big, headers={"content-type": "application/json"})
    assert declared.status_code == 413 and declared.json()["field"] == "body"

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit is counted as the body streams in
        for _ in range(4):
            yield b" " * (BODY_LIMIT // 2 + 1)

    streamed = client.post("/ingest/energy", content=chunks(), headers={"content-type": "application/json"})
    assert streamed.status_code == 413
    assert "limit" in streamed.json()["detail"]
    small = {"source": "s", "readings": as_json_readings(normal_frame(6))}
    assert client.post("/ingest/energy", json=small).status_code == 200


def test_every_answer_carries_security_headers_and_a_request_id(energy_model) -> None:
    client = make_client(energy_model)
    for path in ("/", "/anomalies", "/health", "/no-such-page"):
        response = client.get(path)
        assert response.headers["x-frame-options"] == "DENY", path
        assert response.headers["x-content-type-options"] == "nosniff"
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
        assert "script-src 'self';" in response.headers["content-security-policy"]
        assert len(response.headers["x-request-id"]) == 32
    assert (
        client.get("/health", headers={"X-Request-ID": "gateway-42"}).headers["x-request-id"] == "gateway-42"
    )
    # the docs page loads Swagger UI from its CDN; only that page may
    assert "cdn.jsdelivr.net" in client.get("/docs").headers["content-security-policy"]


def test_an_unreachable_store_is_a_generic_503_that_names_no_host_or_password(energy_model) -> None:
    # a closed port: every connection is refused at once
    url = "postgresql+psycopg://plant:hunter2@127.0.0.1:9/plant?connect_timeout=2"
    engine = create_engine_from_url(url)
    repository = SqlAnomalyRepository(engine)
    with pytest.raises(StoreUnavailableError):
        repository.list_scores(Module.ENERGY)
    settings = Settings(database_url=url, chatbot_embeddings=False)

    def check_database() -> None:
        with engine.connect():
            pass

    container = Container(
        settings=settings,
        repository=repository,
        models={Module.ENERGY: energy_model},
        check_database=check_database,
    )
    client = TestClient(create_app(settings, container), raise_server_exceptions=False)
    try:
        for response in (client.get("/anomalies"), client.get("/scores/energy"), client.get("/health")):
            assert response.status_code == 503, response.text
            assert "127.0.0.1" not in response.text and "hunter2" not in response.text
            assert "psycopg" not in response.text.lower()
        assert client.get("/anomalies").headers["retry-after"]
        assert client.get("/health").json()["database_error"] == "connection refused"
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    ("timestamp", "value", "field"),
    [
        ("0001-01-01T00:00:00", 1.0, "readings[5].timestamp"),
        ("1600-06-01T00:00:00", 1.0, "readings[5].timestamp"),
        ("9999-12-31T23:59:00", 1.0, "readings[5].timestamp"),
        (None, 1e308, "readings[5].values.flow"),
        (None, -1e300, "readings[5].values.flow"),
    ],
)
def test_implausible_readings_are_refused_naming_the_reading(energy_model, timestamp, value, field) -> None:
    client = make_client(energy_model)
    readings = as_json_readings(normal_frame(8))
    if timestamp:
        readings[5]["timestamp"] = timestamp
    readings[5]["values"]["flow"] = value if timestamp is None else readings[5]["values"]["flow"]
    response = client.post("/ingest/energy", json={"source": "line-1", "readings": readings})
    assert response.status_code == 422, response.text
    assert response.json()["field"] == field
    assert "plausible range" in response.json()["detail"]


def test_plausible_range_is_configurable_per_module(energy_model) -> None:
    client = make_client(energy_model, readings_limits={Module.ENERGY: {"min_value": 0.0}})
    readings = as_json_readings(normal_frame(8))
    readings[2]["values"]["pressure"] = -0.5
    response = client.post("/ingest/energy", json={"source": "line-1", "readings": readings})
    assert response.status_code == 422 and response.json()["field"] == "readings[2].values.pressure"


def test_an_uploaded_file_with_an_implausible_value_is_refused_naming_the_column() -> None:
    model = sample_model(Module.ENERGY)
    client = make_client(model)
    lines = sample_path(Module.ENERGY).read_text(encoding="utf-8").splitlines()[:12]
    header = lines[0].split(",")
    row = lines[6].split(",")
    row[header.index("Usage_kWh")] = "1e300"
    lines[6] = ",".join(row)
    response = client.post(
        "/ingest/energy", files={"file": ("plant.csv", "\n".join(lines).encode(), "text/csv")}
    )
    assert response.status_code == 422, response.text
    assert response.json()["field"] == "file"
    assert "plausible range" in response.json()["detail"] and "usage_kwh" in response.json()["detail"].lower()


def test_metrics_count_requests_per_route_and_readings_scored(energy_model) -> None:
    client = make_client(energy_model)
    client.get("/anomalies/energy")
    client.post(
        "/ingest/energy", json={"source": "metrics-line", "readings": as_json_readings(normal_frame(10))}
    )
    text = client.get("/metrics").text
    assert 'plantwatch_http_request_duration_seconds_count{method="GET",route="/anomalies/{module}"' in text
    scored = [
        line
        for line in text.splitlines()
        if line.startswith('plantwatch_readings_scored_total{module="energy",via="http"}')
    ]
    assert scored and float(scored[0].split()[-1]) >= 7  # 10 readings, window 4
    assert 'plantwatch_model_info{model="pca",module="energy",version="v1"} 1.0' in text


def test_logs_are_json_lines_with_the_request_id_and_no_secret(energy_model, capsys) -> None:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    configure_logging("json", "INFO")
    try:
        client = make_client(energy_model, api_key="very-secret-key")
        body = {"source": "line-1", "readings": as_json_readings(normal_frame(6))}
        answer = client.post("/ingest/energy", json=body, headers={"X-API-Key": "very-secret-key"})
        logging.getLogger("plantwatch.test").warning("store at postgresql://plant:hunter2@db/plant")
    finally:
        root.handlers[:], _ = saved
        root.setLevel(saved[1])
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    request_lines = [line for line in lines if line.get("event") == "request"]
    assert request_lines[-1]["request_id"] == answer.headers["x-request-id"]
    assert request_lines[-1]["route"] == "/ingest/{module}" and request_lines[-1]["status"] == 200
    everything = json.dumps(lines)
    assert "very-secret-key" not in everything and "hunter2" not in everything
    assert "postgresql://plant:***@db/plant" in everything
