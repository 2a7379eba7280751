"""Generated answers: realistic households, children, concern reports and follow-ups from a
seeded random source (the same seed gives the same answers), and the form values they make.

About 15% of the children are in child labour by the ILO statistical rules (domain.md section
3), mostly hazardous tasks of cocoa farming; a very few show signs of worst forms. One monitor
works carelessly (very short visits, a GPS point now and then far from the village).
"""

from __future__ import annotations

import datetime as dt
import math
import random
from collections.abc import Iterable
from dataclasses import dataclass

from clms.demo.plan import MonitorPlan, VillagePoint


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


def _weighted(rng: random.Random, pairs: list[tuple[str, float]]) -> str:
    return rng.choices([p[0] for p in pairs], weights=[p[1] for p in pairs])[0]


def person(rng: random.Random, community: str | None = None, sex: str | None = None) -> str:
    community = community or _weighted(rng, [(k, v["weight"]) for k, v in COMMUNITIES.items()])
    names = COMMUNITIES[community]
    sex = sex or rng.choice(["male", "female"])
    return f"{rng.choice(names[sex])} {rng.choice(names['family'])}"


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
    entity_id: str = "",
) -> dict[str, str]:
    """A ``clms_followup`` answer for an open case. A ``recovering`` child (the remediation is
    working) is at school and out of work, and the monitor sees the ``planned`` services
    received; the others are mostly better, some still working. ``entity_id`` is the case's id
    in the phone's entity list (the case chosen; its number is looked up from it)."""
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
        "followup_date": when.date().isoformat(),
        "case_entity": entity_id,
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
