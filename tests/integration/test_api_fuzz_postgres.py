"""Fuzzing the API over a real PostgreSQL store, without keys and with role keys (each role's key, and none):
every schemathesis check the in-memory fuzz test runs (no 5xx, documented statuses, content types and
schemas, invalid input refused), and each role's answers as its role allows.

PostgreSQL refuses what the in-memory store takes (a NUL in text, a source longer than its column), so
requests that pass tests/unit/test_api_fuzz.py could still fail here; they did, before the API checked them.
Schema-driven requests rarely reach the store (their readings never name a model's features), so ingest
bodies shaped like real readings and free-text filters are sent as well.
"""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import schemathesis
import torch
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import Response
from schemathesis.generation import GenerationMode
from schemathesis.generation.case import Case
from schemathesis.schemas import APIOperation

from plantwatch.adapters.datasets import sample_path
from plantwatch.adapters.storage.engine import create_engine_from_url, create_schema
from plantwatch.adapters.storage.sql_repository import SqlAnomalyRepository
from plantwatch.bootstrap import Container, incident_store
from plantwatch.domain.access import Role, hash_api_key
from plantwatch.domain.modules import Module
from plantwatch.entrypoints.api.app import create_app
from plantwatch.settings import ApiKeyGrant, Settings
from tests.fuzz_support import (
    CHECKS,
    OVERFLOW_WARNINGS,
    ReadingBatch,
    check_ingest_answer,
    reading_batches,
    sample_models,
    send_key,
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


KEYS = {Role.VIEWER: "pg-fuzz-viewer", Role.OPERATOR: "pg-fuzz-operator", Role.ADMIN: "pg-fuzz-admin"}
NAMED_OPERATOR = "ana"


@contextmanager
def served_app(postgres_url: str, **settings: Any) -> Iterator[FastAPI]:
    app_settings = Settings(
        database_url=postgres_url, max_batch_readings=MAX_BATCH, chatbot_embeddings=False, **settings
    )
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


@pytest.fixture
def app(postgres_url: str) -> Iterator[FastAPI]:
    with served_app(postgres_url) as served:
        yield served


@pytest.fixture
def keyed_app(postgres_url: str) -> Iterator[FastAPI]:
    """Role keys set, the operator's with a name; limits high enough that no fuzzed request meets them."""
    api_keys: dict[str, Role | ApiKeyGrant] = {
        hash_api_key(KEYS[Role.VIEWER]): Role.VIEWER,
        hash_api_key(KEYS[Role.OPERATOR]): ApiKeyGrant(role=Role.OPERATOR, name=NAMED_OPERATOR),
        hash_api_key(KEYS[Role.ADMIN]): Role.ADMIN,
    }
    with served_app(
        postgres_url,
        api_keys=api_keys,
        api_rate_limit="1000000/second",
        api_auth_failure_limit="1000000/minute",
    ) as served:
        yield served


def fuzz_every_operation(
    app: FastAPI,
    key: str | None = None,
    judge: Callable[[APIOperation, Response], None] | None = None,
) -> set[str]:
    """Schema-driven valid and invalid requests to every operation but the stream, each run through every
    check (CHECKS), with `key` as the client's key; `judge` adds what the caller expects of each answer.
    Returns the operations' paths."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    if key is not None:
        send_key(schema, key)
    operations = [result.ok() for result in schema.exclude(path="/anomalies/stream").get_all_operations()]
    for operation in operations:
        for mode in GenerationMode:

            @given(case=operation.as_strategy(generation_mode=mode))
            @FUZZ_SETTINGS
            def every_check_passes(case: Case) -> None:
                response = case.call_and_validate(checks=CHECKS)
                if judge is not None:
                    judge(case.operation, response)

            try:
                every_check_passes()
            except Unsatisfiable:
                # an operation with no parameters and no body has no invalid request to make
                assert mode is GenerationMode.NEGATIVE, operation.label
    return {operation.path for operation in operations}


def test_no_schema_driven_request_fails_a_check(app: FastAPI) -> None:
    assert fuzz_every_operation(app) >= {
        "/ingest/{module}",
        "/anomalies",
        "/incidents/{incident_id}/acknowledge",
    }


def needed_role(operation: APIOperation) -> Role | None:
    """The role the operation's OpenAPI security requirement names; None for an open one (/health)."""
    for requirement in operation.definition.raw.get("security", []):
        for roles in requirement.values():
            return Role(roles[0])
    return None


@pytest.mark.parametrize("role", list(Role))
def test_with_role_keys_every_check_passes_for_each_role(keyed_app: FastAPI, role: Role) -> None:
    def judge(operation: APIOperation, response: Response) -> None:
        needed = needed_role(operation)
        if needed is not None and response.request.headers.get("X-API-Key") != KEYS[role]:
            # an invalid request that dropped or spoilt the key: refused like any request without a valid one
            assert response.status_code in (400, 401, 404, 405, 413, 422), (operation.label, response.text)
            return
        assert response.status_code != 401, (operation.label, response.text)
        if response.status_code == 403:
            # a role too low, or a body or header naming an actor other than the key's name
            field = response.json()["field"]
            assert (needed is not None and not role.allows(needed)) or field in ("actor", "X-Actor"), (
                operation.label,
                response.text,
            )
        elif needed is not None and not role.allows(needed):
            # answered before the key's role is looked at: a body FastAPI cannot decode, an unknown module
            assert response.status_code in (400, 404, 405, 413, 422), (operation.label, response.text)

    fuzz_every_operation(keyed_app, key=KEYS[role], judge=judge)


def test_with_role_keys_a_request_without_a_key_gets_a_documented_refusal(keyed_app: FastAPI) -> None:
    def judge(operation: APIOperation, response: Response) -> None:
        if needed_role(operation) is not None:
            assert response.status_code in (400, 401, 404, 405, 413, 422), (operation.label, response.text)

    fuzz_every_operation(keyed_app, judge=judge)


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
