"""The JSON every response uses for anomalies and errors, and its exported JSON Schema.

schemas/anomaly.schema.json is generated from these models; regenerate it after changing them with
    python -m plantwatch.entrypoints.api.schemas > schemas/anomaly.schema.json
"""

import json
import math
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, computed_field, field_validator
from pydantic.json_schema import models_json_schema

from plantwatch.adapters.storage.cursor import encode_cursor
from plantwatch.adapters.wire import NaiveTimestamp
from plantwatch.domain.alarm_kpis import AlarmKpis
from plantwatch.domain.anomaly import Anomaly, FeatureContribution, Severity
from plantwatch.domain.incidents import (
    MAX_ACTOR_CHARS,
    MAX_COMMENT_CHARS,
    MAX_SHELVE_MINUTES,
    AuditEntry,
    Incident,
    IncidentAction,
    IncidentState,
)
from plantwatch.domain.modules import Module
from plantwatch.services.chatbot import Intent
from plantwatch.services.chatbot.service import MAX_QUESTION_CHARS

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
JSON_SCHEMA_ID = "https://plantwatch.example/schemas/anomaly.schema.json"


class FeatureContributionOut(BaseModel):
    """One feature's share in an anomaly."""

    model_config = ConfigDict(frozen=True)

    feature: str = Field(description="Sensor or feature name, as in the data set.", examples=["voltage"])
    contribution: float = Field(
        description=(
            "The feature's reconstruction or prediction error divided by its mean error on normal training "
            "data: 1.0 is its usual error, 10.0 ten times its usual error."
        ),
        examples=[12.4],
    )
    observed: float = Field(description="What the feature read, in the data's own units.", examples=[251.7])
    expected: float = Field(
        description="What the detector expected it to read, in the data's own units.", examples=[230.1]
    )

    @classmethod
    def from_domain(cls, contribution: FeatureContribution) -> "FeatureContributionOut":
        return cls(
            feature=contribution.feature,
            contribution=contribution.contribution,
            observed=contribution.observed,
            expected=contribution.expected,
        )


class ModelRefOut(BaseModel):
    """The model version that flagged an anomaly."""

    model_config = ConfigDict(frozen=True)

    name: str = Field(description="Detector name in the model registry.", examples=["lstm_ae"])
    version: str = Field(
        description="Version of that detector in the registry.", examples=["20240301T120000"]
    )


# The documented example is a real anomaly (id, cursor) so a client can try it against a running server.
_EXAMPLE_ANOMALY = Anomaly(
    module=Module.ENERGY,
    source="meter-1",
    window_start=datetime(2024, 3, 1, 11, 59),
    window_end=datetime(2024, 3, 1, 12, 0),
    score=3.2,
    threshold=1.1,
    root_cause=(
        FeatureContribution(feature="voltage", contribution=12.4, observed=251.7, expected=230.1),
        FeatureContribution(feature="current", contribution=2.1, observed=10.4, expected=9.8),
    ),
    model_name="lstm_ae",
    model_version="20240301T120000",
    detected_at=datetime(2024, 3, 1, 12, 0, 2, 512000),
    severity=Severity.HIGH,
)
_EXAMPLE_CURSOR = encode_cursor(_EXAMPLE_ANOMALY)
_ANOMALY_EXAMPLE: dict[str, Any] = {
    "id": _EXAMPLE_ANOMALY.id,
    "module": "energy",
    "source": "meter-1",
    "window_start": "2024-03-01T11:59:00",
    "window_end": "2024-03-01T12:00:00",
    "score": 3.2,
    "threshold": 1.1,
    "severity": "high",
    "root_cause": [
        {"feature": "voltage", "contribution": 12.4, "observed": 251.7, "expected": 230.1},
        {"feature": "current", "contribution": 2.1, "observed": 10.4, "expected": 9.8},
    ],
    "model": {"name": "lstm_ae", "version": "20240301T120000"},
    "detected_at": "2024-03-01T12:00:02.512000",
}


class AnomalyOut(BaseModel):
    """A scored window whose score crossed its model's threshold, with its ranked root cause."""

    model_config = ConfigDict(frozen=True, json_schema_extra={"examples": [_ANOMALY_EXAMPLE]})

    id: str = Field(
        description="uuid5 of module, source, window_end, model name and version: stable across re-sends.",
        examples=[_ANOMALY_EXAMPLE["id"]],
    )
    module: Module = Field(description="Plant module the readings belong to.", examples=["energy"])
    source: str = Field(description="Meter, machine or network the readings came from.", examples=["meter-1"])
    window_start: NaiveTimestamp = Field(
        description="First reading of the window the detector looked at (naive, plant local time).",
        examples=[_ANOMALY_EXAMPLE["window_start"]],
    )
    window_end: NaiveTimestamp = Field(
        description="The flagged reading (naive, plant local time). Lists are newest window_end first.",
        examples=[_ANOMALY_EXAMPLE["window_end"]],
    )
    score: float = Field(description="Anomaly score; higher is more anomalous.", examples=[3.2])
    threshold: float = Field(description="The model's threshold the score crossed.", examples=[1.1])
    severity: Severity = Field(
        description="From score/threshold: low < 1.3, medium < 2, high < 4, critical from 4.",
        examples=["high"],
    )
    root_cause: list[FeatureContributionOut] = Field(
        description="Features ranked by contribution, largest first; the first is the likeliest cause."
    )
    model: ModelRefOut = Field(description="The model version that flagged it.")
    detected_at: NaiveTimestamp = Field(
        description="When plantwatch scored it (naive UTC).", examples=[_ANOMALY_EXAMPLE["detected_at"]]
    )

    @classmethod
    def from_domain(cls, anomaly: Anomaly) -> "AnomalyOut":
        return cls(
            id=anomaly.id,
            module=anomaly.module,
            source=anomaly.source,
            window_start=anomaly.window_start,
            window_end=anomaly.window_end,
            score=anomaly.score,
            threshold=anomaly.threshold,
            severity=anomaly.severity,
            root_cause=[FeatureContributionOut.from_domain(c) for c in anomaly.root_cause],
            model=ModelRefOut(name=anomaly.model_name, version=anomaly.model_version),
            detected_at=anomaly.detected_at,
        )


class AnomalyPageOut(BaseModel):
    """One page of anomalies, newest first."""

    model_config = ConfigDict(frozen=True)

    items: list[AnomalyOut] = Field(description="Anomalies on this page, newest window_end first, then id.")
    next_cursor: str | None = Field(
        description="Pass as `cursor` to get the next page; null on the last page.",
        examples=[_EXAMPLE_CURSOR],
    )

    # Derived, so a page can never report a count that differs from its items.
    @computed_field(description="Number of items on this page.", examples=[1])  # type: ignore[prop-decorator]
    @property
    def count(self) -> int:
        return len(self.items)

    @classmethod
    def from_domain(cls, anomalies: list[Anomaly], next_cursor: str | None) -> "AnomalyPageOut":
        items = [AnomalyOut.from_domain(a) for a in anomalies]
        return cls(items=items, next_cursor=next_cursor)


class ErrorOut(BaseModel):
    """What every error response carries."""

    model_config = ConfigDict(frozen=True)

    detail: str = Field(
        description="What went wrong, naming the file, row, column or field where known.",
        examples=["limit must be at least 1, got 0"],
    )
    field: str | None = Field(
        default=None, description="The input field that was wrong, when one was.", examples=["limit"]
    )


def json_schema_document() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of an anomaly and of a page of them, as the API serialises them."""
    _, definitions = models_json_schema(
        [(AnomalyOut, "serialization"), (AnomalyPageOut, "serialization")], ref_template="#/$defs/{model}"
    )
    return {
        "$schema": JSON_SCHEMA_DIALECT,
        "$id": JSON_SCHEMA_ID,
        "title": "plantwatch anomaly",
        "description": "An AnomalyOut or an AnomalyPageOut, as served by the plantwatch API.",
        "anyOf": [{"$ref": "#/$defs/AnomalyOut"}, {"$ref": "#/$defs/AnomalyPageOut"}],
        "$defs": definitions["$defs"],
    }


def json_schema_text() -> str:
    return json.dumps(json_schema_document(), indent=2, sort_keys=True) + "\n"


def export_json_schema(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json_schema_text(), encoding="utf-8")


if __name__ == "__main__":
    sys.stdout.write(json_schema_text())


# --- chatbot ---


class ChatQuery(BaseModel):
    question: str = Field(
        min_length=1,
        max_length=MAX_QUESTION_CHARS,
        description="A question about the anomalies, in plain English.",
        examples=["what went wrong in energy in the last 24 h"],
    )
    conversation_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9_.:-]+$",
        description="From a previous answer, so follow-up questions ('and yesterday?') build on it.",
    )

    @field_validator("question")
    @classmethod
    def _not_blank(cls, question: str) -> str:
        if not question.strip():
            raise ValueError("question is empty")
        return question.strip()


class ChatAnswer(BaseModel):
    conversation_id: str = Field(description="Send it back with the next question of the same conversation.")
    intent: Intent = Field(description="What the question was understood to ask.")
    confidence: float = Field(description="How sure the intent match was, 0 to 1.")
    answer: str = Field(description="The answer; every figure in it comes from the anomaly store.")
    facts: dict[str, Any] = Field(description="The grounded figures the answer states, by name.")
    cited_anomaly_ids: list[str] = Field(description="Every anomaly the figures were computed from.")
    cited_incident_ids: list[str] = Field(
        default_factory=list, description="Every incident the figures were computed from."
    )
    anomalies: list[AnomalyOut] = Field(description="The anomalies the answer shows, most relevant first.")
    data: dict[str, Any] = Field(
        description="Structured data to draw: counts per module and severity, top features, a timeline."
    )
    rephrased: bool = Field(description="Whether the configured LLM reworded the template answer.")
    interpretation: str = Field(
        default="",
        description="How the question was read (operation, modules, period, severities, sensors), so a "
        "misunderstanding is visible.",
    )
    query: dict[str, Any] = Field(
        default_factory=dict, description="The typed query the answer ran, as plain values."
    )


# --- incidents ---


class IncidentCauseOut(BaseModel):
    """One feature's part in an incident, in units an operator reads."""

    model_config = ConfigDict(frozen=True)

    feature: str
    windows: int = Field(description="How many of the incident's windows name this feature.")
    mean_share: float = Field(
        description="Its mean share of the root cause over the incident's windows, 0 to 1.", examples=[0.42]
    )
    peak_contribution: float = Field(description="Its largest error in units of its usual error (squared).")
    peak_sigma: float = Field(
        description="Its largest deviation from the expected value, in standard deviations of its usual "
        "error (the square root of peak_contribution).",
        examples=[8.1],
    )


class IncidentOut(BaseModel):
    """Nearby anomalous windows of one source as one alarm, with its ISA-18.2 state."""

    model_config = ConfigDict(frozen=True)

    id: str
    module: Module
    source: str
    start: NaiveTimestamp = Field(description="First anomalous window (naive, plant local time).")
    end: NaiveTimestamp = Field(description="Last anomalous window so far (naive, plant local time).")
    ongoing: bool = Field(description="Still active: the readings have not cleared it yet.")
    state: IncidentState
    severity: Severity = Field(description="The highest severity of its windows.")
    peak_score: float
    threshold: float = Field(description="The threshold the peak score crossed.")
    window_count: int
    top_causes: list[IncidentCauseOut] = Field(description="Features ranked by their share, largest first.")
    opened_at: NaiveTimestamp = Field(description="When plantwatch opened it (naive UTC).")
    updated_at: NaiveTimestamp = Field(description="Its last change (naive UTC).")
    shelved_until: NaiveTimestamp | None = Field(
        description="Shelved until then (naive UTC), if ever shelved."
    )
    shelved: bool = Field(description="Shelved now.")

    @classmethod
    def fields_of(cls, incident: Incident, now: datetime) -> dict[str, Any]:
        return {
            "id": incident.id,
            "module": incident.module,
            "source": incident.source,
            "start": incident.start,
            "end": incident.end,
            "ongoing": incident.ongoing,
            "state": incident.state,
            "severity": incident.severity,
            "peak_score": incident.peak_score,
            "threshold": incident.threshold,
            "window_count": incident.window_count,
            "top_causes": [
                IncidentCauseOut(
                    feature=cause.feature,
                    windows=cause.windows,
                    mean_share=incident.mean_share(cause),
                    peak_contribution=cause.peak_contribution,
                    peak_sigma=math.sqrt(max(cause.peak_contribution, 0.0)),
                )
                for cause in incident.top_causes()
            ],
            "opened_at": incident.opened_at,
            "updated_at": incident.updated_at,
            "shelved_until": incident.shelved_until,
            "shelved": incident.shelved(now),
        }

    @classmethod
    def from_domain(cls, incident: Incident, now: datetime) -> "IncidentOut":
        return cls(**cls.fields_of(incident, now))


class AuditEntryOut(BaseModel):
    model_config = ConfigDict(frozen=True)

    at: NaiveTimestamp = Field(description="When (naive UTC).")
    actor: str = Field(description="Who: an operator, or plantwatch for what the readings did.")
    action: IncidentAction
    from_state: IncidentState | None
    to_state: IncidentState
    detail: str | None = Field(description="The comment, the shelving time or the severity change.")

    @classmethod
    def from_domain(cls, entry: AuditEntry) -> "AuditEntryOut":
        return cls(
            at=entry.at,
            actor=entry.actor,
            action=entry.action,
            from_state=entry.from_state,
            to_state=entry.to_state,
            detail=entry.detail,
        )


class IncidentDetailOut(IncidentOut):
    anomaly_ids: list[str] = Field(description="Every anomaly it groups, oldest first.")
    anomalies: list[AnomalyOut] = Field(
        description="The anomalies it groups with their root causes, oldest first (at most the last 500)."
    )
    history: list[AuditEntryOut] = Field(description="Its audit log, oldest first.")


class IncidentPageOut(BaseModel):
    model_config = ConfigDict(frozen=True)

    items: list[IncidentOut] = Field(description="Newest start first, then id.")
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last.")


class OperatorActionIn(BaseModel):
    """Who acts. The X-Actor header names them too; the body wins when both are given. With API keys set,
    the key names who acts: leave it out, or give the key's own name (anyone else's is a 403)."""

    model_config = ConfigDict(extra="forbid")

    actor: str | None = Field(
        default=None, min_length=1, max_length=MAX_ACTOR_CHARS, pattern=r"^[^\x00-\x1f\x7f]+$"
    )


class ShelveIn(OperatorActionIn):
    minutes: int = Field(ge=1, le=MAX_SHELVE_MINUTES, description="How long to shelve it.", examples=[60])


class CommentIn(OperatorActionIn):
    text: str = Field(min_length=1, max_length=MAX_COMMENT_CHARS, examples=["pump 2 isolated, checking"])


class AlarmKpisOut(BaseModel):
    """Alarm-system KPIs of one module (ISA-18.2 / EEMUA 191), incidents being the alarms."""

    model_config = ConfigDict(frozen=True)

    module: Module
    since: NaiveTimestamp
    until: NaiveTimestamp
    hours: float
    alarms: int = Field(description="Incidents that started in [since, until).")
    alarms_per_hour: float = Field(description="EEMUA 191: about 6 is the most manageable, 1 the aim.")
    peak_alarms_per_10_min: int
    flood_intervals: int = Field(description="10-minute intervals with more than 10 new alarms.")
    chattering_sources: list[str] = Field(description="Sources with 3 or more alarms within a minute.")
    stale_alarms: int = Field(description="Alarms still active 24 h after they started.")
    active_alarms: int
    manageable: bool = Field(description="At most 6 alarms per hour and no flood.")

    @classmethod
    def from_domain(cls, kpis: AlarmKpis) -> "AlarmKpisOut":
        return cls(
            module=kpis.module,
            since=kpis.since,
            until=kpis.until,
            hours=kpis.hours,
            alarms=kpis.alarms,
            alarms_per_hour=kpis.alarms_per_hour,
            peak_alarms_per_10_min=kpis.peak_alarms_per_interval,
            flood_intervals=kpis.flood_intervals,
            chattering_sources=list(kpis.chattering_sources),
            stale_alarms=kpis.stale_alarms,
            active_alarms=kpis.active_alarms,
            manageable=kpis.manageable,
        )
