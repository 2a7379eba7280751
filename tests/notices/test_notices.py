"""Notices: each event tells the right people (never the one who acted), in the event's own
transaction; whoever is told can open the item; the mail follows each person's choice; a
person reads only their own notices, and opening one marks it read."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from alerts.escalate import escalate_case_steps
from alerts.lifecycle import assign_alert
from clms.cases.closure import decide_closure, propose_closure
from clms.cases.plan import add_planned_service, decide_plan, submit_plan
from clms.cases.referrals import (
    accept_referral,
    complete_referral,
    record_consent,
    refer,
    reject_referral,
)
from clms.cases.transfer import TransferInput, add_note, assign_case, transfer_case
from clms.db import session_scope
from clms.errors import Problem
from clms.models import AuditEvent, Case, Notice, NoticePreference, Notification
from clms.notices.preferences import email_choices, save_email_choices
from clms.notices.reading import list_notices, mark_all_read, open_notice, unread_count
from clms.notices.tell import About, tell
from clms.workday.home import home_of
from tests.cases.test_cases import DAY, T0, implementing, login, new_case, to_plan, who, world
from tests.factories import add_alert

__all__ = ["world"]


def notices(s, kind=None) -> dict[str, list[Notice]]:
    """Every notice by its recipient's username (of ``kind``, if given)."""
    from clms.models import User

    query = select(User.username, Notice).join(User, User.id == Notice.user_id)
    if kind:
        query = query.where(Notice.kind == kind)
    found: dict[str, list[Notice]] = {}
    for username, notice in s.execute(query.order_by(Notice.id)):
        found.setdefault(username, []).append(notice)
    return found


def mails_to(s, email: str) -> list[Notification]:
    return list(s.scalars(select(Notification).where(Notification.email == email)))


def plan_waiting(app) -> int:
    """A worst-form case whose plan olga submitted: it waits for a supervisor's approval."""
    case_id = new_case(app, category="worst_form")
    to_plan(app, case_id, risk="low")
    with session_scope(app) as s:
        olga = who(s, "olga")
        due = (T0 + 5 * DAY).date()
        add_planned_service(s, olga, case_id, service_code="school_kit_costs",
                            provider_code="SCH-GN", due_on=due, now=T0)  # fmt: skip
        submit_plan(s, olga, case_id, now=T0)
    return case_id


# --- each event tells the right people ----------------------------------------------------------


def test_a_plan_to_approve_tells_the_supervisors_of_the_area_and_not_its_author(app, world):
    case_id = plan_waiting(app)
    with session_scope(app) as s:
        told = notices(s, "approval_requested")
        assert sorted(told) == ["sam", "sue"]  # CI-R1 covers V1; otto's area does not
        n = told["sam"][0]
        number = s.get(Case, case_id).case_number
        assert (n.subject, n.subject_id, n.code) == ("case", case_id, number)
        assert n.detail == {"step": "plan"} and n.actor_id == who(s, "olga").id
        assert "olga" not in notices(s)
        # approvals came by email before notices existed: they still do, by default
        assert "Plan to approve" in mails_to(s, "sam@example.org")[0].subject


def test_a_notice_lives_and_dies_with_its_event(app, world):
    """Told in the event's transaction: an event rolled back leaves no notice and no mail."""
    case_id = new_case(app, category="worst_form")
    to_plan(app, case_id, risk="low")
    with session_scope(app) as s:
        olga = who(s, "olga")
        due = (T0 + 5 * DAY).date()
        add_planned_service(s, olga, case_id, service_code="school_kit_costs",
                            provider_code="SCH-GN", due_on=due, now=T0)  # fmt: skip
    with pytest.raises(RuntimeError), session_scope(app) as s:
        submit_plan(s, who(s, "olga"), case_id, now=T0)
        assert sorted(notices(s, "approval_requested")) == ["sam", "sue"]  # in the transaction
        raise RuntimeError("the request fails after the step")
    with session_scope(app) as s:
        assert notices(s) == {} and mails_to(s, "sam@example.org") == []


def test_a_decision_tells_the_case_officer_and_not_the_supervisor_who_took_it(app, world):
    case_id = plan_waiting(app)
    with session_scope(app) as s:
        decide_plan(s, who(s, "sam"), case_id, approve=False, note="Add psychosocial support.")
    with session_scope(app) as s:
        told = notices(s, "approval_decided")
        assert sorted(told) == ["olga"]
        assert told["olga"][0].detail == {"step": "plan", "decision": "returned"}
        case = s.get(Case, case_id)
        submit_plan(s, who(s, "olga"), case_id, now=T0 + DAY)
        decide_plan(s, who(s, "sue"), case_id, approve=True, expected_version=None)
        decided = notices(s, "approval_decided")["olga"]
        assert [d.detail["decision"] for d in decided] == ["returned", "approved"]
        assert "sue" not in notices(s, "approval_decided") and case.state == "implementation"


def test_closure_asked_and_decided(app, world, monkeypatch):
    case_id, _planned = implementing(app)
    monkeypatch.setattr("clms.cases.workflow.closure_criteria", lambda *a, **k: (True, []))
    with session_scope(app) as s:
        propose_closure(s, who(s, "olga"), case_id, now=T0 + 40 * DAY)
        assert sorted(notices(s, "approval_requested")) == ["sam", "sue"]
        assert notices(s, "approval_requested")["sam"][-1].detail == {"step": "closure"}
        decide_closure(s, who(s, "sam"), case_id, approve=False, note="Visit once more.")
        told = notices(s, "approval_decided")
        assert sorted(told) == ["olga"] and told["olga"][-1].detail["step"] == "closure"


def test_referrals_tell_the_provider_then_the_officer_of_each_answer(app, world):
    case_id, planned_id = implementing(app)
    with session_scope(app) as s:
        olga = who(s, "olga")
        record_consent(s, olga, case_id, provider_code="SCH-GN", given_by="guardian",
                       method="verbal", shares=["first_name", "age"], now=T0)  # fmt: skip
        referral = refer(s, olga, case_id, planned_service_id=planned_id, now=T0)
        received = notices(s, "referral_received")
        assert sorted(received) == ["pat"]  # SCH-GN's people; paul works elsewhere
        assert (received["pat"][0].subject, received["pat"][0].subject_id) == (
            "referral", referral.id,
        )  # fmt: skip
        accept_referral(s, who(s, "pat"), referral.id, now=T0 + DAY)
        complete_referral(s, who(s, "pat"), referral.id, outcome="service_provided",
                          service_date=(T0 + DAY).date(), now=T0 + 2 * DAY)  # fmt: skip
        answered = notices(s, "referral_answered")
        assert sorted(answered) == ["olga"]
        assert [a.detail for a in answered["olga"]] == [
            {"referral": referral.id, "answer": "accepted"},
            {"referral": referral.id, "answer": "completed"},
        ]


def test_a_rejected_referral_tells_the_officer(app, world):
    case_id, planned_id = implementing(app)
    with session_scope(app) as s:
        olga = who(s, "olga")
        record_consent(s, olga, case_id, provider_code="SCH-GN", given_by="guardian",
                       method="verbal", shares=["age"], now=T0)  # fmt: skip
        referral = refer(s, olga, case_id, planned_service_id=planned_id, now=T0)
        reject_referral(s, who(s, "pat"), referral.id, reason="No places left.", now=T0 + DAY)
        assert notices(s, "referral_answered")["olga"][0].detail["answer"] == "rejected"


def test_assignment_tells_the_person_assigned_unless_they_assigned_themselves(app, world):
    case_id = new_case(app)
    with session_scope(app) as s:
        assign_case(s, who(s, "olga"), case_id, officer="olga")  # herself: nobody to tell
        assert notices(s) == {}
        assign_case(s, who(s, "sam"), case_id, officer="olga", monitor="mo")
        told = notices(s, "case_assigned")
        assert sorted(told) == ["olga"] and told["olga"][0].detail == {"how": "assigned"}
        alert = add_alert(s, "V2", category="hazardous", created_at=T0)
        assign_alert(s, who(s, "sam"), alert.id, "olga", now=T0)
        told = notices(s, "alert_assigned")
        assert sorted(told) == ["olga"]
        assert (told["olga"][0].subject, told["olga"][0].subject_id) == ("alert", alert.id)
        assert alert.child.child_uid == told["olga"][0].code  # the pseudonymous id, no name


def test_a_case_moved_to_another_village_tells_its_new_officers(app, world):
    case_id = new_case(app)
    to_plan(app, case_id)
    with session_scope(app) as s:
        transfer_case(s, who(s, "olga"), case_id,
                      TransferInput(kind="internal", to_village="V3", reason="The family moved.",
                                    shared=["case_summary"], consent_basis="consent"))  # fmt: skip
        told = notices(s, "case_assigned")
        assert sorted(told) == ["otto"] and told["otto"][0].detail == {"how": "moved"}


def test_escalations_tell_the_supervisors_and_mail_those_who_want_it(app, world):
    case_id = new_case(app)
    with session_scope(app) as s:
        save_email_choices(s, who(s, "sue"), {"escalated": "app"})
    with session_scope(app) as s:
        due = s.get(Case, case_id).step_due_at
        summary = escalate_case_steps(s, due + DAY)
        told = notices(s, "escalated")
        assert sorted(told) == ["sam", "sue"] and told["sam"][0].actor_id is None
        assert told["sam"][0].detail["about"] == "case"
        # sam keeps the default (by email); sue chose the application only
        assert len(mails_to(s, "sam@example.org")) == 1 and mails_to(s, "sue@example.org") == []
        assert summary["notifications"] == 1


def test_held_submissions_tell_the_officers_who_may_review_them(
    app, world, phone, version, process
):
    from forms.review import get_submission
    from tests.submissions import household_xml

    assert phone.submit(household_xml(version, gps="95 200")).status_code == 201
    assert process().review == 1
    with session_scope(app) as s:
        told = notices(s, "submission_held")
        assert sorted(told) == ["olga"]  # awa the monitor works in CI-D1: olga's, not otto's
        n = told["olga"][0]
        assert get_submission(s, who(s, "olga"), n.subject_id) is not None
        assert get_submission(s, who(s, "otto"), n.subject_id) is None


# --- notes addressed to a person -----------------------------------------------------------------


def test_a_note_for_a_supervisor_reaches_their_home_until_they_open_it(app, world, client):
    case_id = new_case(app)
    with session_scope(app) as s:
        olga = who(s, "olga")
        with pytest.raises(Problem) as e:
            add_note(s, olga, case_id, "Please look.", for_user="otto")  # not of this case
        assert "otto is not one" in str(e.value.fields["for_user"])
        with pytest.raises(Problem) as e:
            add_note(s, olga, case_id, "Please look.", for_user="olga")
        assert "for_user" in e.value.fields
        add_note(s, olga, case_id, "The uncle asks to meet a supervisor.", for_user="sam", now=T0)
        add_note(s, olga, case_id, "A note for nobody in particular.", now=T0)
    with session_scope(app) as s:
        assert sorted(notices(s, "note")) == ["sam"]
        note = notices(s, "note")["sam"][0]
        assert "uncle" not in str(note.detail) and note.code == s.get(Case, case_id).case_number
        section = {x.key: x for x in home_of(s, who(s, "sam"), now=T0).sections}["notes_for_you"]
        assert section.count == 1 and len(section.lines) == 1
        assert (section.lines[0].kind, section.lines[0].id, section.lines[0].more) == (
            "note", note.id, "olga",
        )  # fmt: skip
        assert "notes_for_you" not in {x.key for x in home_of(s, who(s, "olga"), now=T0).sections}
        note_id = note.id
    login(client, "sam")
    page = client.get("/")
    assert b"Notes addressed to you" in page.data
    opened = client.get(f"/notifications/{note_id}")
    assert opened.status_code == 303
    assert opened.headers["Location"].endswith(f"/cases/{case_id}#timeline")
    assert client.get(f"/cases/{case_id}").status_code == 200  # whoever is told may open it
    assert b"Notes addressed to you" not in client.get("/").data


def test_the_case_page_offers_the_people_of_the_case(app, world, client):
    case_id = new_case(app)
    login(client, "olga")
    page = client.get(f"/cases/{case_id}").data.decode()
    assert 'name="for_user"' in page and 'value="sam"' in page and 'value="otto"' not in page
    r = client.post(f"/cases/{case_id}/notes", data={"text": "Call me.", "for_user": "sue"})
    assert r.status_code == 303
    with session_scope(app) as s:
        assert sorted(notices(s, "note")) == ["sue"]


# --- reading: one's own only ---------------------------------------------------------------------


def _tell(s, username, kind="note", code="C-1", subject="case", subject_id=1, **detail):
    return tell(s, [who(s, username)], kind, About(subject, subject_id, code, detail),
                actor=None, now=T0).notices[0]  # fmt: skip


def test_a_person_reads_only_their_own_and_opening_marks_read(app, world):
    with session_scope(app) as s:
        mine = [_tell(s, "olga", code=f"C-{i}") for i in range(3)]
        theirs = _tell(s, "otto")
        olga, otto = who(s, "olga"), who(s, "otto")
        assert unread_count(s, olga) == 3 and unread_count(s, otto) == 1
        page = list_notices(s, olga)
        assert [n.id for n in page.rows] == [n.id for n in reversed(mine)]  # newest first
        assert page.unread == 3 and page.total == 3
        with pytest.raises(Problem) as e:
            open_notice(s, olga, theirs.id)
        assert e.value.status == 404 and theirs.read_at is None
        opened = open_notice(s, olga, mine[0].id, now=T0 + DAY)
        assert opened.read_at == T0 + DAY and unread_count(s, olga) == 2
        assert mark_all_read(s, olga) == 2
        assert unread_count(s, olga) == 0 and unread_count(s, otto) == 1


@pytest.mark.parametrize("username", ["olga", "sam", "pat"])
def test_the_pages_of_each_role_that_receives_notices(app, world, client, username):
    with session_scope(app) as s:
        mine = _tell(
            s,
            username,
            "referral_received" if username == "pat" else "note",
            code="#7" if username == "pat" else "C-2026-0007",
            subject="referral" if username == "pat" else "case",
            subject_id=7,
        )
        other = _tell(s, "otto" if username != "otto" else "olga")
        mine_id, other_id = mine.id, other.id
    login(client, username)
    home = client.get("/").data.decode()
    assert 'href="/notifications"' in home and ">1<" in home  # the header's count
    listing = client.get("/notifications").data.decode()
    assert f"/notifications/{mine_id}" in listing and f"/notifications/{other_id}" not in listing
    assert client.get(f"/notifications/{other_id}").status_code == 404
    assert client.get(f"/notifications/{mine_id}").status_code == 303
    assert client.post("/notifications/read-all").status_code == 303
    with session_scope(app) as s:
        assert s.get(Notice, other_id).read_at is None
        assert s.get(Notice, mine_id).read_at is not None


@pytest.mark.parametrize("username", ["mo", "bea", "ada"])
def test_roles_without_notices_have_no_count_and_no_pages(app, world, client, username):
    login(client, username)
    assert b'href="/notifications"' not in client.get("/", follow_redirects=True).data
    assert client.get("/notifications").status_code == 403
    assert client.get("/notifications/settings").status_code == 403


def test_the_list_is_paged_and_in_french(app, world, client):
    with session_scope(app) as s:
        for i in range(35):
            _tell(s, "olga", "approval_decided", code=f"C-{i:04d}", step="plan",
                  decision="returned")  # fmt: skip
    login(client, "olga")
    first = client.get("/notifications").data.decode()
    assert "C-0034" in first and "C-0000" not in first and "page=2" in first
    assert "C-0000" in client.get("/notifications?page=2").data.decode()
    client.post("/language", data={"locale": "fr", "next": "/notifications"})
    french = client.get("/notifications").data.decode()
    assert "Le plan du cas C-0034 a été renvoyé" in french


# --- email preferences ---------------------------------------------------------------------------


def test_preferences_default_change_and_audit(app, world):
    with session_scope(app) as s:
        olga = who(s, "olga")
        choices = email_choices(s, olga)
        assert choices["escalated"] is True and choices["note"] is False
        assert "approval_requested" not in choices  # a supervisor's kind
        with pytest.raises(Problem) as e:
            save_email_choices(s, olga, {"note": "pigeon", "approval_requested": "email"})
        assert set(e.value.fields) == {"note", "approval_requested"}
        save_email_choices(s, olga, {"note": "email", "escalated": "app"})
        assert email_choices(s, olga)["note"] is True
        entry = s.scalar(select(AuditEvent).where(AuditEvent.action == "notices.preferences"))
        assert entry.actor_id == olga.id
        assert json.loads(entry.details)["changed"] == {"note": "email", "escalated": "app"}
        # saving the same again changes nothing and audits nothing more
        save_email_choices(s, olga, {"note": "email"})
        assert s.scalar(select(func.count()).where(AuditEvent.action == "notices.preferences")) == 1
        assert s.scalar(select(func.count()).select_from(NoticePreference)) == 2


def test_a_chosen_kind_is_mailed_without_names_and_an_unchosen_one_is_not(app, world):
    case_id = new_case(app)
    with session_scope(app) as s:
        add_note(s, who(s, "olga"), case_id, "Aya's uncle wants to talk.", for_user="sam")
        assert mails_to(s, "sam@example.org") == []  # notes: in the application by default
        save_email_choices(s, who(s, "sam"), {"note": "email"})
        add_note(s, who(s, "olga"), case_id, "Aya is back at school.", for_user="sam")
        [mail] = mails_to(s, "sam@example.org")
        number = s.get(Case, case_id).case_number
        assert number in mail.subject and f"/cases/{case_id}#timeline" in mail.body
        assert "Aya" not in mail.subject + mail.body and mail.status == "pending"


def test_the_settings_page(app, world, client, make_user):
    make_user("nomail", "officer", areas=["CI-D1"])
    login(client, "olga")
    page = client.get("/notifications/settings").data.decode()
    assert 'name="note" value="app" checked' in page and "no email address" not in page
    assert client.post("/notifications/settings", data={"note": "email"}).status_code == 303
    bad = client.post("/notifications/settings", data={"note": "fax"})
    assert bad.status_code == 400 and b"must be one of" in bad.data
    with session_scope(app) as s:
        assert email_choices(s, who(s, "olga"))["note"] is True
    client.post("/logout")
    login(client, "nomail")
    assert b"no email address" in client.get("/notifications/settings").data


def test_whoever_is_told_can_open_what_they_are_told_of(app, world):
    """A day of events; then each recipient opens each of their notices, and lands on a page
    they may see (200), never on a refusal: recipients are chosen within their scope. (A case
    that later moves out of a person's area is then out of their reach, as any page of it.)"""
    case_id = plan_waiting(app)
    moved = new_case(app)
    to_plan(app, moved)
    with session_scope(app) as s:
        olga, sam = who(s, "olga"), who(s, "sam")
        decide_plan(s, sam, case_id, approve=False, note="Add psychosocial support.")
        add_note(s, olga, case_id, "Please call the school.", for_user="sue")
        alert = add_alert(s, "V2", category="hazardous", created_at=T0)
        assign_alert(s, sam, alert.id, "olga", now=T0)
        assign_case(s, sam, case_id, officer="olga")
        transfer_case(s, olga, moved,
                      TransferInput(kind="internal", to_village="V3", reason="The family moved.",
                                    shared=["case_summary"], consent_basis="consent"))  # fmt: skip
        due = s.get(Case, case_id).step_due_at
    case2, planned = implementing(app)
    with session_scope(app) as s:
        olga = who(s, "olga")
        record_consent(s, olga, case2, provider_code="SCH-GN", given_by="guardian",
                       method="verbal", shares=["age"], now=T0)  # fmt: skip
        referral = refer(s, olga, case2, planned_service_id=planned, now=T0)
        accept_referral(s, who(s, "pat"), referral.id, now=T0 + DAY)
        escalate_case_steps(s, due + DAY)
        told = {(u, n.id, n.kind) for u, ns in notices(s).items() for n in ns}
    kinds = {k for _u, _n, k in told}
    assert kinds >= {
        "approval_requested",
        "approval_decided",
        "note",
        "alert_assigned",
        "case_assigned",
        "referral_received",
        "referral_answered",
        "escalated",
    }
    for username in sorted({u for u, _n, _k in told}):
        client = app.test_client()
        login(client, username)
        for _u, notice_id, kind in sorted(t for t in told if t[0] == username):
            landed = client.get(f"/notifications/{notice_id}", follow_redirects=True)
            assert landed.status_code == 200, (username, kind)


def test_a_case_officer_moved_out_of_the_village_is_no_longer_told_nor_addressed(app, world):
    """Otto (CI-D2) is still the recorded officer of a case in V1 (CI-D1): he can no longer
    open it, so notes cannot be addressed to him and its news goes to the officers of V1."""
    from clms.cases.notices import case_staff, officers_of

    case_id = new_case(app)
    with session_scope(app) as s:
        case = s.get(Case, case_id)
        case.officer_id = who(s, "otto").id
        s.flush()
        assert [u.username for u in officers_of(s, case)] == ["olga"]
        assert "otto" not in {u.username for u in case_staff(s, case)}
        with pytest.raises(Problem) as e:
            add_note(s, who(s, "sam"), case_id, "For the old officer.", for_user="otto")
        assert "for_user" in e.value.fields
        assert notices(s, "note") == {}


def test_a_notice_that_something_waits_is_read_for_everyone_once_it_is_done(app, world):
    """Sam and Sue are both asked to approve a plan; Sue approves it: Sam's notice no longer
    says it waits (the header's count and the home page agree); the news it makes stays."""
    case_id = plan_waiting(app)
    with session_scope(app) as s:
        assert sorted(notices(s, "approval_requested")) == ["sam", "sue"]
        before = unread_count(s, who(s, "sam"))
        decide_plan(s, who(s, "sue"), case_id, approve=True, now=T0 + DAY)
    with session_scope(app) as s:
        asked = notices(s, "approval_requested")
        assert all(n.read_at is not None for ns in asked.values() for n in ns)
        assert unread_count(s, who(s, "sam")) == before - 1
        # what is news stays unread: the officer's "approved" is not settled by it
        assert all(n.read_at is None for n in notices(s, "approval_decided")["olga"])


def test_a_referral_answered_no_longer_waits_for_its_providers(app, world):
    case_id, planned_id = implementing(app)
    with session_scope(app) as s:
        olga = who(s, "olga")
        record_consent(s, olga, case_id, provider_code="SCH-GN", given_by="guardian",
                       method="verbal", shares=["first_name", "age"], now=T0)  # fmt: skip
        referral = refer(s, olga, case_id, planned_service_id=planned_id, now=T0)
        assert notices(s, "referral_received")["pat"][0].read_at is None
        reject_referral(s, who(s, "pat"), referral.id, reason="No places left", now=T0 + DAY)
        assert notices(s, "referral_received")["pat"][0].read_at is not None


def test_the_demos_people_have_read_what_came_more_than_two_weeks_ago(app, world):
    from clms.demo.cases import read_old_notices
    from clms.models import Notice

    with session_scope(app) as s:
        sam = who(s, "sam")
        for days in (30, 15, 13, 1):
            s.add(Notice(user_id=sam.id, kind="note", subject="case", subject_id=1,
                         code="CL-1", created_at=T0 - days * DAY))  # fmt: skip
        s.flush()
        assert read_old_notices(s, now=T0) == 2
        left = s.scalars(select(Notice).where(Notice.read_at.is_(None))).all()
        assert sorted((T0 - n.created_at).days for n in left) == [1, 13]


def test_a_case_leaving_closure_review_any_way_asks_nobody_any_more(app, world, monkeypatch):
    """A child found working again sends the case back to implementation, with no supervisor's
    decision: the supervisors' requests to approve its closure are read (settled) all the same."""
    from clms.cases.records import change_case

    case_id, _planned = implementing(app)
    monkeypatch.setattr("clms.cases.workflow.closure_criteria", lambda *a, **k: (True, []))
    with session_scope(app) as s:
        propose_closure(s, who(s, "olga"), case_id, now=T0 + 40 * DAY)
        assert all(n.read_at is None for ns in notices(s, "approval_requested").values()
                   for n in ns if n.detail == {"step": "closure"})  # fmt: skip
        change_case(s, s.get(Case, case_id), None, now=T0 + 41 * DAY, policy=None,
                    to_state="implementation", action="child_found_working")  # fmt: skip
        asked = [n for ns in notices(s, "approval_requested").values() for n in ns]
        assert asked and all(n.read_at is not None for n in asked)
