"""The KPI queries the kept facts replaced (issue 19), as they were before, kept as the oracle of
tests/alerts/test_kpi_facts_equal.py: only the functions that changed; :func:`former` puts them
back into the live modules for the length of a block, so that the rest of the report (every other
figure, the rows, the labels) is the one code both sides share. The live children's figures now
carry the follow-up outcomes in the same statement; the former ones come from their own query
(:func:`_followup_outcomes`, as before) into the same figures.
"""

from __future__ import annotations

from contextlib import contextmanager

from sqlalchemy import and_, case, distinct, func, null, select

import alerts.kpis.figures as live_figures
import alerts.kpis.monitors as live_monitors
from alerts.kpis.dimensions import (
    _Context,
    _in_window,
    _join_visit_dims,
    _key,
    classified_in_windows,
    visit_dims,
)
from alerts.kpis.figures import CHILD_LABOUR
from clms.models import ChildVisit, Classification, Village, Visit


@contextmanager
def former():
    """The live KPI modules computing as before issue 19 (restored at the block's end)."""
    swapped = [
        (live_figures, "_latest_classifications", _latest_classifications),
        (live_figures, "_children", _children_then_followups(live_figures._children)),
        (live_monitors, "_area_rates", _area_rates),
    ]
    kept = [(module, name, getattr(module, name)) for module, name, _ in swapped]
    try:
        for module, name, function in swapped:
            setattr(module, name, function)
        yield
    finally:
        for module, name, function in kept:
            setattr(module, name, function)


def _latest_classifications(ctx: _Context, group: str, windows, *, monitor=True, village=True):
    """A subquery: for each group key and child, the child's latest classification in the
    window (``category``, ``sdg``), whether any was child labour (``identified``) and the
    window's end (``e``)."""
    dims = visit_dims()
    key = _key(group, dims, windows)
    partition = [ChildVisit.child_id] if group == "none" else [key, ChildVisit.child_id]
    in_labour = case((Classification.category.in_(CHILD_LABOUR), 1), else_=0)
    ranked = (
        classified_in_windows(
            select(
                key.label("k"),
                ChildVisit.child_id.label("child_id"),
                Classification.category.label("category"),
                Classification.sdg_871.label("sdg"),
                windows.c.e.label("e"),
                func.max(in_labour).over(partition_by=partition).label("identified"),
                func.row_number()
                .over(
                    partition_by=partition,
                    order_by=(Visit.visited_at.desc(), Visit.id.desc(), ChildVisit.id.desc()),
                )
                .label("rn"),
            ),
            windows,
        )
        .where(*ctx.conditions(dims, monitor=monitor, village=village))
        .subquery("ranked_classifications")
    )
    return (
        select(
            ranked.c.k,
            ranked.c.child_id,
            ranked.c.category,
            ranked.c.sdg,
            ranked.c.e,
            ranked.c.identified,
        )  # fmt: skip
        .where(ranked.c.rn == 1)
        .subquery("latest_classifications")
    )


def _children_then_followups(live_children):
    """The live children's figures without their follow-up outcomes, and those as before."""

    def _children(ctx: _Context, group: str, windows, *, followups: bool = True) -> dict:
        out = live_children(ctx, group, windows, followups=False)
        if followups:
            for values in out.values():
                values.update(identified_followed_up=0, identified_no_longer_in_child_labour=0)
            for key, (followed, free) in _followup_outcomes(ctx, group, windows).items():
                out.setdefault(key, {}).update(
                    identified_followed_up=followed, identified_no_longer_in_child_labour=free
                )
        return out

    return _children


def _followup_outcomes(ctx: _Context, group: str, windows) -> dict:
    """``{key: (identified children followed up, of them not in child labour at the latest)}``."""
    latest = _latest_classifications(ctx, group, windows)
    followups = (
        select(
            ChildVisit.child_id.label("child_id"),
            Visit.visited_at.label("at"),
            Visit.id.label("visit_id"),
            Classification.category.label("category"),
        )
        .select_from(Classification)
        .join(ChildVisit, ChildVisit.id == Classification.child_visit_id)
        .join(Visit, Visit.id == ChildVisit.visit_id)
        .where(Classification.current, Visit.current, Visit.kind == "followup")
        .subquery("classified_followups")
    )
    partition = [latest.c.child_id] if group == "none" else [latest.c.k, latest.c.child_id]
    ranked = (
        select(
            latest.c.k,
            followups.c.category,
            func.row_number()
            .over(
                partition_by=partition,
                order_by=(followups.c.at.desc(), followups.c.visit_id.desc()),
            )
            .label("rn"),
        )
        .select_from(latest)
        .join(
            followups,
            and_(followups.c.child_id == latest.c.child_id, followups.c.at < latest.c.e),
        )
        .where(latest.c.identified == 1)
        .subquery("latest_followups")
    )
    out = {}
    for key, followed, free in ctx.session.execute(
        select(
            ranked.c.k,
            func.count(),
            func.sum(case((ranked.c.category.in_(CHILD_LABOUR), 0), else_=1)),
        )
        .where(ranked.c.rn == 1)
        .group_by(ranked.c.k)
    ):
        out[key] = (followed, int(free or 0))
    return out


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
    # one row per area and child (GROUP BY): the database reads the visits once and joins the
    # monitors' areas to the result; without it SQLite read every classification once per
    # monitor-area pair (bench/cases.py: 6 s of the KPI page at 100,000 child visits)
    area_children = (
        classified_in_windows(
            select(
                Village.area_id.label("area_id"),
                ChildVisit.child_id.label("child_id"),
                func.max(case((Classification.category.in_(CHILD_LABOUR), 1), else_=0)).label(
                    "identified"
                ),
            ),
            windows,
        )
        .where(*ctx.conditions(dims, monitor=False, village=False))
        .group_by(Village.area_id, ChildVisit.child_id)
        .subquery("area_children")
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
