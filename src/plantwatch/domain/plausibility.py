"""The range a reading must fall in to be believed: a plant's clock and sensors can be wrong, and a reading
dated year 9999 or worth 1e308 would otherwise be stored and become "the latest anomaly" everywhere."""

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from plantwatch.domain.errors import InvalidInputError


@dataclass(frozen=True)
class PlausibilityLimits:
    earliest: datetime
    """No reading is older than this (naive, plant local time)."""
    max_ahead_s: float
    """How far past the current time (naive UTC) a reading may be dated."""
    min_value: float
    max_value: float

    def with_values(self, min_value: float | None, max_value: float | None) -> "PlausibilityLimits":
        return replace(
            self,
            min_value=self.min_value if min_value is None else min_value,
            max_value=self.max_value if max_value is None else max_value,
        )

    def latest(self, now: datetime) -> datetime:
        return now + timedelta(seconds=self.max_ahead_s)

    def check_timestamp(self, timestamp: datetime, latest: datetime, field: str) -> None:
        """InvalidInputError naming `field` unless `earliest <= timestamp <= latest`."""
        if not self.earliest <= timestamp <= latest:
            raise InvalidInputError(
                f"{field}: {timestamp.isoformat()} is outside the plausible range "
                f"{self.earliest.isoformat()} to {latest.isoformat(timespec='seconds')}",
                field=field,
            )

    def check_value(self, value: float, field: str) -> None:
        """InvalidInputError naming `field` unless `min_value <= value <= max_value`."""
        if not self.min_value <= value <= self.max_value:
            raise InvalidInputError(
                f"{field}: {value!r} is outside the plausible range {self.min_value:g} to {self.max_value:g}",
                field=field,
            )
