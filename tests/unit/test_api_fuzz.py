"""Property-based fuzzing of every API operation from the app's own OpenAPI document (schemathesis).

Valid and invalid requests alike must never get a 5xx, every status must be one the document declares, and
every response must match the schema declared for its status. The app serves a PCA model for every module,
fitted on the shipped samples, so ingest cases reach real scoring; a second app has an API key set, so the
401 path of the write endpoint is fuzzed too.

Left out: the SSE stream (it never ends; test_api_stream.py covers it) and the dashboard files (not in the
OpenAPI document; test_dashboard_routes.py covers them).
"""

from datetime import datetime
from typing import Any

import numpy as np
import schemathesis
import torch
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation.case import Case
from schemathesis.hooks import HookContext
from schemathesis.schemas import BaseSchema
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from plantwatch.domain.modules import Module
from plantwatch.domain.ports import ModelCard, TrainedModel
from plantwatch.infrastructure.api.app import create_app
from plantwatch.infrastructure.bootstrap import Container
from plantwatch.infrastructure.datasets import load_sample, sample_path
from plantwatch.infrastructure.detectors import build_detector
from plantwatch.infrastructure.settings import Settings
from tests.fakes import InMemoryAnomalyRepository, make_anomaly

torch.set_num_threads(1)

API_KEY = "fuzz-key"
WINDOW = 4
TRAIN_ROWS = 400
MAX_BATCH = 50
# Few examples per operation keep the file to seconds on two shared cores; derandomised, so every run sends
# the same requests and a failure reproduces.
MAX_EXAMPLES = 30
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]


def sample_model(module: Module) -> TrainedModel:
    """PCA fitted on the first normal rows of the module's shipped sample."""
    sample = load_sample(module)
    rows = sample.to_numpy()
    if sample.labels is not None:
        rows = rows[(sample.labels == 0).to_numpy()]
    train = rows[:TRAIN_ROWS]
    detector = build_detector("pca", window=WINDOW).fit(train, sample.feature_names)
    card = ModelCard(
        module=module,
        model_name="pca",
        version="fuzz",
        feature_names=sample.feature_names,
        window=WINDOW,
        threshold=float(np.nanquantile(detector.score(train), 0.99)),
        threshold_method="quantile",
        data_hash="sample",
        training_source=str(sample_path(module)),
        created_at=datetime(2024, 1, 1),
    )
    return TrainedModel(detector=detector, card=card)


MODELS = {module: sample_model(module) for module in Module}


def fuzzed_app(api_key: str | None) -> FastAPI:
    settings_obj = Settings(
        database_url="sqlite://", api_key=api_key, max_batch_readings=MAX_BATCH, chatbot_embeddings=False
    )
    repository = InMemoryAnomalyRepository()
    repository.add_many([make_anomaly(module=module) for module in Module])
    container = Container(settings=settings_obj, repository=repository, models=MODELS)
    return create_app(settings_obj, container)


def fuzzed_schema(app: FastAPI) -> BaseSchema:
    schema = schemathesis.openapi.from_asgi("/openapi.json", app).exclude(path="/anomalies/stream")
    schema.config.generation.update(max_examples=MAX_EXAMPLES, deterministic=True)
    # The API's timestamps are naive plant local time (see the app description), which JSON Schema's
    # date-time format (RFC 3339, offset required) rejects; every other part of a response is still checked.
    schema.config.checks.response_schema_conformance.validate_formats = False
    return schema


def naive(timestamp: Any) -> Any:
    """A generated RFC 3339 timestamp without its offset, as the API wants; anything else as it was."""
    try:
        return datetime.fromisoformat(timestamp).replace(tzinfo=None).isoformat()
    except (TypeError, ValueError):
        return timestamp


def with_model_features(readings: Any, features: list[str]) -> Any:
    """Generated readings renamed to the model's features (generated numbers reused round-robin)."""
    if not isinstance(readings, list):
        return readings
    shaped = []
    for reading in readings:
        if isinstance(reading, dict) and isinstance(reading.get("values"), dict):
            numbers = list(reading["values"].values()) or [0.0]
            values = {name: numbers[i % len(numbers)] for i, name in enumerate(features)}
            reading = {**reading, "timestamp": naive(reading.get("timestamp")), "values": values}
        shaped.append(reading)
    return shaped


def map_case(context: HookContext, case: Case) -> Case:
    """Valid-by-schema ingest bodies, reshaped to reach scoring.

    The schema cannot say which feature names a module's model takes, so a generated body almost never has
    them and every positive case would stop at the 422 for an unknown feature. Positive JSON ingest cases
    get the module's feature names and naive timestamps instead, keeping the generated numbers, batch sizes,
    sources and orderings; negative cases are sent as generated.
    """
    positive = case.meta is None or case.meta.generation.mode.is_positive
    module = (case.path_parameters or {}).get("module")
    if (
        case.operation.path != "/ingest/{module}"
        or not positive
        or not isinstance(case.body, dict)
        or module not in {m.value for m in Module}
    ):
        return case
    features = MODELS[Module(module)].card.feature_names
    case.body = {
        **case.body,
        **{
            key: with_model_features(case.body[key], features)
            for key in ("readings", "context")
            if key in case.body
        },
    }
    return case


# Loaded at import, not through schemathesis.pytest.from_fixture, which breaks on pytest 9 (it rewrites
# the node's private _nodeid). Fitting the three models takes a fraction of a second.
open_schema = fuzzed_schema(fuzzed_app(api_key=None))
open_schema.hook(map_case)
keyed_schema = fuzzed_schema(fuzzed_app(api_key=API_KEY)).include(method="POST", path="/ingest/{module}")

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
