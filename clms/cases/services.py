"""Step 4 of a case, implementation: an officer records a planned service delivered, or
closes it undelivered (a provider records a referred one, :mod:`clms.cases.referrals`)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from clms.cases import workflow as wf
from clms.cases.closure import propose_closure_if_met
from clms.cases.inputs import _at, _date, _text
from clms.cases.records import case_in_scope, change_case, check_move
from clms.errors import field_errors, problem
from clms.i18n import Msg
from clms.models import PlannedService, Referral, User, utcnow


def record_service_outcome(
    session: Session,
    user: User,
    planned_service_id: int,
    *,
    delivered: bool,
    on=None,
    reason: str | None = None,
    now: dt.datetime | None = None,
    policy: wf.Policy | None = None,
) -> PlannedService:
    """An officer records a planned service as delivered (on a date), or closes it undelivered
    with a reason (for example, the family moved or the service was no longer needed)."""
    now = now or utcnow()
    planned = session.get(PlannedService, planned_service_id)
    if planned is None:
        raise problem("not_found")
    case = case_in_scope(session, user, planned.case_id)
    check_move(session, case, "edit_plan", user, policy=policy)
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
    change_case(session, case, user, now=now, policy=policy, action=action, detail=detail)
    propose_closure_if_met(session, case, now, policy)
    return planned
