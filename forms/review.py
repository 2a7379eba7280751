"""Reading received submissions for the people allowed to see them."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from clms.models import Form, Report, Submission, User, UserScope, Visit
from clms.paging import Page, Paging
from clms.scope import village_ids_in_scope
from forms.parse import OUR_FORMS

PAGE_SIZE = 50
#: the list's pages: a page out of range is brought back within the first and the last
SUBMISSION_PAGING = Paging(PAGE_SIZE, clamp=True)


@dataclass
class SubmissionPage(Page[Submission]):
    """One page of the submissions, newest first."""

    per_page: int = PAGE_SIZE


def _visible(session: Session, user: User) -> Select:
    """Submissions ``user`` may list.

    Officers and supervisors: ours whose visit or report is in their villages, and those of
    monitors who share a village with them (so an unknown village code still reaches an officer).
    Admins: every submission, but see :func:`may_read_content` for what they may open.
    """
    query = select(Submission).join(Form, Form.id == Submission.form_id)
    if user.role == "admin":
        return query
    villages = village_ids_in_scope(session, user)
    monitors = (
        select(User.id).where(User.role == "monitor").join(UserScope, UserScope.user_id == User.id)
    )
    monitor_ids = [
        m.id
        for m in session.scalars(select(User).where(User.id.in_(monitors)))
        if village_ids_in_scope(session, m) & villages
    ]
    in_villages = or_(
        Submission.id.in_(select(Visit.submission_id).where(Visit.village_id.in_(villages))),
        Submission.id.in_(select(Report.submission_id).where(Report.village_id.in_(villages))),
        Submission.submitter_id.in_(monitor_ids),
    )
    return query.where(Form.xml_form_id.in_(OUR_FORMS), in_villages)


def list_submissions(
    session: Session, user: User, *, status: str | None = None, page: int = 1
) -> SubmissionPage:
    """One page of the submissions ``user`` may see, newest first."""
    query = _visible(session, user)
    if status:
        query = query.where(Submission.status == status)
    total = session.scalar(select(func.count()).select_from(query.subquery()))
    window = SUBMISSION_PAGING.check(page, total=total)
    rows = session.scalars(
        query.order_by(Submission.received_at.desc(), Submission.id.desc())
        .limit(window.limit)
        .offset(window.offset)
    ).all()
    return SubmissionPage(rows=list(rows), total=total, page=window.page, pages=window.pages(total))


def get_submission(session: Session, user: User, submission_id: int) -> Submission | None:
    """The submission if ``user`` may see it."""
    return session.scalar(_visible(session, user).where(Submission.id == submission_id))


def may_read_content(user: User, submission: Submission) -> bool:
    """Raw XML of our forms holds children's data: officers in scope only, never an admin."""
    if submission.form.xml_form_id in OUR_FORMS:
        return user.role in ("officer", "supervisor")
    return True
