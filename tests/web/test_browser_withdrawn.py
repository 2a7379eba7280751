"""A case whose source ODK Central deleted, in a real browser (issue 18): the officer finds it on
her home page, reads the flag on the case (who withdrew what, when and why), and acknowledges it
with a note; at desktop width and on a phone, in English and French. The screenshots go to
docs/screenshots/."""

from __future__ import annotations

import datetime as dt

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from clms.db import session_scope
from clms.intake.withdraw import withdraw_submission
from clms.models import ChildVisit, Classification, Submission
from tests import builders as b
from tests.browser import (
    BROWSER_MARKS,
    DESKTOP,
    PHONE,
    LiveServer,
    expect_flash,
    overflows_horizontally,
    screenshot,
    sign_in,
)

pytestmark = BROWSER_MARKS

HOME = {"en": "Your cases whose source was withdrawn: read the flag",
        "fr": "Vos dossiers dont la source a été retirée : lisez le signalement"}  # fmt: skip
BANNER = {"en": "A submission behind this case was withdrawn",
          "fr": "Une soumission à l’origine de ce dossier a été retirée"}  # fmt: skip


@pytest.fixture
def flagged(app, places, make_user):
    """Olga's case of Aya, opened from the alert of a visit ODK Central then deleted."""
    make_user("olga", "officer", areas=["CI-D1"])
    now = dt.datetime.now(dt.UTC)
    with session_scope(app) as s:
        kid = b.child(s, b.household(s, "V1"), "Aya Traoré")
        visit = b.visit(s, kid.household, now - dt.timedelta(days=3), [(kid, "hazardous")])
        sub = s.get(Submission, visit.submission_id)
        sub.source, sub.instance_id = "central", "uuid:deleted-on-central"
        classification = s.scalar(
            select(Classification.id)
            .join(ChildVisit, ChildVisit.id == Classification.child_visit_id)
            .where(ChildVisit.visit_id == visit.id)
        )
        alert = b.alert(s, kid, category="hazardous", status="case_opened",
                        classification_id=classification)  # fmt: skip
        case = b.case(s, kid, officer="olga", state="assessment", alert_id=alert.id,
                      step_due_at=now + dt.timedelta(days=10))  # fmt: skip
        ids = {"case": case.id, "number": case.case_number, "submission": sub.id}
    with session_scope(app) as s:
        withdraw_submission(s, ids["submission"], "deleted", detail="deleted on Central")
    live = LiveServer(app)
    yield live, ids
    live.close()


def _open(browser, base_url: str, viewport: dict, locale: str):
    context = browser.new_context(viewport=viewport, locale="en-GB")
    context.set_default_timeout(10_000)
    page = context.new_page()
    sign_in(page, base_url, "olga")
    if page.locator("html").get_attribute("lang") != locale:
        page.select_option("#locale", locale)
        page.get_by_role("button", name="Change" if locale == "fr" else "Changer").click()
    page.goto(f"{base_url}/")
    return context, page


@pytest.mark.parametrize("locale", ["en", "fr"])
@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_the_officer_reads_the_flag_and_acknowledges_it(browser, flagged, locale, viewport):
    live, ids = flagged
    context, page = _open(browser, live.url, viewport, locale)
    section = page.locator("section.work", has=page.get_by_role("heading", name=HOME[locale]))
    expect(section).to_contain_text(ids["number"])
    section.get_by_role("link", name=ids["number"]).click()
    banner = page.locator("section#withdrawn")
    expect(banner.get_by_role("heading", name=BANNER[locale])).to_be_visible()
    expect(banner).to_contain_text("uuid:deleted-on-central")
    expect(banner).to_contain_text("ODK Central")
    expect(banner).to_contain_text("deleted" if locale == "en" else "supprimée")
    assert not overflows_horizontally(page), (locale, viewport)
    width = "phone" if viewport is PHONE else "desktop"
    screenshot(page, f"withdrawn-case-{locale}-{width}")
    if locale == "en" and viewport is DESKTOP:
        banner.get_by_role("textbox").fill("Aya seen at home on Monday: the case goes on")
        banner.get_by_role("button", name="Acknowledge the withdrawal").click()
        expect_flash(page, "Withdrawal acknowledged")
        expect(page.locator("section#withdrawn")).to_contain_text("Read by olga")
        page.goto(f"{live.url}/")
        expect(page.get_by_role("heading", name=HOME["en"])).to_have_count(0)
    context.close()
