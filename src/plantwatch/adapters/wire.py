"""The JSON shape of a reading batch, for both ways in: the body of POST /ingest/{module} and the payload of
an MQTT reading message. It parses straight into the one shape readings have inside plantwatch, a SensorFrame.

An MQTT message is self-contained: besides its readings it carries the readings right before them as
`context`, because a shared subscription hands consecutive messages of one source to different workers, and
a worker needs a full model window before the first reading it scores.
"""

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Annotated

import pandas as pd
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictFloat,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    WithJsonSchema,
)

from plantwatch.adapters.modules.catalog import module_config
from plantwatch.domain.errors import InvalidInputError
from plantwatch.domain.frames import SensorFrame
from plantwatch.domain.modules import Module, UnknownModuleError, parse_module
from plantwatch.domain.plausibility import PlausibilityLimits

# Names the store keeps (sources, features) are at most this long (the SQL columns' size), and have no
# control characters: PostgreSQL cannot store or even compare a text holding NUL.
MAX_NAME_CHARS = 200
NO_CONTROL_CHARS = r"^[^\x00-\x1f\x7f]*$"

SourceName = Annotated[
    str, StringConstraints(min_length=1, max_length=MAX_NAME_CHARS, pattern=NO_CONTROL_CHARS)
]
_SOURCE_NAME: TypeAdapter[str] = TypeAdapter(SourceName)


def checked_source(value: str, field: str = "source") -> str:
    """`value` as a source name (the rules of ReadingBatchIn.source); InvalidInputError naming `field`."""
    try:
        return _SOURCE_NAME.validate_python(value)
    except ValidationError as error:
        shown = value if len(value) <= 40 else value[:40] + "..."
        raise InvalidInputError(f"{field}: {error.errors()[0]['msg']} (got {shown!r})", field=field) from None


# Time zones. Readings, anomalies and scores are stored and sent in plant local time without an offset: the
# plant's clock is what operators read. A timestamp that comes in with an offset (`...Z`, `+02:00`) is an
# instant, converted to the module's time zone (`timezone` in its configuration, default UTC) and then kept
# as local time; one without an offset is plant local already. The OpenAPI document states both with
# patterns rather than JSON Schema's `date-time`, which requires an offset (RFC 3339), and input is checked
# against the pattern, so the document and the server accept the same strings.
_ISO_LOCAL = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?"
NAIVE_TIMESTAMP_PATTERN = rf"^{_ISO_LOCAL}$"
TIMESTAMP_IN_PATTERN = rf"^{_ISO_LOCAL}(Z|[+-](0\d|1\d|2[0-3]):[0-5]\d)?$"
_TIMESTAMP_IN = re.compile(TIMESTAMP_IN_PATTERN)


def _iso_text_only(value: object) -> object:
    # pydantic alone would also take a date, a unix time ("1700000000") or a space for the T
    if isinstance(value, str) and not _TIMESTAMP_IN.match(value):
        raise ValueError(
            "must be ISO 8601 like 2024-03-01T12:00:00 (plant local time) or with an offset, "
            "like 2024-03-01T11:00:00Z"
        )
    return value


NaiveTimestamp = Annotated[
    datetime,
    WithJsonSchema(
        {
            "type": "string",
            "pattern": NAIVE_TIMESTAMP_PATTERN,
            "description": "ISO 8601 without an offset, e.g. 2024-03-01T12:00:00",
        }
    ),
]
"""A timestamp the API sends: naive (plant local time, or UTC where the field says so)."""

TimestampIn = Annotated[
    datetime,
    BeforeValidator(_iso_text_only),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": TIMESTAMP_IN_PATTERN,
            "description": "ISO 8601; without an offset plant local time (2024-03-01T12:00:00), with one "
            "(2024-03-01T11:00:00Z, +01:00) converted to the module's time zone",
        }
    ),
]
"""A timestamp the API takes: plant local time, or an instant with an offset (see `to_plant_time`)."""


def to_plant_time(value: datetime, zone: tzinfo, field: str) -> datetime:
    """`value` as naive plant local time in `zone`: converted when it has an offset, as it is when not."""
    if value.tzinfo is None:
        return value
    try:
        return value.astimezone(zone).replace(tzinfo=None)
    except OverflowError:
        raise InvalidInputError(
            f"{field}: {value.isoformat()} is outside the range of dates in plant time", field=field
        ) from None


class ReadingIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    timestamp: TimestampIn = Field(
        description="When the reading was taken: ISO 8601 in plant local time, or with an offset"
    )
    # Strict: a JSON true or "1.5" is not a reading, even though lax parsing would turn it into one.
    values: dict[str, StrictFloat] = Field(description="One number per feature of the module's model")


class ReadingBatchIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "source": "plant-1",
                    "readings": [
                        {
                            "timestamp": "2018-01-01T00:15:00",
                            "values": {"usage_kwh": 3.17, "lagging_reactive_power_kvarh": 2.95},
                        }
                    ],
                }
            ]
        },
    )

    source: SourceName = Field(
        description="The plant, line or device the readings are from; no control characters"
    )
    readings: list[ReadingIn] = Field(min_length=1, description="Readings in any order; sorted by timestamp")
    context: list[ReadingIn] = Field(
        default_factory=list,
        description="Earlier readings of the same source, used only as window context for the first readings",
    )

    def to_frames(
        self,
        module: Module,
        feature_names: Sequence[str],
        limits: PlausibilityLimits | None = None,
        now: datetime | None = None,
    ) -> tuple[SensorFrame, SensorFrame | None]:
        """The readings and the context (None when none was sent) as frames, checked against the model's
        features and `limits`; InvalidInputError names the field, e.g. `context[2].values.usage_kwh`."""
        frame = readings_frame(module, self.source, self.readings, feature_names, limits=limits, now=now)
        context = (
            readings_frame(
                module, self.source, self.context, feature_names, field="context", limits=limits, now=now
            )
            if self.context
            else None
        )
        return frame, context


def readings_frame(
    module: Module,
    source: str,
    readings: Sequence[ReadingIn],
    feature_names: Sequence[str],
    *,
    field: str = "readings",
    limits: PlausibilityLimits | None = None,
    now: datetime | None = None,
) -> SensorFrame:
    """A SensorFrame of `readings` in time order, checked against the model's features and, when given,
    the plausible range `limits` (dates up to `now`, naive UTC, plus its allowance; default the clock).
    Timestamps with an offset are converted to the module's time zone (`to_plant_time`).

    Errors name the offending reading and feature the way a JSON body addresses them, for example
    `readings[3].values.usage_kwh`.
    """
    latest = limits.latest(now or datetime.now(UTC).replace(tzinfo=None)) if limits else None
    zone = module_config(module).zone
    if not source or not source.strip():
        raise InvalidInputError("source: must be a non-empty string", field="source")
    if not readings:
        raise InvalidInputError(f"{field}: at least one reading is needed", field=field)
    wanted = list(feature_names)
    wanted_set = set(wanted)
    rows: list[list[float]] = []
    index: list[datetime] = []
    first_seen: dict[datetime, int] = {}
    for position, reading in enumerate(readings):
        where = f"{field}[{position}]"
        timestamp = to_plant_time(reading.timestamp, zone, f"{where}.timestamp")
        if timestamp in first_seen:
            raise InvalidInputError(
                f"{where}.timestamp: duplicates {field}[{first_seen[timestamp]}] "
                f"({timestamp.isoformat()} plant time)",
                field=f"{where}.timestamp",
            )
        first_seen[timestamp] = position
        if limits is not None and latest is not None:
            limits.check_timestamp(timestamp, latest, f"{where}.timestamp")
        for name in wanted:
            if name not in reading.values:
                raise InvalidInputError(f"{where}.values.{name}: missing", field=f"{where}.values.{name}")
        for name, value in reading.values.items():
            if name not in wanted_set:
                raise InvalidInputError(
                    f"{where}.values.{name}: not a feature of the {module.value} model "
                    f"(expected {', '.join(wanted)})",
                    field=f"{where}.values.{name}",
                )
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise InvalidInputError(
                    f"{where}.values.{name}: must be a finite number, got {value!r}",
                    field=f"{where}.values.{name}",
                )
            if limits is not None:
                limits.check_value(value, f"{where}.values.{name}")
        rows.append([float(reading.values[name]) for name in wanted])
        index.append(timestamp)
    values = pd.DataFrame(
        rows, columns=wanted, index=pd.DatetimeIndex(index, name="timestamp"), dtype="float64"
    )
    return SensorFrame(module=module, source=source, values=values.sort_index())


def check_plausible(frame: SensorFrame, limits: PlausibilityLimits, now: datetime | None = None) -> None:
    """Every reading of an uploaded file inside `limits`; InvalidInputError names the file's reading by its
    timestamp and column, with field `file` (the upload's multipart field)."""
    latest = limits.latest(now or datetime.now(UTC).replace(tzinfo=None))
    values = frame.values
    if len(values) == 0:
        return
    # the frame is in time order: its first and last readings are the ones that can be out of range
    for timestamp in (values.index[0], values.index[-1]):
        try:
            limits.check_timestamp(timestamp.to_pydatetime(), latest, "timestamp")
        except InvalidInputError as error:
            raise InvalidInputError(f"file: reading {error}", field="file") from None
    outside = (values < limits.min_value) | (values > limits.max_value)
    if outside.to_numpy().any():
        row, column = next(zip(*outside.to_numpy().nonzero(), strict=True))
        name = str(values.columns[column])
        try:
            limits.check_value(float(values.to_numpy()[row, column]), name)
        except InvalidInputError as error:
            raise InvalidInputError(
                f"file: reading at {values.index[row].isoformat()}, column {error}", field="file"
            ) from None


def field_path(location: Sequence[int | str]) -> str:
    """`("body", "readings", 3, "values", "usage_kwh")` -> `readings[3].values.usage_kwh`."""
    parts = list(location)
    if parts and parts[0] in ("body", "query", "path", "header", "form", "file"):
        parts = parts[1:]
    path = ""
    for part in parts:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path or "body"


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


def decode_batch(
    payload: bytes,
    module: Module,
    feature_names: Sequence[str],
    limits: PlausibilityLimits | None = None,
    now: datetime | None = None,
) -> DecodedBatch:
    """The message's readings and context, checked against the model's features and `limits`.

    Raises InvalidInputError naming the field (e.g. `readings[3].values.LIT101`).
    """
    try:
        batch = ReadingBatchIn.model_validate_json(payload)
    except ValidationError as error:
        first = error.errors()[0]
        field = field_path(first["loc"]) if first["loc"] else "payload"
        raise InvalidInputError(f"{field}: {first['msg']}", field=field) from None
    frame, context = batch.to_frames(module, feature_names, limits, now)
    return DecodedBatch(frame=frame, context=context)
