"""The dashboard routes: the page, its own files and the plotly.js bundle of the installed plotly package."""

from html.parser import HTMLParser
from importlib import resources
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from plantwatch.bootstrap import Container
from plantwatch.entrypoints.api.app import create_app
from plantwatch.entrypoints.api.routers import dashboard
from plantwatch.settings import Settings
from tests.fakes import InMemoryAnomalyRepository

STATIC_DIR = Path(str(resources.files("plantwatch.entrypoints.api.dashboard") / "static"))


@pytest.fixture(scope="module")
def client() -> TestClient:
    app = FastAPI()
    app.include_router(dashboard.router)
    return TestClient(app)


class _LocalReferences(HTMLParser):
    """src/href attributes of the page that point at this server."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in {"src", "href"} and value and value.startswith("/"):
                self.urls.append(value)


def test_page_is_served_at_root(client: TestClient) -> None:
    response = client.get("/")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert 'data-testid="chat-form"' in response.text
    assert 'data-testid="root-cause-panel"' in response.text


def test_every_file_the_page_references_is_served(client: TestClient) -> None:
    parser = _LocalReferences()
    parser.feed(client.get("/").text)

    assert set(parser.urls) == {"/dashboard/app.css", "/dashboard/plotly.min.js", "/dashboard/app.js"}
    for url in parser.urls:
        response = client.get(url)
        assert response.status_code == 200, url
        assert len(response.content) > 0, url


def test_own_files_are_served_with_their_types(client: TestClient) -> None:
    script = client.get("/dashboard/app.js")
    style = client.get("/dashboard/app.css")

    assert script.headers["content-type"].startswith("text/javascript")
    assert script.content == (STATIC_DIR / "app.js").read_bytes()
    assert style.headers["content-type"].startswith("text/css")
    assert style.content == (STATIC_DIR / "app.css").read_bytes()


def test_plotly_bundle_comes_from_the_installed_plotly_package(client: TestClient) -> None:
    installed = Path(str(resources.files("plotly") / "package_data" / "plotly.min.js")).read_bytes()

    response = client.get("/dashboard/plotly.min.js")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/javascript")
    assert "max-age" in response.headers["cache-control"]
    assert response.content == installed


def test_plotly_is_not_copied_into_the_repository() -> None:
    assert sorted(p.name for p in STATIC_DIR.iterdir()) == ["app.css", "app.js", "index.html"]


@pytest.mark.parametrize(
    "path",
    [
        "/dashboard/index.html.bak",
        "/dashboard/..%2F..%2Fsettings.py",
        "/dashboard/%2E%2E%2F__init__.py",
        "/dashboard/",
    ],
)
def test_only_the_dashboard_files_are_served(client: TestClient, path: str) -> None:
    assert client.get(path).status_code == 404


def test_script_never_writes_markup_from_strings() -> None:
    # API text reaches the page only through textContent/createElement; these would parse it as HTML
    script = (STATIC_DIR / "app.js").read_text(encoding="utf-8")

    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in script, sink


def test_the_api_app_serves_the_dashboard_at_root() -> None:
    app = create_app(
        container=Container(settings=Settings(), repository=InMemoryAnomalyRepository(), models={})
    )

    with TestClient(app) as api:
        page = api.get("/")
        script = api.get("/dashboard/app.js")

    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert script.content == (STATIC_DIR / "app.js").read_bytes()
