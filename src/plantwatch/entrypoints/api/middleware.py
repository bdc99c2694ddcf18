"""ASGI middleware of the API, outermost first: security headers, request ids with one structured log line and
latency histogram per request, and the request body size limit.

Plain ASGI rather than Starlette's BaseHTTPMiddleware: that one buffers streaming responses (the live feed)
and costs a task per request.
"""

import re
import time
import uuid
from collections.abc import Iterable
from typing import Any

import structlog
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from plantwatch.entrypoints.api.errors import BatchTooLargeError, error_response
from plantwatch.entrypoints.logs import get_logger
from plantwatch.entrypoints.metrics import REQUEST_LATENCY

log = get_logger("plantwatch.api.access")

# The dashboard and the API serve only their own files: no inline script, no frames, no other origin.
# plotly draws with inline styles, so styles may be inline.
STRICT_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'"
)
# FastAPI's /docs and /redoc pages load Swagger UI and ReDoc from jsDelivr with an inline start-up script.
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; img-src 'self' data: https:; "
    "worker-src 'self' blob:; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)
DOCS_PATHS = ("/docs", "/redoc")
SECURITY_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
)


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        csp = (DOCS_CSP if scope["path"].startswith(DOCS_PATHS) else STRICT_CSP).encode()

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS:
                    headers.raw.append((name, value))
                headers.raw.append((b"content-security-policy", csp))
            await send(message)

        await self.app(scope, receive, send_with_headers)


# A client's own request id is kept when it is short and plain, so it can be followed across services.
_CLIENT_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


def _request_id(headers: Iterable[tuple[bytes, bytes]]) -> str:
    for name, value in headers:
        if name == b"x-request-id":
            text = value.decode("latin-1")
            if _CLIENT_REQUEST_ID.match(text):
                return text
    return uuid.uuid4().hex


class RequestContext:
    """Gives each request an id (X-Request-ID, in every log line of the request and in the response), logs
    one line per request and records its latency per route template.

    Latency is measured to the start of the response, so a live stream counts as its time to first byte.
    The line names the path without its query string, and never headers: keys stay out of the logs.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope["headers"])
        started = time.perf_counter()
        status = 500
        latency: float | None = None

        async def send_with_id(message: Message) -> None:
            nonlocal status, latency
            if message["type"] == "http.response.start":
                status = message["status"]
                latency = time.perf_counter() - started
                MutableHeaders(scope=message).append("x-request-id", request_id)
            await send(message)

        structlog.contextvars.bind_contextvars(request_id=request_id)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            route = _route_template(scope)
            elapsed = latency if latency is not None else time.perf_counter() - started
            REQUEST_LATENCY.labels(scope["method"], route, str(status)).observe(elapsed)
            log.info(
                "request",
                method=scope["method"],
                path=scope["path"],
                route=route,
                status=status,
                duration_ms=round(elapsed * 1000, 2),
            )
            structlog.contextvars.unbind_contextvars("request_id")


def _route_template(scope: Scope) -> str:
    """The matched route's path template (`/anomalies/{module}`): one label per route, not per id."""
    route: Any = scope.get("route")
    return str(getattr(route, "path", None) or "unmatched")


class BodyTooLargeError(BatchTooLargeError):
    """A request body over settings.max_body_bytes (HTTP 413)."""


class BodySizeLimit:
    """Refuses bodies over `max_bytes` with a 413 before anything parses them: at once when Content-Length
    says so, otherwise as soon as the streamed body passes the limit (chunked uploads)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _message(self) -> str:
        return f"the request body is larger than the limit of {self.max_bytes} bytes"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                response = error_response(413, self._message(), "body", {"connection": "close"})
                await response(scope, receive, send)
                return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # a domain error: the app's handler answers it with the usual 413 body
                    raise BodyTooLargeError(self._message())
            return message

        await self.app(scope, counting_receive, send)
