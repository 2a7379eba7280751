"""Notifications in a real browser: an officer addresses a case note to her supervisor; he sees
the count in the header and the note on his home page, opens it (the case's timeline), and the
count goes down; he chooses what comes by email. At desktop width and on a phone, in English and
French. The screenshots go to /tmp/clms-notices/ (not to the README's)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from playwright.sync_api import expect

from clms.db import session_scope
from clms.models import NoticePreference, User
from tests import builders as b
from tests.browser import BROWSER_MARKS, DESKTOP, PHONE, LiveServer, expect_flash, sign_in
from tests.browser import overflows_horizontally as too_wide

pytestmark = BROWSER_MARKS

SHOTS = Path("/tmp/clms-notices")
DAY = dt.timedelta(days=1)


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True, animations="disabled")


@pytest.fixture
def team(app, places, make_user):
    make_user("olga", "officer", areas=["CI-D1"], email="olga@example.org")
    make_user("sam", "supervisor", areas=["CI-D1"], email="sam@example.org")
    now = dt.datetime.now(dt.UTC)
    with session_scope(app) as s:
        case = b.case(s, b.child(s, b.household(s, "V1"), "Aya Traoré"), officer="olga",
                      state="implementation", step_due_at=now + 30 * DAY)  # fmt: skip
        ids = {"case": case.id, "number": case.case_number}
    live = LiveServer(app)
    yield live, ids
    live.close()


def _open(browser, base_url, username, viewport, locale="en"):
    context = browser.new_context(viewport=viewport, locale="en-GB")
    context.set_default_timeout(10_000)
    page = context.new_page()
    sign_in(page, base_url, username)
    if locale != "en":
        page.select_option("#locale", locale)
        page.get_by_role("button", name="Change" if locale == "fr" else "Changer").click()
    page.goto(f"{base_url}/")
    return context, page


def test_a_note_for_the_supervisor_from_the_case_page_to_his_notifications(app, browser, team):
    live, ids = team
    # the officer, on a phone, writes a note for her supervisor
    context, page = _open(browser, live.url, "olga", PHONE)
    page.goto(f"{live.url}/cases/{ids['case']}")
    page.get_by_label("Add a note").fill("The uncle asks to meet a supervisor this week.")
    page.get_by_label("For (optional: they are notified)").select_option("sam")
    shot(page, "note-form-phone")
    page.get_by_role("button", name="Add the note").click()
    expect_flash(page, "Note added")
    assert not too_wide(page)
    context.close()

    # the supervisor, at desktop width: the count, his home's section, the list
    context, page = _open(browser, live.url, "sam", DESKTOP)
    badge = page.locator("header a.notices .badge")
    expect(badge).to_contain_text("1")
    section = page.locator(
        "section.work", has=page.get_by_role("heading", name="Notes addressed to you")
    )
    expect(section).to_contain_text(ids["number"])
    expect(section).to_contain_text("from olga")
    shot(page, "home-supervisor")
    page.locator("header a.notices").click()
    expect(page.locator("ul.notices li.unread")).to_contain_text(
        f"A note for you on case {ids['number']}"
    )
    shot(page, "list-desktop")
    page.get_by_role("link", name=f"A note for you on case {ids['number']}").click()
    expect(page).to_have_url(f"{live.url}/cases/{ids['case']}#timeline")
    expect(page.locator("#timeline")).to_contain_text("The uncle asks to meet a supervisor")
    expect(page.locator("header a.notices .badge")).to_contain_text("0")
    page.goto(f"{live.url}/")
    expect(section).to_have_count(0)

    # in French, on a phone: the list and the email settings
    context.close()
    context, page = _open(browser, live.url, "sam", PHONE, "fr")
    page.locator("header a.notices").click()
    expect(page.locator("ul.notices")).to_contain_text(
        f"Une note pour vous sur le cas {ids['number']}"
    )
    assert not too_wide(page)
    shot(page, "list-fr-phone")
    page.get_by_role("link", name="Choisir ce qui arrive aussi par courriel").click()
    page.locator("fieldset", has_text="Une note de cas qui vous est adressée").get_by_label(
        "Aussi par courriel"
    ).check()
    shot(page, "settings-fr-phone")
    assert not too_wide(page)
    page.get_by_role("button", name="Enregistrer").click()
    expect_flash(page, "Vos réglages de courriel sont enregistrés")
    context.close()
    context, page = _open(browser, live.url, "sam", DESKTOP)
    page.goto(f"{live.url}/notifications/settings")
    shot(page, "settings-desktop")
    context.close()
    with session_scope(app) as s:
        sam = s.query(User).filter_by(username="sam").one()
        choice = s.get(NoticePreference, (sam.id, "note"))
        assert choice is not None and choice.by_email is True
