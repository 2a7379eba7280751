"""A working day in a real browser (issue 16): each person signs in, finds their work on the home
page, does it, and sees it leave the queue; at desktop width and on a phone, in English and
French. The screenshots go to docs/screenshots/ (the README shows them)."""

from __future__ import annotations

import datetime as dt

import pytest
from playwright.sync_api import expect

from clms.db import session_scope
from clms.models import ActionPlan, User
from tests import builders as b
from tests.browser import (
    BROWSER_MARKS,
    DESKTOP,
    LiveServer,
    expect_flash,
    overflows_horizontally,
    screenshot,
    sign_in,
)

pytestmark = BROWSER_MARKS

PHONE = {"width": 390, "height": 844}
DAY = dt.timedelta(days=1)


@pytest.fixture
def day(app, places, make_user):
    """Olga (officer, CI-D1) with an alert not acknowledged in time; Sam (supervisor, CI-D1) with
    a plan to approve; Pat (provider) with a referral to answer."""
    make_user("olga", "officer", areas=["CI-D1"])
    make_user("sam", "supervisor", areas=["CI-D1"])
    make_user("pat", "provider")
    now = dt.datetime.now(dt.UTC)
    with session_scope(app) as s:
        olga = s.query(User).filter_by(username="olga").one()
        kid = b.child(s, b.household(s, "V1"), "Aya Traoré")
        alert = b.alert(s, kid, category="child_labour", created_at=now - 8 * DAY)
        planned = b.case(s, b.child(s, b.household(s, "V2"), "Koffi Yao"), officer="olga",
                         state="action_plan", risk_level="high", step_due_at=now + DAY)  # fmt: skip
        s.add(ActionPlan(case_id=planned.id, status="submitted", needs_approval=True,
                         submitted_at=now - DAY, submitted_by_id=olga.id))  # fmt: skip
        working = b.case(s, b.child(s, b.household(s, "V1"), "Awa Koné"), officer="olga",
                         state="implementation", step_due_at=now + 30 * DAY)  # fmt: skip
        referral = b.referral(s, working, "TEST-PROVIDER", created_at=now - DAY,
                              shared=["first_name", "age"])  # fmt: skip
        ids = {"alert": alert.id, "child": kid.child_uid, "case": planned.case_number,
               "referral": referral.id}  # fmt: skip
    live = LiveServer(app)
    yield live, ids
    live.close()


def _open(browser, base_url: str, username: str, viewport: dict, locale: str = "en"):
    context = browser.new_context(viewport=viewport, locale="en-GB")
    context.set_default_timeout(10_000)
    page = context.new_page()
    sign_in(page, base_url, username)
    if locale != "en":
        page.select_option("#locale", locale)
        page.get_by_role("button", name="Change").click()
    page.goto(f"{base_url}/")
    return context, page


def _section(page, title: str):
    return page.locator("section.work", has=page.get_by_role("heading", name=title))


def test_each_role_finds_its_work_at_home_does_it_and_sees_it_leave(browser, day):
    live, ids = day
    # the officer acknowledges the late alert from her home page, on a phone
    context, page = _open(browser, live.url, "olga", PHONE)
    overdue = _section(page, "Overdue alerts")
    expect(overdue).to_contain_text(ids["child"])
    assert not overflows_horizontally(page)
    screenshot(page, "day-officer-phone")
    overdue.get_by_role("link", name=ids["child"]).click()
    page.get_by_role("button", name="Acknowledge").click()
    expect_flash(page, "acknowledged")
    page.goto(f"{live.url}/")
    expect(_section(page, "Overdue alerts")).to_have_count(0)
    expect(_section(page, "New alerts")).to_have_count(0)
    expect(_section(page, "Your cases with a step due soon")).to_contain_text(ids["case"])
    context.close()

    # the supervisor approves the plan from the queue, at desktop width, in French
    context, page = _open(browser, live.url, "sam", DESKTOP, "fr")
    plans = _section(page, "Plans en attente de votre approbation")
    expect(plans).to_contain_text(ids["case"])
    plans.locator("summary", has_text="Décider").click()
    screenshot(page, "day-supervisor-fr")
    plans.get_by_role("button", name="Approuver le plan").click()
    expect_flash(page, "Plan approuvé")
    expect(_section(page, "Plans en attente de votre approbation")).to_have_count(0)
    context.close()

    # the provider accepts the referral, then finds it among the services to record
    context, page = _open(browser, live.url, "pat", PHONE)
    waiting = _section(page, "Referrals waiting for your answer")
    expect(waiting).to_contain_text(f"#{ids['referral']}")
    screenshot(page, "day-provider-phone")
    waiting.get_by_role("link", name=f"#{ids['referral']}").click()
    page.get_by_role("button", name="Accept the referral").click()
    expect_flash(page, "Referral accepted")
    page.goto(f"{live.url}/")
    expect(_section(page, "Referrals waiting for your answer")).to_have_count(0)
    expect(_section(page, "Accepted referrals: record the service")).to_contain_text(
        f"#{ids['referral']}"
    )
    context.close()
