"""What a case step tells officers, supervisors or a provider's staff: a notice in the
application (:mod:`clms.notices`) and the mail of those who want that kind by email, or, for the
steps that have no notice, the mail alone; through the outbox, in the step's transaction, with no
names in it."""

from __future__ import annotations

from sqlalchemy.orm import Session

from alerts.notify import BASE_URL_MARK, queue_notification, users_for_villages
from clms.models import Case, User
from clms.notices.tell import About, Mail, tell


def notify(
    session: Session,
    users,
    *,
    kind: str,
    subject: str,
    lines: list[str],
    case: Case,
    now,
    notice: str | None = None,
    detail: dict | None = None,
    actor: User | None = None,
    about: About | None = None,
) -> int:
    """Tell ``users`` of a step of ``case``: with ``notice`` (a kind of :mod:`clms.notices`), a
    notice for each but ``actor`` and this email to those who want the kind by email (``about``:
    what the notice opens, else the case with ``detail``); without, this email to each user who
    has an address. No names, only codes and the link. Returns how many emails were queued."""
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
    if notice is not None:
        about = about or About("case", case.id, case.case_number, detail or {})
        mail = Mail(subject, body, outbox_kind=kind, alert_id=case.alert_id)
        return tell(session, users, notice, about, actor=actor, now=now, mail=mail).mailed
    sent = 0
    for user in {u.id: u for u in users}.values():
        if queue_notification(
            session, user, kind=kind, subject=subject, body=body, alert_id=case.alert_id, now=now
        ):
            sent += 1
    return sent


def tell_officers(session: Session, case: Case, kind: str, detail: dict, *, actor, now) -> int:
    """A notice (and the mail of those who want it) to the officers of ``case``
    (:func:`officers_of`), for a step that has no email of its own."""
    about = About("case", case.id, case.case_number, detail)
    return tell(session, officers_of(session, case), kind, about, actor=actor, now=now).mailed


def case_staff(session: Session, case: Case) -> list[User]:
    """Whom a note on ``case`` may be addressed to: its officer and the active officers and
    supervisors covering its village (the people who may open it), by username."""
    people = {u.id: u for u in officers_of(session, case)}
    if case.village_id is not None:
        for role in ("officer", "supervisor"):
            for u in users_for_villages(session, [case.village_id], role).get(case.village_id, []):
                people[u.id] = u
    return sorted(people.values(), key=lambda u: u.username)


def supervisors_of(session: Session, case: Case) -> list[User]:
    """The active supervisors covering the case's village."""
    if case.village_id is None:
        return []
    return users_for_villages(session, [case.village_id], "supervisor").get(case.village_id, [])


def officers_of(session: Session, case: Case) -> list[User]:
    """The case officer while their scope still covers the case's village (who may open it),
    else the active officers covering it."""
    if case.village_id is None:
        officer = session.get(User, case.officer_id) if case.officer_id is not None else None
        return [officer] if officer is not None and officer.active else []
    covering = users_for_villages(session, [case.village_id], "officer").get(case.village_id, [])
    mine = [u for u in covering if u.id == case.officer_id]
    return mine or covering
