"""Monitor quality (:mod:`alerts.kpis`, *Monitor quality*): one row per monitor with visits
in the period. The GPS distances not stored at ingestion are measured by the database too (the
haversine in SQL).
"""

from __future__ import annotations

from sqlalchemy import and_, case, distinct, func, null, or_, select

from alerts.kpis.dimensions import (
    _Context,
    _in_window,
    _join_visit_dims,
    visit_dims,
)
from alerts.kpis.figures import _children, _latest_classifications, _medians, _round, _share
from clms.models import User, Village, Visit
from geo.countries import EARTH_RADIUS_KM

#: a visit shorter than this is a sign of poor monitoring (domain.md section 7)
SHORT_VISIT_MINUTES = 10
MONITOR_FIGURES = (
    "visits",
    "children_monitored",
    "children_identified",
    "identification_rate",
    "area_identification_rate",
    "visits_timed",
    "median_visit_minutes",
    "visits_short",
    "share_short_visits",
    "visits_with_gps",
    "visits_far",
    "share_far_gps",
)


def _monitor_quality(ctx: _Context, far_km: float) -> list[dict]:
    session = ctx.session
    windows = ctx.windows("none")
    dims = visit_dims()
    where = [Visit.current, Visit.monitor_id.is_not(None), *ctx.conditions(dims)]
    minutes = ctx.days(Visit.started_at, Visit.ended_at) * 1440.0
    timed = and_(
        Visit.started_at.is_not(None),
        Visit.ended_at.is_not(None),
        Visit.ended_at >= Visit.started_at,
    )
    with_gps = and_(
        Visit.lat.is_not(None),
        Visit.lon.is_not(None),
        or_(
            Visit.gps_distance_km.is_not(None),
            and_(Village.lat.is_not(None), Village.lon.is_not(None)),
        ),
    )
    km = func.coalesce(
        Visit.gps_distance_km, haversine_sql(Visit.lat, Visit.lon, Village.lat, Village.lon)
    )
    visits = (
        _join_visit_dims(
            select(
                Visit.monitor_id.label("k"),
                case((timed, 1), else_=0).label("timed"),
                case((and_(timed, minutes < SHORT_VISIT_MINUTES), 1), else_=0).label("short"),
                case((with_gps, 1), else_=0).label("gps"),
                case((and_(with_gps, km > far_km), 1), else_=0).label("far"),
            )
            .select_from(Visit)
            .join(windows, _in_window(Visit.visited_at, windows))
        )
        .where(*where)
        .subquery("monitor_visits")
    )
    out: dict[int, dict] = {}
    for monitor_id, n, n_timed, n_short, n_gps, n_far in session.execute(
        select(
            visits.c.k,
            func.count(),
            func.sum(visits.c.timed),
            func.sum(visits.c.short),
            func.sum(visits.c.gps),
            func.sum(visits.c.far),
        ).group_by(visits.c.k)
    ):
        out[monitor_id] = {name: 0 for name in MONITOR_FIGURES} | {
            "visits": n,
            "visits_timed": int(n_timed or 0),
            "visits_short": int(n_short or 0),
            "visits_with_gps": int(n_gps or 0),
            "visits_far": int(n_far or 0),
            "identification_rate": None,
            "area_identification_rate": None,
            "median_visit_minutes": None,
        }
    if not out:
        return []
    for key, values in _children(ctx, "monitor", windows, followups=False).items():
        if key in out:
            out[key]["children_monitored"] = values["children_monitored"]
            out[key]["children_identified"] = values["children_identified"]
    durations = _join_visit_dims(
        select(Visit.monitor_id.label("k"), minutes.label("v"))
        .select_from(Visit)
        .join(windows, _in_window(Visit.visited_at, windows))
    ).where(*where, timed)
    for key, (_n, median) in _medians(ctx, durations.subquery("visit_minutes")).items():
        out[key]["median_visit_minutes"] = _round(median, 1)
    for key, monitored, identified in _area_rates(ctx, windows):
        if key in out:
            out[key]["area_identification_rate"] = _share(identified, monitored, 4)

    names = dict(session.execute(select(User.id, User.username).where(User.id.in_(out))).all())
    rows = []
    for monitor_id, r in out.items():
        r["identification_rate"] = _share(r["children_identified"], r["children_monitored"], 4)
        r["share_short_visits"] = _share(r["visits_short"], r["visits_timed"], 4)
        r["share_far_gps"] = _share(r["visits_far"], r["visits_with_gps"], 4)
        rows.append({"key": names.get(monitor_id), "label": names.get(monitor_id), **r})
    return sorted(rows, key=lambda r: r["key"] or "")


def _area_rates(ctx: _Context, windows) -> list:
    """``(monitor id, children monitored, children identified)`` over every visit in the areas
    where each monitor visited (any monitor, any village of the area)."""
    dims = visit_dims()
    monitor_areas = (
        _join_visit_dims(
            select(Visit.monitor_id.label("monitor_id"), Village.area_id.label("area_id"))
            .select_from(Visit)
            .join(windows, _in_window(Visit.visited_at, windows))
        )
        .where(Visit.current, Visit.monitor_id.is_not(None), *ctx.conditions(dims))
        .distinct()
        .subquery("monitor_areas")
    )
    # one row per area and child: its latest fact in the area, which says whether any of the
    # child's facts there was child labour (the kept facts' pointers, no GROUP BY of every row)
    latest = _latest_classifications(ctx, "area", windows, monitor=False, village=False)
    area_children = (
        select(latest.c.k.label("area_id"), latest.c.child_id, latest.c.identified)
        .cte("area_children")
        .prefix_with("MATERIALIZED")  # once, not once per monitor and area
    )
    return ctx.session.execute(
        select(
            monitor_areas.c.monitor_id,
            func.count(distinct(area_children.c.child_id)),
            func.count(
                distinct(
                    case(
                        (area_children.c.identified == 1, area_children.c.child_id),
                        else_=null(),
                    )
                )
            ),
        )
        .select_from(monitor_areas)
        .join(area_children, area_children.c.area_id == monitor_areas.c.area_id)
        .group_by(monitor_areas.c.monitor_id)
    ).all()


def haversine_sql(lat1, lon1, lat2, lon2):
    """:func:`geo.countries.haversine_km` as an SQL expression of four columns (degrees): the
    same formula on both databases (SQLite's math functions, PostgreSQL's own), so that the far
    visits are counted by the database instead of over every visit row in Python."""
    p1, p2 = func.radians(lat1), func.radians(lat2)
    half_dp, half_dl = (p2 - p1) / 2.0, func.radians(lon2 - lon1) / 2.0
    a = func.sin(half_dp) * func.sin(half_dp) + func.cos(p1) * func.cos(p2) * func.sin(
        half_dl
    ) * func.sin(half_dl)
    root = func.sqrt(a)
    return 2.0 * EARTH_RADIUS_KM * func.asin(case((root > 1.0, 1.0), else_=root))
