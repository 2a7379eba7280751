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
from dataclasses import dataclass, field

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from alerts.queue import ASSIGNABLE_ROLES, MAX_PER_PAGE, get_alert
from clms.audit import record
from clms.errors import Problem, problem
from clms.i18n import Msg
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


def _assignable(session: Session, username: str | None) -> User:
    """The active officer or supervisor named ``username``; else ``request.invalid_field``
    naming the field ``assignee`` and saying why."""
    username = (username or "").strip()
    if not username:
        raise problem("request.invalid_field", field="assignee", detail="is required")
    person = session.scalar(select(User).where(User.username == username))
    if person is None or not person.active or person.role not in ASSIGNABLE_ROLES:
        raise problem(
            "request.invalid_field",
            field="assignee",
            detail=f"must name an active officer or supervisor; {username!r} is not one",
        )
    return person


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
    assignee = _assignable(session, assignee_username)
    username = assignee.username
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


# --- acting on several alerts at once ------------------------------------------------------------

#: what can be done to the alerts chosen in the queue (dismissing needs a reason each: one by one)
BULK_ACTIONS = ("acknowledge", "assign")
#: at most a page of the queue at its largest
MAX_BULK = MAX_PER_PAGE


@dataclass
class BulkResult:
    """What one bulk action did: the alerts it changed, and each one it refused with why."""

    action: str
    done: list[int] = field(default_factory=list)
    refused: list[tuple[int, Msg]] = field(default_factory=list)
    assignee: str | None = None


def act_on_alerts(
    session: Session,
    user: User,
    alert_ids: list[int],
    action: str,
    *,
    assignee: str | None = None,
    now: dt.datetime | None = None,
) -> BulkResult:
    """Acknowledge, or assign to ``assignee``, each of ``alert_ids``, exactly as the action on
    one alert does (the same scope, state and assignee checks; an event and an audit record for
    each alert changed).

    Each alert is tried in a savepoint of its own: one refused (out of scope, already
    acknowledged, closed, or in a village the assignee does not work in) leaves the others done,
    and is listed with why. An alert out of ``user``'s scope is refused as not found, whether or
    not it exists. Raises ``request.invalid_field`` for a request that cannot be tried at all: an
    unknown action, no alert chosen, more than :data:`MAX_BULK`, or (assign) no assignee or one
    who is not an active officer or supervisor.
    """
    now = now or utcnow()
    if action not in BULK_ACTIONS:
        raise problem("request.invalid_field", field="action",
                      detail=f"must be one of {', '.join(BULK_ACTIONS)}")  # fmt: skip
    ids = list(dict.fromkeys(alert_ids))
    if not ids:
        raise problem("request.invalid_field", field="alert", detail="needs at least one alert")
    if len(ids) > MAX_BULK:
        raise problem("request.invalid_field", field="alert",
                      detail=f"must name at most {MAX_BULK} alerts")  # fmt: skip
    result = BulkResult(action=action)
    if action == "assign":
        result.assignee = _assignable(session, assignee).username
    for alert_id in ids:
        try:
            with session.begin_nested():
                if action == "acknowledge":
                    acknowledge_alert(session, user, alert_id, now=now)
                else:
                    assign_alert(session, user, alert_id, result.assignee, now=now)
        except Problem as refused:
            result.refused.append((alert_id, _why_refused(session, user, alert_id, refused)))
        else:
            result.done.append(alert_id)
    return result


def _why_refused(session: Session, user: User, alert_id: int, refused: Problem) -> Msg:
    """Why one alert of a bulk action was refused, in words a reader's language can carry."""
    if refused.status == 404:
        return Msg("not found in your areas")
    alert = get_alert(session, user, alert_id)
    if alert is None:  # cannot happen: it was found a moment ago
        return Msg("not found in your areas")
    if alert.status not in ACTIVE_ALERT_STATUSES:
        return Msg("it is closed ({status}): only a new or acknowledged alert can change",
                   status=Msg(alert.status.replace("_", " ")))  # fmt: skip
    if refused.key == "request.invalid_field":
        return Msg("the assignee does not work in its village ({village})",
                   village=alert.village.name if alert.village else "?")  # fmt: skip
    if "already assigned" in refused.message:
        return Msg("already assigned to {assignee}",
                   assignee=alert.assigned_to.username if alert.assigned_to else "?")  # fmt: skip
    if "already acknowledged" in refused.message:
        return Msg("already acknowledged")
    return Msg("changed by someone else meanwhile: reload the list and try again")


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
