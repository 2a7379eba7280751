"""The maps say where the reader is and draw clusters from their first frame (issue 17): with no
tile server, the officer's map shows the boundaries of their areas and the names of their
villages; a brand's map names only the villages of its published figures; the officer's markers
are clustered in the very first frame the browser draws, never a heap of overlapping circles.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from clms.db import session_scope
from tests.browser import BROWSER_MARKS, LiveServer, sign_in
from tests.hotspots import test_hotspots, test_maps

password_hash = test_hotspots.password_hash
world = test_hotspots.world
maps = test_maps.maps

pytestmark = BROWSER_MARKS

FRAME = "/map/frame?from=2025-01-01&to=2025-06-30"

#: the circle markers drawn in the map, and whether any two of them overlap
OVERLAPS = """() => {
  const boxes = [...document.querySelectorAll('path.leaflet-interactive')]
    .filter(el => !el.classList.contains('clms-boundary'))
    .map(el => el.getBoundingClientRect()).filter(r => r.width > 0);
  let overlapping = 0;
  for (let i = 0; i < boxes.length; i++) for (let j = i + 1; j < boxes.length; j++) {
    const a = boxes[i], b = boxes[j];
    if (a.left < b.right - 2 && b.left < a.right - 2 && a.top < b.bottom - 2 &&
        b.top < a.bottom - 2) overlapping++;
  }
  return {circles: boxes.length, overlapping: overlapping,
          clusters: document.querySelectorAll('.marker-cluster').length};
}"""


#: the folium map of the page, brought close enough for the village names
ZOOM_IN = "() => Object.values(window).find(v => v instanceof L.Map).setZoom(12)"
#: zoom in and wait until the map has settled there (the labels are drawn on "zoomend")
ZOOM_IN_SETTLED = """() => new Promise(done => {
  const map = Object.values(window).find(v => v instanceof L.Map);
  map.once("zoomend", () => setTimeout(done, 300));
  map.setZoom(12);
})"""


@pytest.fixture
def server(maps):
    """The maps' world with five more open alerts in one village (Gnamagui, V1): drawn one by
    one, their circles would lie on one another."""
    with session_scope(maps) as s:
        for n in range(2, 7):
            test_maps._alert(s, f"HH-V1-{n}", "high", "new")
    live = LiveServer(maps)
    yield live
    live.close()


def _page(browser, server, username: str, viewport=None):
    context = browser.new_context(viewport=viewport or {"width": 1366, "height": 800})
    context.set_default_timeout(15_000)
    page = context.new_page()
    sign_in(page, server.url, username)
    return context, page


def test_the_officer_map_is_clustered_from_its_first_frame(browser, server):
    context, page = _page(browser, server, "olga")
    # the map's scripts run before the document is parsed to its end: what they drew then is
    # the first frame the browser paints
    page.goto(server.url + FRAME, wait_until="domcontentloaded")
    first = page.evaluate(OVERLAPS)
    assert first["clusters"] >= 1, first
    assert first["overlapping"] == 0, first
    page.wait_for_load_state("networkidle")
    assert page.evaluate(OVERLAPS)["overlapping"] == 0
    context.close()


def test_the_officer_map_shows_boundaries_and_village_names(browser, server):
    context, page = _page(browser, server, "olga")
    page.goto(server.url + FRAME)
    expect(page.locator("path.clms-boundary").first).to_be_attached()
    # the names show once the map is close enough for them not to cover one another
    page.evaluate(ZOOM_IN.replace("12", "8"))
    expect(page.locator(".clms-label")).to_have_count(0)
    page.evaluate(ZOOM_IN)
    labels = page.locator(".clms-label")
    expect(labels.first).to_be_attached()
    names = set(labels.all_text_contents())
    # olga's villages (CI-D1), not those of CI-D2
    assert {"Gnamagui", "Lobakuya"} <= names and not names & {"Oupoyo", "Zogbodoua"}
    assert "geoBoundaries" in page.locator(".leaflet-control-attribution").inner_text()
    context.close()


def test_a_brand_map_names_only_the_villages_of_its_figures(browser, server):
    seen = {}
    for username in ("bea", "bob"):
        context, page = _page(browser, server, username)
        page.goto(server.url + "/map/frame?end=2025-06-30")
        assert page.evaluate(ZOOM_IN.replace("setZoom(12)", "getZoom()")) < 12
        page.evaluate(ZOOM_IN_SETTLED)
        seen[username] = set(page.locator(".clms-label").all_text_contents())
        context.close()
    assert {"Gnamagui", "Lobakuya", "Oupoyo"} <= seen["bea"]
    # bob's chain buys in none of V2 and V3: their names are not his to see
    assert not seen["bob"] & {"Lobakuya", "Oupoyo"}


def test_the_phone_map_folds_its_legend_away_from_the_layer_list(browser, server):
    context, page = _page(browser, server, "bea", {"width": 390, "height": 844})
    page.goto(server.url + "/map?end=2025-06-30")
    frame = page.frame_locator("iframe.map-frame")
    legend = frame.locator("details.clms-legend")
    expect(legend).to_be_visible()
    expect(legend).not_to_have_attribute("open", "")
    legend.locator("summary").click()
    expect(legend).to_have_attribute("open", "")
    layers = frame.locator(".leaflet-control-layers")
    a, b = legend.bounding_box(), layers.bounding_box()
    apart = a["y"] >= b["y"] + b["height"] or b["y"] >= a["y"] + a["height"]
    assert apart or a["x"] >= b["x"] + b["width"] or b["x"] >= a["x"] + a["width"]
    context.close()
