"""Two phones that updated a case from the same version, in a real browser: the officer sees both
updates on the case page (who, when, the answer they disagree on, marked), on a desktop and on a
phone, in English and in French, and marks the conflict resolved with a note."""

from __future__ import annotations

import datetime as dt

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from clms.cases.entities import EntityUpdate, apply_followups, ensure_entities
from clms.db import session_scope
from clms.models import CaseEntity, User
from forms.parse import EntityBlock
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

T0 = dt.datetime(2026, 6, 10, 9, tzinfo=dt.UTC)


@pytest.fixture
def live(app, places, make_user):
    make_user("olga", "officer", areas=["CI-D1"])
    make_user("awa", "monitor", areas=["CI-D1"])
    make_user("zoe", "monitor", areas=["CI-D1"])
    with session_scope(app) as s:
        case = b.case(s, b.child(s, b.household(s, "V1"), "Aya Koné"), state="implementation",
                      officer="olga")  # fmt: skip
        entity = ensure_entities(s, [case.id])[case.id]
        people = {u.username: u for u in s.scalars(select(User))}
        for hours, (who, present) in enumerate((("awa", "yes"), ("zoe", "no"))):
            sub = b.submission(s)
            blk = EntityBlock("cases", entity.uuid, False, True, 1, None, None, None,
                              {"child_present": present, "attends_school": "yes",
                               "work_hours_7d": "0", "last_followup": "2026-06-10"})  # fmt: skip
            apply_followups(s, [EntityUpdate(sub.id, people[who], T0 + dt.timedelta(hours=hours),
                                             blk)])  # fmt: skip
        case_id = case.id
    server = LiveServer(app)
    server.case_id = case_id
    yield server
    server.close()


@pytest.mark.parametrize(
    ("locale", "viewport", "heading", "seen", "button", "done"),
    [
        ("en", DESKTOP, "Follow-ups that did not see each other", "Child seen", "Mark resolved",
         "Conflict between phones marked resolved."),
        ("fr", PHONE, "Des suivis qui ne se sont pas vus", "Enfant vu", "Marquer comme résolu",
         "Conflit entre téléphones marqué comme résolu."),
    ],
)  # fmt: skip
def test_the_officer_sees_both_updates_and_resolves_the_conflict(
    browser, live, app, locale, viewport, heading, seen, button, done
):
    context = browser.new_context(viewport=viewport, locale="en-GB")
    context.set_default_timeout(10_000)
    page = context.new_page()
    sign_in(page, live.url, "olga")
    if locale == "fr":
        page.locator("#locale").select_option("fr")
        page.locator("form.language button").click()
        expect(page.locator("html")).to_have_attribute("lang", "fr")
    page.goto(f"{live.url}/cases/{live.case_id}")
    section = page.locator("#entity-conflict")
    expect(section.get_by_role("heading", name=heading)).to_be_visible()
    expect(section.get_by_role("columnheader", name=seen)).to_be_visible()
    rows = section.locator("tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text("awa")
    expect(rows.nth(1)).to_contain_text("zoe")
    # the answer they disagree on is marked in both rows, and only that one
    expect(section.locator("mark")).to_have_count(2)
    expect(rows.nth(0).locator("mark")).to_have_text("Yes" if locale == "en" else "Oui")
    expect(rows.nth(1).locator("mark")).to_have_text("No" if locale == "en" else "Non")
    assert not overflows_horizontally(page)
    screenshot(page, f"issue18-entity-conflict-{locale}-{viewport['width']}")

    # a note is required (the browser asks for it), then the conflict is resolved
    section.get_by_role("button", name=button).click()
    expect(section).to_be_visible()
    section.locator("textarea[name=note]").fill("Zoe came after Aya had left for the farm.")
    section.get_by_role("button", name=button).click()
    expect_flash(page, done)
    expect(page.locator("#entity-conflict")).to_have_count(0)
    with session_scope(app) as s:
        assert s.scalar(select(CaseEntity.conflict)) is None
    context.close()
