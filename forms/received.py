"""The queue of received submissions: what waits to be processed, claiming a batch of it, and the
status each submission gets.

A submission of our forms is stored ``received`` (:mod:`forms.ingest`) and waits here until the
processing job (:mod:`clms.intake.process`) moves it to ``parsed`` or ``review`` (with the
reasons). These are the statements it runs on the submissions; none of them commits.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Row, bindparam, func, select, update
from sqlalchemy.orm import Session

from clms.models import Submission, User
from forms.parse import Issue

SUBMISSIONS = Submission.__table__

# the oldest received submissions, read without a lock (parsed outside any transaction) ...
_PEEK = (
    select(
        SUBMISSIONS.c.id, SUBMISSIONS.c.xml, SUBMISSIONS.c.received_at, SUBMISSIONS.c.submitter_id,
        SUBMISSIONS.c.accepted_reasons,
    )  # fmt: skip
    # one its server withdrew before it was processed waits, unprocessed, until it is restored
    # (clms.intake.withdraw): then it is processed as if it had just arrived, alerts and all
    .where(SUBMISSIONS.c.status == "received", SUBMISSIONS.c.withdrawn_at.is_(None))
    .order_by(SUBMISSIONS.c.id)
    .limit(bindparam("batch"))
)
# ... then claimed: those still received, locked until the batch commits
_CLAIM = (
    select(SUBMISSIONS.c.id, SUBMISSIONS.c.current)
    .where(
        SUBMISSIONS.c.id.in_(bindparam("ids", expanding=True)),
        SUBMISSIONS.c.status == "received",
    )
    .order_by(SUBMISSIONS.c.id)
    .with_for_update()
)
_SET_STATUS = update(SUBMISSIONS).where(SUBMISSIONS.c.id == bindparam("row_id"))


def oldest(session: Session, size: int) -> list[Row]:
    """Up to ``size`` of the oldest received submissions (``id``, ``xml``, ``received_at``,
    ``submitter_id``, ``accepted_reasons``), read without a lock."""
    return session.execute(_PEEK, {"batch": size}).all()


def claim(session: Session, ids: list[int]) -> dict[int, bool]:
    """Lock those of ``ids`` still received until the transaction ends (``SELECT ... FOR
    UPDATE``); returns whether each one is current (False: replaced by an edit), by id. What
    another processor took meanwhile is left out."""
    return dict(session.execute(_CLAIM, {"ids": ids}).all())


def submitters(session: Session, ids: set[int]) -> dict[int, User | None]:
    """The users who sent the submissions, by id (None for a user no longer there)."""
    return {user_id: session.get(User, user_id) for user_id in sorted(ids)}


def status(submission_id: int, issues: list[Issue]) -> dict:
    """The status of a processed submission: ``review`` with the reasons, or ``parsed``."""
    return {
        "row_id": submission_id,
        "status": "review" if issues else "parsed",
        "review_reasons": [i.as_dict() for i in issues],
    }


def failed_status(submission_id: int, problem: str) -> dict:
    """The status of a submission that could not be processed: ``review``, saying why."""
    reasons = [Issue("submission", None, problem, "parse_error").as_dict()]
    return {"row_id": submission_id, "status": "review", "review_reasons": reasons}


def raw_status(submission_id: int) -> dict:
    """The status of a submission of a form that is not ours: ``raw``, kept as received."""
    return {"row_id": submission_id, "status": "raw", "review_reasons": []}


def set_statuses(session: Session, statuses: list[dict]) -> None:
    """Write the statuses made by :func:`status`, :func:`failed_status` and :func:`raw_status`,
    with one executemany UPDATE."""
    if statuses:
        session.execute(_SET_STATUS, statuses)


def waiting(session: Session) -> tuple[int, dt.datetime | None]:
    """How many submissions wait to be processed, and when the oldest arrived (None if none)."""
    count, first = session.execute(
        select(func.count(), func.min(SUBMISSIONS.c.received_at)).where(
            SUBMISSIONS.c.status == "received", SUBMISSIONS.c.withdrawn_at.is_(None)
        )
    ).one()
    return count, first
