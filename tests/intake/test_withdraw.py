"""What a withdrawal does downstream (issue 18): a submission its server deleted, rejected or did
not approve stops raising alerts and is flagged on the cases it is behind, never erased nor
closing a case; a restore undoes it; an edit that arrives later stays withdrawn.

Visits come in through the phone and the processing job, as in production, so the alerts and
cases are those the pipeline makes.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select, update

from clms.cases.opening import open_case
from clms.cases.withdrawn import acknowledge_flag, open_flags
from clms.db import session_scope
from clms.errors import Problem
from clms.intake.withdraw import restore_submission, withdraw_submission
from clms.models import (
    Alert,
    AlertEvent,
    AuditEvent,
    Case,
    CaseEvent,
    CaseWithdrawal,
    Notice,
    Submission,
    User,
    Visit,
)
from tests.submissions import child, household_xml

WORKING = {"work_activities": "own_farm", "work_hours_7d": 6}
DAY1, DAY2 = "2026-11-20T10:30:00.000+00:00", "2026-11-21T10:30:00.000+00:00"


def _visit(phone, version, instance_id, *, end=DAY1, deprecated_id=None, **kid):
    xml = household_xml(version, instance_id=instance_id, deprecated_id=deprecated_id,
                        end=end, children=[child(**kid)])  # fmt: skip
    assert phone.submit(xml).status_code == 201


def _sub(s, instance_id) -> Submission:
    sub = s.scalar(select(Submission).where(Submission.instance_id == instance_id))
    sub.source = "central"  # as a pull from ODK Central would have kept it
    return sub


def _alert(s) -> Alert:
    (alert,) = s.scalars(select(Alert).order_by(Alert.id)).all()
    return alert


def _events(s, alert_id):
    return s.scalars(
        select(AlertEvent.action).where(AlertEvent.alert_id == alert_id).order_by(AlertEvent.id)
    ).all()


def _audited(s, action) -> list:
    return s.scalars(select(AuditEvent.target).where(AuditEvent.action == action)).all()


def test_an_alert_its_visit_alone_raised_is_closed_with_the_reason_and_reopened_by_a_restore(
    app, phone, version, process
):
    _visit(phone, version, "uuid:one", age=10, **WORKING)
    process()
    with session_scope(app) as s:
        alert = _alert(s)
        alert.status, alert.acknowledged_at = "acknowledged", alert.created_at
        sub_id = _sub(s, "uuid:one").id
    with session_scope(app) as s:
        assert withdraw_submission(s, sub_id, "deleted", detail="deleted on Central")
        assert not withdraw_submission(s, sub_id, "deleted")  # seen again: nothing more
    with session_scope(app) as s:
        alert = _alert(s)
        assert alert.status == "withdrawn" and alert.closed_at is not None
        assert alert.dismissed_reason == "source withdrawn: deleted on ODK Central"
        assert _events(s, alert.id) == ["raised", "withdrawn"]
        event = s.scalar(select(AlertEvent).where(AlertEvent.action == "withdrawn"))
        assert event.user_id is None  # the system did it
        assert (event.detail["submission"], event.detail["reason"]) == ("uuid:one", "deleted")
        assert _audited(s, "alert.withdrawn") == [f"alert:{alert.id}"]
        # never erased: the visit is there, not counting
        assert s.scalar(select(Visit.current).where(Visit.submission_id == sub_id)) is False
    with session_scope(app) as s:
        assert restore_submission(s, sub_id, detail="restored on Central")
    with session_scope(app) as s:
        alert = _alert(s)
        # reopened as the officer left it, the reason gone
        assert (alert.status, alert.dismissed_reason, alert.closed_at) == (
            "acknowledged", None, None)  # fmt: skip
        assert _events(s, alert.id) == ["raised", "withdrawn", "restored"]
        assert _audited(s, "alert.restored") == [f"alert:{alert.id}"]


def test_an_alert_other_visits_support_stays_open_recomputed_from_them(
    app, phone, version, process
):
    _visit(phone, version, "uuid:light", age=10, **WORKING)
    process()
    _visit(phone, version, "uuid:grave", end=DAY2, age=10, hazards="agrochemicals", **WORKING)
    process()
    with session_scope(app) as s:
        alert = _alert(s)
        assert (alert.category, alert.severity) == ("hazardous", "high")
        grave_id = _sub(s, "uuid:grave").id
        light = s.scalar(select(Visit).join(Submission).where(
            Submission.instance_id == "uuid:light"))  # fmt: skip
        light_seen = light.visited_at
    with session_scope(app) as s:
        withdraw_submission(s, grave_id, "rejected")
    with session_scope(app) as s:
        alert = _alert(s)
        # the lighter visit still counts: the alert stays open, made from it alone
        assert alert.status == "new"
        assert (alert.category, alert.severity, alert.severity_rank) == (
            "child_labour", "medium", 2)  # fmt: skip
        assert alert.last_seen_at == light_seen
        assert not any(r["rule"].startswith("HAZ") for r in alert.reasons)
        assert _events(s, alert.id)[-1] == "source_withdrawn"
    with session_scope(app) as s:
        restore_submission(s, grave_id)
    with session_scope(app) as s:
        alert = _alert(s)
        assert (alert.status, alert.category, alert.severity) == ("new", "hazardous", "high")
        assert alert.last_seen_at > light_seen


def test_a_withdrawn_report_closes_its_alert(app, phone, process):
    from tests.submissions import live_version

    report = (
        f'<data id="clms_report" version="{live_version(app, "clms_report")}">'
        "<reporter_type>teacher</reporter_type><village>V2</village>"
        "<concern>child_working</concern><child_age_estimate>11</child_age_estimate>"
        "<description>Seen at work</description><contact/>"
        "<meta><instanceID>uuid:r1</instanceID></meta></data>"
    ).encode()
    assert phone.submit(report).status_code == 201
    process()
    with session_scope(app) as s:
        withdraw_submission(s, _sub(s, "uuid:r1").id, "deleted")
    with session_scope(app) as s:
        assert _alert(s).status == "withdrawn"


def test_a_case_opened_from_the_alert_is_flagged_for_its_officer_never_closed(
    app, phone, version, process, make_user
):
    make_user("olga", "officer", areas=["CI-D1"])
    _visit(phone, version, "uuid:case", age=10, **WORKING)
    process()
    with session_scope(app) as s:
        olga = s.scalar(select(User).where(User.username == "olga"))
        case = open_case(s, olga, _alert(s).id)
        case_id, state = case.id, case.state
        sub_id = _sub(s, "uuid:case").id
    with session_scope(app) as s:  # as a pull withdraws it: the process named in the audit
        withdraw_submission(s, sub_id, "deleted", actor="pull")
    with session_scope(app) as s:
        assert s.scalars(
            select(AuditEvent.actor).where(AuditEvent.action == "submission.withdrawn")
        ).all() == ["pull"]
        case = s.get(Case, case_id)
        assert case.state == state  # not closed
        assert _alert(s).status == "case_opened"  # the alert became the case: left as it is
        (flag,) = open_flags(s, case_id)
        assert (flag.reason, flag.server, flag.submission_id) == ("deleted", "ODK Central",
                                                                   sub_id)  # fmt: skip
        actions = s.scalars(select(CaseEvent.action).where(CaseEvent.case_id == case_id)).all()
        assert actions[-1] == "source_withdrawn"
        notice = s.scalar(select(Notice).where(Notice.kind == "source_withdrawn"))
        olga = s.scalar(select(User).where(User.username == "olga"))
        assert (notice.user_id, notice.subject, notice.subject_id) == (olga.id, "case", case_id)
        assert _audited(s, "case.source_withdrawn") == [f"case:{case.case_number}"]
        flag_id = flag.id
    with session_scope(app) as s:  # the same withdrawal seen again: one flag
        assert not withdraw_submission(s, sub_id, "deleted")
        assert len(s.scalars(select(CaseWithdrawal)).all()) == 1
    with session_scope(app) as s:
        olga = s.scalar(select(User).where(User.username == "olga"))
        with pytest.raises(Problem) as refused:
            acknowledge_flag(s, olga, case_id, flag_id, "  ")
        assert (refused.value.key, refused.value.status) == ("request.invalid_field", 400)
        acknowledge_flag(s, olga, case_id, flag_id, "Verified the child at home anyway")
    with session_scope(app) as s:
        flag = s.get(CaseWithdrawal, flag_id)
        assert flag.note == "Verified the child at home anyway" and flag.acknowledged_at
        assert open_flags(s, case_id) == []
        assert _audited(s, "case.source_withdrawal_read")
    with session_scope(app) as s:
        restore_submission(s, sub_id, actor="pull")
    with session_scope(app) as s:
        assert s.get(CaseWithdrawal, flag_id).restored_at is not None
        actions = s.scalars(select(CaseEvent.action).where(CaseEvent.case_id == case_id)).all()
        assert actions[-1] == "source_restored"


def test_an_edit_arriving_for_a_withdrawn_submission_stays_withdrawn(app, phone, version, process):
    _visit(phone, version, "uuid:v1", age=10)
    process()
    with session_scope(app) as s:
        withdraw_submission(s, _sub(s, "uuid:v1").id, "deleted")
    # the server's edit of it arrives later (a pull of its versions): kept, withdrawn, and it
    # waits unprocessed until its server restores it
    _visit(phone, version, "uuid:v2", deprecated_id="uuid:v1", age=10, hazards="agrochemicals",
           **WORKING)  # fmt: skip
    process()
    with session_scope(app) as s:
        v2 = s.scalar(select(Submission).where(Submission.instance_id == "uuid:v2"))
        assert (v2.status, v2.withdrawn_reason) == ("received", "deleted")
        assert s.scalar(select(Visit.id).where(Visit.submission_id == v2.id)) is None
        assert s.scalars(select(Alert)).all() == []  # no alert from a withdrawn submission
        restore_submission(s, v2.id)
    process()  # restored: processed as if it had just arrived
    with session_scope(app) as s:
        assert s.scalar(select(Visit.current).where(Visit.submission_id == v2.id)) is True
        assert _alert(s).status == "new" and _alert(s).severity in ("high", "critical")


def test_a_submission_withdrawn_before_it_was_processed_never_counts(app, phone, version, process):
    _visit(phone, version, "uuid:early", age=10, **WORKING)
    with session_scope(app) as s:
        withdraw_submission(s, _sub(s, "uuid:early").id, "not_approved")
    process()
    with session_scope(app) as s:
        assert s.scalars(select(Visit)).all() == []  # it waits, unprocessed
        assert s.scalars(select(Alert)).all() == []
        assert _sub(s, "uuid:early").status == "received"
        # approved again on the server: processed then, and the child's alert is raised
        restore_submission(s, _sub(s, "uuid:early").id, actor="pull")
    process()
    with session_scope(app) as s:
        assert s.scalar(select(Visit.current)) is True
        assert _alert(s).status == "new"


def test_the_child_record_and_the_map_forget_a_withdrawn_visit(
    app, phone, version, process, make_user
):
    """Readers that do not count but show: the signs of a worst form on the case, the household's
    last visit on the officer's map."""
    import datetime as dt

    from clms.cases.signs import signs_of
    from geo.maps.officer import OfficerFilters, officer_map_data

    make_user("olga", "officer", areas=["CI-D1"])
    _visit(phone, version, "uuid:first", age=15, **WORKING)
    _visit(phone, version, "uuid:signs", end=DAY2, age=15, worst_form_signs="cannot_leave",
           **WORKING)  # fmt: skip
    process()
    with session_scope(app) as s:
        olga = s.scalar(select(User).where(User.username == "olga"))
        case = open_case(s, olga, _alert(s).id)
        case_id = case.id
        # the visit's signs, and the case's own category (which stays: the officer decides)
        assert {str(sign.where) for sign in signs_of(s, case)} - {"the case"}
        where = OfficerFilters(date_from=dt.date(2026, 11, 1), date_to=dt.date(2026, 11, 30))
        (household,) = officer_map_data(s, olga, where).households
        assert household[4] == "2026-11-21"
        withdraw_submission(s, _sub(s, "uuid:signs").id, "rejected")
    with session_scope(app) as s:
        olga = s.scalar(select(User).where(User.username == "olga"))
        assert {str(sign.where) for sign in signs_of(s, s.get(Case, case_id))} == {"the case"}
        (household,) = officer_map_data(s, olga, where).households
        assert household[4] == "2026-11-20"


def test_reclassification_never_raises_an_alert_from_a_withdrawn_visit(
    app, phone, version, process
):
    """Stored as classified ``none`` (older rules), the visit would be graver under today's: a
    counting visit would raise an alert again, a withdrawn one does not."""
    from clms.intake.reclassify import reclassify
    from clms.models import Classification

    _visit(phone, version, "uuid:old-rules", age=10, **WORKING)
    process()
    with session_scope(app) as s:
        withdraw_submission(s, _sub(s, "uuid:old-rules").id, "rejected")
        s.execute(
            update(Classification).values(category="none", sdg_871=False, reasons=[])
        )  # fmt: skip
    report = reclassify(app.extensions["clms_sessionmaker"])
    assert report.changed == 1  # reclassified, kept as history
    with session_scope(app) as s:
        assert [a.status for a in s.scalars(select(Alert))] == ["withdrawn"]


def test_a_new_reason_for_the_same_withdrawal_replaces_the_flag(
    app, phone, version, process, make_user
):
    make_user("olga", "officer", areas=["CI-D1"])
    _visit(phone, version, "uuid:twice", age=10, **WORKING)
    process()
    with session_scope(app) as s:
        olga = s.scalar(select(User).where(User.username == "olga"))
        case_id = open_case(s, olga, _alert(s).id).id
        sub_id = _sub(s, "uuid:twice").id
        withdraw_submission(s, sub_id, "rejected")
    with session_scope(app) as s:
        assert withdraw_submission(s, sub_id, "deleted")  # rejected, then deleted on Central
        (flag,) = open_flags(s, case_id)
        assert flag.reason == "deleted"
        assert len(s.scalars(select(CaseWithdrawal)).all()) == 2
        assert s.get(Submission, sub_id).withdrawn_reason == "deleted"
