"""Request bodies of the ingest endpoint, also the payload of MQTT reading messages."""

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from plantwatch.services.ingest import Reading


class ReadingIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    timestamp: datetime = Field(
        description="When the reading was taken, ISO 8601, plant local time (no offset)"
    )
    values: dict[str, float] = Field(description="One number per feature of the module's model")

    def to_reading(self) -> Reading:
        return Reading(timestamp=self.timestamp, values=self.values)


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

    source: str = Field(
        min_length=1, max_length=200, description="The plant, line or device the readings are from"
    )
    readings: list[ReadingIn] = Field(min_length=1, description="Readings in any order; sorted by timestamp")
    context: list[ReadingIn] = Field(
        default_factory=list,
        description="Earlier readings of the same source, used only as window context for the first readings",
    )

    def to_readings(self) -> list[Reading]:
        return [reading.to_reading() for reading in self.readings]

    def to_context(self) -> list[Reading]:
        return [reading.to_reading() for reading in self.context]
