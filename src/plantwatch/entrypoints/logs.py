"""Structured logs (structlog) for the API, the worker and the CLI: one JSON object a line, or readable lines
for a terminal, with the request id of the request a line belongs to and, with tracing on
(api/tracing.py), the OpenTelemetry trace and span ids.

The standard library's loggers (plantwatch's own modules, uvicorn, SQLAlchemy) go through the same
renderer, so every line has one shape. A last processor masks passwords in URLs and values of secret-looking
keys, in case a message carries one.
"""

import logging
import re
from collections.abc import MutableMapping
from typing import Any

import structlog

try:  # the OpenTelemetry API comes with the `otel` extra (and with FastAPI); without it, lines carry no trace
    from opentelemetry.trace import get_current_span as _current_span
except ImportError:  # pragma: no cover - depends on the installed extras
    _current_span = None  # type: ignore[assignment]

_URL_PASSWORD = re.compile(r"(://[^:/@\s]+:)[^@\s]+@")
_SECRET_KEYS = ("password", "api_key", "apikey", "secret", "token", "authorization", "x-api-key")


def _mask(text: str) -> str:
    return _URL_PASSWORD.sub(r"\1***@", text)


def redact_secrets(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key, value in list(event.items()):
        if any(secret in key.lower() for secret in _SECRET_KEYS):
            event[key] = "***"
        elif isinstance(value, str):
            event[key] = _mask(value)
    return event


def add_trace_context(
    _logger: Any, _method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """The OpenTelemetry trace and span ids of the span the line is written in, when tracing is on."""
    if _current_span is None:
        return event
    context = _current_span().get_span_context()
    if context.is_valid:
        event.setdefault("trace_id", format(context.trace_id, "032x"))
        event.setdefault("span_id", format(context.span_id, "016x"))
    return event


_SHARED: list[Any] = [
    structlog.contextvars.merge_contextvars,
    add_trace_context,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]

# structlog loggers hand their events to the standard library's, so a process that never calls
# configure_logging (tests, an embedding application) keeps its own logging set-up, and a disabled level
# costs one check.
structlog.configure(
    processors=[
        structlog.stdlib.filter_by_level,
        *_SHARED,
        structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
    ],
    logger_factory=structlog.stdlib.LoggerFactory(),
    wrapper_class=structlog.stdlib.BoundLogger,
    cache_logger_on_first_use=True,
)


def get_logger(name: str) -> Any:
    return structlog.stdlib.get_logger(name)


def log_formatter(log_format: str = "json") -> logging.Formatter:
    """The formatter that renders structlog's and the standard library's records alike."""
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if log_format == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_SHARED,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            redact_secrets,
            renderer,
        ],
    )


def configure_logging(log_format: str = "json", level: str = "INFO") -> None:
    """Render structlog's and the standard library's log records alike, one line each on stderr."""
    handler = logging.StreamHandler()
    handler.setFormatter(log_formatter(log_format))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # uvicorn's own handlers would print a second, plain copy; its access log is replaced by ours
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    logging.getLogger("uvicorn.access").disabled = True
