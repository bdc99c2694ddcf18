"""Prometheus metrics of the API and the worker, and the text a scrape gets.

With several API processes (`plantwatch serve --workers N`) each keeps its own counters; when the
PROMETHEUS_MULTIPROC_DIR environment variable names a directory (serve sets it for N > 1), a scrape adds up
every process's files, so /metrics answers for the whole server whichever process takes the request.
"""

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

from plantwatch.domain.ports import ModelCard
from plantwatch.services.ingest import IngestResult

# Buckets from 1 ms: the API's fast routes answer in milliseconds, the chatbot and ingest in tenths.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

REQUEST_LATENCY = Histogram(
    "plantwatch_http_request_duration_seconds",
    "Time to the start of the response, per route template",
    ["method", "route", "status"],
    buckets=LATENCY_BUCKETS,
)
READINGS_SCORED = Counter(
    "plantwatch_readings_scored_total", "Readings scored (with a full model window)", ["module", "via"]
)
ANOMALIES_STORED = Counter(
    "plantwatch_anomalies_stored_total", "Anomalies stored for the first time", ["module", "via"]
)
MODEL_INFO = Gauge(
    "plantwatch_model_info",
    "The model version each module serves (value 1) and its threshold",
    ["module", "model", "version"],
    multiprocess_mode="max",
)
MODEL_THRESHOLD = Gauge(
    "plantwatch_model_threshold", "The served model's threshold", ["module"], multiprocess_mode="max"
)
WORKER_MESSAGES = Counter("plantwatch_worker_messages_total", "MQTT messages by outcome", ["outcome"])
# The worker reads a message only when it has stored the previous one, so a backlog waits in the broker's
# queue, out of its sight; the time since publication shows it: it grows while the worker falls behind.
WORKER_LAG = Histogram(
    "plantwatch_worker_lag_seconds",
    "Time from a message's publication (the publisher's clock) to its acknowledgement after the store",
    buckets=(*LATENCY_BUCKETS, 30.0, 60.0, 300.0),
)
WORKER_LAST_LAG = Gauge(
    "plantwatch_worker_last_lag_seconds",
    "Lag of the last message acknowledged: the back-pressure signal, large while a backlog drains",
    multiprocess_mode="max",
)


def record_ingest(result: IngestResult, via: str) -> None:
    READINGS_SCORED.labels(result.module.value, via).inc(result.scored)
    ANOMALIES_STORED.labels(result.module.value, via).inc(result.new_anomalies)


def record_models(cards: list[ModelCard]) -> None:
    for card in cards:
        MODEL_INFO.labels(card.module.value, card.model_name, card.version).set(1)
        MODEL_THRESHOLD.labels(card.module.value).set(card.threshold)


def scrape() -> tuple[bytes, str]:
    """The metrics text and its content type; every process's metrics in multiprocess mode."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST
