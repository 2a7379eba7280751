"""The whole remediation journey of issue 4 in a real browser, through the pages, as people do it.

The application is served for real on a localhost port and Debian's chromium (headless, driven by
Playwright) signs in, clicks and fills the forms. The phones' part, a household visit and the
follow-up visits, arrives over OpenRosa as from ODK Collect; the processor then runs as the
scheduler would. Along the way the main pages are captured into ``docs/screenshots/`` (each run
replaces them): they are the pictures of the README.

- an officer triages the alert a household visit raised and opens a case, verifies it, assesses
  the child's best interests, plans a service with a provider, records the consent and refers;
- the provider accepts the referral and records the service;
- two follow-up visits find the child at school and out of work: the system proposes closure;
- a supervisor approves the closure with its report; the case shows closed, and its timeline
  every step with who took it;
- the case page in French through the language switch, and at tablet width.

The journey runs on one database (SQLite when the run has it; see ``pytest_generate_tests``).
"""

from __future__ import annotations

import datetime as dt
import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from clms.db import session_scope
from clms.i18n import catalogue
from clms.models import Alert, Case, Referral
from tests.browser import (
    BROWSER_MARKS,
    DESKTOP,
    TABLET,
    LiveServer,
    expect_flash,
    overflows_horizontally,
    screenshot,
    sign_in,
)
from tests.cases import test_cases
from tests.submissions import child, followup_xml, household_xml, live_version

pytestmark = BROWSER_MARKS

# services, providers and people of every role (see tests/cases/test_cases.py): olga, officer of
# CI-D1; sam, supervisor of CI-R1; pat, provider at the school SCH-GN
world = test_cases.world


@pytest.fixture
def server(app):
    """The application, on the test database, served on a free localhost port."""
    live = LiveServer(app)
    yield live
    live.close()


@pytest.fixture
def person(browser, server):
    """``person("olga")``: a fresh browser window (own cookies) with that user signed in."""
    contexts = []

    def open_as(username: str):
        context = browser.new_context(viewport=DESKTOP, locale="en-GB")
        context.set_default_timeout(10_000)
        contexts.append(context)
        page = context.new_page()
        sign_in(page, server.url, username)
        return page

    yield open_as
    for context in contexts:
        context.close()


def _stamp(when: dt.datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.000+00:00")


def _timeline(page) -> list[tuple[str, str]]:
    """The case's timeline, oldest first, as (what happened, who did it)."""
    lines = page.locator("#timeline ol.timeline > li > p").all_inner_texts()
    rows = []
    for line in reversed(lines):
        _when, what, who, *_states = (part.strip() for part in line.split(" · "))
        rows.append((what, who))
    return rows


def test_the_remediation_journey_through_the_pages(
    app, world, phone, version, process, server, person
):
    # two follow-up visits found the child out of work; here they come minutes apart, not the
    # default 30 days (the criteria's other conditions are unchanged)
    app.config["CASE_CLOSURE_GAP_DAYS"] = 0
    today = dt.datetime.now(dt.UTC).date()

    # --- a monitor's household visit finds Aya (12) working 20 hours on the farm ---------------
    visit = household_xml(
        version,
        household_code="HH-V1-014",
        end=_stamp(dt.datetime.now(dt.UTC) - dt.timedelta(hours=3)),
        children=[
            child(child_name="Aya Koné", age=12, work_activities="own_farm", work_hours_7d=20)
        ],
    )
    assert phone.submit(visit).status_code == 201
    process()
    with session_scope(app) as s:
        alert = s.scalar(select(Alert))
        assert (alert.category, alert.status) == ("child_labour", "new")
        alert_id = alert.id

    # --- 1. the officer signs in, sees the queue and triages the alert --------------------------
    olga = person("olga")
    olga.get_by_role("navigation", name="Main").get_by_role("link", name="Alerts").click()
    expect(olga.get_by_role("heading", name="Alerts", exact=True)).to_be_visible()
    row = olga.get_by_role("row").filter(has_text="HH-V1-014")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("child labour")
    screenshot(olga, "alert-queue")
    row.get_by_role("link", name=f"#{alert_id}").click()
    expect(olga.get_by_role("heading", name=re.compile(f"Alert #{alert_id}"))).to_be_visible()
    olga.get_by_role("button", name="Acknowledge").click()
    expect_flash(olga, "Alert acknowledged.")
    olga.get_by_label("Assign to an officer of Gnamagui").select_option("olga")
    olga.get_by_role("button", name="Assign", exact=True).click()
    expect_flash(olga, "Alert assigned to olga.")
    history = olga.get_by_role("row").filter(has_text="olga")  # the alert's history: who, what
    expect(history.filter(has_text="Acknowledged")).to_have_count(1)
    expect(history.filter(has_text="Assigned")).to_have_count(1)

    # --- 2. she opens a case and takes it through verification, assessment and the plan ---------
    olga.get_by_role("button", name="Open a case").click()
    expect_flash(olga, "opened: verify the allegation")
    with session_scope(app) as s:
        case = s.scalar(select(Case))
        case_id, number = case.id, case.case_number
    case_url = f"{server.url}/cases/{case_id}"
    expect(olga).to_have_url(case_url)
    expect(olga.get_by_role("heading", name=re.compile(f"Case {number}"))).to_be_visible()

    olga.get_by_role("link", name="Record the verification visit").click()
    olga.get_by_role("radio", name="Yes: confirmed").check()
    olga.get_by_label("Date of your visit").fill(today.isoformat())
    olga.get_by_label("What you found").fill(
        "Aya was weeding the cocoa farm with a machete; her uncle says she helps every day."
    )
    olga.get_by_role("button", name="Record the verification").click()
    expect_flash(olga, "Verification recorded.")

    olga.get_by_role("link", name="Complete the best-interest assessment").click()
    olga.get_by_label("The child's own views").fill(
        "Je veux retourner à l'école. I do not want to carry the machete any more."
    )
    olga.get_by_label("Family situation").fill(
        "Lives with her uncle's family; her parents farm in another village."
    )
    olga.get_by_role("radio", name="dropped out").check()
    olga.get_by_label("About school").fill("Left CE1 in March; the school is 4 km away.")
    olga.get_by_role("radio", name="safe", exact=True).check()
    olga.get_by_role("radio", name="medium", exact=True).check()
    olga.get_by_role("checkbox", name="education", exact=True).check()
    olga.get_by_role("radio", name="remediation", exact=True).check()
    screenshot(olga, "case-assessment")
    olga.get_by_role("button", name="Record the assessment").click()
    expect_flash(olga, "Assessment recorded.")

    olga.get_by_role("link", name="Open the plan").click()
    olga.get_by_label("Service from the catalogue").select_option("school_enrolment")
    olga.get_by_label("Provider who delivers it").select_option("SCH-GN")
    olga.get_by_label("Due date").fill((today + dt.timedelta(days=20)).isoformat())
    olga.get_by_label("Notes").fill("Back to CE1 at the start of next term.")
    olga.get_by_role("button", name="Add to the plan").click()
    expect_flash(olga, "Service added to the plan.")
    expect(olga.get_by_role("row").filter(has_text="École primaire de Gnamagui")).to_have_count(1)
    screenshot(olga, "case-plan")
    olga.get_by_role("button", name="Submit the plan").click()
    expect_flash(olga, "Plan submitted.")
    expect(olga).to_have_url(case_url)  # a medium risk: the plan is in force at once

    olga.get_by_role("link", name="Record a consent").click()
    olga.get_by_label("Provider").select_option("SCH-GN")
    olga.get_by_role("radio", name="the child and a parent or guardian").check()
    olga.get_by_role("radio", name="spoken").check()
    olga.get_by_role("button", name="Record the consent").click()
    expect_flash(olga, "Consent recorded.")

    olga.locator("#plan").get_by_role("link", name="Refer", exact=True).click()
    expect_flash(olga, "Consent recorded: the provider will see")
    olga.get_by_label("Message to the provider").fill("Aya needs a place in CE1 this term.")
    olga.get_by_role("button", name="Send the referral").click()
    expect_flash(olga, "Referral sent.")
    referrals = olga.locator("#referrals")
    assert "waiting for an answer" in referrals.inner_text()
    screenshot(olga, "case")

    # --- 3. the provider sees the referral, accepts it and records the service -----------------
    pat = person("pat")
    pat.get_by_role("navigation", name="Main").get_by_role("link", name="Referrals").click()
    row = pat.get_by_role("row").filter(has_text="Aya")
    expect(row).to_have_count(1)
    with session_scope(app) as s:
        referral_id = s.scalar(select(Referral.id))
    row.get_by_role("link", name=str(referral_id)).click()
    expect(pat.get_by_role("heading", name=re.compile(f"Referral {referral_id}"))).to_be_visible()
    detail = pat.locator("main").inner_text()
    # what the consent covers (first name, age, sex, village), not the family name
    assert "Aya" in detail and "Gnamagui" in detail and "Koné" not in detail
    assert "Aya needs a place in CE1 this term." in detail
    screenshot(pat, "provider-referral")
    pat.get_by_role("button", name="Accept the referral").click()
    expect_flash(pat, "Referral accepted.")
    pat.get_by_role("radio", name="service provided").check()
    pat.get_by_label("Date the service was provided").fill(today.isoformat())
    pat.get_by_label("Note for the case officer").fill("Enrolled in CE1; uniform given.")
    pat.get_by_role("button", name="Record the outcome").click()
    expect_flash(pat, "Thank you: the outcome is recorded.")

    olga.reload()
    assert "service provided" in olga.locator("#referrals").inner_text()
    # the service is delivered; only the follow-ups are missing
    assert "2 follow-up visits at which the child was seen are needed (0 so far)" in (
        olga.locator("section.next").inner_text()
    )

    # --- 4. the follow-up visits arrive over OpenRosa: at school, out of work -------------------
    followup = live_version(app, "clms_followup")
    for minutes in (1, 2):  # visits count from the case's opening: date them after it
        xml = followup_xml(
            followup,
            number,
            end=_stamp(dt.datetime.now(dt.UTC) + dt.timedelta(minutes=minutes)),
            chore_hours_7d=5,
            services_received="school_enrolment",
        )
        assert phone.submit(xml).status_code == 201
    with app.app_context():  # as under the scheduler: the workflow reads the app's settings
        process()
    olga.reload()
    expect(olga.locator("h1 .badge").first).to_have_text("closure review")
    assert "a supervisor reviews the case" in olga.locator("section.next").inner_text()

    # --- 5. the supervisor approves the closure with its report --------------------------------
    sam = person("sam")
    sam.get_by_role("navigation", name="Main").get_by_role("link", name="Cases").click()
    sam.get_by_role("link", name=number).click()
    sam.get_by_role("link", name="Review the closure").click()
    sam.get_by_role("radio", name="remediated: no longer in child labour").check()
    sam.get_by_label("Lessons learned").fill(
        "Enrolment with a uniform was enough once the uncle hired help for the weeding."
    )
    sam.get_by_role("checkbox", name="school costs").check()
    sam.get_by_role("checkbox", name="shortage of adult labour").check()
    asked = []
    sam.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.accept()))
    sam.get_by_role("button", name="Approve the closure").click()
    expect_flash(sam, "Case closed.")
    # closing is asked first, naming the case
    assert asked and number in asked[0]
    expect(sam).to_have_url(case_url)
    expect(sam.locator("h1 .badge").first).to_have_text("closed")
    closure = sam.locator("section.next").inner_text()
    assert "remediated: no longer in child labour" in closure
    assert "school costs, shortage of adult labour" in closure
    assert _timeline(sam) == [
        ("Case opened from an alert", "olga"),
        ("Verification visit recorded", "olga"),
        ("Best-interest assessment recorded", "olga"),
        ("Service added to the plan", "olga"),
        ("Plan submitted", "olga"),
        ("Consent recorded", "olga"),
        ("Referred to a provider", "olga"),
        ("Referral accepted by the provider", "pat"),
        ("Provider recorded the outcome", "pat"),
        ("Follow-up visit", "awa (monitor's visit)"),
        ("Follow-up visit", "awa (monitor's visit)"),
        ("Closure proposed", "the system"),
        ("Case closed", "sam"),
    ]
    screenshot(sam, "case-closed-timeline")

    sam.get_by_role("navigation", name="Main").get_by_role("link", name="Indicators").click()
    expect(sam.get_by_role("heading", name="Indicators", level=1)).to_be_visible()
    screenshot(sam, "kpis")

    # --- the same case page in French, through the language switch -----------------------------
    sam.goto(case_url)
    sam.get_by_label("Language").select_option("fr")
    sam.get_by_role("button", name="Change").click()
    expect(sam.locator("html")).to_have_attribute("lang", "fr")
    expect(sam).to_have_url(case_url)
    if catalogue("fr").get("Next step"):  # once the French catalogue has the case pages
        expect(sam.get_by_role("heading", name="Prochaine étape")).to_be_visible()
        expect(sam.locator("main")).not_to_contain_text("Next step")

    # --- and at tablet width: no page wider than the screen ------------------------------------
    wide = []
    for page, path in (
        (olga, f"/cases/{case_id}"),
        (olga, "/alerts"),
        (olga, f"/alerts/{alert_id}"),
        (olga, "/cases"),
        (olga, f"/cases/{case_id}/assess"),
        (olga, f"/cases/{case_id}/plan"),
        (olga, f"/cases/{case_id}/consent"),
        (pat, "/referrals"),
        (pat, f"/referrals/{referral_id}"),
    ):
        page.set_viewport_size(TABLET)
        page.goto(server.url + path)
        if overflows_horizontally(page):
            wide.append(path)
    assert wide == [], f"pages that scroll sideways at 800 px: {wide}"
