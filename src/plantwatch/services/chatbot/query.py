"""The typed query a question becomes: an operation and what to run it on (modules, time range, severities,
sensors, how many), with the "now" its relative periods were counted back from.

`describe()` is the interpretation every answer echoes, so a misunderstanding is visible.
"""

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from plantwatch.domain.anomaly import Severity
from plantwatch.domain.modules import Module
from plantwatch.domain.ports import AnomalyQuery
from plantwatch.services.chatbot.intents import Intent
from plantwatch.services.chatbot.slots import Slots, TimeRange

_OPERATION_WORDS = {
    Intent.LIST_ANOMALIES: "count and list",
    Intent.EXPLAIN_ANOMALY: "explain an anomaly",
    Intent.TOP_ROOT_CAUSE: "most frequent root cause",
    Intent.SUMMARY: "summary",
    Intent.COMPARE_PERIODS: "compare periods",
    Intent.SENSOR_INVOLVEMENT: "sensor involvement",
    Intent.LATEST_ANOMALY: "latest",
    Intent.FIRST_ANOMALY: "first",
    Intent.HIGHEST_SCORE: "highest score",
    Intent.LOWEST_SCORE: "lowest score",
    Intent.SHARE: "share",
    Intent.COMPARE_MODULES: "compare modules",
    Intent.TREND: "trend",
    Intent.OPEN_INCIDENTS: "open incidents",
    Intent.COUNT_INCIDENTS: "count incidents",
    Intent.INCIDENT_ACKNOWLEDGER: "who acknowledged the latest incident",
    Intent.HELP: "help",
    Intent.UNKNOWN: "out of scope",
}


def severity_words(severities: frozenset[Severity]) -> str:
    """'high or critical'; '' for any severity."""
    ordered = sorted(severities, key=lambda s: s.rank)
    return " or ".join(s.value for s in ordered)


@dataclass(frozen=True)
class Query:
    operation: Intent
    slots: Slots
    now: datetime
    """What relative periods ("last 24 h") were counted back from: the clock or a module's newest anomaly."""
    anchored: bool = False
    """True when `now` is the newest stored anomaly rather than the clock."""

    @property
    def modules(self) -> tuple[Module, ...]:
        return self.slots.modules

    @property
    def module(self) -> Module | None:
        return self.slots.module

    @property
    def time_range(self) -> TimeRange | None:
        return self.slots.time_range

    @property
    def severities(self) -> frozenset[Severity]:
        return self.slots.severities

    @property
    def features(self) -> tuple[str, ...]:
        return self.slots.features

    @property
    def feature(self) -> str | None:
        return self.slots.feature

    def with_slots(self, **changes: Any) -> "Query":
        return replace(self, slots=replace(self.slots, **changes))

    def store_query(
        self,
        time_range: TimeRange | None = None,
        *,
        feature: str | None = None,
        severities: frozenset[Severity] | None = None,
        limit: int = 100,
    ) -> AnomalyQuery:
        """The store's filters for this query over `time_range`, optionally narrowed to a sensor."""
        severities = self.severities if severities is None else severities
        return AnomalyQuery(
            modules=frozenset(self.modules) if self.modules else None,
            since=time_range.start if time_range else None,
            until=time_range.end if time_range else None,
            severities=severities or None,
            feature=feature,
            limit=limit,
        )

    def scope_words(self) -> str:
        return " and ".join(m.value for m in self.modules) if self.modules else "all modules"

    def describe(self) -> str:
        """The interpretation in words: 'count and list; cyber; between ... and ...; high or critical'."""
        parts = [_OPERATION_WORDS[self.operation], self.scope_words()]
        ranges = self.slots.time_ranges
        parts.append(" versus ".join(r.label for r in ranges) if ranges else "the whole store")
        if self.slots.at_time is not None:
            parts.append(f"at {self.slots.at_time.strftime('%H:%M')}")
        parts.append(f"{severity_words(self.severities)} severity" if self.severities else "any severity")
        if self.features:
            parts.append("sensor " + ", ".join(self.features))
        if self.slots.limit:
            parts.append(f"{self.slots.limit} at most")
        if self.anchored:
            parts.append(f"now taken as the newest stored anomaly, {self.now.strftime('%Y-%m-%d %H:%M:%S')}")
        return "; ".join(parts)

    def as_facts(self) -> dict[str, Any]:
        """The query as plain values, for the reply's facts."""
        return {
            "operation": self.operation.value,
            "modules": [m.value for m in self.modules],
            "ranges": [
                {
                    "label": r.label,
                    "since": r.start.isoformat() if r.start else None,
                    "until": r.end.isoformat() if r.end else None,
                }
                for r in self.slots.time_ranges
            ],
            "at_time": self.slots.at_time.strftime("%H:%M") if self.slots.at_time else None,
            "severities": sorted(s.value for s in self.severities),
            "features": list(self.features),
            "limit": self.slots.limit,
            "now": self.now.isoformat(),
            "anchored_on_latest": self.anchored,
        }
