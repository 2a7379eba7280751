"""The officer's map: its filters (:class:`OfficerFilters`; the areas to choose from,
:func:`area_choices`), the households and open alerts of the officer's areas as plain rows
(:func:`officer_map_data`) and the map of them (:func:`officer_map`, drawn by
:func:`geo.maps.build.build_officer_map`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import folium
from sqlalchemy import Row, and_, exists, func, select
from sqlalchemy.orm import Session

from clms.errors import Problem, problem
from clms.i18n import Msg
from clms.models import (
    ACTIVE_ALERT_STATUSES,
    SEVERITIES,
    Alert,
    Area,
    Household,
    Supplier,
    User,
    Village,
    Visit,
)
from clms.scope import area_ids_in_scope, descendant_area_ids, village_scope_condition
from geo.maps.build import OfficerMapData, build_officer_map


@dataclass
class OfficerFilters:
    """The officer map's filters (the page's query string): codes, a severity and a period.

    >>> f = OfficerFilters.parse({"severity": "high", "from": "2026-01-01"}, dt.date(2026, 6, 1))
    >>> f.severity, f.date_from.isoformat(), f.date_to.isoformat()
    ('high', '2026-01-01', '2026-06-01')
    """

    date_from: dt.date
    date_to: dt.date
    area: str | None = None
    village: str | None = None
    supplier: str | None = None
    severity: str | None = None

    @classmethod
    def default(cls, today: dt.date) -> OfficerFilters:
        """The last twelve months, nothing else."""
        return cls(date_from=today - dt.timedelta(days=365), date_to=today)

    @classmethod
    def parse(cls, args, today: dt.date) -> OfficerFilters:
        """The filters from ``args`` (a mapping of text); raises ``request.invalid_parameter``
        naming the parameter for a date that is not one or a severity that does not exist."""
        default = cls.default(today)
        found = {}
        for name, fallback in (("from", default.date_from), ("to", default.date_to)):
            text = (args.get(name) or "").strip()
            try:
                found[name] = dt.date.fromisoformat(text) if text else fallback
            except ValueError:
                detail = Msg("is not a date (YYYY-MM-DD): {value}", value=text)
                raise _invalid(name, detail) from None
        if found["from"] > found["to"]:
            raise _invalid("from", Msg("is after the end of the period"))
        severity = args.get("severity") or None
        if severity is not None and severity not in SEVERITIES:
            raise _invalid(
                "severity", Msg("must be one of {choices}", choices=", ".join(SEVERITIES))
            )
        return cls(
            date_from=found["from"],
            date_to=found["to"],
            area=(args.get("area") or "").strip() or None,
            village=(args.get("village") or "").strip() or None,
            supplier=(args.get("supplier") or "").strip() or None,
            severity=severity,
        )

    def query(self) -> dict[str, str]:
        """The filters as a query string's parameters (the empty ones left out)."""
        out = {"from": self.date_from.isoformat(), "to": self.date_to.isoformat()}
        for name in ("area", "village", "supplier", "severity"):
            if getattr(self, name):
                out[name] = getattr(self, name)
        return out


def area_choices(session: Session, user: User) -> list[Row]:
    """``(code, name)`` of the areas of ``user``'s scope, by code: the map's area filter."""
    area_ids = sorted(area_ids_in_scope(session, user))
    return list(
        session.execute(
            select(Area.code, Area.name).where(Area.id.in_(area_ids)).order_by(Area.code)
        ).all()
    )


def officer_map_data(session: Session, user: User, filters: OfficerFilters) -> OfficerMapData:
    """The households and open alerts of ``user``'s areas that the filters keep.

    Households: those of the villages in scope (and of the area, village and supplier filtered)
    with a current visit in the period. Alerts: open (new or acknowledged) ones in scope, seen in
    the period, of the severity filtered. A handful of set-based queries whatever the size.
    Raises ``request.invalid_parameter`` for a code that names nothing.
    """
    scope = village_scope_condition(session, user, Village.id)
    if scope is None:
        return OfficerMapData(in_scope=False)
    start = dt.datetime.combine(filters.date_from, dt.time(), tzinfo=dt.UTC)
    end = dt.datetime.combine(filters.date_to + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
    where, supplier_id = _filtered(session, scope, filters)
    gps = _latest_gps(where)
    data, points = _households(session, user, where, supplier_id, gps, start, end)
    _add_alerts(session, data, points, where, supplier_id, filters, gps, start, end)
    _add_places(session, user, data, where)
    return data


def _add_places(session: Session, user: User, data: OfficerMapData, where: list) -> None:
    """Where the officer is, with no basemap: the names and points of the villages the filters
    keep (of their scope) and the boundaries of the areas of their scope."""
    data.villages = [
        [round(lat, 6), round(lon, 6), name]
        for name, lat, lon in session.execute(
            select(Village.name, Village.lat, Village.lon)
            .where(*where, Village.lat.is_not(None), Village.lon.is_not(None))
            .order_by(Village.code)
        )
    ]
    area_ids = sorted(area_ids_in_scope(session, user))
    data.areas = [
        (name, geom)
        for name, geom in session.execute(
            select(Area.name, Area.geom)
            .where(Area.id.in_(area_ids), Area.geom.is_not(None))
            .order_by(Area.code)
        )
    ]


def _filtered(session: Session, scope, filters: OfficerFilters) -> tuple[list, int | None]:
    """The conditions on the villages (``scope`` and the area and village filtered) and the
    supplier filtered (its id, or None); ``request.invalid_parameter`` for a code that names
    nothing."""
    where = [scope]
    if filters.area:
        area_id = session.scalar(select(Area.id).where(Area.code == filters.area))
        if area_id is None:
            raise _invalid("area", Msg("names no known area ({code})", code=filters.area))
        where.append(Village.area_id.in_(sorted(descendant_area_ids(session, {area_id}))))
    if filters.village:
        where.append(Village.code == filters.village)
        if session.scalar(select(Village.id).where(Village.code == filters.village)) is None:
            raise _invalid("village", Msg("names no known village ({code})", code=filters.village))
    supplier_id = None
    if filters.supplier:
        supplier_id = session.scalar(select(Supplier.id).where(Supplier.code == filters.supplier))
        if supplier_id is None:
            raise _invalid(
                "supplier", Msg("names no known supplier ({code})", code=filters.supplier)
            )
    return where, supplier_id


def _latest_gps(where: list):
    """The GPS points of the current visits of the households of the villages ``where`` keeps,
    ranked per household (``rank`` 1: the latest)."""
    # the latest current visit with a GPS point, per household (a window, not a query per row)
    gps = (
        select(
            Visit.household_id,
            Visit.lat,
            Visit.lon,
            func.row_number()
            .over(
                partition_by=Visit.household_id,
                order_by=(Visit.visited_at.desc(), Visit.id.desc()),
            )
            .label("rank"),
        )
        .where(
            Visit.current,
            # only the households of the villages in scope and filtered: the window ranks their
            # visits, not every visit of the country
            Visit.household_id.in_(
                select(Household.id).join(Village, Village.id == Household.village_id).where(*where)
            ),
            Visit.lat.is_not(None),
            Visit.lon.is_not(None),
        )
        .subquery()
    )
    return gps


def _households(
    session: Session, user: User, where: list, supplier_id, gps, start, end
) -> tuple[OfficerMapData, dict[int, tuple[float, float]]]:
    """The map's households (each at its latest GPS point, else its village's) and the points
    they were put at, by household id; the read is written to the audit log."""
    open_alerts = (
        select(Alert.household_id, func.count().label("n"))
        .where(Alert.status.in_(ACTIVE_ALERT_STATUSES), Alert.household_id.is_not(None))
        .group_by(Alert.household_id)
        .subquery()
    )
    visited = exists(
        select(Visit.id).where(
            Visit.household_id == Household.id,
            Visit.current,
            Visit.visited_at >= start,
            Visit.visited_at < end,
        )
    )
    # the latest visit that counts (an edit replaced, or its server withdrew, the others)
    last_visit = (
        select(func.max(Visit.visited_at))
        .where(Visit.household_id == Household.id, Visit.current)
        .scalar_subquery()
    )
    household_where = [*where, visited]
    if supplier_id is not None:
        household_where.append(Household.supplier_id == supplier_id)
    rows = session.execute(
        select(
            Household.code,
            Village.name,
            last_visit,
            func.coalesce(open_alerts.c.n, 0),
            gps.c.lat,
            gps.c.lon,
            Village.lat,
            Village.lon,
            Household.id,
        )
        .join(Village, Village.id == Household.village_id)
        .outerjoin(gps, and_(gps.c.household_id == Household.id, gps.c.rank == 1))
        .outerjoin(open_alerts, open_alerts.c.household_id == Household.id)
        .where(*household_where)
        .order_by(Household.code)
    ).all()
    if rows:  # households at their GPS points: a read of child-level data
        from clms.audit import record_read

        record_read(session, user, "map.households", "map", households=len(rows))
    data = OfficerMapData()
    points: dict[int, tuple[float, float]] = {}
    for code, village, last, n_alerts, glat, glon, vlat, vlon, hid in rows:
        lat, lon = (glat, glon) if glat is not None else (vlat, vlon)
        if lat is None or lon is None:
            data.without_point += 1
            continue
        points[hid] = (lat, lon)
        when = last.date().isoformat() if last is not None else None
        data.households.append([round(lat, 6), round(lon, 6), code, village, when, n_alerts])
    return data, points


def _add_alerts(
    session: Session, data: OfficerMapData, points: dict, where: list, supplier_id,
    filters: OfficerFilters, gps, start, end,
) -> None:  # fmt: skip
    """Add the open alerts the filters keep to ``data``, each at its household's point
    (``points``), else the household's latest GPS point, else its village's."""
    alert_where = [
        *where,
        Alert.status.in_(ACTIVE_ALERT_STATUSES),
        Alert.last_seen_at >= start,
        Alert.last_seen_at < end,
    ]
    if supplier_id is not None:
        alert_where.append(Alert.supplier_id == supplier_id)
    if filters.severity:
        alert_where.append(Alert.severity == filters.severity)
    alert_rows = session.execute(
        select(
            Alert.id,
            Alert.severity,
            Alert.category,
            Alert.household_id,
            Household.code,
            Village.name,
            Village.lat,
            Village.lon,
            gps.c.lat,
            gps.c.lon,
        )
        .join(Village, Village.id == Alert.village_id)
        .outerjoin(Household, Household.id == Alert.household_id)
        .outerjoin(gps, and_(gps.c.household_id == Alert.household_id, gps.c.rank == 1))
        .where(*alert_where)
        .order_by(Alert.severity_rank, Alert.id)
    ).all()
    for aid, severity, category, hid, hcode, village, vlat, vlon, glat, glon in alert_rows:
        lat, lon = points.get(hid) or ((glat, glon) if glat is not None else (vlat, vlon))
        if lat is None or lon is None:
            continue
        data.alerts.append([round(lat, 6), round(lon, 6), aid, severity, category, hcode, village])


def officer_map(session: Session, user: User, filters: OfficerFilters, **options) -> folium.Map:
    """:func:`officer_map_data` then :func:`build_officer_map` (``options`` go to the latter)."""
    return build_officer_map(officer_map_data(session, user, filters), **options)


def _invalid(parameter: str, detail) -> Problem:
    return problem("request.invalid_parameter", parameter=parameter, detail=detail)
