"""Every page of every role fits the screen (issue 17, "Screens of every size"): at 390 px (a
phone), 768 px (a tablet) and 1366 px (a laptop), in English and in French, no page is wider than
the window, the header stays one row no taller than :data:`HEADER_MAX` px, and the navigation
never wraps onto a second row. On a narrow screen the navigation folds behind a menu button that
opens with the keyboard and says whether it is open.

The pages are found, not listed: each person's pages are crawled from their home page (every link
of the navigation, then the links of those pages, one page per address pattern), so a page added
later is checked too.
"""

from __future__ import annotations

import re
from functools import partial
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Error, expect

from clms.db import session_scope
from clms.models import Case, Household, User
from tests import builders as b
from tests.browser import BROWSER_MARKS, LiveServer, sign_in
from tests.hotspots import test_hotspots, test_maps

password_hash = test_hotspots.password_hash
world = test_hotspots.world
maps = test_maps.maps

pytestmark = BROWSER_MARKS

WIDTHS = (390, 768, 1366)
#: the tallest a header may be, at any width (one row: 844 px of a phone are for the work)
HEADER_MAX = 64
#: below this width the navigation folds behind its button (clms.css: 64rem)
MENU_FOLDS_BELOW = 1024
#: one person of each role (tests/hotspots/test_hotspots.py's world)
PEOPLE = ("ada", "olga", "sam", "pat", "bea", "mo")
#: addresses that are not pages to look at: files, the map's own document, signing out
NOT_PAGES = re.compile(
    r"/logout|/static/|/api/|/map/frame|/map/layer|export|\.(csv|geojson|json|xml|xlsx?|zip|html)$"
)
MAX_PAGES = 30


@pytest.fixture
def server(maps):
    """The maps' world, with a case of olga's (in CI-D1) referred to pat's organisation, so the
    case, child and referral pages are among those crawled."""
    with session_scope(maps) as s:
        home = s.query(Household).filter_by(code="HH-V1-0").one()
        kid = b.child(s, home, "Aya Traoré")
        case = b.case(s, kid, officer="olga", state="implementation")
        b.referral(s, case, "TEST-PROVIDER", shared=["first_name", "age"])
        assert s.query(User).filter_by(username="pat").one().role == "provider"
        assert s.query(Case).count() >= 1
    live = LiveServer(maps)
    yield live
    live.close()


def _pattern(url: str) -> str:
    """One page per address pattern: numbers and codes of one kind count once."""
    path = urlsplit(url).path
    return re.sub(r"/[^/]*\d[^/]*", "/N", path)


def _links(page, base: str) -> list[str]:
    hrefs = page.eval_on_selector_all("a[href]:not([download])", "els => els.map(e => e.href)")
    out = []
    for href in hrefs:
        href = href.split("#")[0]
        if href.startswith(base) and not NOT_PAGES.search(urlsplit(href).path):
            out.append(href)
    return out


def _crawl(page, base: str, check) -> int:
    """Visit the person's pages, ``check(url)`` on each: their home, the navigation's links, then
    the links on those pages (one page per address pattern). Returns how many were checked."""
    page.goto(base + "/")
    first = [base + "/", *_links(page, base)]
    seen, checked = set(), 0
    queue = list(first)
    while queue and checked < MAX_PAGES:
        url = queue.pop(0)
        key = _pattern(url)
        if key in seen:
            continue
        seen.add(key)
        page.set_viewport_size({"width": max(WIDTHS), "height": 900})
        try:
            response = page.goto(url)
        except Error:  # a download, not a page
            continue
        if response is None or "text/html" not in (response.headers.get("content-type") or ""):
            continue
        if response.status >= 400:
            continue
        if url in first:  # one level below the navigation
            queue.extend(_links(page, base))
        check(url)
        checked += 1
    return checked


MEASURE = """() => {
  const header = document.querySelector('header.top');
  const nav = document.querySelector('header.top nav');
  const summary = document.querySelector('header.top details.menu > summary');
  const shown = el => !!el && el.checkVisibility({visibilityProperty: true});
  const items = nav ? [...nav.children].filter(shown) : [];
  const tops = items.map(el => Math.round(el.getBoundingClientRect().top));
  const boxed = '.table-wrap, table, .kpi-wrap, pre';
  const name = el => el.tagName.toLowerCase() + (el.className
    ? '.' + String(el.className).split(' ')[0] : '');
  const wide = [...document.querySelectorAll('body *')].filter(el => {
    const r = el.getBoundingClientRect();
    return r.right > window.innerWidth + 1 && shown(el) && !el.closest(boxed);
  }).slice(0, 3).map(name);
  return {
    scroll: document.documentElement.scrollWidth, inner: window.innerWidth,
    header: header ? Math.round(header.getBoundingClientRect().height) : 0,
    menuButton: shown(summary), navShown: shown(nav),
    rows: new Set(tops).size, wide: wide,
  };
}"""


def _measure(page, who: str, problems: list, url: str) -> None:
    """Add to ``problems`` what does not fit on the page at ``url`` at each width."""
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        m = page.evaluate(MEASURE)
        where = f"{who} {width}px {urlsplit(url).path}"
        if m["scroll"] > m["inner"]:
            problems.append(f"{where}: page {m['scroll']} px wide ({m['wide']})")
        if m["header"] > HEADER_MAX:
            problems.append(f"{where}: header {m['header']} px tall")
        if width < MENU_FOLDS_BELOW and (not m["menuButton"] or m["navShown"]):
            problems.append(f"{where}: the navigation is not folded behind its button")
        if width >= MENU_FOLDS_BELOW and m["rows"] > 1:
            problems.append(f"{where}: the navigation wraps onto {m['rows']} rows")


def _open(browser, base: str, username: str, locale: str):
    context = browser.new_context(viewport={"width": 1366, "height": 900}, locale="en-GB")
    context.set_default_timeout(15_000)
    page = context.new_page()
    sign_in(page, base, username)
    if page.locator("html").get_attribute("lang") != locale:
        page.select_option("#locale", locale)
        page.locator("form.language button").click()
        expect(page.locator("html")).to_have_attribute("lang", locale)
    return context, page


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize("locale", ["en", "fr"])
def test_every_page_of_every_role_fits_each_screen(browser, server, locale):
    problems = []
    for username in PEOPLE:
        context, page = _open(browser, server.url, username, locale)

        check = partial(_measure, page, f"{username} {locale}", problems)
        assert _crawl(page, server.url, check) >= 2, username
        context.close()
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("username", ["ada", "olga"])
def test_the_phone_menu_opens_with_the_keyboard_and_says_so(browser, server, username):
    context, page = _open(browser, server.url, username, "fr")
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(server.url + "/")
    # a <summary>: a button with its state in the accessibility tree (menu.js writes the
    # attribute too, for the tools that read only attributes)
    button = page.locator("header.top details.menu > summary")
    expect(button).to_have_text(re.compile("Menu"))
    expect(button).to_have_attribute("aria-expanded", "false")
    nav = page.get_by_role("navigation", name="Principale")
    expect(nav).to_be_hidden()
    button.focus()
    page.keyboard.press("Enter")
    expect(button).to_have_attribute("aria-expanded", "true")
    expect(nav).to_be_visible()
    # the open menu lies over the page: the header keeps its height
    assert page.locator("header.top").bounding_box()["height"] <= HEADER_MAX
    expect(nav.get_by_role("link", name="Alertes")).to_be_visible()
    if username == "ada":  # the administration's pages are one more step away
        nav.locator("summary", has_text="Administration").click()
        expect(nav.get_by_role("link", name="Utilisateurs")).to_be_visible()
    page.keyboard.press("Escape")
    context.close()


def test_the_phone_menu_works_without_javascript(browser, server):
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, locale="en-GB", java_script_enabled=False
    )
    page = context.new_page()
    sign_in(page, server.url, "olga")
    page.goto(server.url + "/")
    nav = page.get_by_role("navigation", name="Main")
    expect(nav).to_be_hidden()
    page.locator("header.top details.menu > summary").click()
    expect(nav.get_by_role("link", name="Alerts")).to_be_visible()
    nav.get_by_role("link", name="Cases").click()
    expect(page).to_have_url(f"{server.url}/cases")
    context.close()


@pytest.mark.parametrize(("locale", "colon"), [("en", ": "), ("fr", "\u202f: ")])
def test_a_card_names_each_value_as_the_language_writes_it(browser, server, locale, colon):
    """On a phone a table's row is a card whose values are named by their column: "Village: "
    in English, "Village : " in French (a colon set off by a narrow no-break space)."""
    context, page = _open(browser, server.url, "olga", locale)
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(server.url + "/alerts")
    named = page.locator("table.cards tbody tr").first.evaluate(
        """tr => [...tr.querySelectorAll('td[data-label]')].map(
             td => [td.dataset.label, getComputedStyle(td, '::before').content])"""
    )
    shown = [(label, content) for label, content in named if content != "none"]
    assert len(shown) >= 3, named  # a checkbox's cell names nothing
    assert all(content == f'"{label}{colon}"' for label, content in shown), shown
    context.close()
