"""Where each kind of row (visits, alerts, cases) is placed in a group and filtered: its
village, area, supplier, tier, monitor and time window (the table of :mod:`alerts.kpis`); the ids
the filter codes name; and the context of one computation (scope, filters, dialect).

Also what counts as a child's classification in a window, shared with the hotspot figures
(:mod:`geo.hotspots`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, exists, extract, func, literal, null, select, union_all
from sqlalchemy.orm import Session, aliased

from alerts.kpis.filters import TIME_GROUPS, KpiFilters, _invalid, time_windows
from clms.i18n import N_, Msg
from clms.models import (
    Alert,
    Area,
    Case,
    ChildVisit,
    Classification,
    Household,
    Submission,
    Supplier,
    User,
    UTCDateTime,
    Village,
    Visit,
)
from clms.scope import descendant_area_ids

# the village table as the scope condition names it: an alias of its own, so that the scope's
# subquery of villages (clms.scope) is never correlated with a query joining ``villages``
_SCOPE_VILLAGE = aliased(Village, name="scope_village")


@dataclass(frozen=True)
class _Resolved:
    area_ids: frozenset[int] | None
    village_id: int | None
    supplier_id: int | None
    monitor_id: int | None


@dataclass(frozen=True)
class _Dims:
    """The SQL expressions placing one kind of row in a village, area, supplier, tier, monitor."""

    village: ColumnElement
    area: ColumnElement
    supplier: ColumnElement
    tier: ColumnElement
    monitor: ColumnElement


@dataclass
class _Context:
    session: Session
    filters: KpiFilters
    resolved: _Resolved
    now: dt.datetime
    dialect: str
    villages: object | None  # a CTE of the villages allowed (scope, area, village), or None: all
    area_villages: object | None  # the same without the village filter

    @classmethod
    def build(cls, session, filters, resolved, scope, now) -> _Context:
        def allowed(with_village: bool):
            conditions = [] if scope is None else [scope]
            if resolved.area_ids is not None:
                conditions.append(_SCOPE_VILLAGE.area_id.in_(sorted(resolved.area_ids)))
            if with_village and resolved.village_id is not None:
                conditions.append(_SCOPE_VILLAGE.id == resolved.village_id)
            if not conditions:
                return None
            name = "kpi_villages" if with_village else "kpi_area_villages"
            return select(_SCOPE_VILLAGE.id.label("id")).where(*conditions).cte(name)

        return cls(
            session,
            filters,
            resolved,
            now,
            session.get_bind().dialect.name,
            allowed(True),
            allowed(False),
        )

    def conditions(self, dims: _Dims, *, monitor: bool = True, village: bool = True) -> list:
        """The scope and the filters, on one kind of row (``monitor``/``village`` False: without
        the monitor or the village filter, for the monitors' area comparison)."""
        r = self.resolved
        villages = self.villages if village else self.area_villages
        out = []
        if villages is not None:
            out.append(dims.village.in_(select(villages.c.id)))
        if r.supplier_id is not None:
            out.append(dims.supplier == r.supplier_id)
        if self.filters.tier is not None:
            out.append(dims.tier == self.filters.tier)
        if monitor and r.monitor_id is not None:
            out.append(dims.monitor == r.monitor_id)
        return out

    def windows(self, group: str):
        """A CTE of the time windows of ``group`` (key ``k``, start ``s``, end ``e``)."""
        filters = dataclasses.replace(self.filters, group=group if group in TIME_GROUPS else "none")
        parts = [
            select(
                literal(key).label("k"),
                literal(start, UTCDateTime()).label("s"),
                literal(end, UTCDateTime()).label("e"),
            )
            for key, start, end in time_windows(filters)
        ]
        return (union_all(*parts) if len(parts) > 1 else parts[0]).cte("kpi_windows")

    def days(self, start, end):
        """Days from ``start`` to ``end`` (two datetime expressions), as a float."""
        if self.dialect == "postgresql":
            return extract("epoch", end - start) / 86400.0
        return func.julianday(end) - func.julianday(start)


def visit_dims() -> _Dims:
    """Where a visit row is placed: its village, the village's area, its supplier (else the
    household's), that supplier's tier, its monitor (for :func:`classified_in_windows`)."""
    return _Dims(
        Visit.village_id,
        Village.area_id,
        func.coalesce(Visit.supplier_id, Household.supplier_id),
        Supplier.tier,
        Visit.monitor_id,
    )


def _join_visit_dims(stmt):
    """``stmt`` (selecting from visits) joined to what places a visit in groups."""
    return (
        stmt.outerjoin(Household, Household.id == Visit.household_id)
        .outerjoin(Village, Village.id == Visit.village_id)
        .outerjoin(Supplier, Supplier.id == func.coalesce(Visit.supplier_id, Household.supplier_id))
    )


def classified_in_windows(columns, windows):
    """``columns`` selected from the current classifications of the current visits in
    ``windows``, joined to what places a visit in groups (:func:`_join_visit_dims`)."""
    return _join_visit_dims(current_classifications_in_windows(columns, windows))


def current_classifications_in_windows(columns, windows):
    """``columns`` selected from the current classifications (``Classification``, its
    ``ChildVisit`` and ``Visit``) of the current visits in ``windows`` (a CTE with the columns
    ``s`` and ``e``), without the joins that place a visit in groups: what counts as a child's
    classification, for the indicators and the hotspot figures (:mod:`geo.hotspots`)."""
    return (
        columns.select_from(Classification)
        .join(ChildVisit, ChildVisit.id == Classification.child_visit_id)
        .join(Visit, Visit.id == ChildVisit.visit_id)
        .join(windows, _in_window(Visit.visited_at, windows))
        .where(Classification.current, Visit.current)
    )


_ALERT_CLASSIFICATION = aliased(Classification, name="alert_classification")
_ALERT_CHILD_VISIT = aliased(ChildVisit, name="alert_child_visit")
_ALERT_VISIT = aliased(Visit, name="alert_visit")


def _alert_dims() -> _Dims:
    return _Dims(
        Alert.village_id, Village.area_id, Alert.supplier_id, Supplier.tier, _ALERT_VISIT.monitor_id
    )


def alert_counts() -> ColumnElement[bool]:
    """Whether an alert counts in the figures (with :func:`_join_alert_dims`): not when its
    source was withdrawn by its server (issue 18), whether the system closed it (``withdrawn``)
    or it had been dismissed or made a case before, carrying a withdrawn visit's
    classification. A withdrawn visit counts nowhere, as if never received."""
    withdrawn = exists().where(
        Submission.id == _ALERT_VISIT.submission_id, Submission.withdrawn_at.is_not(None)
    )
    return and_(Alert.status != "withdrawn", ~withdrawn)


def _join_alert_dims(stmt):
    return (
        stmt.outerjoin(Village, Village.id == Alert.village_id)
        .outerjoin(Supplier, Supplier.id == Alert.supplier_id)
        .outerjoin(_ALERT_CLASSIFICATION, _ALERT_CLASSIFICATION.id == Alert.classification_id)
        .outerjoin(
            _ALERT_CHILD_VISIT, _ALERT_CHILD_VISIT.id == _ALERT_CLASSIFICATION.child_visit_id
        )
        .outerjoin(_ALERT_VISIT, _ALERT_VISIT.id == _ALERT_CHILD_VISIT.visit_id)
    )


def _case_dims() -> _Dims:
    return _Dims(Case.village_id, Village.area_id, Case.supplier_id, Supplier.tier, Case.monitor_id)


def _join_case_dims(stmt):
    return stmt.outerjoin(Village, Village.id == Case.village_id).outerjoin(
        Supplier, Supplier.id == Case.supplier_id
    )


def _key(group: str, dims: _Dims, windows) -> ColumnElement:
    """The group key of a row: a dimension, the time window's key, or NULL for the overall."""
    if group in TIME_GROUPS:
        return windows.c.k
    column = {
        "village": dims.village,
        "area": dims.area,
        "supplier": dims.supplier,
        "tier": dims.tier,
        "monitor": dims.monitor,
    }.get(group)
    return null() if column is None else column


def _in_window(column, windows) -> ColumnElement[bool]:
    return and_(column >= windows.c.s, column < windows.c.e)


# --- the filters' codes --------------------------------------------------------------------------


def _resolve(session: Session, filters: KpiFilters) -> _Resolved:
    """The ids the filter codes name; ``request.invalid_parameter`` for one naming nothing."""

    def lookup(column, value, id_column, parameter: str, what: str):
        if value is None:
            return None
        found = session.scalar(select(id_column).where(column == value))
        if found is None:
            raise _invalid(
                parameter, Msg("names no known {what} ({value!r})", what=Msg(what), value=value)
            )
        return found

    area_id = lookup(Area.code, filters.area, Area.id, "area", N_("area"))
    return _Resolved(
        area_ids=frozenset(descendant_area_ids(session, {area_id})) if area_id else None,
        village_id=lookup(Village.code, filters.village, Village.id, "village", N_("village")),
        supplier_id=lookup(
            Supplier.code, filters.supplier, Supplier.id, "supplier", N_("supplier")
        ),
        monitor_id=lookup(User.username, filters.monitor, User.id, "monitor", N_("user")),
    )
