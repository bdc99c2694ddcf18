"""The dashboard in real headless Chromium against a real server over scored generated data."""

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Dialog, Page, expect

from plantwatch.domain.anomaly import Anomaly
from plantwatch.domain.modules import Module
from plantwatch.domain.ports import AnomalyQuery
from tests.e2e.conftest import ADMIN_KEY, VIEWER_KEY, DashboardServer

pytestmark = pytest.mark.e2e

TIMEOUT_MS = 15_000
expect.set_options(timeout=TIMEOUT_MS)
LIST_LENGTH = 8
CHAT_QUESTION = "show me the anomalies in the energy module"


@pytest.fixture
def page_errors() -> list[str]:
    return []


@pytest.fixture
def page(browser: Browser, dashboard_server: DashboardServer, page_errors: list[str]) -> Iterator[Page]:
    context = browser.new_context(base_url=dashboard_server.url, viewport={"width": 1440, "height": 1000})
    opened = context.new_page()
    opened.set_default_timeout(TIMEOUT_MS)
    opened.on("pageerror", lambda error: page_errors.append(f"page error: {error}"))
    opened.on(
        "console", lambda message: page_errors.append(message.text) if message.type == "error" else None
    )
    try:
        yield opened
    finally:
        context.close()


def _open_dashboard(page: Page) -> None:
    page.goto("/")
    expect(page.locator("body[data-loaded=true]")).to_be_attached()


def _newest(server: DashboardServer, module: Module, limit: int = 1) -> list[Anomaly]:
    return server.container.repository.find(AnomalyQuery(module=module, limit=limit)).items


def _expect_root_cause_of(page: Page, server: DashboardServer, anomaly_id: str) -> None:
    """The root-cause panel shows this anomaly: its chart, and its features in the store's order."""
    panel = page.get_by_test_id("root-cause-panel")
    expect(panel).to_have_attribute("data-anomaly-id", anomaly_id)
    stored = server.container.repository.get(anomaly_id)
    rows = panel.get_by_test_id("root-cause-table").locator("tbody tr")
    expect(rows).to_have_count(len(stored.root_cause))
    expect(rows.first.locator("th")).to_have_text(stored.root_cause[0].feature)
    expect(panel.get_by_test_id("root-cause-facts")).to_contain_text(stored.source)
    # one bar per feature in each of the three bar traces: contribution, observed, expected
    bars = panel.get_by_test_id("root-cause-chart").locator(".barlayer .point")
    expect(bars).to_have_count(3 * len(stored.root_cause))


def test_panels_root_cause_and_chatbot(
    page: Page, page_errors: list[str], dashboard_server: DashboardServer, tmp_path: Path
) -> None:
    _open_dashboard(page)

    for module in Module:
        panel = page.get_by_test_id(f"panel-{module.value}")
        expect(panel).to_be_visible()
        expect(panel.get_by_test_id(f"summary-{module.value}")).to_contain_text("readings")
        chart = panel.get_by_test_id(f"chart-{module.value}")
        # score line per source, threshold line, anomaly markers
        expect(chart.locator(".scatterlayer .trace")).to_have_count(3)
        expect(chart.locator(".scatterlayer .trace").last.locator("path.point").first).to_be_attached()
        items = panel.get_by_test_id("anomaly-item")
        stored = _newest(dashboard_server, module, LIST_LENGTH)
        expect(items).to_have_count(len(stored))
        expect(items.first).to_have_attribute("data-anomaly-id", stored[0].id)

    # a click on an anomaly marker of the energy chart opens its root cause
    marker = (
        page.get_by_test_id("chart-energy").locator(".scatterlayer .trace").last.locator("path.point").first
    )
    box = marker.bounding_box()
    assert box is not None
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    panel = page.get_by_test_id("root-cause-panel")
    expect(panel).to_have_attribute("data-anomaly-id", re.compile(".+"))
    # markers may overlap: whichever anomaly Plotly found under the pointer, it is a stored energy one
    clicked = dashboard_server.container.repository.get(panel.get_attribute("data-anomaly-id") or "")
    assert clicked.module is Module.ENERGY
    _expect_root_cause_of(page, dashboard_server, clicked.id)

    # so does a click on an anomaly in a list
    item = page.get_by_test_id("panel-machine").get_by_test_id("anomaly-item").nth(1)
    item_id = item.get_attribute("data-anomaly-id")
    assert item_id
    item.click()
    _expect_root_cause_of(page, dashboard_server, item_id)
    expect(item).to_have_attribute("aria-current", "true")

    # the chatbot answers with cited anomalies; a citation opens its root cause
    page.get_by_label("Your question").fill(CHAT_QUESTION)
    page.get_by_test_id("chat-submit").click()
    expect(page.get_by_test_id("chat-question")).to_have_text(CHAT_QUESTION)
    answer = page.get_by_test_id("chat-answer")
    expect(answer).to_have_count(1)
    expect(answer.locator(".chat-text")).not_to_be_empty()
    citation = answer.locator("a[data-testid=citation]").first
    expect(citation).to_be_visible()
    cited_id = (citation.get_attribute("href") or "").rsplit("/", 1)[-1]
    citation.click()
    _expect_root_cause_of(page, dashboard_server, cited_id)

    screenshot = tmp_path / "dashboard.png"
    page.screenshot(path=str(screenshot), full_page=True)
    print(f"dashboard screenshot: {screenshot}")
    assert page_errors == []


def test_new_anomalies_arrive_live(
    page: Page, page_errors: list[str], dashboard_server: DashboardServer
) -> None:
    _open_dashboard(page)
    expect(page.get_by_test_id("live-status")).to_have_attribute("data-state", "live")
    held_back = dashboard_server.held_back
    drawn = len(dashboard_server.container.repository.list_scores(Module.ENERGY, limit=50_000))
    readings = [
        {"timestamp": timestamp.isoformat(), "values": row}
        for timestamp, row in zip(held_back.values.index, held_back.values.to_dict("records"), strict=True)
    ]

    response = page.request.post("/ingest/energy", data={"source": held_back.source, "readings": readings})

    assert response.ok, response.text()
    sent = response.json()["anomalies"]
    assert sent, "the held-back readings flag nothing"
    newest = max(sent, key=lambda anomaly: (anomaly["window_end"], anomaly["id"]))
    energy = page.get_by_test_id("panel-energy")
    expect(energy.locator(f"[data-anomaly-id='{newest['id']}']")).to_be_visible()
    expect(page.get_by_test_id("live-status-text")).to_contain_text("new")
    # the chart redraws with the new scores, every held-back reading scored with the context already sent
    summary = energy.get_by_test_id("summary-energy")
    expect(summary).to_contain_text(f"latest {drawn + len(held_back)} readings")
    expect(summary).to_contain_text(f"{len(_newest(dashboard_server, Module.ENERGY, 1000))} anomal")
    assert page_errors == []


def test_drift_panel_shows_each_served_model(
    page: Page, dashboard_server: DashboardServer, page_errors: list[str]
) -> None:
    _open_dashboard(page)
    for module in Module:
        model = dashboard_server.container.model(module)
        drift = dashboard_server.container.drift.report(module, model)
        assert drift is not None and drift.readings > 0
        entry = page.get_by_test_id(f"drift-{module.value}")
        expect(entry).to_contain_text(f"{model.card.model_name} {model.card.version}")
        expect(entry).to_have_attribute("data-status", "warning" if drift.warning else "ok")
        expect(entry).to_contain_text(f"{drift.readings} readings")
    assert page_errors == []


def test_with_role_keys_the_page_asks_for_a_viewer_key_and_anomalies_arrive_live(
    browser: Browser, keyed_dashboard_server: DashboardServer
) -> None:
    server = keyed_dashboard_server
    context = browser.new_context(base_url=server.url, viewport={"width": 1440, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(f"page error: {error}"))
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    prompts: list[str] = []

    def give_viewer_key(dialog: Dialog) -> None:
        prompts.append(dialog.message)
        dialog.accept(VIEWER_KEY)

    page.on("dialog", give_viewer_key)
    try:
        _open_dashboard(page)
        assert len(prompts) == 1 and "API key" in prompts[0]
        # the stream needs the key too: it is read with the key's header, so the panel goes live
        expect(page.get_by_test_id("live-status")).to_have_attribute("data-state", "live")
        held_back = server.held_back
        readings = [
            {"timestamp": timestamp.isoformat(), "values": row}
            for timestamp, row in zip(
                held_back.values.index, held_back.values.to_dict("records"), strict=True
            )
        ]
        response = page.request.post(
            "/ingest/energy",
            data={"source": held_back.source, "readings": readings},
            headers={"X-API-Key": ADMIN_KEY},
        )
        assert response.ok, response.text()
        sent = response.json()["anomalies"]
        assert sent, "the held-back readings flag nothing"
        newest = max(sent, key=lambda anomaly: (anomaly["window_end"], anomaly["id"]))
        energy = page.get_by_test_id("panel-energy")
        expect(energy.locator(f"[data-anomaly-id='{newest['id']}']")).to_be_visible()
        expect(page.get_by_test_id("live-status-text")).to_contain_text(f"new {newest['severity']} anomaly")
        expect(page.get_by_test_id("live-status")).to_have_attribute("data-state", "live")
    finally:
        context.close()
    # the 401s the page got before it had the key are the only errors
    assert [e for e in errors if "status of 401" not in e] == []
