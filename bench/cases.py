"""Benchmark: the case list and case page with 50,000 cases, the KPI page and API with 1,000,000
child visits, and the full export of those child visits (time and server memory).

Usage (from the repository root, in the virtualenv)::

    python -m bench.cases                               # SQLite and PostgreSQL, full size
    python -m bench.cases --db sqlite                   # one database
    python -m bench.cases --db postgresql --cases 5000 --visits 100000   # smaller
    python -m bench.cases --no-xlsx --kpi-requests 5    # quicker

Each database is measured at two sizes in the same run: a baseline (``--base-cases``, default
1,000 cases, and ``--base-visits``, default 100,000 child visits) and the full size (``--cases``,
default 50,000, and ``--visits``, default 1,000,000). For each size the bench creates a fresh
database (a SQLite file in a temporary folder, or a throwaway PostgreSQL cluster through
``tests/pgserver.py``), runs the migrations, adds with the ORM the small things (one country, 3
regions, 20 departments, 1,000 villages, 30 suppliers, the service catalogue and the demo's
providers, one form, a country profile, 2 monitors per department, officers and a supervisor), then
loads the rest with Core ``INSERT`` of thousands of rows at a time in one transaction per phase:

1. households (1-5 children, in villages weighted log-normally, as hotspots are), each visited
   1-5 times over the last 360 days by a monitor of its department (one submission and one visit
   per visit, GPS near the village, a duration), every child on every visit (a child visit with
   ages, hours, hazards) and its current classification: a quarter of the children work (their
   visits mostly child labour, hazardous, some worst forms), the rest rarely;
2. one alert per child found in child labour (its first such visit), and ``--cases`` cases opened
   from those alerts, spread over the states (verification 8%, assessment 8%, action plan 10%,
   implementation 34%, closure review 5%, closed 30%, reopened 2%, transferred 3%) with, as far as
   each got: a timeline (opened, verified, assessed, services planned, plan submitted and
   approved, consents, referrals and their answers, notes, closure proposed, closed, reopened,
   transferred), an assessment, an action plan with planned services (some delivered), consents,
   referrals, a transfer, step and follow-up deadlines (some past); the other alerts are new,
   acknowledged or dismissed;
3. follow-up visits of the cases in implementation or later (each one child visit, classified),
   up to exactly ``--visits`` child visits in all.

Statistics as production would have them: ``VACUUM ANALYZE`` on PostgreSQL (autovacuum would
within a minute), none on SQLite unless ``--sqlite-analyze``.

gunicorn then serves the product (``clms.app:create_app()``, 2 gthread workers x 4 threads, as
bench/alert_queue.py) and one keep-alive client measures, each after ``--warmup`` unmeasured
requests, latencies as p50/p95:

- the floor: ``GET /login`` (no database work);
- as an officer of one region (a third of the villages), signed in through ``POST /login``:
  the case list ``/cases`` (first page of the open cases), a filtered page
  (``state=implementation&overdue=true``), and case pages ``/cases/<id>`` of random cases of
  the region (``--requests`` each);
- the home pages ``/`` (each role's work queue, :mod:`clms.workday.home`) of that officer, of
  the provider with the most referrals, of an administrator (system health) and of the
  supervisor below (``--requests`` each);
- as a supervisor of the whole country (every child visit in scope): the KPI page ``/kpis`` and
  ``GET /api/v1/kpis`` (bearer token), default filters (``--kpi-requests`` each);
- the supervisor's full export of child visits, ``/exports/child-visits.csv`` (every current child
  visit of the 12 months, one row each) and ``.xlsx`` (``--no-xlsx`` to skip it), read to the end
  as a browser would: seconds, bytes, rows (CSV lines; XLSX ``<row>`` elements), and the RSS of
  each gunicorn process sampled every 50 ms: before the export, the peak during it, and the
  growth of the process that served it. Memory that stays the same at 10 times the rows is the
  constant memory the streaming promises.

- the supervisor's case list as a download, ``/cases/export.csv?state=all`` and ``.xlsx`` (every
  case of the country), measured the same way;
- the same child-visit export written in the bench's own process, to nowhere, by the path before
  issue 19 (:func:`alerts.kpis.child_visit_rows`, every cell written by Python) and by the
  database-written one (:mod:`clms.export_sql`: COPY on PostgreSQL, the DB-API cursor on
  SQLite), one after the other on the same data: seconds, rows/s, CPU seconds of the process.

``--only-exports`` measures the exports alone (no pages, no KPIs): the quick way to measure them
at a million child visits.

Every answer must be 200 (each export must have exactly as many rows as child visits or cases),
or the run fails (exit status 1). The table is printed as Markdown; the figures go to
``bench/results/cases.json``, charts to ``bench/results/cases-*.svg``, gunicorn's log to
``bench/results/``. Timings are of a shared 2-core machine: the client runs on it too.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import re
import resource
import signal
import sys
import tempfile
import threading
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import requests
from sqlalchemy import create_engine, insert, select, text
from sqlalchemy.orm import Session

from bench.common import (
    ROOT,
    Database,
    Gunicorn,
    bar_chart_svg,
    bench_form_and_profile,
    percentile,
    process_tree,
    rss_kib,
    save_results,
)
from clms.facts import rebuild
from clms.models import (
    ActionPlan,
    Alert,
    AlertEvent,
    Assessment,
    Case,
    CaseEvent,
    CaseTransfer,
    Child,
    ChildVisit,
    Classification,
    Consent,
    Household,
    PlannedService,
    Referral,
    Submission,
    Visit,
)

RESULTS = ROOT / "bench" / "results"
PASSWORD = "bench horse battery staple"
SECRET_KEY = "bench-secret-key-not-for-production"
SLOW_P95_MS = 1000.0

REGIONS = 3
DEPARTMENTS = 20
VILLAGES = 1000
SUPPLIERS = 30
MONITORS_PER_DEPARTMENT = 2
DAYS = 360  # visits over the last DAYS days: inside the KPI page's default 12 months
RULE_SET = "bench-2026.1"
#: the children who work (a quarter) and those who do not: the category of each of their visits
WORKING_MIX = [
    ("none", 0.20),
    ("at_risk", 0.10),
    ("child_labour", 0.35),
    ("hazardous", 0.31),
    ("worst_form", 0.04),
]
CLEAR_MIX = [("none", 0.82), ("at_risk", 0.16), ("child_labour", 0.02)]
#: a child's follow-up visits, once the case is in implementation
FOLLOWUP_MIX = [("none", 0.70), ("at_risk", 0.15), ("child_labour", 0.15)]
WORKING_SHARE = 0.25
LABOUR = ("worst_form", "hazardous", "child_labour")
SEVERITY = {"worst_form": "critical", "hazardous": "high", "child_labour": "medium"}
RANK = {"critical": 4, "high": 3, "medium": 2, "low": 1}
ALERT_DEADLINES = {  # acknowledge within, first visit within (domain.md section 4)
    "critical": (dt.timedelta(hours=24), dt.timedelta(hours=72)),
    "high": (dt.timedelta(days=3), dt.timedelta(days=7)),
    "medium": (dt.timedelta(days=7), dt.timedelta(days=14)),
}
RULES = {
    "worst_form": ("WF_SIGNS", {"signs": ["debt", "cannot_leave"]}),
    "hazardous": ("HAZ_TASK", {"hazards": ["agrochemicals", "machete"]}),
    "child_labour": ("CL_UNDER_LIGHT_AGE", {"work_hours_7d": 6, "light_work_age": 13}),
    "at_risk": ("AR_CHORES", {"chore_hours_7d": 24, "threshold": 21}),
}
STATE_MIX = [
    ("verification", 0.08),
    ("assessment", 0.08),
    ("action_plan", 0.10),
    ("implementation", 0.34),
    ("closure_review", 0.05),
    ("closed", 0.30),
    ("reopened", 0.02),
    ("transferred", 0.03),
]
#: how far each state's case got: 0 opened, 1 verified, 2 assessed, 3 plan approved,
#: 4 closure proposed, 5 closed
DEPTH = {
    "verification": 0,
    "assessment": 1,
    "action_plan": 2,
    "implementation": 3,
    "closure_review": 4,
    "closed": 5,
    "reopened": 5,
    "transferred": 3,
}
FOLLOWED_UP = ("implementation", "closure_review", "closed", "reopened", "transferred")
FOLLOWUPS_PER_CASE = 3  # on average, of a case in implementation or later
HAZARDS = ["agrochemicals", "machete", "heavy_loads", "burning", "tree_felling", "night_work"]
ACTIVITIES = ["harvesting", "weeding", "carrying", "spraying", "breaking_pods", "drying"]
SCHOOLING = ("attending", "irregular", "dropped_out", "never_enrolled")


# --- loading -------------------------------------------------------------------------------------


class Loader:
    """Rows buffered per table, inserted with Core ``INSERT`` (executemany) in dependency order,
    so a row's parents are always in before it (PostgreSQL checks foreign keys at once)."""

    ORDER = (
        Household,
        Child,
        Submission,
        Alert,
        Case,
        Visit,
        ChildVisit,
        Classification,
        AlertEvent,
        CaseEvent,
        Assessment,
        ActionPlan,
        PlannedService,
        Consent,
        Referral,
        CaseTransfer,
    )

    def __init__(self, conn, batch: int = 5000):
        self.conn = conn
        self.batch = batch
        self.rows: dict = {model: [] for model in self.ORDER}
        self.counts: dict[str, int] = {model.__tablename__: 0 for model in self.ORDER}
        self.pending = 0

    def add(self, model, row: dict) -> None:
        self.rows[model].append(row)
        self.pending += 1

    def maybe_flush(self) -> None:
        """Flush when enough rows wait; called between two wholes (a household, a case), so
        that no row goes in before a parent generated after it."""
        if self.pending >= 4 * self.batch:
            self.flush()

    def flush(self) -> None:
        for model in self.ORDER:
            rows = self.rows[model]
            for i in range(0, len(rows), self.batch):
                self.conn.execute(insert(model.__table__), rows[i : i + self.batch])
            self.counts[model.__tablename__] += len(rows)
            rows.clear()
        self.pending = 0


@dataclass
class World:
    """The small things made with the ORM, and what the bulk load needs to know of them."""

    villages: list[tuple[int, int, int, float, float]]  # id, region, department, lat, lon
    dept_suppliers: dict[int, list[int]]
    monitors: dict[int, list[int]]  # department -> monitor ids
    officers: dict[int, list[int]]  # region -> officer ids
    supervisor_id: int
    form_id: int
    form_version_id: int
    profile_id: int
    providers: list[tuple[int, int | None, list[str]]]  # id, area id, services
    area_of_dept: dict[int, int]
    area_of_region: dict[int, int]
    services: list[str]


def make_world(url: str, rng: random.Random) -> World:
    """Migrate; add places, suppliers, users, the catalogue and providers, a form, a profile."""
    from sqlalchemy import select

    from clms.app import create_app
    from clms.auth.users import add_user
    from clms.db import session_scope
    from clms.demo.cases import seed_providers
    from clms.migrate import upgrade
    from clms.models import (
        Area,
        ServiceProvider,
        ServiceType,
        Supplier,
        SupplierVillage,
        Village,
    )

    engine = create_engine(url)
    try:
        upgrade(engine)
    finally:
        engine.dispose()
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": SECRET_KEY, "ODK_VALIDATE": "0"})
    try:
        with session_scope(app) as s:
            country = Area(code="BX", name="Benchland", level="country", country_code="BXL")
            s.add(country)
            s.flush()
            regions = [
                Area(
                    code=f"BX-R{r + 1}",
                    name=f"Region {r + 1}",
                    level="region",
                    country_code="BXL",
                    parent_id=country.id,
                )
                for r in range(REGIONS)
            ]
            s.add_all(regions)
            s.flush()
            depts = [
                Area(
                    code=f"BX-D{d + 1:02d}",
                    name=f"Department {d + 1}",
                    level="department",
                    country_code="BXL",
                    parent_id=regions[d * REGIONS // DEPARTMENTS].id,
                )
                for d in range(DEPARTMENTS)
            ]
            s.add_all(depts)
            s.flush()
            per_dept = VILLAGES // DEPARTMENTS
            village_objs = []
            for d, dept in enumerate(depts):
                for k in range(per_dept):
                    v = Village(
                        code=f"BV{d + 1:02d}{k + 1:03d}",
                        name=f"Village {d + 1}-{k + 1}",
                        area_id=dept.id,
                        lat=5 + d / 10 + k / 1000,
                        lon=-6 - k / 100,
                    )
                    s.add(v)
                    village_objs.append((v, d * REGIONS // DEPARTMENTS, d))
            suppliers = [
                Supplier(code=f"BS{i + 1:02d}", name=f"Cooperative {i + 1}", tier=1 + i % 3)
                for i in range(SUPPLIERS)
            ]
            s.add_all(suppliers)
            s.flush()
            villages = [(v.id, r, d, v.lat, v.lon) for v, r, d in village_objs]
            dept_suppliers = {
                d: rng.sample([x.id for x in suppliers], rng.choice([1, 2]))
                for d in range(DEPARTMENTS)
            }
            for vid, _r, d, _lat, _lon in villages:
                for sid in dept_suppliers[d]:
                    s.add(SupplierVillage(supplier_id=sid, village_id=vid))
            realm = app.config["DIGEST_REALM"]

            def user(username, role, scope, name):
                return add_user(
                    s,
                    username=username,
                    role=role,
                    password=PASSWORD,
                    realm=realm,
                    scope_codes=[scope],
                    full_name=name,
                )

            monitors = {
                d: [
                    user(
                        f"monitor{d + 1:02d}{m + 1}",
                        "monitor",
                        dept.code,
                        f"Monitor {d + 1}-{m + 1}",
                    ).id
                    for m in range(MONITORS_PER_DEPARTMENT)
                ]
                for d, dept in enumerate(depts)
            }
            officers = {r: [] for r in range(REGIONS)}
            officers[0].append(user("officer", "officer", "BX-R1", "Bench Officer").id)
            for r, region in enumerate(regions):
                officers[r].append(
                    user(f"officer-r{r + 1}", "officer", region.code, f"Officer {r + 1}").id
                )
            supervisor = user("supervisor", "supervisor", "BX", "Bench Supervisor")
            add_user(s, username="admin", role="admin", password=PASSWORD, realm=realm,
                     full_name="Bench Administrator")  # fmt: skip
            s.flush()
            seed_providers(s)
            form, version, profile = bench_form_and_profile(s, HAZARDS)
            providers = [
                (p.id, p.area_id, list(p.services or []))
                for p in s.scalars(select(ServiceProvider).order_by(ServiceProvider.id))
            ]
            services = [
                code
                for code, urgent in s.execute(select(ServiceType.code, ServiceType.urgent))
                if not urgent
            ]
            world = World(
                villages=villages,
                dept_suppliers=dept_suppliers,
                monitors=monitors,
                officers=officers,
                supervisor_id=supervisor.id,
                form_id=form.id,
                form_version_id=version.id,
                profile_id=profile.id,
                providers=providers,
                area_of_dept={d: a.id for d, a in enumerate(depts)},
                area_of_region={r: a.id for r, a in enumerate(regions)},
                services=services,
            )
    finally:
        app.extensions["clms_engine"].dispose()
    return world


@dataclass
class Counter:
    """The next id of each table (the bulk load gives ids itself)."""

    ids: dict[str, int] = field(default_factory=dict)

    def next(self, table: str) -> int:
        self.ids[table] = self.ids.get(table, 0) + 1
        return self.ids[table]


_CUMULATIVE: dict[int, tuple[list[str], list[float]]] = {}


def _pick(rng: random.Random, mix: list[tuple[str, float]]) -> str:
    """A key of ``mix`` drawn by its weight."""
    found = _CUMULATIVE.get(id(mix))
    if found is None:
        keys, total, cumulative = [k for k, _ in mix], 0.0, []
        for _, weight in mix:
            total += weight
            cumulative.append(total)
        found = _CUMULATIVE[id(mix)] = (keys, cumulative)
    return rng.choices(found[0], cum_weights=found[1])[0]


class Generator:
    """Generates and loads the rows of one database (see the module documentation)."""

    def __init__(self, world: World, rng: random.Random, now: dt.datetime):
        self.w = world
        self.rng = rng
        self.now = now
        self.ids = Counter()
        self.child_visits = 0
        self.children: dict[int, dict] = {}  # id -> household, village, dept, region, ...
        self.first_labour: dict[int, dict] = {}  # child id -> its first child-labour finding
        self.case_rows: list[dict] = []  # what the follow-ups need of each case
        # villages weighted log-normally: hotspots (cumulative, drawn once per household)
        total, self.village_cumulative = 0.0, []
        for _ in world.villages:
            total += rng.lognormvariate(0, 1)
            self.village_cumulative.append(total)

    # --- shared pieces ---

    def _visit(
        self,
        load: Loader,
        *,
        kind,
        household,
        village,
        dept,
        at,
        monitor_id,
        case_id=None,
        services_received=None,
    ) -> int:
        rng = self.rng
        vid = self.ids.next("visits")  # one submission per visit: the same id for both
        load.add(
            Submission,
            {
                "id": vid,
                "instance_id": f"uuid:bench-{vid}",
                "logical_id": f"uuid:bench-{vid}",
                "deprecated_id": None,
                "current": True,
                "form_id": self.w.form_id,
                "form_version_id": self.w.form_version_id,
                "xml": b"<data/>",
                "xml_sha256": "0" * 64,
                "received_at": at + dt.timedelta(minutes=rng.randint(5, 600)),
                "source": "openrosa",
                "submitter_id": monitor_id,
                "device_id": "bench",
                "status": "parsed",
                "review_reasons": [],
            },
        )
        _vid, _r, _d, vlat, vlon = self.w.villages[village]
        far = rng.random() < 0.05
        minutes = rng.choice([6, 8, 15, 20, 25, 30, 40, 55]) if rng.random() < 0.9 else None
        load.add(
            Visit,
            {
                "id": vid,
                "submission_id": vid,
                "kind": kind,
                "current": True,
                "household_id": household["id"],
                "case_id": case_id,
                "village_id": household["village_id"],
                "supplier_id": household["supplier_id"],
                "monitor_id": monitor_id,
                "visited_at": at,
                "started_at": at if minutes else None,
                "ended_at": at + dt.timedelta(minutes=minutes) if minutes else None,
                "device_id": "bench",
                "consent": True,
                "child_present": True,
                "lat": vlat + (0.2 if far else rng.uniform(-0.01, 0.01)),
                "lon": vlon + rng.uniform(-0.01, 0.01),
                "altitude": 200.0,
                "accuracy": 5.0,
                "services_received": services_received or [],
                "notes": None,
            },
        )
        return vid

    def _child_visit(self, load: Loader, *, visit_id, child, position, at, category) -> int:
        rng = self.rng
        cvid = self.ids.next("child_visits")
        age = max(5, min(17, at.year - child["birth_year"]))
        works = category in LABOUR
        hazards = rng.sample(HAZARDS, rng.randint(1, 2)) if category == "hazardous" else []
        load.add(
            ChildVisit,
            {
                "id": cvid,
                "visit_id": visit_id,
                "child_id": child["id"],
                "position": position,
                "age": age,
                "sex": child["sex"],
                "relationship_to_head": "child",
                "attends_school": rng.random() < (0.6 if works else 0.92),
                "work_activities": rng.sample(ACTIVITIES, rng.randint(1, 3)) if works else [],
                "work_hours_7d": rng.randint(4, 50) if works else rng.choice([0, 0, 2]),
                "chore_hours_7d": rng.randint(22, 30)
                if category == "at_risk"
                else rng.randint(0, 14),
                "hazards": hazards,
                "night_work": False,
                "injured_12m": rng.random() < 0.03,
                "worst_form_signs": ["debt"] if category == "worst_form" else [],
                "nationality": "BXL",
                "migrant_status": None,
                "lives_with_parent": True,
            },
        )
        cid = self.ids.next("classifications")
        rule = RULES.get(category)
        reasons = [{"rule": rule[0], "facts": {"age": age, **rule[1]}}] if rule else []
        load.add(
            Classification,
            {
                "id": cid,
                "child_visit_id": cvid,
                "child_id": child["id"],
                "current": True,
                "rule_set_version": RULE_SET,
                "profile_id": self.w.profile_id,
                "category": category,
                "sdg_871": works,
                "reasons": reasons,
                "risk_factors": [],
                "classified_at": at + dt.timedelta(hours=1),
                "previous_id": None,
                "change_reason": None,
            },
        )
        self.child_visits += 1
        return cid

    # --- phase 1: households, children, visits ---

    def households(self, load: Loader, target: int) -> None:
        rng, w = self.rng, self.w
        village_idx = range(len(w.villages))
        while self.child_visits < target:
            v = rng.choices(village_idx, cum_weights=self.village_cumulative)[0]
            village_id, region, dept, _lat, _lon = w.villages[v]
            hid = self.ids.next("households")
            visits = sorted(
                self.now - dt.timedelta(days=DAYS * rng.random(), minutes=rng.randint(0, 600))
                for _ in range(rng.randint(1, 5))
            )
            household = {
                "id": hid,
                "code": f"HH-B{hid:07d}",
                "village_id": village_id,
                "supplier_id": rng.choice(w.dept_suppliers[dept]),
                "head_name": f"Head {hid}",
                "first_visit_at": visits[0],
                "last_visit_at": visits[-1],
            }
            load.add(Household, household)
            kids = []
            for _ in range(rng.choice([1, 2, 2, 3, 3, 4, 5])):
                cid = self.ids.next("children")
                child = {
                    "id": cid,
                    "child_uid": f"CH-B{cid:08d}",
                    "household_id": hid,
                    "name": f"Child{cid} Bench",
                    "name_key": f"child{cid} bench",
                    "sex": rng.choice(["f", "m"]),
                    "birth_year": rng.randint(2009, 2021),
                    "birth_year_exact": False,
                    "dob": None,
                    "created_at": visits[0],
                    "merged_into_id": None,
                }
                load.add(Child, child)
                self.children[cid] = {
                    "household": household,
                    "village": v,
                    "dept": dept,
                    "region": region,
                    "birth_year": child["birth_year"],
                }
                kids.append((child, rng.random() < WORKING_SHARE))
            monitor = rng.choice(w.monitors[dept])
            for at in visits:
                visit_id = self._visit(
                    load,
                    kind="household",
                    household=household,
                    village=v,
                    dept=dept,
                    at=at,
                    monitor_id=monitor,
                )
                for position, (child, working) in enumerate(kids, 1):
                    if self.child_visits >= target:
                        break
                    category = _pick(rng, WORKING_MIX if working else CLEAR_MIX)
                    clid = self._child_visit(
                        load,
                        visit_id=visit_id,
                        child=child,
                        position=position,
                        at=at,
                        category=category,
                    )
                    if category in LABOUR and child["id"] not in self.first_labour:
                        self.first_labour[child["id"]] = {
                            "at": at,
                            "category": category,
                            "classification_id": clid,
                            "monitor_id": monitor,
                        }
                if self.child_visits >= target:
                    break
            load.maybe_flush()

    # --- phase 2: alerts and cases ---

    def alerts_and_cases(self, load: Loader, n_cases: int) -> dict:
        rng, now = self.rng, self.now
        old_enough = [
            c for c, f in self.first_labour.items() if f["at"] < now - dt.timedelta(days=2)
        ]
        n_cases = min(n_cases, len(old_enough))
        case_children = set(rng.sample(old_enough, n_cases))
        states: dict[str, int] = {}
        for child_id in sorted(self.first_labour, key=lambda c: self.first_labour[c]["at"]):
            found = self.first_labour[child_id]
            info = self.children[child_id]
            household = info["household"]
            severity = SEVERITY[found["category"]]
            ack_in, visit_in = ALERT_DEADLINES[severity]
            created = found["at"] + dt.timedelta(hours=2)
            aid = self.ids.next("alerts")
            alert = {
                "id": aid,
                "source": "visit",
                "status": "new",
                "child_id": child_id,
                "household_id": household["id"],
                "report_id": None,
                "village_id": household["village_id"],
                "supplier_id": household["supplier_id"],
                "category": found["category"],
                "severity": severity,
                "severity_rank": RANK[severity],
                "reasons": [{"rule": RULES[found["category"]][0]}],
                "needs_verification": True,
                "classification_id": found["classification_id"],
                "created_at": created,
                "updated_at": created,
                "last_seen_at": found["at"],
                "ack_due_at": created + ack_in,
                "visit_due_at": created + visit_in,
                "acknowledged_at": None,
                "acknowledged_by_id": None,
                "first_visit_at": None,
                "assigned_to_id": None,
                "dismissed_at": None,
                "dismissed_reason": None,
                "escalated_at": None,
                "closed_at": None,
            }
            officers = self.w.officers[info["region"]]
            if child_id in case_children:
                opened = min(
                    now - dt.timedelta(hours=1), created + dt.timedelta(days=rng.uniform(0.1, 5))
                )
                alert.update(
                    status="case_opened",
                    acknowledged_at=opened - dt.timedelta(hours=1),
                    acknowledged_by_id=officers[0],
                    first_visit_at=opened,
                    closed_at=opened,
                    updated_at=opened,
                )
                load.add(Alert, alert)
                state = _pick(rng, STATE_MIX)
                states[state] = states.get(state, 0) + 1
                self._case(load, alert, info, found, state, opened)
            else:
                roll = rng.random()
                if roll < 0.4 and created < now - ack_in:
                    alert.update(
                        status="dismissed",
                        acknowledged_at=created + ack_in / 2,
                        dismissed_at=created + ack_in,
                        dismissed_reason="not confirmed",
                        closed_at=created + ack_in,
                    )
                elif roll < 0.75:
                    alert.update(
                        status="acknowledged",
                        acknowledged_at=min(now, created + ack_in * rng.uniform(0.1, 1.3)),
                        acknowledged_by_id=officers[0],
                    )
                load.add(Alert, alert)
            load.add(
                AlertEvent,
                {
                    "alert_id": aid,
                    "at": created,
                    "user_id": None,
                    "action": "raised",
                    "detail": {"severity": severity},
                },
            )
            load.maybe_flush()
        return {"cases": n_cases, "alerts": len(self.first_labour), "by_state": states}

    def _case(
        self, load: Loader, alert: dict, info: dict, found: dict, state: str, opened: dt.datetime
    ) -> None:
        rng, now, w = self.rng, self.now, self.w
        case_id = self.ids.next("cases")
        officers = w.officers[info["region"]]
        officer = rng.choice(officers) if rng.random() < 0.9 else None
        actor = officer or officers[0]
        monitor = found["monitor_id"]
        depth = DEPTH[state]
        # the steps' times: sorted points between the opening and now
        points = sorted(rng.uniform(0, 1) for _ in range(6))
        span = (now - opened).total_seconds()
        at = [opened] + [opened + dt.timedelta(seconds=span * p * 0.95) for p in points]
        events: list[tuple] = []  # (at, user, action, from, to, detail)

        def event(t, action, frm=None, to=None, detail=None, user=actor):
            events.append((t, user, action, frm, to, detail or {}))

        event(
            opened,
            "opened",
            None,
            "verification",
            {"alert_id": alert["id"], "category": alert["category"], "severity": alert["severity"]},
        )
        risk = None
        plan_approved = None
        delivered_all = state in ("closure_review", "closed", "reopened")
        if depth >= 1:
            event(
                at[1],
                "verified",
                "verification",
                "assessment",
                {"findings": "Child seen at work in the plot."},
            )
        if depth >= 2:
            risk = rng.choice(["high", "medium", "medium", "low"])
            load.add(
                Assessment,
                {
                    "case_id": case_id,
                    "assessed_at": at[2],
                    "assessed_by_id": actor,
                    "risk_level": risk,
                    "child_views": "Wants to go back to school.",
                    "family_situation": "Parents farm; debts after a poor harvest.",
                    "schooling": rng.choice(SCHOOLING),
                    "schooling_notes": None,
                    "immediate_safety": rng.choice(["safe", "safe", "at_risk", "in_danger"]),
                    "safety_notes": None,
                    "response_types": ["education", "economic_strengthening"],
                    "response_level": "remediation",
                },
            )
            event(at[2], "assessed", "assessment", "action_plan", {"risk_level": risk})
            plan_id = self.ids.next("action_plans")
            approved = depth >= 3
            plan_approved = at[3] if approved else None
            load.add(
                ActionPlan,
                {
                    "id": plan_id,
                    "case_id": case_id,
                    "version": 1,
                    "status": "approved" if approved else "draft",
                    "needs_approval": alert["category"] == "worst_form",
                    "created_at": at[2],
                    "created_by_id": actor,
                    "submitted_at": at[3] if approved else None,
                    "submitted_by_id": actor if approved else None,
                    "decided_at": at[3] if approved else None,
                    "decided_by_id": w.supervisor_id if approved else None,
                    "decision_note": None,
                },
            )
            dept, region = info["dept"], info["region"]
            near = {w.area_of_dept[dept], w.area_of_region[region], None}
            for code in rng.sample(w.services, rng.randint(1, 3)):
                candidates = [
                    p for p, area, offered in w.providers if code in offered and area in near
                ]
                if not candidates:
                    continue
                provider = rng.choice(candidates)
                psid = self.ids.next("planned_services")
                delivered = approved and (delivered_all or rng.random() < 0.4)
                delivered_at = at[3] + (at[4] - at[3]) * rng.random() if delivered else None
                load.add(
                    PlannedService,
                    {
                        "id": psid,
                        "case_id": case_id,
                        "plan_id": plan_id,
                        "service_code": code,
                        "provider_id": provider,
                        "due_on": (at[2] + dt.timedelta(days=30)).date(),
                        "status": "delivered"
                        if delivered
                        else ("referred" if approved else "planned"),
                        "closed_reason": None,
                        "delivered_at": delivered_at,
                        "delivered_source": "referral" if delivered else None,
                        "notes": None,
                        "created_at": at[2],
                    },
                )
                event(at[2], "service_planned", detail={"service": code})
                if not approved:
                    continue
                consent_id = self.ids.next("consents")
                load.add(
                    Consent,
                    {
                        "id": consent_id,
                        "case_id": case_id,
                        "provider_id": provider,
                        "given_by": "guardian",
                        "method": "verbal",
                        "shares": ["first_name", "age", "sex", "village"],
                        "notes": None,
                        "recorded_at": at[3],
                        "recorded_by_id": actor,
                        "withdrawn_at": None,
                        "withdrawn_by_id": None,
                    },
                )
                event(at[3], "consent_recorded", detail={"provider_id": provider})
                status = "done" if delivered else rng.choice(["pending", "accepted", "accepted"])
                load.add(
                    Referral,
                    {
                        "case_id": case_id,
                        "planned_service_id": psid,
                        "provider_id": provider,
                        "service_code": code,
                        "urgent": False,
                        "status": status,
                        "outcome": "service_provided" if delivered else "referred",
                        "consent_id": consent_id,
                        "override_reason": None,
                        "override_by_id": None,
                        "shared": ["first_name", "age", "sex", "village"],
                        "message": "Please see the child this month.",
                        "created_at": at[3],
                        "created_by_id": actor,
                        "respond_by": at[3] + dt.timedelta(days=7),
                        "complete_by": None,
                        "responded_at": at[3] + dt.timedelta(days=2)
                        if status != "pending"
                        else None,
                        "responded_by_id": None,
                        "rejection_reason": None,
                        "done_at": delivered_at,
                        "service_date": delivered_at.date() if delivered else None,
                        "outcome_note": None,
                        "revoked_at": None,
                        "revoked_reason": None,
                        "escalated_at": None,
                    },
                )
                event(at[3], "referred", detail={"service": code, "provider_id": provider})
                if delivered:
                    event(delivered_at, "referral_done", detail={"service": code})
            if approved:
                event(at[3], "plan_submitted", detail={"plan_version": 1})
                event(
                    at[3],
                    "plan_approved",
                    "action_plan",
                    "implementation",
                    {"plan_version": 1},
                    user=w.supervisor_id,
                )
        for _ in range(rng.randint(0, 3)):
            event(
                opened + (now - opened) * rng.random(),
                "note",
                detail={"text": "Called the family; all well."},
            )
        closed_at = outcome = None
        if depth >= 4 and state != "transferred":
            event(at[4], "closure_proposed", "implementation", "closure_review")
        if depth >= 5:
            closed_at, outcome = at[5], rng.choice(["remediated", "remediated", "aged_out"])
            event(
                at[5],
                "closed",
                "closure_review",
                "closed",
                {"outcome": outcome},
                user=w.supervisor_id,
            )
        reopened_at = None
        if state == "reopened":
            reopened_at = at[6]
            event(at[6], "reopened", "closed", "reopened", {"reason": "found at work again"})
        if state == "transferred":
            event(
                at[4],
                "transferred",
                "implementation",
                "transferred",
                {"to_agency": "Social services of Nextland"},
            )
            load.add(
                CaseTransfer,
                {
                    "case_id": case_id,
                    "kind": "external",
                    "to_agency": "Social services of Nextland",
                    "to_country": "NXL",
                    "to_village_id": None,
                    "from_village_id": alert["village_id"],
                    "to_contact": "+000 000 000",
                    "reason": "The family moved.",
                    "shared": ["first_name", "age"],
                    "consent_basis": "consent",
                    "transferred_at": at[4],
                    "transferred_by_id": actor,
                },
            )
        changed = {0: opened, 1: at[1], 2: at[2], 3: at[3], 4: at[4], 5: at[5]}[depth]
        if state == "reopened":
            changed = reopened_at
        if state == "transferred":
            changed = at[4]
        days = {
            "verification": 7,
            "assessment": 7,
            "reopened": 3,
            "action_plan": 14,
            "closure_review": 7,
        }
        step_due = changed + dt.timedelta(days=days[state]) if state in days else None
        followup_due = None
        if state in ("implementation", "closure_review"):
            followup_due = now + dt.timedelta(days=rng.uniform(-20, 30))
        load.add(
            Case,
            {
                "id": case_id,
                "case_number": f"CL-{case_id:06d}",
                "child_id": alert["child_id"],
                "village_id": alert["village_id"],
                "supplier_id": alert["supplier_id"],
                "state": state,
                "version": len(events),
                "category": alert["category"],
                "risk_level": risk,
                "opened_at": opened,
                "opened_by_id": actor,
                "state_changed_at": changed,
                "updated_at": max(e[0] for e in events),
                "closed_at": closed_at,
                "alert_id": alert["id"],
                "officer_id": officer,
                "monitor_id": monitor,
                "verified_at": at[1] if depth >= 1 else None,
                "verification": "confirmed" if depth >= 1 else None,
                "closure_proposed_at": at[4] if depth >= 4 and state != "transferred" else None,
                "outcome": outcome,
                "closure_reason": "Back at school for two terms." if outcome else None,
                "lessons_learned": "Early contact with the school helped." if outcome else None,
                "root_causes": ["household_income", "school_costs"] if outcome else [],
                "closed_by_id": w.supervisor_id if outcome else None,
                "reopened_at": reopened_at,
                "reopen_count": 1 if reopened_at else 0,
                "step_due_at": step_due,
                "step_escalated_at": None,
                "next_followup_due_at": followup_due,
                "followup_reminded_at": None,
            },
        )
        for t, user, action, frm, to, detail in sorted(events, key=lambda e: e[0]):
            load.add(
                CaseEvent,
                {
                    "case_id": case_id,
                    "at": t,
                    "user_id": user,
                    "action": action,
                    "from_state": frm,
                    "to_state": to,
                    "detail": detail,
                },
            )
        if state in FOLLOWED_UP:
            end = closed_at or (at[4] if state == "transferred" else now)
            self.case_rows.append(
                {
                    "id": case_id,
                    "child_id": alert["child_id"],
                    "monitor_id": monitor,
                    "start": plan_approved,
                    "end": end,
                }
            )

    # --- phase 3: follow-up visits ---

    def followups(self, load: Loader, target: int) -> int:
        rng = self.rng
        made = 0
        if not self.case_rows:
            return 0
        while self.child_visits < target:
            c = rng.choice(self.case_rows)
            info = self.children[c["child_id"]]
            at = c["start"] + (c["end"] - c["start"]) * rng.random()
            received = rng.choice([["school_enrolment"], ["school_kit_costs"], ["none"], ["none"]])
            visit_id = self._visit(
                load,
                kind="followup",
                household=info["household"],
                village=info["village"],
                dept=info["dept"],
                at=at,
                monitor_id=c["monitor_id"],
                case_id=c["id"],
                services_received=received,
            )
            category = _pick(rng, FOLLOWUP_MIX)
            child = {"id": c["child_id"], "birth_year": info["birth_year"], "sex": None}
            self._child_visit(
                load, visit_id=visit_id, child=child, position=1, at=at, category=category
            )
            made += 1
            load.maybe_flush()
        return made


def prepare_database(url: str, n_cases: int, n_visits: int, seed: int, analyze: bool) -> dict:
    """Make and load one database; returns what the bench needs to know of it."""
    rng = random.Random(seed)
    t0 = time.perf_counter()
    world = make_world(url, rng)
    now = dt.datetime.now(dt.UTC)
    gen = Generator(world, rng, now)
    followups = int(n_cases * 0.74 * FOLLOWUPS_PER_CASE)
    household_target = max(n_visits // 2, n_visits - followups)
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            load = Loader(conn)
            gen.households(load, household_target)
            load.flush()
            print(
                f"  households, children, visits: {gen.child_visits:,} child visits "
                f"({time.perf_counter() - t0:.0f} s)",
                flush=True,
            )
            made = gen.alerts_and_cases(load, n_cases)
            load.flush()
            print(
                f"  {made['alerts']:,} alerts, {made['cases']:,} cases "
                f"({time.perf_counter() - t0:.0f} s)",
                flush=True,
            )
            n_followups = gen.followups(load, n_visits)
            load.flush()
            if engine.dialect.name == "postgresql":
                for table in load.counts:
                    if load.counts[table]:
                        sql = (
                            f"SELECT setval('{table}_id_seq', "  # noqa: S608
                            f"(SELECT max(id) FROM {table}))"
                        )
                        conn.execute(text(sql))
        t_load = time.perf_counter() - t0
        # the kept facts the indicators read (issue 19): the rows above were loaded with Core
        # INSERTs, not through the pipeline that keeps them, so they are made as
        # 'clms kpis rebuild-facts' makes them
        t1 = time.perf_counter()
        with Session(engine) as session:
            facts = rebuild(session)
            session.commit()
        t_facts = time.perf_counter() - t1
        print(f"  {facts:,} kept facts made in {t_facts:.1f} s", flush=True)
        if engine.dialect.name == "postgresql":
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text("VACUUM ANALYZE"))
        elif analyze:
            with engine.begin() as conn:
                conn.execute(text("ANALYZE"))
        with engine.connect() as conn:
            officer_cases = conn.scalar(
                text(
                    "SELECT count(*) FROM cases JOIN villages v ON v.id = cases.village_id "
                    "JOIN areas a ON a.id = v.area_id JOIN areas r ON r.id = a.parent_id "
                    "WHERE r.code = 'BX-R1'"
                )
            )
            officer_case_ids = [
                r[0]
                for r in conn.execute(
                    text(
                        "SELECT cases.id FROM cases JOIN villages v ON v.id = cases.village_id "
                        "JOIN areas a ON a.id = v.area_id JOIN areas r ON r.id = a.parent_id "
                        "WHERE r.code = 'BX-R1'"
                    )
                )
            ]
            current_child_visits = conn.scalar(
                text(
                    "SELECT count(*) FROM child_visits cv JOIN visits v ON v.id = cv.visit_id "
                    "WHERE v.current"
                )
            )
            # the supervisor's scope is the country: every case with a village
            cases_in_scope = conn.scalar(
                text("SELECT count(*) FROM cases WHERE village_id IS NOT NULL")
            )
    finally:
        engine.dispose()
    provider = add_provider_user(url)
    return {
        "provider": provider,
        "rows": dict(load.counts),
        "child_visits": gen.child_visits,
        "followup_child_visits": n_followups,
        "current_child_visits": current_child_visits,
        "cases_in_scope": cases_in_scope,
        "alerts": made["alerts"],
        "cases": made["cases"],
        "cases_by_state": dict(sorted(made["by_state"].items())),
        "officer_cases": officer_cases,
        "officer_case_ids": officer_case_ids,
        "load_seconds": round(t_load, 1),
        "facts_rebuild_seconds": round(t_facts, 1),
        "seconds": round(time.perf_counter() - t0, 1),
    }


def add_provider_user(url: str) -> dict:
    """A user ``provider`` for the organisation with the most referrals (its home page reads the
    most); returns the organisation's code and its referrals by status."""
    from sqlalchemy import func, select

    from clms.app import create_app
    from clms.auth.users import add_user
    from clms.db import session_scope
    from clms.models import Referral, ServiceProvider

    app = create_app({"DATABASE_URL": url, "SECRET_KEY": SECRET_KEY, "ODK_VALIDATE": "0"})
    try:
        with session_scope(app) as s:
            busiest = s.execute(
                select(ServiceProvider.id, ServiceProvider.code)
                .join(Referral, Referral.provider_id == ServiceProvider.id)
                .group_by(ServiceProvider.id, ServiceProvider.code)
                .order_by(func.count().desc(), ServiceProvider.id)
                .limit(1)
            ).one()
            add_user(s, username="provider", role="provider", password=PASSWORD,
                     realm=app.config["DIGEST_REALM"], provider_code=busiest.code,
                     full_name="Bench Provider")  # fmt: skip
            statuses = dict(
                s.execute(
                    select(Referral.status, func.count())
                    .where(Referral.provider_id == busiest.id)
                    .group_by(Referral.status)
                ).all()
            )
    finally:
        app.extensions["clms_engine"].dispose()
    return {"code": busiest.code, "referrals": dict(sorted(statuses.items()))}


# --- measuring -----------------------------------------------------------------------------------


class ProcessRss:
    """Samples the RSS of each process of a tree every ``interval`` seconds: the first sample,
    the peak of each process, and of their sum. The process that served the request is the one
    that used the most CPU meanwhile."""

    def __init__(self, root_pid: int, interval: float = 0.05):
        self.root_pid = root_pid
        self.interval = interval
        self.before: dict[int, int] = {}
        self.peak: dict[int, int] = {}
        self.cpu_before: dict[int, int] = {}
        self.cpu_after: dict[int, int] = {}
        self.sum_before = 0
        self.sum_peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="rss")

    def _sample(self) -> None:
        total = 0
        for pid in process_tree(self.root_pid):
            kib = rss_kib(pid)
            total += kib
            self.before.setdefault(pid, kib)
            self.peak[pid] = max(self.peak.get(pid, 0), kib)
        if not self.sum_before:
            self.sum_before = total
        self.sum_peak = max(self.sum_peak, total)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    @staticmethod
    def _cpu_ticks(pid: int) -> int:
        try:
            with open(f"/proc/{pid}/stat", "rb") as fh:
                fields = fh.read().rsplit(b")", 1)[1].split()
            return int(fields[11]) + int(fields[12])  # utime + stime
        except (OSError, IndexError, ValueError):
            return 0

    def __enter__(self) -> ProcessRss:
        self._sample()
        self.cpu_before = {pid: self._cpu_ticks(pid) for pid in self.before}
        self._thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()
        self.cpu_after = {pid: self._cpu_ticks(pid) for pid in self.peak}

    def summary(self) -> dict:
        growth = {pid: self.peak[pid] - self.before.get(pid, 0) for pid in self.peak}
        busiest = max(
            growth, key=lambda pid: self.cpu_after.get(pid, 0) - self.cpu_before.get(pid, 0)
        )
        return {
            "tree_before_mib": round(self.sum_before / 1024, 1),
            "tree_peak_mib": round(self.sum_peak / 1024, 1),
            "worker_before_mib": round(self.before.get(busiest, 0) / 1024, 1),
            "worker_peak_mib": round(self.peak[busiest] / 1024, 1),
            "worker_growth_mib": round(growth[busiest] / 1024, 1),
        }


def latencies(
    session: requests.Session,
    base_url: str,
    paths,
    n: int,
    warmup: int,
    headers: dict | None = None,
) -> dict:
    """``n`` GETs (after ``warmup``), ``paths`` a list or a function of the request's index."""
    lat, errors = [], []
    for i in range(warmup + n):
        path = paths(i) if callable(paths) else paths
        t0 = time.perf_counter()
        r = session.get(base_url + path, headers=headers, timeout=900, allow_redirects=False)
        _ = r.content
        ms = (time.perf_counter() - t0) * 1000
        if r.status_code != 200:
            errors.append(f"{path}: {r.status_code} {r.text[:200]!r}")
        if i >= warmup:
            lat.append(ms)
    lat.sort()
    return {
        "requests": len(lat),
        "p50_ms": round(percentile(lat, 50), 1),
        "p95_ms": round(percentile(lat, 95), 1),
        "max_ms": round(lat[-1], 1) if lat else None,
        "errors": len(errors),
        "error_samples": errors[:3],
    }


def export(session: requests.Session, server: Gunicorn, path: str, fmt: str) -> dict:
    """Download an export to the end, timing it and sampling the server's memory."""
    n_bytes = newlines = rows = 0
    tail = b""
    tmp = None
    with ProcessRss(server.proc.pid) as rss:
        t0 = time.perf_counter()
        r = session.get(server.base_url + path, stream=True, timeout=3600)
        first = None
        if fmt == "xlsx":
            tmp = tempfile.NamedTemporaryFile(prefix="clms-bench-", suffix=".xlsx", delete=False)  # noqa: SIM115
        for chunk in r.iter_content(chunk_size=1 << 16):
            if first is None:
                first = time.perf_counter() - t0
            n_bytes += len(chunk)
            if tmp is not None:
                tmp.write(chunk)
            else:
                newlines += chunk.count(b"\n")
        seconds = time.perf_counter() - t0
    status = r.status_code
    if tmp is not None:
        tmp.close()
        try:
            with zipfile.ZipFile(tmp.name) as book, book.open("xl/worksheets/sheet1.xml") as sheet:
                while data := sheet.read(1 << 20):
                    rows += (tail + data).count(b"<row ")
                    tail = data[-4:]
        finally:
            os.unlink(tmp.name)
        rows -= 1  # the header
    else:
        rows = newlines - 1
    return {
        "status": status,
        "seconds": round(seconds, 2),
        "first_byte_s": round(first or 0, 3),
        "bytes": n_bytes,
        "rows": rows,
        "rows_per_s": round(rows / seconds) if seconds else None,
        **rss.summary(),
    }


def export_in_process(url: str, fmt: str, path: str) -> dict:
    """The supervisor's child-visit export (default filters) written in this process to
    nowhere, by the ``previous`` path (:func:`alerts.kpis.child_visit_rows` through
    :mod:`clms.exports`) or the ``database`` one (:mod:`clms.export_sql`): seconds, CPU
    seconds of this process (SQLite runs in it; PostgreSQL's server does not), rows, and the
    growth of this process's peak RSS (getrusage: it only grows, so a later run shows less)."""
    from alerts.kpis import CHILD_VISIT_COLUMNS, child_visit_rows, child_visit_table, parse_filters
    from clms.db import make_engine, read_only
    from clms.export_sql import csv_stream, xlsx_stream
    from clms.exports import csv_chunks, xlsx_chunks
    from clms.models import User, utcnow

    engine = make_engine(url)
    rows = n_bytes = 0
    tail = b""
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    try:
        with Session(engine) as session:
            read_only(session)
            user = session.scalar(select(User).where(User.username == "supervisor"))
            filters = parse_filters({}, utcnow().date())
            t0, cpu0 = time.perf_counter(), time.process_time()
            if path == "previous":
                found = child_visit_rows(session, user, filters)
                if fmt == "csv":
                    chunks = csv_chunks(CHILD_VISIT_COLUMNS, found)
                else:
                    chunks = xlsx_chunks([("Child visits", CHILD_VISIT_COLUMNS, found)])
            else:
                table = child_visit_table(session, user, filters)
                if fmt == "csv":
                    chunks = csv_stream(session, table)
                else:
                    chunks = xlsx_stream(session, "Child visits", table)
            sink = tempfile.TemporaryFile() if fmt == "xlsx" else None  # noqa: SIM115
            for chunk in chunks:
                n_bytes += len(chunk)
                if sink is not None:
                    sink.write(chunk)
                else:
                    rows += chunk.count(b"\n")
            seconds, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    finally:
        engine.dispose()
    if sink is not None:
        with sink, zipfile.ZipFile(sink) as book, book.open("xl/worksheets/sheet1.xml") as sheet:
            while data := sheet.read(1 << 20):
                rows += (tail + data).count(b"<row ")
                tail = data[-4:]
    rows -= 1  # the header
    growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before
    return {
        "seconds": round(seconds, 2),
        "cpu_s": round(cpu, 2),
        "rows": rows,
        "bytes": n_bytes,
        "rows_per_s": round(rows / seconds) if seconds else None,
        "rss_growth_mib": round(growth / 1024, 1),
    }


def bench_size(kind: str, label: str, n_cases: int, n_visits: int, args, stop) -> dict:
    print(f"\n=== {kind}, {label}: {n_cases:,} cases, {n_visits:,} child visits ===", flush=True)
    database = Database(kind)
    server = None
    try:
        setup = prepare_database(database.url, n_cases, n_visits, args.seed, args.sqlite_analyze)
        ids = setup.pop("officer_case_ids")
        print(f"  loaded in {setup['seconds']:.0f} s: {setup['rows']}", flush=True)
        RESULTS.mkdir(parents=True, exist_ok=True)
        log = RESULTS / f"gunicorn-cases-{kind}.log"
        env = {
            "CLMS_DATABASE_URL": database.url,
            "CLMS_SECRET_KEY": SECRET_KEY,
            "CLMS_ODK_VALIDATE": "0",
            # long exports: a gthread worker is not killed for a slow request, but be sure
            "GUNICORN_CMD_ARGS": "--timeout 3600",
        }
        server = Gunicorn(
            "clms.app:create_app()", env, workers=args.workers, threads=args.threads, log=log
        )
        server.start("/login")
        print(f"  gunicorn up: {server.command}", flush=True)
        base = server.base_url
        out: dict = {"database": kind, "size": label, "setup": setup, "pages": {}, "exports": {}}

        def record(name: str, res: dict) -> None:
            out["pages"][name] = res
            print(
                f"  {name:28s} p50 {res['p50_ms']:9.1f} ms  p95 {res['p95_ms']:9.1f} ms  "
                f"max {res['max_ms']:9.1f} ms  errors {res['errors']}"
                + (f"  e.g. {res['error_samples'][0]}" if res["errors"] else ""),
                flush=True,
            )
            if stop.is_set():
                raise KeyboardInterrupt

        if args.only_exports:
            return _exports(out, server, setup, database, args, stop)
        web = requests.Session()
        record("floor: GET /login", latencies(web, base, "/login", args.requests, args.warmup))
        sign_in(web, base, "officer")
        record("officer: home", latencies(web, base, "/", args.requests, args.warmup))
        record("officer: case list", latencies(web, base, "/cases", args.requests, args.warmup))
        record(
            "officer: case list filtered",
            latencies(
                web, base, "/cases?state=implementation&overdue=true", args.requests, args.warmup
            ),
        )
        pick = random.Random(args.seed + 1)
        record(
            "officer: case page",
            latencies(
                web, base, lambda _i: f"/cases/{pick.choice(ids)}", args.requests, args.warmup
            ),
        )
        web.close()

        # the other roles' home pages: their work queues over the whole of their scope
        for role in ("provider", "admin"):
            other = requests.Session()
            sign_in(other, base, role)
            record(f"{role}: home", latencies(other, base, "/", args.requests, args.warmup))
            other.close()

        sup = requests.Session()
        sign_in(sup, base, "supervisor")
        record("supervisor: home", latencies(sup, base, "/", args.requests, args.warmup))
        r = requests.post(
            base + "/api/v1/sessions",
            json={"username": "supervisor", "password": PASSWORD},
            timeout=60,
        )
        r.raise_for_status()
        bearer = {"Authorization": f"Bearer {r.json()['token']}"}
        record(
            "supervisor: KPI page",
            latencies(sup, base, "/kpis", args.kpi_requests, args.kpi_warmup),
        )
        api = requests.Session()
        record(
            "supervisor: GET /api/v1/kpis",
            latencies(
                api, base, "/api/v1/kpis", args.kpi_requests, args.kpi_warmup, headers=bearer
            ),
        )
        sup.close()
        return _exports(out, server, setup, database, args, stop)
    finally:
        if server is not None:
            server.stop()
        database.close()


def _exports(out: dict, server, setup: dict, database, args, stop) -> dict:
    """The supervisor's downloads, read to the end, and the child-visit export in process by
    the previous and the database-written path."""
    sup = requests.Session()
    sign_in(sup, server.base_url, "supervisor")
    formats = ("csv",) if args.no_xlsx else ("csv", "xlsx")
    downloads = [(fmt, f"/exports/child-visits.{fmt}", setup["current_child_visits"])
                 for fmt in formats]  # fmt: skip
    downloads += [(f"cases {fmt}", f"/cases/export.{fmt}?state=all", setup["cases_in_scope"])
                  for fmt in formats]  # fmt: skip
    for name, path, expected in downloads:
        res = export(sup, server, path, name.split()[-1])
        res["expected_rows"] = expected
        out["exports"][name] = res
        print(
            f"  export {name}: {res['rows']:,} rows, {res['bytes'] / 2**20:,.1f} MiB in "
            f"{res['seconds']:.1f} s ({res['rows_per_s']:,} rows/s); worker RSS "
            f"{res['worker_before_mib']:.0f} -> peak {res['worker_peak_mib']:.0f} MiB "
            f"(+{res['worker_growth_mib']:.0f}); status {res['status']}",
            flush=True,
        )
        if stop.is_set():
            raise KeyboardInterrupt
    sup.close()
    # the same child-visit export in this process, by the path before issue 19 (Python
    # writes every cell) and by the database-written one, on the same data
    out["paths"] = {}
    for fmt in formats:
        for path in ("previous", "database"):
            res = export_in_process(database.url, fmt, path)
            out["paths"][f"{fmt} {path}"] = res
            print(
                f"  in process, {fmt} by the {path} path: {res['rows']:,} rows in "
                f"{res['seconds']:.1f} s ({res['rows_per_s']:,} rows/s, CPU "
                f"{res['cpu_s']:.1f} s), peak RSS +{res['rss_growth_mib']:.0f} MiB",
                flush=True,
            )
            if stop.is_set():
                raise KeyboardInterrupt
    return out


def sign_in(web: requests.Session, base: str, username: str) -> None:
    """Sign ``web`` in as ``username`` through the sign-in form (with its CSRF token)."""
    page = web.get(base + "/login", timeout=60)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    if token is None:
        raise RuntimeError(f"the sign-in form has no CSRF token: {page.status_code}")
    r = web.post(
        base + "/login",
        data={"username": username, "password": PASSWORD, "csrf_token": token.group(1)},
        allow_redirects=False,
        timeout=60,
    )
    if r.status_code != 302:
        raise RuntimeError(f"{username} sign-in: {r.status_code} {r.text[:300]}")


# --- report --------------------------------------------------------------------------------------


def table(results: list[dict]) -> str:
    """One line per database and measure: baseline size against the full size."""
    lines = [
        "| database | measure | baseline size: p50 | p95 | full size: p50 | p95 "
        "| full/baseline p95 |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for kind in dict.fromkeys(r["database"] for r in results):
        runs = {r["size"]: r for r in results if r["database"] == kind}
        base, full = runs.get("baseline"), runs.get("full")
        if not base or not full:
            continue
        for name in full["pages"]:
            b, f = base["pages"][name], full["pages"][name]
            unit = 1000.0 if "KPI" in name or "kpis" in name else 1.0
            fmt = (lambda v: f"{v / 1000:.2f} s") if unit > 1 else (lambda v: f"{v:.1f} ms")
            paged = "case" in name or "home" in name
            slow = " **slow**" if f["p95_ms"] > SLOW_P95_MS and paged else ""
            lines.append(
                f"| {kind} | {name} | {fmt(b['p50_ms'])} | {fmt(b['p95_ms'])} "
                f"| {fmt(f['p50_ms'])} | {fmt(f['p95_ms'])}{slow} "
                f"| {f['p95_ms'] / b['p95_ms']:.1f}x |"
            )
    lines += [
        "",
        "| database | export | rows | MiB | seconds | rows/s | first byte s "
        "| serving worker RSS before -> peak MiB (growth) | all gunicorn RSS before -> peak MiB |",
        "|---|---|---:|---:|---:|---:|---:|---|---|",
    ]
    for r in results:
        for fmt, e in r["exports"].items():
            lines.append(
                f"| {r['database']} | {fmt.upper()}, {r['size']} | {e['rows']:,} "
                f"| {e['bytes'] / 2**20:,.1f} | {e['seconds']:.1f} | {e['rows_per_s']:,} "
                f"| {e['first_byte_s']:.2f} | {e['worker_before_mib']:.0f} -> "
                f"{e['worker_peak_mib']:.0f} (+{e['worker_growth_mib']:.0f}) "
                f"| {e['tree_before_mib']:.0f} -> {e['tree_peak_mib']:.0f} |"
            )
    lines += [
        "",
        "| database | child-visit export in process | rows | seconds | rows/s | CPU s "
        "| speed-up | peak RSS growth MiB |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        paths = r.get("paths", {})
        for name, e in paths.items():
            fmt, path = name.split()
            before = paths.get(f"{fmt} previous")
            gain = f"{before['seconds'] / e['seconds']:.1f}x" if before and e["seconds"] else ""
            lines.append(
                f"| {r['database']} | {fmt.upper()} by the {path} path, {r['size']} "
                f"| {e['rows']:,} | {e['seconds']:.2f} | {e['rows_per_s']:,} | {e['cpu_s']:.2f} "
                f"| {gain if path == 'database' else ''} | {e['rss_growth_mib']:.0f} |"
            )
    return "\n".join(lines)


def charts(results: list[dict]) -> dict[str, str]:
    """Five SVG charts: page and home p95 in ms, KPI and export seconds, export memory growth,
    the child-visit export's rows per second by the previous and the database-written path."""

    def cases_label(r):
        return f"{r['setup']['cases']:,} cases"

    def visits_label(r):
        return f"{r['setup']['child_visits']:,} visits"

    pages, homes, kpis, memory, paths = [], [], [], [], []
    for kind in dict.fromkeys(r["database"] for r in results):
        runs = [r for r in results if r["database"] == kind]
        for name in (
            "floor: GET /login",
            "officer: case list",
            "officer: case list filtered",
            "officer: case page",
        ):
            if measured := [r for r in runs if name in r["pages"]]:  # --only-exports: none
                pages.append(
                    (
                        f"{kind}: {name}",
                        [(cases_label(r), r["pages"][name]["p95_ms"]) for r in measured],
                    )
                )
        for role in ("officer", "supervisor", "provider", "admin"):
            name = f"{role}: home"
            if measured := [r for r in runs if name in r["pages"]]:
                homes.append(
                    (
                        f"{kind}: {name}",
                        [(cases_label(r), r["pages"][name]["p95_ms"]) for r in measured],
                    )
                )
        for name in ("supervisor: KPI page", "supervisor: GET /api/v1/kpis"):
            if measured := [r for r in runs if name in r["pages"]]:
                kpis.append(
                    (
                        f"{kind}: {name} (p95)",
                        [(visits_label(r), r["pages"][name]["p95_ms"] / 1000) for r in measured],
                    )
                )
        for name in dict.fromkeys(n for r in runs for n in r.get("paths", {})):
            fmt, path = name.split()
            paths.append(
                (
                    f"{kind}: {fmt.upper()}, {path} path",
                    [(visits_label(r), r["paths"][name]["rows_per_s"]) for r in runs
                     if name in r.get("paths", {})],
                )
            )  # fmt: skip
        for fmt in ("csv", "xlsx"):
            done = [r for r in runs if fmt in r["exports"]]
            if done:
                kpis.append(
                    (
                        f"{kind}: child-visit export {fmt.upper()} (to the last byte)",
                        [(visits_label(r), r["exports"][fmt]["seconds"]) for r in done],
                    )
                )
                memory.append(
                    (
                        f"{kind}: {fmt.upper()} export, RSS of gunicorn (master + 2 workers)",
                        [
                            (f"{visits_label(r)}: before", r["exports"][fmt]["tree_before_mib"])
                            for r in done
                        ]
                        + [
                            (f"{visits_label(r)}: peak", r["exports"][fmt]["tree_peak_mib"])
                            for r in done
                        ],
                    )
                )
    return {
        "pages.svg": bar_chart_svg("Case pages, p95 latency (one client)", pages, "ms"),
        "homes.svg": bar_chart_svg("Home pages (work queues), p95 latency", homes, "ms"),
        "kpis.svg": bar_chart_svg("KPIs (p95) and the child-visit export", kpis, "s"),
        "export-memory.svg": bar_chart_svg(
            "Child-visit export: memory of gunicorn before and during it", memory, "MiB"
        ),
        "export-paths.svg": bar_chart_svg(
            "Child-visit export in process: rows per second, before and after issue 19",
            paths,
            "rows/s",
        ),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.cases", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--db", default="sqlite,postgresql", help="sqlite,postgresql or one")
    parser.add_argument("--cases", type=int, default=50_000, help="cases, full size")
    parser.add_argument("--visits", type=int, default=1_000_000, help="child visits, full size")
    parser.add_argument("--base-cases", type=int, default=1_000, help="cases, baseline size")
    parser.add_argument(
        "--base-visits", type=int, default=100_000, help="child visits, baseline size"
    )
    parser.add_argument("--sizes", default="baseline,full", help="baseline,full or one")
    parser.add_argument("--requests", type=int, default=100, help="per case-page scenario")
    parser.add_argument("--kpi-requests", type=int, default=10, help="per KPI scenario")
    parser.add_argument("--warmup", type=int, default=5, help="unmeasured, per page scenario")
    parser.add_argument("--kpi-warmup", type=int, default=1, help="unmeasured, per KPI scenario")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker")
    parser.add_argument("--no-xlsx", action="store_true", help="skip the XLSX export")
    parser.add_argument(
        "--only-exports", action="store_true", help="measure the exports only (no pages, no KPIs)"
    )
    parser.add_argument(
        "--sqlite-analyze",
        action="store_true",
        help="run ANALYZE on SQLite after loading (the product does not)",
    )
    parser.add_argument("--seed", type=int, default=20261202)
    parser.add_argument("--out", type=Path, default=RESULTS / "cases.json")
    parser.add_argument(
        "--report",
        type=Path,
        nargs="+",
        metavar="JSON",
        help="measure nothing: print the table of earlier runs' JSON files together and write "
        "their charts (to --out's folder and name)",
    )
    args = parser.parse_args(argv)
    if args.report:
        results = [r for path in args.report for r in json.loads(path.read_text())["results"]]
        print(table(results))
        for name, svg in charts(results).items():
            (args.out.parent / f"{args.out.stem}-{name}").write_text(svg)
        return 0
    kinds = [k.strip() for k in args.db.split(",") if k.strip()]
    sizes = {"baseline": (args.base_cases, args.base_visits), "full": (args.cases, args.visits)}
    wanted = [s.strip() for s in args.sizes.split(",") if s.strip()]

    stop = threading.Event()

    def _terminate(signum, _frame):
        stop.set()
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, _terminate)
    print(
        f"bench.cases: baseline {args.base_cases:,} cases / {args.base_visits:,} child visits, "
        f"full {args.cases:,} / {args.visits:,}; {args.requests} requests per page, "
        f"{args.kpi_requests} per KPI scenario; gunicorn {args.workers} workers x "
        f"{args.threads} threads; {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"load average {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    results = []
    started = time.perf_counter()
    try:
        for kind in kinds:
            for size in wanted:
                n_cases, n_visits = sizes[size]
                results.append(bench_size(kind, size, n_cases, n_visits, args, stop))
    except KeyboardInterrupt:
        print("\ninterrupted; gunicorn and PostgreSQL were stopped", file=sys.stderr)
        return 130

    text_table = table(results)
    print(
        f"\nCases, KPIs and exports ({time.perf_counter() - started:.0f} s in all; load "
        f"average now {os.getloadavg()[0]:.1f})\n"
    )
    print(text_table)
    save_results(args.out, args, results, text_table)
    for name, svg in charts(results).items():
        (args.out.parent / f"{args.out.stem}-{name}").write_text(svg)
    print(f"\nwritten to {args.out} and {args.out.parent}/{args.out.stem}-*.svg")
    failed = (
        any(p["errors"] for r in results for p in r["pages"].values())
        or any(
            e["status"] != 200 or e["rows"] != e["expected_rows"]
            for r in results
            for e in r["exports"].values()
        )
        or any(
            e["rows"] != r["setup"]["current_child_visits"]
            for r in results
            for e in r.get("paths", {}).values()
        )
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
