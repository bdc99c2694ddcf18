"""Fuzzing the API over a real PostgreSQL store: no request may get a 5xx.

PostgreSQL refuses what the in-memory store takes (a NUL in text, a source longer than its column), so
requests that pass tests/unit/test_api_fuzz.py could still fail here; they did, before the API checked them.
Schema-driven requests rarely reach the store (their readings never name a model's features), so ingest
bodies shaped like real readings and free-text filters are sent as well.
"""

from collections.abc import Iterator

import pytest
import schemathesis
import torch
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.generation.case import Case

from plantwatch.adapters.datasets import sample_path
from plantwatch.adapters.storage.engine import create_engine_from_url, create_schema
from plantwatch.adapters.storage.sql_repository import SqlAnomalyRepository
from plantwatch.bootstrap import Container, incident_store
from plantwatch.domain.modules import Module
from plantwatch.entrypoints.api.app import create_app
from plantwatch.settings import Settings
from tests.fuzz_support import (
    OVERFLOW_WARNINGS,
    ReadingBatch,
    check_ingest_answer,
    reading_batches,
    sample_models,
)

pytestmark = pytest.mark.integration
torch.set_num_threads(1)

EXAMPLES = 15
MAX_BATCH = 50
MODELS = sample_models()
FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


@pytest.fixture
def app(postgres_url: str) -> Iterator[FastAPI]:
    app_settings = Settings(database_url=postgres_url, max_batch_readings=MAX_BATCH, chatbot_embeddings=False)
    engine = create_engine_from_url(postgres_url)
    create_schema(engine)
    incidents, outbox = incident_store(app_settings, engine)
    container = Container(
        settings=app_settings,
        repository=SqlAnomalyRepository(engine),
        models=MODELS,
        engine=engine,
        incidents=incidents,
        outbox=outbox,
    )
    try:
        yield create_app(app_settings, container)
    finally:
        engine.dispose()


def test_no_schema_driven_request_gets_a_server_error(app: FastAPI) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.exclude(path="/anomalies/stream").get_all_operations()]
    assert {operation.path for operation in operations} >= {"/ingest/{module}", "/anomalies"}
    for operation in operations:
        for mode in GenerationMode:

            @given(case=operation.as_strategy(generation_mode=mode))
            @FUZZ_SETTINGS
            def no_server_error(case: Case) -> None:
                case.call_and_validate(checks=[not_a_server_error])

            try:
                no_server_error()
            except Unsatisfiable:
                # an operation with no parameters and no body has no invalid request to make
                assert mode is GenerationMode.NEGATIVE, operation.label


@pytest.mark.filterwarnings(*OVERFLOW_WARNINGS)
def test_reading_batches_and_text_filters_get_a_result_or_a_named_error(app: FastAPI) -> None:
    client = TestClient(app, raise_server_exceptions=False)

    # more batches than schema cases: each kind of mistake, a bad source among them, needs a few draws
    @given(batch=reading_batches(MODELS, MAX_BATCH))
    @settings(FUZZ_SETTINGS, max_examples=4 * EXAMPLES)
    def ingest(batch: ReadingBatch) -> None:
        module, body, _ = batch
        check_ingest_answer(batch, client.post(f"/ingest/{module.value}", json=body), MAX_BATCH)

    @given(name=st.sampled_from(["feature", "source"]), text=st.text(max_size=210))
    @FUZZ_SETTINGS
    def query(name: str, text: str) -> None:
        response = client.get("/anomalies/energy", params={name: text})
        assert response.status_code in (200, 422), response.text
        if response.status_code == 422:
            assert response.json()["field"] == name

    ingest()
    query()


@pytest.mark.parametrize("source", ["line\x001", "x" * 201, "csv"])
def test_sources_postgresql_cannot_hold_are_a_422_not_a_500(app: FastAPI, source: str) -> None:
    client = TestClient(app, raise_server_exceptions=False)
    features = MODELS[Module.ENERGY].card.feature_names
    readings = [
        {"timestamp": f"2024-03-01T00:0{minute}:00", "values": dict.fromkeys(features, 1.0)}
        for minute in range(8)
    ]
    if source == "csv":
        # an upload's source defaults to its file name, which can be longer than the column
        csv = "\n".join(sample_path(Module.ENERGY).read_text(encoding="utf-8").splitlines()[:10]).encode()
        response = client.post("/ingest/energy", files={"file": ("e" * 300 + ".csv", csv, "text/csv")})
        expected_field = "file"
    else:
        response = client.post("/ingest/energy", json={"source": source, "readings": readings})
        expected_field = "source"
    assert response.status_code == 422, response.text
    assert response.json()["field"] == expected_field
