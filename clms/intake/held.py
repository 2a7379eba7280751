"""Telling the officers that a submission is held for their review, in the transaction that holds
it: the reviewers :func:`forms.review.reviewers_for` names (the village of its visit or report, or
a village of the monitor who sent it: who may open it), officers first."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from clms.models import Submission
from clms.notices.tell import About, tell
from forms.review import reviewers_for


def tell_reviewers(session: Session, submission_ids: list[int], now: dt.datetime) -> int:
    """A ``submission_held`` notice for each officer who may review each of ``submission_ids``
    (the supervisors covering it when no officer does); returns how many notices."""
    told = 0
    for submission in session.scalars(
        select(Submission).where(Submission.id.in_(sorted(set(submission_ids))))
    ):
        reviewers = reviewers_for(session, submission)
        people = [p for p in reviewers if p.role == "officer"] or [
            p for p in reviewers if p.role == "supervisor"
        ]
        about = About("submission", submission.id, f"#{submission.id}")
        told += len(tell(session, people, "submission_held", about, actor=None, now=now).notices)
    return told
