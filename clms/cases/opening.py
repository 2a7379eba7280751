"""Step 1 of a case: opening it from an alert (the alert closes into the case) and the
verification visit."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from alerts import rules
from clms.cases import workflow as wf
from clms.cases.inputs import _at, _date, _text
from clms.cases.records import case_in_scope, change_case, check_move, record_event
from clms.cases.signs import acknowledge
from clms.errors import field_errors, problem
from clms.i18n import Msg
from clms.models import (
    ACTIVE_ALERT_STATUSES,
    Alert,
    AlertEvent,
    Case,
    Child,
    Household,
    User,
    utcnow,
)


def open_case(
    session: Session,
    user: User,
    alert_id: int,
    *,
    child_uid: str | None = None,
    now: dt.datetime | None = None,
    policy: wf.Policy | None = None,
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
        child = _reported_child(session, alert, child_uid)
    household = session.get(Household, child.household_id)
    existing = session.scalar(
        select(Case).where(Case.child_id == child.id, Case.state.in_(wf.OPEN_STATES))
    )
    if existing is not None:
        link_alert(session, alert, existing, user, now)
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
        # the alert's first-visit deadline while it still runs (a worst form's 72 hours are
        # the child's, not the case's); once passed, the category's time for a first visit
        # from the case's opening: a new case is never overdue at once, nor given more time
        # than its alert had left
        step_due_at=_verification_due(alert, now, policy),
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
    close_alert_into_case(session, alert, case, user, now)
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


def _reported_child(session: Session, alert: Alert, child_uid: str | None) -> Child:
    """The child ``child_uid`` names for a reported concern: a child of the alert's village."""
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
    return child


def link_alert(
    session: Session,
    alert: Alert,
    case: Case,
    user: User,
    now: dt.datetime,
    *,
    by_merge: bool = False,
) -> None:
    """The active alert joins the child's open case (:func:`close_alert_into_case`), and the
    case's timeline says so. ``by_merge``: the alert and the case were of two records merged as
    the same child (:func:`clms.cases.merge.merge_children`)."""
    close_alert_into_case(session, alert, case, user, now, by_merge=by_merge)
    detail = {"alert_id": alert.id, "category": alert.category}
    if by_merge:
        detail["by_merge"] = True
    record_event(session, case, user, "alert_linked", detail, now=now)
    session.flush()


def close_alert_into_case(
    session: Session,
    alert: Alert,
    case: Case,
    user: User,
    now: dt.datetime,
    *,
    by_merge: bool = False,
) -> None:
    """The alert becomes ``case_opened`` (and is acknowledged, if it was not), with an event
    naming the case; refused when it changed meanwhile (it is no longer active). ``by_merge``:
    see :func:`link_alert`."""
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
            detail=Msg("Alert {id} changed meanwhile; reload the list and try again.", id=alert.id)
            if by_merge  # the merge's page is the list of possible duplicates
            else Msg("Alert {id} changed meanwhile; reload it and try again.", id=alert.id),
        )
    detail = {"case_id": case.id, "case_number": case.case_number}
    if by_merge:
        detail["by_merge"] = True
    session.add(
        AlertEvent(
            alert_id=alert.id,
            at=now,
            user_id=user.id,
            action="case_opened",
            detail=detail,
        )
    )
    session.refresh(alert)


def _verification_due(alert: Alert, now: dt.datetime, policy: wf.Policy | None) -> dt.datetime:
    """When the verification visit of a case opened now from ``alert`` is due (see above)."""
    if alert.visit_due_at is not None and alert.visit_due_at > now:  # aware: clms.models.base
        return alert.visit_due_at
    within = rules.RESPONSE_TIMES.get(alert.category, (None, None))[1]
    return wf.step_due("verification", now, policy, visit_within=within)


def record_verification(
    session: Session,
    user: User,
    case_id: int,
    *,
    confirmed: bool | None,
    visited_on,
    findings: str | None = None,
    reason: str | None = None,
    signs_seen: bool = False,
    signs_reason: str | None = None,
    signs_shown: str | None = None,
    expected_version: int | None = None,
    now: dt.datetime | None = None,
    policy: wf.Policy | None = None,
) -> Case:
    """Record the officer's verification visit: confirmed (to assessment) or not confirmed
    (closed, with the reason). Closing as not confirmed a case whose record holds signs of a
    worst form or of trafficking needs them acknowledged, as a supervisor's approval of a
    closure does (:func:`clms.cases.signs.acknowledge`)."""
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
    check_move(session, case, move, user, policy=policy)
    acknowledged: dict = {}
    if confirmed is False:
        _signs, acknowledged = acknowledge(
            session, case, errors, signs_seen, signs_reason, signs_shown
        )
    if errors:
        raise field_errors(errors)
    visited_at = _at(day, now)
    if confirmed:
        change_case(
            session, case, user, now=now, policy=policy, expected_version=expected_version,
            to_state="assessment", action="verified",
            detail={"confirmed": True, "visited_on": day.isoformat(), "findings": findings},
            verified_at=visited_at, verification="confirmed",
        )  # fmt: skip
    else:
        change_case(
            session, case, user, now=now, policy=policy, expected_version=expected_version,
            to_state="closed", action="verified",
            detail={"confirmed": False, "visited_on": day.isoformat(), "reason": reason,
                    **acknowledged},
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
    _verified_alerts(session, case, user, confirmed=bool(confirmed), day=day, now=now)
    session.flush()
    return case


def _verified_alerts(
    session: Session, case: Case, user: User, *, confirmed: bool, day: dt.date, now: dt.datetime
) -> None:
    """The alerts the case took no longer need verification: the officer's visit verified them
    (confirmed or not); each one's history says so, with the case and the visit's date."""
    since = case.reopened_at or case.opened_at
    taken = or_(
        Alert.id == case.alert_id,
        and_(Alert.child_id == case.child_id, Alert.status == "case_opened",
             Alert.closed_at >= since),
    )  # fmt: skip
    ids = list(session.scalars(select(Alert.id).where(taken, Alert.needs_verification.is_(True))))
    if not ids:
        return
    session.execute(
        update(Alert)
        .where(Alert.id.in_(ids))
        .values(needs_verification=False, updated_at=now)
        .execution_options(synchronize_session="fetch")
    )
    detail = {"case_number": case.case_number, "confirmed": confirmed,
              "visited_on": day.isoformat()}  # fmt: skip
    session.add_all(
        AlertEvent(alert_id=i, at=now, user_id=user.id, action="verified", detail=detail)
        for i in ids
    )
