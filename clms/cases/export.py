"""The case list as a download (``/cases/export.csv`` and ``.xlsx``): every case of the list's
filters in the person's scope, in the list's order, one row each, written by the database
(:mod:`clms.export_sql`).

For the officers and supervisors who already see these cases on the list, and no more than the
list needs to be worked from a spreadsheet: the case number and the child's pseudonymous id, never
a name (the list shows a first name; a file travels further), no date of birth, no coordinates,
no free text (notes, closure reasons, lessons learned); codes for places, states and outcomes.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import case, select
from sqlalchemy.orm import Session, aliased

from clms.cases.queries import case_list_conditions, overdue_case_condition
from clms.export_sql import Column, Table
from clms.models import Area, Case, Child, Supplier, User, Village

#: the columns of the case-list export: pseudonymous, no names, coordinates or free text
CASE_COLUMNS = (
    "case_number",
    "child_uid",
    "village",
    "area",
    "supplier",
    "state",
    "category",
    "risk_level",
    "officer",
    "opened",
    "step_due",
    "next_followup_due",
    "overdue",
    "closed",
    "outcome",
)

_OFFICER = aliased(User, name="case_officer")


def case_table(session: Session, user: User, *, now: dt.datetime, **filters) -> Table | None:
    """The cases of the list's ``filters`` (those of :func:`clms.cases.queries.list_cases`:
    ``state``, ``village``, ``mine``, ``overdue``, ``q``) in ``user``'s scope, in the list's
    order (overdue first, then by the step deadline, then the newest), as an export; None for
    a user with no scope. A filter naming nothing known is a ``request.invalid_parameter``."""
    where = case_list_conditions(session, user, now=now, **filters)
    if where is None:
        return None
    late = overdue_case_condition(now)
    exprs = (
        (Case.case_number, "text"),
        (Child.child_uid, "text"),
        (Village.code, "text"),
        (Area.code, "text"),
        (Supplier.code, "text"),
        (Case.state, "text"),
        (Case.category, "text"),
        (Case.risk_level, "text"),
        (_OFFICER.username, "text"),
        (Case.opened_at, "date"),
        (Case.step_due_at, "date"),
        (Case.next_followup_due_at, "date"),
        (case((late, True), else_=False), "bool"),
        (Case.closed_at, "date"),
        (Case.outcome, "text"),
    )
    columns = [
        Column(name, expr, kind) for name, (expr, kind) in zip(CASE_COLUMNS, exprs, strict=True)
    ]
    stmt = (
        select(Case.id)
        .join(Child, Child.id == Case.child_id)
        .outerjoin(Village, Village.id == Case.village_id)
        .outerjoin(Area, Area.id == Village.area_id)
        .outerjoin(Supplier, Supplier.id == Case.supplier_id)
        .outerjoin(_OFFICER, _OFFICER.id == Case.officer_id)
        .where(*where)
    )
    order = (
        case((late, 0), else_=1),
        Case.step_due_at.is_(None),
        Case.step_due_at,
        Case.opened_at.desc(),
        Case.id.desc(),
    )
    return Table(columns, stmt, order)
