"""Structured logs (structlog) for the API, the worker and the CLI: one JSON object a line, or readable lines
for a terminal, with the request id of the request a line belongs to.

The standard library's loggers (plantwatch's own modules, uvicorn, SQLAlchemy) go through the same
renderer, so every line has one shape. A last processor masks passwords in URLs and values of secret-looking
keys, in case a message carries one.
"""

import logging
import re
from collections.abc import MutableMapping
from typing import Any

import structlog

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


_SHARED: list[Any] = [
    structlog.contextvars.merge_contextvars,
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


def configure_logging(log_format: str = "json", level: str = "INFO") -> None:
    """Render structlog's and the standard library's log records alike, one line each on stderr."""
    shared = _SHARED
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if log_format == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            redact_secrets,
            renderer,
        ],
    )
    handler = logging.StreamHandler()
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # uvicorn's own handlers would print a second, plain copy; its access log is replaced by ours
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    logging.getLogger("uvicorn.access").disabled = True
