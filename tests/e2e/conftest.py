"""A real plantwatch server over a SQLite store of scored generated data, and headless Chromium to drive it.

Each module gets a quick PCA model trained on the first 60 % of its generated sample; the rest is ingested as
a plant would send it, except the last stretch of the energy stream, which the tests send themselves to
watch the dashboard update live.
"""

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI
from playwright.sync_api import Browser, sync_playwright

from plantwatch.adapters.datasets.synthetic_energy import generate_energy
from plantwatch.adapters.datasets.synthetic_machine import generate_machine
from plantwatch.adapters.datasets.synthetic_swat import generate_swat
from plantwatch.adapters.detectors import PcaDetector
from plantwatch.adapters.registry import FileModelRegistry
from plantwatch.bootstrap import Container, build_container
from plantwatch.domain.access import Role, hash_api_key
from plantwatch.domain.frames import SensorFrame
from plantwatch.domain.modules import Module
from plantwatch.domain.thresholds import build_thresholder
from plantwatch.entrypoints.api.app import create_app
from plantwatch.services.ingest import ingest_frame
from plantwatch.services.scoring import score_frame
from plantwatch.services.training import train_model
from plantwatch.settings import Settings

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SERVER_START_SECONDS = 20.0
TRAIN_FRACTION = 0.6
# readings of the held-back energy stretch sent before its first flagged one: a few normal ones
HELD_BACK_LEAD = 3


@dataclass(frozen=True)
class DashboardServer:
    url: str
    container: Container
    held_back: SensorFrame
    """The end of the energy stream, not ingested yet: sending it must flag at least one anomaly."""


def _hold_back_from_last_flag(frame: SensorFrame, container: Container) -> int:
    """Row where the held-back stretch starts: a few readings before the last reading the model flags."""
    flagged = score_frame(frame, container.model(frame.module)).anomalies
    assert flagged, "the energy model flags nothing in its unseen data; the live test has nothing to show"
    last = frame.values.index.get_loc(flagged[-1].window_end)
    assert isinstance(last, int)
    return max(container.model(frame.module).card.window, last - HELD_BACK_LEAD)


def _scored_store(root: Path) -> tuple[Container, SensorFrame]:
    settings = Settings(
        database_url=f"sqlite:///{root / 'plantwatch.db'}",
        models_dir=root / "models",
        energy_model="pca",
        machine_model="pca",
        cyber_model="pca",
        api_key=None,
        # the generated data lie years back: "recent" in a question means recent in the store
        chatbot_time_anchor="latest",
        # the keyword rules answer the test's question; loading the sentence model would only cost CPU here
        chatbot_embeddings=False,
    )
    registry = FileModelRegistry(settings.models_dir)
    unseen: dict[Module, SensorFrame] = {}
    for frame in (generate_energy(), generate_machine(), generate_swat()):
        training, unseen[frame.module] = frame.split(TRAIN_FRACTION)
        # the quantile method: these small samples hold too few tail scores for POT
        train_model(training, PcaDetector(), build_thresholder("quantile", q=0.99), registry)
    container = build_container(settings)
    held_back = unseen[Module.ENERGY]
    for module, frame in unseen.items():
        if module is Module.ENERGY:
            cut = _hold_back_from_last_flag(frame, container)
            keep = frame.values.index < frame.values.index[cut]
            frame, held_back = frame.slice_mask(keep), frame.slice_mask(~keep)
        ingest_frame(
            frame,
            container.model(module),
            container.repository,
            container.context,
            incidents=container.incidents,
            drift=container.drift,
        )
    return container, held_back


@pytest.fixture(scope="session")
def chromium_path() -> Path:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is not installed (Debian package chromium)")
    return CHROMIUM


@contextmanager
def _serving(app: FastAPI) -> Iterator[str]:
    """`app` served by uvicorn on a free local port for the block; yields its base URL."""
    # a socket bound here, before the server starts, so no other process can take the port in between
    listening = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listening.bind(("127.0.0.1", 0))
    port = listening.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=2, lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listening]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + SERVER_START_SECONDS
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


@pytest.fixture(scope="module")
def dashboard_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DashboardServer]:
    container, held_back = _scored_store(tmp_path_factory.mktemp("plantwatch"))
    try:
        with _serving(create_app(container=container)) as url:
            yield DashboardServer(url=url, container=container, held_back=held_back)
    finally:
        container.close()


# The keyed server's keys: the page is given the viewer key, the test ingests with the admin key.
VIEWER_KEY = "e2e-viewer-key-0123456789"
ADMIN_KEY = "e2e-admin-key-0123456789"


@pytest.fixture(scope="module")
def keyed_dashboard_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DashboardServer]:
    """Its own scored store, served with role keys set: every data route needs a key."""
    container, held_back = _scored_store(tmp_path_factory.mktemp("plantwatch-keyed"))
    keyed = container.settings.model_copy(
        update={"api_keys": {hash_api_key(VIEWER_KEY): Role.VIEWER, hash_api_key(ADMIN_KEY): Role.ADMIN}}
    )
    try:
        with _serving(create_app(keyed, container)) as url:
            yield DashboardServer(url=url, container=container, held_back=held_back)
    finally:
        container.close()


@pytest.fixture(scope="module")
def browser(chromium_path: Path) -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(chromium_path), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()
