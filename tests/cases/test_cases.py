"""Remediation cases on a real database: every step, consent and referrals, follow-ups over
OpenRosa, closure, reopening, transfers, escalation, cases.csv, and who may do what."""

from __future__ import annotations

import csv
import datetime as dt
import io
import logging
from html import unescape

import pytest
from sqlalchemy import func, select

from alerts.escalate import escalate_case_steps, escalate_referrals
from clms.cases import workflow as wf
from clms.cases.ages import ChildAge
from clms.cases.assessment import AssessmentInput, record_assessment
from clms.cases.catalogue import ProviderInput, ensure_services, save_provider
from clms.cases.closure import decide_closure
from clms.cases.opening import open_case, record_verification
from clms.cases.plan import add_planned_service, decide_plan, submit_plan
from clms.cases.queries import (
    case_view,
    list_cases,
    provider_referral,
    provider_referrals,
    provider_view,
)
from clms.cases.records import current_plan
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
from clms.models import (
    Alert,
    AlertEvent,
    AuditEvent,
    Case,
    CaseEvent,
    Child,
    Notification,
    PlannedService,
    Referral,
    User,
)
from tests.conftest import PASSWORD
from tests.factories import add_alert
from tests.submissions import child, followup_xml, household_xml, live_version

T0 = dt.datetime(2026, 6, 1, 8, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)


@pytest.fixture
def world(app, places, make_user):
    """Services, three providers and people of every role.

    olga: officer of CI-D1 (V1, V2); otto: officer of CI-D2 (V3, V4); sam and sue: supervisors
    of CI-R1; mo: monitor of CI-D1; pat: provider at SCH-GN; paul: provider at SOC-NAWA;
    bea: brand; ada: admin. Providers: SCH-GN (school, school services), SOC-NAWA (social
    services of the region: protection, psychosocial, birth certificates), CLIN-MEAGUI (a
    clinic serving CI-D2 only).
    """
    with session_scope(app) as s:
        ensure_services(s)
        for code, name, kind, area, services in (
            (
                "SCH-GN",
                "École primaire de Gnamagui",
                "school",
                "",
                ("school_enrolment", "school_kit_costs", "bridging_classes"),
            ),
            (
                "SOC-NAWA",
                "Centre social de Soubré",
                "social_services",
                "CI-R1",
                ("emergency_protection", "psychosocial_support", "birth_certificate"),
            ),
            ("CLIN-MEAGUI", "Centre de santé de Méagui", "clinic", "CI-D2", ("health_care",)),
        ):
            save_provider(
                s,
                ProviderInput(
                    code=code,
                    name=name,
                    kind=kind,
                    area=area,
                    services=services,
                    email=f"{code}@example.org",
                ),
                new=True,
            )
    make_user("olga", "officer", areas=["CI-D1"], email="olga@example.org")
    make_user("otto", "officer", areas=["CI-D2"], email="otto@example.org")
    make_user("sam", "supervisor", areas=["CI-R1"], email="sam@example.org")
    make_user("sue", "supervisor", areas=["CI-R1"], email="sue@example.org")
    make_user("mo", "monitor", areas=["CI-D1"])
    make_user("pat", "provider", provider="SCH-GN", email="pat@example.org")
    make_user("paul", "provider", provider="SOC-NAWA")
    make_user("bea", "brand", brand="BRAND-A")
    make_user("ada", "admin")


def who(s, username: str) -> User:
    return s.scalar(select(User).where(User.username == username))


def new_case(app, *, category="hazardous", village="V1", now=T0, **alert_fields) -> int:
    """An alert of ``category`` in ``village``, opened as a case by olga (otto for D2)."""
    with session_scope(app) as s:
        alert = add_alert(s, village, category=category, created_at=now - DAY, **alert_fields)
        officer = "olga" if village in ("V1", "V2") else "otto"
        return open_case(s, who(s, officer), alert.id, now=now).id


def to_plan(app, case_id, *, risk="medium", now=T0) -> None:
    """Verify (confirmed) and assess the case."""
    with session_scope(app) as s:
        olga = who(s, "olga")
        record_verification(
            s,
            olga,
            case_id,
            confirmed=True,
            visited_on=now.date(),
            findings="Aya was spraying on her uncle's farm.",
            now=now,
        )
        record_assessment(s, olga, case_id, assessment(risk), now=now)


def assessment(risk="medium", **changes) -> AssessmentInput:
    values = dict(
        risk_level=risk,
        child_views="Je veux retourner à l'école et ne plus porter le pulvérisateur.",
        family_situation="Lives with an uncle; parents in Burkina Faso.",
        schooling="dropped_out",
        immediate_safety="safe",
        response_types=["education", "economic_strengthening"],
        response_level="remediation",
    )
    values.update(changes)
    return AssessmentInput(**values)


def problem_fields(e: pytest.ExceptionInfo) -> dict:
    return e.value.details["fields"]


# --- opening and verification ----------------------------------------------------------------


def test_an_officer_opens_a_case_from_an_alert(app, world):
    with session_scope(app) as s:
        alert = add_alert(s, "V1", category="worst_form", created_at=T0 - DAY)
        case = open_case(s, who(s, "olga"), alert.id, now=T0)
        assert case.case_number == f"CL-{case.id:06d}"
        assert (case.state, case.category, case.version) == ("verification", "worst_form", 1)
        assert case.officer_id == who(s, "olga").id and case.child_id == alert.child_id
        # verification is due when the alert's first visit is (a worst form's 72 h from the
        # alert, still running): opening a case gives the child no more time
        assert case.step_due_at == alert.visit_due_at == T0 + 2 * DAY
        s.refresh(alert)
        assert alert.status == "case_opened" and alert.acknowledged_at == T0
        actions = s.scalars(select(AlertEvent.action).where(AlertEvent.alert_id == alert.id))
        assert list(actions) == ["case_opened"]
        (event,) = s.scalars(select(CaseEvent).where(CaseEvent.case_id == case.id))
        assert (event.action, event.to_state, event.detail["alert_id"]) == (
            "opened",
            "verification",
            alert.id,
        )


def test_a_case_opened_after_its_alert_deadline_is_not_overdue_at_once(app, world):
    """Issue 17: a brand-new case was overdue the moment it opened, as it took the alert's
    first-visit deadline; a step's time starts when the step starts."""
    with session_scope(app) as s:
        alert = add_alert(s, "V1", category="hazardous", created_at=T0 - 30 * DAY)
        assert alert.visit_due_at < T0  # the alert is late (and stays so in its history)
        case = open_case(s, who(s, "olga"), alert.id, now=T0)
        assert case.step_due_at == T0 + 7 * DAY  # a first visit within 7 days, from now
        page = list_cases(s, who(s, "olga"), now=T0 + DAY)
        assert [(r.case_number, r.overdue) for r in page.rows] == [(case.case_number, False)]
        assert list_cases(s, who(s, "olga"), now=T0 + 8 * DAY).rows[0].overdue


def test_a_second_alert_of_the_same_child_joins_the_open_case(app, world):
    case_id = new_case(app)
    with session_scope(app) as s:
        child_id = s.get(Case, case_id).child_id
        other = add_alert(
            s, "V1", category="worst_form", child=s.get(Child, child_id), status="new"
        )
        joined = open_case(s, who(s, "sam"), other.id, now=T0 + DAY)
        assert joined.id == case_id
        assert s.scalar(select(func.count()).select_from(Case)) == 1
        assert s.get(Alert, other.id).status == "case_opened"
        assert (
            "alert_linked"
            in s.scalars(select(CaseEvent.action).where(CaseEvent.case_id == case_id)).all()
        )


def test_only_an_active_alert_in_scope_becomes_a_case(app, world):
    with session_scope(app) as s:
        dismissed = add_alert(s, "V1", status="dismissed")
        theirs = add_alert(s, "V3")
        with pytest.raises(Problem) as e:
            open_case(s, who(s, "olga"), dismissed.id)
        assert e.value.key == "alert.transition_refused" and "dismissed" in e.value.message
        with pytest.raises(Problem) as e:
            open_case(s, who(s, "olga"), theirs.id)  # V3 is not olga's
        assert e.value.status == 404
        with pytest.raises(Problem) as e:
            open_case(s, who(s, "pat"), theirs.id)
        assert e.value.status == 403


def test_a_reported_concern_needs_the_child_named(app, world):
    with session_scope(app) as s:
        known = add_alert(s, "V1").child  # a child of V1
        report = add_alert(s, "V1", child=None, category="hazardous")
        with pytest.raises(Problem) as e:
            open_case(s, who(s, "olga"), report.id)
        assert problem_fields(e) == {"child": "is required: choose the child this report is about"}
        with pytest.raises(Problem) as e:
            open_case(s, who(s, "olga"), report.id, child_uid="CH-NOTHERE")
        assert problem_fields(e) == {"child": "names no child of village V1"}
        case = open_case(s, who(s, "olga"), report.id, child_uid=known.child_uid)
        assert case.child_id == known.id


def test_verification_not_confirmed_closes_the_case_with_its_reason(app, world):
    case_id = new_case(app)
    with session_scope(app) as s:
        olga = who(s, "olga")
        with pytest.raises(Problem) as e:
            record_verification(
                s, olga, case_id, confirmed=False, visited_on=(T0 + 2 * DAY).date(), now=T0
            )
        assert problem_fields(e) == {
            "visited_on": "cannot be in the future",
            "reason": "is required",
        }
    with session_scope(app) as s:
        case = record_verification(
            s,
            who(s, "olga"),
            case_id,
            confirmed=False,
            visited_on=T0.date(),
            reason="The child is 19 and works for wages.",
            now=T0,
        )
        assert (case.state, case.outcome, case.closed_at) == ("closed", "not_confirmed", T0)
        assert case.closure_reason == "The child is 19 and works for wages."
        alert = s.get(Alert, case.alert_id)
        assert alert.first_visit_at == T0  # the verification visit is the alert's first visit
        assert not alert.needs_verification  # verified, though not confirmed
        event = s.scalars(select(AlertEvent).where(AlertEvent.alert_id == alert.id,
                                                   AlertEvent.action == "verified")).one()
        assert event.detail == {"case_number": case.case_number, "confirmed": False,
                                "visited_on": T0.date().isoformat()}


# --- assessment, plan, approval --------------------------------------------------------------


def test_the_assessment_names_every_missing_answer_and_leads_to_the_plan(app, world):
    case_id = new_case(app)
    with session_scope(app) as s:
        record_verification(
            s,
            who(s, "olga"),
            case_id,
            confirmed=True,
            visited_on=T0.date(),
            findings="Confirmed.",
            now=T0,
        )
    with session_scope(app) as s:
        with pytest.raises(Problem) as e:
            record_assessment(
                s,
                who(s, "olga"),
                case_id,
                AssessmentInput(
                    risk_level="severe", immediate_safety="in_danger", response_types=["magic"]
                ),
            )
        assert problem_fields(e) == {
            "risk_level": "must be one of: high, medium, low",
            "child_views": "is required",
            "family_situation": "is required",
            "schooling": "is required",
            "safety_notes": "is required",
            "response_types": "must be among: " + ", ".join(wf.RESPONSE_TYPES),
            "response_level": "is required",
        }
    with session_scope(app) as s:
        record_assessment(s, who(s, "olga"), case_id, assessment("high"), now=T0)
        case = s.get(Case, case_id)
        assert (case.state, case.risk_level) == ("action_plan", "high")
        assert current_plan(s, case_id).status == "draft"


def test_a_high_risk_plan_waits_for_another_supervisor(app, world):
    case_id = new_case(app)
    to_plan(app, case_id, risk="high")
    with session_scope(app) as s:
        sam = who(s, "sam")
        with pytest.raises(Problem) as e:
            submit_plan(s, sam, case_id)
        assert "no services yet" in e.value.message
        with pytest.raises(Problem) as e:
            add_planned_service(
                s,
                sam,
                case_id,
                service_code="school_enrolment",
                provider_code="SOC-NAWA",
                due_on="2026-13-01",
                now=T0,
            )
        assert problem_fields(e) == {
            "provider": "Centre social de Soubré does not offer this service",
            "due_on": "must be a date (YYYY-MM-DD)",
        }
    with session_scope(app) as s:
        sam = who(s, "sam")
        add_planned_service(
            s,
            sam,
            case_id,
            service_code="school_enrolment",
            provider_code="SCH-GN",
            due_on=(T0 + 20 * DAY).date(),
            now=T0,
        )
        submit_plan(s, sam, case_id, now=T0)
        case = s.get(Case, case_id)
        assert case.state == "action_plan" and current_plan(s, case_id).status == "submitted"
        assert case.step_due_at == T0 + 3 * DAY
        mails = s.scalars(select(Notification.email).where(Notification.kind == "case")).all()
        # sam submitted it and may not approve it: only the other supervisor is told
        assert sorted(mails) == ["sue@example.org"]
    with session_scope(app) as s:
        with pytest.raises(Problem) as e:
            decide_plan(s, who(s, "sam"), case_id, approve=True)
        assert "You submitted this plan" in e.value.message
        with pytest.raises(Problem) as e:
            decide_plan(s, who(s, "olga"), case_id, approve=True)
        assert "Only a supervisor" in e.value.message
    with session_scope(app) as s:
        decide_plan(s, who(s, "sue"), case_id, approve=True, now=T0 + DAY)
        case = s.get(Case, case_id)
        assert case.state == "implementation" and case.step_due_at is None
        assert case.next_followup_due_at == T0 + 31 * DAY
        assert current_plan(s, case_id).decided_by_id == who(s, "sue").id


def test_a_returned_plan_goes_back_to_the_officer_with_the_note(app, world):
    case_id = new_case(app, category="worst_form")
    to_plan(app, case_id, risk="low")  # a worst form needs approval whatever the risk
    with session_scope(app) as s:
        olga = who(s, "olga")
        add_planned_service(
            s,
            olga,
            case_id,
            service_code="school_kit_costs",
            provider_code="SCH-GN",
            due_on=(T0 + 5 * DAY).date(),
            now=T0,
        )
        submit_plan(s, olga, case_id, now=T0)
    with session_scope(app) as s:
        with pytest.raises(Problem) as e:
            decide_plan(s, who(s, "sam"), case_id, approve=False)
        assert problem_fields(e) == {"note": "is required"}
        decide_plan(s, who(s, "sam"), case_id, approve=False, note="Add psychosocial support.")
        plan = current_plan(s, case_id)
        assert plan.status == "returned" and s.get(Case, case_id).state == "action_plan"
        olga_mail = s.scalar(select(Notification).where(Notification.email == "olga@example.org"))
        assert "Plan returned" in olga_mail.subject and "Aya" not in olga_mail.body


def test_a_low_risk_plan_is_in_force_at_once(app, world):
    case_id = new_case(app, category="child_labour")
    to_plan(app, case_id, risk="low")
    with session_scope(app) as s:
        olga = who(s, "olga")
        add_planned_service(
            s,
            olga,
            case_id,
            service_code="school_kit_costs",
            provider_code="SCH-GN",
            due_on=(T0 + 5 * DAY).date(),
            now=T0,
        )
        submit_plan(s, olga, case_id, now=T0)
        assert s.get(Case, case_id).state == "implementation"
        assert current_plan(s, case_id).status == "auto"


# --- consent and referrals ------------------------------------------------------------------------


def implementing(app, *, category="child_labour") -> tuple[int, int]:
    """A case in implementation with one planned school service; (case id, planned id)."""
    case_id = new_case(app, category=category)
    to_plan(app, case_id, risk="low")
    with session_scope(app) as s:
        olga = who(s, "olga")
        planned = add_planned_service(
            s,
            olga,
            case_id,
            service_code="school_enrolment",
            provider_code="SCH-GN",
            due_on=(T0 + 20 * DAY).date(),
            now=T0,
        )
        submit_plan(s, olga, case_id, now=T0)
        return case_id, planned.id


def test_no_referral_without_consent_unless_an_authorised_override(app, world, caplog):
    case_id, planned_id = implementing(app)
    with session_scope(app) as s:
        with pytest.raises(Problem) as e:
            refer(s, who(s, "olga"), case_id, planned_service_id=planned_id)
        assert e.value.key == "referral.consent_missing"
        assert "École primaire de Gnamagui" in e.value.message
        with pytest.raises(Problem) as e:  # an officer may not override for a school service
            refer(
                s,
                who(s, "olga"),
                case_id,
                planned_service_id=planned_id,
                override_reason="The family is away.",
            )
        assert "Only a supervisor may override consent" in e.value.message
    with session_scope(app) as s, caplog.at_level(logging.WARNING, logger="clms.audit"):
        referral = refer(
            s,
            who(s, "sam"),
            case_id,
            planned_service_id=planned_id,
            override_reason="Guardian unreachable; term starts Monday.",
            now=T0,
        )
        assert referral.consent_id is None and referral.override_by_id == who(s, "sam").id
        assert referral.shared == ["first_name", "age", "sex", "village"]
        assert s.get(PlannedService, planned_id).status == "referred"
    with session_scope(app) as s:
        entry = s.scalar(select(AuditEvent).where(AuditEvent.action == "case.consent_override"))
        assert entry.actor == "sam" and entry.reason == "Guardian unreachable; term starts Monday."


def test_the_provider_sees_only_what_the_consent_covers(app, world):
    case_id, planned_id = implementing(app)
    with session_scope(app) as s:
        olga = who(s, "olga")
        record_consent(
            s,
            olga,
            case_id,
            provider_code="SCH-GN",
            given_by="guardian",
            method="verbal",
            shares=["first_name", "age"],
            now=T0,
        )
        referral = refer(
            s, olga, case_id, planned_service_id=planned_id, message="Needs a place in CE1.", now=T0
        )
        referral_id = referral.id
        assert referral.shared == ["first_name", "age"] and referral.respond_by == T0 + 5 * DAY
        mail = s.scalar(select(Notification).where(Notification.email == "pat@example.org"))
        assert "referral" in mail.subject.lower() and "Aya" not in mail.body
    with session_scope(app) as s:
        view = provider_referral(s, who(s, "pat"), referral_id)
        assert view.child == {"first_name": "Aya", "age": ChildAge(None, None, None)}  # no more
        assert provider_referral(s, who(s, "paul"), referral_id) is None  # another provider
        assert provider_referral(s, who(s, "olga"), referral_id) is None
        found = provider_referrals(s, who(s, "pat"))
        assert found.total == 1 and found.rows[0].child_uid.startswith("CH-")
        assert provider_referrals(s, who(s, "paul")).total == 0


def test_the_provider_accepts_rejects_and_records_the_service(app, world):
    case_id, planned_id = implementing(app)
    with session_scope(app) as s:
        olga = who(s, "olga")
        record_consent(
            s,
            olga,
            case_id,
            provider_code="SCH-GN",
            given_by="child_and_guardian",
            method="written",
            shares=["full_name"],
            now=T0,
        )
        first = refer(s, olga, case_id, planned_service_id=planned_id, now=T0).id
    with session_scope(app) as s:
        pat = who(s, "pat")
        with pytest.raises(Problem) as e:
            complete_referral(s, pat, first, outcome="service_provided", service_date=T0.date())
        assert "Accept the referral before recording the service" in e.value.message
        with pytest.raises(Problem) as e:
            reject_referral(s, pat, first, reason="  ")
        assert problem_fields(e) == {"reason": "is required"}
        reject_referral(
            s,
            pat,
            first,
            reason="No places left this term.",
            outcome="service_unavailable",
            now=T0 + DAY,
        )
        assert s.get(PlannedService, planned_id).status == "planned"  # can be referred again
        second = refer(s, who(s, "olga"), case_id, planned_service_id=planned_id, now=T0 + DAY).id
    with session_scope(app) as s:
        pat = who(s, "pat")
        accept_referral(s, pat, second, now=T0 + 2 * DAY)
        with pytest.raises(Problem) as e:
            accept_referral(s, pat, second)
        assert "accepted; it can no longer be accepted" in e.value.message
        # issue 17: a service the provider gave before it accepted the referral is a slip
        for day, error in (
            (T0 + DAY, "cannot be before the referral was accepted (2026-06-03)"),
            (T0 + 4 * DAY, "cannot be in the future"),
        ):
            with pytest.raises(Problem) as e:
                complete_referral(s, pat, second, outcome="service_provided",
                                  service_date=day.date(), now=T0 + 3 * DAY)  # fmt: skip
            assert problem_fields(e) == {"service_date": error}
        complete_referral(
            s,
            pat,
            second,
            outcome="service_provided",
            service_date=(T0 + 3 * DAY).date(),
            now=T0 + 3 * DAY,
        )
        planned = s.get(PlannedService, planned_id)
        assert (planned.status, planned.delivered_source) == ("delivered", "referral")
        actions = s.scalars(
            select(CaseEvent.action).where(CaseEvent.case_id == case_id).order_by(CaseEvent.id)
        ).all()
        assert actions[-6:] == [
            "consent_recorded",
            "referred",
            "referral_rejected",
            "referred",
            "referral_accepted",
            "referral_done",
        ]


def test_the_provider_sees_which_referrals_are_overdue(app, world, client):
    """Issue 17: an accepted referral past its service date, or a waiting one past its answer's
    deadline, is flagged on the provider's list, its page and home page."""
    case_id, planned_id = implementing(app)  # the school service is due on T0 + 20 days
    with session_scope(app) as s:
        olga = who(s, "olga")
        record_consent(s, olga, case_id, provider_code="SCH-GN", given_by="child",
                       method="verbal", shares=["first_name"], now=T0)  # fmt: skip
        referral_id = refer(s, olga, case_id, planned_service_id=planned_id, now=T0).id
        accept_referral(s, who(s, "pat"), referral_id, now=T0 + DAY)
        s.get(Referral, referral_id).complete_by = (T0 - DAY).date()  # its service date passed
    login(client, "pat")
    listed = client.get("/referrals").get_data(as_text=True)
    row = listed.split(f">{referral_id}</a>")[1].split("</tr>")[0]
    assert '<span class="badge overdue">overdue</span>' in row
    detail = client.get(f"/referrals/{referral_id}").get_data(as_text=True)
    assert '<span class="badge overdue">overdue</span>' in detail.split("</h1>")[0]
    # the service date's field says which dates it takes, and the browser keeps to today
    assert "from the day you accepted the referral (Jun 2, 2026) to today" in detail
    assert f'max="{dt.datetime.now(dt.UTC).date().isoformat()}"' in detail
    with session_scope(app) as s:
        s.get(Referral, referral_id).complete_by = (T0 + 10 * 365 * DAY).date()  # not yet
    assert "badge overdue" not in client.get(f"/referrals/{referral_id}").get_data(as_text=True)
    assert "badge overdue" not in client.get("/referrals").get_data(as_text=True)


def test_urgent_protection_never_waits_for_the_assessment(app, world):
    case_id = new_case(app, category="worst_form")  # still in verification
    with session_scope(app) as s:
        olga = who(s, "olga")
        with pytest.raises(Problem) as e:  # not urgent: needs the plan
            refer(
                s,
                olga,
                case_id,
                service_code="psychosocial_support",
                provider_code="SOC-NAWA",
                override_reason="x",
            )
        assert problem_fields(e)["service"].startswith("is not urgent")
        referral = refer(
            s,
            olga,
            case_id,
            service_code="emergency_protection",
            provider_code="SOC-NAWA",
            override_reason="Child found locked in a storehouse; no guardian present.",
            now=T0,
        )
        assert referral.urgent and referral.respond_by == T0 + dt.timedelta(hours=24)
        assert s.get(Case, case_id).state == "verification"  # no step skipped


def test_a_provider_outside_the_case_area_cannot_be_chosen(app, world):
    case_id, _ = implementing(app)
    with session_scope(app) as s:
        view = case_view(s, who(s, "olga"), case_id)
        assert [p.code for p in view.providers] == ["SOC-NAWA", "SCH-GN"]  # not CLIN-MEAGUI


# --- follow-ups over OpenRosa, closure, reopening ----------------------------------------------


@pytest.fixture
def followed(app, world, phone, version, process):
    """Aya (12) found working 20 h on a household visit, her case opened and in implementation
    with one school kit planned; awa (the phone's monitor) follows it up."""
    xml = household_xml(
        version,
        end="2026-05-20T10:00:00.000+00:00",
        children=[
            child(child_name="Aya Koné", age=12, work_activities="own_farm", work_hours_7d=20)
        ],
    )
    assert phone.submit(xml).status_code == 201
    process()
    with session_scope(app) as s:
        alert = s.scalar(select(Alert))
        assert alert.category == "child_labour"
        olga = who(s, "olga")
        case = open_case(s, olga, alert.id, now=T0)
        record_verification(
            s,
            olga,
            case.id,
            confirmed=True,
            visited_on=T0.date(),
            findings="Confirmed at the farm.",
            now=T0,
        )
        record_assessment(s, olga, case.id, assessment("low"), now=T0)
        add_planned_service(
            s,
            olga,
            case.id,
            service_code="school_kit_costs",
            provider_code="SCH-GN",
            due_on=(T0 + 10 * DAY).date(),
            now=T0,
        )
        submit_plan(s, olga, case.id, now=T0)
        number = case.case_number
    return {"number": number, "version": live_version(app, "clms_followup")}


def _followup(phone, followed, day: dt.datetime, **answers):
    xml = followup_xml(
        followed["version"],
        followed["number"],
        end=day.strftime("%Y-%m-%dT%H:%M:%S.000+00:00"),
        **answers,
    )
    assert phone.submit(xml).status_code == 201


def test_cases_csv_lists_the_monitors_open_cases_with_first_names_only(
    app, world, followed, phone, make_user
):
    def rows():
        r = phone.get("/forms/clms_followup/media/cases.csv")
        assert r.status_code == 200
        return list(csv.DictReader(io.StringIO(r.data.decode())))

    (row,) = rows()  # the case entity list (tests/cases/test_entities.py)
    assert {k: row[k] for k in ("label", "case_number", "first_name", "village")} == {
        "label": f"{followed['number']} Aya",
        "case_number": followed["number"],
        "first_name": "Aya",
        "village": "V1",
    }
    make_user("zoe", "monitor", areas=["CI-D1"])
    with session_scope(app) as s:
        case = s.scalar(select(Case))
        assign_case(s, who(s, "olga"), case.id, monitor="zoe")
    assert rows() == []  # followed up by zoe now, not awa
    with session_scope(app) as s:
        case = s.scalar(select(Case))
        assign_case(s, who(s, "olga"), case.id, monitor="awa")
    assert len(rows()) == 1


def test_followups_deliver_services_and_the_system_proposes_closure(
    app, world, followed, phone, process
):
    _followup(phone, followed, T0 + 10 * DAY, services_received="school_kit_costs")
    process()
    with session_scope(app) as s:
        case = s.scalar(select(Case))
        assert case.state == "implementation"
        assert case.next_followup_due_at == T0 + 40 * DAY  # 30 days after the visit
        planned = s.scalar(select(PlannedService))
        assert (planned.status, planned.delivered_source) == ("delivered", "followup")
        view = case_view(s, who(s, "olga"), case.id)
        assert [str(m) for m in view.closure_unmet] == [
            "2 follow-up visits at which the child was seen are needed (1 so far)"
        ]
    _followup(phone, followed, T0 + 25 * DAY, child_present="no")  # proves nothing
    _followup(phone, followed, T0 + 41 * DAY, chore_hours_7d=6)
    process()
    with session_scope(app) as s:
        case = s.scalar(select(Case))
        assert case.state == "closure_review" and case.closure_proposed_at is not None
        assert s.scalar(select(func.count()).select_from(Alert)) == 1  # no new alert
        proposed = s.scalar(select(CaseEvent).where(CaseEvent.action == "closure_proposed"))
        assert proposed.user_id is None  # by the system
    with session_scope(app) as s:
        with pytest.raises(Problem) as e:
            decide_closure(s, who(s, "sam"), case.id, approve=True, outcome="remediated")
        assert problem_fields(e) == {
            "lessons_learned": "is required",
            "root_causes": "needs at least one root cause",
        }
        decide_closure(
            s,
            who(s, "sam"),
            case.id,
            approve=True,
            outcome="remediated",
            lessons_learned="The school kit was enough once the uncle agreed.",
            root_causes=["school_costs", "labour_shortage"],
            now=T0 + 45 * DAY,
        )
        case = s.get(Case, case.id)
        assert (case.state, case.outcome, case.closed_at) == ("closed", "remediated", T0 + 45 * DAY)
        assert case.root_causes == ["school_costs", "labour_shortage"]


def test_a_child_found_working_again_sends_the_case_back_not_a_new_alert(
    app, world, followed, phone, process
):
    _followup(phone, followed, T0 + 10 * DAY, services_received="school_kit_costs")
    _followup(phone, followed, T0 + 41 * DAY)
    process()
    with session_scope(app) as s:
        assert s.scalar(select(Case)).state == "closure_review"
    # a household visit finds her spraying: back to implementation, officer mailed, no alert
    xml = household_xml(
        followed["version"] and live_version(app, "clms_household_visit"),
        end=(T0 + 43 * DAY).strftime("%Y-%m-%dT%H:%M:%S.000+00:00"),
        children=[
            child(
                child_name="Aya Koné",
                age=12,
                work_activities="own_farm",
                work_hours_7d=5,
                hazards="agrochemicals",
            )
        ],
    )
    assert phone.submit(xml).status_code == 201
    process()
    with session_scope(app) as s:
        case = s.scalar(select(Case))
        assert (case.state, case.category) == ("implementation", "hazardous")
        assert s.scalar(select(func.count()).select_from(Alert)) == 1
        event = s.scalar(select(CaseEvent).where(CaseEvent.action == "found_in_work"))
        assert event.detail["closure_withdrawn"] is True
        assert event.detail["category_raised_from"] == "child_labour"
        mail = s.scalar(
            select(Notification).where(
                Notification.email == "olga@example.org", Notification.kind == "case"
            )
        )
        assert "HIGH" in mail.subject and "Aya" not in mail.body


def _closed_case(app, followed, phone, process) -> int:
    _followup(phone, followed, T0 + 10 * DAY, services_received="school_kit_costs")
    _followup(phone, followed, T0 + 41 * DAY)
    process()
    with session_scope(app) as s:
        case = s.scalar(select(Case))
        decide_closure(
            s,
            who(s, "sam"),
            case.id,
            approve=True,
            outcome="remediated",
            lessons_learned="Enough.",
            root_causes=["school_costs"],
            now=T0 + 45 * DAY,
        )
        return case.id


@pytest.mark.parametrize(("days", "reopens"), [(200, True), (420, False)])
def test_a_closed_case_reopens_if_the_child_works_again_within_a_year(
    app, world, followed, phone, process, days, reopens
):
    case_id = _closed_case(app, followed, phone, process)
    xml = household_xml(
        live_version(app, "clms_household_visit"),
        end=(T0 + days * DAY).strftime("%Y-%m-%dT%H:%M:%S.000+00:00"),
        children=[
            child(child_name="Aya Koné", age=13, work_activities="own_farm", work_hours_7d=30)
        ],
    )
    assert phone.submit(xml).status_code == 201
    process()
    with session_scope(app) as s:
        case = s.get(Case, case_id)
        alerts = s.scalar(select(func.count()).select_from(Alert).where(Alert.status == "new"))
        if reopens:
            assert (case.state, case.reopen_count, case.closed_at) == ("reopened", 1, None)
            assert case.outcome is None and alerts == 0
            closed = s.scalar(select(CaseEvent).where(CaseEvent.action == "closed"))
            assert closed.detail["lessons_learned"] == "Enough."  # history kept
        else:
            assert case.state == "closed" and alerts == 1


def test_a_reopened_case_is_assessed_again_with_a_new_plan(app, world, followed, phone, process):
    case_id = _closed_case(app, followed, phone, process)
    xml = household_xml(
        live_version(app, "clms_household_visit"),
        end=(T0 + 100 * DAY).strftime("%Y-%m-%dT%H:%M:%S.000+00:00"),
        children=[
            child(child_name="Aya Koné", age=12, work_activities="own_farm", work_hours_7d=30)
        ],
    )
    assert phone.submit(xml).status_code == 201
    process()
    with session_scope(app) as s:
        record_assessment(s, who(s, "olga"), case_id, assessment("medium"))
        case = s.get(Case, case_id)
        plan = current_plan(s, case_id)
        assert case.state == "action_plan" and (plan.version, plan.status) == (2, "draft")
        view = case_view(s, who(s, "olga"), case_id)
        # the visits before the reopening no longer count towards closure
        assert all(o.visited_at >= case.reopened_at for o in view.facts.observations)


# --- concurrency, transfer, escalation ----------------------------------------------------------


def test_a_change_made_on_a_stale_page_is_refused(app, world):
    case_id = new_case(app)
    with session_scope(app) as s:
        seen = s.get(Case, case_id).version
        add_note(s, who(s, "sam"), case_id, "Called the family.")  # the note does not move it
        assign_case(s, who(s, "sam"), case_id, officer="olga")  # this does
    with session_scope(app) as s:
        with pytest.raises(Problem) as e:
            record_verification(
                s,
                who(s, "olga"),
                case_id,
                confirmed=True,
                visited_on=T0.date(),
                findings="x",
                expected_version=seen,
            )
        assert e.value.key == "case.stale" and "last changed by sam" in e.value.message


def test_an_external_transfer_ends_the_case_and_revokes_its_referrals(app, world):
    case_id, planned_id = implementing(app)
    with session_scope(app) as s:
        record_consent(
            s,
            who(s, "olga"),
            case_id,
            provider_code="SCH-GN",
            given_by="child",
            method="verbal",
            shares=["first_name"],
        )
        referral_id = refer(s, who(s, "olga"), case_id, planned_service_id=planned_id).id
    with session_scope(app) as s:
        with pytest.raises(Problem) as e:
            transfer_case(s, who(s, "olga"), case_id, TransferInput(kind="external"))
        assert problem_fields(e) == {
            "reason": "is required",
            "consent_basis": "is required",
            "shared": "must say what is shared (at least one item)",
            "to_agency": "is required",
        }
        transfer = transfer_case(
            s,
            who(s, "olga"),
            case_id,
            TransferInput(
                kind="external",
                to_agency="Department of Social Welfare, Bolgatanga",
                to_country="gha",
                reason="The family moved back to Ghana.",
                shared=["identity", "case_summary", "plan_and_services"],
                consent_basis="consent",
            ),
        )
        assert transfer.to_country == "GHA"
        assert s.get(Case, case_id).state == "transferred"
        referral = s.get(Referral, referral_id)
        assert referral.status == "revoked" and "Bolgatanga" in referral.revoked_reason


def test_moving_a_case_to_another_village_hands_it_to_that_areas_officers(app, world):
    case_id = new_case(app)
    with session_scope(app) as s:
        transfer_case(
            s,
            who(s, "olga"),
            case_id,
            TransferInput(
                kind="internal",
                to_village="V4",
                reason="The child moved to an aunt in Zogbodoua.",
                shared=["identity", "case_summary"],
                consent_basis="consent",
            ),
        )
    with session_scope(app) as s:
        case = s.get(Case, case_id)
        assert case.state == "verification" and case.village.code == "V4"
        assert case.officer_id is None
        assert case_view(s, who(s, "olga"), case_id) is None  # no longer hers
        assert case_view(s, who(s, "otto"), case_id) is not None
        mail = s.scalar(select(Notification).where(Notification.email == "otto@example.org"))
        assert "moved to your area" in mail.subject


def test_overdue_steps_and_referrals_escalate_once(app, world):
    case_id, planned_id = implementing(app)
    with session_scope(app) as s:
        record_consent(
            s,
            who(s, "olga"),
            case_id,
            provider_code="SCH-GN",
            given_by="child",
            method="verbal",
            shares=["first_name"],
            now=T0,
        )
        refer(s, who(s, "olga"), case_id, planned_service_id=planned_id, now=T0)
    with session_scope(app) as s:
        assert escalate_referrals(s, T0 + 4 * DAY) == {"escalated": 0, "notifications": 0}
        done = escalate_referrals(s, T0 + 6 * DAY)
        assert done["escalated"] == 1 and done["notifications"] == 4  # sam, sue, olga, pat
        assert escalate_referrals(s, T0 + 7 * DAY)["escalated"] == 0
        assert s.scalar(select(CaseEvent).where(CaseEvent.action == "referral_overdue"))


def test_a_new_step_deadline_can_escalate_again(app, world):
    case_id = new_case(app)
    with session_scope(app) as s:
        assert escalate_case_steps(s, T0 + 30 * DAY)["escalated"] == 1
        assert escalate_case_steps(s, T0 + 31 * DAY)["escalated"] == 0
    with session_scope(app) as s:
        record_verification(
            s,
            who(s, "olga"),
            case_id,
            confirmed=True,
            visited_on=(T0 + 31 * DAY).date(),
            findings="Confirmed.",
            now=T0 + 31 * DAY,
        )
        case = s.get(Case, case_id)
        assert case.step_escalated_at is None and case.step_due_at == T0 + 38 * DAY
    with session_scope(app) as s:
        assert escalate_case_steps(s, T0 + 39 * DAY)["escalated"] == 1
        assert (
            s.scalar(
                select(func.count()).select_from(CaseEvent).where(CaseEvent.action == "escalated")
            )
            == 2
        )


# --- the list and who may see it ------------------------------------------------------------------


def test_the_case_list_in_scope_with_filters(app, world):
    first = new_case(app)
    second = new_case(app, village="V3")
    with session_scope(app) as s:
        olga, sam = who(s, "olga"), who(s, "sam")
        assert [r.id for r in list_cases(s, olga).rows] == [first]
        assert {r.id for r in list_cases(s, sam).rows} == {first, second}
        assert list_cases(s, sam, village="V3").rows[0].id == second
        assert list_cases(s, sam, state="closed").total == 0
        number = s.get(Case, second).case_number
        assert [r.id for r in list_cases(s, sam, q=number.lower()).rows] == [second]
        overdue = list_cases(s, sam, overdue=True, now=T0 + 30 * DAY)
        assert {r.id for r in overdue.rows} == {first, second}
        assert all(r.overdue for r in overdue.rows)
        assert list_cases(s, sam, overdue=True, now=T0).total == 0
        assert list_cases(s, who(s, "bea")).total == 0 and list_cases(s, who(s, "ada")).total == 0
        with pytest.raises(Problem) as e:
            list_cases(s, sam, state="sleeping")
        assert e.value.details["parameter"] == "state"


def login(client, username):
    assert (
        client.post("/login", data={"username": username, "password": PASSWORD}).status_code == 302
    )


@pytest.mark.parametrize(
    ("username", "status"),
    [("olga", 200), ("sam", 200), ("otto", 404), ("bea", 403), ("mo", 403), ("pat", 403)],
)
def test_who_may_open_a_case_page(app, world, client, username, status):
    case_id = new_case(app)
    login(client, username)
    assert client.get(f"/cases/{case_id}").status_code == status
    assert client.get(f"/cases/{case_id}/assess").status_code == status
    response = client.post(f"/cases/{case_id}/notes", data={"text": "hello"})
    assert response.status_code == (303 if status == 200 else status)


def test_the_case_page_walks_through_verification_and_shows_errors_by_fields(app, world, client):
    case_id = new_case(app)
    login(client, "olga")
    page = client.get(f"/cases/{case_id}").get_data(as_text=True)
    assert "Record the verification visit" in page and "Aya Traoré" in page
    assert "No visit yet." in page
    with session_scope(app) as s:
        alert_id = s.get(Case, case_id).alert_id
    assert "needs verification" in client.get(f"/alerts/{alert_id}").get_data(as_text=True)
    r = client.post(f"/cases/{case_id}/verify", data={"confirmed": "yes", "visited_on": ""})
    assert r.status_code == 400
    html = r.get_data(as_text=True)
    assert 'role="alert"' in html and 'id="f-visited_on-error"' in html
    assert 'aria-invalid="true"' in html
    r = client.post(
        f"/cases/{case_id}/verify",
        data={
            "confirmed": "yes",
            "visited_on": dt.date.today().isoformat(),
            "findings": "Seen at work.",
            "version": "1",
        },
    )
    assert r.status_code == 303
    page = client.get(f"/cases/{case_id}").get_data(as_text=True)
    assert "Verification recorded." in page and "Complete the best-interest assessment" in page
    # issue 17: the verification visit is a visit of the case, and the alert is verified
    visits = unescape(page.split('id="visits-h"')[1].split("</section>")[0])
    assert "No visit yet." not in visits
    assert "the officer's verification visit — allegation confirmed" in visits
    alert_page = unescape(client.get(f"/alerts/{alert_id}").get_data(as_text=True))
    assert "needs verification" not in alert_page
    assert "Verified at the case's visit" in alert_page
    # the same form again, from the page as it was: the case has moved on
    r = client.post(
        f"/cases/{case_id}/verify",
        data={
            "confirmed": "yes",
            "visited_on": dt.date.today().isoformat(),
            "findings": "x",
            "version": "1",
        },
    )
    assert r.status_code == 409


def test_the_provider_answers_from_its_pages(app, world, client):
    case_id, planned_id = implementing(app)
    with session_scope(app) as s:
        record_consent(
            s,
            who(s, "olga"),
            case_id,
            provider_code="SCH-GN",
            given_by="child",
            method="verbal",
            shares=["first_name", "village"],
        )
        referral_id = refer(s, who(s, "olga"), case_id, planned_service_id=planned_id).id
        # a consent that shares the age shares the age today: not the date of a monitoring
        # visit, nor whether a date of birth is on file
        referral = s.get(Referral, referral_id)
        s.get(Child, s.get(Case, case_id).child_id).dob = dt.date(2015, 9, 1)  # on file
        kept, referral.shared = referral.shared, [*referral.shared, "age"]
        age = provider_view(s, referral).child["age"]
        assert age.now is not None and (age.seen, age.seen_on, age.exact) == (None, None, False)
        referral.shared = kept
    login(client, "paul")
    assert client.get(f"/referrals/{referral_id}").status_code == 404
    client.post("/logout")
    login(client, "pat")
    page = client.get("/referrals").get_data(as_text=True)
    assert f"/referrals/{referral_id}" in page and "Traoré" not in page
    detail = client.get(f"/referrals/{referral_id}").get_data(as_text=True)
    assert "Aya" in detail and "Gnamagui" in detail and "Traoré" not in detail
    # the consent shares an age: not the date of a monitoring visit beside it
    assert client.post(f"/referrals/{referral_id}", data={"action": "accept"}).status_code == 303
    r = client.post(
        f"/referrals/{referral_id}", data={"action": "complete", "outcome": "service_provided"}
    )
    assert r.status_code == 400 and "service_date" in r.get_data(as_text=True)
    r = client.post(
        f"/referrals/{referral_id}",
        data={
            "action": "complete",
            "outcome": "service_provided",
            "service_date": dt.date.today().isoformat(),
        },
    )
    assert r.status_code == 303
    with session_scope(app) as s:
        assert s.get(Referral, referral_id).status == "done"
    assert client.get(f"/cases/{case_id}").status_code == 403


def test_the_case_page_in_french(app, world, client):
    case_id = new_case(app)
    login(client, "olga")
    page = client.get(f"/cases/{case_id}", headers={"Accept-Language": "fr-CI,fr;q=0.9"})
    html = page.get_data(as_text=True)
    assert '<html lang="fr">' in html
    assert "Prochaine étape" in html and "Next step" not in html
