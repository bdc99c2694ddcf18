"""Request bodies of the ingest endpoint, also the payload of MQTT reading messages."""

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictFloat,
    StringConstraints,
    TypeAdapter,
    ValidationError,
)

from plantwatch.domain.errors import InvalidInputError
from plantwatch.domain.frames import SensorFrame
from plantwatch.domain.modules import Module
from plantwatch.services.ingest import Reading, readings_frame

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


class ReadingIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    timestamp: datetime = Field(
        description="When the reading was taken, ISO 8601, plant local time (no offset)"
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
        self, module: Module, feature_names: Sequence[str]
    ) -> tuple[SensorFrame, SensorFrame | None]:
        """The readings and the context (None when none was sent) as frames, checked against the model's
        features; InvalidInputError names the field, e.g. `context[2].values.usage_kwh`."""
        frame = readings_frame(module, self.source, _readings(self.readings), feature_names)
        context = (
            readings_frame(module, self.source, _readings(self.context), feature_names, field="context")
            if self.context
            else None
        )
        return frame, context


def _readings(items: list[ReadingIn]) -> list[Reading]:
    return [Reading(timestamp=item.timestamp, values=item.values) for item in items]
