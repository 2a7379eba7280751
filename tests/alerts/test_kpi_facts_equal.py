"""The KPIs read from the kept facts (issue 19) give exactly the figures of the implementation
they replaced (kept as the oracle in tests/alerts/kpis_oracle.py, swapped in by its
``former()``), on the same varied data: every grouping, every filter and some of them
together, a person's scope of areas, of single villages, and the whole country.

The data: the KPI tests' world (tests/alerts/test_kpis.py: alerts, cases, services, referrals)
and, added to it, a random crowd of children seen in their own village and now and then in
another, or in none; visits with their own supplier or their household's, by either monitor,
household visits and follow-ups, visits at the very same time, versions replaced by an edit.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random

import pytest
from sqlalchemy import select

from alerts.kpis import KpiFilters, compute_everything, kpi_report
from alerts.kpis.filters import GROUPS
from clms.db import session_scope
from clms.models import Area, User
from tests import builders as b
from tests.alerts.kpis_oracle import former
from tests.alerts.test_kpis import NOW, filters, world  # noqa: F401  (the world fixture)

CATEGORIES = ("worst_form", "hazardous", "child_labour", "at_risk", "none")
FILTERS = [
    {},
    {"area": "CI-D1"},
    {"village": "V2"},
    {"supplier": "T2-COOP"},
    {"tier": 2},
    {"monitor": "mo"},
    {"supplier": "T3-GRP", "monitor": "mia"},
    {"area": "CI-D2", "tier": 3},
    {"village": "V1", "monitor": "mo", "supplier": "T2-COOP"},
]


def crowd(s, seed: int, n_children: int = 40) -> None:
    """Children and visits at random over the KPI world's villages, suppliers and monitors."""
    rng = random.Random(seed)
    villages = ["V1", "V2", "V3", "V4", "GV1"]
    suppliers = [None, "T1-EXP", "T2-COOP", "T3-GRP"]
    monitors = [None, "mo", "mia"]
    start = dt.datetime(2024, 11, 1, tzinfo=dt.UTC)
    stamps = [
        start + dt.timedelta(days=rng.randrange(150), hours=rng.randrange(3)) for _ in range(12)
    ]
    homes = [
        b.household(s, rng.choice(villages), supplier=rng.choice(suppliers)) for _ in range(12)
    ]
    kids = [
        (home, b.child(s, home, f"Enfant {i}", sex=rng.choice(["female", "male", None])))
        for i in range(n_children)
        for home in [rng.choice(homes)]
    ]
    for home, kid in kids:
        for _ in range(rng.randrange(1, 5)):
            village = rng.choice(
                [None, home.village_id, home.village_id, home.village_id, rng.choice(villages)]
            )
            # a shared stamp now and then: two visits at the very same time
            when = rng.choice(stamps) if rng.random() < 0.3 else (
                start + dt.timedelta(days=rng.randrange(150), minutes=rng.randrange(600))
            )  # fmt: skip
            b.visit(
                s, home, when, [(kid, rng.choice(CATEGORIES))],
                village=village if village is not None else home.village_id,
                supplier=rng.choice(suppliers), monitor=rng.choice(monitors),
                kind="followup" if rng.random() < 0.25 else "household",
                current=rng.random() > 0.1, age=rng.choice([None, 6, 13, 16]),
            )  # fmt: skip
            if village is None:  # a visit placed in no village
                last = s.scalars(select(b.Visit).order_by(b.Visit.id.desc()).limit(1)).one()
                last.village_id = None
                s.flush()
                b.refresh_children(s, [kid.id])


def village_scoped_user(s) -> User:
    """An officer whose scope is two single villages, one in each department."""
    from clms.auth.users import add_user

    return add_user(s, username="vera", role="officer", password="Cacao-Soubre-2025!", realm="clms",
                    scope_codes=["V2", "V3"])  # fmt: skip


def both(s, user, f):
    new = kpi_report(s, user, f, now=NOW)
    with former():
        old = kpi_report(s, user, f, now=NOW)
    return new, old


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1])
def test_every_figure_equals_the_former_implementation(app, world, seed):  # noqa: F811
    with session_scope(app) as s:
        crowd(s, seed)
        people = [
            s.scalar(select(User).where(User.username == name))
            for name in ("ada", "sam", "olga", "adam")
        ] + [village_scoped_user(s)]
        assert s.scalar(select(Area.id).where(Area.code == "CI-D1"))
        compared = 0
        for user in people:
            for group in GROUPS:
                for extra in {"vera": FILTERS, "ada": FILTERS[:5]}.get(user.username, FILTERS[:1]):
                    f = filters(group=group, **extra)
                    new, old = both(s, user, f)
                    context = f"{user.username} {group} {extra}"
                    assert new.overall == old.overall, context
                    assert new.rows == old.rows, context
                    assert new.monitors == old.monitors, context
                    compared += 1
        # a period cut in the middle of the crowd's visits, by month and quarter, everything
        for group in ("none", "month", "quarter", "village"):
            f = KpiFilters(dt.date(2024, 12, 10), dt.date(2025, 2, 14), group=group)
            new = compute_everything(s, f, now=NOW)
            with former():
                old = compute_everything(s, f, now=NOW)
            assert dataclasses.asdict(new) == dataclasses.asdict(old), group
        assert compared == 8 * (9 + 5 + 3)
