"""Deadlines: escalate what is overdue to the supervisors, remind officers of follow-ups.

Plain functions of a session and the time (``now``), run by the ``escalate`` and
``remind_followups`` jobs (:mod:`clms.jobs.registry`) and by tests with any ``now`` they like.
Each one changes rows and queues mail in the caller's transaction (it flushes, never commits)
and returns a small summary. Each acts once: what it did is recorded on the row (``escalated_at``,
``step_escalated_at``, ``followup_reminded_at``), so running it again does nothing more.

Response times come from domain.md section 4: an alert or a case step past its deadline escalates
to the supervisor, once, and shows as overdue.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable
from functools import partial

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from alerts.notify import (
    BASE_URL_MARK,
    CATEGORY_LABELS,
    alert_facts,
    alert_lines,
    queue_notification,
    users_for_villages,
)
from alerts.queue import overdue_condition
from clms.models import (
    Alert,
    AlertEvent,
    Case,
    CaseEvent,
    Child,
    Referral,
    ServiceProvider,
    User,
    Village,
)
from clms.notices.tell import About, Mail, tell

log = logging.getLogger(__name__)

#: case states that need nothing more (a transferred case is followed by the receiving agency)
ENDED_CASE_STATES = ("closed", "transferred")
#: how long before a follow-up is due the officer is reminded
REMINDER_WINDOW = dt.timedelta(hours=24)


def overdue_alert_condition(now: dt.datetime):
    """SQL condition: an active alert not acknowledged by ``ack_due_at``, or not visited by an
    officer by ``visit_due_at`` (when the category has a visit deadline): the queue's rule,
    :func:`alerts.queue.overdue_condition`."""
    return overdue_condition(now)


def escalate_overdue_alerts(session: Session, now: dt.datetime) -> dict:
    """Escalate each overdue alert, once, to the supervisors covering its village.

    Sets ``escalated_at``, adds an ``escalated`` event (by the system: ``user_id`` None) saying
    why, and queues an ``escalation`` email to each supervisor. Returns
    ``{"escalated": n, "notifications": m}``.

    >>> escalate_overdue_alerts(session, utcnow())  # doctest: +SKIP
    {'escalated': 2, 'notifications': 3}
    """
    alerts = session.scalars(
        select(Alert)
        .where(overdue_alert_condition(now), Alert.escalated_at.is_(None))
        .order_by(Alert.severity_rank.desc(), Alert.ack_due_at, Alert.id)
        # PostgreSQL: rows another run is escalating right now are left to it
        .with_for_update(skip_locked=True)
    ).all()
    if not alerts:
        return {"escalated": 0, "notifications": 0}
    facts = alert_facts(session, [a.id for a in alerts])
    supervisors = users_for_villages(session, [a.village_id for a in alerts], "supervisor")
    officer_ids = {a.assigned_to_id for a in alerts if a.assigned_to_id is not None}
    officers = (
        dict(session.execute(select(User.id, User.username).where(User.id.in_(officer_ids))).all())
        if officer_ids
        else {}
    )
    queued = 0
    for alert in alerts:
        why = []
        if alert.acknowledged_at is None and alert.ack_due_at < now:
            why.append("not acknowledged by the deadline")
        if (
            alert.visit_due_at is not None
            and alert.first_visit_at is None
            and alert.visit_due_at < now
        ):
            why.append("no officer visit by the deadline")
        to = supervisors.get(alert.village_id, []) if alert.village_id is not None else []
        alert.escalated_at = now
        session.add(
            AlertEvent(
                alert_id=alert.id,
                at=now,
                user_id=None,
                action="escalated",
                detail={"why": why, "supervisors": [u.id for u in to]},
            )
        )
        if not to:
            log.warning("alert %d is overdue but no supervisor covers its village", alert.id)
        a = facts[alert.id]
        label = CATEGORY_LABELS.get(a.category, a.category)
        subject = f"[CLMS] Overdue {a.severity.upper()} alert: {a.subject_ref} ({label})"
        assignee = officers.get(alert.assigned_to_id, "nobody") if alert.assigned_to_id else None
        body = "\n".join(
            [
                "An alert in your area is overdue and is escalated to you:",
                *(f"  - {w}" for w in why),
                "",
                *alert_lines(a),
                f"Assigned to: {assignee or 'not assigned'}",
                f"Status: {a.status}",
                "",
                "This message holds no names: open CLMS to see the child's record.",
            ]
        )
        about = About("alert", alert.id, a.child_uid or f"#{alert.id}", {"about": "alert"})
        queued += _notify(
            session, to, kind="escalation", subject=subject, body=body, alert_id=alert.id,
            now=now, about=about,
        )  # fmt: skip
    session.flush()
    log.info("escalated %d overdue alerts (%d emails)", len(alerts), queued)
    return {"escalated": len(alerts), "notifications": queued}


def escalate_case_steps(session: Session, now: dt.datetime) -> dict:
    """Escalate, once, each open case whose current step is past ``step_due_at``: sets
    ``step_escalated_at`` and queues an ``escalation`` email to the supervisors covering the
    case's village. Returns ``{"escalated": n, "notifications": m}``.

    Once per step: the case workflow clears ``step_escalated_at`` when it sets the next step's
    deadline.
    """
    rows = session.execute(
        select(Case, Child.child_uid, Village.name, Village.code)
        .join(Child, Child.id == Case.child_id)
        .outerjoin(Village, Village.id == Case.village_id)
        .where(
            Case.state.not_in(ENDED_CASE_STATES),
            Case.closed_at.is_(None),
            Case.step_due_at.is_not(None),
            Case.step_due_at < now,
            Case.step_escalated_at.is_(None),
        )
        .order_by(Case.step_due_at, Case.id)
        .with_for_update(of=Case, skip_locked=True)
    ).all()
    if not rows:
        return {"escalated": 0, "notifications": 0}
    supervisors = users_for_villages(session, [r.Case.village_id for r in rows], "supervisor")
    queued = 0
    for case, child_uid, village_name, village_code in rows:
        case.step_escalated_at = now
        village = _village(village_name, village_code)
        to = supervisors.get(case.village_id, []) if case.village_id is not None else []
        session.add(
            CaseEvent(
                case_id=case.id, at=now, user_id=None, action="escalated",
                detail={"step": case.state, "due": case.step_due_at.isoformat(),
                        "supervisors": [u.id for u in to]},
            )
        )  # fmt: skip
        if not to:
            log.warning("case %s is overdue but no supervisor covers its village", case.case_number)
        subject = (
            f"[CLMS] Overdue case step: case {case.case_number} ({case.state}), "
            f"child {child_uid} in {village}"
        )
        body = _case_body(
            [
                "A remediation case in your area is past the deadline of its current step and",
                "is escalated to you.",
            ],
            case, child_uid, village, f"Step due: {_when(case.step_due_at)}",
        )  # fmt: skip
        queued += _notify(
            session,
            to,
            kind="escalation",
            subject=subject,
            body=body,
            alert_id=case.alert_id,
            now=now,
            about=About("case", case.id, case.case_number, {"about": "case", "step": case.state}),
        )
    session.flush()
    log.info("escalated %d overdue case steps (%d emails)", len(rows), queued)
    return {"escalated": len(rows), "notifications": queued}


def overdue_referral_condition(now: dt.datetime):
    """SQL condition: a referral not answered by ``respond_by``, or accepted and not done by
    ``complete_by`` (a date)."""
    return or_(
        and_(Referral.status == "pending", Referral.respond_by < now),
        and_(
            Referral.status == "accepted",
            Referral.complete_by.is_not(None),
            Referral.complete_by < now.date(),
        ),
    )


def escalate_referrals(session: Session, now: dt.datetime) -> dict:
    """Escalate, once per phase, each referral a provider has not answered by ``respond_by``, or
    accepted but not completed by ``complete_by``: to the supervisors of the case's village and
    the case officer, with a reminder to the provider's people. Returns ``{"escalated": n,
    "notifications": m}``. Answering the referral clears ``escalated_at``, so the next phase can
    escalate again."""
    rows = session.execute(
        select(Referral, Case, ServiceProvider.name)
        .join(Case, Case.id == Referral.case_id)
        .join(ServiceProvider, ServiceProvider.id == Referral.provider_id)
        .where(
            Referral.escalated_at.is_(None),
            overdue_referral_condition(now),
        )
        .order_by(Referral.respond_by, Referral.id)
        .with_for_update(of=Referral, skip_locked=True)
    ).all()
    if not rows:
        return {"escalated": 0, "notifications": 0}
    supervisors = users_for_villages(session, [r.Case.village_id for r in rows], "supervisor")
    queued = 0
    for referral, case, provider_name in rows:
        referral.escalated_at = now
        why = (
            "the provider has not answered"
            if referral.status == "pending"
            else "the service is past its due date"
        )
        session.add(
            CaseEvent(
                case_id=case.id, at=now, user_id=None, action="referral_overdue",
                detail={"referral_id": referral.id, "service": referral.service_code,
                        "provider": provider_name, "reason": why},
            )
        )  # fmt: skip
        to = list(supervisors.get(case.village_id, []))
        if case.officer_id is not None:
            officer = session.get(User, case.officer_id)
            if officer is not None and officer.active:
                to.append(officer)
        staff = session.scalars(
            select(User).where(User.provider_id == referral.provider_id, User.active.is_(True))
        ).all()
        subject = (
            f"[CLMS] Overdue referral {referral.id} ({referral.service_code}), "
            f"case {case.case_number}"
        )
        body = partial(
            _referral_body, referral=referral, case=case, provider_name=provider_name, why=why
        )
        mail = {"kind": "escalation", "subject": subject, "body": body,
                "alert_id": case.alert_id, "now": now}  # fmt: skip
        detail = {"about": "referral", "referral": referral.id}
        queued += _notify(session, {u.id: u for u in to}.values(), **mail,
                          about=About("case", case.id, case.case_number, detail))  # fmt: skip
        queued += _notify(session, [u for u in staff if u.id not in {t.id for t in to}], **mail,
                          about=About("referral", referral.id, f"#{referral.id}",
                                      {"about": "provider_referral"}))  # fmt: skip
    session.flush()
    log.info("escalated %d overdue referrals (%d emails)", len(rows), queued)
    return {"escalated": len(rows), "notifications": queued}


def remind_followups(session: Session, now: dt.datetime) -> dict:
    """Remind the case officer of each open case whose follow-up is due within 24 hours (or is
    past), once per due date. Returns ``{"reminded": n, "notifications": m}``.

    The rule: a reminder is sent when ``now >= next_followup_due_at - 24 h`` and the case was not
    reminded since that moment (``followup_reminded_at`` is null or earlier than
    ``next_followup_due_at - 24 h``). Reminders are only ever sent inside that window, so a
    reminder time inside it means "this due date was reminded"; when the follow-up is done and
    the next due date is set, its window starts later and the case is reminded again. A case
    without an officer reminds the officers covering its village.
    """
    rows = session.execute(
        select(Case, Child.child_uid, Village.name, Village.code)
        .join(Child, Child.id == Case.child_id)
        .outerjoin(Village, Village.id == Case.village_id)
        .where(
            Case.state.not_in(ENDED_CASE_STATES),
            Case.closed_at.is_(None),
            Case.next_followup_due_at.is_not(None),
            Case.next_followup_due_at <= now + REMINDER_WINDOW,
        )
        .order_by(Case.next_followup_due_at, Case.id)
        .with_for_update(of=Case, skip_locked=True)
    ).all()
    # date arithmetic on two columns is not portable SQL (SQLite keeps datetimes as text): the
    # few cases due today are checked here
    due = [
        r
        for r in rows
        if r.Case.followup_reminded_at is None
        or r.Case.followup_reminded_at < r.Case.next_followup_due_at - REMINDER_WINDOW
    ]
    if not due:
        return {"reminded": 0, "notifications": 0}
    officer_ids = {r.Case.officer_id for r in due if r.Case.officer_id is not None}
    officers = (
        {
            u.id: u
            for u in session.scalars(
                select(User).where(User.id.in_(officer_ids), User.active.is_(True))
            )
        }
        if officer_ids
        else {}
    )
    fallback = users_for_villages(
        session, [r.Case.village_id for r in due if r.Case.officer_id not in officers], "officer"
    )
    queued = 0
    for case, child_uid, village_name, village_code in due:
        case.followup_reminded_at = now
        if case.officer_id in officers:
            to = [officers[case.officer_id]]
        else:
            to = fallback.get(case.village_id, []) if case.village_id is not None else []
        if not to:
            log.warning("case %s has a follow-up due and no officer", case.case_number)
        village = _village(village_name, village_code)
        overdue = case.next_followup_due_at < now
        subject = (
            f"[CLMS] Follow-up {'overdue' if overdue else 'due'}: case {case.case_number}, "
            f"child {child_uid} in {village}"
        )
        body = _case_body(
            [
                f"A follow-up visit {'was' if overdue else 'is'} due "
                f"{_when(case.next_followup_due_at)}."
            ],
            case, child_uid, village,
        )  # fmt: skip
        queued += _notify(
            session,
            to,
            kind="reminder",
            subject=subject,
            body=body,
            alert_id=case.alert_id,
            now=now,
        )
    session.flush()
    log.info("reminded %d follow-ups (%d emails)", len(due), queued)
    return {"reminded": len(due), "notifications": queued}


def _notify(
    session: Session,
    users: Iterable[User],
    *,
    kind: str,
    subject: str,
    body: str | Callable[[User], str],
    alert_id: int | None,
    now: dt.datetime,
    about: About | None = None,
) -> int:
    """Queue the email to each of ``users`` (``body``: the text, or a function of the user when
    it differs between them); returns how many were queued (a user with no email gets none).
    With ``about`` (an escalation), each is told in the application too (an ``escalated``
    notice) and the email goes to those who want escalations by email (the default)."""
    if about is not None:
        mail = Mail(subject, body, outbox_kind=kind, alert_id=alert_id)
        return tell(session, users, "escalated", about, actor=None, now=now, mail=mail).mailed
    queued = 0
    for user in users:
        text = body(user) if callable(body) else body
        if queue_notification(
            session, user, kind=kind, subject=subject, body=text, alert_id=alert_id, now=now
        ):
            queued += 1
    return queued


def _case_body(opening: list[str], case: Case, child_uid: str, village: str, *more: str) -> str:
    """The email about ``case``: ``opening``, then the case, the child's pseudonymous id, the
    village, the step, ``more`` lines, and the link to the case (never a name)."""
    return "\n".join(
        [
            *opening,
            "",
            f"Case: {case.case_number}",
            f"Child: {child_uid} (pseudonymous id)",
            f"Village: {village}",
            f"Step: {case.state}",
            *more,
            f"Open the case: {BASE_URL_MARK}/cases/{case.id}",
            "",
            "This message holds no names: open CLMS to see the child's record.",
        ]
    )


def _village(name: str | None, code: str | None) -> str:
    return f"{name} ({code})" if name else "unknown village"


def _referral_body(
    user: User, *, referral: Referral, case: Case, provider_name: str, why: str
) -> str:
    """The email of an overdue referral to ``user``: a provider's people open the referral, the
    others the case."""
    link = "referrals" if user.role == "provider" else "cases"
    target = referral.id if user.role == "provider" else case.id
    return "\n".join(
        [
            f"A referral is overdue: {why}.",
            "",
            f"Referral: {referral.id}, service {referral.service_code}, to {provider_name}",
            f"Case: {case.case_number}",
            f"Open it: {BASE_URL_MARK}/{link}/{target}",
            "",
            "This message holds no names: open CLMS to see more.",
        ]
    )


def _when(value: dt.datetime | None) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC") if value else "-"
