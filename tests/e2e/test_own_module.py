"""A user with only a labelled CSV of their own plant, end to end: `plantwatch modules add`, `plantwatch
train`, a real server, readings ingested over HTTP (JSON and a CSV upload in the plant's own layout), the
anomalies at /anomalies/valve and on the dashboard in headless Chromium."""

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pandas as pd
import pytest
import uvicorn
from playwright.sync_api import Browser, expect
from typer.testing import CliRunner

from plantwatch.entrypoints.api.app import create_app
from plantwatch.entrypoints.cli.app import app
from plantwatch.settings import Settings, get_settings
from tests.own_plant import valve_readings, write_valve_csv

pytestmark = pytest.mark.e2e

TIMEOUT_MS = 15_000


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    monkeypatch.setenv("PLANTWATCH_DATABASE_URL", f"sqlite:///{tmp_path / 'store.db'}")
    monkeypatch.setenv("PLANTWATCH_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("PLANTWATCH_MODULES_DIR", str(tmp_path / "modules"))
    monkeypatch.setenv("PLANTWATCH_CHATBOT_EMBEDDINGS", "false")
    monkeypatch.setenv("PLANTWATCH_CHATBOT_TIME_ANCHOR", "latest")
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()


@contextmanager
def serving(settings: Settings) -> Iterator[str]:
    """A real server over `settings`, started now (the app loads the registry's models at start-up)."""
    listening = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listening.bind(("127.0.0.1", 0))
    port = listening.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(settings), log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listening]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the plantwatch server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        listening.close()


def _cli(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_own_csv_to_anomalies_on_the_dashboard(settings: Settings, tmp_path: Path, browser: Browser) -> None:
    readings = valve_readings(rows=1500)
    training = write_valve_csv(tmp_path / "valve_run.csv", readings.iloc[:900])
    _cli("modules", "add", "valve", "--from", str(training), "--ignore-columns", "Operator")
    _cli("train", "valve", "--data", str(training))

    with serving(settings) as url:
        _ingest_and_look(url, readings, tmp_path, browser)


def _ingest_and_look(url: str, readings: pd.DataFrame, tmp_path: Path, browser: Browser) -> None:
    unseen = readings.iloc[900:1200]
    later = readings.iloc[1200:]
    with httpx.Client(base_url=url, timeout=60) as client:
        body = {
            "source": "line-1",
            "readings": [
                {
                    "timestamp": row.timestamp.isoformat(),
                    "values": {
                        "valve_position": row.position,
                        "flow": row.flow,
                        "pressure": row.pressure,
                        "pump": 1.0 if row.pump == "on" else 0.0,
                        "mode": 0.0 if row.mode == "auto" else 1.0,
                    },
                }
                for row in unseen.itertuples()
            ],
        }
        assert client.post("/ingest/valve", json=body).status_code == 200
        # the plant's own file layout is accepted as an upload too
        upload = write_valve_csv(tmp_path / "later.csv", later).read_bytes()
        response = client.post(
            "/ingest/valve", files={"file": ("later.csv", upload, "text/csv")}, data={"source": "line-1"}
        )
        assert response.status_code == 200, response.text
        stored = client.get("/anomalies/valve", params={"limit": 500}).json()["items"]
        assert stored
        faulty = set(readings.loc[readings["fault"] == 1, "timestamp"].map(pd.Timestamp.isoformat))
        assert len({item["window_end"] for item in stored} & faulty) / len(stored) > 0.5

    context = browser.new_context(base_url=url, viewport={"width": 1440, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        page.goto("/")
        expect(page.locator("body[data-loaded=true]")).to_be_attached(timeout=TIMEOUT_MS)
        panel = page.get_by_test_id("panel-valve")
        expect(panel).to_be_visible(timeout=TIMEOUT_MS)
        expect(panel.locator("h2")).to_have_text("Valve", timeout=TIMEOUT_MS)
        expect(panel.get_by_test_id("anomaly-item").first).to_have_attribute(
            "data-anomaly-id", stored[0]["id"], timeout=TIMEOUT_MS
        )
        expect(page.get_by_test_id("panel-process")).to_have_count(0)  # configured, but no model in service
    finally:
        context.close()
    assert errors == []
