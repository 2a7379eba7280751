"""Kept facts (issue 19): the rows of :class:`clms.models.KpiChildFact`, one per current
classification of a child on a current visit, kept in step with what they are made of.

Every path that changes what counts calls one of the ``refresh_*`` functions in its own
transaction (they flush, never commit): the intake pipeline (new submissions, a new version, a
held one let through), a version replaced at ingestion, a held one rejected, withdrawal and
restore, reclassification, the merging of two children, erasure, a village moved to another
area, a household's supplier, a supplier's tier. A refresh makes the facts of the children
concerned again from the rows, whole: a child has a handful of visits, and the pointers that
spare the requests a ranking (``next_*_at``, ``labour_*_at``) depend on all of them.

:func:`rebuild` makes every fact again (``clms kpis rebuild-facts``, and the migration that
added the table); a property test holds the kept facts equal to a rebuild after any sequence of
those changes.

This module sits with the data (``forms``, below the alerts, replaces versions too), and knows
only the models and the categories of :mod:`alerts.rules`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import cache

from sqlalchemy import (
    ColumnElement,
    and_,
    bindparam,
    case,
    delete,
    func,
    insert,
    null,
    or_,
    select,
)
from sqlalchemy.orm import Session

from alerts.rules import CATEGORIES
from clms.models import (
    ChildVisit,
    Classification,
    Household,
    KpiChildFact,
    Supplier,
    Village,
    Visit,
)

#: the categories that are child labour (as :data:`alerts.kpis.CHILD_LABOUR`)
CHILD_LABOUR = CATEGORIES[:3]
#: the partitions the figures rank a child's rows in, beyond the child (suffix, column)
PARTITIONS = ("village", "area", "supplier", "tier", "monitor")
#: children refreshed in one statement
CHUNK = 2000

F = KpiChildFact.__table__


def _base(child_condition: ColumnElement[bool] | None):
    """The rows the facts are made of (``child_condition`` on ``ChildVisit.child_id``)."""
    supplier = func.coalesce(Visit.supplier_id, Household.supplier_id)
    age = ChildVisit.age
    stmt = (
        select(
            ChildVisit.id.label("child_visit_id"),
            Classification.id.label("classification_id"),
            ChildVisit.child_id.label("child_id"),
            Visit.id.label("visit_id"),
            Visit.household_id.label("household_id"),
            Visit.visited_at.label("visited_at"),
            Visit.kind.label("kind"),
            Visit.village_id.label("village_id"),
            Village.area_id.label("area_id"),
            supplier.label("supplier_id"),
            Visit.supplier_id.label("visit_supplier_id"),
            Supplier.tier.label("tier"),
            Visit.monitor_id.label("monitor_id"),
            ChildVisit.sex.label("sex"),
            case(
                (age.is_(None), null()),
                (age < 5, "0-4"),
                (age < 12, "5-11"),
                (age < 15, "12-14"),
                (age < 18, "15-17"),
                else_="18+",
            ).label("age_band"),
            Classification.category.label("category"),
            Classification.sdg_871.label("sdg_871"),
            Classification.category.in_(CHILD_LABOUR).label("in_labour"),
        )
        .select_from(Classification)
        .join(ChildVisit, ChildVisit.id == Classification.child_visit_id)
        .join(Visit, Visit.id == ChildVisit.visit_id)
        .outerjoin(Household, Household.id == Visit.household_id)
        .outerjoin(Village, Village.id == Visit.village_id)
        .outerjoin(Supplier, Supplier.id == supplier)
        .where(Classification.current, Visit.current)
    )
    if child_condition is not None:
        stmt = stmt.where(child_condition)
    return stmt.subquery("fact_rows")


def _source(child_condition: ColumnElement[bool] | None):
    """The facts of the children ``child_condition`` keeps, as a SELECT in the table's columns."""
    b = _base(child_condition)
    order = (b.c.visited_at, b.c.visit_id, b.c.child_visit_id)
    labour_at = case((b.c.in_labour, b.c.visited_at), else_=null())

    def within(part: str | None):
        if part is None:
            return [b.c.child_id]
        return [b.c.child_id, b.c[part if part == "tier" else f"{part}_id"]]

    pointers = []
    for part in (None, *PARTITIONS):
        suffix = "" if part is None else f"_{part}"
        pointers.append(
            func.lead(b.c.visited_at)
            .over(partition_by=within(part), order_by=order)
            .label(f"next{suffix}_at")
        )
        pointers.append(
            func.max(labour_at)
            .over(partition_by=within(part), order_by=order, rows=(None, 0))
            .label(f"labour{suffix}_at")
        )
    child = [b.c.child_id]

    def same(column, *, or_none: bool):
        """Every row of the child has the same ``column``, not none (or, ``or_none``: every
        row has none)."""
        n = func.count(column).over(partition_by=child)
        one = and_(
            func.count().over(partition_by=child) == n,
            func.min(column).over(partition_by=child) == func.max(column).over(partition_by=child),
        )
        return case((or_(n == 0, one) if or_none else one, True), else_=False)

    singles = [
        same(b.c.village_id, or_none=False).label("single_village"),
        same(b.c.supplier_id, or_none=True).label("single_supplier"),
        same(b.c.tier, or_none=True).label("single_tier"),
        same(b.c.monitor_id, or_none=True).label("single_monitor"),
    ]
    return select(*b.c, *singles, *pointers)


def _insert(child_condition: ColumnElement[bool] | None):
    stmt = _source(child_condition).subquery("facts_made")
    names = [c.name for c in stmt.c]
    return insert(F).from_select(names, select(*(stmt.c[n] for n in names)))


#: the children of a refresh, and the range of a rebuild's step (bound at each execution)
_CHILDREN = bindparam("fact_children", expanding=True)
_FIRST, _LAST = bindparam("fact_first"), bindparam("fact_last")


@cache
def _statements():
    """The statements of a refresh and of a rebuild's step, made once: building the SELECT of
    the facts (a dozen window functions over six tables) costs several times what running it
    costs on a handful of children, and every classification the pipeline stores refreshes."""
    return (
        delete(F).where(
            or_(
                F.c.child_id.in_(_CHILDREN),
                F.c.child_visit_id.in_(
                    select(ChildVisit.id).where(ChildVisit.child_id.in_(_CHILDREN))
                ),
            )
        ),
        _insert(ChildVisit.child_id.in_(_CHILDREN)),
        _insert(ChildVisit.child_id.between(_FIRST, _LAST)),
    )


def refresh_children(session: Session, child_ids: Iterable[int]) -> None:
    """Make the facts of ``child_ids`` again from the rows (also the rows of child visits that
    belonged to them: a merge moves them)."""
    ids = sorted({int(i) for i in child_ids if i is not None})
    remove, make, _ = _statements()
    for i in range(0, len(ids), CHUNK):
        chunk = {"fact_children": ids[i : i + CHUNK]}
        session.execute(remove, chunk)
        session.execute(make, chunk)


def refresh_submissions(session: Session, submission_ids: Iterable[int]) -> None:
    """Make again the facts of the children on the visits of ``submission_ids`` (a version
    processed, replaced, rejected, withdrawn or restored)."""
    ids = sorted({int(i) for i in submission_ids if i is not None})
    children: set[int] = set()
    for i in range(0, len(ids), CHUNK):
        chunk = ids[i : i + CHUNK]
        visits = select(Visit.id).where(Visit.submission_id.in_(chunk))
        children.update(
            session.scalars(select(ChildVisit.child_id).where(ChildVisit.visit_id.in_(visits)))
        )
        children.update(session.scalars(select(F.c.child_id).where(F.c.visit_id.in_(visits))))
    refresh_children(session, children)


def _refresh_stale(session: Session, ids: Iterable[int], named_by, stored, now) -> None:
    """Refresh the children of the facts whose ``named_by`` column is one of ``ids`` and whose
    ``stored`` value is no longer ``now`` (a correlated subquery of what the rows say today)."""
    ids = sorted(set(ids))
    for i in range(0, len(ids), CHUNK):
        stale = and_(named_by.in_(ids[i : i + CHUNK]), stored.is_distinct_from(now))
        refresh_children(session, set(session.scalars(select(F.c.child_id).where(stale))))


def refresh_households(session: Session, household_ids: Iterable[int]) -> None:
    """After the supplier of ``household_ids`` may have changed: the facts of their visits
    without a supplier of their own that now name another."""
    now = (
        select(func.coalesce(F.c.visit_supplier_id, Household.supplier_id))
        .where(Household.id == F.c.household_id)
        .scalar_subquery()
    )
    _refresh_stale(session, household_ids, F.c.household_id, F.c.supplier_id, now)


def refresh_villages(session: Session, village_ids: Iterable[int]) -> None:
    """After ``village_ids`` may have moved to another area: the facts that name the old one."""
    now = select(Village.area_id).where(Village.id == F.c.village_id).scalar_subquery()
    _refresh_stale(session, village_ids, F.c.village_id, F.c.area_id, now)


def refresh_suppliers(session: Session, supplier_ids: Iterable[int]) -> None:
    """After the tier of ``supplier_ids`` may have changed: the facts that name the old one."""
    now = select(Supplier.tier).where(Supplier.id == F.c.supplier_id).scalar_subquery()
    _refresh_stale(session, supplier_ids, F.c.supplier_id, F.c.tier, now)


def rebuild(session: Session, progress: Callable[[int, int], None] | None = None) -> int:
    """Every fact made again from the rows, a range of children at a time; ``progress(done,
    total)`` (children) after each. Returns the number of facts. Flushes, never commits."""
    session.execute(delete(F))
    ids = list(
        session.scalars(select(ChildVisit.child_id).distinct().order_by(ChildVisit.child_id))
    )
    step = CHUNK * 10
    for i in range(0, len(ids), step):
        chunk = ids[i : i + step]
        session.execute(_statements()[2], {"fact_first": chunk[0], "fact_last": chunk[-1]})
        if progress is not None:
            progress(min(i + step, len(ids)), len(ids))
    return session.scalar(select(func.count()).select_from(F))


def fact_rows(session: Session) -> list[tuple]:
    """Every fact as a sorted list of tuples (what the tests compare with a rebuild)."""
    return [tuple(r) for r in session.execute(select(F).order_by(F.c.child_visit_id))]
