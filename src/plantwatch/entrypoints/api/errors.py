"""The one place errors become HTTP responses: domain errors by type, request validation with field paths."""

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from plantwatch.adapters.wire import field_path
from plantwatch.domain.errors import (
    ConflictError,
    DataFileError,
    ForbiddenError,
    InvalidInputError,
    InvalidTransitionError,
    ModelIntegrityError,
    ModelUnavailableError,
    NotFoundError,
    PlantwatchError,
    RateLimitedError,
    StoreUnavailableError,
    UnauthorizedError,
)
from plantwatch.entrypoints.api.schemas import ErrorOut

log = logging.getLogger(__name__)


class BatchTooLargeError(PlantwatchError):
    """A batch holds more readings than settings.max_batch_readings (HTTP 413)."""


# Most specific first: the first match wins.
STATUS_BY_ERROR: tuple[tuple[type[Exception], int], ...] = (
    (UnauthorizedError, 401),
    (ForbiddenError, 403),
    (NotFoundError, 404),
    (InvalidTransitionError, 409),
    (ConflictError, 409),
    (BatchTooLargeError, 413),
    (RateLimitedError, 429),
    (InvalidInputError, 422),
    (DataFileError, 422),
    (StoreUnavailableError, 503),
    (ModelUnavailableError, 503),
    (ModelIntegrityError, 503),
    (PlantwatchError, 400),
)


def error_response(
    status: int, message: str, field: str | None = None, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    body = ErrorOut(detail=message, field=field).model_dump(mode="json")
    return JSONResponse(body, status_code=status, headers=dict(headers) if headers else None)


# For the OpenAPI document: every error status carries an ErrorOut. 400 is a body that is not even text
# (FastAPI refuses one that is not UTF-8 before any field can be named) or another PlantwatchError.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorOut} for status in (400, 401, 403, 404, 409, 413, 422, 429, 500, 503)
}


def status_for(error: Exception) -> int:
    for error_type, status in STATUS_BY_ERROR:
        if isinstance(error, error_type):
            return status
    return 500


def _field_of(error: Exception) -> str | None:
    if isinstance(error, InvalidInputError | ForbiddenError):
        return error.field
    if isinstance(error, DataFileError):
        return error.column
    return None


# Seconds a client should wait before retrying a store that is down.
STORE_RETRY_AFTER_S = 5


def _headers_of(error: Exception, status: int) -> dict[str, str] | None:
    if status == 401:
        return {"WWW-Authenticate": "ApiKey"}
    if isinstance(error, RateLimitedError):
        return {"Retry-After": str(error.retry_after_s)}
    if isinstance(error, StoreUnavailableError):
        return {"Retry-After": str(STORE_RETRY_AFTER_S)}
    return None


async def _plantwatch_error(_request: Request, error: Exception) -> JSONResponse:
    status = status_for(error)
    return error_response(status, str(error), _field_of(error), _headers_of(error, status))


async def _validation_error(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    problems = [(field_path(item.get("loc", ())), str(item.get("msg", "invalid"))) for item in error.errors()]
    message = "; ".join(f"{field}: {text}" for field, text in problems) or "invalid request"
    return error_response(422, message, problems[0][0] if problems else None)


async def _http_error(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StarletteHTTPException)
    return error_response(error.status_code, str(error.detail), headers=error.headers)


async def _unexpected_error(request: Request, error: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=error)
    return error_response(500, "internal error; the server log has the details")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(PlantwatchError, _plantwatch_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)
