"""``clms demo``: a working system with realistic data, in one command.

What it does, in order:

a. brings the database schema up to date (``CLMS_DATABASE_URL`` or the instance SQLite file);
b. if the database already holds the demo's data (its brands), builds nothing and serves it;
c. loads places from the shared Who's On First localities: four regions of the cocoa belt of
   Côte d'Ivoire, about 240 villages spread over their departments (:mod:`clms.places`);
d. adds three brands and suppliers in tiers: exporters and grinders (tier 1), a cooperative per
   department (tier 2) and farmer groups (tier 3); cooperatives and groups buy in villages
   (``SupplierVillage``), which decides which suppliers a monitor's form lists;
e. adds users with random passwords: an admin, a monitor per ten villages (scoped to those
   villages), an officer per department, a supervisor per region, a service provider and a user
   per brand;
f. publishes our three forms (``forms.publish.ensure_builtin_forms``);
g. starts the server and sends household visits (and ~50 concern reports) as the monitors
   would from ODK Collect: HTTP Digest, ``POST /submission``, four at a time. Each submission is
   built from the published form's own primary instance, so it has the form's real structure;
h. prints the address and a username and password for each role, then serves until Ctrl+C
   (or stops, with ``--no-serve``).

The data are generated from a seeded :class:`random.Random`: the same ``--seed`` gives the same
households, children and answers (dates are relative to the day of the run). Passwords come
from :mod:`secrets` and are shown once. About 15% of the children are in child labour by the ILO
statistical rules (domain.md section 3), mostly hazardous tasks of cocoa farming; a very few show
signs of worst forms. One monitor works carelessly (very short visits, a GPS point now and then
far from the village) so that the monitor-quality indicators have something to find.

Follow-ups: :func:`followup_values` makes a ``clms_followup`` answer for an open case, and
:func:`_followup_jobs` sends some for the open cases it finds, once cases exist (they are opened
by officers, so a fresh demo has none).
"""

from __future__ import annotations

import copy
import datetime as dt
import math
import random
import secrets
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext
from lxml import etree
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from clms.models import (
    Alert,
    Area,
    Brand,
    Case,
    Form,
    PlannedService,
    Submission,
    Supplier,
    SupplierVillage,
    User,
    Village,
)

XFORMS_NS = "http://www.w3.org/2002/xforms"
JR_NS = "http://openrosa.org/javarosa"

HOUSEHOLD_FORM = "clms_household_visit"
FOLLOWUP_FORM = "clms_followup"
REPORT_FORM = "clms_report"

# The regions as the WOF file names them (Bas-Sassandra: Nawa, San-Pédro, Gbôklé; Fromager: Gôh;
# Sud-Bandama: Lôh-Djiboua).
DEMO_REGIONS = ["Bas-Sassandra", "Haut-Sassandra", "Fromager", "Sud-Bandama"]
DEMO_VILLAGES = 240
VILLAGES_PER_MONITOR = 10
SEND_WORKERS = 4

BRANDS = [
    ("BR-CACAO-NOBLE", "Cacao Noble Chocolatiers"),
    ("BR-SWEETLEAF", "Sweetleaf Confectionery"),
    ("BR-KAKAOHAUS", "Kakaohaus Schokoladen"),
]
TIER1 = [
    ("T1-LAGUNE-EXPORT", "Lagune Cocoa Export SA (exporter)"),
    ("T1-SPD-GRINDING", "San-Pédro Grinding SARL (grinder)"),
]
COOP_NAMES = [
    "SCOOPS Espoir de {}",
    "Coopérative Agricole Union de {}",
    "SCOOP-CA Bénéfice de {}",
    "Coopérative des Planteurs de {}",
]


def _names(text: str) -> list[str]:
    return text.split()


# Names heard in the cocoa belt: Baoulé and Bété families, Malinké (Dioula) and Burkinabè
# (Mossi) families who came to grow cocoa. Nationality as an ISO 3166 alpha-3 code.
COMMUNITIES = {
    "baoule": {
        "weight": 0.33,
        "family": _names(
            "Kouassi Kouamé Koffi Yao Konan Kouadio N'Guessan Kra Brou Assié Kanga Aka"
        ),
        "male": _names("Kouassi Kouamé Yao Koffi Konan Kouadio N'Dri Kobenan Jean-Baptiste Serge"),
        "female": _names("Adjoua Affoué Amenan Akissi Ahou Aya Amoin Amlan Marie-Josée Clarisse"),
        "nationality": [("CIV", 1.0)],
    },
    "bete": {
        "weight": 0.22,
        "family": _names("Gnahoré Zadi Dago Gueu Zokou Dédi Gnaoré Séri Digbeu Boti Zéhi Gohi"),
        "male": _names("Gnahoré Zadi Séri Didier Gervais Paulin Landry Hervé Blaise"),
        "female": _names("Zézé Lou Gnépa Viviane Odette Prisca Nadège Sandrine"),
        "nationality": [("CIV", 1.0)],
    },
    "malinke": {
        "weight": 0.2,
        "family": _names("Koné Traoré Coulibaly Diabaté Touré Bamba Cissé Fofana Doumbia"),
        "male": _names("Mamadou Moussa Seydou Ibrahim Lassina Souleymane Bakary Drissa Karim"),
        "female": _names("Aminata Fatoumata Mariam Awa Kadidja Salimata Massandjé Djeneba"),
        "nationality": [("CIV", 0.8), ("MLI", 0.2)],
    },
    "burkinabe": {
        "weight": 0.25,
        "family": _names("Ouédraogo Sawadogo Zongo Kaboré Ilboudo Nikiéma Tapsoba Sanou Zida"),
        "male": _names("Issouf Boukary Salif Adama Harouna Noufou Abdoulaye Rasmané Inoussa"),
        "female": _names("Rasmata Salimata Aïcha Zenabo Awa Safiatou Bintou Pauline"),
        "nationality": [("BFA", 0.65), ("CIV", 0.35)],
    },
}

# Choice order of the select_multiple questions (data dictionary and forms): answers are written in
# this order, as ODK writes them.
CHOICE_ORDER = {
    "work_activities": ("own_farm", "family_business", "sell_goods", "paid_work", "none"),
    "hazards": (
        "land_clearing", "bush_burning", "agrochemicals", "heavy_loads", "sharp_tools",
        "climbing_heights", "motorised_tools", "working_alone_remote", "dust_fumes_gas",
        "extreme_temperature", "loud_noise_vibration", "chemicals_explosives",
        "underwater_or_at_sea", "underground", "heavy_machinery", "abuse_at_work", "none",
    ),
    "worst_form_signs": (
        "cannot_leave", "debt", "recruited_by_third_party", "separated_from_family",
        "sexual_exploitation", "illicit_activities", "none",
    ),
    "concern": (
        "child_working", "hazardous_work", "not_in_school", "violence_abuse", "trafficking",
        "sexual_exploitation", "other",
    ),
}  # fmt: skip


def _ordered(name: str, codes: Iterable[str]) -> str:
    """A select_multiple answer: codes in the form's choice order, space-separated."""
    order = CHOICE_ORDER[name]
    return " ".join(sorted(codes, key=lambda c: order.index(c) if c in order else len(order)))


HAZARD_WEIGHTS = [
    ("sharp_tools", 0.42),
    ("heavy_loads", 0.28),
    ("agrochemicals", 0.14),
    ("land_clearing", 0.12),
    ("bush_burning", 0.04),
    ("climbing_heights", 0.05),
    ("working_alone_remote", 0.04),
    ("motorised_tools", 0.02),
    ("extreme_temperature", 0.02),
]
WORST_FORM_PATTERNS = [
    ["recruited_by_third_party", "separated_from_family"],
    ["debt", "cannot_leave"],
    ["recruited_by_third_party", "debt", "cannot_leave"],
    ["separated_from_family"],
]
REPORTER_TYPES = [
    ("community_member", 0.33),
    ("teacher", 0.2),
    ("monitor", 0.15),
    ("worker", 0.1),
    ("child", 0.1),
    ("other", 0.12),
]
CONCERNS = [
    ("child_working", 0.4),
    ("hazardous_work", 0.24),
    ("not_in_school", 0.2),
    ("violence_abuse", 0.06),
    ("trafficking", 0.04),
    ("sexual_exploitation", 0.02),
    ("other", 0.04),
]
REPORT_TEXTS = {
    "child_working": [
        "Des enfants travaillent dans les plantations pendant les heures de classe.",
        "Children seen carrying cocoa pods on the road to the village every morning.",
    ],
    "hazardous_work": [
        "Un garçon écabosse avec une machette chez un planteur du village.",
        "A boy was seen spraying a plot without any protection.",
        "Des enfants portent des sacs de cacao trop lourds jusqu'au point de collecte.",
    ],
    "not_in_school": [
        "Plusieurs enfants du campement ne vont plus à l'école depuis la rentrée.",
        "Children of the camp have not been to school since the start of term.",
    ],
    "violence_abuse": ["Un enfant travaillant chez un planteur montre des traces de coups."],
    "trafficking": [
        "Des enfants venus d'un autre pays sont arrivés avec un intermédiaire, sans leurs parents.",
    ],
    "sexual_exploitation": ["A girl working at the market may be exploited; please check."],
    "other": ["Un enfant blessé au pied n'a pas reçu de soins."],
}


# --- progress ----------------------------------------------------------------------------------


class ProgressLine:
    """A progress line on stderr: counts, rate and time left; redrawn in place on a terminal."""

    def __init__(self, label: str, total: int, stream=None):
        self.label, self.total = label, total
        self.stream = stream or sys.stderr
        self.started = time.monotonic()
        self.last_draw = 0.0
        self.last_tenth = -1
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.done = 0

    def __call__(self, done: int, total: int | None = None) -> None:
        self.update(done, total)

    def update(self, done: int, total: int | None = None) -> None:
        self.done = done
        if total is not None:
            self.total = total
        now = time.monotonic()
        if self.tty:
            if now - self.last_draw >= 0.2 or done >= self.total:
                self.last_draw = now
                self.stream.write("\r" + self._text(now) + "\x1b[K")
                self.stream.flush()
        else:  # a log file: one line per tenth
            tenth = int(10 * done / self.total) if self.total else 10
            if tenth != self.last_tenth:
                self.last_tenth = tenth
                self.stream.write(self._text(now) + "\n")
                self.stream.flush()

    def _text(self, now: float) -> str:
        elapsed = max(now - self.started, 1e-6)
        rate = self.done / elapsed
        if self.done >= self.total:
            tail = f"done in {elapsed:.1f} s"
        elif rate > 0:
            tail = f"ETA {_duration((self.total - self.done) / rate)}"
        else:
            tail = "ETA ?"
        return f"{self.label}: {self.done}/{self.total} ({rate:.1f}/s, {tail})"

    def finish(self) -> None:
        if self.done < self.total:
            self.update(self.total)
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def _say(text: str) -> None:
    click.echo(text, err=True)


# --- the plan: what is built ---------------------------------------------------------------------


@dataclass
class MonitorPlan:
    username: str
    full_name: str
    password: str
    village_codes: list[str]
    device_id: str
    careless: bool = False


@dataclass
class VillagePoint:
    code: str
    name: str
    lat: float
    lon: float
    suppliers: list[tuple[str, int]]  # (code, tier) of the suppliers that buy there
    # how far from the village point households are drawn: within its own cell (the server finds
    # a visit's village from its GPS point), 1 km at most
    spread_m: float = 1000.0


@dataclass
class Account:
    role: str
    username: str
    password: str
    note: str = ""


@dataclass
class DemoPlan:
    accounts: list[Account] = field(default_factory=list)
    monitors: list[MonitorPlan] = field(default_factory=list)
    villages: dict[str, VillagePoint] = field(default_factory=dict)


def _password() -> str:
    return secrets.token_urlsafe(12)


def _weighted(rng: random.Random, pairs: list[tuple[str, float]]) -> str:
    return rng.choices([p[0] for p in pairs], weights=[p[1] for p in pairs])[0]


def _person(rng: random.Random, community: str | None = None, sex: str | None = None) -> str:
    community = community or _weighted(rng, [(k, v["weight"]) for k, v in COMMUNITIES.items()])
    names = COMMUNITIES[community]
    sex = sex or rng.choice(["male", "female"])
    return f"{rng.choice(names[sex])} {rng.choice(names['family'])}"


def build_places_and_people(
    session: Session, shared_data: Path, realm: str, rng: random.Random
) -> DemoPlan:
    """Steps c-e: places, brands, suppliers and users; returns who can sign in and where."""
    from clms.operations.users import add_user
    from clms.places import county_names_from_geoboundaries, load_localities

    csv_path = shared_data / "localities" / "wof_ci_localities.csv"
    adm2 = shared_data / "boundaries" / "CIV-ADM2.geojson"
    if not csv_path.exists():
        raise click.ClickException(
            f"The localities file {csv_path} is missing; set CLMS_SHARED_DATA to the folder that "
            "holds localities/wof_ci_localities.csv."
        )
    full_names = {}
    if adm2.exists():
        full_names = county_names_from_geoboundaries(adm2, ["Haut-Sassa", "Loh-Djibou"])
    progress = ProgressLine("Villages", DEMO_VILLAGES)
    result = load_localities(
        session,
        csv_path,
        DEMO_REGIONS,
        DEMO_VILLAGES,
        progress,
        on_error="skip",
        county_names=full_names,
    )
    progress.finish()
    n_areas, n_villages = result
    for bad in result.skipped:
        _say(f"  skipped {bad}")
    _say(f"Places: {n_areas} areas, {n_villages} villages ({', '.join(DEMO_REGIONS)}).")
    if adm2.exists():
        from geo.boundaries import import_boundaries, read_boundaries
        from geo.cells import derive_cells

        # the present-day régions of geoBoundaries are the WOF file's counties (our departments)
        found = read_boundaries(adm2, level="department", country_code="CIV")
        progress = ProgressLine("Boundaries", len(found.features))
        attached = import_boundaries(session, found, progress, update_only=True)
        progress.finish()
        progress = ProgressLine("Village cells", 1)
        cells = derive_cells(session, progress=progress)
        progress.finish()
        _say(f"Boundaries: {attached.updated} departments from {adm2.name}; {cells.summary()}.")

    areas = {a.id: a for a in session.scalars(select(Area))}
    villages = session.scalars(select(Village).order_by(Village.code)).all()
    by_department: dict[int, list[Village]] = {}
    for v in villages:
        # the few towns the file gives a region but no department are loaded, not visited
        if areas[v.area_id].level == "department":
            by_department.setdefault(v.area_id, []).append(v)
    departments = sorted(by_department, key=lambda a: areas[a].code)
    for members in by_department.values():
        # north to south, so that a monitor's or a farmer group's villages are neighbours
        members.sort(key=lambda v: (-v.lat, v.lon))
    villages = [v for a in departments for v in by_department[a]]

    # d. brands and suppliers in tiers
    for code, name in BRANDS:
        session.add(Brand(code=code, name=name))
    for code, name in TIER1:
        session.add(Supplier(code=code, name=name, tier=1))
    session.flush()
    village_suppliers: dict[int, list[tuple[str, int]]] = {v.id: [] for v in villages}
    n_suppliers = len(TIER1)
    chain: list[tuple[Supplier, list[Supplier]]] = []  # each cooperative and its farmer groups
    for i, area_id in enumerate(departments):
        area = areas[area_id]
        short = _user_part(area).upper()
        coop = Supplier(
            code=f"T2-COOP-{short}"[:64],
            name=COOP_NAMES[i % len(COOP_NAMES)].format(area.name),
            tier=2,
            kind="cooperative",
        )
        session.add(coop)
        session.flush()
        n_suppliers += 1
        chain.append((coop, []))
        members = by_department[area_id]
        # the cooperative buys in four villages out of five; farmer groups in a stretch each
        for j, v in enumerate(members):
            if j % 5 != 4:
                session.add(SupplierVillage(supplier_id=coop.id, village_id=v.id))
                village_suppliers[v.id].append((coop.code, 2))
        n_groups = max(1, min(3, len(members) // 8))
        stretch = math.ceil(len(members) / n_groups)
        for g in range(n_groups):
            part = members[g * stretch : (g + 1) * stretch]
            if not part:
                continue
            group = Supplier(
                code=f"T3-GRP-{short}-{g + 1}"[:64],
                name=f"Groupement des producteurs de {part[0].name}",
                tier=3,
                kind="farmer group",
            )
            session.add(group)
            session.flush()
            n_suppliers += 1
            chain[-1][1].append(group)
            for v in part:
                session.add(SupplierVillage(supplier_id=group.id, village_id=v.id))
                village_suppliers[v.id].append((group.code, 3))
    session.flush()
    # the links: the first exporter buys from the cooperatives of the first half of the
    # departments, the second from the second half (one department in common); each cooperative
    # buys from its department's farmer groups. Each brand buys from one or two exporters, so the
    # brands reach different parts of the cocoa belt.
    from clms.models import BrandSupplier, SupplierLink
    from clms.supply import brand_supplier_ids

    brand_ids = dict(session.execute(select(Brand.code, Brand.id)).all())
    tier1_ids = dict(
        session.execute(select(Supplier.code, Supplier.id).where(Supplier.tier == 1)).all()
    )
    first, second = TIER1[0][0], TIER1[1][0]
    buys = {BRANDS[0][0]: [first], BRANDS[1][0]: [second], BRANDS[2][0]: [first, second]}
    for brand_code, exporters in buys.items():
        for exporter in exporters:
            session.add(
                BrandSupplier(brand_id=brand_ids[brand_code], supplier_id=tier1_ids[exporter])
            )
    half = math.ceil(len(chain) / 2)
    n_links = sum(len(e) for e in buys.values())
    for j, (coop, groups) in enumerate(chain):
        for exporter in ([first] if j < half else []) + ([second] if j >= half - 1 else []):
            session.add(SupplierLink(buyer_id=tier1_ids[exporter], seller_id=coop.id))
            n_links += 1
        for group in groups:
            session.add(SupplierLink(buyer_id=coop.id, seller_id=group.id))
            n_links += 1
    session.flush()
    reach = ", ".join(
        f"{code} {len(brand_supplier_ids(session, brand_ids[code]))}" for code, _name in BRANDS
    )
    _say(
        f"Supply chain: {len(BRANDS)} brands, {n_suppliers} suppliers in 3 tiers, {n_links} links; "
        f"suppliers each brand reaches: {reach}."
    )

    # e. users
    plan = DemoPlan()
    spreads = _spreads(villages)
    for v in villages:
        plan.villages[v.code] = VillagePoint(
            v.code, v.name, v.lat, v.lon, village_suppliers[v.id], spreads[v.id]
        )
    monitor_groups: list[list[Village]] = []
    for area_id in departments:
        members = by_department[area_id]
        count = max(1, round(len(members) / VILLAGES_PER_MONITOR))
        size = math.ceil(len(members) / count)
        monitor_groups += [members[k : k + size] for k in range(0, len(members), size)]
    regions = sorted(
        {areas[a].parent_id for a in departments if areas[a].level == "department"},
        key=lambda a: areas[a].code,
    )
    people: list[tuple[str, str, list[str], str | None, str]] = [("admin", "admin", [], None, "")]
    for k, group in enumerate(monitor_groups, start=1):
        codes = [v.code for v in group]
        dept = areas[group[0].area_id]
        people.append(
            ("monitor", f"monitor{k:02d}", codes, None, f"{len(codes)} villages in {dept.name}")
        )
    for area_id in departments:
        area = areas[area_id]
        people.append(("officer", f"officer-{_user_part(area)}", [area.code], None, area.name))
    for area_id in regions:
        area = areas[area_id]
        people.append(
            ("supervisor", f"supervisor-{_user_part(area)}", [area.code], None, area.name)
        )
    from clms.demo_cases import provider_usernames, seed_providers

    shown_providers = seed_providers(session)
    provider_of: dict[str, str] = {}
    for username, code in provider_usernames(session):
        provider_of[username] = code
        people.append(("provider", username, [], None, f"service provider {code}"))
    for code, name in BRANDS:
        people.append(("brand", f"brand-{code.removeprefix('BR-').lower()}", [], code, name))

    progress = ProgressLine("Users", len(people))
    careless_index = len(monitor_groups) // 2 + 1 if len(monitor_groups) > 2 else None
    social = shown_providers.get("social")
    # the provider account shown is the social centre's: its referrals come from every case
    people.sort(key=lambda p: p[0] == "provider" and provider_of.get(p[1]) != social)
    for done, (role, username, scopes, brand_code, note) in enumerate(people, start=1):
        password = _password()
        full_name = _person(rng)
        add_user(
            session,
            username=username,
            role=role,
            password=password,
            realm=realm,
            scope_codes=scopes,
            brand_code=brand_code,
            provider_code=provider_of.get(username),
            full_name=full_name,
        )
        plan.accounts.append(Account(role, username, password, note))
        if role == "monitor":
            plan.monitors.append(
                MonitorPlan(
                    username=username,
                    full_name=full_name,
                    password=password,
                    village_codes=scopes,
                    device_id="collect:"
                    + "".join(rng.choices("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", k=16)),
                    careless=(len(plan.monitors) + 1 == careless_index),
                )
            )
        progress(done)
    progress.finish()
    _say(
        f"Users: {len(people)} ({len(plan.monitors)} monitors, {len(departments)} officers, "
        f"{len(regions)} supervisors, 1 admin, {len(provider_of)} service providers, "
        f"{len(BRANDS)} brand users)."
    )
    return plan


def _user_part(area: Area) -> str:
    """The last part of an area code, lower case: ``CI-BAS-SASSANDRA-NAWA`` -> ``nawa``."""
    parent_code = area.parent.code if area.parent is not None else ""
    rest = area.code.removeprefix(parent_code).strip("-") or area.code
    return rest.lower()


# --- generated answers ---------------------------------------------------------------------------


@dataclass
class ChildAnswers:
    """One child's answers, as the form holds them (codes, not labels)."""

    name: str
    sex: str
    age: int
    dob: dt.date | None
    relationship: str
    attends_school: bool
    work_activities: list[str]  # ["none"] when the child did not work
    work_hours_7d: int
    chore_hours_7d: int
    hazards: list[str]
    night_work: bool
    injured_12m: bool
    worst_form_signs: list[str]
    nationality: str
    migrant_status: str
    lives_with_parent: bool

    @property
    def works(self) -> bool:
        return self.work_activities != ["none"]


@dataclass
class HouseholdAnswers:
    village: str
    supplier: str
    household_code: str
    household_head: str
    gps: tuple[float, float, float, float]
    consent: bool
    children: list[ChildAnswers]
    start: dt.datetime
    end: dt.datetime
    device_id: str
    username: str


class Generator:
    """Realistic answers from a seeded random source (the same seed gives the same answers)."""

    def __init__(self, seed: int, today: dt.date | None = None):
        self.rng = random.Random(seed)
        self.today = today or dt.datetime.now(dt.UTC).date()

    # a visit in the last six months, in working hours (Côte d'Ivoire is on UTC all year)
    def _when(self, minutes: float) -> tuple[dt.datetime, dt.datetime]:
        rng = self.rng
        day = self.today - dt.timedelta(days=rng.randint(1, 182))
        start = dt.datetime.combine(day, dt.time(7, 30), tzinfo=dt.UTC) + dt.timedelta(
            minutes=rng.randint(0, 9 * 60),
            seconds=rng.randint(0, 59),
            milliseconds=rng.randint(0, 999),
        )
        return start, start + dt.timedelta(minutes=minutes, seconds=rng.randint(0, 59))

    def household(
        self, monitor: MonitorPlan, village: VillagePoint, number: int
    ) -> HouseholdAnswers:
        rng = self.rng
        community = _weighted(rng, [(k, v["weight"]) for k, v in COMMUNITIES.items()])
        family = rng.choice(COMMUNITIES[community]["family"])
        head_sex = "female" if rng.random() < 0.12 else "male"
        head = f"{rng.choice(COMMUNITIES[community][head_sex])} {family}"
        consent = rng.random() >= 0.03
        n = rng.choices([1, 2, 3, 4, 5], weights=[22, 30, 24, 15, 9])[0] if consent else 0
        minutes = 10 + 7 * n + rng.uniform(-3, 8)
        if monitor.careless:
            minutes = rng.uniform(3, 7)
        start, end = self._when(minutes)
        children = [self.child(community, family, end.date()) for _ in range(n)]
        if village.suppliers and rng.random() < 0.85:
            # farmer groups (tier 3) sell on to the cooperative: most households name the group
            weights = [3 if tier == 3 else 2 for _, tier in village.suppliers]
            supplier = rng.choices([code for code, _ in village.suppliers], weights=weights)[0]
        else:
            supplier = "none"
        far = monitor.careless and rng.random() < 0.3
        return HouseholdAnswers(
            village=village.code,
            supplier=supplier,
            household_code=f"HH-{village.code}-{number}",
            household_head=head,
            gps=_near(rng, village.lat, village.lon, 5000 if far else village.spread_m),
            consent=consent,
            children=children,
            start=start,
            end=end,
            device_id=monitor.device_id,
            username=monitor.username,
        )

    def child(self, community: str, family: str, on: dt.date) -> ChildAnswers:
        """A child's answers at a visit on ``on`` (the date of birth, when known, fits the age)."""
        rng = self.rng
        names = COMMUNITIES[community]
        sex = rng.choice(["female", "male"])
        age = rng.randint(5, 17)
        relationship = rng.choices(
            ["son_daughter", "grandchild", "niece_nephew", "other_relative", "not_related"],
            weights=[70, 10, 10, 6, 4],
        )[0]
        lives_with_parent = relationship == "son_daughter" or rng.random() < 0.2
        nationality = _weighted(rng, names["nationality"])
        if nationality == "CIV":
            migrant_status = "national"
        else:
            migrant_status = rng.choices(
                ["migrant_documented", "migrant_undocumented", "unknown"], weights=[55, 30, 15]
            )[0]

        # Child labour by the ILO rules is about 15% of children, rising with age.
        p_labour = 0.10 if age <= 9 else 0.16 if age <= 11 else 0.18 if age <= 14 else 0.21
        worst = rng.random() < 0.003
        labour = worst or rng.random() < p_labour
        hazards: list[str] = []
        signs: list[str] = []
        night = injured = False
        if worst:
            signs = list(rng.choice(WORST_FORM_PATTERNS))
            relationship = rng.choice(["not_related", "other_relative"])
            lives_with_parent = False
            if nationality == "CIV" and rng.random() < 0.6:
                nationality, migrant_status = "BFA", "migrant_undocumented"
            hours = rng.randint(30, 60)
            hazards = self._hazards()
            night = rng.random() < 0.3
            injured = rng.random() < 0.4
        elif labour:
            hazardous = age >= 15 or rng.random() < (0.7 if age >= 12 else 0.6)
            if hazardous and not (age >= 15 and rng.random() < 0.08):
                hazards = self._hazards()
                hours = rng.randint(3, 26)
                injured = "sharp_tools" in hazards and rng.random() < 0.25
                night = rng.random() < 0.04
            elif age >= 15:
                hours = rng.randint(43, 55)  # long hours, no hazardous task
            elif age >= 12:
                hours = rng.randint(14, 30)
            else:
                hours = rng.randint(1, 12)
        else:
            # permitted light work from 12, ordinary jobs from 15; none under 12
            p_work = 0.0 if age < 12 else 0.35 if age < 15 else 0.55
            hours = 0
            if rng.random() < p_work:
                hours = rng.randint(2, 13) if age < 15 else rng.randint(4, 30)
        if hours > 0:
            activities = ["own_farm"] if rng.random() < 0.9 else []
            for extra, p in (("sell_goods", 0.1), ("family_business", 0.08), ("paid_work", 0.05)):
                if rng.random() < p or (labour and extra == "paid_work" and rng.random() < 0.1):
                    activities.append(extra)
            activities = activities or ["own_farm"]
        else:
            activities = ["none"]

        chores = rng.randint(0, 6) if age < 8 else rng.randint(2, 14 if sex == "male" else 18)
        if rng.random() < (0.07 if sex == "female" else 0.03):
            chores = rng.randint(21, 28)
        p_school = 0.88 if age < 15 else 0.74
        if age == 5:
            p_school = 0.7
        if labour:
            p_school = 0.62
        if worst:
            p_school = 0.1
        return ChildAnswers(
            name=f"{rng.choice(names[sex])} {family}",
            sex=sex,
            age=age,
            dob=_birth_date(rng, age, on) if rng.random() < 0.35 else None,
            relationship=relationship,
            attends_school=rng.random() < p_school,
            work_activities=activities,
            work_hours_7d=hours,
            chore_hours_7d=chores,
            hazards=hazards,
            night_work=night,
            injured_12m=injured or (hours > 0 and rng.random() < 0.015),
            worst_form_signs=signs or ["none"],
            nationality=nationality,
            migrant_status=migrant_status,
            lives_with_parent=lives_with_parent,
        )

    def _hazards(self) -> list[str]:
        rng = self.rng
        count = rng.choices([1, 2, 3], weights=[60, 30, 10])[0]
        chosen: list[str] = []
        while len(chosen) < count:
            h = _weighted(rng, HAZARD_WEIGHTS)
            if h not in chosen:
                chosen.append(h)
        return chosen

    def report(self, monitor: MonitorPlan, village: VillagePoint) -> dict[str, str]:
        rng = self.rng
        first = _weighted(rng, CONCERNS)
        concern = [first]
        if rng.random() < 0.35:
            second = _weighted(rng, CONCERNS)
            if second != first:
                concern.append(second)
        start, end = self._when(rng.uniform(3, 12))
        return {
            "start": _stamp(start),
            "end": _stamp(end),
            "deviceid": monitor.device_id,
            "username": monitor.username,
            "reporter_type": _weighted(rng, REPORTER_TYPES),
            "village": village.code,
            "concern": _ordered("concern", concern),
            "child_age_estimate": str(rng.randint(7, 17)) if rng.random() < 0.7 else "",
            "description": rng.choice(REPORT_TEXTS[first]),
            "contact": rng.choice(["", "", "", "Par le moniteur du village", "Via the teacher"]),
        }


def _birth_date(rng: random.Random, age: int, on: dt.date) -> dt.date:
    """A date of birth that makes the child exactly ``age`` completed years old on ``on``."""
    try:
        anniversary = on.replace(year=on.year - age)
    except ValueError:  # 29 February
        anniversary = on.replace(year=on.year - age, day=28)
    return anniversary - dt.timedelta(days=rng.randint(0, 360))


def _spreads(villages: list[Village]) -> dict[int, float]:
    """Per village id: 1 km, or 40% of the distance to the nearest other village when closer, so
    that the households drawn around a village stay in its cell (half-way to the neighbour)."""
    import numpy as np

    lat = np.radians([v.lat for v in villages])
    lon = np.radians([v.lon for v in villages])
    out: dict[int, float] = {}
    for i, v in enumerate(villages):
        # equirectangular distances: exact enough at a few km
        dx = (lon - lon[i]) * np.cos(lat[i])
        dy = lat - lat[i]
        d = np.sqrt(dx * dx + dy * dy) * 6_371_000
        d[i] = np.inf
        out[v.id] = float(min(1000.0, 0.4 * d.min())) if len(villages) > 1 else 1000.0
    return out


def _near(
    rng: random.Random, lat: float, lon: float, metres: float
) -> tuple[float, float, float, float]:
    """A GPS reading within ``metres`` of a point: (lat, lon, altitude m, accuracy m)."""
    distance = metres * math.sqrt(rng.random())
    bearing = rng.uniform(0, 2 * math.pi)
    dlat = distance * math.cos(bearing) / 111_320
    dlon = distance * math.sin(bearing) / (111_320 * math.cos(math.radians(lat)))
    return (
        round(lat + dlat, 6),
        round(lon + dlon, 6),
        round(rng.uniform(80, 320), 1),
        round(rng.uniform(3, 14), 1),
    )


def _stamp(when: dt.datetime) -> str:
    """An ODK timestamp: local time with milliseconds and offset (UTC in Côte d'Ivoire)."""
    return when.isoformat(timespec="milliseconds")


def household_values(h: HouseholdAnswers) -> tuple[dict[str, str], list[dict[str, str]]]:
    """The form's leaf values for a household visit, and one dict per child repeat.

    Questions a real phone would skip (not relevant) are empty, as ODK Collect sends them.
    """
    yes = {True: "yes", False: "no"}
    lat, lon, alt, acc = h.gps
    values = {
        "start": _stamp(h.start),
        "end": _stamp(h.end),
        "deviceid": h.device_id,
        "username": h.username,
        "village": h.village,
        "supplier": h.supplier,
        "household_code": h.household_code,
        "consent": yes[h.consent],
        "household_head": h.household_head if h.consent else "",
        "gps": f"{lat} {lon} {alt} {acc}" if h.consent else "",
        "instanceName": f"HH {h.household_code}",
    }
    children = []
    for c in h.children:
        works = c.works
        children.append(
            {
                "child_name": c.name,
                "sex": c.sex,
                "dob": c.dob.isoformat() if c.dob else "",
                "age": str(c.age),
                "relationship": c.relationship,
                "attends_school": yes[c.attends_school],
                "work_activities": _ordered("work_activities", c.work_activities),
                "work_hours_7d": str(c.work_hours_7d) if works else "",
                "chore_hours_7d": str(c.chore_hours_7d),
                "hazards": _ordered("hazards", c.hazards or ["none"]) if works else "",
                "night_work": yes[c.night_work] if works else "",
                "injured_12m": yes[c.injured_12m] if works else "",
                "worst_form_signs": _ordered("worst_form_signs", c.worst_form_signs),
                "nationality": c.nationality,
                "migrant_status": c.migrant_status,
                "lives_with_parent": yes[c.lives_with_parent],
            }
        )
    return values, children


def followup_values(
    rng: random.Random,
    case_number: str,
    monitor: MonitorPlan,
    services: list[str],
    when: dt.datetime,
    recovering: bool = False,
    planned: Iterable[str] = (),
) -> dict[str, str]:
    """A ``clms_followup`` answer for an open case. A ``recovering`` child (the remediation is
    working) is at school and out of work, and the monitor sees the ``planned`` services
    received; the others are mostly better, some still working."""
    better = recovering or rng.random() < 0.7
    works = not recovering and (not better or rng.random() < 0.3)
    hours = (rng.randint(2, 10) if better else rng.randint(10, 30)) if works else 0
    if recovering:
        received = [s for s in planned if s in services][:3] or ["none"]
    else:
        received = [s for s in services if s != "none" and rng.random() < 0.25][:2] or ["none"]
    return {
        "start": _stamp(when),
        "end": _stamp(when + dt.timedelta(minutes=rng.randint(8, 25))),
        "deviceid": monitor.device_id,
        "username": monitor.username,
        "case": case_number,
        "child_present": "yes" if recovering or rng.random() < 0.9 else "no",
        "attends_school": "yes" if better or rng.random() < 0.3 else "no",
        "work_hours_7d": str(hours),
        "chore_hours_7d": str(rng.randint(3, 14)),
        # asked only when the child worked
        "hazards": ("none" if better else _weighted(rng, HAZARD_WEIGHTS)) if hours else "",
        "night_work": "no" if hours else "",
        "worst_form_signs": "none",
        "services_received": " ".join(received),
        "notes": "",
    }


# --- submissions from the form's own primary instance -------------------------------------------


def primary_instance(xform: bytes) -> etree._Element:
    """The primary instance's root element (``data``) of an XForm, as a detached copy."""
    from forms.xmlsafe import parse_xml

    html = parse_xml(xform)
    model = html.find(f".//{{{XFORMS_NS}}}model")
    if model is None:
        raise ValueError("the XForm has no <model>")
    for instance in model.iter(f"{{{XFORMS_NS}}}instance"):
        if instance.get("id") is None:
            roots = [e for e in instance if isinstance(e.tag, str)]
            if len(roots) != 1:
                raise ValueError("the primary <instance> must hold exactly one element")
            return copy.deepcopy(roots[0])
    raise ValueError("the XForm has no primary <instance>")


def choice_values(xform: bytes, name: str) -> list[str]:
    """The choice codes of the question called ``name`` (inline items or an itemset instance)."""
    from forms.xmlsafe import parse_xml

    html = parse_xml(xform)
    for control in html.iter(f"{{{XFORMS_NS}}}select", f"{{{XFORMS_NS}}}select1"):
        if (control.get("ref") or "").rsplit("/", 1)[-1] != name:
            continue
        values = [
            v.text or "" for v in control.iterfind(f"{{{XFORMS_NS}}}item/{{{XFORMS_NS}}}value")
        ]
        itemset = control.find(f"{{{XFORMS_NS}}}itemset")
        if itemset is not None and "instance('" in (itemset.get("nodeset") or ""):
            instance_id = itemset.get("nodeset").split("instance('", 1)[1].split("'", 1)[0]
            value = itemset.find(f"{{{XFORMS_NS}}}value")
            field_name = value.get("ref") if value is not None else "name"
            for inst in html.iter(f"{{{XFORMS_NS}}}instance"):
                if inst.get("id") == instance_id:
                    values += [
                        (e.text or "")
                        for e in inst.iter()
                        if isinstance(e.tag, str) and etree.QName(e).localname == field_name
                    ]
        return values
    return []


def _strip_xforms_namespace(elem: etree._Element) -> None:
    """Submissions carry the instance's elements without the XForms namespace (as Collect sends)."""
    for e in elem.iter():
        if isinstance(e.tag, str) and e.tag.startswith(f"{{{XFORMS_NS}}}"):
            e.tag = e.tag[len(XFORMS_NS) + 2 :]
    etree.cleanup_namespaces(elem)


def _fill(elem: etree._Element, values: dict[str, str], skip: Iterable[str] = ()) -> None:
    """Set every leaf whose name is in ``values``, outside elements named in ``skip``.

    Leaves not named keep the form's default value.
    """
    skip = set(skip)
    for e in elem.iter():
        if not isinstance(e.tag, str) or e is elem:
            continue
        if skip and _inside(e, elem, skip):
            continue
        if len(e) == 0:
            name = etree.QName(e).localname
            if name in values:
                e.text = values[name]


def _inside(e: etree._Element, top: etree._Element, names: set[str]) -> bool:
    node = e
    while node is not None and node is not top:
        if etree.QName(node).localname in names:
            return True
        node = node.getparent()
    return False


def build_submission(
    template: etree._Element,
    values: dict[str, str],
    repeats: dict[str, list[dict[str, str]]] | None = None,
    instance_id: str | None = None,
) -> bytes:
    """A submission: the form's primary instance with leaves filled by name.

    ``repeats`` maps a repeat's element name to one dict of values per occurrence; the template
    copy (``jr:template``) and the form's default occurrences are replaced by exactly those.
    """
    root = copy.deepcopy(template)
    _strip_xforms_namespace(root)
    for e in root.iter():  # drop the XForm's indentation: phones send compact XML
        if len(e):
            e.text = None
        e.tail = None
    for name, occurrences in (repeats or {}).items():
        found = [e for e in root.iter(name)]
        if not found:
            raise ValueError(f"the form has no repeat {name!r}")
        model = found[0]
        parent = model.getparent()
        position = parent.index(model)
        for e in found:
            e.getparent().remove(e)
        model.attrib.pop(f"{{{JR_NS}}}template", None)
        for offset, occurrence in enumerate(occurrences):
            item = copy.deepcopy(model)
            _fill(item, occurrence)
            parent.insert(position + offset, item)
    _fill(root, values, skip=(repeats or {}).keys())
    meta_id = instance_id or f"uuid:{uuid.uuid4()}"
    instance_ids = [
        e
        for e in root.iter()
        if isinstance(e.tag, str) and etree.QName(e).localname == "instanceID"
    ]
    if not instance_ids:
        raise ValueError("the form has no meta/instanceID")
    instance_ids[0].text = meta_id
    etree.cleanup_namespaces(root)
    return etree.tostring(root, xml_declaration=False, encoding="UTF-8")


# --- sending through the OpenRosa endpoint -------------------------------------------------------


@dataclass
class Job:
    """One submission to send: which form, as whom, the XML."""

    form_id: str
    username: str
    xml: bytes
    label: str


@dataclass
class SendReport:
    sent: int = 0
    created: int = 0
    failures: list[tuple[Job, int, str]] = field(default_factory=list)


def send_jobs(
    base_url: str,
    jobs: list[Job],
    passwords: dict[str, str],
    workers: int = SEND_WORKERS,
    progress: Callable[[int, int], None] | None = None,
) -> SendReport:
    """POST each job to ``/submission`` as its monitor (Digest), ``workers`` at a time."""
    import queue

    import requests
    from requests.auth import HTTPDigestAuth

    auths = {u: HTTPDigestAuth(u, p) for u, p in passwords.items()}
    sessions: queue.Queue = queue.Queue()
    opened = [requests.Session() for _ in range(workers)]
    for s in opened:
        sessions.put(s)
    url = base_url.rstrip("/") + "/submission"
    report = SendReport()

    def send(job: Job) -> tuple[Job, int, str]:
        http = sessions.get()
        try:
            response = http.post(
                url,
                files={"xml_submission_file": ("submission.xml", job.xml, "text/xml")},
                headers={"X-OpenRosa-Version": "1.0"},
                auth=auths[job.username],
                timeout=60,
            )
            return job, response.status_code, response.text
        except requests.RequestException as e:
            return job, 0, str(e)
        finally:
            sessions.put(http)

    try:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            futures = [pool.submit(send, job) for job in jobs]
            for future in as_completed(futures):
                job, status, body = future.result()
                report.sent += 1
                if status == 201:
                    report.created += 1
                else:
                    report.failures.append((job, status, body))
                if progress is not None:
                    progress(report.sent, len(jobs))
    finally:
        for s in opened:
            s.close()
    return report


def _live_xform(session: Session, form_id: str) -> bytes | None:
    form = session.scalar(select(Form).where(Form.xml_form_id == form_id))
    if form is None or form.live_version is None:
        return None
    return bytes(form.live_version.xml)


def household_jobs(
    generator: Generator, plan: DemoPlan, template: etree._Element, households: int
) -> list[Job]:
    """``households`` visits spread over the monitors' villages (busier villages get more)."""
    rng = generator.rng
    slots: list[tuple[MonitorPlan, str]] = [
        (m, code) for m in plan.monitors for code in m.village_codes
    ]
    if not slots:
        return []
    weights = [rng.uniform(0.5, 1.5) for _ in slots]
    counts = {i: 0 for i in range(len(slots))}
    jobs = []
    for _ in range(households):
        i = rng.choices(range(len(slots)), weights=weights)[0]
        counts[i] += 1
        monitor, code = slots[i]
        answers = generator.household(monitor, plan.villages[code], counts[i])
        values, children = household_values(answers)
        xml = build_submission(template, values, {"child": children}, _instance_id(rng))
        jobs.append(Job(HOUSEHOLD_FORM, monitor.username, xml, answers.household_code))
    return jobs


def report_jobs(
    generator: Generator, plan: DemoPlan, template: etree._Element, count: int
) -> list[Job]:
    """Concern reports, as monitors record them for the people who raise them."""
    rng = generator.rng
    jobs = []
    for n in range(count):
        monitor = rng.choice(plan.monitors)
        village = plan.villages[rng.choice(monitor.village_codes)]
        values = generator.report(monitor, village)
        xml = build_submission(template, values, None, _instance_id(rng))
        jobs.append(Job(REPORT_FORM, monitor.username, xml, f"report {n + 1}"))
    return jobs


def _followup_jobs(session: Session, generator: Generator, plan: DemoPlan) -> list[Job]:
    """The monitors' follow-up visits of the cases in implementation, every 30-40 days since the
    plan took effect (:func:`clms.demo_cases.followup_plan`); none before cases exist."""
    from clms.demo_cases import followup_plan

    xform = _live_xform(session, FOLLOWUP_FORM)
    if xform is None:
        return []
    visits = followup_plan(session, generator.rng)
    if not visits:
        return []
    template = primary_instance(xform)
    services = choice_values(xform, "services_received")
    codes = {v.id: v.code for v in session.scalars(select(Village))}
    planned: dict[int, list[str]] = {}
    for case_id, code in session.execute(
        select(PlannedService.case_id, PlannedService.service_code)
        .where(PlannedService.status == "planned")
        .order_by(PlannedService.id)
    ):
        planned.setdefault(case_id, []).append(code)
    recovering: dict[int, bool] = {}  # for six cases in ten, the remediation works
    jobs = []
    for case, when in visits:
        village = codes.get(case.village_id)
        monitor = next((m for m in plan.monitors if village in m.village_codes), None)
        if monitor is None:
            continue
        if case.id not in recovering:
            recovering[case.id] = generator.rng.random() < 0.6
        values = followup_values(
            generator.rng, case.case_number, monitor, services, when,
            recovering=recovering[case.id], planned=planned.get(case.id, ()),
        )  # fmt: skip
        xml = build_submission(template, values, None, _instance_id(generator.rng))
        jobs.append(Job(FOLLOWUP_FORM, monitor.username, xml, case.case_number))
    return jobs


def _instance_id(rng: random.Random) -> str:
    """A version-4 UUID from the seeded source: the same seed gives the same instanceIDs."""
    return f"uuid:{uuid.UUID(int=rng.getrandbits(128), version=4)}"


# --- the command ---------------------------------------------------------------------------------


def _quiet_handler():
    from werkzeug.serving import WSGIRequestHandler

    class Handler(WSGIRequestHandler):
        """Logs requests as usual, except while the demo sends its own thousands."""

        def log_request(self, code="-", size="-"):
            if getattr(self.server, "clms_quiet", False):
                return
            super().log_request(code, size)

    return Handler


def _demo_present(session: Session) -> bool:
    return (
        session.scalar(select(func.count(Brand.id)).where(Brand.code.in_([b[0] for b in BRANDS])))
        or 0
    ) > 0


def _existing_accounts(session: Session, realm: str) -> list[Account]:
    """One demo account per role, with a new password (the old ones were shown only once)."""
    from clms.auth import set_password

    accounts = []
    for role in ("admin", "monitor", "officer", "supervisor", "provider", "brand"):
        user = session.scalar(
            select(User).where(User.role == role, User.active.is_(True)).order_by(User.username)
        )
        if user is None:
            continue
        password = _password()
        set_password(user, password, realm)
        accounts.append(Account(role, user.username, password))
    return accounts


def _print_accounts(url: str, accounts: Iterable[Account], note: str) -> None:
    shown: dict[str, Account] = {}
    for account in accounts:
        shown.setdefault(account.role, account)
    click.echo("")
    click.echo(f"CLMS demo: {url}")
    click.echo(f"Sign in with ({note}):")
    width = max((len(a.username) for a in shown.values()), default=8)
    for role in ("admin", "monitor", "officer", "supervisor", "provider", "brand"):
        a = shown.get(role)
        if a is not None:
            extra = f"  ({a.note})" if a.note else ""
            click.echo(f"  {role:10}  {a.username:{width}}  {a.password}{extra}")
    click.echo(f"ODK Collect: server URL {url}, with the monitor's username and password.")


@click.command("demo")
@click.option("--port", default=5000, show_default=True, type=int, help="Port to serve on.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to serve on.")
@click.option(
    "--households",
    default=3000,
    show_default=True,
    type=click.IntRange(0, None),
    help="Household visits to send.",
)
@click.option("--seed", default=7, show_default=True, type=int, help="Seed of the generated data.")
@click.option("--no-serve", is_flag=True, help="Build the data, then exit instead of serving.")
@with_appcontext
def demo_command(port: int, host: str, households: int, seed: int, no_serve: bool) -> None:
    """Build a demo: places, supply chain, users, forms, and household visits sent through the
    real OpenRosa endpoint; then serve it. Uses CLMS_DATABASE_URL (default: SQLite in instance/).
    """
    from werkzeug.serving import make_server

    from clms.db import engine, session_scope
    from clms.migrate import upgrade

    app = current_app._get_current_object()
    realm = app.config["DIGEST_REALM"]
    shared = Path(app.config["SHARED_DATA"])

    # a. schema
    upgrade(engine())
    _say(f"Database: {engine().url.render_as_string(hide_password=True)}")

    with session_scope() as session:
        present = _demo_present(session)
    if present and no_serve:
        _say("The database already holds demo data: nothing to build.")
        return

    try:
        server = make_server(host, port, app, threaded=True, request_handler=_quiet_handler())
    except OSError as e:
        raise click.ClickException(
            f"Cannot serve on {host}:{port} ({e}); choose another --port."
        ) from e
    server.clms_quiet = True  # the demo's own submissions are counted, not logged one by one
    thread = threading.Thread(target=server.serve_forever, name="clms-demo-server", daemon=True)
    thread.start()
    # the submission processor runs in-process here (production runs it in `clms scheduler`)
    from clms.intake.process import follow

    stop_processing = threading.Event()
    processor = threading.Thread(
        target=follow,
        args=(app.extensions["clms_sessionmaker"],),
        kwargs={"interval": 0.5, "stop": stop_processing.is_set},
        name="clms-demo-processor",
        daemon=True,
    )
    processor.start()
    # and the scheduled jobs (notifications, escalations, pulls, KPI snapshots) likewise
    from clms.jobs.scheduler import run_in_background

    scheduler = run_in_background(app)
    url_host = "127.0.0.1" if host in ("0.0.0.0", "", "::") else host  # noqa: S104 - a comparison
    base_url = f"http://{url_host}:{server.port}/"
    failed = False
    try:
        if present:
            # b. already built: serve what is there
            _say("The database already holds demo data: not building it again, serving it.")
            with session_scope() as session:
                accounts = _existing_accounts(session, realm)
            note = "new passwords were set for these accounts just now"
        else:
            accounts, failed = _build(app, seed, households, base_url, server, shared, realm)
            note = "random passwords, shown only now"
        _print_accounts(base_url, accounts, note)
        if no_serve:
            if failed:
                raise click.ClickException("Some submissions were not accepted (see above).")
            return
        server.clms_quiet = False
        click.echo("Serving; press Ctrl+C to stop.")
        try:
            while thread.is_alive():
                thread.join(0.5)
        except KeyboardInterrupt:
            click.echo("Stopping.")
    finally:
        stop_processing.set()
        scheduler.shutdown(wait=False)
        server.shutdown()
        server.server_close()
        thread.join(5)
        processor.join(10)


def _wait_processed(accepted: int, timeout: float = 600.0) -> None:
    """Show the in-process processor (see demo_command) working through what was accepted."""
    from clms.db import session_scope
    from forms.received import waiting

    progress = ProgressLine("Processing submissions", accepted)
    deadline = time.monotonic() + timeout
    while True:
        with session_scope() as session:
            left, _oldest = waiting(session)
        progress.update(max(0, accepted - left))
        if left == 0:
            break
        if time.monotonic() > deadline:
            raise click.ClickException(f"{left} submissions still waiting to be processed.")
        time.sleep(0.2)
    progress.finish()


def _build(app, seed, households, base_url, server, shared, realm) -> tuple[list[Account], bool]:
    """Steps c-g; returns the accounts to show and whether any submission failed."""
    from clms.db import session_scope

    try:
        from forms.publish import ensure_builtin_forms
    except ImportError as e:
        raise click.ClickException(
            f"Cannot publish the forms: forms.publish.ensure_builtin_forms is not available ({e})."
        ) from e

    from clms.errors import Problem
    from clms.operations.profiles import ensure_profiles
    from clms.operations.users import UserError
    from clms.places import PlaceError

    generator = Generator(seed)
    try:
        with session_scope() as session:  # c-f in one transaction: all of it or nothing
            plan = build_places_and_people(session, shared, realm, generator.rng)
            # f. forms, and the country profiles the classifier applies
            ensure_builtin_forms(session)
            reference = shared / "reference" / "dol_ilab_countries_2021.xml"
            ensure_profiles(session, reference if reference.exists() else None)
            session.flush()
            hh_xform = _live_xform(session, HOUSEHOLD_FORM)
            report_xform = _live_xform(session, REPORT_FORM)
    except UserError as e:
        raise click.ClickException(
            f"{e} The demo adds its own users: run it on an empty database (CLMS_DATABASE_URL)."
        ) from e
    except (PlaceError, Problem) as e:
        raise click.ClickException(str(e)) from e
    if hh_xform is None:
        raise click.ClickException(f"Form {HOUSEHOLD_FORM} has no live version after publishing.")
    _say("Forms: published.")

    # g. submissions, through the real endpoint
    jobs = household_jobs(generator, plan, primary_instance(hh_xform), households)
    if report_xform is not None and households:
        jobs += report_jobs(
            generator, plan, primary_instance(report_xform), min(50, max(3, households // 60))
        )
    passwords = {m.username: m.password for m in plan.monitors}
    failed = False
    if jobs:
        failed = _send(base_url, jobs, passwords, "Submissions")
        with session_scope() as session:
            rows = session.execute(
                select(Submission.status, func.count(Submission.id)).group_by(Submission.status)
            ).all()
        _say("Stored: " + ", ".join(f"{n} {status}" for status, n in sorted(rows)))
        _show_alerts()
        failed = _remediation(app, generator, plan, base_url, passwords) or failed
    return plan.accounts, failed


def _send(base_url: str, jobs: list[Job], passwords: dict[str, str], label: str) -> bool:
    """Send ``jobs`` through the endpoint with progress, wait for them to be processed; returns
    whether any was refused."""
    progress = ProgressLine(f"{label} to {base_url}submission", len(jobs))
    report = send_jobs(base_url, jobs, passwords, progress=progress)
    progress.finish()
    _say(f"{label}: {report.created} of {report.sent} accepted (201).")
    for job, status, body in report.failures[:10]:
        where = f"{job.form_id} {job.label} as {job.username}"
        _say(f"  {where}: HTTP {status}: {body.strip()[:500]}")
    if len(report.failures) > 10:
        _say(f"  ... and {len(report.failures) - 10} more refused.")
    _wait_processed(report.created)
    return bool(report.failures)


def _remediation(app, generator: Generator, plan: DemoPlan, base_url, passwords) -> bool:
    """A season of remediation work on the alerts (see :mod:`clms.demo_cases`)."""
    from clms.db import session_scope
    from clms.demo_cases import approve_closures, date_alerts_as_synced, work_cases

    with session_scope() as session:
        date_alerts_as_synced(session)
    with session_scope() as session:
        candidates = session.scalar(
            select(func.count()).select_from(Alert).where(
                Alert.status == "new", Alert.category.in_(["worst_form", "hazardous",
                                                            "child_labour"]))
        ) or 0  # fmt: skip
    progress = ProgressLine("Officers working the alerts", candidates)
    work = work_cases(lambda: session_scope(app), generator.rng, progress)
    progress.finish()
    for refusal in work.refused[:5]:
        _say(f"  refused: {refusal}")
    _say(f"Cases: {work.opened} opened from alerts, {work.referrals} referrals to providers.")
    failed = False
    with session_scope() as session:
        jobs = _followup_jobs(session, generator, plan)
    if jobs:
        failed = _send(base_url, jobs, passwords, "Follow-up visits")
    closed = approve_closures(lambda: session_scope(app), generator.rng)
    _say(f"Closures approved by the supervisors: {closed}.")
    _show_cases()
    return failed or bool(work.refused)


def _show_cases() -> None:
    """The demo's cases by step, as bars."""
    from clms.cases.workflow import STATES
    from clms.db import session_scope

    with session_scope() as session:
        counts = dict(
            session.execute(select(Case.state, func.count(Case.id)).group_by(Case.state)).all()
        )
    total = sum(counts.values())
    _say(f"Cases by step: {total}")
    for state in STATES:
        n = counts.get(state, 0)
        bar = "#" * (round(40 * n / total) if total else 0)
        _say(f"  {state:>14} {n:>6}  {bar}")


def _show_alerts() -> None:
    """The alerts the demo's visits raised, by severity, as bars to compare at a glance."""
    from clms.db import session_scope
    from clms.models import SEVERITIES, Alert

    with session_scope() as session:
        counts = dict(
            session.execute(
                select(Alert.severity, func.count(Alert.id)).group_by(Alert.severity)
            ).all()
        )
    total = sum(counts.values())
    _say(f"Alerts raised: {total}")
    for severity in SEVERITIES:
        n = counts.get(severity, 0)
        bar = "#" * (round(40 * n / total) if total else 0)
        _say(f"  {severity:>8} {n:>6}  {bar}")
