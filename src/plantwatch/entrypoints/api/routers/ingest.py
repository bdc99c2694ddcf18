"""POST /ingest/{module}: score a batch of readings at once and store what it finds.

One route, two bodies: JSON (ReadingBatchIn) or a multipart upload of a CSV file in the module's raw public
layout (field `file`, optional field `source`), parsed by the same loaders as the data-set files.
"""

from dataclasses import replace
from functools import partial
from typing import Any

from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from plantwatch.adapters.datasets.loading import load_readings_csv
from plantwatch.adapters.wire import (
    MAX_NAME_CHARS,
    NO_CONTROL_CHARS,
    ReadingBatchIn,
    check_plausible,
    checked_source,
)
from plantwatch.bootstrap import Container
from plantwatch.domain.errors import InvalidInputError
from plantwatch.domain.frames import SensorFrame
from plantwatch.domain.modules import Module
from plantwatch.entrypoints.api.access import AdminDep
from plantwatch.entrypoints.api.dependencies import ContainerDep, ModuleDep
from plantwatch.entrypoints.api.errors import BatchTooLargeError
from plantwatch.entrypoints.api.schemas import AnomalyOut
from plantwatch.entrypoints.metrics import record_ingest
from plantwatch.services.ingest import IngestResult, ingest_frame

router = APIRouter(tags=["ingest"])

CSV_MEDIA_TYPES = ("multipart/form-data",)


class IngestOut(BaseModel):
    module: Module
    source: str
    readings: int
    scored: int
    """Readings with a full window (see the context rule in the docs): the rest were context only."""
    new_scores: int
    new_anomalies: int
    """Anomalies not stored before: re-sending the same readings stores nothing twice."""
    anomalies: list[AnomalyOut]

    @classmethod
    def from_result(cls, result: IngestResult) -> "IngestOut":
        return cls(
            module=result.module,
            source=result.source,
            readings=result.readings,
            scored=result.scored,
            new_scores=result.new_scores,
            new_anomalies=result.new_anomalies,
            anomalies=[AnomalyOut.from_domain(a) for a in result.anomalies],
        )


def _inlined(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` with its `#/$defs/...` references replaced by the definitions (none is recursive).

    Pydantic puts a model's sub-models under `$defs` of its own schema, but inside the OpenAPI document `#`
    is the document root, where no `$defs` is, so the references would dangle for every client.
    """
    definitions = schema.get("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                return resolve(definitions[node["$ref"].removeprefix("#/$defs/")])
            return {key: resolve(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(item) for item in node]
        return node

    return {key: resolve(value) for key, value in schema.items() if key != "$defs"}


_BODY_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": _inlined(ReadingBatchIn.model_json_schema())},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {
                            "type": "string",
                            "format": "binary",
                            "description": "CSV in the module's raw public layout",
                        },
                        "source": {
                            "type": "string",
                            "maxLength": MAX_NAME_CHARS,
                            "pattern": NO_CONTROL_CHARS,
                            "description": "defaults to the file name",
                        },
                    },
                }
            },
        },
    }
}


def _check_size(container: Container, count: int) -> None:
    limit = container.settings.max_batch_readings
    if count > limit:
        raise BatchTooLargeError(f"the batch has {count} readings; at most {limit} per request")


def _parse_json_batch(
    body: bytes, module: Module, container: Container
) -> tuple[SensorFrame, SensorFrame | None]:
    try:
        batch = ReadingBatchIn.model_validate_json(body)
    except ValidationError as error:
        raise RequestValidationError(
            [{**item, "loc": ("body", *item["loc"])} for item in error.errors(include_url=False)]
        ) from None
    _check_size(container, len(batch.readings) + len(batch.context))
    feature_names = container.model(module).card.feature_names
    return batch.to_frames(module, feature_names, container.settings.plausibility(module))


async def _json_frames(
    request: Request, module: Module, container: Container
) -> tuple[SensorFrame, SensorFrame | None]:
    body = await request.body()  # at most settings.max_body_bytes: the middleware stops larger ones
    # parsing megabytes of JSON takes a while: on a worker thread, so the event loop keeps serving
    return await run_in_threadpool(_parse_json_batch, body, module, container)


async def _csv_frame(request: Request, module: Module, container: Container) -> SensorFrame:
    try:
        form = await request.form()
    except HTTPException as error:
        # Starlette answers a malformed multipart body with a bare 400; it is a bad `file` like any other.
        raise InvalidInputError(
            f"file: not a readable multipart upload: {error.detail}", field="file"
        ) from None
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise InvalidInputError("file: a CSV file upload is needed (multipart field 'file')", field="file")
    name = upload.filename or "upload.csv"
    sent_source = form.get("source")
    if isinstance(sent_source, str) and sent_source.strip():
        source = checked_source(sent_source.strip())
    else:
        # the file name is the source: check it before parsing, so a bad name fails fast and says so
        source = checked_source(name, field="file")
    data = await upload.read()
    frame = await run_in_threadpool(load_readings_csv, module, data, name)
    _check_size(container, len(frame))
    check_plausible(frame, container.settings.plausibility(module))
    return replace(frame, source=source)


@router.post(
    "/ingest/{module}",
    response_model=IngestOut,
    summary="Score a batch of readings (JSON or CSV upload) and store its anomalies",
    openapi_extra=_BODY_DOC,
)
async def ingest(
    request: Request, container: ContainerDep, module: ModuleDep, _caller: AdminDep
) -> IngestOut:
    model = container.model(module)
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(CSV_MEDIA_TYPES):
        frame, sent_context = await _csv_frame(request, module, container), None
    else:
        frame, sent_context = await _json_frames(request, module, container)
    result = await run_in_threadpool(
        partial(
            ingest_frame, sent_context=sent_context, incidents=container.incidents, drift=container.drift
        ),
        frame,
        model,
        container.repository,
        container.context,
    )
    if result.new_anomalies:
        request.app.state.page_cache.invalidate()  # this caller reads its own anomalies at once
    container.feed.publish(result.anomalies)
    record_ingest(result, via="http")
    return IngestOut.from_result(result)
