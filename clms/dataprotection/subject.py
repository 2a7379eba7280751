"""Finding a child and everything about it: the record asked for (following merges to the one
kept), every record that is this child, and the ids of every row about them, table by table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from clms.errors import DomainProblem
from clms.models import (
    OPEN_CASE_STATES,
    Alert,
    Case,
    Child,
    ChildVisit,
    Report,
    Submission,
    Visit,
)


class DataProtectionError(DomainProblem):
    """A request :mod:`clms.dataprotection` refuses, one of the ``dataprotection.*`` problems of
    the catalogue (``msg`` waits for translation, ``status`` is 400, 404 or 409)."""


# --- finding a child and everything about it ------------------------------------------------------


@dataclass
class Subject:
    """A child as the data-protection operations see it: the record asked for (``child``, the
    kept one when the asked id was merged into another) and ``ids``, every record that is this
    child (the kept one and those merged into it)."""

    child: Child
    ids: list[int]
    uids: list[str]


def find_subject(session: Session, child_uid: str) -> Subject:
    """The child with pseudonymous id ``child_uid`` (following merges to the record kept)."""
    uid = (child_uid or "").strip().upper()
    child = session.scalar(select(Child).where(Child.child_uid == uid)) if uid else None
    if child is None:
        raise DataProtectionError(key="dataprotection.child_unknown", uid=child_uid or "''")
    seen = {child.id}
    while child.merged_into_id is not None and child.merged_into_id not in seen:
        child = session.get(Child, child.merged_into_id)
        seen.add(child.id)
    ids, frontier = [child.id], [child.id]
    while frontier:  # records merged into this one, and into those, ...
        frontier = list(
            session.scalars(
                select(Child.id).where(Child.merged_into_id.in_(frontier), Child.id.not_in(ids))
            )
        )
        ids += frontier
    uids = list(session.scalars(select(Child.child_uid).where(Child.id.in_(ids))))
    return Subject(child, ids, sorted(uids, key=lambda u: u != child.child_uid))


def open_case_numbers(session: Session, subject: Subject) -> list[str]:
    """The numbers of the child's open cases (an erasure while one is open needs a reason)."""
    return list(
        session.scalars(
            select(Case.case_number).where(
                Case.child_id.in_(subject.ids), Case.state.in_(OPEN_CASE_STATES)
            )
        )
    )


def visit_count(session: Session, subject: Subject) -> int:
    """How many visits saw the child (any of its records)."""
    return session.scalar(
        select(func.count(ChildVisit.id)).where(ChildVisit.child_id.in_(subject.ids))
    )


@dataclass
class Related:
    """The ids of every row about a set of children, table by table."""

    children: list[int]
    households: list[int] = field(default_factory=list)
    child_visits: list[int] = field(default_factory=list)
    visits: list[int] = field(default_factory=list)
    cases: list[int] = field(default_factory=list)
    alerts: list[int] = field(default_factory=list)
    reports: list[int] = field(default_factory=list)
    submissions: list[int] = field(default_factory=list)


def related(session: Session, child_ids: Sequence[int]) -> Related:
    """Every row about the children ``child_ids``: their households, visits (household visits
    naming them and follow-ups of their cases), cases, alerts, reports and submissions (every
    version of each)."""
    out = Related(list(child_ids))
    if not child_ids:
        return out
    ids = list(child_ids)
    out.households = _ids(session, select(Child.household_id).where(Child.id.in_(ids)))
    out.child_visits = _ids(session, select(ChildVisit.id).where(ChildVisit.child_id.in_(ids)))
    out.cases = _ids(session, select(Case.id).where(Case.child_id.in_(ids)))
    visits = select(ChildVisit.visit_id).where(ChildVisit.child_id.in_(ids))
    followups = select(Visit.id).where(Visit.case_id.in_(out.cases)) if out.cases else None
    out.visits = _ids(session, visits if followups is None else visits.union(followups))
    out.alerts = _ids(session, select(Alert.id).where(Alert.child_id.in_(ids)))
    out.reports = _ids(
        session,
        select(Alert.report_id).where(Alert.child_id.in_(ids), Alert.report_id.is_not(None)),
    )
    direct = (
        select(Visit.submission_id)
        .where(Visit.id.in_(out.visits))
        .union(select(Report.submission_id).where(Report.id.in_(out.reports)))
    )
    first = _ids(session, direct)
    if first:
        # every version of each: an edit keeps its first instance's logical id
        logical = select(Submission.form_id, Submission.logical_id).where(Submission.id.in_(first))
        pairs = session.execute(logical).all()
        out.submissions = sorted(
            set(first)
            | set(
                _ids(
                    session,
                    select(Submission.id).where(
                        or_(
                            *[
                                (Submission.form_id == f) & (Submission.logical_id == lid)
                                for f, lid in pairs
                            ]
                        )
                    ),
                )
            )
        )
    return out


def _ids(session: Session, stmt) -> list[int]:
    return sorted({i for i in session.scalars(stmt) if i is not None})
