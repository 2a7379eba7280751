"""A working day in a real browser (issue 16): each person signs in, finds their work on the home
page, does it, and sees it leave the queue; at desktop width and on a phone, in English and
French. The screenshots go to docs/screenshots/ (the README shows them)."""

from __future__ import annotations

import datetime as dt

import pytest
from playwright.sync_api import expect

from clms.db import session_scope
from clms.models import ActionPlan, LoginThrottle, User
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
from tests.conftest import PASSWORD

pytestmark = BROWSER_MARKS

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
    # always chosen: the language chosen is the person's, kept from their last session
    if page.locator("html").get_attribute("lang") != locale:
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


@pytest.fixture
def monitor_and_admin(app, places, make_user):
    """Awa (monitor, V1) with a follow-up visit due in her village; Ada (admin) with Olga's
    account locked after wrong passwords and a submission held for a GPS point far from its
    village."""
    make_user("awa", "monitor", areas=["V1"])
    make_user("olga", "officer", areas=["CI-D1"])
    make_user("ada", "admin")
    now = dt.datetime.now(dt.UTC)
    with session_scope(app) as s:
        due = b.case(s, b.child(s, b.household(s, "V1"), "Aya Traoré"), officer="olga",
                     state="implementation", step_due_at=now + 30 * DAY,
                     next_followup_due_at=now + 2 * DAY)  # fmt: skip
        locked_until = now + dt.timedelta(minutes=15)
        s.add(LoginThrottle(scope="user", key="olga", count=5, window_start=now,
                            locked_until=locked_until, updated_at=now))  # fmt: skip
        held = b.submission(s, status="review", review_reasons=[
            {"path": "gps", "value": "5.9 -6.1", "problem": "", "code": "far_gps"}])  # fmt: skip
        ids = {"case": due.case_number, "held": held.id, "olga": "olga"}
    live = LiveServer(app)
    yield live, ids
    live.close()


def test_a_monitor_finds_the_visits_due_and_sets_up_a_phone_from_home(browser, monitor_and_admin):
    live, ids = monitor_and_admin
    # on her phone, in French: the follow-up visit due in her village, and her phone's QR code
    context, page = _open(browser, live.url, "awa", PHONE, "fr")
    expect(_section(page, "Visites de suivi à faire")).to_contain_text(ids["case"])
    expect(page.get_by_role("heading", name="Votre téléphone")).to_be_visible()
    assert not overflows_horizontally(page)
    screenshot(page, "day-monitor-fr-phone")
    page.get_by_label("Votre mot de passe").fill(PASSWORD)  # a session alone sets up no phone
    page.get_by_role("button", name="Afficher un code QR pour mon téléphone").click()
    expect(page.locator("svg.segno")).to_be_visible()
    url = page.locator("p.secret code").text_content()  # under "No camera?", folded
    assert "/key/" in url
    assert not overflows_horizontally(page)
    screenshot(page, "day-monitor-qr-fr-phone")
    page.get_by_role("link", name="Terminé : retour à mon travail").click()
    expect(page.locator("svg.segno")).to_have_count(0)  # shown once
    context.close()
    # the same home at desktop width, in English
    context, page = _open(browser, live.url, "awa", DESKTOP)
    expect(_section(page, "Follow-up visits due")).to_contain_text(ids["case"])
    assert not overflows_horizontally(page)
    context.close()


def test_an_administrator_unlocks_an_account_and_sees_the_held_submission(
    browser, monitor_and_admin
):
    live, ids = monitor_and_admin
    context, page = _open(browser, live.url, "ada", DESKTOP)
    locked = _section(page, "Accounts locked after failed sign-ins")
    expect(locked).to_contain_text(ids["olga"])
    held = _section(page, "Submissions held for review")
    expect(held).to_contain_text("GPS point far from the village")
    assert not overflows_horizontally(page)
    screenshot(page, "day-admin")
    # the locked account opens the person's page, where it is unlocked; it leaves the queue
    locked.get_by_role("link", name=ids["olga"]).click()
    page.get_by_role("button", name="Unlock now").click()
    expect_flash(page, "unlocked")
    page.goto(f"{live.url}/")
    expect(_section(page, "Accounts locked after failed sign-ins")).to_have_count(0)
    # the held submission leads to the review queue, where the reason is in plain words
    _section(page, "Submissions held for review").get_by_role("link", name="See all 1").click()
    expect(page.locator("main")).to_contain_text("GPS point far from the village")
    context.close()
    # the administrator's home on a phone, in French
    context, page = _open(browser, live.url, "ada", PHONE, "fr")
    expect(_section(page, "Soumissions retenues pour vérification")).to_be_visible()
    assert not overflows_horizontally(page)
    screenshot(page, "day-admin-fr-phone")
    context.close()


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
@pytest.mark.parametrize("locale", ["en", "fr"])
def test_every_roles_home_fits_the_screen_in_both_languages(browser, day, locale, viewport):
    live, _ids = day
    for username in ("olga", "sam", "pat"):
        context, page = _open(browser, live.url, username, viewport, locale)
        expect(page.locator("section.work").first).to_be_visible()
        assert page.locator("html").get_attribute("lang") == locale
        assert not overflows_horizontally(page), (username, locale, viewport)
        context.close()
