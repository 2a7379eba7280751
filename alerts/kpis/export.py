"""The child-visit export: one row per current child visit behind the figures, pseudonymous
(no names, coordinates or free text), read through a server-side cursor a chunk at a time.
"""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session, aliased

from alerts.kpis.dimensions import _SCOPE_VILLAGE, _Context, _join_visit_dims, _resolve, visit_dims
from alerts.kpis.filters import KpiFilters
from clms.export_sql import Column, Table
from clms.models import (
    Area,
    Child,
    ChildVisit,
    Classification,
    Supplier,
    User,
    Village,
    Visit,
    utcnow,
)
from clms.scope import village_scope_condition

#: rows the child-visit export reads from the database at a time
EXPORT_CHUNK = 1000
#: the columns of the child-visit export: pseudonymous, no names, coordinates or free text
CHILD_VISIT_COLUMNS = (
    "child_uid",
    "visit_date",
    "kind",
    "village",
    "area",
    "supplier",
    "tier",
    "monitor",
    "age",
    "sex",
    "attends_school",
    "work_hours_7d",
    "chore_hours_7d",
    "hazards",
    "category",
    "sdg_871",
    "reason_rules",
)


def child_visit_table(session: Session, user: User, filters: KpiFilters) -> Table | None:
    """The child-visit export as a :class:`clms.export_sql.Table` (the database writes each
    cell), or None for a user with no scope: the rows and order of :func:`child_visit_rows`.
    The filters are checked at once (``request.invalid_parameter``)."""
    found = _child_visit_query(session, user, filters)
    if found is None:
        return None
    stmt, order = found
    columns = [
        Column(name, expr, kind)
        for name, expr, kind in zip(CHILD_VISIT_COLUMNS, _COLUMNS, _KINDS, strict=True)
    ]
    return Table(columns, stmt, order)


def child_visit_rows(
    session: Session, user: User, filters: KpiFilters, *, chunk: int = EXPORT_CHUNK
) -> Iterator[tuple]:
    """One tuple per current child visit in ``user``'s scope and ``filters`` (the period is the
    visit's date), oldest first, in the order of :data:`CHILD_VISIT_COLUMNS`: the pseudonymous
    child id and the facts the classifier read, never a name, a coordinate or free text.

    The filters are checked at once (``request.invalid_parameter``); the rows are read when the
    iterator is, through a server-side cursor ``chunk`` rows at a time, so memory stays the same
    however many rows there are. Lists (hazards, reason rule ids) are joined with spaces, as ODK
    writes a multiple choice. Nothing for a user with no scope.

    The exports read :func:`child_visit_table` instead (the database writes the cells, ten
    times faster); these tuples are what its cells must equal (tested), and the benchmark's
    baseline.
    """
    found = _child_visit_query(session, user, filters)
    if found is None:
        return iter(())
    stmt, order = found
    stmt = (
        stmt.with_only_columns(*_COLUMNS)
        .order_by(*order)
        .execution_options(stream_results=True, yield_per=chunk)
    )
    return _child_visit_tuples(session, stmt)


_MONITOR = aliased(User, name="monitor_user")
# the columns as stored, in the order of CHILD_VISIT_COLUMNS, and how each is written
_COLUMNS = (
    Child.child_uid,
    Visit.visited_at,
    Visit.kind,
    Village.code,
    Area.code,
    Supplier.code,
    Supplier.tier,
    _MONITOR.username,
    ChildVisit.age,
    func.coalesce(ChildVisit.sex, Child.sex),
    ChildVisit.attends_school,
    ChildVisit.work_hours_7d,
    ChildVisit.chore_hours_7d,
    ChildVisit.hazards,
    Classification.category,
    Classification.sdg_871,
    Classification.reasons,
)
_KINDS = ("text", "date", "text", "text", "text", "text", "int", "text", "int", "text", "bool",
          "int", "int", "words", "text", "bool", "rules")  # fmt: skip


def _child_visit_query(session: Session, user: User, filters: KpiFilters):
    """The statement (joins and conditions) and the order of the child-visit export, or None
    for a user with no scope."""
    resolved = _resolve(session, filters)
    scope = village_scope_condition(session, user, _SCOPE_VILLAGE.id)
    if scope is None:
        return None
    ctx = _Context.build(session, filters, resolved, scope, utcnow())
    dims = visit_dims()
    stmt = (
        select(ChildVisit.id)
        .select_from(ChildVisit)
        .join(Visit, Visit.id == ChildVisit.visit_id)
        .join(Child, Child.id == ChildVisit.child_id)
        .outerjoin(
            Classification,
            and_(Classification.child_visit_id == ChildVisit.id, Classification.current),
        )
    )
    stmt = (
        _join_visit_dims(stmt)
        .outerjoin(Area, Area.id == Village.area_id)
        .outerjoin(_MONITOR, _MONITOR.id == Visit.monitor_id)
        .where(
            Visit.current,
            Visit.visited_at >= filters.start,
            Visit.visited_at < filters.end,
            *ctx.conditions(dims),
        )
    )
    return stmt, (Visit.visited_at, Visit.id, ChildVisit.position, ChildVisit.id)


def _child_visit_tuples(session: Session, stmt) -> Iterator[tuple]:
    for row in session.execute(stmt):
        (uid, visited_at, kind, village, area, supplier, tier, username, age, sex, school,
         work, chores, hazards, category, sdg, reasons) = row  # fmt: skip
        yield (
            uid,
            visited_at.date(),
            kind,
            village,
            area,
            supplier,
            tier,
            username,
            age,
            sex,
            school,
            work,
            chores,
            _words(hazards),
            category,
            sdg,
            _words(r.get("rule") if isinstance(r, dict) else r for r in (reasons or [])),
        )


def _words(values) -> str:
    if not values:
        return ""
    if isinstance(values, str):
        return values
    return " ".join(str(v) for v in values if v not in (None, ""))
