"""MQTT topics and reading messages.

A message is self-contained: besides its readings it carries the readings right before them as `context`,
because a shared subscription hands consecutive messages of one source to different workers, and a worker
needs a full model window before the first reading it scores. The payload is the JSON body of
POST /ingest/{module} (ReadingBatchIn), so one schema serves both ways in.
"""

from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import ValidationError

from plantwatch.domain.errors import InvalidInputError
from plantwatch.domain.frames import SensorFrame
from plantwatch.domain.modules import Module, UnknownModuleError, parse_module
from plantwatch.infrastructure.api.errors import field_path
from plantwatch.infrastructure.api.readings import ReadingBatchIn, ReadingIn

# Readings of context a publisher sends with each message: more than any served model's window.
CONTEXT_READINGS = 64


def readings_topic(prefix: str, module: Module) -> str:
    return f"{prefix}/{module.value}/readings"


def shared_subscription(group: str, prefix: str, module: Module) -> str:
    """`$share/<group>/<topic>`: the broker gives each message to one member of the group."""
    return f"$share/{group}/{readings_topic(prefix, module)}"


def module_of_topic(topic: str, prefix: str) -> Module:
    parts = topic.split("/")
    if len(parts) != 3 or parts[0] != prefix or parts[2] != "readings":
        raise InvalidInputError(f"topic {topic!r} is not {prefix}/<module>/readings", field="topic")
    try:
        return parse_module(parts[1])
    except UnknownModuleError as error:
        raise InvalidInputError(str(error), field="topic") from None


def frame_readings(frame: SensorFrame) -> list[ReadingIn]:
    columns = frame.feature_names
    return [
        ReadingIn(
            timestamp=timestamp.to_pydatetime(), values=dict(zip(columns, map(float, row), strict=True))
        )
        for timestamp, row in zip(frame.values.index, frame.to_numpy(), strict=True)
    ]


def encode_batch(source: str, readings: SensorFrame, context: SensorFrame | None = None) -> bytes:
    batch = ReadingBatchIn(
        source=source,
        readings=frame_readings(readings),
        context=frame_readings(context) if context is not None else [],
    )
    return batch.model_dump_json().encode()


@dataclass(frozen=True)
class DecodedBatch:
    frame: SensorFrame
    context: SensorFrame | None


def decode_batch(payload: bytes, module: Module, feature_names: Sequence[str]) -> DecodedBatch:
    """The message's readings and context, checked against the model's features.

    Raises InvalidInputError naming the field (e.g. `readings[3].values.LIT101`).
    """
    try:
        batch = ReadingBatchIn.model_validate_json(payload)
    except ValidationError as error:
        first = error.errors()[0]
        field = field_path(first["loc"]) if first["loc"] else "payload"
        raise InvalidInputError(f"{field}: {first['msg']}", field=field) from None
    frame, context = batch.to_frames(module, feature_names)
    return DecodedBatch(frame=frame, context=context)
