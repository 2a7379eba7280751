"""Changing cases: every step of the remediation workflow, as named operations.

Each operation reads the case (out of scope is the same as missing: ``not_found``), asks the
pure state machine (:mod:`clms.cases.workflow`) whether the move is allowed, checks the form,
then writes: a conditional ``UPDATE cases ... WHERE version = :read`` (when two people act at once
exactly one of them moves the case; the other is told it changed), the rows of the step, and a
:class:`~clms.models.CaseEvent` for the timeline. Operations flush and never commit: the request
or job commits once, at its boundary. Mail goes through the outbox in the same transaction.

Forms are checked in full before anything is written: every wrong answer is named at once
(:func:`~clms.errors.field_errors`), in the reader's language.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

from flask import current_app, has_app_context
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload

from alerts.notify import BASE_URL_MARK, queue_notification, users_for_villages
from clms.audit import record
from clms.cases import workflow as wf
from clms.errors import Problem, field_errors, problem
from clms.i18n import Msg
from clms.models import (
    ACTIVE_ALERT_STATUSES,
    ActionPlan,
    Alert,
    AlertEvent,
    Assessment,
    Case,
    CaseEvent,
    CaseTransfer,
    Child,
    ChildVisit,
    Classification,
    Consent,
    Household,
    PlannedService,
    Referral,
    ServiceProvider,
    ServiceType,
    User,
    Village,
    Visit,
    utcnow,
)
from clms.scope import SCOPED_ROLES, village_in_scope

log = logging.getLogger(__name__)

MAX_TEXT = 4000
MAX_SHORT = 300


def policy() -> wf.Policy:
    """The workflow's settings: the application's configuration, else the defaults."""
    if has_app_context():
        return wf.Policy.from_config(current_app.config)
    return wf.Policy()


# --- reading a case ----------------------------------------------------------------------------


def get_case(session: Session, user: User, case_id: int) -> Case | None:
    """The case if ``user`` may see it (an officer or supervisor of its village, or an admin
    with such a scope), else None, whether or not it exists."""
    if user.role not in SCOPED_ROLES:
        return None
    case = session.scalar(
        select(Case)
        .where(Case.id == case_id)
        .options(joinedload(Case.village), joinedload(Case.child))
    )
    if case is None or case.village is None:
        return None
    if not village_in_scope(session, user, case.village_id, case.village.area_id):
        return None
    return case


def case_in_scope(session: Session, user: User, case_id: int) -> Case:
    """:func:`get_case`, or the ``not_found`` problem."""
    case = get_case(session, user, case_id)
    if case is None:
        raise problem("not_found")
    return case


def current_plan(session: Session, case_id: int) -> ActionPlan | None:
    """The newest plan of the case (any status but superseded)."""
    return session.scalar(
        select(ActionPlan)
        .where(ActionPlan.case_id == case_id, ActionPlan.status != "superseded")
        .order_by(ActionPlan.version.desc())
        .limit(1)
    )


def observations(session: Session, case: Case) -> list[wf.Observation]:
    """The visits that saw the child since the case opened (or last reopened), each with the
    category of its current classification."""
    since = case.reopened_at or case.opened_at
    rows = session.execute(
        select(Visit.visited_at, Visit.kind, Visit.case_id, Visit.child_present,
               Classification.category)
        .join(ChildVisit, ChildVisit.visit_id == Visit.id)
        .join(Classification, Classification.child_visit_id == ChildVisit.id)
        .where(
            ChildVisit.child_id == case.child_id,
            Visit.current.is_(True),
            Classification.current.is_(True),
            Visit.visited_at >= since,
        )
        .order_by(Visit.visited_at, Visit.id)
    )  # fmt: skip
    return [
        wf.Observation(
            visited_at=at,
            followup=kind == "followup" and case_id == case.id,
            child_present=present,
            category=category,
        )
        for at, kind, case_id, present, category in rows
    ]


def facts_of(session: Session, case: Case) -> wf.CaseFacts:
    """What the state machine needs to know about ``case``."""
    plan = current_plan(session, case.id)
    services = []
    if plan is not None:
        # the plan in force: a reopened case's earlier plan is history
        services = list(
            session.execute(
                select(PlannedService.service_code, PlannedService.status).where(
                    PlannedService.plan_id == plan.id
                )
            )
        )
    open_referrals = session.scalar(
        select(func.count())
        .select_from(Referral)
        .where(Referral.case_id == case.id, Referral.status.in_(("pending", "accepted")))
    )
    proposer = None
    if case.state == "closure_review":
        proposer = session.scalar(
            select(CaseEvent.user_id)
            .where(CaseEvent.case_id == case.id, CaseEvent.action == "closure_proposed")
            .order_by(CaseEvent.at.desc(), CaseEvent.id.desc())
            .limit(1)
        )
    return wf.CaseFacts(
        state=case.state,
        category=case.category,
        risk_level=case.risk_level,
        has_assessment=case.risk_level is not None,
        plan_status=plan.status if plan else None,
        plan_services=len(services),
        plan_submitted_by=plan.submitted_by_id if plan else None,
        closure_proposed_by=proposer,
        closed_at=case.closed_at,
        outcome=case.outcome,
        observations=observations(session, case),
        services=[wf.ServiceState(code, status) for code, status in services],
        open_referrals=open_referrals or 0,
    )


def actor(user: User | None) -> wf.Actor:
    """The state machine's view of who acts (None: the system)."""
    return wf.SYSTEM if user is None else wf.Actor(user.role, user.id)


def check_move(
    session: Session, case: Case, move: str, user: User | None, facts: wf.CaseFacts | None = None
) -> wf.Move:
    """:func:`workflow.check`, with a refusal turned into the ``case.transition_refused``
    problem."""
    facts = facts or facts_of(session, case)
    try:
        return wf.check(facts, move, actor(user), policy=policy())
    except wf.Refused as e:
        raise problem("case.transition_refused", detail=e.msg) from e


# --- writing -----------------------------------------------------------------------------------


def record_event(
    session: Session,
    case: Case,
    user: User | None,
    action: str,
    detail: dict | None = None,
    *,
    now: dt.datetime,
    from_state: str | None = None,
    to_state: str | None = None,
) -> CaseEvent:
    """Add a line to the case's timeline."""
    event = CaseEvent(
        case_id=case.id,
        at=now,
        user_id=user.id if user else None,
        action=action,
        from_state=from_state,
        to_state=to_state,
        detail=detail or {},
    )
    session.add(event)
    record(
        session,
        user,
        f"case.{action}",
        f"case:{case.case_number}",
        from_state=from_state,
        to_state=to_state,
        **_codes_only(detail or {}),
    )
    log.info("case %s %s by %s", case.case_number, action, user.username if user else "system")
    return event


def _codes_only(detail: dict) -> dict:
    """What of a case event's detail the audit log keeps: numbers, flags, and codes, ids and
    dates (short text without spaces). Free text (findings, notes, names) stays in the case's
    own timeline, which erasure and retention can anonymise; the audit log cannot be changed."""

    def code(value) -> bool:
        if value is None or isinstance(value, bool | int | float):
            return True
        return isinstance(value, str) and len(value) <= 64 and not any(c.isspace() for c in value)

    kept = {}
    for key, value in detail.items():
        if code(value):
            kept[key] = value
        elif isinstance(value, list | tuple) and all(code(v) for v in value):
            kept[key] = list(value)
    return kept


def change_case(
    session: Session,
    case: Case,
    user: User | None,
    *,
    now: dt.datetime,
    expected_version: int | None = None,
    to_state: str | None = None,
    action: str | None = None,
    detail: dict | None = None,
    **values,
) -> Case:
    """Write ``values`` (and a new state) on the case if nobody changed it since it was read;
    adds the event ``action`` (``state_changed`` when only the state moves).

    Entering a state sets its step deadline and clears the escalation of the previous step.
    """
    read_version = case.version
    if expected_version is not None and expected_version != read_version:
        raise problem("case.stale", detail=_stale_words(session, case))
    from_state = case.state
    if to_state is not None and to_state != from_state:
        values.setdefault("state_changed_at", now)
        values.setdefault("step_due_at", wf.step_due(to_state, now, policy()))
        values["step_escalated_at"] = None
        values["state"] = to_state
    if "step_due_at" in values:
        values["step_escalated_at"] = None
    done = session.execute(
        update(Case)
        .where(Case.id == case.id, Case.version == read_version)
        .values(version=read_version + 1, updated_at=now, **values)
        .execution_options(synchronize_session=False)
    ).rowcount
    session.refresh(case)
    if done != 1:
        raise problem("case.stale", detail=_stale_words(session, case))
    if action is not None or (to_state is not None and to_state != from_state):
        record_event(
            session,
            case,
            user,
            action or "state_changed",
            detail,
            now=now,
            from_state=from_state,
            to_state=values.get("state", from_state) if to_state is not None else None,
        )
    session.flush()
    return case


def _stale_words(session: Session, case: Case) -> Msg:
    last = session.execute(
        select(CaseEvent.at, User.username)
        .outerjoin(User, User.id == CaseEvent.user_id)
        .where(CaseEvent.case_id == case.id)
        .order_by(CaseEvent.at.desc(), CaseEvent.id.desc())
        .limit(1)
    ).first()
    if last is None:
        return Msg("changed meanwhile")
    at, username = last
    return Msg(
        "last changed by {who} at {when} UTC",
        who=username or Msg("the system"),
        when=f"{at:%Y-%m-%d %H:%M}",
    )


def _text(errors: dict, name: str, value, *, required: bool, limit: int = MAX_TEXT) -> str | None:
    text = (value or "").strip() if isinstance(value, str) or value is None else str(value)
    if not text:
        if required:
            errors[name] = Msg("is required")
        return None
    if len(text) > limit:
        errors[name] = Msg("must be at most {n} characters", n=limit)
        return None
    return text


def _choice(errors: dict, name: str, value, choices, *, required: bool = True) -> str | None:
    if value in (None, ""):
        if required:
            errors[name] = Msg("is required")
        return None
    if value not in choices:
        errors[name] = Msg("must be one of: {choices}", choices=", ".join(choices))
        return None
    return value


def _date(errors: dict, name: str, value, *, required: bool = True) -> dt.date | None:
    if value in (None, ""):
        if required:
            errors[name] = Msg("is required")
        return None
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        errors[name] = Msg("must be a date (YYYY-MM-DD)")
        return None


def _at(day: dt.date, now: dt.datetime) -> dt.datetime:
    """A moment for something done on ``day``: now if today, else midday UTC of that day."""
    if day == now.date():
        return now
    return dt.datetime.combine(day, dt.time(12), dt.UTC)


def _notify(
    session: Session, users, *, kind: str, subject: str, lines: list[str], case: Case, now
) -> int:
    """Queue one email per user (who has an address); no names, only codes and the link."""
    body = "\n".join(
        [
            *lines,
            "",
            f"Case: {case.case_number}",
            f"Open it: {BASE_URL_MARK}/cases/{case.id}",
            "",
            "This message holds no names: open CLMS to see the child's record.",
        ]
    )
    sent = 0
    for user in {u.id: u for u in users}.values():
        if queue_notification(
            session, user, kind=kind, subject=subject, body=body, alert_id=case.alert_id, now=now
        ):
            sent += 1
    return sent


def supervisors_of(session: Session, case: Case) -> list[User]:
    """The active supervisors covering the case's village."""
    if case.village_id is None:
        return []
    return users_for_villages(session, [case.village_id], "supervisor").get(case.village_id, [])


def officers_of(session: Session, case: Case) -> list[User]:
    """The case officer, else the active officers covering the case's village."""
    if case.officer_id is not None:
        officer = session.get(User, case.officer_id)
        if officer is not None and officer.active:
            return [officer]
    if case.village_id is None:
        return []
    return users_for_villages(session, [case.village_id], "officer").get(case.village_id, [])


# --- step 1: opening and verification -----------------------------------------------------------


def open_case(
    session: Session,
    user: User,
    alert_id: int,
    *,
    child_uid: str | None = None,
    now: dt.datetime | None = None,
) -> Case:
    """Open a case from an alert: the case starts at verification.

    A reported concern names no child yet: ``child_uid`` must name a child of the alert's
    village (a household visit records the child first). A child who already has an open case
    gets no second one: the alert joins that case. The alert becomes ``case_opened`` (and is
    acknowledged, if it was not).
    """
    from alerts.queue import get_alert

    now = now or utcnow()
    if user.role not in wf.CASE_ROLES:
        raise problem("auth.forbidden")
    alert = get_alert(session, user, alert_id)
    if alert is None:
        raise problem("not_found")
    if alert.status not in ACTIVE_ALERT_STATUSES:
        raise problem(
            "alert.transition_refused",
            detail=Msg(
                "Alert {id} is {status}; only a new or acknowledged alert can become a case.",
                id=alert.id,
                status=Msg(alert.status.replace("_", " ")),
            ),
        )
    child = alert.child
    if child is None:
        uid = (child_uid or "").strip()
        if not uid:
            raise field_errors({"child": Msg("is required: choose the child this report is about")})
        child = session.scalar(
            select(Child)
            .join(Household, Household.id == Child.household_id)
            .where(
                Child.child_uid == uid,
                Child.merged_into_id.is_(None),
                Household.village_id == alert.village_id,
            )
        )
        if child is None:
            raise field_errors(
                {"child": Msg("names no child of village {village}", village=alert.village.code)}
            )
    household = session.get(Household, child.household_id)
    existing = session.scalar(
        select(Case).where(Case.child_id == child.id, Case.state.in_(wf.OPEN_STATES))
    )
    if existing is not None:
        _close_alert_into_case(session, alert, existing, user, now)
        record_event(session, existing, user, "alert_linked",
                     {"alert_id": alert.id, "category": alert.category}, now=now)  # fmt: skip
        session.flush()
        return existing
    officer_id = alert.assigned_to_id
    if officer_id is None and user.role in ("officer", "supervisor"):
        officer_id = user.id
    case = Case(
        case_number=f"NEW-{alert.id}-{now.timestamp():.6f}",
        child_id=child.id,
        village_id=(household.village_id if household else None) or alert.village_id,
        supplier_id=alert.supplier_id or (household.supplier_id if household else None),
        state="verification",
        version=1,
        category=alert.category,
        opened_at=now,
        opened_by_id=user.id,
        state_changed_at=now,
        updated_at=now,
        alert_id=alert.id,
        officer_id=officer_id,
        step_due_at=wf.step_due("verification", now, policy(), alert_visit_due=alert.visit_due_at),
        root_causes=[],
        reopen_count=0,
    )
    try:
        with session.begin_nested():
            session.add(case)
            session.flush()
    except IntegrityError as e:
        # another officer opened the child's case a moment ago (uq_cases_open_child)
        raise problem(
            "case.transition_refused",
            detail=Msg("A case was opened for this child a moment ago; reload the alert."),
        ) from e
    case.case_number = f"CL-{case.id:06d}"
    session.flush()
    _close_alert_into_case(session, alert, case, user, now)
    record_event(
        session,
        case,
        user,
        "opened",
        {"alert_id": alert.id, "category": alert.category, "severity": alert.severity,
         "source": alert.source},
        now=now,
        to_state="verification",
    )  # fmt: skip
    session.flush()
    return case


def _close_alert_into_case(
    session: Session, alert: Alert, case: Case, user: User, now: dt.datetime
) -> None:
    values = {"status": "case_opened", "updated_at": now, "closed_at": now}
    if alert.acknowledged_at is None:
        values.update(acknowledged_at=now, acknowledged_by_id=user.id)
    done = session.execute(
        update(Alert)
        .where(Alert.id == alert.id, Alert.status.in_(ACTIVE_ALERT_STATUSES))
        .values(**values)
        .execution_options(synchronize_session=False)
    ).rowcount
    if done != 1:
        raise problem(
            "alert.transition_refused",
            detail=Msg("Alert {id} changed meanwhile; reload it and try again.", id=alert.id),
        )
    session.add(
        AlertEvent(
            alert_id=alert.id,
            at=now,
            user_id=user.id,
            action="case_opened",
            detail={"case_id": case.id, "case_number": case.case_number},
        )
    )
    session.refresh(alert)


def record_verification(
    session: Session,
    user: User,
    case_id: int,
    *,
    confirmed: bool | None,
    visited_on,
    findings: str | None = None,
    reason: str | None = None,
    expected_version: int | None = None,
    now: dt.datetime | None = None,
) -> Case:
    """Record the officer's verification visit: confirmed (to assessment) or not confirmed
    (closed, with the reason)."""
    now = now or utcnow()
    case = case_in_scope(session, user, case_id)
    errors: dict = {}
    if confirmed is None:
        errors["confirmed"] = Msg("is required: was the allegation confirmed?")
    day = _date(errors, "visited_on", visited_on)
    if day is not None and day > now.date():
        errors["visited_on"] = Msg("cannot be in the future")
    findings = _text(errors, "findings", findings, required=bool(confirmed))
    reason = _text(errors, "reason", reason, required=confirmed is False)
    move = "verify_confirmed" if confirmed is not False else "verify_not_confirmed"
    check_move(session, case, move, user)
    if errors:
        raise field_errors(errors)
    visited_at = _at(day, now)
    if confirmed:
        change_case(
            session, case, user, now=now, expected_version=expected_version,
            to_state="assessment", action="verified",
            detail={"confirmed": True, "visited_on": day.isoformat(), "findings": findings},
            verified_at=visited_at, verification="confirmed",
        )  # fmt: skip
    else:
        change_case(
            session, case, user, now=now, expected_version=expected_version,
            to_state="closed", action="verified",
            detail={"confirmed": False, "visited_on": day.isoformat(), "reason": reason},
            verified_at=visited_at, verification="not_confirmed", closed_at=now,
            closed_by_id=user.id, outcome="not_confirmed", closure_reason=reason,
            step_due_at=None, next_followup_due_at=None,
        )  # fmt: skip
    if case.alert_id is not None:
        # the verification visit is the officer's first visit of the alert
        session.execute(
            update(Alert)
            .where(Alert.id == case.alert_id, Alert.first_visit_at.is_(None))
            .values(first_visit_at=visited_at)
            .execution_options(synchronize_session=False)
        )
    session.flush()
    return case


# --- step 2: best-interest assessment ------------------------------------------------------------


@dataclass
class AssessmentInput:
    """The best-interest assessment form."""

    risk_level: str | None = None
    child_views: str | None = None
    family_situation: str | None = None
    schooling: str | None = None
    schooling_notes: str | None = None
    immediate_safety: str | None = None
    safety_notes: str | None = None
    response_types: list[str] = field(default_factory=list)
    response_level: str | None = None


def record_assessment(
    session: Session,
    user: User,
    case_id: int,
    data: AssessmentInput,
    *,
    expected_version: int | None = None,
    now: dt.datetime | None = None,
) -> Assessment:
    """Record a best-interest assessment. From assessment (or reopened) the case moves to its
    action plan; later, it is a re-assessment and the case stays where it is."""
    now = now or utcnow()
    case = case_in_scope(session, user, case_id)
    move = "assess" if case.state in ("assessment", "reopened") else "reassess"
    check_move(session, case, move, user)
    errors: dict = {}
    risk = _choice(errors, "risk_level", data.risk_level, wf.RISK_LEVELS)
    views = _text(errors, "child_views", data.child_views, required=True)
    family = _text(errors, "family_situation", data.family_situation, required=True)
    schooling = _choice(errors, "schooling", data.schooling, wf.SCHOOLING)
    schooling_notes = _text(errors, "schooling_notes", data.schooling_notes, required=False)
    safety = _choice(errors, "immediate_safety", data.immediate_safety, wf.SAFETY)
    safety_notes = _text(
        errors, "safety_notes", data.safety_notes, required=safety in ("at_risk", "in_danger")
    )
    types = [t for t in dict.fromkeys(data.response_types or []) if t]
    unknown = [t for t in types if t not in wf.RESPONSE_TYPES]
    if not types:
        errors["response_types"] = Msg("needs at least one type of response")
    elif unknown:
        errors["response_types"] = Msg(
            "must be among: {choices}", choices=", ".join(wf.RESPONSE_TYPES)
        )
    level = _choice(errors, "response_level", data.response_level, wf.RESPONSE_LEVELS)
    if errors:
        raise field_errors(errors)
    assessment = Assessment(
        case_id=case.id, assessed_at=now, assessed_by_id=user.id, risk_level=risk,
        child_views=views, family_situation=family, schooling=schooling,
        schooling_notes=schooling_notes, immediate_safety=safety, safety_notes=safety_notes,
        response_types=types, response_level=level,
    )  # fmt: skip
    session.add(assessment)
    session.flush()
    detail = {"assessment_id": assessment.id, "risk_level": risk, "immediate_safety": safety,
              "response_level": level}  # fmt: skip
    if move == "assess":
        plan = current_plan(session, case.id)
        if plan is None or plan.status in ("approved", "auto"):
            if plan is not None:
                plan.status = "superseded"
            session.add(
                ActionPlan(
                    case_id=case.id,
                    version=(plan.version + 1) if plan else 1,
                    status="draft",
                    created_at=now,
                    created_by_id=user.id,
                )
            )
        change_case(session, case, user, now=now, expected_version=expected_version,
                    to_state="action_plan", action="assessed", detail=detail,
                    risk_level=risk)  # fmt: skip
    else:
        plan = current_plan(session, case.id)
        if (
            plan is not None
            and plan.status == "auto"
            and wf.needs_plan_approval(risk, case.category)
        ):
            detail["plan_needs_approval"] = True
            _notify(
                session, supervisors_of(session, case), kind="case",
                subject=f"[CLMS] Case {case.case_number}: risk now high, plan not approved",
                lines=["A re-assessment found a high risk for a child whose plan was not",
                       "approved by a supervisor. Please review the plan."],
                case=case, now=now,
            )  # fmt: skip
        change_case(session, case, user, now=now, expected_version=expected_version,
                    action="reassessed", detail=detail, risk_level=risk)  # fmt: skip
    return assessment


# --- step 3: the action plan ---------------------------------------------------------------------


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
    """The child's age on ``on``: from the date of birth, else the latest recorded age."""
    child = case.child or session.get(Child, case.child_id)
    if child.dob is not None:
        d = on.date()
        return d.year - child.dob.year - ((d.month, d.day) < (child.dob.month, child.dob.day))
    last = session.execute(
        select(ChildVisit.age, Visit.visited_at)
        .join(Visit, Visit.id == ChildVisit.visit_id)
        .where(ChildVisit.child_id == case.child_id, ChildVisit.age.is_not(None))
        .order_by(Visit.visited_at.desc())
        .limit(1)
    ).first()
    if last is None:
        return None
    age, seen = last
    return age + max(0, int((on - seen).days // 365.25))


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
) -> PlannedService:
    """Add a service to the plan: from the catalogue, with the provider who delivers it and the
    date it is due. In implementation it joins the plan in force."""
    now = now or utcnow()
    case = case_in_scope(session, user, case_id)
    check_move(session, case, "edit_plan", user)
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
    if service is not None and (service.min_age is not None or service.max_age is not None):
        age = child_age(session, case, now)
        if age is not None and not (
            (service.min_age is None or age >= service.min_age)
            and (service.max_age is None or age <= service.max_age)
        ):
            errors["service"] = Msg(
                "is for children aged {low} to {high}; this child is {age}",
                low=service.min_age if service.min_age is not None else 0,
                high=service.max_age if service.max_age is not None else 17,
                age=age,
            )
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
        session, case, user, now=now, expected_version=expected_version,
        action="service_planned",
        detail={"planned_service_id": planned.id, "service": service.code,
                "provider": provider.code, "due_on": day.isoformat()},
    )  # fmt: skip
    return planned


def _provider(errors: dict, session: Session, provider_code, service: ServiceType | None):
    if not provider_code:
        errors["provider"] = Msg("is required")
        return None
    provider = session.scalar(select(ServiceProvider).where(ServiceProvider.code == provider_code))
    if provider is None or not provider.active:
        errors["provider"] = Msg("is not an active provider")
        return None
    if service is not None and provider.services and service.code not in provider.services:
        errors["provider"] = Msg("{provider} does not offer this service", provider=provider.name)
        return None
    return provider


def remove_planned_service(
    session: Session, user: User, planned_service_id: int, *, now: dt.datetime | None = None
) -> Case:
    """Take a service off a plan that is still being drafted (or was returned)."""
    now = now or utcnow()
    planned = session.get(PlannedService, planned_service_id)
    if planned is None:
        raise problem("not_found")
    case = case_in_scope(session, user, planned.case_id)
    check_move(session, case, "edit_plan", user)
    plan = session.get(ActionPlan, planned.plan_id) if planned.plan_id else None
    if plan is None or plan.status not in ("draft", "returned") or planned.status != "planned":
        raise problem(
            "case.transition_refused",
            detail=Msg("Only a service of a plan still being drafted can be removed; "
                       "close it with a reason instead."),
        )  # fmt: skip
    session.delete(planned)
    session.flush()
    change_case(session, case, user, now=now, action="service_removed",
                detail={"service": planned.service_code})  # fmt: skip
    return case


def submit_plan(
    session: Session,
    user: User,
    case_id: int,
    *,
    expected_version: int | None = None,
    now: dt.datetime | None = None,
) -> Case:
    """Submit the plan. It needs a supervisor's approval when the risk is high or the category is
    a worst form; otherwise it is in force at once and the case moves to implementation."""
    now = now or utcnow()
    case = case_in_scope(session, user, case_id)
    check_move(session, case, "submit_plan", user)
    plan = current_plan(session, case.id)
    needs = wf.needs_plan_approval(case.risk_level, case.category)
    plan.needs_approval = needs
    plan.submitted_at, plan.submitted_by_id = now, user.id
    if needs:
        plan.status = "submitted"
        change_case(
            session, case, user, now=now, expected_version=expected_version,
            action="plan_submitted",
            detail={"plan_version": plan.version, "needs_approval": True},
            step_due_at=wf.step_due("action_plan", now, policy(), plan_submitted=True),
        )  # fmt: skip
        _notify(
            session, supervisors_of(session, case), kind="case",
            subject=f"[CLMS] Plan to approve: case {case.case_number}",
            lines=["A remediation plan needs your approval (high risk or a worst form of",
                   "child labour)."],
            case=case, now=now,
        )  # fmt: skip
    else:
        plan.status = "auto"
        plan.decided_at = now
        _start_implementation(session, case, user, now, expected_version, "plan_submitted",
                              {"plan_version": plan.version, "needs_approval": False})  # fmt: skip
    return case


def _start_implementation(session, case, user, now, expected_version, action, detail) -> None:
    interval = dt.timedelta(days=policy().followup_interval_days)
    change_case(
        session, case, user, now=now, expected_version=expected_version,
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
) -> Case:
    """A supervisor approves the submitted plan (the case moves to implementation) or returns it
    with a note saying what to change."""
    now = now or utcnow()
    case = case_in_scope(session, user, case_id)
    check_move(session, case, "approve_plan" if approve else "return_plan", user)
    errors: dict = {}
    note = _text(errors, "note", note, required=not approve)
    if errors:
        raise field_errors(errors)
    plan = current_plan(session, case.id)
    plan.decided_at, plan.decided_by_id, plan.decision_note = now, user.id, note
    if approve:
        plan.status = "approved"
        _start_implementation(session, case, user, now, expected_version, "plan_approved",
                              {"plan_version": plan.version, "note": note})  # fmt: skip
    else:
        plan.status = "returned"
        change_case(
            session, case, user, now=now, expected_version=expected_version,
            action="plan_returned", detail={"plan_version": plan.version, "note": note},
            step_due_at=wf.step_due("action_plan", now, policy()),
        )  # fmt: skip
        _notify(
            session, officers_of(session, case), kind="case",
            subject=f"[CLMS] Plan returned: case {case.case_number}",
            lines=["A supervisor returned the remediation plan with a note; please revise it."],
            case=case, now=now,
        )  # fmt: skip
    return case


# --- services delivered or closed -----------------------------------------------------------------


def record_service_outcome(
    session: Session,
    user: User,
    planned_service_id: int,
    *,
    delivered: bool,
    on=None,
    reason: str | None = None,
    now: dt.datetime | None = None,
) -> PlannedService:
    """An officer records a planned service as delivered (on a date), or closes it undelivered
    with a reason (for example, the family moved or the service was no longer needed)."""
    now = now or utcnow()
    planned = session.get(PlannedService, planned_service_id)
    if planned is None:
        raise problem("not_found")
    case = case_in_scope(session, user, planned.case_id)
    check_move(session, case, "edit_plan", user)
    errors: dict = {}
    day = _date(errors, "on", on, required=delivered)
    if day is not None and day > now.date():
        errors["on"] = Msg("cannot be in the future")
    reason = _text(errors, "reason", reason, required=not delivered)
    if planned.status in ("delivered", "closed"):
        errors["service"] = Msg("is already {status}", status=Msg(planned.status))
    open_referral = session.scalar(
        select(Referral.id).where(
            Referral.planned_service_id == planned.id,
            Referral.status.in_(("pending", "accepted")),
        )
    )
    if open_referral is not None:
        errors["service"] = Msg(
            "has a referral still open: the provider records it, or revoke the referral first"
        )
    if errors:
        raise field_errors(errors)
    if delivered:
        planned.status, planned.delivered_at = "delivered", _at(day, now)
        planned.delivered_source = "officer"
        action, detail = "service_delivered", {"on": day.isoformat()}
    else:
        planned.status, planned.closed_reason = "closed", reason
        action, detail = "service_closed", {"reason": reason}
    detail.update(service=planned.service_code, planned_service_id=planned.id)
    session.flush()
    change_case(session, case, user, now=now, action=action, detail=detail)
    propose_closure_if_met(session, case, now)
    return planned


# --- consent and referrals ---------------------------------------------------------------------


def record_consent(
    session: Session,
    user: User,
    case_id: int,
    *,
    provider_code: str | None,
    given_by: str | None,
    method: str | None,
    shares: list[str] | None,
    notes: str | None = None,
    now: dt.datetime | None = None,
) -> Consent:
    """Record the child's or guardian's consent to share the case with a provider, and what the
    provider may see. It replaces an earlier consent for the same provider."""
    now = now or utcnow()
    case = case_in_scope(session, user, case_id)
    if case.state not in wf.OPEN_STATES:
        raise problem(
            "case.transition_refused",
            detail=Msg("The case is {state}; consent is recorded on open cases only.",
                       state=wf.state_msg(case.state)),
        )  # fmt: skip
    errors: dict = {}
    provider = _provider(errors, session, provider_code, None)
    given_by = _choice(errors, "given_by", given_by, wf.CONSENT_GIVERS)
    method = _choice(errors, "method", method, wf.CONSENT_METHODS)
    items = [s for s in dict.fromkeys(shares or []) if s]
    if any(s not in wf.SHAREABLE for s in items):
        errors["shares"] = Msg("must be among: {choices}", choices=", ".join(wf.SHAREABLE))
    notes = _text(errors, "notes", notes, required=False)
    if errors:
        raise field_errors(errors)
    for old in session.scalars(
        select(Consent).where(
            Consent.case_id == case.id,
            Consent.provider_id == provider.id,
            Consent.withdrawn_at.is_(None),
        )
    ):
        old.withdrawn_at, old.withdrawn_by_id = now, user.id
    consent = Consent(
        case_id=case.id, provider_id=provider.id, given_by=given_by, method=method,
        shares=[s for s in wf.SHAREABLE if s in items], notes=notes, recorded_at=now,
        recorded_by_id=user.id,
    )  # fmt: skip
    session.add(consent)
    session.flush()
    change_case(
        session, case, user, now=now, action="consent_recorded",
        detail={"consent_id": consent.id, "provider": provider.code, "given_by": given_by,
                "shares": consent.shares},
    )  # fmt: skip
    return consent


def withdraw_consent(
    session: Session, user: User, consent_id: int, *, now: dt.datetime | None = None
) -> Consent:
    """The child or guardian withdraws a consent: no new referral to that provider under it."""
    now = now or utcnow()
    consent = session.get(Consent, consent_id)
    if consent is None:
        raise problem("not_found")
    case = case_in_scope(session, user, consent.case_id)
    if consent.withdrawn_at is not None:
        raise problem("case.transition_refused", detail=Msg("This consent was already withdrawn."))
    consent.withdrawn_at, consent.withdrawn_by_id = now, user.id
    session.flush()
    change_case(session, case, user, now=now, action="consent_withdrawn",
                detail={"consent_id": consent.id})  # fmt: skip
    return consent


def active_consent(session: Session, case_id: int, provider_id: int) -> Consent | None:
    """The consent in force for sharing the case with the provider, if any."""
    return session.scalar(
        select(Consent)
        .where(
            Consent.case_id == case_id,
            Consent.provider_id == provider_id,
            Consent.withdrawn_at.is_(None),
        )
        .order_by(Consent.recorded_at.desc(), Consent.id.desc())
        .limit(1)
    )


def refer(
    session: Session,
    user: User,
    case_id: int,
    *,
    planned_service_id: int | None = None,
    service_code: str | None = None,
    provider_code: str | None = None,
    override_reason: str | None = None,
    message: str | None = None,
    now: dt.datetime | None = None,
) -> Referral:
    """Refer the case to a provider for a planned service, or, for an urgent service, directly
    at any step (urgent protection never waits for an assessment or a plan).

    Refused unless the consent of the child or guardian to share with that provider is recorded,
    or an authorised user overrides it with a reason (recorded, and written to the audit log).
    """
    now = now or utcnow()
    case = case_in_scope(session, user, case_id)
    errors: dict = {}
    planned = None
    if planned_service_id is not None:
        planned = session.get(PlannedService, planned_service_id)
        if planned is None or planned.case_id != case.id:
            raise problem("not_found")
        if planned.status != "planned":
            raise problem(
                "case.transition_refused",
                detail=Msg("This planned service is {status}; only a planned one can be referred.",
                           status=Msg(planned.status)),
            )  # fmt: skip
        service_code = planned.service_code
        provider = session.get(ServiceProvider, planned.provider_id)
        if provider_code and provider_code != provider.code:
            provider = _provider(errors, session, provider_code, None)
    else:
        provider = None
    service = session.scalar(select(ServiceType).where(ServiceType.code == service_code))
    if service is None:
        errors["service"] = Msg("is not a service of the catalogue")
    if provider is None and "provider" not in errors:
        provider = _provider(errors, session, provider_code, service)
    elif provider is not None and service is not None:
        _provider(errors, session, provider.code, service)
    urgent = bool(service and service.urgent)
    if planned is None and service is not None and not urgent:
        errors["service"] = Msg("is not urgent: refer it from the plan (add it to the plan first)")
    message = _text(errors, "message", message, required=False)
    override_reason = _text(errors, "override_reason", override_reason, required=False)
    if errors:
        raise field_errors(errors)
    check_move(session, case, "refer_urgent" if urgent else "refer", user)
    duplicate = session.scalar(
        select(Referral.id).where(
            Referral.case_id == case.id,
            Referral.provider_id == provider.id,
            Referral.service_code == service.code,
            Referral.status.in_(("pending", "accepted")),
        )
    )
    if duplicate is not None:
        raise problem(
            "referral.transition_refused",
            detail=Msg("This case is already referred to {provider} for this service "
                       "(referral {id}).", provider=provider.name, id=duplicate),
        )  # fmt: skip
    consent = active_consent(session, case.id, provider.id)
    if consent is None:
        if not override_reason:
            raise problem(
                "referral.consent_missing",
                provider=provider.name,
                who=Msg("a supervisor; an officer for an urgent service"),
            )
        if not wf.may_override_consent(user.role, urgent):
            raise problem(
                "referral.transition_refused",
                detail=Msg("Only a supervisor may override consent for a service that is not "
                           "urgent. Record the consent of the child or guardian first."),
            )  # fmt: skip
    shared = wf.shared_items(consent.shares if consent else None, override=consent is None)
    referral = Referral(
        case_id=case.id, planned_service_id=planned.id if planned else None,
        provider_id=provider.id, service_code=service.code, urgent=urgent, status="pending",
        outcome="referred", consent_id=consent.id if consent else None,
        override_reason=None if consent else override_reason,
        override_by_id=None if consent else user.id, shared=shared, message=message,
        created_at=now, created_by_id=user.id,
        respond_by=wf.referral_respond_by(urgent, now, policy()),
        complete_by=planned.due_on if planned else None,
    )  # fmt: skip
    session.add(referral)
    if planned is not None:
        planned.status = "referred"
    session.flush()
    detail = {"referral_id": referral.id, "service": service.code, "provider": provider.code,
              "urgent": urgent, "shared": shared}  # fmt: skip
    if consent is None:
        detail["consent_override"] = override_reason
        record(session, user, "case.consent_override", f"case:{case.case_number}",
               reason=override_reason, provider=provider.code)  # fmt: skip
    change_case(session, case, user, now=now, action="referred", detail=detail)
    staff = session.scalars(
        select(User).where(User.provider_id == provider.id, User.active.is_(True))
    ).all()
    _notify(
        session, staff, kind="referral",
        subject=f"[CLMS] {'URGENT ' if urgent else ''}referral {referral.id}: "
                f"{service.name_en}",
        lines=[f"A child is referred to {provider.name} for: {service.name_en}.",
               f"Please answer by {referral.respond_by:%Y-%m-%d %H:%M} UTC.",
               f"Open the referral: {BASE_URL_MARK}/referrals/{referral.id}"],
        case=case, now=now,
    )  # fmt: skip
    return referral


def revoke_referral(
    session: Session,
    user: User,
    referral_id: int,
    *,
    reason: str | None,
    now: dt.datetime | None = None,
) -> Referral:
    """The case officer withdraws a referral that is waiting or under way (with a reason); its
    planned service can be referred again."""
    now = now or utcnow()
    referral = session.get(Referral, referral_id)
    if referral is None:
        raise problem("not_found")
    case = case_in_scope(session, user, referral.case_id)
    errors: dict = {}
    reason = _text(errors, "reason", reason, required=True)
    if errors:
        raise field_errors(errors)
    _move_referral(referral, "revoke")
    referral.revoked_at, referral.revoked_reason = now, reason
    _reopen_planned(session, referral)
    session.flush()
    change_case(session, case, user, now=now, action="referral_revoked",
                detail={"referral_id": referral.id, "reason": reason})  # fmt: skip
    return referral


def _move_referral(referral: Referral, move: str) -> None:
    try:
        referral.status = wf.check_referral(referral.status, move)
    except wf.Refused as e:
        raise problem("referral.transition_refused", detail=e.msg) from e
    referral.escalated_at = None  # a new phase: it may escalate again if it stalls


def _reopen_planned(session: Session, referral: Referral) -> None:
    if referral.planned_service_id is not None:
        planned = session.get(PlannedService, referral.planned_service_id)
        if planned is not None and planned.status == "referred":
            planned.status = "planned"


# --- the provider's side -----------------------------------------------------------------------


def get_referral_for_provider(session: Session, user: User, referral_id: int) -> Referral | None:
    """A referral sent to the provider ``user`` works for, else None."""
    if user.role != "provider" or user.provider_id is None:
        return None
    referral = session.get(Referral, referral_id)
    if referral is None or referral.provider_id != user.provider_id:
        return None
    return referral


def _provider_referral(session: Session, user: User, referral_id: int) -> Referral:
    referral = get_referral_for_provider(session, user, referral_id)
    if referral is None:
        raise problem("not_found")
    return referral


def accept_referral(
    session: Session, user: User, referral_id: int, *, now: dt.datetime | None = None
) -> Referral:
    """The provider accepts the referral."""
    now = now or utcnow()
    referral = _provider_referral(session, user, referral_id)
    _move_referral(referral, "accept")
    referral.responded_at, referral.responded_by_id = now, user.id
    session.flush()
    case = session.get(Case, referral.case_id)
    change_case(session, case, user, now=now, action="referral_accepted",
                detail={"referral_id": referral.id, "service": referral.service_code})  # fmt: skip
    return referral


def reject_referral(
    session: Session,
    user: User,
    referral_id: int,
    *,
    reason: str | None,
    outcome: str | None = None,
    now: dt.datetime | None = None,
) -> Referral:
    """The provider rejects the referral, saying why; the officer is told and may refer the
    service elsewhere."""
    now = now or utcnow()
    referral = _provider_referral(session, user, referral_id)
    errors: dict = {}
    reason = _text(errors, "reason", reason, required=True)
    outcome = _choice(
        errors, "outcome", outcome,
        [o for o in wf.REFERRAL_DONE_OUTCOMES if o != "service_provided"], required=False,
    )  # fmt: skip
    if errors:
        raise field_errors(errors)
    _move_referral(referral, "reject")
    referral.responded_at, referral.responded_by_id = now, user.id
    referral.rejection_reason = reason
    if outcome:
        referral.outcome = outcome
    _reopen_planned(session, referral)
    session.flush()
    case = session.get(Case, referral.case_id)
    change_case(
        session, case, user, now=now, action="referral_rejected",
        detail={"referral_id": referral.id, "service": referral.service_code, "reason": reason,
                "outcome": outcome},
    )  # fmt: skip
    _notify(
        session, officers_of(session, case), kind="referral",
        subject=f"[CLMS] Referral {referral.id} rejected: case {case.case_number}",
        lines=["A provider rejected a referral; refer the service elsewhere or close it."],
        case=case, now=now,
    )  # fmt: skip
    return referral


def complete_referral(
    session: Session,
    user: User,
    referral_id: int,
    *,
    outcome: str | None,
    service_date=None,
    note: str | None = None,
    now: dt.datetime | None = None,
) -> Referral:
    """The provider records what came of an accepted referral: the service provided (on a date),
    or why not. A service provided (or already received elsewhere) delivers the planned service;
    any other outcome closes it with that reason."""
    now = now or utcnow()
    referral = _provider_referral(session, user, referral_id)
    errors: dict = {}
    outcome = _choice(errors, "outcome", outcome, wf.REFERRAL_DONE_OUTCOMES)
    day = _date(errors, "service_date", service_date,
                required=outcome in wf.DELIVERED_OUTCOMES)  # fmt: skip
    if day is not None and day > now.date():
        errors["service_date"] = Msg("cannot be in the future")
    note = _text(errors, "note", note, required=False)
    if errors:
        raise field_errors(errors)
    _move_referral(referral, "complete")
    referral.outcome, referral.done_at = outcome, now
    referral.service_date, referral.outcome_note = day, note
    if referral.planned_service_id is not None:
        planned = session.get(PlannedService, referral.planned_service_id)
        if outcome in wf.DELIVERED_OUTCOMES:
            planned.status, planned.delivered_at = "delivered", _at(day, now)
            planned.delivered_source = "referral"
        else:
            planned.status, planned.closed_reason = "closed", outcome.replace("_", " ")
    session.flush()
    case = session.get(Case, referral.case_id)
    change_case(
        session, case, user, now=now, action="referral_done",
        detail={"referral_id": referral.id, "service": referral.service_code,
                "outcome": outcome, "service_date": day.isoformat() if day else None},
    )  # fmt: skip
    propose_closure_if_met(session, case, now)
    return referral


# --- steps 5 and 6: closure ---------------------------------------------------------------------


def propose_closure_if_met(session: Session, case: Case, now: dt.datetime) -> bool:
    """The system proposes closure when a case in implementation meets the closure criteria;
    returns whether it did."""
    if case.state != "implementation":
        return False
    facts = facts_of(session, case)
    holds, _unmet = wf.closure_criteria(
        facts.observations, facts.services, facts.open_referrals, policy()
    )
    if not holds:
        return False
    _propose(session, case, None, now, None)
    return True


def propose_closure(
    session: Session,
    user: User,
    case_id: int,
    *,
    expected_version: int | None = None,
    now: dt.datetime | None = None,
) -> Case:
    """An officer proposes closure (the criteria must hold)."""
    now = now or utcnow()
    case = case_in_scope(session, user, case_id)
    check_move(session, case, "propose_closure", user)
    _propose(session, case, user, now, expected_version)
    return case


def _propose(session, case, user, now, expected_version) -> None:
    change_case(
        session, case, user, now=now, expected_version=expected_version,
        to_state="closure_review", action="closure_proposed",
        detail={"by": "system" if user is None else "officer"},
        closure_proposed_at=now, next_followup_due_at=None,
    )  # fmt: skip
    _notify(
        session, supervisors_of(session, case), kind="case",
        subject=f"[CLMS] Closure to approve: case {case.case_number}",
        lines=["A remediation case meets the closure criteria and waits for your approval."],
        case=case, now=now,
    )  # fmt: skip


def decide_closure(
    session: Session,
    user: User,
    case_id: int,
    *,
    approve: bool,
    outcome: str | None = None,
    lessons_learned: str | None = None,
    root_causes: list[str] | None = None,
    note: str | None = None,
    expected_version: int | None = None,
    now: dt.datetime | None = None,
) -> Case:
    """A supervisor approves the closure, recording the outcome, the lessons learned and the
    root causes; or returns the case to implementation with a note."""
    now = now or utcnow()
    case = case_in_scope(session, user, case_id)
    check_move(session, case, "approve_closure" if approve else "return_closure", user)
    errors: dict = {}
    if approve:
        outcome = _choice(errors, "outcome", outcome,
                          [o for o in wf.CLOSURE_OUTCOMES if o != "not_confirmed"])  # fmt: skip
        lessons = _text(errors, "lessons_learned", lessons_learned, required=True)
        causes = [c for c in dict.fromkeys(root_causes or []) if c]
        if not causes:
            errors["root_causes"] = Msg("needs at least one root cause")
        elif any(c not in wf.ROOT_CAUSES for c in causes):
            errors["root_causes"] = Msg("must be among: {choices}",
                                        choices=", ".join(wf.ROOT_CAUSES))  # fmt: skip
        note = _text(errors, "note", note, required=False)
    else:
        note = _text(errors, "note", note, required=True)
    if errors:
        raise field_errors(errors)
    if approve:
        change_case(
            session, case, user, now=now, expected_version=expected_version,
            to_state="closed", action="closed",
            detail={"outcome": outcome, "root_causes": causes, "lessons_learned": lessons,
                    "note": note},
            closed_at=now, closed_by_id=user.id, outcome=outcome, lessons_learned=lessons,
            root_causes=causes, step_due_at=None, next_followup_due_at=None,
        )  # fmt: skip
    else:
        interval = dt.timedelta(days=policy().followup_interval_days)
        change_case(
            session, case, user, now=now, expected_version=expected_version,
            to_state="implementation", action="closure_returned", detail={"note": note},
            closure_proposed_at=None, step_due_at=None, next_followup_due_at=now + interval,
            followup_reminded_at=None,
        )  # fmt: skip
    return case


# --- transfers, assignment, notes ---------------------------------------------------------------


@dataclass
class TransferInput:
    """The transfer form: to another agency or jurisdiction (external), or to another village
    covered by this system (internal: the child moved)."""

    kind: str | None = None
    to_agency: str | None = None
    to_country: str | None = None
    to_village: str | None = None
    to_contact: str | None = None
    reason: str | None = None
    shared: list[str] = field(default_factory=list)
    consent_basis: str | None = None


#: what may go with a transferred case
TRANSFER_SHAREABLE = (
    "identity",
    "case_summary",
    "assessments",
    "plan_and_services",
    "referrals",
    "visit_history",
    "household_contact",
)


def transfer_case(
    session: Session,
    user: User,
    case_id: int,
    data: TransferInput,
    *,
    expected_version: int | None = None,
    now: dt.datetime | None = None,
) -> CaseTransfer:
    """Hand the case to another agency or jurisdiction (the case ends here as ``transferred``,
    its open referrals revoked), or move it to another village of this system (it goes on there,
    with that village's officers). Records what was shared and on what basis."""
    now = now or utcnow()
    case = case_in_scope(session, user, case_id)
    errors: dict = {}
    kind = _choice(errors, "kind", data.kind, wf.TRANSFER_KINDS)
    check_move(session, case, "move_village" if kind == "internal" else "transfer", user)
    reason = _text(errors, "reason", data.reason, required=True)
    basis = _choice(errors, "consent_basis", data.consent_basis, wf.TRANSFER_BASES)
    shared = [s for s in dict.fromkeys(data.shared or []) if s]
    if not shared:
        errors["shared"] = Msg("must say what is shared (at least one item)")
    elif any(s not in TRANSFER_SHAREABLE for s in shared):
        errors["shared"] = Msg("must be among: {choices}",
                               choices=", ".join(TRANSFER_SHAREABLE))  # fmt: skip
    contact = _text(errors, "to_contact", data.to_contact, required=False, limit=MAX_SHORT)
    to_village = None
    country = None
    if kind == "internal":
        code = (data.to_village or "").strip()
        to_village = session.scalar(select(Village).where(Village.code == code)) if code else None
        if not code:
            errors["to_village"] = Msg("is required")
        elif to_village is None:
            errors["to_village"] = Msg("names no known village ({code})", code=code)
        elif to_village.id == case.village_id:
            errors["to_village"] = Msg("is the village the case is already in")
        agency = _text(errors, "to_agency", data.to_agency, required=False, limit=200)
        agency = agency or (to_village.name if to_village else "")
    else:
        agency = _text(errors, "to_agency", data.to_agency, required=True, limit=200)
        country = (data.to_country or "").strip().upper() or None
        if country is not None and not (len(country) == 3 and country.isalpha()):
            errors["to_country"] = Msg("must be a three-letter country code (ISO 3166), e.g. GHA")
    if errors:
        raise field_errors(errors)
    transfer = CaseTransfer(
        case_id=case.id, kind=kind, to_agency=agency, to_country=country,
        to_village_id=to_village.id if to_village else None, from_village_id=case.village_id,
        to_contact=contact, reason=reason, shared=[s for s in TRANSFER_SHAREABLE if s in shared],
        consent_basis=basis, transferred_at=now, transferred_by_id=user.id,
    )  # fmt: skip
    session.add(transfer)
    session.flush()
    detail = {"transfer_id": transfer.id, "kind": kind, "to_agency": agency,
              "to_country": country, "shared": transfer.shared, "consent_basis": basis}  # fmt: skip
    if kind == "internal":
        detail["to_village"] = to_village.code
        change_case(
            session, case, user, now=now, expected_version=expected_version,
            action="moved_village", detail=detail, village_id=to_village.id, officer_id=None,
            monitor_id=None,
        )  # fmt: skip
        _notify(
            session, officers_of(session, case), kind="case",
            subject=f"[CLMS] Case {case.case_number} moved to your area",
            lines=[f"A remediation case moved to {to_village.name} ({to_village.code}): the",
                   "child now lives there. Please take it on."],
            case=case, now=now,
        )  # fmt: skip
    else:
        for referral in session.scalars(
            select(Referral).where(
                Referral.case_id == case.id, Referral.status.in_(("pending", "accepted"))
            )
        ):
            referral.status, referral.revoked_at = "revoked", now
            referral.revoked_reason = f"case transferred to {agency}"
        change_case(
            session, case, user, now=now, expected_version=expected_version,
            to_state="transferred", action="transferred", detail=detail, step_due_at=None,
            next_followup_due_at=None,
        )  # fmt: skip
    return transfer


def assign_case(
    session: Session,
    user: User,
    case_id: int,
    *,
    officer: str | None = None,
    monitor: str | None = None,
    now: dt.datetime | None = None,
) -> Case:
    """Make an officer responsible for the case and/or a monitor its follow-up visitor; each
    must work in the case's village."""
    now = now or utcnow()
    case = case_in_scope(session, user, case_id)
    check_move(session, case, "assign", user)
    errors: dict = {}
    values: dict = {}
    for name, username, roles in (
        ("officer", officer, ("officer", "supervisor")),
        ("monitor", monitor, ("monitor",)),
    ):
        if not username:
            continue
        person = session.scalar(select(User).where(User.username == username.strip()))
        if person is None or not person.active or person.role not in roles:
            errors[name] = Msg("must name an active {role}", role=Msg(roles[0]))
        elif not village_in_scope(session, person, case.village_id, case.village.area_id):
            errors[name] = Msg("{who} does not work in village {village}",
                               who=person.username, village=case.village.code)  # fmt: skip
        else:
            values[f"{name}_id"] = person.id
    if not values and not errors:
        errors["officer"] = Msg("choose an officer or a monitor")
    if errors:
        raise field_errors(errors)
    change_case(session, case, user, now=now, action="assigned",
                detail={"officer": officer or None, "monitor": monitor or None},
                **values)  # fmt: skip
    return case


def add_note(
    session: Session, user: User, case_id: int, text: str | None, *, now: dt.datetime | None = None
) -> Case:
    """Add a note to the case's timeline (personal data: seen only by staff of the case)."""
    now = now or utcnow()
    case = case_in_scope(session, user, case_id)
    check_move(session, case, "note", user)
    errors: dict = {}
    text = _text(errors, "text", text, required=True)
    if errors:
        raise field_errors(errors)
    record_event(session, case, user, "note", {"text": text}, now=now)
    session.flush()
    return case


def refusal(p: Problem) -> bool:
    """Whether ``p`` is a refusal a page shows next to the form (not a missing page)."""
    return p.status != 404
