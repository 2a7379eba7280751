"""Reading received submissions for the people allowed to see them, and the review queue.

Who sees what (domain.md, privacy defaults: an administrator reads child data only when also given
an officer's scope):

- officers and supervisors list our forms' submissions of their villages, and those placed in no
  village (no visit or report saved in a known village: an unknown village code, a parse error)
  of monitors who share a village with them, so such a submission still reaches an officer;
  never a submission placed in a village of another scope, whoever sent it; they read the answers
  and decide on those held for review;
- administrators list every submission and see why each is held (the health of the intake), and
  may open the raw XML behind a link (recorded as a read); they read the answers and decide only
  on those in villages of a scope they were given, like an officer;
- nobody else has these pages.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, Select, String, and_, cast, exists, false, func, or_, select
from sqlalchemy.orm import Session

from clms.models import Form, Report, Submission, User, Village, Visit
from clms.paging import Page, Paging
from clms.scope import users_covering, village_ids_in_scope
from forms.parse import OUR_FORMS

PAGE_SIZE = 50
#: the list's pages: a page out of range is brought back within the first and the last
SUBMISSION_PAGING = Paging(PAGE_SIZE, clamp=True)
#: the roles that review (in their scope)
REVIEWERS = ("officer", "supervisor")
#: not a status: the list of the submissions their server withdrew (clms.intake.withdraw)
WITHDRAWN = "withdrawn"
#: the review queue's lists: held (waiting for a decision), rejected, waiting for a key
QUEUE_STATES = {"held": "review", "rejected": "rejected", "encrypted": "encrypted"}


@dataclass
class SubmissionPage(Page[Submission]):
    """One page of the submissions, newest first."""

    per_page: int = PAGE_SIZE


def _in_villages(session: Session, user: User, villages: set[int] | None = None) -> ColumnElement:
    """Submissions of ``user``'s villages: a visit or report there; or, placed in no village, one
    of a monitor sharing a village with ``user``."""
    villages = village_ids_in_scope(session, user) if villages is None else villages
    if not villages:
        return false()
    monitor_ids = sorted(users_covering(session, villages, ("monitor",)))
    placed = or_(
        exists().where(Visit.submission_id == Submission.id, Visit.village_id.is_not(None)),
        exists().where(Report.submission_id == Submission.id, Report.village_id.is_not(None)),
    )
    return or_(
        Submission.id.in_(select(Visit.submission_id).where(Visit.village_id.in_(villages))),
        Submission.id.in_(select(Report.submission_id).where(Report.village_id.in_(villages))),
        and_(Submission.submitter_id.in_(monitor_ids), ~placed),
    )


def _visible(session: Session, user: User) -> Select:
    """Submissions ``user`` may list (see the module documentation)."""
    query = select(Submission).join(Form, Form.id == Submission.form_id)
    if user.role == "admin":
        return query
    return query.where(Form.xml_form_id.in_(OUR_FORMS), _in_villages(session, user))


def list_submissions(
    session: Session, user: User, *, status: str | None = None, page: int = 1
) -> SubmissionPage:
    """One page of the submissions ``user`` may see, newest first; ``status`` keeps those of
    that status, or (:data:`WITHDRAWN`) every version of those their server withdrew."""
    query = _visible(session, user)
    if status == WITHDRAWN:
        query = query.where(Submission.withdrawn_at.is_not(None))
    elif status:
        query = query.where(Submission.status == status)
    return _page(session, query, page, newest_first=True)


def review_queue(
    session: Session, user: User, *, state: str = "held", code: str | None = None, page: int = 1
) -> SubmissionPage:
    """One page of the review queue ``user`` may see, the oldest first: the current versions
    held for review (``state`` ``held``), rejected, or waiting for their form's key
    (``encrypted``); ``code`` keeps those held for that reason (:mod:`forms.reasons`; rows
    written before codes existed are not found by it)."""
    query = _visible(session, user).where(
        Submission.status == QUEUE_STATES.get(state, "review"), Submission.current.is_(True)
    )
    if code and state == "held":
        # the reasons are JSON: both databases write a key and its value as "key": "value"
        query = query.where(
            cast(Submission.review_reasons, String).like(f'%"code": "{_safe_code(code)}"%')
        )
    return _page(session, query, page, newest_first=False)


def any_held(session: Session) -> bool:
    """Whether any current submission is held for review, whoever may see it (one index read)."""
    held = select(Submission.id).where(
        Submission.status == QUEUE_STATES["held"], Submission.current.is_(True)
    )
    return session.scalar(held.limit(1)) is not None


def _safe_code(code: str) -> str:
    return "".join(c for c in code if c.isalnum() or c == "_")[:40]


def _page(session: Session, query: Select, page: int, newest_first: bool) -> SubmissionPage:
    total = session.scalar(select(func.count()).select_from(query.subquery()))
    window = SUBMISSION_PAGING.check(page, total=total)
    order = (
        (Submission.received_at.desc(), Submission.id.desc())
        if newest_first
        else (Submission.received_at, Submission.id)
    )
    rows = session.scalars(query.order_by(*order).limit(window.limit).offset(window.offset)).all()
    return SubmissionPage(rows=list(rows), total=total, page=window.page, pages=window.pages(total))


def held_count(session: Session, user: User) -> int:
    """How many current submissions wait for a decision that ``user`` may see."""
    query = _visible(session, user).where(
        Submission.status == "review", Submission.current.is_(True)
    )
    return session.scalar(select(func.count()).select_from(query.subquery())) or 0


def get_submission(session: Session, user: User, submission_id: int) -> Submission | None:
    """The submission if ``user`` may see it."""
    return session.scalar(_visible(session, user).where(Submission.id == submission_id))


def versions(session: Session, submission: Submission) -> list[Submission]:
    """Every version of ``submission`` (same form and logical id), the first first."""
    return list(
        session.scalars(
            select(Submission)
            .where(
                Submission.form_id == submission.form_id,
                Submission.logical_id == submission.logical_id,
            )
            .order_by(Submission.received_at, Submission.id)
        )
    )


def _in_own_scope(session: Session, user: User, submission: Submission) -> bool:
    found = session.scalar(
        select(Submission.id).where(
            Submission.id == submission.id, _in_villages(session, user)
        )  # fmt: skip
    )
    return found is not None


def may_read_content(session: Session, user: User, submission: Submission) -> bool:
    """Whether ``user`` may read the answers of ``submission``: our forms hold children's data,
    read by officers and supervisors in scope, and by an administrator only in the villages of a
    scope they were given; another form's submissions by whoever lists them."""
    if submission.form.xml_form_id not in OUR_FORMS:
        return True
    if user.role in REVIEWERS:
        return _in_own_scope(session, user, submission)
    if user.role == "admin" and user.scopes:
        return _in_own_scope(session, user, submission)
    return False


def may_read_raw(session: Session, user: User, submission: Submission) -> bool:
    """Whether ``user`` may open the raw XML as received: who reads the answers, and every
    administrator (behind a link, each opening recorded as a read)."""
    return user.role == "admin" or may_read_content(session, user, submission)


def may_decide(session: Session, user: User, submission: Submission) -> bool:
    """Whether ``user`` may correct, accept or reject ``submission``: who may read its answers
    (an administrator with an officer's scope too), for our forms only."""
    return submission.form.xml_form_id in OUR_FORMS and may_read_content(session, user, submission)


def reviewers_for(session: Session, submission: Submission) -> list[User]:
    """Who should review a held ``submission``: the active officers and supervisors of its
    village (its visit's or report's), or, placed in no village, of its monitor's villages (who
    may open it, :func:`_in_villages`), by username. For the notifications: call it when a
    submission is held."""
    villages: set[int] = set()
    villages |= set(
        session.scalars(
            select(Visit.village_id).where(
                Visit.submission_id == submission.id, Visit.village_id.is_not(None)
            )
        )
    )
    villages |= set(
        session.scalars(
            select(Report.village_id).where(
                Report.submission_id == submission.id, Report.village_id.is_not(None)
            )
        )
    )
    if not villages and submission.submitter is not None and submission.submitter.role == "monitor":
        villages = village_ids_in_scope(session, submission.submitter)
    if not villages:
        return []
    covering = users_covering(session, villages, REVIEWERS)
    return list(
        session.scalars(
            select(User)
            .where(User.id.in_(sorted(covering)), User.active.is_(True))
            .order_by(User.username)
        )
    )


def villages_of(session: Session, submission_ids: list[int]) -> dict[int, str]:
    """The codes of the villages the visits and reports of these submissions were saved in
    (joined with commas), by submission id; one without any is left out."""
    if not submission_ids:
        return {}
    found: dict[int, set[str]] = {}
    for model in (Visit, Report):
        rows = session.execute(
            select(model.submission_id, Village.code)
            .join(Village, Village.id == model.village_id)
            .where(model.submission_id.in_(submission_ids))
        )
        for submission_id, code in rows:
            found.setdefault(submission_id, set()).add(code)
    return {k: ", ".join(sorted(v)) for k, v in found.items()}


def village_choices(session: Session, user: User) -> list[tuple[str, str]]:
    """The villages a reviewer may choose when correcting a village code: theirs (code, name),
    by name."""
    ids = village_ids_in_scope(session, user)
    if not ids:
        return []
    rows = session.execute(
        select(Village.code, Village.name).where(Village.id.in_(ids)).order_by(Village.name)
    )
    return [(code, name) for code, name in rows]
