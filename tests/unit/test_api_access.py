"""Access control with role keys: 401/403 per role on every route but /health, hashed keys only, rate limits
per key and per client sending wrong keys, the role dependency other routes reuse, and the OpenAPI document
naming the roles."""

import json
import re

import pytest
from fastapi import APIRouter
from fastapi.testclient import TestClient
from pydantic import ValidationError
from typer.testing import CliRunner

from plantwatch.bootstrap import Container
from plantwatch.domain.access import Role, hash_api_key
from plantwatch.domain.modules import Module
from plantwatch.entrypoints.api.access import OperatorDep
from plantwatch.entrypoints.api.app import create_app
from plantwatch.entrypoints.cli.app import app as cli_app
from plantwatch.settings import ApiKeyGrant, Settings
from tests.fakes import InMemoryAnomalyRepository, make_anomaly
from tests.streaming_support import as_json_readings, normal_frame, trained_pca

KEYS = {Role.VIEWER: "viewer-key-0123", Role.OPERATOR: "operator-key-4567", Role.ADMIN: "admin-key-89ab"}


@pytest.fixture(scope="module")
def energy_model():
    return trained_pca(Module.ENERGY, window=4)


def make_client(energy_model, **overrides) -> TestClient:  # type: ignore[no-untyped-def]
    settings = Settings(
        database_url="sqlite://",
        chatbot_embeddings=False,
        api_keys={hash_api_key(key): role for role, key in KEYS.items()},
        **overrides,
    )
    repository = InMemoryAnomalyRepository()
    repository.add_many([make_anomaly()])
    container = Container(settings=settings, repository=repository, models={Module.ENERGY: energy_model})
    app = create_app(settings, container)
    # a route a later feature adds, guarded by the reusable role dependency
    extra = APIRouter()

    @extra.post("/work-orders/{order_id}/close")
    def close_work_order(order_id: str, caller: OperatorDep) -> dict[str, str]:
        return {"order": order_id, "by": caller.role.value}

    app.include_router(extra)
    return TestClient(app)


def key(role: Role) -> dict[str, str]:
    return {"X-API-Key": KEYS[role]}


def test_every_route_but_health_needs_a_key_and_each_role_gets_its_routes(energy_model) -> None:
    client = make_client(energy_model)
    reads = ["/anomalies", "/anomalies/energy", "/scores/energy", "/models", "/metrics"]
    for path in reads:
        assert client.get(path).status_code == 401, path
        assert client.get(path, headers={"X-API-Key": "nope"}).status_code == 401, path
        for role in Role:
            assert client.get(path, headers=key(role)).status_code == 200, (path, role)
    assert client.get("/health").status_code == 200
    question = {"question": "how many anomalies in energy"}
    assert client.post("/chatbot/query", json=question).status_code == 401
    assert client.post("/chatbot/query", json=question, headers=key(Role.VIEWER)).status_code == 200

    body = {"source": "line-1", "readings": as_json_readings(normal_frame(6))}
    refused = client.post("/ingest/energy", json=body, headers=key(Role.OPERATOR))
    assert refused.status_code == 403 and "admin" in refused.json()["detail"]
    assert client.post("/ingest/energy", json=body, headers=key(Role.ADMIN)).status_code == 200

    close = "/work-orders/7/close"
    assert client.post(close).status_code == 401
    assert client.post(close, headers=key(Role.VIEWER)).status_code == 403
    assert client.post(close, headers=key(Role.OPERATOR)).json() == {"order": "7", "by": "operator"}
    assert client.post(close, headers=key(Role.ADMIN)).status_code == 200
    # the incident actions need an operator too
    assert client.post("/incidents/1/acknowledge", headers=key(Role.VIEWER)).status_code == 403
    assert client.get("/incidents").status_code == 401


def test_the_single_key_of_old_stays_an_admin_key_beside_role_keys(energy_model) -> None:
    client = make_client(energy_model, api_key="legacy-secret")
    assert client.get("/anomalies", headers={"X-API-Key": "legacy-secret"}).status_code == 200
    body = {"source": "line-1", "readings": as_json_readings(normal_frame(6))}
    assert client.post("/ingest/energy", json=body, headers={"X-API-Key": "legacy-secret"}).status_code == 200


def test_wrong_keys_from_one_client_are_rate_limited(energy_model) -> None:
    client = make_client(energy_model, api_auth_failure_limit="3/minute")
    for attempt in range(3):
        assert client.get("/anomalies", headers={"X-API-Key": f"guess-{attempt}"}).status_code == 401
    limited = client.get("/anomalies", headers={"X-API-Key": KEYS[Role.VIEWER]})
    # even the right key waits: the client has used up its tries
    assert limited.status_code == 429
    assert int(limited.headers["Retry-After"]) >= 1
    assert "wrong keys" in limited.json()["detail"]


def test_each_key_has_its_own_rate_limit(energy_model) -> None:
    client = make_client(energy_model, api_rate_limit="5/minute")
    answers = [client.get("/anomalies", headers=key(Role.VIEWER)).status_code for _ in range(7)]
    assert answers == [200] * 5 + [429] * 2
    assert client.get("/anomalies", headers=key(Role.ADMIN)).status_code == 200


def test_settings_take_key_digests_only_and_never_show_secrets() -> None:
    with pytest.raises(ValidationError, match="SHA-256") as raised:
        Settings(api_keys={"my-plain-key": Role.ADMIN})
    assert "my-plain-key" not in str(raised.value)
    settings = Settings(
        database_url="postgresql+psycopg://plant:hunter2@db.example:5432/plant",
        api_key="s3cret-key",
        llm_api_key="llm-secret",
    )
    assert not {"hunter2", "s3cret-key", "llm-secret"} & set(repr(settings).replace("'", " ").split())
    assert "hunter2" not in settings.database_for_display()
    assert "db.example" in settings.database_for_display()


def test_openapi_names_the_role_each_guarded_operation_needs(energy_model) -> None:
    document = make_client(energy_model).get("/openapi.json", headers=key(Role.VIEWER)).json()
    assert document["paths"]["/anomalies"]["get"]["security"] == [{"APIKeyHeader": ["viewer"]}]
    assert document["paths"]["/ingest/{module}"]["post"]["security"] == [{"APIKeyHeader": ["admin"]}]
    assert "security" not in document["paths"]["/health"]["get"]
    for status in ("401", "403", "429"):
        assert status in document["paths"]["/anomalies"]["get"]["responses"]


def test_without_keys_the_api_is_open_and_the_document_asks_for_none(energy_model) -> None:
    settings = Settings(database_url="sqlite://", chatbot_embeddings=False)
    container = Container(
        settings=settings, repository=InMemoryAnomalyRepository(), models={Module.ENERGY: energy_model}
    )
    client = TestClient(create_app(settings, container))
    assert client.get("/anomalies").status_code == 200
    document = client.get("/openapi.json").json()
    assert all(
        "security" not in operation for path in document["paths"].values() for operation in path.values()
    )


def test_a_key_entry_takes_a_role_or_a_role_and_a_name(monkeypatch: pytest.MonkeyPatch) -> None:
    named, plain = hash_api_key("ana-key"), hash_api_key("shared-key")
    monkeypatch.setenv(
        "PLANTWATCH_API_KEYS", json.dumps({named: {"role": "operator", "name": "ana"}, plain: "viewer"})
    )
    settings = Settings()
    assert settings.api_keys == {named: ApiKeyGrant(role=Role.OPERATOR, name="ana"), plain: Role.VIEWER}
    with pytest.raises(ValidationError):
        Settings(api_keys={named: {"role": "operator", "name": "ana\nadmin"}})
    with pytest.raises(ValidationError):
        Settings(api_keys={named: {"role": "root", "name": "ana"}})


def test_the_api_key_command_prints_a_named_entry_the_settings_read() -> None:
    result = CliRunner().invoke(cli_app, ["api-key", "--role", "operator", "--name", "ana"])
    assert result.exit_code == 0, result.output
    key = re.search(r"X-API-Key header\): (\S+)", result.output)
    setting = re.search(r"PLANTWATCH_API_KEYS='(.+)'", result.output)
    assert key and setting
    entries = Settings(api_keys=json.loads(setting.group(1))).api_keys
    assert entries == {hash_api_key(key.group(1)): ApiKeyGrant(role=Role.OPERATOR, name="ana")}
