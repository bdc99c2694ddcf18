"""The shared response models and the committed JSON Schema generated from them."""

import json
from datetime import timedelta
from pathlib import Path

from plantwatch.adapters.storage.cursor import decode_cursor
from plantwatch.domain.anomaly import Severity, anomaly_id
from plantwatch.domain.modules import Module
from plantwatch.domain.ports import AnomalyQuery
from plantwatch.entrypoints.api.schemas import (
    AnomalyOut,
    AnomalyPageOut,
    ErrorOut,
    export_json_schema,
    json_schema_document,
    json_schema_text,
)
from tests.fakes import BASE_TIME, InMemoryAnomalyRepository, make_anomaly

COMMITTED_SCHEMA = Path(__file__).resolve().parents[2] / "schemas" / "anomaly.schema.json"
REGENERATE = "python -m plantwatch.entrypoints.api.schemas > schemas/anomaly.schema.json"


def test_committed_json_schema_is_current() -> None:
    assert COMMITTED_SCHEMA.exists(), f"{COMMITTED_SCHEMA} is missing; generate it with: {REGENERATE}"
    committed = COMMITTED_SCHEMA.read_text(encoding="utf-8")
    assert committed == json_schema_text(), (
        f"{COMMITTED_SCHEMA} is out of date; regenerate it with: {REGENERATE}"
    )


def test_export_json_schema_writes_the_document(tmp_path: Path) -> None:
    target = tmp_path / "nested" / "anomaly.schema.json"
    export_json_schema(target)
    assert json.loads(target.read_text(encoding="utf-8")) == json_schema_document()


def test_anomaly_out_from_domain_keeps_every_field_and_the_rank_order() -> None:
    anomaly = make_anomaly(
        module=Module.MACHINE,
        source="press-3",
        score=8.5,
        threshold=2.0,
        severity=Severity.CRITICAL,
        features=("vibration", "temperature", "torque"),
        model_name="pca",
        model_version="7",
    )
    dumped = AnomalyOut.from_domain(anomaly).model_dump(mode="json")
    assert dumped["id"] == anomaly.id
    assert dumped["module"] == "machine"
    assert dumped["severity"] == "critical"
    assert dumped["model"] == {"name": "pca", "version": "7"}
    assert dumped["window_end"] == anomaly.window_end.isoformat()
    assert dumped["window_start"] == (anomaly.window_end - timedelta(seconds=60)).isoformat()
    assert [c["feature"] for c in dumped["root_cause"]] == ["vibration", "temperature", "torque"]
    assert dumped["root_cause"][0] == {
        "feature": "vibration",
        "contribution": 10.0,
        "observed": 1.5,
        "expected": 1.0,
    }
    assert AnomalyOut.model_validate(dumped) == AnomalyOut.from_domain(anomaly)


def test_page_out_counts_items_and_keeps_the_cursor() -> None:
    repository = InMemoryAnomalyRepository()
    repository.add_many([make_anomaly(BASE_TIME + timedelta(minutes=i)) for i in range(3)])
    result = repository.find(AnomalyQuery(limit=2))
    out = AnomalyPageOut.from_domain(result.items, result.next_cursor)
    assert out.count == 2
    assert json.loads(out.model_dump_json())["count"] == 2
    assert [item.id for item in out.items] == [a.id for a in result.items]
    assert out.next_cursor == result.next_cursor is not None


def test_every_property_in_the_schema_has_a_description() -> None:
    definitions = json_schema_document()["$defs"]
    assert {"AnomalyOut", "AnomalyPageOut", "FeatureContributionOut", "ModelRefOut"} <= set(definitions)
    for name, definition in definitions.items():
        for field, spec in definition.get("properties", {}).items():
            assert spec.get("description"), f"{name}.{field} has no description"


def test_schema_names_every_field_the_api_sends_and_the_valid_enums() -> None:
    definitions = json_schema_document()["$defs"]
    dumped = AnomalyOut.from_domain(make_anomaly()).model_dump(mode="json")
    anomaly_schema = definitions["AnomalyOut"]
    assert set(anomaly_schema["properties"]) == set(dumped)
    assert set(anomaly_schema["required"]) == set(dumped)
    assert definitions["Severity"]["enum"] == [s.value for s in Severity]
    assert definitions["Module"]["enum"] == [m.value for m in Module]
    page_schema = definitions["AnomalyPageOut"]
    assert page_schema["properties"]["items"]["items"] == {"$ref": "#/$defs/AnomalyOut"}
    assert set(page_schema["required"]) == {"items", "next_cursor", "count"}


def test_documented_example_is_a_valid_anomaly_with_a_working_cursor() -> None:
    anomaly_schema = json_schema_document()["$defs"]["AnomalyOut"]
    example = AnomalyOut.model_validate(anomaly_schema["examples"][0])
    assert example.id == anomaly_id(
        example.module, example.source, example.window_end, example.model.name, example.model.version
    )
    cursor_example = json_schema_document()["$defs"]["AnomalyPageOut"]["properties"]["next_cursor"][
        "examples"
    ][0]
    assert decode_cursor(cursor_example) == (example.window_end, example.id)


def test_error_out_field_is_optional() -> None:
    assert ErrorOut(detail="anomaly 'x' not found").model_dump() == {
        "detail": "anomaly 'x' not found",
        "field": None,
    }
    assert ErrorOut(detail="limit must be at least 1", field="limit").field == "limit"
