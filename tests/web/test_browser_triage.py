"""The alert list as a work list in a real browser (issue 17): it fits a phone and a tablet, and
an officer ticks every alert of the page at once and acknowledges them in one go."""

from __future__ import annotations

import datetime as dt

import pytest
from playwright.sync_api import expect

from clms.db import session_scope
from tests import builders as b
from tests.browser import BROWSER_MARKS, LiveServer, expect_flash, overflows_horizontally, sign_in

pytestmark = BROWSER_MARKS


@pytest.fixture
def queue(app, places, make_user):
    """Olga (officer, CI-D1) with four new alerts in V1 and V2."""
    make_user("olga", "officer", areas=["CI-D1"])
    now = dt.datetime.now(dt.UTC)
    with session_scope(app) as s:
        for n, village in enumerate(("V1", "V1", "V2", "V2")):
            kid = b.child(s, b.household(s, village), f"Child {n}", sex="female")
            b.alert(s, kid, category="hazardous", created_at=now - dt.timedelta(hours=n + 1))
    live = LiveServer(app)
    yield live
    live.close()


@pytest.mark.parametrize("width", [1366, 768, 390])
def test_the_list_fits_and_the_chosen_alerts_are_acknowledged_at_once(browser, queue, width):
    context = browser.new_context(viewport={"width": width, "height": 900}, locale="en-GB")
    context.set_default_timeout(10_000)
    page = context.new_page()
    sign_in(page, queue.url, "olga")
    page.goto(f"{queue.url}/alerts")
    assert not overflows_horizontally(page)
    last = page.locator("td.deadline").last
    box = last.bounding_box()
    assert box is not None and box["x"] + box["width"] <= width  # the deadline is never cut
    assert page.locator("td", has_text="Gnamagui").count() == 2  # the village's name
    page.get_by_role("checkbox", name="Choose every alert of this page").check()
    expect(page.locator('input[name="alert"]:checked')).to_have_count(4)
    page.get_by_role("button", name="Acknowledge the chosen alerts").click()
    expect_flash(page, "4 alerts acknowledged")
    expect(page.locator("tbody")).to_contain_text("Acknowledged")
    context.close()
