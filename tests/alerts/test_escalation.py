"""Deadlines: overdue alerts and case steps escalate to the right supervisors, once; follow-up
reminders go to the case officer, once per due date."""

from __future__ import annotations

import datetime as dt
import itertools

from sqlalchemy import select

from alerts.escalate import escalate_case_steps, escalate_overdue_alerts, remind_followups
from clms.db import session_scope
from clms.jobs.registry import JobContext, run_job
from clms.models import Alert, AlertEvent, Case, Notification
from tests.alerts.test_notify import notifications, staff
from tests.factories import NOW, add_alert, add_child, village_id

__all__ = ["staff"]  # the fixture, shared with test_notify

HOUR, DAY = dt.timedelta(hours=1), dt.timedelta(days=1)
_numbers = itertools.count(1)


def add_case(s, village="V1", **fields) -> Case:
    child = add_child(s, village)
    case = Case(
        case_number=f"C-2025-{next(_numbers):04d}",
        child_id=child.id,
        village_id=village_id(s, village),
        state=fields.pop("state", "assessment"),
        opened_at=NOW - 10 * DAY,
        **fields,
    )
    s.add(case)
    s.flush()
    return case


def events(app, alert_id):
    with session_scope(app) as s:
        return list(s.scalars(select(AlertEvent).where(AlertEvent.alert_id == alert_id)))


def test_unacknowledged_alert_escalates_once_to_the_supervisors_of_its_area(app, staff, make_user):
    make_user("rose", "supervisor", areas=["CI-R1"], email="rose@example.org")  # the region
    make_user("noemail", "supervisor", areas=["V1"])
    with session_scope(app) as s:
        late = add_alert(s, "V1", created_at=NOW - 25 * HOUR)  # critical: ack within 24 h
        on_time = add_alert(s, "V1", created_at=NOW - 23 * HOUR)
        done = add_alert(
            s, "V1", created_at=NOW - 30 * HOUR, status="acknowledged",
            acknowledged_at=NOW - 29 * HOUR, first_visit_at=NOW - 20 * HOUR,
        )  # fmt: skip
        dismissed = add_alert(s, "V1", created_at=NOW - 30 * HOUR, status="dismissed")
        result = escalate_overdue_alerts(s, NOW)
        assert result == {"escalated": 1, "notifications": 2}
        ids = late.id, on_time.id, done.id, dismissed.id

    with session_scope(app) as s:
        late, on_time, done, dismissed = (s.get(Alert, i) for i in ids)
        assert late.escalated_at == NOW
        assert on_time.escalated_at is done.escalated_at is dismissed.escalated_at is None
    [event] = events(app, late.id)
    assert (event.action, event.user_id, event.at) == ("escalated", None, NOW)
    assert event.detail["why"] == ["not acknowledged by the deadline"]
    escalations = notifications(app, kind="escalation")
    # sekou (CI-D1) and rose (the region); not fatou (CI-D2), not the supervisor without email
    assert sorted(n.email for n in escalations) == ["rose@example.org", "sekou@example.org"]
    note = escalations[0]
    assert note.alert_id == late.id and note.subject.startswith("[CLMS] Overdue CRITICAL alert:")
    assert "not acknowledged by the deadline" in note.body and "Aya" not in note.body

    # again, and later: nothing more for the same alert
    with session_scope(app) as s:
        assert escalate_overdue_alerts(s, NOW)["escalated"] == 0
        # the alert that was on time is late an hour later; only it escalates
        assert escalate_overdue_alerts(s, NOW + 2 * HOUR)["escalated"] == 1
        assert escalate_overdue_alerts(s, NOW + 5 * DAY)["escalated"] == 0
    assert len(events(app, late.id)) == 1
    assert len(notifications(app, kind="escalation")) == 4


def test_alert_without_an_officer_visit_by_its_deadline_escalates(app, staff):
    with session_scope(app) as s:
        # hazardous: acknowledged on time, but nobody visited within 7 days
        unvisited = add_alert(
            s, "V3", category="hazardous", created_at=NOW - 8 * DAY, status="acknowledged",
            acknowledged_at=NOW - 7 * DAY,
        )  # fmt: skip
        visited = add_alert(
            s, "V3", category="hazardous", created_at=NOW - 8 * DAY, status="acknowledged",
            acknowledged_at=NOW - 7 * DAY, first_visit_at=NOW - 2 * DAY,
        )  # fmt: skip
        at_risk = add_alert(  # no visit deadline; acknowledged
            s, "V3", category="at_risk", created_at=NOW - 60 * DAY, status="acknowledged",
            acknowledged_at=NOW - 59 * DAY,
        )  # fmt: skip
        assert escalate_overdue_alerts(s, NOW) == {"escalated": 1, "notifications": 1}
        assert s.get(Alert, unvisited.id).escalated_at == NOW
        assert s.get(Alert, visited.id).escalated_at is None
        assert s.get(Alert, at_risk.id).escalated_at is None
    [event] = events(app, unvisited.id)
    assert event.detail["why"] == ["no officer visit by the deadline"]
    [note] = notifications(app, kind="escalation")
    assert note.email == "fatou@example.org"  # CI-D2's supervisor only
    assert "no officer visit by the deadline" in note.body


def test_overdue_alert_with_no_supervisor_is_still_escalated_once(app, places, make_user):
    with session_scope(app) as s:
        alert = add_alert(s, "V4", created_at=NOW - 2 * DAY)
        assert escalate_overdue_alerts(s, NOW) == {"escalated": 1, "notifications": 0}
        assert escalate_overdue_alerts(s, NOW) == {"escalated": 0, "notifications": 0}
        assert s.get(Alert, alert.id).escalated_at == NOW


def test_case_step_past_its_deadline_escalates_once(app, staff):
    with session_scope(app) as s:
        late = add_case(s, "V2", step_due_at=NOW - HOUR, officer_id=staff["kofi"])
        add_case(s, "V2", step_due_at=NOW + 10 * DAY)
        add_case(s, "V2", step_due_at=NOW - DAY, state="closed", closed_at=NOW - DAY)
        add_case(s, "V3", step_due_at=None)
        assert escalate_case_steps(s, NOW) == {"escalated": 1, "notifications": 1}
        assert escalate_case_steps(s, NOW) == {"escalated": 0, "notifications": 0}
        assert s.get(Case, late.id).step_escalated_at == NOW
        number = late.case_number
    [note] = notifications(app, kind="escalation")
    assert note.email == "sekou@example.org"
    assert number in note.subject and "(assessment)" in note.subject
    assert f"/cases/{late.id}" in note.body and "Aya" not in note.body
    with session_scope(app) as s:  # the next step gets a deadline: it can escalate again
        case = s.get(Case, late.id)
        case.state, case.step_due_at, case.step_escalated_at = "action_plan", NOW + DAY, None
    with session_scope(app) as s:
        assert escalate_case_steps(s, NOW + 2 * DAY)["escalated"] == 1
    assert len(notifications(app, kind="escalation")) == 2


def test_follow_up_reminders_once_per_due_date(app, staff):
    with session_scope(app) as s:
        soon = add_case(s, "V3", officer_id=staff["ama"], next_followup_due_at=NOW + 12 * HOUR)
        late = add_case(s, "V3", officer_id=staff["ama"], next_followup_due_at=NOW - 3 * DAY)
        add_case(s, "V3", officer_id=staff["ama"], next_followup_due_at=NOW + 3 * DAY)
        add_case(
            s, "V3", officer_id=staff["ama"], next_followup_due_at=NOW, state="closed",
            closed_at=NOW - DAY,
        )  # fmt: skip
        add_case(s, "V1", next_followup_due_at=NOW + HOUR)  # no officer: V1's officers remind
        assert remind_followups(s, NOW) == {"reminded": 3, "notifications": 3}
        assert remind_followups(s, NOW + HOUR) == {"reminded": 0, "notifications": 0}
        assert s.get(Case, soon.id).followup_reminded_at == NOW
        soon_id, late_number = soon.id, late.case_number
    reminders = notifications(app, kind="reminder")
    assert sorted(n.email for n in reminders) == [
        "ama@example.org", "ama@example.org", "kofi@example.org",
    ]  # fmt: skip
    late_note = next(n for n in reminders if late_number in n.subject)
    assert late_note.subject.startswith("[CLMS] Follow-up overdue:")

    # the follow-up is done; the next one is due in 30 days: reminded again, once, a day before
    with session_scope(app) as s:
        s.get(Case, soon_id).next_followup_due_at = NOW + 30 * DAY
    with session_scope(app) as s:
        # 20 days on, only the case due in 3 days (and never reminded) is
        assert remind_followups(s, NOW + 20 * DAY)["reminded"] == 1
        assert remind_followups(s, NOW + 29 * DAY + HOUR)["reminded"] == 1
        assert remind_followups(s, NOW + 29 * DAY + 2 * HOUR)["reminded"] == 0
        assert s.get(Case, soon_id).followup_reminded_at == NOW + 29 * DAY + HOUR
    assert len(notifications(app, kind="reminder")) == 5


def test_the_escalate_job_runs_both_with_an_injected_time(app, staff):
    with session_scope(app) as s:
        add_alert(s, "V1", created_at=NOW - 2 * DAY)
        add_case(s, "V1", step_due_at=NOW - HOUR)
    ctx = JobContext(app.config, app.extensions["clms_sessionmaker"], NOW)
    run = run_job(ctx, "escalate")
    assert run.ok, run.error
    assert run.summary == {
        "alerts": {"escalated": 1, "notifications": 1},
        "case_steps": {"escalated": 1, "notifications": 1},
        "referrals": {"escalated": 0, "notifications": 0},
    }
    assert run_job(ctx, "escalate").summary["alerts"]["escalated"] == 0
    with session_scope(app) as s:
        assert len(s.scalars(select(Notification)).all()) == 2
