"""The KPIs (alerts.kpis): every figure of a small known world, each filter and grouping, scope,
the page, the JSON API, the streamed CSV and XLSX exports, the audit log and the snapshot.

The world, January to March 2025 (the period of most tests: 2025-01-01 to 2025-03-03):

======= =========== ======= ====== ===========================================================
visit   day         monitor village what it found (category, SDG 8.7.1)
======= =========== ======= ====== ===========================================================
v1      01-10       mo      V1 H1  A child_labour sdg; B none              30 min, GPS at V1
v2      02-15       mo      V1 H1  A hazardous; B at_risk                   8 min, GPS 10 km
v3      01-20       mo      V2 H2  C none (a hazardous classification replaced)   20 min
v4      02-05       mia     V3 H3  D worst_form; E none                    40 min, GPS 1 km
v5      03-01       mia     V3 H3  D none; E none                           5 min
v6      02-20       mia     V4 H4  F child_labour sdg; H hazardous
v7      2024-12-15  mo      V1 H1  G hazardous (before the period)
v8      02-10       mo      V1 H5  a household with no child
v9      02-12       mo      V2 H2  C worst_form, replaced by an edit (not current)
v10     02-18       mia     V2 H2  C none
f1      02-25       mo      V1     follow-up of case A: A none, services school_kit_costs, 15 min
f2      03-02       mia     V3     follow-up of case D: D hazardous sdg, services none, GPS 7.8 km
f3      02-28       mia     V4     follow-up of case H: H at_risk, services none, 12 min
======= =========== ======= ====== ===========================================================

Households: H1 (V1, T2-COOP), H2 (V2, T1-EXP), H3 (V3, T3-GRP), H4 (V4, no supplier),
H5 (V1, T2-COOP). Cases: A (V1, implementation, from alert aA), B (V1, action plan, opened
2024-10-01), C (V2, opened 01-25, transferred 01-28), D (V3, opened 02-06 from alert aD, closed
03-03: 25 days), F (V4, closed in 2024), H (V4, opened 02-21). Services delivered: C birth
certificate 02-20, B psychosocial support 03-01, F health care 2024-11-15. Referrals done: D
service provided 02-28; H declined 02-27 and service provided 03-10 (after the period).
Alerts: aA (V1, acknowledged after 1 day), aD (V3, case opened after 0.5 day), aF (V4,
dismissed after 3.5 days), aH (V4, new, overdue), aR (V2, reported, acknowledged after 2 days,
first visit overdue), aOld (V1, raised 2024-12-20, acknowledged, not overdue).
"""

from __future__ import annotations

import ast
import csv
import dataclasses
import datetime as dt
import io
import json
import logging
import re
import zipfile

import openpyxl
import pytest
from sqlalchemy import event, select, text, update

from alerts.kpis import (
    CHILD_VISIT_COLUMNS,
    KpiFilters,
    child_visit_rows,
    compute_everything,
    haversine_km,
    kpi_report,
    parse_filters,
    take_kpi_snapshot,
    time_windows,
)
from clms.charts import Bar, Series, StackedBar, bar_chart, stacked_bar_chart
from clms.db import session_scope
from clms.errors import Problem
from clms.exports import csv_chunks, neutralise, xlsx_chunks
from clms.jobs.registry import JobContext, run_job
from clms.models import (
    CASE_STATES,
    Area,
    Case,
    KpiSnapshot,
    PlannedService,
    Referral,
    ServiceProvider,
    ServiceType,
    Supplier,
    User,
    Village,
)
from tests import builders
from tests.conftest import PASSWORD, ROOT

NOW = dt.datetime(2025, 3, 3, 9, 0, tzinfo=dt.UTC)
PERIOD = {"from": "2025-01-01", "to": "2025-03-03"}
NAMES = ("Aya Traoré", "Bema Traoré", "Christelle Kouassi", "Drissa Koné", "Esther Koné",
         "Fanta Bamba", "Hamed Bamba", "Gaoussou Traoré", "Issa Traoré")  # fmt: skip
FORMULA_HAZARD = '=HYPERLINK("http://evil.example")'


def at(month: int, day: int, hour: int = 9, year: int = 2025) -> dt.datetime:
    return dt.datetime(year, month, day, hour, tzinfo=dt.UTC)


def filters(**kwargs) -> KpiFilters:
    return KpiFilters(dt.date(2025, 1, 1), dt.date(2025, 3, 3), **kwargs)


# --- the world -----------------------------------------------------------------------------------


class World:
    """Writes the rows of the known world (see the module documentation)."""

    def __init__(self, s):
        self.s = s

    def id_of(self, model, code):
        return builders.id_of(self.s, model, code)

    def household(self, code, village, supplier):
        return builders.household(self.s, village, code=code, supplier=supplier,
                                  head_name="Issa Traoré")  # fmt: skip

    def child(self, household, name, sex):
        return builders.child(self.s, household, name, sex=sex)

    def visit(self, when, monitor, village, household, children, *, kind="household", case=None,
              current=True, supplier=None, minutes=None, gps=None, services=None):  # fmt: skip
        v = builders.visit(
            self.s, household, when, village=village, supplier=supplier, monitor=monitor,
            kind=kind, case=case, current=current, started_at=when if minutes is not None else None,
            ended_at=when + dt.timedelta(minutes=minutes) if minutes is not None else None,
            lat=gps[0] if gps else None, lon=gps[1] if gps else None,
            services_received=services or [], notes="Free text that must never be exported",
        )  # fmt: skip
        classifications = {}
        for position, (child, category, sdg, *replaced) in enumerate(children, 1):
            cv = builders.child_visit(
                self.s, v, child, position=position, age=11, sex=child.sex,
                attends_school=category in ("none", "at_risk"), work_hours_7d=20,
                chore_hours_7d=5, hazards=[FORMULA_HAZARD] if child.name == "Fanta Bamba"
                else ["agrochemicals", "sharp_tools"],
            )  # fmt: skip
            if replaced:  # an earlier classification of the same visit, replaced
                builders.classification(self.s, cv, replaced[0], sdg_871=False, current=False,
                                        rule_set_version="old")  # fmt: skip
            c = builders.classification(
                self.s, cv, category, sdg_871=sdg,
                reasons=[{"rule": f"RULE_{category.upper()}", "facts": {"age": 11}},
                         {"rule": "RISK_INJURY", "facts": {}}],
            )  # fmt: skip
            classifications[child.id] = c.id
        return classifications

    def case(self, number, child, village, supplier, monitor, state, opened, *, ended=None,
             alert=None):  # fmt: skip
        c = Case(
            case_number=number, child_id=child.id, village_id=self.id_of(Village, village),
            supplier_id=self.id_of(Supplier, supplier), monitor_id=self.id_of(User, monitor),
            state=state, opened_at=opened, state_changed_at=ended or opened, updated_at=opened,
            closed_at=ended if state == "closed" else None, alert_id=alert.id if alert else None,
        )  # fmt: skip
        self.s.add(c)
        self.s.flush()
        return c

    def alert(self, child, village, supplier, category, created, *, classification=None,
              **fields):  # fmt: skip
        return builders.alert(
            self.s, child, village=village, supplier=supplier, category=category,
            severity="high", created_at=created, reasons=[], classification_id=classification,
            **fields,
        )  # fmt: skip


@pytest.fixture
def world(app, places, make_user):
    """The known world and its people: olga (officer CI-D1), otto (officer CI-D2), sam
    (supervisor CI-R1: everything), ada (admin, no scope), adam (admin given CI-D1), kofi
    (officer of an area with no data), bea (brand), mo and mia (monitors), pat (provider)."""
    with session_scope(app) as s:
        ghana = Area(code="GH-R1", name="Western North", level="region", country_code="GHA")
        s.add(ghana)
        s.flush()
        s.add(Village(code="GV1", name="Sefwi", area_id=ghana.id, lat=6.2, lon=-2.5))
        s.add(ServiceProvider(code="P1", name="Soubré social services", kind="social_services"))
        s.add(ServiceType(code="school_kit_costs", name_en="School kit and school costs",
                          name_fr="Kit scolaire et frais de scolarité"))  # fmt: skip
        s.add(ServiceType(code="birth_certificate", name_en="Birth certificate",
                          name_fr="Acte de naissance"))  # fmt: skip
    make_user("olga", "officer", areas=["CI-D1"])
    make_user("otto", "officer", areas=["CI-D2"])
    make_user("sam", "supervisor", areas=["CI-R1"])
    make_user("kofi", "officer", areas=["GH-R1"])
    make_user("ada", "admin")
    make_user("adam", "admin")
    make_user("bea", "brand", brand="BRAND-A")
    make_user("mo", "monitor", areas=["CI-D1"])
    make_user("mia", "monitor", areas=["CI-D2"])
    make_user("pat", "provider", provider="P1")
    with session_scope(app) as s:
        from clms.models import UserScope

        adam = s.scalar(select(User).where(User.username == "adam"))
        s.add(UserScope(user_id=adam.id, area_id=s.scalar(select(Area.id).where(
            Area.code == "CI-D1"))))  # fmt: skip
        w = World(s)
        h1 = w.household("HH-1", "V1", "T2-COOP")
        h2 = w.household("HH-2", "V2", "T1-EXP")
        h3 = w.household("HH-3", "V3", "T3-GRP")
        h4 = w.household("HH-4", "V4", None)
        h5 = w.household("HH-5", "V1", "T2-COOP")
        a, b = w.child(h1, "Aya Traoré", "female"), w.child(h1, "Bema Traoré", "male")
        g = w.child(h1, "Gaoussou Traoré", "male")
        c = w.child(h2, "Christelle Kouassi", "female")
        d, e = w.child(h3, "Drissa Koné", "male"), w.child(h3, "Esther Koné", "female")
        f, h = w.child(h4, "Fanta Bamba", "female"), w.child(h4, "Hamed Bamba", "male")

        v1 = w.visit(at(1, 10), "mo", "V1", h1, [(a, "child_labour", True), (b, "none", False)],
                     supplier="T2-COOP", minutes=30, gps=(5.78, -6.59))  # fmt: skip
        w.visit(at(2, 15), "mo", "V1", h1, [(a, "hazardous", False), (b, "at_risk", False)],
                supplier="T2-COOP", minutes=8, gps=(5.87, -6.59))  # fmt: skip
        w.visit(at(1, 20), "mo", "V2", h2, [(c, "none", False, "hazardous")], minutes=20)
        v4 = w.visit(at(2, 5), "mia", "V3", h3, [(d, "worst_form", False), (e, "none", False)],
                     supplier="T3-GRP", minutes=40, gps=(5.559, -6.90))  # fmt: skip
        w.visit(at(3, 1), "mia", "V3", h3, [(d, "none", False), (e, "none", False)],
                supplier="T3-GRP", minutes=5)  # fmt: skip
        v6 = w.visit(at(2, 20), "mia", "V4", h4, [(f, "child_labour", True),
                                                  (h, "hazardous", False)])  # fmt: skip
        w.visit(at(12, 15, year=2024), "mo", "V1", h1, [(g, "hazardous", True)],
                supplier="T2-COOP")  # fmt: skip
        w.visit(at(2, 10), "mo", "V1", h5, [])
        w.visit(at(2, 12), "mo", "V2", h2, [(c, "worst_form", True)], current=False)
        w.visit(at(2, 18), "mia", "V2", h2, [(c, "none", False)])

        a_alert = w.alert(a, "V1", "T2-COOP", "child_labour", at(1, 10, 10),
                          classification=v1[a.id], status="case_opened",
                          acknowledged_at=at(1, 11, 10))  # fmt: skip
        d_alert = w.alert(d, "V3", "T3-GRP", "worst_form", at(2, 5, 12),
                          classification=v4[d.id], status="case_opened")  # fmt: skip
        w.alert(f, "V4", None, "child_labour", at(2, 20, 12), classification=v6[f.id],
                status="dismissed", dismissed_at=at(2, 24, 0), dismissed_reason="test")  # fmt: skip
        w.alert(h, "V4", None, "hazardous", at(2, 20, 12), classification=v6[h.id])
        w.alert(None, "V2", None, "child_labour", at(2, 1, 0), status="acknowledged",
                acknowledged_at=at(2, 3, 0))  # fmt: skip
        w.alert(b, "V1", "T2-COOP", "at_risk", at(12, 20, year=2024), status="acknowledged",
                acknowledged_at=at(12, 21, year=2024))  # fmt: skip

        case_a = w.case("CASE-A", a, "V1", "T2-COOP", "mo", "implementation", at(2, 16),
                        alert=a_alert)  # fmt: skip
        case_b = w.case("CASE-B", b, "V1", "T2-COOP", "mo", "action_plan", at(10, 1, year=2024))
        case_c = w.case("CASE-C", c, "V2", "T1-EXP", "mo", "transferred", at(1, 25),
                        ended=at(1, 28))  # fmt: skip
        case_d = w.case("CASE-D", d, "V3", "T3-GRP", "mia", "closed", at(2, 6, 0),
                        ended=at(3, 3, 0), alert=d_alert)  # fmt: skip
        case_f = w.case("CASE-F", f, "V4", None, "mia", "closed", at(11, 1, year=2024),
                        ended=at(12, 1, year=2024))  # fmt: skip
        case_h = w.case("CASE-H", h, "V4", None, "mia", "implementation", at(2, 21))

        w.visit(at(2, 25), "mo", "V1", h1, [(a, "none", False)], kind="followup", case=case_a,
                minutes=15, gps=(5.781, -6.591), services=["school_kit_costs"])  # fmt: skip
        w.visit(at(3, 2), "mia", "V3", h3, [(d, "hazardous", True)], kind="followup",
                case=case_d, gps=(5.62, -6.90), services=["none"])  # fmt: skip
        w.visit(at(2, 28), "mia", "V4", h4, [(h, "at_risk", False)], kind="followup",
                case=case_h, minutes=12, services=["none"])  # fmt: skip

        provider = w.id_of(ServiceProvider, "P1")
        for case_, code, status, delivered in [
            (case_a, "school_kit_costs", "planned", None),
            (case_c, "birth_certificate", "delivered", at(2, 20)),
            (case_f, "health_care", "delivered", at(11, 15, year=2024)),
            (case_b, "psychosocial_support", "delivered", at(3, 1)),
        ]:
            s.add(PlannedService(case_id=case_.id, service_code=code, provider_id=provider,
                                 due_on=dt.date(2025, 4, 1), status=status,
                                 delivered_at=delivered))  # fmt: skip
        for case_, code, outcome, done in [
            (case_d, "psychosocial_support", "service_provided", at(2, 28)),
            (case_h, "legal_aid", "declined_by_child_or_family", at(2, 27)),
            (case_h, "school_kit_costs", "service_provided", at(3, 10)),
        ]:
            s.add(Referral(case_id=case_.id, provider_id=provider, service_code=code,
                           status="done", outcome=outcome, override_reason="test",
                           respond_by=done, done_at=done))  # fmt: skip
        s.flush()
        uids = {child.name: child.child_uid for child in (a, b, c, d, e, f, g, h)}
    return {"uids": uids}


def user(s, username: str) -> User:
    return s.scalar(select(User).where(User.username == username))


def report_of(app, username: str, f: KpiFilters | None = None, now=NOW):
    with session_scope(app) as s:
        return kpi_report(s, user(s, username), f or filters(), now=now)


def pick(row: dict, *names) -> dict:
    return {n: row[n] for n in names}


def row_of(report, key) -> dict:
    rows = {r["key"]: r for r in report.rows}
    return rows[key]


# --- every figure, overall -----------------------------------------------------------------------

OVERALL = {
    "key": None,
    "label": "",
    "households_covered": 5,  # H1, H2, H3, H4, H5 (household visits only)
    "children_monitored": 7,  # A B C D E F H; G only before the period
    "children_identified": 4,  # A D F H (C's worst form was replaced by an edit)
    "identification_rate": 0.5714,
    "children_in_child_labour": 2,  # latest: D hazardous (f2), F child labour
    "by_category": {"worst_form": 0, "hazardous": 1, "child_labour": 1, "at_risk": 2, "none": 3},
    "sdg_871": 2,  # latest flagged: D (f2), F; A's flag was at an earlier visit
    "identified_remediated": 3,  # A (follow-up reported), D (referral), F (service in 2024)
    "pct_identified_remediated": 75.0,
    "identified_followed_up": 3,  # A, D, H
    "identified_no_longer_in_child_labour": 2,  # A (none), H (at risk); D hazardous
    "pct_identified_no_longer_in_child_labour": 66.7,
    "alerts_acted_on": 4,  # 0.5 (case), 1 (ack), 2 (ack), 3.5 (dismissed); aH not yet
    "median_days_alert_to_first_action": 1.5,
    "alerts_open": 3,  # aH, aR, aOld
    "alerts_overdue": 2,  # aH (acknowledgement), aR (first visit)
    "cases_closed": 1,  # D; F closed in 2024
    "median_days_case_open_to_close": 25.0,
    "followups": 3,
    "cases_open_in_period": 5,  # A B C D H
    "followups_per_case": 0.6,
    "cases_by_state": {s: 0 for s in CASE_STATES}
    | {"implementation": 2, "action_plan": 1, "closed": 2, "transferred": 1},
    "services_delivered": 2,
    "services_delivered_by_type": {"birth_certificate": 1, "psychosocial_support": 1},
}
OLGA = OVERALL | {
    "households_covered": 3,
    "children_monitored": 3,
    "children_identified": 1,
    "identification_rate": 0.3333,
    "children_in_child_labour": 0,
    "by_category": {"worst_form": 0, "hazardous": 0, "child_labour": 0, "at_risk": 1, "none": 2},
    "sdg_871": 0,
    "identified_remediated": 1,
    "pct_identified_remediated": 100.0,
    "identified_followed_up": 1,
    "identified_no_longer_in_child_labour": 1,
    "pct_identified_no_longer_in_child_labour": 100.0,
    "alerts_acted_on": 2,
    "median_days_alert_to_first_action": 1.5,
    "alerts_open": 2,
    "alerts_overdue": 1,
    "cases_closed": 0,
    "median_days_case_open_to_close": None,
    "followups": 1,
    "cases_open_in_period": 3,
    "followups_per_case": 0.33,
    "cases_by_state": {s: 0 for s in CASE_STATES}
    | {"implementation": 1, "action_plan": 1, "transferred": 1},
}
MONITORS = [
    {
        "key": "mia", "label": "mia", "visits": 6, "children_monitored": 5,
        "children_identified": 3, "identification_rate": 0.6,
        "area_identification_rate": 0.5714,  # D1 and D2: every child
        "visits_timed": 3, "median_visit_minutes": 12.0, "visits_short": 1,
        "share_short_visits": 0.3333, "visits_with_gps": 2, "visits_far": 1,
        "share_far_gps": 0.5,
    },
    {
        "key": "mo", "label": "mo", "visits": 5, "children_monitored": 3,
        "children_identified": 1, "identification_rate": 0.3333,
        "area_identification_rate": 0.3333, "visits_timed": 4, "median_visit_minutes": 17.5,
        "visits_short": 1, "share_short_visits": 0.25, "visits_with_gps": 3, "visits_far": 1,
        "share_far_gps": 0.3333,
    },
]  # fmt: skip


def test_every_figure_overall(app, world):
    report = report_of(app, "sam")
    assert report.overall == OVERALL
    assert report.rows == [] and report.in_scope
    assert report.monitors == MONITORS


def test_every_figure_of_an_officer_of_one_department(app, world):
    report = report_of(app, "olga")
    assert report.overall == OLGA
    assert report.monitors == [
        {"key": "mia", "label": "mia", "visits": 1, "children_monitored": 1,
         "children_identified": 0, "identification_rate": 0.0,
         "area_identification_rate": 0.3333, "visits_timed": 0, "median_visit_minutes": None,
         "visits_short": 0, "share_short_visits": None, "visits_with_gps": 0, "visits_far": 0,
         "share_far_gps": None},
        MONITORS[1],
    ]  # fmt: skip
    # an administrator given the same department sees the same
    assert report_of(app, "adam").overall == OLGA


def test_scope_other_areas_and_no_scope_see_none_of_it(app, world):
    empty = report_of(app, "kofi")
    assert empty.overall["children_monitored"] == 0 and empty.overall["households_covered"] == 0
    assert empty.overall["alerts_open"] == 0 and empty.monitors == []
    assert empty.overall["cases_by_state"] == {s: 0 for s in CASE_STATES}
    # a village of someone else's area filters to nothing rather than failing
    assert report_of(app, "kofi", filters(village="V1", group="village")).rows == []
    otto = report_of(app, "otto", filters(group="village"))
    assert [r["key"] for r in otto.rows] == ["V3", "V4"]
    assert otto.overall["children_monitored"] == 4 and otto.overall["alerts_open"] == 1
    # an administrator without a scope sees the whole country's figures (issue 16)
    national = report_of(app, "ada")
    assert national.in_scope and national.overall == report_of(app, "sam").overall
    assert national.overall["children_monitored"] > otto.overall["children_monitored"]
    for role in ("bea", "mo", "pat"):  # whatever calls the operation, they get nothing
        assert report_of(app, role).overall["households_covered"] == 0


# --- groupings -----------------------------------------------------------------------------------

BY_VILLAGE = {
    "V1": dict(households_covered=2, children_monitored=2, children_identified=1,
               identification_rate=0.5, sdg_871=0, pct_identified_remediated=100.0,
               identified_followed_up=1, identified_no_longer_in_child_labour=1,
               alerts_acted_on=1, median_days_alert_to_first_action=1.0, alerts_open=1,
               alerts_overdue=0, cases_closed=0, cases_open_in_period=2, followups=1,
               followups_per_case=0.5, services_delivered=1),
    "V2": dict(households_covered=1, children_monitored=1, children_identified=0,
               identification_rate=0.0, sdg_871=0, pct_identified_remediated=None,
               identified_followed_up=0, identified_no_longer_in_child_labour=0,
               alerts_acted_on=1, median_days_alert_to_first_action=2.0, alerts_open=1,
               alerts_overdue=1, cases_closed=0, cases_open_in_period=1, followups=0,
               followups_per_case=0.0, services_delivered=1),
    "V3": dict(households_covered=1, children_monitored=2, children_identified=1,
               identification_rate=0.5, sdg_871=1, pct_identified_remediated=100.0,
               identified_followed_up=1, identified_no_longer_in_child_labour=0,
               alerts_acted_on=1, median_days_alert_to_first_action=0.5, alerts_open=0,
               alerts_overdue=0, cases_closed=1, cases_open_in_period=1, followups=1,
               followups_per_case=1.0, services_delivered=0),
    "V4": dict(households_covered=1, children_monitored=2, children_identified=2,
               identification_rate=1.0, sdg_871=1, pct_identified_remediated=50.0,
               identified_followed_up=1, identified_no_longer_in_child_labour=1,
               alerts_acted_on=1, median_days_alert_to_first_action=3.5, alerts_open=1,
               alerts_overdue=1, cases_closed=0, cases_open_in_period=1, followups=1,
               followups_per_case=1.0, services_delivered=0),
}  # fmt: skip


def test_group_by_village(app, world):
    report = report_of(app, "sam", filters(group="village"))
    assert report.overall == OVERALL  # the overall row does not change with the grouping
    assert [(r["key"], r["label"]) for r in report.rows] == [
        ("V1", "Gnamagui"), ("V2", "Lobakuya"), ("V3", "Oupoyo"), ("V4", "Zogbodoua"),
    ]  # fmt: skip
    for key, expected in BY_VILLAGE.items():
        row = row_of(report, key)
        assert pick(row, *expected) == expected, key
    assert row_of(report, "V1")["by_category"] == {
        "worst_form": 0, "hazardous": 0, "child_labour": 0, "at_risk": 1, "none": 1}  # fmt: skip
    assert row_of(report, "V3")["median_days_case_open_to_close"] == 25.0
    assert row_of(report, "V4")["cases_by_state"]["closed"] == 1  # F's case, closed in 2024
    assert row_of(report, "V1")["services_delivered_by_type"] == {"psychosocial_support": 1}
    assert row_of(report, "V2")["cases_by_state"]["transferred"] == 1


def test_group_by_area_supplier_tier_monitor(app, world):
    area = report_of(app, "sam", filters(group="area"))
    assert [r["key"] for r in area.rows] == ["CI-D1", "CI-D2"]
    d1, d2 = area.rows
    assert pick(d1, "households_covered", "children_monitored", "children_identified") == {
        "households_covered": 3, "children_monitored": 3, "children_identified": 1}  # fmt: skip
    assert pick(d2, "children_monitored", "children_identified", "identification_rate") == {
        "children_monitored": 4, "children_identified": 3, "identification_rate": 0.75}  # fmt: skip
    assert d1["median_days_alert_to_first_action"] == 1.5  # aA 1, aR 2
    assert d2["median_days_alert_to_first_action"] == 2.0  # aD 0.5, aF 3.5

    supplier = report_of(app, "sam", filters(group="supplier"))
    assert [r["key"] for r in supplier.rows] == ["T1-EXP", "T2-COOP", "T3-GRP", None]
    t1, t2, t3, unknown = supplier.rows
    # H2's visits name no supplier: the household's (T1-EXP) counts
    t1_figures = ("households_covered", "children_monitored", "cases_open_in_period",
                  "services_delivered")  # fmt: skip
    assert [t1[n] for n in t1_figures] == [1, 1, 1, 1]
    t2_figures = ("households_covered", "children_monitored", "followups", "alerts_open")
    assert [t2[n] for n in t2_figures] == [2, 2, 1, 1]
    assert t3["median_days_alert_to_first_action"] == 0.5
    assert pick(unknown, "children_monitored", "children_identified", "alerts_acted_on",
                "median_days_alert_to_first_action", "alerts_open") == {
        "children_monitored": 2, "children_identified": 2, "alerts_acted_on": 2,
        "median_days_alert_to_first_action": 2.75, "alerts_open": 2}  # fmt: skip
    assert unknown["label"] == ""

    tier = report_of(app, "sam", filters(group="tier"))
    assert [(r["key"], r["label"]) for r in tier.rows] == [
        (1, "Tier 1"), (2, "Tier 2"), (3, "Tier 3"), (None, "")]  # fmt: skip
    assert [r["children_monitored"] for r in tier.rows] == [1, 2, 2, 2]

    monitor = report_of(app, "sam", filters(group="monitor"))
    assert [r["key"] for r in monitor.rows] == ["mia", "mo", None]
    mia, mo, nobody = monitor.rows
    assert pick(mia, "households_covered", "children_monitored", "children_identified",
                "by_category", "sdg_871", "pct_identified_remediated",
                "identified_followed_up", "identified_no_longer_in_child_labour",
                "median_days_alert_to_first_action", "alerts_open", "cases_open_in_period",
                "followups", "cases_closed") == {
        "households_covered": 3, "children_monitored": 5, "children_identified": 3,
        "by_category": {"worst_form": 0, "hazardous": 1, "child_labour": 1, "at_risk": 1,
                        "none": 2},
        "sdg_871": 2, "pct_identified_remediated": 66.7, "identified_followed_up": 2,
        "identified_no_longer_in_child_labour": 1, "median_days_alert_to_first_action": 2.0,
        "alerts_open": 1, "cases_open_in_period": 2, "followups": 2, "cases_closed": 1,
    }  # fmt: skip
    assert pick(mo, "children_monitored", "median_days_alert_to_first_action", "alerts_open",
                "cases_open_in_period", "services_delivered") == {
        "children_monitored": 3, "median_days_alert_to_first_action": 1.0, "alerts_open": 0,
        "cases_open_in_period": 3, "services_delivered": 2}  # fmt: skip
    # the reported alert and the old one have no monitor
    assert pick(nobody, "children_monitored", "alerts_acted_on", "alerts_open",
                "alerts_overdue") == {"children_monitored": 0, "alerts_acted_on": 1,
                                      "alerts_open": 2, "alerts_overdue": 1}  # fmt: skip


def test_group_by_month_and_quarter(app, world):
    report = report_of(app, "sam", filters(group="month"))
    assert [r["key"] for r in report.rows] == ["2025-01", "2025-02", "2025-03"]
    jan, feb, mar = report.rows
    assert pick(jan, "households_covered", "children_monitored", "children_identified",
                "by_category", "sdg_871", "pct_identified_remediated", "identified_followed_up",
                "pct_identified_no_longer_in_child_labour", "median_days_alert_to_first_action",
                "cases_open_in_period", "followups", "followups_per_case",
                "services_delivered") == {
        "households_covered": 2, "children_monitored": 3, "children_identified": 1,
        "by_category": {"worst_form": 0, "hazardous": 0, "child_labour": 1, "at_risk": 0,
                        "none": 2},
        "sdg_871": 1,
        # A's first service came in February: not remediated by the end of January
        "pct_identified_remediated": 0.0, "identified_followed_up": 0,
        "pct_identified_no_longer_in_child_labour": None,
        "median_days_alert_to_first_action": 1.0, "cases_open_in_period": 2,  # B, C
        "followups": 0, "followups_per_case": 0.0, "services_delivered": 0,
    }  # fmt: skip
    assert pick(feb, "households_covered", "children_monitored", "children_identified",
                "by_category", "pct_identified_remediated", "identified_followed_up",
                "identified_no_longer_in_child_labour", "median_days_alert_to_first_action",
                "alerts_acted_on", "cases_open_in_period", "followups",
                "services_delivered_by_type") == {
        "households_covered": 5, "children_monitored": 7, "children_identified": 4,
        "by_category": {"worst_form": 1, "hazardous": 0, "child_labour": 1, "at_risk": 2,
                        "none": 3},
        "pct_identified_remediated": 75.0,
        # D's follow-up is in March: by the end of February only A and H were followed up
        "identified_followed_up": 2, "identified_no_longer_in_child_labour": 2,
        "median_days_alert_to_first_action": 2.0, "alerts_acted_on": 3,
        "cases_open_in_period": 4, "followups": 2,
        "services_delivered_by_type": {"birth_certificate": 1},
    }  # fmt: skip
    assert pick(mar, "children_monitored", "children_identified", "identified_followed_up",
                "pct_identified_no_longer_in_child_labour", "cases_closed",
                "median_days_case_open_to_close", "cases_open_in_period", "followups_per_case",
                "services_delivered_by_type", "alerts_acted_on") == {
        "children_monitored": 2, "children_identified": 1, "identified_followed_up": 1,
        "pct_identified_no_longer_in_child_labour": 0.0, "cases_closed": 1,
        "median_days_case_open_to_close": 25.0, "cases_open_in_period": 4,
        "followups_per_case": 0.25, "services_delivered_by_type": {"psychosocial_support": 1},
        "alerts_acted_on": 0,
    }  # fmt: skip
    for row in report.rows:  # "now" figures have no month
        assert row["alerts_open"] is None and row["cases_by_state"] is None

    quarter = report_of(app, "sam", filters(group="quarter"))
    assert [r["key"] for r in quarter.rows] == ["2025-Q1"]
    now_figures = ("key", "label", "alerts_open", "alerts_overdue", "cases_by_state")
    assert {k: v for k, v in quarter.rows[0].items() if k not in now_figures} == {
        k: v for k, v in OVERALL.items() if k not in now_figures
    }


def test_a_period_of_one_month_equals_that_months_row(app, world):
    month = row_of(report_of(app, "sam", filters(group="month")), "2025-02")
    february = KpiFilters(dt.date(2025, 2, 1), dt.date(2025, 2, 28))
    overall = report_of(app, "sam", february).overall
    now_figures = ("key", "label", "alerts_open", "alerts_overdue", "cases_by_state")
    assert {k: v for k, v in overall.items() if k not in now_figures} == {
        k: v for k, v in month.items() if k not in now_figures
    }
    # an empty month of the period still has its row
    late = report_of(app, "sam", KpiFilters(dt.date(2025, 3, 1), dt.date(2025, 4, 30),
                                            group="month"))  # fmt: skip
    assert [(r["key"], r["children_monitored"]) for r in late.rows] == [
        ("2025-03", 2), ("2025-04", 0)]  # fmt: skip


# --- filters -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "households", "monitored", "identified", "alerts_open", "open_cases"),
    [
        ({"village": "V3"}, 1, 2, 1, 0, 1),
        ({"area": "CI-D2"}, 2, 4, 3, 1, 2),
        ({"area": "CI-R1"}, 5, 7, 4, 3, 5),  # an area includes every area below it
        ({"area": "CI-D1", "village": "V3"}, 0, 0, 0, 0, 0),
        ({"supplier": "T2-COOP"}, 2, 2, 1, 1, 2),
        ({"tier": 1}, 1, 1, 0, 0, 1),
        ({"tier": 3}, 1, 2, 1, 0, 1),
        ({"monitor": "mia"}, 3, 5, 3, 1, 2),
        ({"monitor": "mo", "village": "V2"}, 1, 1, 0, 0, 1),
    ],
)
def test_filters(app, world, kwargs, households, monitored, identified, alerts_open, open_cases):
    overall = report_of(app, "sam", filters(**kwargs)).overall
    assert (
        overall["households_covered"], overall["children_monitored"],
        overall["children_identified"], overall["alerts_open"], overall["cases_open_in_period"],
    ) == (households, monitored, identified, alerts_open, open_cases)  # fmt: skip


def test_the_monitor_filter_keeps_the_area_comparison_over_every_monitor(app, world):
    report = report_of(app, "sam", filters(monitor="mo"))
    assert [m["key"] for m in report.monitors] == ["mo"]
    assert report.monitors[0]["area_identification_rate"] == 0.3333
    mia = report_of(app, "sam", filters(monitor="mia", village="V2")).monitors
    assert [(m["key"], m["identification_rate"], m["area_identification_rate"]) for m in mia] == [
        ("mia", 0.0, 0.3333)]  # fmt: skip


@pytest.mark.parametrize(
    ("args", "parameter"),
    [
        ({"from": "2025-13-01"}, "from"),
        ({"to": "yesterday"}, "to"),
        ({"from": "2025-03-04", "to": "2025-03-03"}, "from"),
        ({"from": "2000-01-01", "to": "2025-03-03"}, "from"),
        ({"tier": "x"}, "tier"),
        ({"tier": "0"}, "tier"),
        ({"group": "week"}, "group"),
    ],
)
def test_parse_filters_refuses_bad_parameters(args, parameter):
    with pytest.raises(Problem) as e:
        parse_filters(args, dt.date(2025, 3, 3))
    assert e.value.key == "request.invalid_parameter"
    assert e.value.details["parameter"] == parameter


def test_parse_filters_defaults_and_windows():
    f = parse_filters({}, dt.date(2024, 2, 29))
    assert (f.date_from, f.date_to, f.group) == (dt.date(2023, 3, 1), dt.date(2024, 2, 29), "none")
    f = parse_filters({"to": "2025-03-03", "village": " V1 ", "tier": "2", "group": "month"},
                      dt.date(2030, 1, 1))  # fmt: skip
    assert (f.date_from, f.village, f.tier) == (dt.date(2024, 3, 4), "V1", 2)
    assert f.query() == {"from": "2024-03-04", "to": "2025-03-03", "village": "V1", "tier": "2",
                         "group": "month"}  # fmt: skip
    windows = time_windows(dataclasses.replace(f, date_from=dt.date(2024, 12, 15)))
    assert windows == [
        ("2024-12", at(12, 15, 0, 2024), at(1, 1, 0)),
        ("2025-01", at(1, 1, 0), at(2, 1, 0)),
        ("2025-02", at(2, 1, 0), at(3, 1, 0)),
        ("2025-03", at(3, 1, 0), at(3, 4, 0)),
    ]
    assert [w[0] for w in time_windows(dataclasses.replace(f, group="quarter"))][:2] == [
        "2024-Q1", "2024-Q2"]  # fmt: skip
    assert time_windows(dataclasses.replace(f, group="village")) == [
        ("", at(3, 4, 0, 2024), at(3, 4, 0))]  # fmt: skip


@pytest.mark.parametrize("parameter", ["village", "area", "supplier", "monitor"])
def test_unknown_codes_are_refused(app, world, parameter):
    with pytest.raises(Problem) as e:
        report_of(app, "sam", filters(**{parameter: "NOPE"}))
    assert e.value.details["parameter"] == parameter


def test_haversine():
    assert haversine_km(5.78, -6.59, 5.78, -6.59) == 0
    assert round(haversine_km(5.78, -6.59, 5.87, -6.59), 1) == 10.0
    assert round(haversine_km(0, 0, 0, 180)) == 20015


def test_the_databases_measure_the_distance_as_python_does(app):
    """The far GPS points are counted by the database (:func:`haversine_sql`): the same
    distance as Python's to the millimetre, from the same point to the antipode (where the
    rounding could take the root past 1)."""
    from sqlalchemy import literal

    from alerts.kpis.monitors import haversine_sql

    pairs = [
        (5.78, -6.59, 5.78, -6.59),
        (5.78, -6.59, 5.87, -6.59),
        (5.78, -6.59, 5.70, -6.61),
        (6.2, -5.3, 7.9, -2.1),
        (0.0, 0.0, 0.0, 180.0),
        (45.0, 10.0, -45.0, -170.0),
        (-33.9, 18.4, 51.5, -0.1),
    ]
    with session_scope(app) as s:
        for pair in pairs:
            measured = s.scalar(select(haversine_sql(*(literal(v) for v in pair))))
            assert measured == pytest.approx(haversine_km(*pair), abs=1e-6), pair


def test_an_sqlite_without_math_functions_is_given_pythons():
    """An SQLite built without its math functions gets Python's on connecting, so the distance
    above is measured there too (a connection that refuses ``sin`` stands for it)."""
    import math
    import sqlite3

    from clms.db import _sqlite_math

    class WithoutMath:
        def __init__(self):
            self.conn = sqlite3.connect(":memory:")
            self.given = {}

        def execute(self, sql):
            if "sin(" in sql and "sin" not in self.given:
                raise sqlite3.OperationalError("no such function: sin")
            return self.conn.execute(sql)

        def create_function(self, name, n, function, deterministic=False):
            self.given[name] = function
            self.conn.create_function(f"py_{name}", n, function, deterministic=deterministic)

    conn = WithoutMath()
    _sqlite_math(conn)
    assert conn.given == {"sin": math.sin, "cos": math.cos, "asin": math.asin,
                          "sqrt": math.sqrt, "radians": math.radians}  # fmt: skip


def test_the_figures_take_the_same_queries_however_many_children(app, world):
    """Set-based: more children and visits, not more queries."""

    def count_queries() -> int:
        engine = app.extensions["clms_engine"]
        seen = []
        listener = lambda *args: seen.append(1)  # noqa: E731
        event.listen(engine, "before_cursor_execute", listener)
        try:
            report_of(app, "sam", filters(group="village"))
        finally:
            event.remove(engine, "before_cursor_execute", listener)
        return len(seen)

    before = count_queries()
    with session_scope(app) as s:
        w = World(s)
        for i in range(12):
            h = w.household(f"HH-X{i}", "V2", "T1-EXP")
            kids = [w.child(h, f"Extra {i} {j}", "female") for j in range(3)]
            w.visit(at(2, 1 + i), "mo", "V2", h, [(k, "child_labour", True) for k in kids],
                    minutes=25, gps=(5.70, -6.61))  # fmt: skip
    assert count_queries() == before
    assert report_of(app, "sam").overall["children_monitored"] == 7 + 36


# --- the snapshot --------------------------------------------------------------------------------


def test_the_snapshot_stores_the_same_figures(app, world):
    with session_scope(app) as s:
        assert take_kpi_snapshot(s, NOW.date(), now=NOW) == 4  # D1, D2, GH-R1, overall
    with session_scope(app) as s:
        rows = {r.area_id: r.figures for r in s.scalars(select(KpiSnapshot))}
        areas = dict(s.execute(select(Area.code, Area.id)).all())
        expected = compute_everything(
            s, KpiFilters.default(NOW.date(), group="area"), now=NOW
        )  # fmt: skip
    overall = {k: v for k, v in expected.overall.items() if k not in ("key", "label")}
    assert rows[None] == {"as_of": NOW.isoformat(), **overall}
    # the default period is the 12 months up to the day: it also holds G's visit and F's case of
    # December 2024, which the January-March figures (OVERALL) leave out
    assert rows[None]["children_monitored"] == OVERALL["children_monitored"] + 1  # G
    assert rows[None]["children_identified"] == OVERALL["children_identified"] + 1  # G
    assert rows[None]["households_covered"] == OVERALL["households_covered"]
    assert rows[areas["CI-D2"]]["children_monitored"] == 4
    assert rows[areas["CI-D1"]]["households_covered"] == 3
    assert rows[areas["GH-R1"]]["children_monitored"] == 0


def test_the_snapshot_job_writes_its_rows(app, world):
    run = run_job(JobContext(app.config, app.extensions["clms_sessionmaker"], NOW), "kpi_snapshot")
    assert run.ok and run.summary == {"day": "2025-03-03", "rows": 4}
    with session_scope(app) as s:
        overall = s.scalar(select(KpiSnapshot).where(KpiSnapshot.area_id.is_(None)))
        assert overall.figures["children_identified"] == 5  # the 12 months: G of December too


# --- web and API ---------------------------------------------------------------------------------


def token(client, username: str) -> dict:
    r = client.post("/api/v1/sessions", json={"username": username, "password": PASSWORD})
    assert r.status_code == 201, r.json
    return {"Authorization": f"Bearer {r.json['token']}"}


def login(client, username: str) -> None:
    r = client.post("/login", data={"username": username, "password": PASSWORD})
    assert r.status_code == 302


URLS = ["/kpis", "/api/v1/kpis", "/kpis/export.csv", "/kpis/export.xlsx",
        "/exports/child-visits.csv", "/exports/child-visits.xlsx"]  # fmt: skip


@pytest.mark.parametrize("username", ["bea", "mo", "pat"])
def test_brands_monitors_providers_are_refused(client, world, username):
    headers = token(client, username)
    assert client.get("/api/v1/kpis", headers=headers).status_code == 403
    login(client, username)
    for url in URLS:
        if not url.startswith("/api"):
            assert client.get(url).status_code == 403, url


def test_signed_out_is_sent_to_sign_in(client, world):
    for url in URLS:
        r = client.get(url)
        assert r.status_code == (401 if url.startswith("/api") else 302), url


def test_every_kpi_route_declares_its_roles(app):
    for rule in app.url_map.iter_rules():
        if "kpis" in rule.rule or "exports" in rule.rule:
            view = app.view_functions[rule.endpoint]
            assert view.allowed_roles == {"officer", "supervisor", "admin"}, rule.rule


def test_api_answers_the_figures(client, world):
    r = client.get("/api/v1/kpis", query_string=PERIOD | {"group": "village"},
                   headers=token(client, "sam"))  # fmt: skip
    assert r.status_code == 200
    body = r.json
    assert body["filters"] == {"from": "2025-01-01", "to": "2025-03-03", "area": None,
                               "village": None, "supplier": None, "tier": None,
                               "monitor": None, "group": "village"}  # fmt: skip
    # the "now" figures are as at the request: every deadline of 2025 has passed
    assert body["overall"] == OVERALL
    assert [g["key"] for g in body["groups"]] == ["V1", "V2", "V3", "V4"]
    for g in body["groups"]:
        assert {k: g[k] for k in BY_VILLAGE[g["key"]]} == BY_VILLAGE[g["key"]]
    assert body["monitors"] == MONITORS
    olga = client.get("/api/v1/kpis", query_string=PERIOD, headers=token(client, "olga")).json
    assert olga["overall"] == OLGA
    kofi = client.get("/api/v1/kpis", query_string=PERIOD, headers=token(client, "kofi")).json
    assert kofi["overall"]["children_monitored"] == 0 and kofi["groups"] == []


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("from=2025-02-30", "from"),
        ("to=2025-01-01&from=2025-02-01", "from"),
        ("tier=first", "tier"),
        ("group=year", "group"),
        ("village=NOPE", "village"),
        ("area=NOPE", "area"),
        ("supplier=NOPE", "supplier"),
        ("monitor=nobody", "monitor"),
    ],
)
def test_api_bad_parameters_answer_400_naming_them(client, world, query, parameter):
    r = client.get(f"/api/v1/kpis?{query}", headers=token(client, "olga"))
    assert r.status_code == 400
    assert r.json["code"] == "400.12" and r.json["error"] == "request.invalid_parameter"
    assert r.json["details"]["parameter"] == parameter


def page_figures(html: str) -> dict:
    """``{row key: {figure: raw value}}`` of the KPI table (and the monitors' table) of a page."""
    out: dict = {}
    for table in ("kpi-table", "kpi-monitors"):
        body = html.split(f'id="{table}"', 1)[1].split("</table>", 1)[0]
        for key, cells in re.findall(r'<tr[^>]*data-key="([^"]*)"[^>]*>(.*?)</tr>', body, re.S):
            out.setdefault((table, key), {}).update(
                re.findall(r'data-figure="([^"]+)" data-value="([^"]*)"', cells)
            )
    return out


def test_the_page_shows_the_figures_the_api_answers(client, world):
    query = PERIOD | {"group": "village"}
    api = client.get("/api/v1/kpis", query_string=query, headers=token(client, "sam")).json
    login(client, "sam")
    r = client.get("/kpis", query_string=query)
    assert r.status_code == 200
    figures = page_figures(r.text)
    rows = {"overall": api["overall"]} | {g["key"]: g for g in api["groups"]}
    assert {key for _table, key in figures if _table == "kpi-table"} == set(rows)
    compared = 0
    for (table, key), values in figures.items():
        source = rows[key] if table == "kpi-table" else {m["key"]: m for m in api["monitors"]}[key]
        for name, raw in values.items():
            expected = source[name]
            assert raw == ("" if expected is None else str(expected)), (key, name)
            compared += 1
    assert compared == 5 * 13 + 2 * 7
    # the headline cards are the overall row
    cards = dict(re.findall(r'<dd data-figure="([^"]+)" data-value="([^"]*)"', r.text))
    assert cards["children_identified"] == "4" and cards["identification_rate"] == "0.5714"
    assert "Oupoyo (V3)" in r.text


def test_the_page_is_accessible_and_needs_no_script_or_inline_style(client, world):
    login(client, "sam")
    html = client.get("/kpis", query_string=PERIOD | {"group": "month"}).text
    # no inline script (confirm.js, from a file, is every page's)
    assert not re.search(r"<script(?![^>]*\bsrc=)", html)
    assert "style=" not in html and " on" + "click" not in html
    assert "<fieldset>" in html and "<legend>" in html
    for field in ("from", "to", "area", "village", "supplier", "tier", "monitor", "group"):
        assert f'<label for="k-{field}">' in html and f'id="k-{field}" name="{field}"' in html
    charts = re.findall(r"<svg[^>]*role=\"img\"[^>]*>.*?</svg>", html, re.S)
    assert len(charts) == 4  # rate by month, categories, services, monitors
    # the header's bell is an icon beside its words, hidden from screen readers
    icons = re.findall(r"<svg[^>]*>", html)
    assert [i for i in icons if 'role="img"' not in i] == [
        i for i in icons if 'aria-hidden="true"' in i and "bell" in i
    ]
    for svg in charts:
        assert 'role="img"' in svg and "<title id=" in svg and "<desc id=" in svg
    assert 'aria-labelledby="chart-rate-title chart-rate-desc"' in html
    # the services have their names from the catalogue
    assert "Birth certificate" in html


def test_the_page_in_french(client, world):
    login(client, "sam")
    client.post("/language", data={"locale": "fr", "next": "/kpis"})
    html = client.get("/kpis", query_string=PERIOD).text
    assert "Indicateurs" in html and "Taux d’identification" in html
    assert "57,1\xa0%" in html  # the identification rate, French style (CLDR's pattern)
    assert "Acte de naissance" in html


def test_the_page_with_bad_filters_says_why(client, world):
    login(client, "olga")
    r = client.get("/kpis?village=NOPE")
    assert r.status_code == 400 and "NOPE" in r.text
    r = client.get("/kpis?tier=x")
    assert r.status_code == 400 and "tier" in r.text


def test_an_admin_without_scope_sees_the_whole_countrys_figures_and_no_child_rows(
    app, client, world
):
    monitored = report_of(app, "sam").overall["children_monitored"]
    login(client, "ada")
    r = client.get("/kpis", query_string=PERIOD)
    assert r.status_code == 200 and "No area or village is assigned to you" not in r.text
    assert f'data-figure="children_monitored" data-value="{monitored}"' in r.text and monitored
    # the child-level export keeps to a scope: the header and nothing else
    rows = read_csv(client.get("/exports/child-visits.csv", query_string=PERIOD).data)
    assert len(rows) == 1


# --- exports -------------------------------------------------------------------------------------


def read_csv(data: bytes) -> list[list[str]]:
    assert data.startswith(b"\xef\xbb\xbf")
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))


def test_child_visit_csv(client, world, caplog):
    login(client, "sam")
    with caplog.at_level(logging.INFO, logger="clms.audit"):
        r = client.get("/exports/child-visits.csv", query_string=PERIOD)
    assert r.status_code == 200 and r.mimetype == "text/csv"
    assert r.headers["Content-Disposition"] == (
        'attachment; filename="clms-child-visits-2025-01-01-2025-03-03.csv"'
    )
    assert r.headers["Cache-Control"] == "no-store"
    rows = read_csv(r.data)
    assert rows[0] == list(CHILD_VISIT_COLUMNS)
    uids = world["uids"]
    # 15 current child visits in the period: not G's (December), not the edited one
    assert len(rows) == 1 + 15
    assert sorted({row[0] for row in rows[1:]}) == sorted(
        uids[n] for n in NAMES[:7]
    )  # fmt: skip
    first = dict(zip(rows[0], rows[1], strict=True))
    assert first == {
        "child_uid": uids["Aya Traoré"], "visit_date": "2025-01-10", "kind": "household",
        "village": "V1", "area": "CI-D1", "supplier": "T2-COOP", "tier": "2", "monitor": "mo",
        "age": "11", "sex": "female", "attends_school": "false", "work_hours_7d": "20",
        "chore_hours_7d": "5", "hazards": "agrochemicals sharp_tools",
        "category": "child_labour", "sdg_871": "true",
        "reason_rules": "RULE_CHILD_LABOUR RISK_INJURY",
    }  # fmt: skip
    followup = [row for row in rows[1:] if row[2] == "followup"]
    assert [(row[1], row[3], row[5], row[14]) for row in followup] == [
        ("2025-02-25", "V1", "T2-COOP", "none"), ("2025-02-28", "V4", "", "at_risk"),
        ("2025-03-02", "V3", "T3-GRP", "hazardous"),
    ]  # fmt: skip
    # names, coordinates and free text never leave
    text = r.data.decode("utf-8-sig")
    for secret in (*NAMES, "5.78", "-6.59", "Free text", "HH-1"):
        assert secret not in text
    # a text cell that a spreadsheet would run as a formula is neutralised
    fanta = [row for row in rows[1:] if row[0] == uids["Fanta Bamba"]]
    assert fanta[0][13] == "'" + FORMULA_HAZARD
    assert not any(cell.startswith(("=", "+", "@")) for row in rows for cell in row)
    # the audit log: who, what, which filters, when
    [entry] = _audit_entries(client.application, "child_visits.export")
    assert (entry.actor, entry.role, entry.target) == ("sam", "supervisor", "kpis")
    details = json.loads(entry.details)
    assert details["format"] == "csv"
    assert details["filters"]["from"] == "2025-01-01" and details["filters"]["to"] == "2025-03-03"
    assert entry.at is not None


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_an_export_gives_its_connection_back(app, client, world, fmt):
    """The rows stream after the request has ended: once they are read, or the download is
    abandoned, the database connection is back in the pool with no transaction left open (one
    left open held SQLite's write lock for good and blocked every submission after it)."""
    login(client, "sam")
    pool = app.extensions["clms_engine"].pool
    r = client.get(f"/exports/child-visits.{fmt}", query_string=PERIOD)
    assert r.status_code == 200 and len(r.data) > 100  # read to the end, never closed
    assert pool.checkedout() == 0
    abandoned = client.get(f"/exports/child-visits.{fmt}", query_string=PERIOD, buffered=False)
    next(abandoned.response)  # the first chunk only, then the reader goes away
    abandoned.close()
    assert pool.checkedout() == 0
    with session_scope(app) as s:
        if s.bind.dialect.name == "postgresql":  # no connection of ours left in a transaction
            stuck = s.scalar(text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND state LIKE 'idle in transaction%' AND pid <> pg_backend_pid()"))  # fmt: skip
            assert stuck == 0
        # and a writer gets the database at once
        s.execute(update(User).where(User.username == "sam").values(locale="fr"))


def test_child_visit_csv_follows_scope_and_filters(client, world):
    login(client, "olga")
    rows = read_csv(client.get("/exports/child-visits.csv", query_string=PERIOD).data)
    assert len(rows) == 1 + 7 and {row[3] for row in rows[1:]} == {"V1", "V2"}
    rows = read_csv(client.get("/exports/child-visits.csv",
                               query_string=PERIOD | {"monitor": "mia"}).data)  # fmt: skip
    assert [(row[1], row[3], row[7]) for row in rows[1:]] == [("2025-02-18", "V2", "mia")]
    client.post("/logout")
    login(client, "kofi")
    assert read_csv(client.get("/exports/child-visits.csv", query_string=PERIOD).data) == [
        list(CHILD_VISIT_COLUMNS)]  # fmt: skip
    assert client.get("/exports/child-visits.csv?village=NOPE").status_code == 400


def test_child_visit_xlsx(client, world, caplog):
    login(client, "sam")
    with caplog.at_level(logging.INFO, logger="clms.audit"):
        r = client.get("/exports/child-visits.xlsx", query_string=PERIOD | {"village": "V4"})
    assert r.status_code == 200
    assert r.mimetype == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    book = openpyxl.load_workbook(io.BytesIO(r.data))
    assert book.sheetnames == ["Child visits"]
    sheet = book.active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0] == CHILD_VISIT_COLUMNS
    uids = world["uids"]
    assert [(row[0], row[1], row[2], row[14]) for row in rows[1:]] == [
        (uids["Fanta Bamba"], dt.datetime(2025, 2, 20), "household", "child_labour"),
        (uids["Hamed Bamba"], dt.datetime(2025, 2, 20), "household", "hazardous"),
        (uids["Hamed Bamba"], dt.datetime(2025, 2, 28), "followup", "at_risk"),
    ]
    # numbers and booleans are cells of their own kind; a formula stays text
    assert sheet["G2"].value is None and sheet["I2"].value == 11 and sheet["P2"].value is True
    assert sheet["N2"].value == "'" + FORMULA_HAZARD and sheet["N2"].data_type == "s"
    assert sheet["A1"].font.b
    # the zip was written as a stream: each member's sizes come after its data
    with zipfile.ZipFile(io.BytesIO(r.data)) as z:
        assert all(info.flag_bits & 0x08 for info in z.infolist())
        for name in z.namelist():
            for secret in NAMES:
                assert secret.encode() not in z.read(name)
    [entry] = _audit_entries(client.application, "child_visits.export")
    assert entry.actor == "sam" and json.loads(entry.details)["format"] == "xlsx"
    assert json.loads(entry.details)["filters"]["village"] == "V4"


def _audit_entries(app, action: str) -> list:
    from clms.models import AuditEvent

    with session_scope(app) as s:
        return list(s.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def test_kpi_table_exports(client, world, caplog):
    login(client, "sam")
    with caplog.at_level(logging.INFO, logger="clms.audit"):
        r = client.get("/kpis/export.csv", query_string=PERIOD | {"group": "village"})
    assert r.status_code == 200
    rows = read_csv(r.data)
    header = rows[0]
    table = {row[1] or "overall": dict(zip(header, row, strict=True)) for row in rows[1:]}
    assert list(table) == ["overall", "V1", "V2", "V3", "V4"]
    assert table["overall"]["group"] == "overall" and table["V3"]["group"] == "village"
    assert table["overall"]["children_identified"] == "4"
    assert table["overall"]["identification_rate"] == "0.5714"
    assert table["overall"]["median_days_case_open_to_close"] == "25.0"
    assert table["V4"]["pct_identified_remediated"] == "50.0"
    assert table["V2"]["pct_identified_remediated"] == ""
    assert table["overall"]["children_latest_at_risk"] == "2"
    assert table["overall"]["cases_implementation"] == "2"
    assert table["overall"]["services_birth_certificate"] == "1"
    assert table["V3"]["label"] == "Oupoyo"
    [entry] = _audit_entries(client.application, "kpis.export")
    assert entry.actor == "sam"

    r = client.get("/kpis/export.xlsx", query_string=PERIOD | {"group": "month"})
    book = openpyxl.load_workbook(io.BytesIO(r.data))
    assert book.sheetnames == ["Indicators", "Monitor quality"]
    rows = list(book["Indicators"].iter_rows(values_only=True))
    head = rows[0]
    by_key = {row[1] or "overall": dict(zip(head, row, strict=True)) for row in rows[1:]}
    assert list(by_key) == ["overall", "2025-01", "2025-02", "2025-03"]
    assert by_key["2025-02"]["children_monitored"] == 7
    assert by_key["2025-02"]["alerts_open"] is None
    assert by_key["overall"]["followups_per_case"] == 0.6
    monitors = list(book["Monitor quality"].iter_rows(values_only=True))
    assert monitors[1][:3] == ("mia", 6, 5) and monitors[2][0] == "mo"


def test_exports_stream_in_chunks_with_the_same_memory(app, world):
    """The child-visit rows come through the server-side cursor a chunk at a time, and the
    writers hand out bytes as they go."""
    with session_scope(app) as s:
        rows = child_visit_rows(s, user(s, "sam"), filters(), chunk=2)
        first = next(rows)
        assert first[0] == world["uids"]["Aya Traoré"] and len(list(rows)) == 14
    many = ([i, "x" * 50] for i in range(5000))
    chunks = list(csv_chunks(["n", "text"], many, chunk_rows=500))
    assert len(chunks) == 11 and max(len(c) for c in chunks) < 40_000
    # text deflate cannot shrink to nothing, so that compressed bytes come out as they go
    many = ([i, f"{i * 7919:x}" * 8, dt.date(2025, 1, 1)] for i in range(5000))
    chunks = list(xlsx_chunks([("S", ["n", "text", "day"], many)], chunk_rows=500))
    assert len(chunks) > 5 and all(chunks)
    book = openpyxl.load_workbook(io.BytesIO(b"".join(chunks)), read_only=True)
    assert next(book.active.iter_rows(min_row=5001, values_only=True)) == (
        4999, f"{4999 * 7919:x}" * 8, dt.datetime(2025, 1, 1))  # fmt: skip


# --- pure pieces ---------------------------------------------------------------------------------


def test_neutralise():
    assert [neutralise(v) for v in ("=1+1", "+1", "-1", "@A1", "\tx", "CH-ABC", "", "a=b")] == [
        "'=1+1", "'+1", "'-1", "'@A1", "'\tx", "CH-ABC", "", "a=b"]  # fmt: skip


def test_charts_are_named_images_without_style():
    svg = bar_chart("c1", "Rate <by> village", "What & why", [
        Bar("Gnamagui", 50.0, "50 %", reference=25.0), Bar("<b>", None, "—")],
        max_value=100, reference_label="Area")  # fmt: skip
    assert svg.startswith('<svg class="kpi-chart" role="img" aria-labelledby="c1-title c1-desc"')
    assert '<title id="c1-title">Rate &lt;by&gt; village</title>' in svg
    assert '<desc id="c1-desc">What &amp; why</desc>' in svg
    assert "&lt;b&gt;" in svg and "<b>" not in svg
    # below the legend of the reference (26 high), half of the 390 units of the scale
    assert 'class="kpi-fill" x="190" y="31" width="195.0"' in svg  # 50 of 100
    assert 'class="kpi-ref" x1="287.5"' in svg  # the reference at 25
    stacked = stacked_bar_chart("c2", "Children", "By category", [
        StackedBar("V1", [1, 3], "4"), StackedBar("V2", [2, 0], "2")],
        [Series("worst_form", "Worst"), Series("none", "None")])  # fmt: skip
    assert stacked.count('class="kpi-s-worst_form"') == 3  # legend and two bars
    assert stacked.count('class="kpi-s-none"') == 2  # legend and V1's (V2 has none)
    assert 'width="292.5"' in stacked  # 3 of the largest total 4
    for chart in (svg, stacked):
        assert "style" not in chart and "script" not in chart


def kpi_messages() -> set[str]:
    """Every English message of the KPI template and code: ``_()`` in the template (Jinja's own
    extractor), ``N_``, ``Msg`` and ``gettext`` with a literal in the code."""
    from jinja2 import Environment

    template = (ROOT / "clms" / "templates" / "kpis_index.html").read_text("utf-8")
    env = Environment(extensions=["jinja2.ext.i18n"], autoescape=True)
    wanted = {m for _line, _func, m in env.extract_translations(template) if isinstance(m, str)}
    for path in [
        ROOT / "clms" / "web" / "kpis_views.py",
        *sorted((ROOT / "alerts" / "kpis").glob("*.py")),
    ]:
        tree = ast.parse(path.read_text("utf-8"))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in ("N_", "Msg", "gettext")
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                wanted.add(node.args[0].value)
    return wanted


def test_every_kpi_string_has_french():
    from clms.i18n import catalogue

    french = catalogue("fr")  # clms/translations/fr/LC_MESSAGES/messages.po
    wanted = kpi_messages()
    assert len(wanted) > 60
    assert sorted(w for w in wanted if not french.get(w)) == []
    # placeholders survive translation
    for english, translated in ((w, french[w]) for w in wanted):
        assert sorted(re.findall(r"%\(\w+\)s|\{\w+(?:!r)?\}", english)) == sorted(
            re.findall(r"%\(\w+\)s|\{\w+(?:!r)?\}", translated)
        ), english
