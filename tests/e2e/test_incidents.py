"""The incident panel in real headless Chromium: acknowledge, shelve and resolve an incident and see its state
and audit entries; filters; charts that stay in their boxes from 800 to 1920 px and after a resize."""

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from plantwatch.domain.incidents import IncidentAction, IncidentState
from plantwatch.domain.modules import Module
from plantwatch.domain.ports import IncidentQuery
from tests.e2e.conftest import DashboardServer

pytestmark = pytest.mark.e2e

TIMEOUT_MS = 15_000
expect.set_options(timeout=TIMEOUT_MS)
OPERATOR = "Dana Operator"


@pytest.fixture
def page_errors() -> list[str]:
    return []


@pytest.fixture
def page(browser: Browser, dashboard_server: DashboardServer, page_errors: list[str]) -> Iterator[Page]:
    context = browser.new_context(base_url=dashboard_server.url, viewport={"width": 1440, "height": 900})
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


def _open(page: Page) -> None:
    page.goto("/")
    expect(page.locator("body[data-loaded=true]")).to_be_attached()
    expect(page.locator("[data-testid=incidents-panel][data-loaded=true]")).to_be_attached()


def test_acknowledge_shelve_and_resolve_an_incident(
    page: Page, page_errors: list[str], dashboard_server: DashboardServer
) -> None:
    store = dashboard_server.container.incident_repository()
    listed = store.find(IncidentQuery(limit=50)).items
    assert listed, "the scored generated data opened no incident"
    _open(page)
    rows = page.get_by_test_id("incident-row")
    expect(rows).to_have_count(len(listed))
    expect(page.get_by_test_id("kpi-energy")).to_contain_text("/ h")

    target = next(i for i in listed if i.state is IncidentState.ACTIVE_UNACKNOWLEDGED)
    row = page.locator(f"[data-testid=incident-row][data-incident-id='{target.id}']")
    page.get_by_test_id("operator-name").fill(OPERATOR)
    page.get_by_test_id("operator-name").dispatch_event("change")
    expect(row.get_by_test_id("resolve-button")).to_be_disabled()  # acknowledge first (ISA-18.2)

    row.get_by_test_id("acknowledge-button").click()
    expect(row).to_have_attribute("data-state", "active_acknowledged")
    detail = page.get_by_test_id("incident-detail")
    expect(detail).to_have_attribute("data-incident-id", target.id)
    last_entry = detail.get_by_test_id("audit-entry").last
    expect(last_entry).to_have_attribute("data-action", "acknowledge")
    expect(last_entry).to_contain_text(OPERATOR)

    page.get_by_test_id("shelve-minutes").select_option("60")
    row.get_by_test_id("shelve-button").click()
    expect(row.get_by_test_id("incident-state")).to_contain_text("shelved")
    expect(detail.get_by_test_id("audit-entry").last).to_contain_text("60 min")

    row.get_by_test_id("resolve-button").click()
    expect(row).to_have_attribute("data-state", "closed")
    expect(detail).to_have_attribute("data-state", "closed")
    expect(detail.get_by_test_id("audit-entry").last).to_have_attribute("data-action", "resolve")
    expect(row.get_by_test_id("acknowledge-button")).to_be_disabled()

    history = store.get(target.id).history
    operator_entries = [(h.action, h.actor) for h in history if h.actor != "plantwatch"]
    assert operator_entries == [
        (IncidentAction.ACKNOWLEDGE, OPERATOR),
        (IncidentAction.SHELVE, OPERATOR),
        (IncidentAction.RESOLVE, OPERATOR),
    ]
    # the raw signal of its top causes, with the expected band, was drawn for it
    chart = detail.get_by_test_id("signal-chart")
    expect(chart.locator(".scatterlayer .trace").first).to_be_attached()
    assert page_errors == []


def test_filters_narrow_the_list(page: Page, dashboard_server: DashboardServer) -> None:
    store = dashboard_server.container.incident_repository()
    _open(page)
    page.get_by_test_id("filter-module").select_option("machine")
    machine = store.find(IncidentQuery(module=Module.MACHINE)).items
    rows = page.get_by_test_id("incident-row")
    expect(rows).to_have_count(len(machine))
    page.get_by_test_id("filter-module").select_option("")
    page.get_by_test_id("filter-state").select_option("closed")
    closed = store.find(IncidentQuery(state=IncidentState.CLOSED)).items
    expect(rows).to_have_count(len(closed))


def _boxes_inside_their_panels(page: Page) -> list[str]:
    """Charts wider than their panel or overlapping the list below them, and any sideways scroll."""
    return page.evaluate(
        """() => {
          const problems = [];
          const root = document.scrollingElement;
          if (root.scrollWidth > window.innerWidth + 1) {
            problems.push(`page scrolls sideways: ${root.scrollWidth}`);
          }
          const incidents = document.querySelector('[data-testid=incidents-panel]').getBoundingClientRect();
          for (const button of document.querySelectorAll('.incident-table .action')) {
            if (button.getBoundingClientRect().right > incidents.right + 1) {
              problems.push('an incident action button is out of sight');
              break;
            }
          }
          for (const panel of document.querySelectorAll('.module-panel')) {
            const chart = panel.querySelector('.score-chart').getBoundingClientRect();
            const box = panel.getBoundingClientRect();
            const list = panel.querySelector('.list-title').getBoundingClientRect();
            const svg = panel.querySelector('.score-chart .main-svg');
            const drawn = svg ? svg.getBoundingClientRect() : chart;
            if (drawn.right > box.right + 1) problems.push(`${panel.dataset.module} chart past its panel`);
            if (drawn.bottom > list.top + 1) problems.push(`${panel.dataset.module} chart over its list`);
          }
          return problems;
        }"""
    )


@pytest.mark.parametrize("width", [800, 1024, 1440, 1920])
def test_layout_holds_at_each_width_and_after_a_resize(page: Page, width: int) -> None:
    page.set_viewport_size({"width": 1440, "height": 900})
    _open(page)
    page.set_viewport_size({"width": width, "height": 900})
    # Plotly redraws after the resize observer fires: wait for the charts to settle in their panels
    page.wait_for_function(
        """() => [...document.querySelectorAll('.module-panel')].every((panel) => {
             const svg = panel.querySelector('.score-chart .main-svg');
             return svg && svg.getBoundingClientRect().right <= panel.getBoundingClientRect().right + 1;
           })"""
    )
    assert _boxes_inside_their_panels(page) == []
    root_cause = page.get_by_test_id("root-cause-panel").bounding_box()
    assert root_cause is not None and root_cause["x"] + root_cause["width"] <= width + 1
