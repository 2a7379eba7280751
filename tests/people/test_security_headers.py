"""Security headers (clms.security) on every kind of response, and the strict
Content-Security-Policy proven harmless in a real browser: the main pages of every role, the
brand's and the officer's maps (folium's inline scripts carry the response's nonce) and a form
submitted for real load with no policy violation, and the maps still draw. The downloaded
standalone map still works from a file, offline.

The browser part runs on one database (see ``pytest_generate_tests`` in tests/conftest.py).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from clms.db import session_scope
from clms.models import Alert, Child, Supplier, Village
from tests.browser import BROWSER_MARKS, DESKTOP, LiveServer, sign_in
from tests.conftest import PASSWORD
from tests.hotspots import test_hotspots, test_maps

# the world of tests/hotspots/test_hotspots.py with the cells and alerts of
# tests/hotspots/test_maps.py: bea (brand A), olga (officer CI-D1), sam (supervisor CI-R1), ada
# (admin), pat (provider)
password_hash = test_hotspots.password_hash
world = test_hotspots.world
maps = test_maps.maps

COMMON = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}


def policy(response) -> dict[str, str]:
    """The Content-Security-Policy of a response as ``{directive: sources}``."""
    header = response.headers["Content-Security-Policy"]
    return dict((part.strip().split(" ", 1) + [""])[:2] for part in header.split(";"))


def assert_strict(response, *, frame: bool = False) -> dict[str, str]:
    csp = policy(response)
    assert csp["default-src"] == "'none'"
    assert re.fullmatch(r"'self'( 'nonce-[\w-]{16,}')?", csp["script-src"]), csp
    assert re.fullmatch(r"'self'( 'nonce-[\w-]{16,}')?", csp["style-src"]), csp
    assert "unsafe" not in response.headers["Content-Security-Policy"]
    assert csp["img-src"] == "'self' data:"
    assert csp["connect-src"] == csp["frame-src"] == csp["form-action"] == "'self'"
    assert csp["base-uri"] == csp["object-src"] == "'none'"
    assert csp["frame-ancestors"] == ("'self'" if frame else "'none'")
    assert response.headers["X-Frame-Options"] == ("SAMEORIGIN" if frame else "DENY")
    for name, value in COMMON.items():
        assert response.headers[name] == value, name
    assert "Strict-Transport-Security" not in response.headers  # plain http here
    return csp


# --- every kind of response ----------------------------------------------------------------------


def test_every_kind_of_response_carries_the_headers(maps):
    client = maps.test_client()
    # public page, then signed-in pages (child-level data: never stored)
    login = client.get("/login")
    assert_strict(login)
    assert login.headers["Cache-Control"] == "no-store"
    client.post("/login", data={"username": "olga", "password": PASSWORD})
    for path in ("/alerts", "/kpis", "/map", "/cases"):
        page = client.get(path)
        assert page.status_code == 200, path
        assert_strict(page)
        assert page.headers["Cache-Control"] == "no-store", path
    # an error page
    missing = client.get("/alerts/999999")
    assert missing.status_code == 404 and missing.mimetype == "text/html"
    assert_strict(missing)
    # a CSRF refusal is an error page too
    refused = client.post("/logout", csrf=False)
    assert refused.status_code == 400
    assert_strict(refused)
    # a static file: the same headers, and a browser may keep it
    with client.get("/static/clms.css") as css:
        assert css.status_code == 200
        assert_strict(css)
        assert css.headers.get("Cache-Control", "") != "no-store"
    # the JSON API, answered and refused
    login = {"username": "olga", "password": PASSWORD}
    token = client.post("/api/v1/sessions", json=login).json["token"]
    alerts = client.get("/api/v1/alerts", headers={"Authorization": f"Bearer {token}"})
    assert alerts.status_code == 200 and alerts.is_json
    assert_strict(alerts)
    assert alerts.headers["Cache-Control"] == "no-store"
    assert_strict(client.get("/api/v1/alerts"))
    # OpenRosa XML (a phone without its password is challenged)
    phone = client.get("/formList", headers={"X-OpenRosa-Version": "1.0"})
    assert phone.status_code == 401 and phone.mimetype.endswith("xml")
    assert_strict(phone)
    # the map document: framed by our pages only
    frame = client.get("/map/frame")
    assert frame.status_code == 200
    assert_strict(frame, frame=True)
    assert frame.headers["Cache-Control"] == "no-store"
    # the downloaded map: a file, never framed
    export = maps.test_client()
    export.post("/login", data={"username": "bea", "password": PASSWORD})
    download = export.get("/map/export.html?end=2025-06-30")
    assert download.status_code == 200
    assert "attachment" in download.headers["Content-Disposition"]
    assert_strict(download)


def test_https_adds_strict_transport_security(maps):
    client = maps.test_client()
    page = client.get("/login", base_url="https://clms.example.org")
    assert page.headers["Strict-Transport-Security"].startswith("max-age=")


def test_each_inline_script_and_style_of_the_map_document_carries_this_responses_nonce(maps):
    client = maps.test_client()
    client.post("/login", data={"username": "bea", "password": PASSWORD})
    nonces = set()
    for _ in range(2):
        frame = client.get("/map/frame?end=2025-06-30")
        html = frame.get_data(as_text=True)
        csp = policy(frame)
        nonce = re.fullmatch(r"'self' 'nonce-([\w-]+)'", csp["script-src"]).group(1)
        assert csp["style-src"] == csp["script-src"]
        tags = re.findall(r"<(?:script|style)\b[^>]*>", html)
        assert len(tags) >= 4
        for tag in tags:
            assert f'nonce="{nonce}"' in tag, tag
        assert "style=" not in html  # no style attribute: style-src needs no 'unsafe-inline'
        nonces.add(nonce)
    assert len(nonces) == 2  # a new nonce for every response


def test_a_configured_tile_server_is_the_one_other_image_source(maps):
    maps.config["MAP_TILES_URL"] = "https://{s}.tiles.example.org/{z}/{x}/{y}.png"
    client = maps.test_client()
    client.post("/login", data={"username": "olga", "password": PASSWORD})
    for path in ("/map", "/map/frame"):
        csp = policy(client.get(path))
        assert csp["img-src"] == "'self' data: https://*.tiles.example.org"
        assert csp["connect-src"] == "'self'"


# --- nothing typed is rendered unescaped ---------------------------------------------------------

TEMPLATES = sorted((Path(__file__).resolve().parents[2] / "clms" / "templates").rglob("*.*"))


def test_every_template_autoescapes_and_marks_only_literals_safe(app):
    assert TEMPLATES
    for path in TEMPLATES:
        text = path.read_text("utf-8")
        assert app.jinja_env.autoescape(path.name), path.name
        assert "autoescape false" not in re.sub(r"\s+", " ", text).lower(), path.name
        assert "Markup(" not in text, path.name
        # |safe only on a quoted literal of the template itself, never on a value
        safe = len(re.findall(r"\|\s*safe\b", text))
        literal = len(re.findall(r"""('[^'{}]*'|"[^"{}]*")\s*\|\s*safe\b""", text))
        assert safe == literal, path.name


def test_a_value_joined_to_safe_markup_is_still_escaped(app):
    """The templates wrap ids in markup inside a translated sentence:
    ``_("Child %(id)s", id='<code>'|safe ~ value ~ '</code>'|safe)``; the value stays text."""
    source = """{{ _("Child %(id)s", id=('<code>'|safe ~ value ~ '</code>'|safe)) }}"""
    with app.test_request_context("/"):
        out = app.jinja_env.from_string(source).render(value='<script>x()</script>"')
    assert out == "Child <code>&lt;script&gt;x()&lt;/script&gt;&#34;</code>"


# --- the policy in a real browser ---------------------------------------------------------------

#: records every policy violation in every frame (init scripts run before the page's own and
#: are not subject to its policy)
WATCH = """
window.__violations = [];
document.addEventListener('securitypolicyviolation', function(e){
  window.__violations.push(e.violatedDirective + ' ' + e.blockedURI + ' ' + e.sourceFile + ':' +
                           e.lineNumber);
});
"""


def in_browser(test):
    """The marks of a browser test (tests/browser.py), on one test of this module."""
    for mark in BROWSER_MARKS:
        test = mark(test)
    return test


@pytest.fixture
def server(maps):
    live = LiveServer(maps)
    yield live
    live.close()


@pytest.fixture
def watched(browser):
    """``watched()``: a fresh browser window whose policy violations (in any frame) and console
    errors are collected in ``page.problems``."""
    contexts = []

    def open_window():
        context = browser.new_context(viewport=DESKTOP, locale="en-GB")
        context.set_default_timeout(15_000)
        context.add_init_script(WATCH)
        contexts.append(context)
        page = context.new_page()
        page.problems = []
        page.on("console", lambda m: page.problems.append(m.text) if _problem(m) else None)
        page.on(
            "response",
            lambda r: page.problems.append(f"{r.status} {r.url}") if _failed(r) else None,
        )
        page.on("pageerror", lambda e: page.problems.append(str(e)))
        return page

    yield open_window
    for context in contexts:
        context.close()


def _problem(message) -> bool:
    # a failed load is reported with its address by _failed
    return (
        message.type == "error" and not message.text.startswith("Failed to load resource")
    ) or "Content Security Policy" in message.text


def _failed(response) -> bool:
    # no favicon is served (chromium asks anyway)
    return response.status >= 400 and not response.url.endswith("/favicon.ico")


def violations(page) -> list[str]:
    """What the page and each of its frames reported, plus the console's errors."""
    found = list(page.problems)
    for frame in page.frames:
        found += frame.evaluate("window.__violations || []")
    return found


def visit(page, url: str) -> None:
    response = page.goto(url)
    assert response.status == 200, url
    page.wait_for_load_state("networkidle")
    assert violations(page) == [], url


@in_browser
def test_the_pages_of_every_role_load_under_the_policy(maps, server, watched):
    base = server.url
    with session_scope(maps) as s:
        # the open alert of V3 (CI-D2, otto's department): its child has no case yet
        alert_id, child_uid = s.execute(
            select(Alert.id, Child.child_uid)
            .join(Child, Alert.child_id == Child.id)
            .join(Village, Alert.village_id == Village.id)
            .where(Village.code == "V3", Alert.status.in_(("new", "acknowledged")))
        ).one()

    # an officer: the queue, an alert, a case opened through its form, the child, indicators
    officer = watched()
    sign_in(officer, base, "otto")
    for path in ("/alerts", f"/alerts/{alert_id}"):
        visit(officer, base + path)
    officer.get_by_role("button", name="Open a case").click()  # a real form, its real token
    expect(officer).to_have_url(re.compile(r"/cases/\d+$"))
    expect(officer.locator("p.flash.success")).to_contain_text("opened")
    officer.wait_for_load_state("networkidle")
    assert violations(officer) == []
    for path in (f"/children/{child_uid}", "/cases", "/kpis", "/submissions", "/duplicates"):
        visit(officer, base + path)

    # the officer's map: Leaflet draws its panes and the households
    visit(officer, f"{base}/map?from=2025-01-01&to=2025-06-30")
    frame = officer.frame_locator("iframe.map-frame")
    expect(frame.locator(".leaflet-map-pane")).to_have_count(1)
    expect(frame.locator(".marker-cluster").first).to_be_visible()
    expect(frame.locator(".leaflet-control-layers")).to_have_count(1)
    officer.wait_for_load_state("networkidle")
    assert violations(officer) == []

    # an administrator's pages
    admin = watched()
    sign_in(admin, base, "ada")
    for path in ("/forms", "/places", "/supply", "/sources", "/services", "/profiles"):
        visit(admin, base + path)

    # a brand: its hotspot map, a layer fetched when chosen, a tooltip; a supplier's name with
    # markup in it shows as text in the layer list (Leaflet writes names as HTML)
    marked = 'Coop <b class="injected">Espoir</b>'
    with session_scope(maps) as s:
        s.scalar(select(Supplier).where(Supplier.code == "T2-COOP")).name = marked
    brand = watched()
    sign_in(brand, base, "bea")
    visit(brand, f"{base}/map?end=2025-06-30")
    frame = brand.frame_locator("iframe.map-frame")
    expect(frame.locator(".leaflet-overlay-pane svg")).to_have_count(1)
    expect(frame.locator("path.clms-village")).to_have_count(4)
    expect(frame.locator(".clms-legend")).to_contain_text("Not enough data")
    frame.get_by_label("Villages: tier 3 suppliers").check()
    expect(frame.locator('path.clms-village[data-state="figures"]')).to_have_count(1)
    frame.locator('path.clms-village[data-state="figures"]').first.hover(force=True)
    expect(frame.locator(".leaflet-tooltip")).to_contain_text("Prevalence")
    layers = frame.locator(".leaflet-control-layers")
    expect(layers).to_contain_text(f"Villages: {marked}")
    expect(layers.locator("b.injected")).to_have_count(0)
    brand.wait_for_load_state("networkidle")
    assert violations(brand) == []

    # and the language switch, a form on every page, under the same policy
    brand.get_by_label("Language").select_option("fr")
    brand.get_by_role("button", name="Change").click()
    expect(brand.locator("html")).to_have_attribute("lang", "fr")
    assert violations(brand) == []


@in_browser
def test_the_policy_blocks_what_was_injected(maps, server, watched):
    """The policy is not decoration: a script without the nonce does not run."""
    page = watched()
    sign_in(page, server.url, "olga")
    visit(page, f"{server.url}/alerts")
    ran = page.evaluate(
        """() => { const s = document.createElement('script');
                   s.textContent = 'window.__injected = true';
                   document.body.appendChild(s); return window.__injected === true; }"""
    )
    assert ran is False
    assert any("script-src" in v for v in violations(page))


@in_browser
def test_the_downloaded_map_works_from_a_file_offline(maps, watched, tmp_path):
    client = maps.test_client()
    client.post("/login", data={"username": "bea", "password": PASSWORD})
    download = client.get("/map/export.html?end=2025-06-30")
    path = tmp_path / "map.html"
    path.write_bytes(download.data)
    page = watched()
    page.context.set_offline(True)
    page.goto(path.as_uri())
    expect(page.locator(".leaflet-map-pane")).to_have_count(1)
    expect(page.locator("path.clms-village")).to_have_count(4)
    expect(page.locator(".clms-legend")).to_contain_text("Not enough data")
    assert violations(page) == []
