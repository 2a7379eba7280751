"""A withdrawn submission counts nowhere: every indicator, hotspot, export row and map point
computed after the withdrawal equals the one computed for the world built without that visit,
and a restore brings back exactly the original figures (issue 18).

The world is the KPI tests' (tests/alerts/test_kpis.py: households, children, alerts, cases,
follow-ups and services in three months). Each parameter withdraws one of its visits.
"""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import delete, select

from alerts.kpis import child_visit_rows, kpi_report
from clms.db import session_scope
from clms.facts import refresh_children
from clms.intake.withdraw import restore_submission, withdraw_submission
from clms.models import Alert, ChildVisit, Classification, Household, Submission, User, Visit
from geo.hotspots.settings import HotspotSettings
from geo.hotspots.tables import hotspot_table
from geo.maps.officer import OfficerFilters, officer_map_data
from tests.alerts.test_kpis import NOW, at, filters, world  # noqa: F401  (the world fixture)

GROUPS = ("none", "village", "area", "supplier", "tier", "monitor", "month", "quarter")


def figures(app, s) -> dict:
    """Every figure the supervisor of the whole world sees."""
    sam = s.scalar(select(User).where(User.username == "sam"))
    out = {}
    for group in GROUPS:
        report = kpi_report(s, sam, filters(group=group), now=NOW)
        out["kpi", group] = (report.overall, report.rows, report.monitors)
    out["export"] = list(child_visit_rows(s, sam, filters()))
    settings = HotspotSettings.from_config(app.config)
    for level in ("village", "area", "supplier"):
        table = hotspot_table(s, sam, level, end=dt.date(2025, 3, 31), months=12,
                              settings=settings, today=dt.date(2025, 4, 1))  # fmt: skip
        out["hotspots", level] = (table.rows, table.total)
    data = officer_map_data(
        s, sam, OfficerFilters(date_from=dt.date(2024, 10, 1), date_to=dt.date(2025, 3, 31))
    )
    out["map"] = (data.households, data.alerts, data.without_point)
    return out


def _visit(s, household: str, when: dt.datetime) -> Visit:
    return s.scalar(
        select(Visit).join(Household, Household.id == Visit.household_id)
        .where(Household.code == household, Visit.visited_at == when)
    )  # fmt: skip


@pytest.mark.parametrize(
    ("household", "when", "statuses"),
    [
        # Aya hazardous, Bema at risk: identification, hotspots, map
        ("HH-1", at(2, 15), []),
        # the visit that found Christelle out of work, after an edit
        ("HH-2", at(2, 18), []),
        # a follow-up of case H: follow-up figures
        ("HH-4", at(2, 28), []),
        # a household visit that saw no child: households covered
        ("HH-5", at(2, 10), []),
        # Fanta's alert (dismissed) and Hamed's (open) came from it alone: the open one is
        # closed as withdrawn, and neither counts in the alert figures any more
        ("HH-4", at(2, 20), ["dismissed", "withdrawn"]),
    ],
    ids=["hazardous", "after-an-edit", "follow-up", "no-child", "raised-alerts"],
)
def test_a_withdrawn_visit_counts_nowhere_and_a_restore_counts_it_again(
    app,
    world,  # noqa: F811 (the fixture)
    household,
    when,
    statuses,
):
    with app.app_context(), session_scope(app) as s:
        original = figures(app, s)
        target = _visit(s, household, when)
        assert target is not None and target.current
        submission_id = target.submission_id
        # the world built without that visit (rolled back)
        nested = s.begin_nested()
        cvs = select(ChildVisit.id).where(ChildVisit.visit_id == target.id)
        kids = s.scalars(select(ChildVisit.child_id).where(ChildVisit.visit_id == target.id)).all()
        raised = select(Classification.id).where(Classification.child_visit_id.in_(cvs))
        s.execute(delete(Alert).where(Alert.classification_id.in_(raised)))
        s.execute(delete(Classification).where(Classification.child_visit_id.in_(cvs)))
        s.execute(delete(ChildVisit).where(ChildVisit.visit_id == target.id))
        s.execute(delete(Visit).where(Visit.id == target.id))
        refresh_children(s, kids)  # the kept facts, as without that visit
        without = figures(app, s)
        nested.rollback()
        s.expire_all()
        assert without != original  # the visit mattered to some figure

        assert withdraw_submission(s, submission_id, "deleted", detail="deleted on Central")
        assert figures(app, s) == without
        closed = s.scalars(select(Alert.status).where(Alert.classification_id.in_(raised)))
        assert sorted(closed) == sorted(statuses)
        assert s.get(Submission, submission_id).withdrawn_reason == "deleted"

        assert restore_submission(s, submission_id, detail="restored on Central")
        assert figures(app, s) == original
