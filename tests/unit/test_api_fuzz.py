"""Property-based fuzzing of the API: every operation from the app's own OpenAPI document (schemathesis),
and ingest bodies shaped like real readings (hypothesis).

Valid and invalid requests alike must never get a 5xx, every status must be one the document declares, and
every response must match the schema declared for its status. The app serves a PCA model for every module,
fitted on the shipped samples. The OpenAPI document cannot say which features a module's model takes, so
schema-driven bodies stop at the 422 for an unknown feature; the hypothesis test sends the model's features
with generated numbers, timestamps (naive and not, repeated, out of order), sources and batch sizes, so
ingest reaches real scoring. A second app has an API key set, so the 401 path is fuzzed too, and a third
role keys, fuzzed without a key and with an operator's.

Left out: the SSE stream (it never ends; test_api_stream.py covers it) and the dashboard files (not in the
OpenAPI document; test_dashboard_routes.py covers them).
"""

import pytest
import schemathesis
import torch
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.generation.case import Case
from schemathesis.schemas import BaseSchema

from plantwatch.bootstrap import Container, incident_policies
from plantwatch.domain.access import Role, hash_api_key
from plantwatch.domain.modules import Module
from plantwatch.entrypoints.api.app import create_app
from plantwatch.services.incidents import IncidentTracking
from plantwatch.settings import ApiKeyGrant, Settings
from tests.fakes import InMemoryAnomalyRepository, InMemoryIncidentRepository, make_anomaly
from tests.fuzz_support import (
    CHECKS,
    OVERFLOW_WARNINGS,
    ReadingBatch,
    check_ingest_answer,
    reading_batches,
    sample_models,
    send_key,
)

torch.set_num_threads(1)

API_KEY = "fuzz-key"
MAX_BATCH = 50
# Few examples per operation keep the file to seconds on two shared cores; derandomised, so every run sends
# the same requests and a failure reproduces.
MAX_EXAMPLES = 30


MODELS = sample_models()


def fuzzed_app(api_key: str | None, api_keys: dict[str, Role | ApiKeyGrant] | None = None) -> FastAPI:
    settings_obj = Settings(
        database_url="sqlite://",
        api_key=api_key,
        api_keys=api_keys or {},
        # generated keys are all wrong: the per-client limit on wrong keys would turn them into 429s
        api_auth_failure_limit="1000000/minute",
        max_batch_readings=MAX_BATCH,
        chatbot_embeddings=False,
    )
    repository = InMemoryAnomalyRepository()
    repository.add_many([make_anomaly(module=module) for module in Module])
    # an incident per module, so the incident routes answer with real data too
    tracking = IncidentTracking(InMemoryIncidentRepository(), incident_policies(settings_obj))
    for anomaly in repository.anomalies.values():
        tracking.track(anomaly.module, anomaly.source, [anomaly], anomaly.window_end, anomaly.detected_at)
    container = Container(settings=settings_obj, repository=repository, models=MODELS, incidents=tracking)
    return create_app(settings_obj, container)


def fuzzed_schema(app: FastAPI) -> BaseSchema:
    schema = schemathesis.openapi.from_asgi("/openapi.json", app).exclude(path="/anomalies/stream")
    schema.config.generation.update(max_examples=MAX_EXAMPLES, deterministic=True)
    # formats are checked too: the document states timestamps as patterns, not as RFC 3339 date-time
    return schema


# Loaded at import, not through schemathesis.pytest.from_fixture, which breaks on pytest 9 (it rewrites
# the node's private _nodeid). Fitting the three models takes a fraction of a second.
open_schema = fuzzed_schema(fuzzed_app(api_key=None))
keyed_schema = fuzzed_schema(fuzzed_app(api_key=API_KEY)).include(method="POST", path="/ingest/{module}")
role_keyed_schema = fuzzed_schema(
    fuzzed_app(api_key=None, api_keys={hash_api_key(API_KEY): Role.ADMIN})
).exclude(path="/health")
# The same with a valid operator key (named, so a body naming another actor is refused): its requests
# reach every route; tests/integration/test_api_fuzz_postgres.py runs each role's key over PostgreSQL.
OPERATOR_KEY = "fuzz-operator-key"
operator_schema = fuzzed_schema(
    fuzzed_app(
        api_key=None,
        api_keys={
            hash_api_key(API_KEY): Role.ADMIN,
            hash_api_key(OPERATOR_KEY): ApiKeyGrant(role=Role.OPERATOR, name="ana"),
        },
    )
)
send_key(operator_schema, OPERATOR_KEY)

FUZZ_SETTINGS = settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


@open_schema.parametrize()
@FUZZ_SETTINGS
def test_no_request_gets_a_server_error_or_an_undocumented_answer(case: Case) -> None:
    case.call_and_validate(checks=CHECKS)


@keyed_schema.parametrize()
@FUZZ_SETTINGS
def test_writes_without_the_api_key_get_a_documented_401(case: Case) -> None:
    response = case.call_and_validate(checks=CHECKS)
    # no generated key can be the configured one, so every request that reaches the key check is refused
    assert response.status_code in (401, 404, 405, 422), response.text


@role_keyed_schema.parametrize()
@FUZZ_SETTINGS
def test_with_role_keys_every_route_refuses_a_request_without_a_key_as_documented(case: Case) -> None:
    response = case.call_and_validate(checks=CHECKS)
    # a bad module (404), method (405) or a body FastAPI cannot decode (it decodes bodies before any
    # dependency runs: 400, 422) may be answered before the key is looked at; no request gets a 200
    assert response.status_code in (400, 401, 404, 405, 422), response.text


@operator_schema.parametrize()
@FUZZ_SETTINGS
def test_with_an_operator_key_every_check_passes_and_admin_routes_are_refused(case: Case) -> None:
    response = case.call_and_validate(checks=CHECKS)
    if response.request.headers.get("X-API-Key") == OPERATOR_KEY:
        assert response.status_code != 401, response.text
        if response.status_code == 403:
            # ingest needs an admin; an incident action may name no one but the key's own name
            assert case.path == "/ingest/{module}" or response.json()["field"] in ("actor", "X-Actor")


OPEN_CLIENT = TestClient(fuzzed_app(api_key=None), raise_server_exceptions=False)


@pytest.mark.filterwarnings(*OVERFLOW_WARNINGS)
@given(batch=reading_batches(MODELS, MAX_BATCH))
@FUZZ_SETTINGS
def test_ingest_answers_every_reading_batch_with_a_result_or_a_named_error(
    batch: ReadingBatch,
) -> None:
    module, body, _ = batch
    check_ingest_answer(batch, OPEN_CLIENT.post(f"/ingest/{module.value}", json=body), MAX_BATCH)


MONTHS = [
    "january",
    "feb",
    "march",
    "apr",
    "may",
    "june",
    "jul",
    "august",
    "sept",
    "october",
    "nov",
    "december",
]
# Time phrases of the chatbot's grammar with numbers and dates of any size, valid or not.
TIME_PHRASES = st.one_of(
    st.builds(
        "in the last {} {}".format,
        st.integers(0, 10**24),
        st.sampled_from(["minutes", "h", "hours", "days", "weeks", "months"]),
    ),
    st.builds(
        "{}{:04d}-{:02d}-{:02d}".format,
        st.sampled_from(["on ", "since "]),
        st.integers(0, 9999),
        st.integers(0, 13),
        st.integers(0, 32),
    ),
    st.builds("on {} {}, {:04d}".format, st.sampled_from(MONTHS), st.integers(0, 32), st.integers(0, 9999)),
    st.builds("since {} {} {:04d}".format, st.integers(0, 32), st.sampled_from(MONTHS), st.integers(0, 9999)),
    st.builds("at {:02d}:{:02d}".format, st.integers(0, 30), st.integers(0, 70)),
    st.sampled_from(["today", "yesterday", "last week", "this month", "last night", "since monday"]),
)
QUESTIONS = st.builds(
    "{} {}".format,
    st.sampled_from(
        [
            "what went wrong in energy",
            "how many critical anomalies in cyber",
            "explain the machine anomaly",
            "compare anomalies",
            "top root cause",
        ]
    ),
    st.lists(TIME_PHRASES, min_size=1, max_size=3).map(" and ".join),
)


@given(question=QUESTIONS)
@FUZZ_SETTINGS
def test_chatbot_answers_every_time_phrase(question: str) -> None:
    response = OPEN_CLIENT.post("/chatbot/query", json={"question": question})
    assert response.status_code == 200, (question, response.text)
    assert response.json()["answer"]
