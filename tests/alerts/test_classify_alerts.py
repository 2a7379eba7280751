"""Every child visit is classified on arrival, and a child found in work becomes one alert.

End to end: a monitor's phone sends household visits, follow-ups and reports over OpenRosa, the
processor saves them, and each child visit gets its classification (under the profile of the
village's country: these villages are in Côte d'Ivoire, minimum age 16, light work from 13) and
the child its one active alert.
"""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from clms.db import session_scope
from clms.models import (
    Alert,
    AlertEvent,
    Case,
    CaseEvent,
    Child,
    ChildVisit,
    Classification,
    CountryProfile,
    Notification,
    Report,
    Visit,
)
from tests.submissions import child, household_xml, live_version

WORKING = {"work_activities": "own_farm", "work_hours_7d": 6}


def _visit(phone, version, *, code="HH-V1-001", end="2026-11-20T10:30:00.000+00:00", **kid):
    xml = household_xml(version, household_code=code, end=end, children=[child(**kid)])
    response = phone.submit(xml)
    assert response.status_code == 201
    return xml


def _alerts(s):
    return s.scalars(select(Alert).order_by(Alert.id)).all()


def _events(s, alert_id):
    return s.scalars(
        select(AlertEvent.action).where(AlertEvent.alert_id == alert_id).order_by(AlertEvent.id)
    ).all()


def test_each_child_visit_is_classified_under_the_village_countrys_profile(
    app, phone, version, process
):
    xml = household_xml(
        version,
        children=[
            child(child_name="Ama", age=10, **WORKING),  # under CIV's light-work age 13
            child(child_name="Kofi", age=14, work_activities="own_farm", work_hours_7d=6),
            child(child_name="Yao", age=9),  # no work
        ],
    )
    assert phone.submit(xml).status_code == 201
    process()
    with session_scope(app) as s:
        rows = s.execute(
            select(Child.name, Classification.category, Classification.sdg_871,
                   CountryProfile.code, Classification.rule_set_version, Classification.reasons)
            .join(ChildVisit, ChildVisit.child_id == Child.id)
            .join(Classification, Classification.child_visit_id == ChildVisit.id)
            .join(CountryProfile, CountryProfile.id == Classification.profile_id)
            .order_by(ChildVisit.position)
        ).all()  # fmt: skip
        assert [(r.name, r.category, r.code) for r in rows] == [
            ("Ama", "child_labour", "CIV"),
            ("Kofi", "at_risk", "CIV"),  # light work 13-15 under 14 h is permitted in CIV
            ("Yao", "none", "CIV"),
        ]
        assert rows[0].sdg_871 is True and rows[2].sdg_871 is False
        assert all(r.rule_set_version for r in rows)
        assert rows[0].reasons and all("rule" in r and "facts" in r for r in rows[0].reasons)
        # a child in child labour is an alert; at risk is a prevention alert; none raises nothing
        alerts = _alerts(s)
        assert sorted((a.category, a.severity) for a in alerts) == [
            ("at_risk", "low"),
            ("child_labour", "medium"),
        ]
        medium = next(a for a in alerts if a.severity == "medium")
        assert medium.source == "visit" and medium.status == "new"
        assert medium.village.code == "V1" and medium.supplier.code == "T2-COOP"
        assert medium.ack_due_at - medium.created_at == dt.timedelta(days=7)
        assert medium.visit_due_at - medium.created_at == dt.timedelta(days=14)
        low = next(a for a in alerts if a.severity == "low")
        assert low.visit_due_at is None


def test_a_retried_submission_never_duplicates_the_alert(app, phone, version, process):
    xml = _visit(phone, version, age=10, **WORKING)
    process()
    assert phone.submit(xml).status_code == 201  # the phone did not hear the first 201
    process()
    with session_scope(app) as s:
        assert len(_alerts(s)) == 1
        assert s.scalar(select(func.count()).select_from(Classification)) == 1


def test_later_visits_update_the_one_alert_and_a_worse_category_raises_its_severity(
    app, phone, version, process, make_user
):
    make_user("officer1", "officer", areas=["CI-D1"], email="officer1@example.org")
    _visit(phone, version, age=10, **WORKING)
    process()
    with session_scope(app) as s:
        (alert,) = _alerts(s)
        alert.status, alert.acknowledged_at = "acknowledged", alert.created_at
        first_id = alert.id
        assert s.scalar(select(func.count()).select_from(Notification)) == 0  # medium: digest

    # the next visit finds the same child spraying agrochemicals: hazardous, high
    _visit(phone, version, end="2026-11-21T10:30:00.000+00:00", age=10,
           hazards="agrochemicals", **WORKING)  # fmt: skip
    process()
    with session_scope(app) as s:
        (alert,) = _alerts(s)
        assert alert.id == first_id
        assert (alert.category, alert.severity, alert.severity_rank) == ("hazardous", "high", 3)
        # a graver danger than the one acknowledged must be acknowledged again, within 3 days
        assert alert.status == "new" and alert.acknowledged_at is None
        assert alert.ack_due_at - alert.updated_at == dt.timedelta(days=3)
        assert any(r["rule"].startswith("HAZ") for r in alert.reasons)
        assert _events(s, alert.id) == ["raised", "severity_raised"]
        mail = s.scalars(select(Notification)).all()
        assert [(n.email, n.alert_id) for n in mail] == [("officer1@example.org", alert.id)]

    # then a visit finds no work: the alert stays for the officer to close, the visit is noted
    _visit(phone, version, end="2026-11-22T10:30:00.000+00:00", age=10)
    process()
    with session_scope(app) as s:
        (alert,) = _alerts(s)
        assert alert.severity == "high" and alert.status == "new"
        assert _events(s, alert.id) == ["raised", "severity_raised", "updated"]
        assert s.scalar(select(func.count()).select_from(Classification)) == 3


def test_the_same_child_twice_in_one_batch_gets_one_alert(app, phone, version, process):
    _visit(phone, version, age=10, **WORKING)
    _visit(phone, version, end="2026-11-21T10:30:00.000+00:00", age=10,
           worst_form_signs="debt", **WORKING)  # fmt: skip
    process()  # both in one batch
    with session_scope(app) as s:
        (alert,) = _alerts(s)
        assert (alert.category, alert.severity) == ("worst_form", "critical")
        assert alert.ack_due_at - alert.created_at == dt.timedelta(hours=24)
        assert alert.visit_due_at - alert.created_at == dt.timedelta(hours=72)
        assert _events(s, alert.id) == ["raised", "severity_raised"]


def test_a_critical_alert_notifies_the_officers_of_the_village_in_the_same_transaction(
    app, phone, version, process, make_user
):
    make_user("officer1", "officer", areas=["CI-D1"], email="officer1@example.org")
    make_user("officer2", "officer", areas=["CI-D2"], email="officer2@example.org")
    _visit(phone, version, age=15, worst_form_signs="cannot_leave", **WORKING)
    process()
    with session_scope(app) as s:
        (alert,) = _alerts(s)
        mail = s.scalars(select(Notification)).all()
        assert [(n.email, n.alert_id, n.status) for n in mail] == [
            ("officer1@example.org", alert.id, "pending")
        ]
        # the mail leaves the server: no child name, no household head
        assert "Adjoua" not in mail[0].body and "Kouassi" not in mail[0].body


def test_an_edit_replacing_a_version_before_processing_raises_no_alert_for_the_old_version(
    app, phone, version, process
):
    xml = household_xml(version, instance_id="uuid:v1", children=[child(age=10, **WORKING)])
    assert phone.submit(xml).status_code == 201
    edit = household_xml(version, instance_id="uuid:v2", deprecated_id="uuid:v1",
                         children=[child(age=10)])  # fmt: skip
    assert phone.submit(edit).status_code == 201
    process()
    with session_scope(app) as s:
        # both versions are classified (history), but only the current one may raise an alert
        assert s.scalar(select(func.count()).select_from(Classification)) == 2
        assert _alerts(s) == []


@pytest.mark.parametrize(
    ("concern", "category", "severity"),
    [
        ("trafficking child_working", "worst_form", "critical"),
        ("hazardous_work", "hazardous", "high"),
        ("child_working", "child_labour", "medium"),
        ("not_in_school", "at_risk", "low"),
    ],
)
def test_a_report_raises_a_reported_alert_that_needs_verification(
    app, phone, process, concern, category, severity
):
    report = (
        f'<data id="clms_report" version="{live_version(app, "clms_report")}">'
        f"<reporter_type>teacher</reporter_type><village>V2</village><concern>{concern}</concern>"
        "<child_age_estimate>11</child_age_estimate><description>Seen at work</description>"
        "<contact/><meta><instanceID>uuid:r1</instanceID></meta></data>"
    ).encode()
    assert phone.submit(report).status_code == 201
    assert phone.submit(report).status_code == 201  # a retry: still one alert
    process()
    with session_scope(app) as s:
        (alert,) = _alerts(s)
        rep = s.scalar(select(Report))
        assert (alert.source, alert.report_id, alert.child_id) == ("reported", rep.id, None)
        assert (alert.category, alert.severity) == (category, severity)
        assert alert.needs_verification is True and alert.village.code == "V2"
        assert alert.reasons[0]["rule"] == "REPORTED_CONCERN"
        assert alert.reasons[0]["facts"]["child_age_estimate"] == 11


def test_a_follow_up_visit_is_classified_with_the_same_rules(app, phone, version, process):
    _visit(phone, version, age=12)
    process()
    with session_scope(app) as s:
        kid = s.scalar(select(Child))
        s.add(Case(case_number="C-1", child_id=kid.id, village_id=kid.household.village_id))
    followup = (
        f'<data id="clms_followup" version="{live_version(app, "clms_followup")}">'
        "<case>C-1</case><child_present>yes</child_present><attends_school>yes</attends_school>"
        "<work_hours_7d>45</work_hours_7d><chore_hours_7d>8</chore_hours_7d><hazards>none</hazards>"
        "<night_work>no</night_work><worst_form_signs>none</worst_form_signs>"
        "<services_received>none</services_received><notes/>"
        "<meta><instanceID>uuid:f1</instanceID></meta></data>"
    ).encode()
    assert phone.submit(followup).status_code == 201
    process()
    with session_scope(app) as s:
        category = s.scalar(
            select(Classification.category)
            .join(ChildVisit, ChildVisit.id == Classification.child_visit_id)
            .join(Visit, Visit.id == ChildVisit.visit_id)
            .where(Visit.kind == "followup")
        )
        assert category == "hazardous"  # 45 h a week at 12 is hazardous whatever the law
        # the child has an open case: the finding goes to the case, not to a second alert
        assert _alerts(s) == []
        case = s.scalar(select(Case))
        event = s.scalar(select(CaseEvent).where(CaseEvent.case_id == case.id))
        assert (event.action, event.detail["category"]) == ("followup", "hazardous")
        assert event.detail["child_present"] is True and case.category == "hazardous"


def _change_civ(app, make_user, **changes):
    from alerts.profiles.store import update_profile

    uid = make_user("admin1", "admin")
    with session_scope(app) as s:
        from clms.models import User

        update_profile(s, "CIV", changes, s.get(User, uid), "test: law amended")


def test_reclassify_reports_what_changed_and_why_and_keeps_the_history(
    app, phone, version, process, make_user, runner
):
    from clms.intake.reclassify import reclassify

    _visit(phone, version, code="HH-1", child_name="Kofi", age=14, **WORKING)  # at risk in CIV
    _visit(phone, version, code="HH-2", child_name="Ama", age=10, **WORKING)  # child labour
    process()
    sessions = app.extensions["clms_sessionmaker"]
    first = reclassify(sessions)
    assert (first.examined, first.changed, first.unchanged) == (2, 0, 2)

    # the law changes: light work only from 15, so Kofi at 14 is now in child labour
    _change_civ(app, make_user, light_work_age=15)
    dry = reclassify(sessions, dry_run=True)
    assert dry.changed == 1
    with session_scope(app) as s:
        assert s.scalar(select(func.count()).select_from(Classification)) == 2  # nothing written

    result = runner.invoke(args=["reclassify"])
    assert result.exit_code == 0, result.output
    assert "Examined 2 child visits: 1 changed, 1 unchanged." in result.output
    assert "at_risk ->" in result.output and "child_labour" in result.output
    with session_scope(app) as s:
        history = s.scalars(
            select(Classification)
            .join(Child, Child.id == Classification.child_id)
            .where(Child.name == "Kofi")
            .order_by(Classification.id)
        ).all()
        assert [(c.category, c.current) for c in history] == [
            ("at_risk", False),
            ("child_labour", True),
        ]
        assert history[1].previous_id == history[0].id
        assert history[1].profile.version == 2 and history[0].profile.version == 1
        assert history[1].change_reason
        # the graver result on Kofi's latest visit made his prevention alert a medium one
        alert = s.scalar(select(Alert).where(Alert.child_id == history[1].child_id))
        assert (alert.category, alert.severity) == ("child_labour", "medium")
    again = reclassify(sessions)
    assert again.changed == 0  # idempotent


def test_a_bare_database_still_classifies_under_the_ilo_default(app, places, make_user, client):
    """No `clms init`, no profiles: the ILO default is seeded on first use, never a failure."""
    from clms.intake.process import process_received
    from forms.publish import ensure_builtin_forms
    from tests.conftest import PASSWORD
    from tests.openrosa_client import Phone

    make_user("awa", "monitor", areas=["CI-D1"])
    with session_scope(app) as s:
        ensure_builtin_forms(s)
    phone = Phone(client, "awa", PASSWORD)
    _visit(phone, live_version(app, "clms_household_visit"), age=13, **WORKING)
    assert process_received(app.extensions["clms_sessionmaker"]).parsed == 1
    with session_scope(app) as s:
        c = s.scalar(select(Classification))
        # 13 is light-work age under the ILO default (12), permitted under 14 h: at risk
        assert (c.profile.code, c.category) == ("ILO", "at_risk")
