"""Reading a case and the writing core every step of the remediation workflow shares.

The steps are named operations, one module per step (:mod:`clms.cases.opening`,
:mod:`clms.cases.assessment`, :mod:`clms.cases.plan`, :mod:`clms.cases.services`,
:mod:`clms.cases.referrals`, :mod:`clms.cases.closure`, :mod:`clms.cases.transfer`);
the form-value checks are in :mod:`clms.cases.inputs`, the mail to officers and
supervisors in :mod:`clms.cases.notices`.

Each operation reads the case (out of scope is the same as missing: ``not_found``), asks the
pure state machine (:mod:`clms.cases.workflow`) whether the move is allowed, checks the form,
then writes: a conditional ``UPDATE cases ... WHERE version = :read`` (when two people act at once
exactly one of them moves the case; the other is told it changed), the rows of the step, and a
:class:`~clms.models.CaseEvent` for the timeline. Operations flush and never commit: the request
or job commits once, at its boundary. Mail goes through the outbox in the same transaction.

The workflow's settings (:class:`~clms.cases.workflow.Policy`: closure criteria, follow-up
interval, reopening window, referral deadlines) are passed in: every operation takes
``policy``, which the roof makes from the configuration (``wf.Policy.from_config``) and the
intake pipeline from its settings; None (a caller outside an application) means the defaults.

Forms are checked in full before anything is written: every wrong answer is named at once
(:func:`~clms.errors.field_errors`), in the reader's language.
"""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, joinedload

from clms.audit import record
from clms.cases import workflow as wf
from clms.errors import Problem, problem
from clms.i18n import Msg
from clms.models import (
    ActionPlan,
    Case,
    CaseEvent,
    ChildVisit,
    Classification,
    PlannedService,
    Referral,
    User,
    Visit,
)
from clms.notices.tell import settle
from clms.scope import SCOPED_ROLES, village_in_scope

log = logging.getLogger(__name__)


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
    session: Session,
    case: Case,
    move: str,
    user: User | None,
    facts: wf.CaseFacts | None = None,
    *,
    policy: wf.Policy | None,
) -> wf.Move:
    """:func:`workflow.check` with the workflow's settings ``policy`` (None: the defaults), a
    refusal turned into the ``case.transition_refused`` problem."""
    facts = facts or facts_of(session, case)
    try:
        return wf.check(facts, move, actor(user), policy=policy)
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


#: the steps whose end a supervisor may have been asked to approve (a plan, a closure)
_AWAITING_APPROVAL = ("action_plan", "closure_review")


def change_case(
    session: Session,
    case: Case,
    user: User | None,
    *,
    now: dt.datetime,
    policy: wf.Policy | None,
    expected_version: int | None = None,
    to_state: str | None = None,
    action: str | None = None,
    detail: dict | None = None,
    **values,
) -> Case:
    """Write ``values`` (and a new state) on the case if nobody changed it since it was read;
    adds the event ``action`` (``state_changed`` when only the state moves).

    Entering a state sets its step deadline (by the workflow's settings ``policy``; None: the
    defaults) and clears the escalation of the previous step.
    """
    read_version = case.version
    if expected_version is not None and expected_version != read_version:
        raise problem("case.stale", detail=_stale_words(session, case))
    from_state = case.state
    if to_state is not None and to_state != from_state:
        values.setdefault("state_changed_at", now)
        values.setdefault("step_due_at", wf.step_due(to_state, now, policy))
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
    if to_state is not None and to_state != from_state and from_state in _AWAITING_APPROVAL:
        # however the case left the step (decided, a child found working again, a transfer),
        # nobody is asked any more to approve it
        settle(session, "approval_requested", "case", case.id, now=now)
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
        "last changed by {who} at {when}",
        who=username or Msg("the system"),
        when=at,
    )


def refusal(p: Problem) -> bool:
    """Whether ``p`` is a refusal a page shows next to the form (not a missing page)."""
    return p.status != 404
