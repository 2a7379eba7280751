"""The maps in a real browser: a brand's hotspot map renders (cells, legend, tooltips) and nothing
child-level reaches the browser, in the page or in any response it loaded; an officer's map shows
the households of their areas. Both are captured into ``docs/screenshots/``.

No tile server and no CDN is reachable here (nor in CI): Leaflet comes from the application's own
static files, and the basemap is off unless ``MAP_TILES_URL`` is set.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import Error, expect
from sqlalchemy import select

from clms.db import session_scope
from clms.models import Child
from tests.browser import (
    BROWSER_MARKS,
    DESKTOP,
    LiveServer,
    screenshot,
    sign_in,
)
from tests.hotspots import test_hotspots, test_maps
from tests.hotspots.test_maps import SECRETS, without_tokens

# the world of tests/hotspots/test_hotspots.py with the cells and alerts of
# tests/hotspots/test_maps.py
password_hash = test_hotspots.password_hash
world = test_hotspots.world
maps = test_maps.maps

pytestmark = BROWSER_MARKS


@pytest.fixture
def server(maps):
    live = LiveServer(maps)
    yield live
    live.close()


@pytest.fixture
def window(browser):
    """A fresh browser window (own cookies); closed after the test."""
    context = browser.new_context(viewport=DESKTOP, locale="en-GB")
    context.set_default_timeout(15_000)
    yield context.new_page()
    context.close()


def test_the_brand_map_renders_and_holds_nothing_child_level(maps, server, window):
    page = window
    responses = []
    page.on("response", lambda response: responses.append(response))
    sign_in(page, server.url, "bea")  # a brand's home is its map
    expect(page).to_have_url(f"{server.url}/map")
    # let that first map finish loading: a request cut short leaves the server's file open
    page.wait_for_load_state("networkidle")
    page.goto(f"{server.url}/map?end=2025-06-30")
    frame = page.frame_locator("iframe.map-frame")

    # the cells of brand A's villages (V1, V2, V3, V5) are drawn, styled by the first layer
    cells = frame.locator("path.clms-village")
    expect(cells).to_have_count(4)
    expect(frame.locator('path.clms-village[data-state="figures"]')).to_have_count(2)
    suppressed = frame.locator('path.clms-village[data-state="suppressed"]')
    expect(suppressed).to_have_count(2)
    assert suppressed.first.get_attribute("fill") == "url(#clms-hatch)"
    legend = frame.locator(".clms-legend")
    expect(legend).to_be_visible()
    expect(legend).to_contain_text("Not enough data")
    expect(legend).to_contain_text("Villages: all suppliers")

    # a tooltip with the published figures on hover, "Not enough data" on a suppressed cell
    frame.locator('path.clms-village[data-state="figures"]').first.hover(force=True)
    tooltip = frame.locator(".leaflet-tooltip")
    expect(tooltip).to_be_visible()
    expect(tooltip).to_contain_text("Prevalence")
    expect(tooltip).to_contain_text("Children monitored")
    page.mouse.move(0, 0)
    suppressed.first.hover(force=True)
    expect(frame.locator(".leaflet-tooltip", has_text="Not enough data")).to_be_visible()

    # another layer: tier 3 (T3-GRP buys in V3 and V5) restyles the same cells: V3 shows its
    # figures; V1 and V2 (no tier-3 child, but hiding their layers) are as hidden as V5, never
    # drawn as empty, which would tell their parts apart
    frame.get_by_label("Villages: tier 3 suppliers").check()
    expect(legend).to_contain_text("Villages: tier 3 suppliers")
    expect(frame.locator('path.clms-village[data-state="figures"]')).to_have_count(1)
    expect(frame.locator('path.clms-village[data-state="suppressed"]')).to_have_count(3)
    expect(frame.locator('path.clms-village[data-state="absent"]')).to_have_count(0)
    frame.get_by_label("Villages: all suppliers").check()
    page.mouse.move(0, 0)
    screenshot(page, "brand-map")

    # nothing child-level in the page, the map's document, or any response the page loaded
    with session_scope(maps) as s:
        uids = list(s.scalars(select(Child.child_uid)))
    documents = [page.content()] + [f.content() for f in page.frames]
    bodies = [_body(r) for r in responses if not 300 <= r.status < 400]
    assert len(bodies) >= 5  # the page, the frame, Leaflet, the stylesheets, the tier's figures
    assert any("/map/layer.json?" in r.url for r in responses)
    assert any("Gnamagui" in body for body in bodies)
    for text in map(without_tokens, documents + bodies):
        for secret in SECRETS:
            assert secret not in text, secret
        assert not [uid for uid in uids if uid in text]
    # nothing came from anywhere but this server
    assert {r.url.split("/")[2] for r in responses} == {server.url.split("/")[2]}


def _body(response) -> str:
    """A response's body as text ("" when the browser kept none)."""
    try:
        return response.body().decode("utf-8", "replace")
    except Error:
        return ""


def test_the_officer_map_shows_the_households_of_their_areas(maps, server, window):
    page = window
    sign_in(page, server.url, "olga")
    page.goto(f"{server.url}/map?from=2025-01-01&to=2025-06-30")
    frame = page.frame_locator("iframe.map-frame")
    # households clustered, the open alert drawn apart
    expect(frame.locator(".marker-cluster").first).to_be_visible()
    alert = frame.locator("path.clms-alert")
    expect(alert).to_have_count(1)
    alert.dispatch_event("click")
    popup = frame.locator(".leaflet-popup-content")
    expect(popup).to_contain_text("HH-V1-0")
    expect(popup.get_by_role("link", name="Open the alert")).to_be_visible()
    assert "Kwabena" not in popup.inner_text()
    screenshot(page, "officer-map")
