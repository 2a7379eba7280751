"""Changing an alert's status: acknowledging, assigning and dismissing an alert. This module
alone changes an alert's status once it is raised (reading is :mod:`alerts.queue`'s).

Acting on an alert (acknowledge, assign, dismiss) is a conditional ``UPDATE ... WHERE status IN
(...)``: when two officers act at once, the database lets exactly one of them move the alert and
the other is told why not. Every action adds an :class:`~clms.models.AlertEvent`. The functions
flush but never commit: the request commits once, at its boundary.

An alert out of the acting officer's scope is the same as one that does not exist (``not_found``).
"""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from alerts.queue import ASSIGNABLE_ROLES, get_alert
from clms.audit import record
from clms.errors import Problem, problem
from clms.models import ACTIVE_ALERT_STATUSES, Alert, AlertEvent, User, utcnow
from clms.notices.tell import About, tell
from clms.scope import village_in_scope

log = logging.getLogger(__name__)

MAX_REASON_LENGTH = 2000


# --- acting on an alert --------------------------------------------------------------------------


def acknowledge_alert(
    session: Session, user: User, alert_id: int, *, now: dt.datetime | None = None
) -> Alert:
    """Record that ``user`` has seen a new alert and takes it on; status becomes acknowledged.

    Refused (``alert.transition_refused``) when it is already acknowledged or closed.
    """
    now = now or utcnow()
    alert = _alert_in_scope(session, user, alert_id)
    done = session.execute(
        update(Alert)
        .where(Alert.id == alert.id, Alert.status == "new")
        .values(
            status="acknowledged", acknowledged_at=now, acknowledged_by_id=user.id, updated_at=now
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    session.refresh(alert)
    if done != 1:
        if alert.status == "acknowledged":
            by = session.get(User, alert.acknowledged_by_id) if alert.acknowledged_by_id else None
            who = f" by {by.username}" if by else ""
            when = (
                f" on {alert.acknowledged_at:%Y-%m-%d %H:%M} UTC" if alert.acknowledged_at else ""
            )
            raise _refused(f"Alert {alert.id} was already acknowledged{who}{when}.")
        raise _refused(_closed_message(alert, "acknowledged"))
    _record(session, alert, user, "acknowledged", {}, now)
    return alert


def assign_alert(
    session: Session,
    user: User,
    alert_id: int,
    assignee_username: str,
    *,
    now: dt.datetime | None = None,
) -> Alert:
    """Make ``assignee_username`` responsible for an active alert.

    The assignee must be an active officer or supervisor whose scope covers the alert's village;
    otherwise ``request.invalid_field`` names the field ``assignee`` and says why.
    """
    now = now or utcnow()
    alert = _alert_in_scope(session, user, alert_id)
    username = (assignee_username or "").strip()
    if not username:
        raise problem("request.invalid_field", field="assignee", detail="is required")
    assignee = session.scalar(select(User).where(User.username == username))
    if assignee is None or not assignee.active or assignee.role not in ASSIGNABLE_ROLES:
        raise problem(
            "request.invalid_field",
            field="assignee",
            detail=f"must name an active officer or supervisor; {username!r} is not one",
        )
    if not village_in_scope(session, assignee, alert.village_id, alert.village.area_id):
        raise problem(
            "request.invalid_field",
            field="assignee",
            detail=f"must work in village {alert.village.code}; {username!r} does not",
        )
    previous = alert.assigned_to.username if alert.assigned_to else None
    if previous == username and alert.status in ACTIVE_ALERT_STATUSES:
        raise _refused(f"Alert {alert.id} is already assigned to {username}.")
    done = session.execute(
        update(Alert)
        .where(Alert.id == alert.id, Alert.status.in_(ACTIVE_ALERT_STATUSES))
        .values(assigned_to_id=assignee.id, updated_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    session.refresh(alert)
    if done != 1:
        raise _refused(_closed_message(alert, "assigned"))
    _record(session, alert, user, "assigned", {"assignee": username, "previous": previous}, now)
    code = alert.child.child_uid if alert.child is not None else f"#{alert.id}"
    tell(session, [assignee], "alert_assigned", About("alert", alert.id, code), actor=user,
         now=now)  # fmt: skip
    return alert


def dismiss_alert(
    session: Session, user: User, alert_id: int, reason: str, *, now: dt.datetime | None = None
) -> Alert:
    """Close an active alert without a case, for the ``reason`` given (required, non-blank).

    For an alert found to be unfounded after verification, or a duplicate. Final: a dismissed alert
    is not reopened; a later visit that finds the child in work raises a new alert.
    """
    now = now or utcnow()
    alert = _alert_in_scope(session, user, alert_id)
    reason = (reason or "").strip()
    if not reason:
        raise problem(
            "request.invalid_field", field="reason", detail="is required to dismiss an alert"
        )
    if len(reason) > MAX_REASON_LENGTH:
        raise problem(
            "request.invalid_field",
            field="reason",
            detail=f"must be at most {MAX_REASON_LENGTH} characters",
        )
    done = session.execute(
        update(Alert)
        .where(Alert.id == alert.id, Alert.status.in_(ACTIVE_ALERT_STATUSES))
        .values(
            status="dismissed",
            dismissed_at=now,
            dismissed_reason=reason,
            closed_at=now,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    session.refresh(alert)
    if done != 1:
        raise _refused(_closed_message(alert, "dismissed"))
    _record(session, alert, user, "dismissed", {"reason": reason}, now)
    return alert


# --- helpers -------------------------------------------------------------------------------------


def _refused(detail: str) -> Problem:
    return problem("alert.transition_refused", detail=detail)


def _closed_message(alert: Alert, action: str) -> str:
    state = {"dismissed": "was dismissed", "case_opened": "has become a case"}.get(
        alert.status, f"is {alert.status}"
    )
    return (
        f"Alert {alert.id} {state}; only a new or acknowledged alert can be {action}."
        if alert.status not in ACTIVE_ALERT_STATUSES
        else f"Alert {alert.id} could not be {action}; reload it and try again."
    )


def _alert_in_scope(session: Session, user: User, alert_id: int) -> Alert:
    alert = get_alert(session, user, alert_id)
    if alert is None:
        raise problem("not_found")
    return alert


def _record(
    session: Session, alert: Alert, user: User, action: str, detail: dict, now: dt.datetime
) -> None:
    session.add(
        AlertEvent(alert_id=alert.id, at=now, user_id=user.id, action=action, detail=detail)
    )
    record(session, user, f"alert.{action}", f"alert:{alert.id}", **(detail or {}))
    session.flush()
    log.info("alert %s %s by %s %s", alert.id, action, user.username, detail or "")
