"""Optional OpenTelemetry tracing: a server span per request into the configured exporter, none for the
metrics and health polls, and the trace id in the request's log line."""

import io
import json
import logging
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

pytest.importorskip("opentelemetry.sdk", reason="the otel extra is not installed")
pytest.importorskip("opentelemetry.instrumentation.fastapi", reason="the otel extra is not installed")

from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from plantwatch.bootstrap import Container
from plantwatch.entrypoints.api.app import create_app
from plantwatch.entrypoints.logs import log_formatter
from plantwatch.settings import Settings
from tests.fakes import InMemoryAnomalyRepository, make_anomaly


def traced_client(exporter: InMemorySpanExporter | None = None, **settings: object) -> TestClient:
    settings_obj = Settings(database_url="sqlite://", chatbot_embeddings=False, **settings)  # type: ignore[arg-type]
    repository = InMemoryAnomalyRepository()
    repository.add_many([make_anomaly()])
    container = Container(settings=settings_obj, repository=repository, models={})
    return TestClient(create_app(settings_obj, container, span_exporter=exporter))


@pytest.fixture
def json_logs() -> Iterator[io.StringIO]:
    """The app's log lines, rendered as in production (JSON), for the test's duration."""
    written = io.StringIO()
    handler = logging.StreamHandler(written)
    handler.setFormatter(log_formatter("json"))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield written
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def request_line(written: io.StringIO, request_id: str) -> dict[str, object]:
    lines = [json.loads(line) for line in written.getvalue().splitlines()]
    return next(line for line in lines if line.get("request_id") == request_id and line["event"] == "request")


def test_each_request_is_a_server_span_with_its_route_and_status() -> None:
    exporter = InMemorySpanExporter()
    client = traced_client(exporter)
    assert client.get("/anomalies/energy", params={"limit": 5}).status_code == 200
    assert client.get("/anomalies/water").status_code == 404
    assert client.get("/health").status_code == 200
    assert client.get("/metrics").status_code == 200

    servers = [span for span in exporter.get_finished_spans() if span.kind is SpanKind.SERVER]
    assert [(span.attributes or {}).get("http.route") for span in servers] == [
        "/anomalies/{module}",
        "/anomalies/{module}",
    ]
    # the semantic conventions' older name unless OTEL_SEMCONV_STABILITY_OPT_IN says otherwise
    statuses = [
        (span.attributes or {}).get(
            "http.response.status_code", (span.attributes or {}).get("http.status_code")
        )
        for span in servers
    ]
    assert statuses == [200, 404]
    assert servers[0].resource.attributes["service.name"] == "plantwatch"


def test_the_request_log_line_carries_the_trace_id(json_logs: io.StringIO) -> None:
    exporter = InMemorySpanExporter()
    traced_client(exporter).get("/anomalies", headers={"X-Request-ID": "trace-me"})
    line = request_line(json_logs, "trace-me")
    (server,) = [span for span in exporter.get_finished_spans() if span.kind is SpanKind.SERVER]
    assert line["trace_id"] == format(server.context.trace_id, "032x")
    assert line["span_id"] == format(server.context.span_id, "016x")


def test_without_tracing_no_span_and_no_trace_id(json_logs: io.StringIO) -> None:
    client = traced_client()
    assert client.app.state.tracer_provider is None  # type: ignore[attr-defined]
    client.get("/anomalies", headers={"X-Request-ID": "untraced"})
    assert "trace_id" not in request_line(json_logs, "untraced")


def test_the_setting_picks_the_console_exporter() -> None:
    client = traced_client(otel_exporter="console")
    provider = client.app.state.tracer_provider  # type: ignore[attr-defined]
    assert provider is not None
    provider.shutdown()
    with pytest.raises(ValueError):
        Settings(otel_exporter="jaeger")  # type: ignore[arg-type]
