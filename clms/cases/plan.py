"""Step 3 of a case: the action plan. Drafting it (services from the catalogue, each with a
provider and a due date), submitting it, and a supervisor's decision when it needs one."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from clms.cases import ages
from clms.cases import workflow as wf
from clms.cases.inputs import _date, _provider, _text, check_fits_child
from clms.cases.notices import notify, officers_of, supervisors_of, tell_officers
from clms.cases.records import case_in_scope, change_case, check_move, current_plan
from clms.errors import field_errors, problem
from clms.i18n import Msg
from clms.models import (
    ActionPlan,
    Case,
    PlannedService,
    ServiceType,
    User,
    utcnow,
)
from clms.notices.tell import settle


def _draft_plan(session: Session, case: Case, user: User, now: dt.datetime) -> ActionPlan:
    plan = current_plan(session, case.id)
    if plan is not None and plan.status in ("draft", "returned"):
        return plan
    if case.state == "implementation" and plan is not None:
        return plan  # a service added while implementing joins the plan in force
    new = ActionPlan(
        case_id=case.id,
        version=(plan.version + 1) if plan else 1,
        status="draft",
        created_at=now,
        created_by_id=user.id,
    )
    if plan is not None:
        plan.status = "superseded"
    session.add(new)
    session.flush()
    return new


def child_age(session: Session, case: Case, on: dt.datetime) -> int | None:
    """The child's age on ``on``: from the date of birth, else the latest recorded age moved on
    by the years since (:func:`clms.cases.ages.child_age`)."""
    return ages.child_age(session, case.child_id, on.date()).now


def add_planned_service(
    session: Session,
    user: User,
    case_id: int,
    *,
    service_code: str | None,
    provider_code: str | None,
    due_on,
    notes: str | None = None,
    expected_version: int | None = None,
    now: dt.datetime | None = None,
    policy: wf.Policy | None = None,
) -> PlannedService:
    """Add a service to the plan: from the catalogue, with the provider who delivers it and the
    date it is due. In implementation it joins the plan in force."""
    now = now or utcnow()
    case = case_in_scope(session, user, case_id)
    check_move(session, case, "edit_plan", user, policy=policy)
    errors: dict = {}
    service = None
    if not service_code:
        errors["service"] = Msg("is required")
    else:
        service = session.scalar(select(ServiceType).where(ServiceType.code == service_code))
        if service is None or not service.active:
            errors["service"] = Msg("is not a service of the catalogue")
    provider = _provider(errors, session, provider_code, service)
    day = _date(errors, "due_on", due_on)
    if day is not None and day < now.date():
        errors["due_on"] = Msg("cannot be in the past")
    notes = _text(errors, "notes", notes, required=False)
    if service is not None and "service" not in errors:
        check_fits_child(errors, service, child_age(session, case, now))
    if errors:
        raise field_errors(errors)
    plan = _draft_plan(session, case, user, now)
    planned = PlannedService(
        case_id=case.id, plan_id=plan.id, service_code=service.code, provider_id=provider.id,
        due_on=day, status="planned", notes=notes, created_at=now,
    )  # fmt: skip
    session.add(planned)
    session.flush()
    change_case(
        session, case, user, now=now, policy=policy, expected_version=expected_version,
        action="service_planned",
        detail={"planned_service_id": planned.id, "service": service.code,
                "provider": provider.code, "due_on": day.isoformat()},
    )  # fmt: skip
    return planned


def remove_planned_service(
    session: Session,
    user: User,
    planned_service_id: int,
    *,
    now: dt.datetime | None = None,
    policy: wf.Policy | None = None,
) -> Case:
    """Take a service off a plan that is still being drafted (or was returned)."""
    now = now or utcnow()
    planned = session.get(PlannedService, planned_service_id)
    if planned is None:
        raise problem("not_found")
    case = case_in_scope(session, user, planned.case_id)
    check_move(session, case, "edit_plan", user, policy=policy)
    plan = session.get(ActionPlan, planned.plan_id) if planned.plan_id else None
    if plan is None or plan.status not in ("draft", "returned") or planned.status != "planned":
        raise problem(
            "case.transition_refused",
            detail=Msg("Only a service of a plan still being drafted can be removed; "
                       "close it with a reason instead."),
        )  # fmt: skip
    session.delete(planned)
    session.flush()
    change_case(session, case, user, now=now, policy=policy, action="service_removed",
                detail={"service": planned.service_code})  # fmt: skip
    return case


def submit_plan(
    session: Session,
    user: User,
    case_id: int,
    *,
    expected_version: int | None = None,
    now: dt.datetime | None = None,
    policy: wf.Policy | None = None,
) -> Case:
    """Submit the plan. It needs a supervisor's approval when the risk is high or the category is
    a worst form; otherwise it is in force at once and the case moves to implementation."""
    now = now or utcnow()
    case = case_in_scope(session, user, case_id)
    check_move(session, case, "submit_plan", user, policy=policy)
    plan = current_plan(session, case.id)
    needs = wf.needs_plan_approval(case.risk_level, case.category)
    plan.needs_approval = needs
    plan.submitted_at, plan.submitted_by_id = now, user.id
    if needs:
        plan.status = "submitted"
        change_case(
            session, case, user, now=now, policy=policy, expected_version=expected_version,
            action="plan_submitted",
            detail={"plan_version": plan.version, "needs_approval": True},
            step_due_at=wf.step_due("action_plan", now, policy, plan_submitted=True),
        )  # fmt: skip
        notify(
            session, supervisors_of(session, case), kind="case",
            subject=f"[CLMS] Plan to approve: case {case.case_number}",
            lines=["A remediation plan needs your approval (high risk or a worst form of",
                   "child labour)."],
            case=case, now=now, notice="approval_requested", detail={"step": "plan"}, actor=user,
        )  # fmt: skip
    else:
        plan.status = "auto"
        plan.decided_at = now
        _start_implementation(session, case, user, now, expected_version, "plan_submitted",
                              {"plan_version": plan.version, "needs_approval": False},
                              policy)  # fmt: skip
    return case


def _start_implementation(
    session, case, user, now, expected_version, action, detail, policy: wf.Policy | None
) -> None:
    interval = dt.timedelta(days=(policy or wf.Policy()).followup_interval_days)
    change_case(
        session, case, user, now=now, policy=policy, expected_version=expected_version,
        to_state="implementation", action=action, detail=detail,
        step_due_at=None, next_followup_due_at=now + interval, followup_reminded_at=None,
    )  # fmt: skip


def decide_plan(
    session: Session,
    user: User,
    case_id: int,
    *,
    approve: bool,
    note: str | None = None,
    expected_version: int | None = None,
    now: dt.datetime | None = None,
    policy: wf.Policy | None = None,
) -> Case:
    """A supervisor approves the submitted plan (the case moves to implementation) or returns it
    with a note saying what to change."""
    now = now or utcnow()
    case = case_in_scope(session, user, case_id)
    check_move(session, case, "approve_plan" if approve else "return_plan", user, policy=policy)
    errors: dict = {}
    note = _text(errors, "note", note, required=not approve)
    if errors:
        raise field_errors(errors)
    plan = current_plan(session, case.id)
    plan.decided_at, plan.decided_by_id, plan.decision_note = now, user.id, note
    settle(session, "approval_requested", "case", case.id, now=now)  # it waits no more
    if approve:
        plan.status = "approved"
        _start_implementation(session, case, user, now, expected_version, "plan_approved",
                              {"plan_version": plan.version, "note": note}, policy)  # fmt: skip
        tell_officers(session, case, "approval_decided",
                      {"step": "plan", "decision": "approved"}, actor=user, now=now)  # fmt: skip
    else:
        plan.status = "returned"
        change_case(
            session, case, user, now=now, policy=policy, expected_version=expected_version,
            action="plan_returned", detail={"plan_version": plan.version, "note": note},
            step_due_at=wf.step_due("action_plan", now, policy),
        )  # fmt: skip
        notify(
            session, officers_of(session, case), kind="case",
            subject=f"[CLMS] Plan returned: case {case.case_number}",
            lines=["A supervisor returned the remediation plan with a note; please revise it."],
            case=case, now=now, notice="approval_decided", actor=user,
            detail={"step": "plan", "decision": "returned"},
        )  # fmt: skip
    return case
