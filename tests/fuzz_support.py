"""For the API fuzzing tests: PCA models fitted in a fraction of a second on the shipped samples, and
hypothesis strategies of ingest bodies shaped like real readings."""

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import numpy as np
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.config import ApiKeyAuthConfig
from schemathesis.schemas import BaseSchema
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from plantwatch.adapters.datasets import load_sample, sample_path
from plantwatch.adapters.detectors import build_detector
from plantwatch.domain.modules import Module
from plantwatch.domain.ports import ModelCard, TrainedModel
from plantwatch.entrypoints.api.access import API_KEY_HEADER

# Every schemathesis check the fuzz tests run, in-memory and over PostgreSQL, with keys and without: no
# 5xx, only documented statuses and content types, responses matching their schema, invalid input refused.
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]


def send_key(schema: BaseSchema, key: str) -> BaseSchema:
    """`schema` with `key` as the credentials of the API key scheme: every request carries it, except an
    invalid one that drops or spoils the key header on purpose."""
    schema.config.auth.openapi.schemes[API_KEY_HEADER.scheme_name] = ApiKeyAuthConfig(api_key=key)
    return schema


WINDOW = 4
TRAIN_ROWS = 400
# module, JSON body, and the mistake the body has ("none" when it is valid)
ReadingBatch = tuple[Module, dict[str, Any], str]


def sample_model(module: Module) -> TrainedModel:
    """PCA fitted on the first normal rows of the module's shipped sample."""
    sample = load_sample(module)
    train = sample.normal_only().to_numpy()[:TRAIN_ROWS]
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


def sample_models() -> dict[Module, TrainedModel]:
    return {module: sample_model(module) for module in Module}


T0 = datetime(2024, 3, 1)
PLAIN_NUMBERS = st.floats(-1e6, 1e6) | st.integers(-(10**6), 10**6)
# Still finite JSON, but large enough to overflow plain arithmetic (numpy warns before the detectors clip
# the scaled values; the tests that send them ignore those RuntimeWarnings).
OVERFLOW_WARNINGS = ("ignore:overflow encountered", "ignore:invalid value encountered")
EXTREME_NUMBERS = st.floats(allow_nan=False, allow_infinity=False)
# Most batches are valid, so scoring runs; the rest carry one kind of mistake each.
# The SQL store refuses a NUL in text and a source over 200 characters.
BAD_SOURCES = st.sampled_from(["", "line\x001", "x" * 201, " \t"]) | st.text(max_size=210)
# "offset" is no mistake: one reading is sent as the same instant with an offset, which the API converts back
# to plant local time (the modules' plant clocks are UTC here).
MISTAKES = ["none"] * 6 + ["missing", "unknown", "offset", "duplicate", "source", "extreme"]
VALID = ("none", "source", "extreme", "offset")


@st.composite
def reading_batches(draw: st.DrawFn, models: dict[Module, TrainedModel], max_batch: int) -> ReadingBatch:
    """The module, a JSON ingest body with its model's features in any order, and its mistake if any."""
    module = draw(st.sampled_from(list(models)))
    features = list(models[module].card.feature_names)
    mistake = draw(st.sampled_from(MISTAKES))
    size = draw(st.integers(0, max_batch + 5))
    minutes = draw(st.lists(st.integers(0, 3 * max_batch), min_size=size, max_size=size, unique=True))
    if mistake == "duplicate" and minutes:
        minutes.append(draw(st.sampled_from(minutes)))
    numbers = EXTREME_NUMBERS if mistake == "extreme" else PLAIN_NUMBERS
    readings = []
    for minute in draw(st.permutations(minutes)):
        stamp = T0 + timedelta(minutes=minute)
        values = {name: draw(numbers) for name in features}
        readings.append({"timestamp": stamp.isoformat(), "values": values})
    if readings and mistake in ("missing", "unknown", "offset"):
        spoilt = readings[draw(st.integers(0, len(readings) - 1))]
        if mistake == "missing":
            spoilt["values"].pop(draw(st.sampled_from(features)))
        elif mistake == "unknown":
            spoilt["values"][draw(st.text(min_size=1, max_size=8).filter(lambda n: n not in features))] = 1.0
        else:
            offset = timezone(timedelta(minutes=draw(st.integers(-12 * 60, 14 * 60))))
            local = datetime.fromisoformat(spoilt["timestamp"]).replace(tzinfo=UTC)
            spoilt["timestamp"] = local.astimezone(offset).isoformat()
    context = [
        {"timestamp": (T0 - timedelta(minutes=back)).isoformat(), "values": dict.fromkeys(features, 1.0)}
        for back in range(draw(st.integers(0, 6)), 0, -1)
    ]
    source = draw(BAD_SOURCES if mistake == "source" else st.sampled_from(["line-1", "line-2"]))
    return module, {"source": source, "readings": readings, "context": context}, mistake


def check_ingest_answer(batch: ReadingBatch, response: httpx.Response, max_batch: int) -> None:
    """A result for a valid batch, 413 for an oversize one, a 422 naming the field for a mistake."""
    _, body, mistake = batch
    sent = len(body["readings"]) + len(body["context"])
    assert response.status_code in (200, 413, 422), response.text
    answer = response.json()
    if response.status_code == 413:
        assert sent > max_batch
    elif response.status_code == 422:
        assert mistake not in ("none", "offset") or not body["readings"], answer
        assert answer["field"] and answer["detail"].startswith(answer["field"]), answer
    else:
        # a batch's first readings may be context only (no full window yet), so not every reading is scored
        assert mistake in VALID and sent <= max_batch
        assert answer["readings"] == len(body["readings"])
        assert 0 <= answer["scored"] <= answer["readings"]
        # answers are in plant local time (UTC here), whatever offset a reading was sent with
        stamps = {_plant_local(reading["timestamp"]) for reading in body["readings"]}
        assert all(anomaly["window_end"] in stamps for anomaly in answer["anomalies"])


def _plant_local(timestamp: str) -> str:
    sent = datetime.fromisoformat(timestamp)
    return (sent.astimezone(UTC).replace(tzinfo=None) if sent.tzinfo else sent).isoformat()
