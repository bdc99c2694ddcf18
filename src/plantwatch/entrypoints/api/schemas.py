"""The JSON every response uses for anomalies and errors, and its exported JSON Schema.

schemas/anomaly.schema.json is generated from these models; regenerate it after changing them with
    python -m plantwatch.entrypoints.api.schemas > schemas/anomaly.schema.json
"""

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, computed_field, field_validator
from pydantic.json_schema import models_json_schema

from plantwatch.adapters.storage.cursor import encode_cursor
from plantwatch.domain.anomaly import Anomaly, FeatureContribution, Severity
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
    window_start: datetime = Field(
        description="First reading of the window the detector looked at (naive, plant local time).",
        examples=[_ANOMALY_EXAMPLE["window_start"]],
    )
    window_end: datetime = Field(
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
    detected_at: datetime = Field(
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
