"""The incident API: list with filters and cursor, one incident with anomalies and history, the operator's
actions with 409 from the one error table, who acts, GET /alarm-kpis, and incidents made by HTTP ingest."""

from datetime import timedelta

import pytest
import torch
from fastapi.testclient import TestClient

from plantwatch.bootstrap import Container, incident_policies
from plantwatch.domain.access import Role, hash_api_key
from plantwatch.domain.anomaly import Severity
from plantwatch.domain.modules import Module
from plantwatch.entrypoints.api.app import create_app
from plantwatch.services.incidents import IncidentTracking
from plantwatch.settings import ApiKeyGrant, Settings
from tests.fakes import BASE_TIME, InMemoryAnomalyRepository, InMemoryIncidentRepository, make_anomaly
from tests.streaming_support import as_json_readings, spike_frame, trained_pca

torch.set_num_threads(1)

NOW = BASE_TIME + timedelta(days=1)


def make_client(models=None, **settings) -> tuple[TestClient, Container]:
    # no on-delay unless a test asks: each stored anomaly is an alarm at once
    settings.setdefault("incident_on_delay_windows", 1)
    settings_obj = Settings(database_url="sqlite://", chatbot_embeddings=False, **settings)
    tracking = IncidentTracking(InMemoryIncidentRepository(), incident_policies(settings_obj))
    container = Container(
        settings=settings_obj, repository=InMemoryAnomalyRepository(), models=models or {}, incidents=tracking
    )
    return TestClient(create_app(settings_obj, container)), container


def _store(container: Container, anomalies) -> None:
    container.repository.add_many(anomalies)
    assert container.incidents is not None
    first = anomalies[0]
    container.incidents.track(
        first.module, first.source, anomalies, max(a.window_end for a in anomalies), NOW
    )


@pytest.fixture
def client_with_incidents() -> tuple[TestClient, Container]:
    client, container = make_client()
    # energy gap 90 min: two bursts three hours apart are two incidents
    _store(container, [make_anomaly(BASE_TIME + timedelta(minutes=15 * i)) for i in range(4)])
    _store(
        container,
        [
            make_anomaly(BASE_TIME + timedelta(hours=4, minutes=15 * i), severity=Severity.CRITICAL)
            for i in range(3)
        ],
    )
    _store(container, [make_anomaly(BASE_TIME, module=Module.CYBER, source="plc-1", severity=Severity.LOW)])
    return client, container


def test_list_filters_and_pages(client_with_incidents) -> None:
    client, _ = client_with_incidents
    everything = client.get("/incidents").json()
    assert len(everything["items"]) == 3 and everything["next_cursor"] is None
    energy = client.get("/incidents", params={"module": "energy"}).json()["items"]
    assert [i["window_count"] for i in energy] == [3, 4]
    assert energy[0]["top_causes"][0] == {
        "feature": "voltage",
        "windows": 3,
        "mean_share": pytest.approx(2 / 3),
        "peak_contribution": 10.0,
        "peak_sigma": pytest.approx(10**0.5),
    }
    assert energy[1]["state"] == "cleared_unacknowledged" and energy[0]["ongoing"] is True
    critical = client.get("/incidents", params={"min_severity": "critical"}).json()["items"]
    assert [i["severity"] for i in critical] == ["critical"]
    cleared = client.get("/incidents", params={"state": "cleared_unacknowledged"}).json()["items"]
    assert [i["id"] for i in cleared] == [energy[1]["id"]]
    window = client.get(
        "/incidents", params={"since": (BASE_TIME + timedelta(hours=3)).isoformat(), "module": "energy"}
    ).json()["items"]
    assert [i["id"] for i in window] == [energy[0]["id"]]
    first = client.get("/incidents", params={"limit": 2}).json()
    second = client.get("/incidents", params={"limit": 2, "cursor": first["next_cursor"]}).json()
    assert len(first["items"]) == 2 and len(second["items"]) == 1 and second["next_cursor"] is None
    assert client.get("/incidents", params={"module": "boiler"}).status_code == 404
    bad_state = client.get("/incidents", params={"state": "sleeping"})
    assert bad_state.status_code == 422 and bad_state.json()["field"] == "state"


def test_detail_has_its_anomalies_and_history(client_with_incidents) -> None:
    client, _ = client_with_incidents
    incident = client.get("/incidents", params={"module": "energy"}).json()["items"][1]
    detail = client.get(f"/incidents/{incident['id']}").json()
    assert len(detail["anomaly_ids"]) == 4
    assert [a["id"] for a in detail["anomalies"]] == detail["anomaly_ids"]
    assert detail["anomalies"][0]["window_end"] == BASE_TIME.isoformat()
    assert [(h["action"], h["actor"]) for h in detail["history"]] == [
        ("open", "plantwatch"),
        ("clear", "plantwatch"),
    ]
    missing = client.get("/incidents/no-such-incident")
    assert missing.status_code == 404 and "no-such-incident" in missing.json()["detail"]


def test_acknowledge_shelve_comment_resolve_with_409s(client_with_incidents) -> None:
    client, _ = client_with_incidents
    incident_id = client.get("/incidents", params={"min_severity": "critical"}).json()["items"][0]["id"]
    url = f"/incidents/{incident_id}"

    early = client.post(f"{url}/resolve", json={"actor": "ana"})
    assert early.status_code == 409
    assert "active_unacknowledged" in early.json()["detail"] and "resolve" in early.json()["detail"]
    acked = client.post(f"{url}/acknowledge", headers={"X-Actor": "ana"})
    assert acked.status_code == 200, acked.text
    assert acked.json()["state"] == "active_acknowledged"
    assert client.post(f"{url}/acknowledge", json={"actor": "ana"}).status_code == 409
    shelved = client.post(f"{url}/shelve", json={"minutes": 30, "actor": "ben"}).json()
    assert shelved["shelved"] is True and shelved["shelved_until"] is not None
    client.post(f"{url}/comment", json={"text": "pump 2 isolated"}, headers={"X-Actor": "ben"})
    resolved = client.post(f"{url}/resolve", json={"actor": "cy"}, headers={"X-Actor": "ignored"}).json()
    assert resolved["state"] == "closed"
    assert [(h["action"], h["actor"], h["detail"]) for h in resolved["history"]] == [
        ("open", "plantwatch", None),
        ("acknowledge", "ana", None),
        ("shelve", "ben", "30 min"),
        ("comment", "ben", "pump 2 isolated"),
        ("resolve", "cy", None),
    ]
    assert client.post(f"{url}/shelve", json={"minutes": 5, "actor": "cy"}).status_code == 409


def test_bad_actions_are_4xx_naming_the_field_and_store_nothing(client_with_incidents) -> None:
    client, _ = client_with_incidents
    incident_id = client.get("/incidents").json()["items"][0]["id"]
    url = f"/incidents/{incident_id}"
    nobody = client.post(f"{url}/acknowledge")
    assert nobody.status_code == 422 and nobody.json()["field"] == "actor"
    for path, body, field in (
        ("shelve", {"actor": "ana"}, "minutes"),
        ("shelve", {"actor": "ana", "minutes": 0}, "minutes"),
        ("shelve", {"actor": "ana", "minutes": 10**6}, "minutes"),
        ("comment", {"actor": "ana", "text": ""}, "text"),
        ("acknowledge", {"actor": "ana", "role": "admin"}, "role"),
    ):
        response = client.post(f"{url}/{path}", json=body)
        assert response.status_code == 422, (path, body)
        assert response.json()["field"] == field
    assert client.post("/incidents/nope/acknowledge", json={"actor": "ana"}).status_code == 404
    assert len(client.get(url).json()["history"]) == 1


def test_actions_need_the_api_key_when_one_is_set() -> None:
    client, container = make_client(api_key="secret")
    _store(container, [make_anomaly()])
    incident_id = client.get("/incidents").json()["items"][0]["id"]
    refused = client.post(f"/incidents/{incident_id}/acknowledge", json={"actor": "ana"})
    assert refused.status_code == 401
    # the single key is one identity: it acts under its digest's short name, not a name the body claims
    single = f"key-{hash_api_key('secret')[:12]}"
    claimed = client.post(
        f"/incidents/{incident_id}/acknowledge", json={"actor": "ana"}, headers={"X-API-Key": "secret"}
    )
    assert claimed.status_code == 403 and claimed.json()["field"] == "actor"
    accepted = client.post(f"/incidents/{incident_id}/acknowledge", headers={"X-API-Key": "secret"})
    assert accepted.status_code == 200
    assert accepted.json()["history"][-1]["actor"] == single


ANA_KEY, SHARED_KEY, VIEWER_KEY = "ana-operator-key", "shared-operator-key", "viewer-key"


def test_with_role_keys_the_actor_is_the_keys_name_and_cannot_be_claimed() -> None:
    client, container = make_client(
        api_keys={
            hash_api_key(ANA_KEY): ApiKeyGrant(role=Role.OPERATOR, name="ana"),
            hash_api_key(SHARED_KEY): Role.OPERATOR,
            hash_api_key(VIEWER_KEY): Role.VIEWER,
        }
    )
    _store(container, [make_anomaly()])
    ana, shared = {"X-API-Key": ANA_KEY}, {"X-API-Key": SHARED_KEY}
    incident_id = client.get("/incidents", headers=ana).json()["items"][0]["id"]
    url = f"/incidents/{incident_id}"

    # ana cannot act as ben, in the body or in the header
    as_ben = client.post(f"{url}/acknowledge", json={"actor": "ben"}, headers=ana)
    assert as_ben.status_code == 403 and as_ben.json()["field"] == "actor"
    assert "'ana'" in as_ben.json()["detail"]
    by_header = client.post(f"{url}/comment", json={"text": "hi"}, headers={**ana, "X-Actor": "ben"})
    assert by_header.status_code == 403 and by_header.json()["field"] == "X-Actor"
    # naming herself is fine, and so is naming nobody: the key says who she is
    assert client.post(f"{url}/acknowledge", json={"actor": "ana"}, headers=ana).status_code == 200
    client.post(f"{url}/comment", json={"text": "pump 2 isolated"}, headers=ana)
    # a key without a name acts under the start of its digest
    resolved = client.post(f"{url}/resolve", headers=shared).json()
    operator_entries = [(h["action"], h["actor"]) for h in resolved["history"] if h["actor"] != "plantwatch"]
    assert operator_entries == [
        ("acknowledge", "ana"),
        ("comment", "ana"),
        ("resolve", f"key-{hash_api_key(SHARED_KEY)[:12]}"),
    ]
    # a viewer may read but not act, whatever it claims
    refused = client.post(
        f"{url}/comment", json={"text": "x", "actor": "ana"}, headers={"X-API-Key": VIEWER_KEY}
    )
    assert refused.status_code == 403


def test_alarm_kpis_per_module(client_with_incidents) -> None:
    client, _ = client_with_incidents
    kpis = {k["module"]: k for k in client.get("/alarm-kpis").json()}
    assert set(kpis) == {"energy", "cyber"}
    energy = kpis["energy"]
    assert energy["alarms"] == 2 and energy["flood_intervals"] == 0 and energy["manageable"] is True
    assert energy["since"] == BASE_TIME.isoformat()
    assert energy["alarms_per_hour"] == pytest.approx(2 / energy["hours"])
    assert energy["active_alarms"] == 1
    cyber = client.get(
        "/alarm-kpis",
        params={
            "module": "cyber",
            "since": BASE_TIME.isoformat(),
            "until": (BASE_TIME + timedelta(hours=2)).isoformat(),
        },
    ).json()
    assert len(cyber) == 1 and cyber[0]["alarms"] == 1 and cyber[0]["alarms_per_hour"] == 0.5
    backwards = client.get(
        "/alarm-kpis",
        params={"module": "cyber", "since": BASE_TIME.isoformat(), "until": BASE_TIME.isoformat()},
    )
    assert backwards.status_code == 422 and backwards.json()["field"] == "until"


def test_http_ingest_groups_its_anomalies_into_one_incident() -> None:
    client, _ = make_client({Module.ENERGY: trained_pca(Module.ENERGY, window=4)})
    body = {
        "source": "line-7",
        "readings": as_json_readings(spike_frame(60, 30, "temperature", source="line-7")),
    }
    stored = client.post("/ingest/energy", json=body).json()
    assert stored["new_anomalies"] >= 2  # the spike's windows
    again = client.post("/ingest/energy", json=body)
    assert again.status_code == 200
    (incident,) = client.get("/incidents", params={"module": "energy"}).json()["items"]
    assert incident["source"] == "line-7" and incident["window_count"] == len(stored["anomalies"])
    assert incident["top_causes"][0]["feature"] == "temperature"


def test_pending_incidents_are_listed_only_when_asked_for() -> None:
    client, container = make_client(incident_on_delay_windows=3)
    _store(container, [make_anomaly()])
    assert client.get("/incidents").json()["items"] == []
    (pending,) = client.get("/incidents", params={"state": "pending"}).json()["items"]
    assert pending["window_count"] == 1
    assert client.get("/alarm-kpis").json() == []
    assert client.post(f"/incidents/{pending['id']}/acknowledge", json={"actor": "ana"}).status_code == 409
