"""Optional OpenTelemetry tracing of the API: a span per request (FastAPI's instrumentation), sent to the
console or to an OTLP collector, as `PLANTWATCH_OTEL_EXPORTER` says (default none: nothing is imported).

The OpenTelemetry SDK and instrumentation are the optional extra `otel` (`pip install plantwatch[otel]`); the
OTLP exporter reads the standard `OTEL_EXPORTER_OTLP_ENDPOINT` (default http://localhost:4318). Each log line
written inside a request's span carries its `trace_id` and `span_id` (entrypoints/logs.py), so logs and
traces join up.
"""

from typing import TYPE_CHECKING

from fastapi import FastAPI

from plantwatch.settings import Settings

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter


class TracingUnavailableError(RuntimeError):
    """Tracing was asked for, but the `otel` extra is not installed."""


# Routes scraped or polled all the time: a span each would drown the traces worth reading.
UNTRACED_URLS = "metrics,health"


def install_tracing(
    app: FastAPI, settings: Settings, exporter: "SpanExporter | None" = None
) -> "TracerProvider | None":
    """Instrument `app` when `settings.otel_exporter` names an exporter, or with `exporter` (tests). The
    provider is the app's own, not the process-wide one, so two apps in one process (tests) stay apart."""
    if exporter is None and settings.otel_exporter == "none":
        return None
    try:
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
        from opentelemetry.sdk.resources import SERVICE_NAME, Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import (
            BatchSpanProcessor,
            ConsoleSpanExporter,
            SimpleSpanProcessor,
        )
    except ImportError as error:
        raise TracingUnavailableError(
            f"PLANTWATCH_OTEL_EXPORTER={settings.otel_exporter} needs the OpenTelemetry packages: "
            f"pip install 'plantwatch[otel]' ({error.name} is missing)"
        ) from None
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: settings.otel_service_name}))
    if exporter is not None:
        # handed over at once, so a test sees a request's span as soon as the request is answered
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    elif settings.otel_exporter == "console":
        provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    else:
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        except ImportError:
            raise TracingUnavailableError(
                "PLANTWATCH_OTEL_EXPORTER=otlp needs opentelemetry-exporter-otlp-proto-http: "
                "pip install 'plantwatch[otel]'"
            ) from None
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    FastAPIInstrumentor.instrument_app(app, tracer_provider=provider, excluded_urls=UNTRACED_URLS)
    return provider
