"""Timestamps with an offset: converted to the module's plant time zone on the way in (readings and the
since/until of every read), naive plant local time on the way out, and an OpenAPI document that says both."""

import re
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from plantwatch.adapters.modules import activate_catalog, load_catalog
from plantwatch.adapters.modules.catalog import builtin_config
from plantwatch.adapters.wire import ReadingIn, readings_frame
from plantwatch.bootstrap import Container, incident_policies
from plantwatch.domain.errors import InvalidInputError, ModuleConfigError
from plantwatch.domain.modules import Module
from plantwatch.entrypoints.api.app import create_app
from plantwatch.services.incidents import IncidentTracking
from plantwatch.settings import Settings
from tests.fakes import InMemoryAnomalyRepository, InMemoryIncidentRepository, make_anomaly
from tests.streaming_support import as_json_readings, normal_frame, trained_pca

T0 = datetime(2024, 3, 1, 12, 0)  # winter: Berlin is UTC+1
FEATURES = ["flow", "pressure", "temperature"]
VALUES = {"flow": 1.0, "pressure": 2.0, "temperature": 3.0}


def plant_in(tmp_path: Path, zone: str) -> None:
    """The built-in energy module, its plant's clock in `zone`."""
    text = builtin_config("energy").to_yaml()
    (tmp_path / "energy.yaml").write_text(f"{text}timezone: {zone}\n", encoding="utf-8")
    activate_catalog(load_catalog(tmp_path))


def frame_index(*stamps: str) -> list[datetime]:
    readings = [ReadingIn.model_validate({"timestamp": s, "values": VALUES}) for s in stamps]
    return list(readings_frame(Module.ENERGY, "s", readings, FEATURES).values.index.to_pydatetime())


def test_readings_with_an_offset_become_plant_local_time_and_naive_ones_stay(tmp_path: Path) -> None:
    # the default plant zone is UTC
    assert frame_index("2024-03-01T00:00:00+01:00", "2024-03-01T00:30:00Z") == [
        datetime(2024, 2, 29, 23, 0),
        datetime(2024, 3, 1, 0, 30),
    ]
    plant_in(tmp_path, "Europe/Berlin")
    assert frame_index("2024-03-01T11:00:00Z", "2024-07-01T10:00:00Z", "2024-03-01T12:15:00") == [
        datetime(2024, 3, 1, 12, 0),
        datetime(2024, 3, 1, 12, 15),
        datetime(2024, 7, 1, 12, 0),  # summer time: UTC+2
    ]
    # the same instant twice, once with an offset and once in local time, is a duplicate reading
    with pytest.raises(InvalidInputError, match=r"readings\[1\]\.timestamp: duplicates readings\[0\]"):
        frame_index("2024-03-01T12:00:00", "2024-03-01T11:00:00Z")


def test_a_date_that_leaves_the_calendar_in_plant_time_is_a_named_error() -> None:
    with pytest.raises(InvalidInputError) as raised:
        frame_index("0001-01-01T00:00:00+01:00")
    assert raised.value.field == "readings[0].timestamp"


def test_a_module_with_an_unknown_time_zone_is_refused_naming_the_field(tmp_path: Path) -> None:
    with pytest.raises(ModuleConfigError, match="timezone") as raised:
        plant_in(tmp_path, "Mars/Olympus")
    assert "IANA" in str(raised.value)


@pytest.fixture
def client() -> TestClient:
    repository = InMemoryAnomalyRepository()
    repository.add_many(
        [make_anomaly(T0 + timedelta(minutes=15 * i)) for i in range(8)]
        + [make_anomaly(T0 + timedelta(minutes=15 * i), module=Module.CYBER, source="plc") for i in range(8)]
    )
    settings = Settings(database_url="sqlite://", chatbot_embeddings=False)
    models = {Module.ENERGY: trained_pca(Module.ENERGY, window=4)}
    tracking = IncidentTracking(InMemoryIncidentRepository(), incident_policies(settings))
    container = Container(settings=settings, repository=repository, models=models, incidents=tracking)
    return TestClient(create_app(settings, container))


def window_ends(client: TestClient, path: str, **params: str) -> list[str]:
    response = client.get(path, params=params)
    assert response.status_code == 200, response.text
    return [item["window_end"] for item in response.json()["items"]]


def test_since_and_until_with_an_offset_read_in_the_modules_plant_time(
    client: TestClient, tmp_path: Path
) -> None:
    local = window_ends(client, "/anomalies/energy", since="2024-03-01T13:00:00", until="2024-03-01T13:30:00")
    assert local == ["2024-03-01T13:15:00", "2024-03-01T13:00:00"]
    # plant zone UTC: Z is the same wall time, +01:00 an hour earlier
    assert (
        window_ends(client, "/anomalies/energy", since="2024-03-01T13:00:00Z", until="2024-03-01T13:30:00Z")
        == local
    )
    every_module = window_ends(
        client, "/anomalies", since="2024-03-01T14:00:00+01:00", until="2024-03-01T14:30:00+01:00"
    )
    assert sorted(every_module) == sorted(local * 2)  # energy and cyber, both in UTC

    plant_in(tmp_path, "Europe/Berlin")
    zones = {m["name"]: m["timezone"] for m in client.get("/modules").json()["modules"]}
    assert zones["energy"] == "Europe/Berlin" and zones["cyber"] == "UTC"
    assert (
        window_ends(client, "/anomalies/energy", since="2024-03-01T12:00:00Z", until="2024-03-01T12:30:00Z")
        == local
    )
    scores = client.get("/scores/energy", params={"since": "2024-03-01T12:00:00Z"})
    assert scores.status_code == 200
    # over every module an offset is ambiguous once the modules keep different zones
    mixed = client.get("/anomalies", params={"since": "2024-03-01T12:00:00Z"})
    assert mixed.status_code == 422 and mixed.json()["field"] == "since"
    assert "Europe/Berlin" in mixed.json()["detail"]
    assert client.get("/anomalies", params={"since": "2024-03-01T13:00:00"}).status_code == 200
    for path in ("/incidents", "/alarm-kpis"):
        assert (
            client.get(path, params={"module": "energy", "since": "2024-03-01T12:00:00Z"}).status_code == 200
        )


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"since": "2024-03-01"}, "since"),
        ({"until": "1700000000"}, "until"),
        ({"since": "2024-03-01 12:00:00"}, "since"),
        ({"since": "2024-03-01T12:00:00+25:00"}, "since"),
        ({"since": "0001-01-01T00:00:00+01:00"}, "since"),
    ],
)
def test_what_is_not_an_iso_timestamp_is_a_422_naming_the_field(client: TestClient, params, field) -> None:
    response = client.get("/anomalies/energy", params=params)
    assert response.status_code == 422, response.text
    assert response.json()["field"] == field


def test_ingest_takes_offsets_and_answers_in_plant_local_time(client: TestClient, tmp_path: Path) -> None:
    plant_in(tmp_path, "Europe/Berlin")
    readings = as_json_readings(normal_frame(8))
    for reading in readings:
        local = datetime.fromisoformat(reading["timestamp"])
        reading["timestamp"] = (local - timedelta(hours=1)).isoformat() + "Z"  # the same instant in UTC
    response = client.post("/ingest/energy", json={"source": "line-9", "readings": readings})
    assert response.status_code == 200, response.text
    local = [r["timestamp"] for r in as_json_readings(normal_frame(8))]
    scored = response.json()["scored"]
    assert scored > 0
    points = client.get("/scores/energy", params={"since": local[0]}).json()["points"]
    # the first readings are window context only; the scored ones are stored at their plant local time
    assert [p["timestamp"] for p in points if p["source"] == "line-9"] == local[-scored:]


def test_the_document_says_what_comes_in_and_what_goes_out(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    since = next(p for p in document["paths"]["/anomalies"]["get"]["parameters"] if p["name"] == "since")
    pattern_in = since["schema"]["anyOf"][0]["pattern"]
    anomaly = document["components"]["schemas"]["AnomalyOut"]["properties"]["window_end"]
    incident = document["components"]["schemas"]["IncidentOut"]["properties"]["start"]
    for text in ("2024-03-01T12:00:00", "2024-03-01T12:00:00Z", "2024-03-01T12:00:00.5-05:30"):
        assert re.match(pattern_in, text)
    assert not re.match(pattern_in, "2024-03-01")
    for sent in (anomaly, incident):
        assert "format" not in sent
        assert re.match(sent["pattern"], "2024-03-01T12:00:00")
        assert not re.match(sent["pattern"], "2024-03-01T12:00:00Z")
