"""Each role's home page is its work queue (clms.workday.home): what waits for the person, in
their scope, most urgent first, with counts and links to the items themselves."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import select

from clms.db import session_scope
from clms.models import (
    ActionPlan,
    EncryptedSubmission,
    JobRun,
    LoginThrottle,
    Notification,
    PullSource,
    User,
)
from clms.workday.home import SHOWN, home_of
from tests import builders as b
from tests.conftest import PASSWORD

NOW = dt.datetime(2025, 3, 10, 9, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)


def _user(s, username: str) -> User:
    return s.scalar(select(User).where(User.username == username))


def _kid(s, village: str, name: str = "Aya Traoré"):
    return b.child(s, b.household(s, village), name)


def _sections(home) -> dict[str, tuple[int, list]]:
    return {x.key: (x.count, [(line.kind, line.title) for line in x.lines]) for x in home.sections}


@pytest.fixture
def people(app, places, make_user):
    make_user("olga", "officer", areas=["CI-D1"])  # V1, V2
    make_user("omar", "officer", areas=["CI-D1"])
    make_user("otto", "officer", areas=["CI-D2"])  # V3, V4
    make_user("sam", "supervisor", areas=["CI-D1"])
    make_user("pat", "provider")  # TEST-PROVIDER
    make_user("awa", "monitor", areas=["V1"])
    make_user("ada", "admin")
    return app


def test_an_officer_sees_the_alerts_cases_follow_ups_and_referrals_waiting_in_scope(people):
    with session_scope(people) as s:
        late = b.alert(s, _kid(s, "V1"), category="worst_form", created_at=NOW - 3 * DAY)
        new = b.alert(s, _kid(s, "V2"), category="child_labour", created_at=NOW - DAY)
        b.alert(s, _kid(s, "V3"), category="worst_form", created_at=NOW - 3 * DAY)  # not hers
        b.alert(s, _kid(s, "V1"), category="hazardous", status="dismissed")
        overdue = b.case(s, _kid(s, "V1"), officer="olga", step_due_at=NOW - DAY)
        soon = b.case(s, _kid(s, "V2"), officer="olga", step_due_at=NOW + 2 * DAY)
        visit = b.case(s, _kid(s, "V1"), officer="olga", state="implementation",
                       step_due_at=NOW + 30 * DAY, next_followup_due_at=NOW + 5 * DAY)  # fmt: skip
        b.case(s, _kid(s, "V1"), officer="omar", step_due_at=NOW - DAY)  # a colleague's
        b.case(s, _kid(s, "V1"), officer="olga", state="closed", step_due_at=NOW - DAY)
        b.referral(s, visit, "TEST-PROVIDER", created_at=NOW - 5 * DAY)  # not answered in time
        # still hers, but in a village outside her scope now: not on her page (as on the lists)
        away = b.case(s, _kid(s, "V3"), officer="olga", step_due_at=NOW + 9 * DAY)
        b.referral(s, away, "TEST-PROVIDER", created_at=NOW - 5 * DAY)
        b.referral(s, soon, "TEST-PROVIDER", status="rejected", created_at=NOW - 3 * DAY,
                   responded_at=NOW - 2 * DAY, rejection_reason="full")  # fmt: skip
        b.referral(s, soon, "TEST-PROVIDER", status="accepted", created_at=NOW - 30 * DAY,
                   responded_at=NOW - 20 * DAY)  # answered long ago: not news  # fmt: skip
        home = home_of(s, _user(s, "olga"), now=NOW)
        found = _sections(home)
        assert list(found) == [
            "alerts_overdue", "alerts_new", "cases_overdue", "cases_due", "followups_due",
            "referrals_overdue", "referrals_answered",
        ]  # fmt: skip
        assert found["alerts_overdue"] == (
            1,
            [("alert", late.child.child_uid)],
        )
        # every new alert, overdue or not, as the alert list's "new" counts them
        assert found["alerts_new"] == (
            2,
            [("alert", late.child.child_uid), ("alert", new.child.child_uid)],
        )
        assert found["cases_overdue"] == (1, [("case", overdue.case_number)])
        assert found["cases_due"] == (1, [("case", soon.case_number)])
        assert found["followups_due"] == (1, [("case", visit.case_number)])
        assert found["referrals_overdue"] == (1, [("case", visit.case_number)])
        assert found["referrals_answered"] == (1, [("case", soon.case_number)])
        assert home.waiting == 8
        assert [x.key for x in home.sections if x.urgent] == [
            "alerts_overdue",
            "cases_overdue",
            "referrals_overdue",
        ]
        # otto works in the other department: none of it is his
        assert _sections(home_of(s, _user(s, "otto"), now=NOW)) == {
            "alerts_overdue": (1, [("alert", found_v3(s))]),
            "alerts_new": (1, [("alert", found_v3(s))]),
        }


def found_v3(s) -> str:
    from clms.models import Alert, Village

    return s.scalar(
        select(Alert).join(Village, Village.id == Alert.village_id).where(
            Village.code == "V3", Alert.status == "new")
    ).child.child_uid  # fmt: skip


def test_a_section_shows_the_first_lines_and_counts_them_all(people):
    with session_scope(people) as s:
        for n in range(SHOWN + 3):
            b.alert(s, _kid(s, "V1", f"Child {n}"), category="child_labour",
                    created_at=NOW - 10 * DAY - n * dt.timedelta(hours=1))  # fmt: skip
        b.alert(s, _kid(s, "V2", "Most severe"), category="worst_form", created_at=NOW - 3 * DAY)
        sections = {x.key: x for x in home_of(s, _user(s, "olga"), now=NOW).sections}
        assert set(sections) == {"alerts_overdue", "alerts_new"}  # all new, all late
        section = sections["alerts_overdue"]
        assert section.count == SHOWN + 4 and len(section.lines) == SHOWN
        # the most severe first, then the oldest
        assert section.lines[0].what == "critical"
        assert [line.what for line in section.lines[1:]] == ["medium"] * (SHOWN - 1)
        assert all(line.overdue for line in section.lines)


def test_a_supervisor_sees_approvals_escalations_and_the_teams_workload(people):
    with session_scope(people) as s:
        plan_case = b.case(s, _kid(s, "V1"), officer="olga", state="action_plan",
                           risk_level="high", step_due_at=NOW + DAY)  # fmt: skip
        s.add(ActionPlan(case_id=plan_case.id, status="submitted", needs_approval=True,
                         submitted_at=NOW - DAY))  # fmt: skip
        closing = b.case(s, _kid(s, "V2"), officer="omar", state="closure_review",
                         step_due_at=NOW - DAY,
                         step_escalated_at=NOW - dt.timedelta(hours=2))  # fmt: skip
        b.alert(s, _kid(s, "V1"), category="hazardous", created_at=NOW - 9 * DAY,
                escalated_at=NOW - DAY)  # fmt: skip
        b.case(s, _kid(s, "V3"), officer="otto", state="closure_review")  # another department
        b.case(s, _kid(s, "V1"), state="verification", step_due_at=NOW + DAY)  # nobody's yet
        # a referral the job escalated to him, still unanswered; and one answered since
        referred = b.case(s, _kid(s, "V1"), officer="olga", state="implementation")
        b.referral(s, referred, "TEST-PROVIDER", created_at=NOW - 5 * DAY,
                   escalated_at=NOW - DAY)  # fmt: skip
        b.referral(s, referred, "TEST-PROVIDER", status="done", done_at=NOW - DAY,
                   escalated_at=NOW - 2 * DAY)  # fmt: skip
        home = home_of(s, _user(s, "sam"), now=NOW)
        found = _sections(home)
        assert list(found) == ["plans_to_approve", "closures_to_approve", "escalations",
                               "alerts_overdue"]  # fmt: skip
        assert found["plans_to_approve"] == (1, [("case", plan_case.case_number)])
        assert found["closures_to_approve"] == (1, [("case", closing.case_number)])
        assert found["escalations"][0] == 3
        assert found["escalations"][1] == [
            ("alert", found["escalations"][1][0][1]),
            ("case", closing.case_number),
            ("case", referred.case_number),  # the escalated referral, not the one done
        ]
        team = {(w.officer, w.open, w.overdue) for w in home.team}
        assert team == {("olga", 2, 0), ("omar", 1, 1), (None, 1, 0)}


def test_a_provider_sees_its_organisations_referrals_to_answer_and_to_complete(people):
    with session_scope(people) as s:
        from clms.models import ServiceProvider

        s.add(ServiceProvider(code="OTHER", name="Another provider", kind="ngo"))
        s.flush()
        open_case = b.case(s, _kid(s, "V1"), officer="olga", state="implementation")
        waiting = b.referral(s, open_case, "TEST-PROVIDER", created_at=NOW - DAY)
        late = b.referral(s, open_case, "TEST-PROVIDER", created_at=NOW - 5 * DAY,
                          service="psychosocial_support")  # fmt: skip
        doing = b.referral(s, open_case, "TEST-PROVIDER", status="accepted",
                           responded_at=NOW - DAY, complete_by=(NOW + 9 * DAY).date())  # fmt: skip
        b.referral(s, open_case, "TEST-PROVIDER", status="done", done_at=NOW - DAY)
        b.referral(s, open_case, "OTHER", created_at=NOW - DAY)  # not theirs
        found = _sections(home_of(s, _user(s, "pat"), now=NOW))
        assert found == {
            "referrals_overdue": (1, [("referral", f"#{late.id}")]),
            "referrals_to_answer": (
                2,
                [("referral", f"#{late.id}"), ("referral", f"#{waiting.id}")],
            ),
            "services_to_record": (1, [("referral", f"#{doing.id}")]),
        }


def test_a_monitor_sees_the_follow_up_visits_due_in_their_villages(people):
    with session_scope(people) as s:
        due = b.case(s, _kid(s, "V1"), officer="olga", state="implementation",
                     next_followup_due_at=NOW + 2 * DAY)  # fmt: skip
        b.case(s, _kid(s, "V2"), officer="olga", state="implementation",
               next_followup_due_at=NOW + 2 * DAY)  # another monitor's village  # fmt: skip
        b.case(s, _kid(s, "V1"), officer="olga", state="implementation",
               next_followup_due_at=NOW + 20 * DAY)  # not yet  # fmt: skip
        assert _sections(home_of(s, _user(s, "awa"), now=NOW)) == {
            "followups_due": (1, [("case", due.case_number)])
        }


def test_an_administrator_sees_what_needs_fixing(people):
    with session_scope(people) as s:
        held = b.submission(s, status="review", instance_id="uuid:held", received_at=NOW - DAY,
                            review_reasons=[{"path": "village", "value": "X9",
                                             "problem": "unknown village code"}])  # fmt: skip
        b.submission(s, status="review", instance_id="uuid:old", current=False,
                     received_at=NOW)  # replaced by an edit: its edit is what counts  # fmt: skip
        b.submission(s, status="parsed", instance_id="uuid:fine")
        s.add(PullSource(name="Central Nawa", kind="central", base_url="https://c.example.org",
                         remote_form_id="f", credentials=b"x",
                         last_error="401 Unauthorized"))  # fmt: skip
        s.add_all([
            JobRun(job="send_notifications", started_at=NOW - DAY, ok=False, error="SMTP down"),
            JobRun(job="send_notifications", started_at=NOW, ok=True),  # it recovered
            JobRun(job="escalate", started_at=NOW, ok=False, error="database is locked"),
        ])  # fmt: skip
        s.add(Notification(kind="alert", user_id=_user(s, "olga").id, email="olga@example.org",
                           subject="s", body="b",
                           status="failed", last_error="550 mailbox unavailable"))  # fmt: skip
        s.add(
            LoginThrottle(
                scope="user",
                key="olga",
                count=5,
                window_start=NOW,
                locked_until=NOW + DAY,
                updated_at=NOW,
            )
        )
        s.add(
            LoginThrottle(
                scope="user",
                key="omar",
                count=5,
                window_start=NOW - 2 * DAY,
                locked_until=NOW - DAY,
                updated_at=NOW,
            )
        )
        # a name nobody has (or a password typed into the name field) is never shown
        s.add(LoginThrottle(scope="user", key="correct horse", count=5, window_start=NOW,
                            locked_until=NOW + DAY, updated_at=NOW))  # fmt: skip
        form = b.form_version(s).form
        encrypted = b.submission(s, status="received", instance_id="uuid:sealed")
        s.add(EncryptedSubmission(submission_id=encrypted.id, form_id=form.id, manifest=b"m",
                                  manifest_sha256="0" * 64))  # fmt: skip
        s.flush()
        found = _sections(home_of(s, _user(s, "ada"), now=NOW))
        assert found == {
            "submissions_held": (1, [("submission", f"#{held.id}")]),
            "sources_failing": (1, [("source", "Central Nawa")]),
            "jobs_failed": (1, [("job", "escalate")]),
            "mail_failed": (1, [("mail", "olga")]),
            "accounts_locked": (1, [("account", "olga")]),
            "keys_missing": (1, [("form", form.xml_form_id)]),
        }
        # why, in plain words (forms.reasons: the code read from the old row's English)
        assert str(home_of(s, _user(s, "ada"), now=NOW).sections[0].lines[0].more) == (
            "Unknown village"
        )
        assert held.id
        xml_form_id = form.xml_form_id
    # and the page draws it all, each line linking to its item
    page = _sign_in(people, "ada").get("/")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert f'href="/forms/{xml_form_id}"' in text and "correct horse" not in text


def _sign_in(app, username: str):
    client = app.test_client()
    r = client.post("/login", data={"username": username, "password": PASSWORD})
    assert r.status_code == 302
    return client


def test_the_home_page_lists_the_work_with_links_in_english_and_french(people):
    now = dt.datetime.now(dt.UTC)
    with session_scope(people) as s:
        alert = b.alert(s, _kid(s, "V1"), category="worst_form", created_at=now - 3 * DAY)
        overdue = b.case(s, _kid(s, "V2"), officer="olga", step_due_at=now - DAY)
        alert_id, case_id, number = alert.id, overdue.id, overdue.case_number
    client = _sign_in(people, "olga")
    page = client.get("/").get_data(as_text=True)
    assert "Your work, the most urgent first." in page
    assert "Overdue alerts" in page and f'href="/alerts/{alert_id}"' in page
    assert "Your cases past a deadline" in page and f'href="/cases/{case_id}"' in page
    assert number in page and 'href="/alerts?overdue=true"' in page
    assert "Your pages will appear here" not in page
    # what the page showed of children's records is in the audit log, as for the lists
    with session_scope(people) as s:
        from clms.models import AuditEvent

        (entry,) = s.scalars(select(AuditEvent).where(AuditEvent.action == "home.read"))
        assert entry.actor == "olga"
        details = json.loads(entry.details)
        assert details["alerts"] == [alert_id] and details["cases"] == [number]
    client.post("/language", data={"locale": "fr", "next": "/"})
    page = client.get("/").get_data(as_text=True)
    assert "Alertes en retard" in page and "Vos dossiers en retard" in page
    assert "Votre travail, le plus urgent en premier." in page
    # nothing waits for the supervisor's colleague in the other department
    other = _sign_in(people, "otto").get("/").get_data(as_text=True)
    assert "Nothing waits for you now." in other and number not in other


def test_a_brand_still_goes_to_its_map(app, places, make_user):
    make_user("bea", "brand", brand="BRAND-A")
    r = _sign_in(app, "bea").get("/")
    assert r.status_code == 302 and r.headers["Location"].endswith("/map")


@pytest.mark.parametrize("username", ["olga", "sam", "pat", "ada"])
def test_every_see_all_link_opens_a_list_of_as_many_items_as_its_section_counts(people, username):
    """A section's count and the list its link opens say the same number (facts on pages agree)."""
    import re

    from clms.web.home_sections import SECTIONS

    now = dt.datetime.now(dt.UTC)
    with session_scope(people) as s:
        for village, days in (("V1", 3), ("V2", 1), ("V1", 12), ("V3", 2)):
            kid = _kid(s, village)
            b.alert(s, kid, category="child_labour", created_at=now - days * DAY)
        mine = b.case(s, _kid(s, "V1"), officer="olga", step_due_at=now - DAY)
        b.case(s, _kid(s, "V2"), officer="olga", state="closure_review")
        b.referral(s, mine, "TEST-PROVIDER", created_at=now - 5 * DAY)
        b.referral(s, mine, "TEST-PROVIDER", created_at=now - DAY)
        b.referral(s, mine, "TEST-PROVIDER", status="accepted", responded_at=now - DAY)
        b.submission(s, status="review", instance_id="uuid:held")
        home = home_of(s, _user(s, username))
    client = _sign_in(people, username)
    checked = 0
    for section in home.sections:
        _title, endpoint, args = SECTIONS[section.key]
        if endpoint is None:
            continue
        page = client.get("/").get_data(as_text=True)
        link = re.search(rf'id="work-{section.key}".*?<a href="([^"]+)">See all (\d+)</a>', page,
                         re.S)  # fmt: skip
        assert link is not None and int(link.group(2)) == section.count
        listed = client.get(link.group(1).replace("&amp;", "&")).get_data(as_text=True)
        assert re.search(rf"\b{section.count} (alert|case|referral|submission)s?\b", listed), (
            section.key,
            link.group(1),
        )
        checked += 1
    assert checked >= 1


def test_a_supervisor_approves_or_returns_a_plan_from_the_queue(people):
    now = dt.datetime.now(dt.UTC)
    with session_scope(people) as s:
        plans = []
        for village in ("V1", "V2"):
            c = b.case(s, _kid(s, village), officer="olga", state="action_plan",
                       risk_level="high", step_due_at=now + DAY)  # fmt: skip
            plan = ActionPlan(case_id=c.id, status="submitted", needs_approval=True,
                              submitted_at=now - DAY,
                              submitted_by_id=_user(s, "olga").id)  # fmt: skip
            s.add(plan)
            s.flush()
            plans.append((c.id, c.version, plan.id))
    client = _sign_in(people, "sam")
    page = client.get("/").get_data(as_text=True)
    assert page.count('name="back" value="home"') == 2 and "Approve the plan" in page
    (first, v1, plan1), (second, v2, plan2) = plans
    # returning needs a note: refused, said on the home page, nothing changes
    home = {"note": "", "back": "home"}
    r = client.post(f"/cases/{second}/plan/decide",
                    data={**home, "decision": "return", "version": v2})  # fmt: skip
    assert r.status_code == 303 and r.headers["Location"].endswith("/")
    assert 'class="flash error"' in client.get("/").get_data(as_text=True)
    r = client.post(f"/cases/{first}/plan/decide",
                    data={**home, "decision": "approve", "version": v1})  # fmt: skip
    assert r.status_code == 303 and r.headers["Location"].endswith("/")
    with session_scope(people) as s:
        assert s.get(ActionPlan, plan1).status == "approved"
        assert s.get(ActionPlan, plan2).status == "submitted"
        (waiting,) = [x for x in home_of(s, _user(s, "sam")).sections
                      if x.key == "plans_to_approve"]  # fmt: skip
        assert waiting.count == 1 and waiting.lines[0].id == second
    # anything but "home" goes back to the case, as before
    r = client.post(f"/cases/{second}/plan/decide",
                    data={"decision": "return", "note": "Add a school visit.", "version": v2,
                          "back": "https://evil.example/"})  # fmt: skip
    assert r.headers["Location"].endswith(f"/cases/{second}")


def test_an_officers_referrals_are_ordered_by_their_next_deadline_and_answers_by_recency(people):
    with session_scope(people) as s:
        first = b.case(s, _kid(s, "V1"), officer="olga", state="implementation")
        second = b.case(s, _kid(s, "V1"), officer="olga", state="implementation")
        third = b.case(s, _kid(s, "V2"), officer="olga", state="implementation")
        # accepted long ago (its answer's deadline the oldest) but its service due only yesterday
        b.referral(s, first, "TEST-PROVIDER", status="accepted", created_at=NOW - 40 * DAY,
                   responded_at=NOW - 39 * DAY, complete_by=(NOW - DAY).date())  # fmt: skip
        # waiting for an answer since 4 days: its deadline passed a day ago
        b.referral(s, second, "TEST-PROVIDER", created_at=NOW - 4 * DAY)
        # accepted, service due 10 days ago: the most overdue of the accepted ones
        b.referral(s, third, "TEST-PROVIDER", status="accepted", created_at=NOW - 30 * DAY,
                   responded_at=NOW - 29 * DAY, complete_by=(NOW - 10 * DAY).date())  # fmt: skip
        section = {x.key: x for x in home_of(s, _user(s, "olga"), now=NOW).sections}
        late = section["referrals_overdue"]
        assert [(line.title, line.what) for line in late.lines] == [
            (second.case_number, "pending"),
            (third.case_number, "accepted"),
            (first.case_number, "accepted"),
        ]
        assert all(line.overdue for line in late.lines)
        assert [line.due for line in late.lines] == [
            NOW - DAY,
            (NOW - 10 * DAY).date(),
            (NOW - DAY).date(),
        ]


def test_referrals_answered_this_week_show_the_latest_answer_first(people):
    with session_scope(people) as s:
        cases = [b.case(s, _kid(s, "V1"), officer="olga", state="implementation")
                 for _ in range(3)]  # fmt: skip
        for n, (of, days) in enumerate(zip(cases, (5, 1, 3), strict=True)):
            b.referral(
                s,
                of,
                "TEST-PROVIDER",
                status="rejected" if n else "accepted",
                created_at=NOW - 6 * DAY,
                respond_by=NOW + 30 * DAY,
                responded_at=NOW - days * DAY,
                rejection_reason="full" if n else None,
            )
        section = {x.key: x for x in home_of(s, _user(s, "olga"), now=NOW).sections}
        assert [line.title for line in section["referrals_answered"].lines] == [
            cases[1].case_number,
            cases[2].case_number,
            cases[0].case_number,
        ]


def test_an_officer_finds_the_plans_a_supervisor_returned_to_revise(people):
    with session_scope(people) as s:
        returned = b.case(s, _kid(s, "V1"), officer="olga", state="action_plan",
                          step_due_at=NOW + 9 * DAY)  # fmt: skip
        s.add(ActionPlan(case_id=returned.id, status="returned", needs_approval=True,
                         submitted_at=NOW - 2 * DAY, decided_at=NOW - DAY,
                         decision_note="Add a school kit"))  # fmt: skip
        waiting = b.case(s, _kid(s, "V2"), officer="olga", state="action_plan",
                         step_due_at=NOW + 9 * DAY)  # fmt: skip
        s.add(ActionPlan(case_id=waiting.id, status="submitted", needs_approval=True,
                         submitted_at=NOW - DAY))  # fmt: skip
        colleague = b.case(s, _kid(s, "V1"), officer="omar", state="action_plan")
        s.add(ActionPlan(case_id=colleague.id, status="returned", needs_approval=True))
        s.flush()
        found = _sections(home_of(s, _user(s, "olga"), now=NOW))
        assert found["plans_returned"] == (1, [("case", returned.case_number)])
        assert _sections(home_of(s, _user(s, "omar"), now=NOW))["plans_returned"] == (
            1,
            [("case", colleague.case_number)],
        )
