"""Telling the officers that a submission is held for their review: the officers who may open it
(:func:`forms.review.get_submission`'s rule: the village of its visit or report, or a village of
the monitor who sent it), in the transaction that holds it."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from alerts.notify import users_for_villages
from clms.models import Report, Submission, User, Visit
from clms.notices.tell import About, tell
from clms.scope import village_ids_in_scope


def tell_reviewers(session: Session, submission_ids: list[int], now: dt.datetime) -> int:
    """A ``submission_held`` notice for each officer who may review each of ``submission_ids``
    (the supervisors covering it when no officer does); returns how many notices."""
    told = 0
    for submission in session.scalars(
        select(Submission).where(Submission.id.in_(sorted(set(submission_ids))))
    ):
        villages = _villages_of(session, submission)
        people = _people(session, villages, "officer") or _people(session, villages, "supervisor")
        about = About("submission", submission.id, f"#{submission.id}")
        told += len(tell(session, people, "submission_held", about, actor=None, now=now).notices)
    return told


def _villages_of(session: Session, submission: Submission) -> set[int]:
    """The villages of the submission's visits and reports, and of its monitor's scope."""
    found = set(
        session.scalars(select(Visit.village_id).where(Visit.submission_id == submission.id))
    ) | set(session.scalars(select(Report.village_id).where(Report.submission_id == submission.id)))
    if submission.submitter_id is not None:
        monitor = session.get(User, submission.submitter_id)
        if monitor is not None and monitor.role == "monitor":
            found |= village_ids_in_scope(session, monitor)
    return {v for v in found if v is not None}


def _people(session: Session, villages: set[int], role: str) -> list[User]:
    people: dict[int, User] = {}
    for users in users_for_villages(session, villages, role).values():
        for user in users:
            people[user.id] = user
    return list(people.values())
