"""The mail a case step sends to officers, supervisors or a provider's staff: through the
outbox, in the step's transaction, with no names in it."""

from __future__ import annotations

from sqlalchemy.orm import Session

from alerts.notify import BASE_URL_MARK, queue_notification, users_for_villages
from clms.models import Case, User


def notify(
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
