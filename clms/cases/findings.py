"""What classified visits do to cases: follow-ups, children found in work again, reopening.

A step of the intake pipeline (:mod:`clms.intake.pipeline`), in the transaction that saves the
visits, for every child visit of the batch once it is classified, before alerts are raised (and
of reclassification, for the visits it made graver):

- a child with an **open case** gets no new alert: the visit goes to the case's timeline
  (``followup`` for the case's own follow-up visits, ``found_in_work`` when a visit finds child
  labour, ``visited`` otherwise). A graver category becomes the case's category; a case in
  closure review whose child is found in child labour goes back to implementation; the officer
  is mailed at once for a worst form or hazardous work;
- a child whose case was **closed within the reopening window** (12 months by default) and who is
  found in child labour reopens that case instead of raising an alert;
- otherwise the alert rules apply as before.

A follow-up moves the case's next follow-up date, delivers the planned services the monitor saw
received, and the system proposes closure when the closure criteria then hold.

A fixed number of queries for the batch (the cases of its children), then a few per case that a
follow-up touched: follow-ups are a small share of visits.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from alerts import rules
from clms.cases import workflow as wf
from clms.cases.closure import propose_closure_if_met
from clms.cases.notices import notify, officers_of
from clms.cases.records import change_case
from clms.models import Case, ChildVisit, PlannedService, User, Visit

SEVERITY_ORDER = tuple(reversed(rules.CATEGORIES))  # least grave first


def route_to_cases(
    session: Session,
    visits: Sequence,
    categories: Sequence[str],
    classification_ids: Sequence[int],
    now: dt.datetime,
    policy: wf.Policy | None = None,
) -> set[int]:
    """Apply ``visits`` (``alerts.classify.ChildVisitFacts``, in order), classified as
    ``categories`` say (the classifications' ids in ``classification_ids``), to their children's
    cases, by the workflow's settings ``policy`` (None: the defaults); returns the ids of the
    children a case took care of (no alert for them)."""
    child_ids = sorted({v.child_id for v in visits if v.raise_alert})
    if not child_ids:
        return set()
    pol = policy or wf.Policy()
    cases: dict[int, Case] = {}
    closed: dict[int, Case] = {}
    for case in session.scalars(
        select(Case)
        .where(Case.child_id.in_(child_ids))
        .order_by(Case.child_id, Case.opened_at, Case.id)
    ):
        if case.state in wf.OPEN_STATES:
            cases[case.child_id] = case
        elif case.state == "closed" and case.child_id not in cases:
            closed[case.child_id] = case  # the latest closed case wins (ordered by opening)
    handled: set[int] = set()
    touched: dict[int, Case] = {}
    for v, category, cid in zip(visits, categories, classification_ids, strict=True):
        if not v.raise_alert:
            continue
        case = cases.get(v.child_id)
        if case is None:
            old = closed.get(v.child_id)
            if old is not None and wf.should_reopen(old.state, old.closed_at, v.seen_at,
                                                    category, pol):  # fmt: skip
                _reopen(session, old, category, cid, v, now, pol)
                cases[v.child_id] = old
                closed.pop(v.child_id)
                handled.add(v.child_id)
            continue
        handled.add(v.child_id)
        touched[case.id] = case
        _apply(session, case, v, category, cid, now, pol)
    for case in touched.values():
        propose_closure_if_met(session, case, now, pol)
    return handled


def _apply(session, case: Case, v, category: str, cid: int, now, pol: wf.Policy) -> None:
    followup = v.kind == "followup" and v.case_id == case.id
    in_work = category in wf.CHILD_LABOUR
    detail = {"category": category, "classification_id": cid,
              "visited_at": v.seen_at.isoformat(), "visit": v.kind,
              "monitor": _monitor_of(session, v.child_visit_id)}  # fmt: skip
    values: dict = {}
    if followup:
        detail.update(child_present=v.child_present, services_received=v.services_received)
        values.update(
            next_followup_due_at=v.seen_at + dt.timedelta(days=pol.followup_interval_days),
            followup_reminded_at=None,
        )
        delivered = _deliver_reported_services(session, case, v, now)
        if delivered:
            detail["services_delivered"] = delivered
    if in_work and (
        case.category is None
        or SEVERITY_ORDER.index(category) > SEVERITY_ORDER.index(case.category)
    ):
        detail["category_raised_from"] = case.category
        values["category"] = category
    action = "followup" if followup else ("found_in_work" if in_work else "visited")
    if in_work and case.state == "closure_review":
        # the criteria no longer hold: back to work on the case
        change_case(
            session, case, None, now=now, policy=pol, to_state="implementation", action=action,
            detail={**detail, "closure_withdrawn": True}, closure_proposed_at=None,
            step_due_at=None,
            next_followup_due_at=values.pop("next_followup_due_at", None) or now,
            **values,
        )  # fmt: skip
    else:
        change_case(
            session, case, None, now=now, policy=pol, action=action, detail=detail, **values
        )
    if category in ("worst_form", "hazardous"):
        notify(
            session, officers_of(session, case), kind="case",
            subject=f"[CLMS] {rules.SEVERITY[category].upper()}: child of case "
                    f"{case.case_number} found in {category.replace('_', ' ')}",
            lines=["A visit found the child of an open case in "
                   f"{category.replace('_', ' ')}. Review the case now."],
            case=case, now=now,
        )  # fmt: skip


def _monitor_of(session: Session, child_visit_id: int) -> str | None:
    """The username of the monitor who made the visit (the timeline says who saw the child)."""
    return session.scalar(
        select(User.username)
        .join(Visit, Visit.monitor_id == User.id)
        .join(ChildVisit, ChildVisit.visit_id == Visit.id)
        .where(ChildVisit.id == child_visit_id)
    )


def _deliver_reported_services(session: Session, case: Case, v, now) -> list[str]:
    """Mark delivered the planned services (not referred) of the codes the monitor saw
    received; a referred service is the provider's to record."""
    codes = [c for c in (v.services_received or []) if c and c != "none"]
    if not codes:
        return []
    rows = session.scalars(
        select(PlannedService).where(
            PlannedService.case_id == case.id,
            PlannedService.status == "planned",
            PlannedService.service_code.in_(codes),
        )
    ).all()
    for planned in rows:
        planned.status, planned.delivered_at, planned.delivered_source = (
            "delivered",
            v.seen_at,
            "followup",
        )
    session.flush()
    return [p.service_code for p in rows]


def _reopen(session: Session, case: Case, category: str, cid: int, v, now, pol: wf.Policy) -> None:
    closed_at = case.closed_at
    change_case(
        session, case, None, now=now, policy=pol, to_state="reopened", action="reopened",
        detail={"category": category, "classification_id": cid, "closed_at":
                closed_at.isoformat() if closed_at else None,
                "visited_at": v.seen_at.isoformat()},
        reopened_at=now, reopen_count=(case.reopen_count or 0) + 1, closed_at=None,
        closure_proposed_at=None, category=category, next_followup_due_at=None,
        # the previous closure report stays in the timeline (its "closed" event)
        outcome=None, lessons_learned=None, root_causes=[], closure_reason=None,
    )  # fmt: skip
    notify(
        session, officers_of(session, case), kind="case",
        subject=f"[CLMS] Case {case.case_number} reopened: child found in "
                f"{category.replace('_', ' ')}",
        lines=["A child whose case was closed was found in child labour again. The case is",
               "reopened and needs a new best-interest assessment."],
        case=case, now=now,
    )  # fmt: skip
