"""GET /anomalies, /anomalies/{module}, /anomalies/{module}/{id}, /scores/{module}: filters, pages, errors."""

import time
from datetime import datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from plantwatch.bootstrap import Container
from plantwatch.domain.anomaly import Anomaly, FeatureContribution, ScorePoint, severity_for
from plantwatch.domain.modules import Module
from plantwatch.entrypoints.api.app import create_app
from plantwatch.settings import Settings
from tests.fakes import InMemoryAnomalyRepository

T0 = datetime(2024, 3, 1, 12, 0)


def anomaly(module: Module, minute: int, feature: str, score: float, source: str = "s1") -> Anomaly:
    return Anomaly(
        module=module,
        source=source,
        window_start=T0 + timedelta(minutes=minute - 3),
        window_end=T0 + timedelta(minutes=minute),
        score=score,
        threshold=1.0,
        severity=severity_for(score, 1.0),
        root_cause=(
            FeatureContribution(feature=feature, contribution=score * 3, observed=9.0, expected=1.0),
            FeatureContribution(feature="other", contribution=1.0, observed=1.0, expected=1.0),
        ),
        model_name="pca",
        model_version="v1",
        detected_at=T0 + timedelta(hours=1),
    )


@pytest.fixture
def client() -> TestClient:
    repository = InMemoryAnomalyRepository()
    repository.add_many(
        [anomaly(Module.ENERGY, m, "usage_kwh", 1.1 + m / 10) for m in range(30)]
        + [anomaly(Module.CYBER, m, "LIT101", 5.0, source="swat") for m in range(5)]
        + [anomaly(Module.MACHINE, 3, "temperature", 2.5)]
    )
    repository.add_scores(
        [
            ScorePoint(Module.ENERGY, "s1", T0 + timedelta(minutes=m), 0.1 * m, 1.0, "pca", "v1")
            for m in range(20)
        ]
    )
    settings = Settings(database_url="sqlite://")
    return TestClient(create_app(settings, Container(settings=settings, repository=repository, models={})))


def test_all_modules_newest_first(client):
    page = client.get("/anomalies", params={"limit": 1000}).json()
    assert page["count"] == len(page["items"]) == 36
    ends = [item["window_end"] for item in page["items"]]
    assert ends == sorted(ends, reverse=True)
    assert {item["module"] for item in page["items"]} == {"energy", "cyber", "machine"}
    assert page["next_cursor"] is None


def test_cursor_pages_cover_everything_once(client):
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, str | int] = {"limit": 7}
        if cursor:
            params["cursor"] = cursor
        page = client.get("/anomalies/energy", params=params).json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 30


def test_filters(client):
    since, until = (T0 + timedelta(minutes=10)).isoformat(), (T0 + timedelta(minutes=20)).isoformat()
    window = client.get("/anomalies/energy", params={"since": since, "until": until}).json()
    assert window["count"] == 10
    severe = client.get("/anomalies/energy", params={"min_severity": "high"}).json()
    assert severe["count"] > 0 and all(i["severity"] in ("high", "critical") for i in severe["items"])
    assert client.get("/anomalies", params={"feature": "LIT101"}).json()["count"] == 5
    assert client.get("/anomalies", params={"source": "swat"}).json()["count"] == 5
    assert client.get("/anomalies/machine").json()["count"] == 1


def test_one_anomaly_with_its_root_cause(client):
    first = client.get("/anomalies/cyber", params={"limit": 1}).json()["items"][0]
    one = client.get(f"/anomalies/cyber/{first['id']}")
    assert one.status_code == 200
    assert one.json()["root_cause"][0] == {
        "feature": "LIT101",
        "contribution": 15.0,
        "observed": 9.0,
        "expected": 1.0,
    }
    assert client.get(f"/anomalies/energy/{first['id']}").status_code == 404
    assert client.get("/anomalies/cyber/no-such-id").status_code == 404


@pytest.mark.parametrize(
    ("path", "params", "status", "field"),
    [
        ("/anomalies", {"limit": 0}, 422, "limit"),
        ("/anomalies", {"limit": 1001}, 422, "limit"),
        ("/anomalies", {"min_severity": "apocalyptic"}, 422, "min_severity"),
        ("/anomalies", {"since": "last tuesday"}, 422, "since"),
        ("/anomalies", {"since": "2024-03-01T12:00:00+02:60"}, 422, "since"),
        ("/anomalies", {"until": "1709294400"}, 422, "until"),
        ("/anomalies", {"cursor": "garbage!"}, 422, "cursor"),
        # PostgreSQL cannot compare text holding NUL: these were 500s over the SQL store
        ("/anomalies", {"feature": "usage\x00kwh"}, 422, "feature"),
        ("/anomalies/energy", {"source": "s1\x00"}, 422, "source"),
        ("/anomalies", {"source": "s" * 201}, 422, "source"),
        ("/anomalies/energy/no-such%00id", {}, 422, "anomaly_id"),
        ("/anomalies/water", {}, 404, None),
        ("/scores/water", {}, 404, None),
    ],
)
def test_bad_queries_name_the_field(client, path, params, status, field):
    response = client.get(path, params=params)
    assert response.status_code == status
    assert response.json()["field"] == field
    assert response.json()["detail"]


def test_scores_oldest_first_with_range(client):
    series = client.get(
        "/scores/energy", params={"since": (T0 + timedelta(minutes=5)).isoformat(), "limit": 10}
    ).json()
    assert series["module"] == "energy" and series["threshold"] is None
    stamps = [p["timestamp"] for p in series["points"]]
    assert (
        len(stamps) == 10
        and stamps == sorted(stamps)
        and stamps[0] == (T0 + timedelta(minutes=5)).isoformat()
    )
    assert series["points"][0]["threshold"] == 1.0


def test_openapi_documents_every_route(client):
    paths = client.get("/openapi.json").json()["paths"]
    for path in (
        "/anomalies",
        "/anomalies/{module}",
        "/anomalies/{module}/{anomaly_id}",
        "/ingest/{module}",
        "/scores/{module}",
        "/health",
        "/models",
        "/anomalies/stream",
    ):
        assert path in paths
    assert client.get("/docs").status_code == 200


def test_openapi_lists_the_modules_and_every_error_body(client):
    document = client.get("/openapi.json").json()
    module = next(
        p for p in document["paths"]["/scores/{module}"]["get"]["parameters"] if p["name"] == "module"
    )
    assert module["schema"]["enum"] == ["energy", "machine", "cyber"]
    # an unknown module is still an unknown resource, not a malformed request
    assert client.get("/scores/water").status_code == 404
    error_body = {"$ref": "#/components/schemas/ErrorOut"}
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for status in ("400", "422", "500"):
                # the chatbot's 422 used to be documented as FastAPI's list-shaped HTTPValidationError
                content = operation["responses"][status]["content"]["application/json"]
                assert content["schema"] == error_body, (method, path, status)


def test_pages_come_from_the_cache_until_an_anomaly_is_added():
    repository = InMemoryAnomalyRepository()
    repository.add_many([anomaly(Module.ENERGY, 1, "usage_kwh", 2.0)])
    # max age 0: the store's revision is read on every request (the default takes other processes' new
    # anomalies within 0.1 s: see the next test)
    settings = Settings(database_url="sqlite://", api_page_cache_max_age_s=0)
    client = TestClient(create_app(settings, Container(settings=settings, repository=repository, models={})))
    finds = 0
    real_find = repository.find

    def counting_find(query):  # type: ignore[no-untyped-def]
        nonlocal finds
        finds += 1
        return real_find(query)

    repository.find = counting_find  # type: ignore[method-assign]
    first = client.get("/anomalies/energy")
    again = client.get("/anomalies/energy")
    assert first.json() == again.json() and first.json()["count"] == 1
    assert finds == 1, "an unchanged store is answered from the cache"
    # another page (other filters) is another entry
    assert client.get("/anomalies/energy", params={"limit": 5}).json()["count"] == 1
    assert finds == 2

    etag = first.headers["etag"]
    unchanged = client.get("/anomalies/energy", headers={"if-none-match": etag})
    assert unchanged.status_code == 304 and unchanged.content == b""

    repository.add_many([anomaly(Module.ENERGY, 2, "usage_kwh", 3.0)])  # as a worker would, not via this API
    fresh = client.get("/anomalies/energy", headers={"if-none-match": etag})
    assert fresh.status_code == 200 and fresh.headers["etag"] != etag
    assert fresh.json()["count"] == 2 and finds == 3


def test_a_recent_revision_answers_without_the_store_and_ages_out():
    repository = InMemoryAnomalyRepository()
    repository.add_many([anomaly(Module.ENERGY, 1, "usage_kwh", 2.0)])
    settings = Settings(database_url="sqlite://", api_page_cache_max_age_s=0.5)
    client = TestClient(create_app(settings, Container(settings=settings, repository=repository, models={})))
    revision_reads = 0
    real_revision = repository.revision

    def counting_revision() -> int:
        nonlocal revision_reads
        revision_reads += 1
        return real_revision()

    repository.revision = counting_revision  # type: ignore[method-assign]
    assert client.get("/anomalies").json()["count"] == 1
    assert client.get("/anomalies").json()["count"] == 1
    assert revision_reads == 1, "the second answer came from the recent revision"

    repository.add_many([anomaly(Module.ENERGY, 2, "usage_kwh", 3.0)])  # another process writes
    assert client.get("/anomalies").json()["count"] == 1, "within the max age, the cached page stands"
    time.sleep(0.6)
    assert client.get("/anomalies").json()["count"] == 2
