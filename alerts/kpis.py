"""Daily KPI snapshots: the figures of domain.md section 7 that the data holds so far.

:func:`take_kpi_snapshot` writes one :class:`~clms.models.KpiSnapshot` per area that has villages
(figures of the villages directly in it) and one overall (``area_id`` None), replacing that day's
rows, so running it twice a day keeps the later figures. Every figure is one set-based query
(``GROUP BY``, window functions) in SQL that SQLite and PostgreSQL both run: nothing loops over
children in Python, and a million child visits take seconds.

Figures, over the 12 months up to the moment of the snapshot:

- ``households_covered``: households with a current visit;
- ``children_monitored``: children with a current classification (at a current visit);
- ``by_category``: those children by the category of their *latest* classification (the latest
  visit; the child counts in the area of that visit's village);
- ``children_in_child_labour``: latest category worst_form, hazardous or child_labour;
- ``identification_rate``: children_in_child_labour / children_monitored (None with no child);
- ``sdg_871``: latest classification flagged for SDG indicator 8.7.1;
- ``alerts_open``: alerts new or acknowledged, now;
- ``alerts_overdue``: of those, past their acknowledgement or first-visit deadline;
- ``median_hours_alert_to_acknowledgement``: over alerts raised in the 12 months and
  acknowledged (None when there is none).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import case, delete, extract, func, null, or_, select
from sqlalchemy.orm import Session

from alerts.escalate import overdue_alert_condition
from clms.models import (
    ACTIVE_ALERT_STATUSES,
    Alert,
    ChildVisit,
    Classification,
    KpiSnapshot,
    Village,
    Visit,
    utcnow,
)

CHILD_LABOUR = ("worst_form", "hazardous", "child_labour")
CATEGORIES = ("worst_form", "hazardous", "child_labour", "at_risk", "none")
WINDOW = dt.timedelta(days=365)


def take_kpi_snapshot(session: Session, day: dt.date, *, now: dt.datetime | None = None) -> int:
    """Write the KPI snapshot of ``day`` (one row per area with villages, one overall), replacing
    that day's rows; returns how many rows were written.

    The figures are as at ``now`` when given (the nightly job passes the time it runs), else as
    at the end of ``day`` (UTC). Flushes; the caller commits.

    >>> take_kpi_snapshot(session, dt.date(2025, 3, 1))  # doctest: +SKIP
    5
    """
    as_of = now or dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), dt.UTC)
    figures = compute_figures(session, as_of)
    area_ids = sorted(session.scalars(select(Village.area_id).distinct()).all())
    session.execute(delete(KpiSnapshot).where(KpiSnapshot.taken_on == day))
    created = utcnow()
    rows = [
        KpiSnapshot(
            taken_on=day,
            area_id=area_id,
            figures=figures.get(area_id, _empty(as_of)),
            created_at=created,
        )
        for area_id in [*area_ids, None]
    ]
    session.add_all(rows)
    session.flush()
    return len(rows)


def compute_figures(session: Session, as_of: dt.datetime) -> dict[int | None, dict]:
    """The figures as at ``as_of``: ``{area_id: figures}`` for every area with data, and
    ``None`` for everything (which also counts what has no village)."""
    start = as_of - WINDOW
    out: dict[int | None, dict] = {}

    def fig(area_id):
        return out.setdefault(area_id, _empty(as_of))

    # households: a household visited in two areas counts in each, and once overall
    visits = (
        select(Visit.household_id, Village.area_id)
        .outerjoin(Village, Village.id == Visit.village_id)
        .where(
            Visit.current,
            Visit.household_id.is_not(None),
            Visit.visited_at > start,
            Visit.visited_at <= as_of,
        )
        .subquery()
    )
    for area_id, n in session.execute(
        select(visits.c.area_id, func.count(func.distinct(visits.c.household_id)))
        .where(visits.c.area_id.is_not(None))
        .group_by(visits.c.area_id)
    ):
        fig(area_id)["households_covered"] = n
    fig(None)["households_covered"] = session.scalar(
        select(func.count(func.distinct(visits.c.household_id)))
    )

    # children: each child once, by its latest current classification in the window
    ranked = (
        select(
            Classification.child_id,
            Classification.category,
            Classification.sdg_871,
            Visit.village_id,
            func.row_number()
            .over(
                partition_by=Classification.child_id,
                order_by=(Visit.visited_at.desc(), Classification.id.desc()),
            )
            .label("rn"),
        )
        .join(ChildVisit, ChildVisit.id == Classification.child_visit_id)
        .join(Visit, Visit.id == ChildVisit.visit_id)
        .where(
            Classification.current,
            Visit.current,
            Visit.visited_at > start,
            Visit.visited_at <= as_of,
        )
        .subquery()
    )
    latest = session.execute(
        select(
            Village.area_id,
            ranked.c.category,
            func.count(),
            func.sum(case((ranked.c.sdg_871, 1), else_=0)),
        )
        .select_from(ranked)
        .outerjoin(Village, Village.id == ranked.c.village_id)
        .where(ranked.c.rn == 1)
        .group_by(Village.area_id, ranked.c.category)
    ).all()
    for area_id, category, n, sdg in latest:
        for key in {area_id, None}:  # each child is in one row: the overall is the sum
            f = fig(key)
            f["children_monitored"] += n
            f["by_category"][category] = f["by_category"].get(category, 0) + n
            f["sdg_871"] += int(sdg or 0)
            if category in CHILD_LABOUR:
                f["children_in_child_labour"] += n

    # alerts open and overdue, now
    for area_id, n, overdue in session.execute(
        select(
            Village.area_id,
            func.count(),
            func.sum(case((overdue_alert_condition(as_of), 1), else_=0)),
        )
        .select_from(Alert)
        .outerjoin(Village, Village.id == Alert.village_id)
        .where(Alert.status.in_(ACTIVE_ALERT_STATUSES), Alert.created_at <= as_of)
        .group_by(Village.area_id)
    ):
        for key in {area_id, None}:
            fig(key)["alerts_open"] += n
            fig(key)["alerts_overdue"] += int(overdue or 0)

    for area_id, hours in _median_hours_to_ack(session, start, as_of, by_area=True):
        if area_id is not None:
            fig(area_id)["median_hours_alert_to_acknowledgement"] = _round(hours)
    for _none, hours in _median_hours_to_ack(session, start, as_of, by_area=False):
        fig(None)["median_hours_alert_to_acknowledgement"] = _round(hours)

    for f in out.values():
        monitored = f["children_monitored"]
        f["identification_rate"] = (
            round(f["children_in_child_labour"] / monitored, 4) if monitored else None
        )
    return out


def _median_hours_to_ack(session: Session, start, as_of, *, by_area: bool):
    """``(area_id, median hours)`` rows (area None when not ``by_area``): the middle one or two
    of the ordered durations picked with ROW_NUMBER and COUNT windows, as both backends lack a
    common MEDIAN."""
    hours = _hours_between(session, Alert.created_at, Alert.acknowledged_at).label("hours")
    area = Village.area_id if by_area else null()
    base = (
        select(area.label("area_id"), hours)
        .select_from(Alert)
        .outerjoin(Village, Village.id == Alert.village_id)
        .where(
            Alert.acknowledged_at.is_not(None),
            Alert.acknowledged_at <= as_of,
            Alert.created_at > start,
        )
        .subquery()
    )
    partition = base.c.area_id if by_area else None
    ranked = select(
        base.c.area_id,
        base.c.hours,
        func.row_number().over(partition_by=partition, order_by=base.c.hours).label("rn"),
        func.count().over(partition_by=partition).label("n"),
    ).subquery()
    return session.execute(
        select(ranked.c.area_id, func.avg(ranked.c.hours))
        .where(or_(ranked.c.rn == (ranked.c.n + 1) // 2, ranked.c.rn == (ranked.c.n + 2) // 2))
        .group_by(ranked.c.area_id)
    ).all()


def _hours_between(session: Session, start, end):
    """Hours from ``start`` to ``end`` (two datetime columns), in each backend's own words."""
    if session.get_bind().dialect.name == "postgresql":
        return extract("epoch", end - start) / 3600.0
    return (func.julianday(end) - func.julianday(start)) * 24.0


def _empty(as_of: dt.datetime) -> dict:
    return {
        "as_of": as_of.astimezone(dt.UTC).isoformat(),
        "households_covered": 0,
        "children_monitored": 0,
        "children_in_child_labour": 0,
        "identification_rate": None,
        "by_category": {c: 0 for c in CATEGORIES},
        "sdg_871": 0,
        "alerts_open": 0,
        "alerts_overdue": 0,
        "median_hours_alert_to_acknowledgement": None,
    }


def _round(hours) -> float | None:
    return None if hours is None else round(float(hours), 1)
