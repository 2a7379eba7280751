"""A brand cannot single out a child by comparing periods (geo.periods, geo.hotspots).

Found by attacking the demo: the 4 and the 5 months ending on one day gave a village of 22 and of
23 children, so the one child whose only visit fell in the fifth month, and that child's hazardous
work, could be read off although that month alone was suppressed. Brands now see only the fixed,
never overlapping periods of a reporting grid, once they have ended.

* the grid itself (pure, over every grid and every day);
* the auditor (tests/privacy_audit.py) finds the attack on nested periods, and a hidden cell
  worked out from its totals, so that it can fail;
* the property the issue asks for: random households visited over several quarters, the
  published figures of every period offered, at every level and every layer, audited together
  (nothing hidden and no small group can be worked out by adding and subtracting them);
* every way a brand can ask (API in every format, web downloads, map page, frame, layers,
  standalone map, kept figures, command line) refuses a period that is not offered with a 400
  saying what is offered, never a substitute.
"""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from clms.models import (
    Area,
    Brand,
    BrandSupplier,
    Supplier,
    SupplierLink,
    User,
    Village,
)
from geo.hotspots.figures import LEVELS
from geo.hotspots.settings import HotspotSettings
from geo.hotspots.tables import hotspot_tables
from geo.periods import GRID_MONTHS, Period, PeriodNotOffered, ReportingGrid
from tests.builders import child, facts_at_end, household
from tests.conftest import PASSWORD
from tests.privacy_audit import Release, Unit, audit

MIN_C, MIN_H = 10, 5

# --- the grid ------------------------------------------------------------------------------------


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(GRID_MONTHS),
    st.integers(1, 12),
    st.integers(0, 90),
    st.dates(dt.date(2001, 1, 1), dt.date(2090, 12, 31)),
)
def test_offered_periods_are_closed_and_never_overlap(months, first, grace, today):
    grid = ReportingGrid(months, first, grace)
    offered = grid.offered(today)
    assert offered and len(offered) * months <= 120
    for later, earlier in itertools.pairwise(offered):
        # end to end: each the day after the one before, never overlapping
        assert later.start == earlier.end + dt.timedelta(days=1)
    for p in offered:
        assert p == Period.ending(p.end, months) and p.months == months
        assert (p.start.month - first) % months == 0 and p.start.day == 1
        assert p.end + dt.timedelta(days=grace) < today
        assert grid.resolve(p.end, months, today) == p
        assert grid.resolve(p.end, None, today) == p
    # the next period (still running, or not past its grace) is not offered
    following = grid.period_containing(offered[0].end + dt.timedelta(days=1))
    assert following.end + dt.timedelta(days=grace) >= today
    assert grid.resolve(None, None, today) == offered[0]
    with pytest.raises(PeriodNotOffered):
        grid.resolve(following.end, months, today)
    with pytest.raises(PeriodNotOffered):
        grid.resolve(offered[0].end - dt.timedelta(days=1), months, today)
    other = next(m for m in (1, 2, 3, 12, 5) if m != months)
    with pytest.raises(PeriodNotOffered):
        grid.resolve(offered[0].end, other, today)


def test_grids_that_do_not_divide_a_year_are_refused():
    for months in (5, 7, 0, 24):
        with pytest.raises(ValueError, match="divide a year"):
            ReportingGrid(months)
    with pytest.raises(ValueError):
        ReportingGrid(3, 13)
    cocoa = ReportingGrid.from_config({"BRAND_PERIOD_MONTHS": 12, "BRAND_PERIOD_FIRST_MONTH": 10})
    assert cocoa.period_containing(dt.date(2026, 12, 7)).start == dt.date(2026, 10, 1)


# --- the auditor can fail ------------------------------------------------------------------------


def test_the_auditor_finds_the_nested_periods_attack():
    """The attack as it was found: 22 children whose latest visit is in the last month, one more
    whose only visit was the month before; the 1 and the 2 months ending the same day, both
    large enough to be shown, give the one child away."""
    x = ("V1", "T2")
    units = [Unit((None, x), 1, f"h{i}") for i in range(22)] + [Unit((x, None), 1, "lone")]
    releases = [
        Release((1,), shown={"V1": frozenset({x})}),
        Release((0, 1), shown={"V1": frozenset({x})}),
    ]
    found = audit(2, [x], units, releases, min_children=MIN_C, min_households=MIN_H)
    assert any("a group of 1 children in 1 households" in f for f in found), found
    # the same figures as the grid publishes them (two periods end to end): nothing to find
    grid = [
        Release((0,), hidden={"V1": frozenset({x})}),
        Release((1,), shown={"V1": frozenset({x})}),
    ]
    assert audit(2, [x], units, grid, min_children=MIN_C, min_households=MIN_H) == []


def test_the_auditor_finds_a_hidden_cell_worked_out_from_a_total():
    a, b = ("V1", "T2"), ("V2", "T2")
    units = [Unit((a,), 1, f"a{i}") for i in range(20)] + [Unit((b,), 1, f"b{i}") for i in range(3)]
    release = Release(
        (0,),
        shown={"total": frozenset({a, b}), "V1": frozenset({a})},
        hidden={"V2": frozenset({b})},
    )
    found = audit(1, [a, b], units, [release], min_children=MIN_C, min_households=MIN_H)
    assert any("hidden cell 'V2'" in f for f in found), found


# --- the property --------------------------------------------------------------------------------

TODAY = dt.date(2026, 1, 20)  # Q3 2025 is published (30 days after 30 September), Q4 not yet
QUARTERS = [dt.date(2025, 1, 1), dt.date(2025, 4, 1), dt.date(2025, 7, 1), dt.date(2025, 10, 1)]
PUBLISHED = 3  # the quarters of 2025 a brand may see on TODAY
VILLAGES = ("V1", "V2", "V3")
SUPPLIERS = ("T2-COOP", "T3-GRP")
CATEGORIES = ("none", "none", "at_risk", "child_labour", "hazardous", "worst_form")


@st.composite
def histories(draw):
    """Households (village, children, visits); a visit: (when, supplier, categories). Every
    visit sees the whole household; the supplier may change from one visit to the next."""
    homes = []
    for _ in range(draw(st.integers(6, 26))):
        village = draw(st.sampled_from(VILLAGES))
        kids = draw(st.integers(1, 4))
        supplier = draw(st.sampled_from(SUPPLIERS))
        visits = []
        for start in QUARTERS:
            days = draw(st.lists(st.integers(0, 88), max_size=2, unique=True))
            for day in sorted(days):
                if draw(st.integers(0, 5)) == 0:
                    supplier = SUPPLIERS[1 - SUPPLIERS.index(supplier)]
                categories = [draw(st.sampled_from(CATEGORIES)) for _ in range(kids)]
                when = dt.datetime.combine(start + dt.timedelta(days=day), dt.time(9), dt.UTC)
                visits.append((when, supplier, categories))
        homes.append((village, kids, visits))
    return homes


@pytest.fixture
def chain(app, places, make_user):
    """Brand A buys from T1-EXP, which buys from T2-COOP, which buys from T3-GRP; bea is its
    user; the application's grid: calendar quarters, published 30 days after they end."""
    from clms.db import session_scope

    app.config.update(BRAND_PERIOD_MONTHS=3, BRAND_PERIOD_FIRST_MONTH=1, BRAND_PERIOD_GRACE_DAYS=30)
    with session_scope(app) as s:
        ids = {c: s.scalar(select(Supplier.id).where(Supplier.code == c)) for c in
               ("T1-EXP", "T2-COOP", "T3-GRP")}  # fmt: skip
        brand = s.scalar(select(Brand.id).where(Brand.code == "BRAND-A"))
        s.add_all([
            BrandSupplier(brand_id=brand, supplier_id=ids["T1-EXP"]),
            SupplierLink(buyer_id=ids["T1-EXP"], seller_id=ids["T2-COOP"]),
            SupplierLink(buyer_id=ids["T2-COOP"], seller_id=ids["T3-GRP"]),
        ])  # fmt: skip
    make_user("bea", "brand", brand="BRAND-A")
    return app


@pytest.mark.slow
@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                           HealthCheck.data_too_large],
)  # fmt: skip
@given(homes=histories())
def test_nothing_small_can_be_worked_out_across_every_period_level_and_layer(chain, homes):
    """Every period a brand is offered, every level (villages, areas, suppliers, tiers) and
    every layer (each tier's and each supplier's, at every place and level), audited together:
    no cell the gate hid and no group of fewer than 10 children or 5 households is fixed by
    any sum or difference of the published figures."""
    from tests.hotspots.test_hotspots import Builder

    app = chain
    with app.app_context():
        s = app.extensions["clms_sessionmaker"]()
        try:
            bea = s.scalar(select(User).where(User.username == "bea"))
            with facts_at_end(s):
                units = _write(s, Builder(s), homes)
            releases = []
            offered = ReportingGrid(3, 1, 30).offered(TODAY)
            supplier_ids = list(s.scalars(select(Supplier.id)))
            universe = _universe(s)
            for period in offered:
                tables = hotspot_tables(
                    s, bea, LEVELS, end=period.end, months=period.months, today=TODAY,
                    layer_levels=LEVELS, tiers=True, supplier_ids=supplier_ids,
                    settings=HotspotSettings.from_config(app.config),
                )  # fmt: skip
                assert tables.period == period
                if period.start < QUARTERS[0]:
                    # nobody was visited then: nothing is shown, not even the total
                    assert all(c.get("suppressed") for c in tables.cells.values())
                    continue
                releases.append(_release(QUARTERS.index(period.start), tables.cells, universe))
        finally:
            s.rollback()
            s.close()
    assert len(releases) == PUBLISHED
    parts = [(v, x) for v in VILLAGES for x in SUPPLIERS]
    found = audit(PUBLISHED, parts, units, releases, min_children=MIN_C, min_households=MIN_H)
    assert found == []


def _write(s, builder, homes) -> list[Unit]:
    """The households in the database (flushed, not committed) and their signatures."""
    units = []
    for n, (village, kids, visits) in enumerate(homes):
        home = household(s, village, code=f"P-{n}", supplier=visits[0][1] if visits else None)
        children = [child(s, home, f"Child {n} {i}", name_key=f"child{n}{i}") for i in range(kids)]
        signature = [None] * PUBLISHED
        for when, supplier, categories in visits:
            builder.visit(when, village, supplier, home, list(zip(children, categories,
                                                                  strict=True)))  # fmt: skip
            quarter = max(i for i, start in enumerate(QUARTERS) if start <= when.date())
            if quarter < PUBLISHED:
                signature[quarter] = (village, supplier)  # visits come in order of time
        s.flush()
        units.append(Unit(tuple(signature), kids, n))
    return units


def _universe(s) -> dict:
    """Every cell a brand's tables and layers could hold, as ``{(kind, id): parts}``."""
    villages = dict(s.execute(select(Village.id, Village.code)).all())
    village_area = dict(s.execute(select(Village.id, Village.area_id)).all())
    parents = dict(s.execute(select(Area.id, Area.parent_id)).all())
    suppliers = {i: (code, tier) for i, code, tier in s.execute(
        select(Supplier.id, Supplier.code, Supplier.tier))}  # fmt: skip
    sellers: dict = {}
    for buyer, seller in s.execute(select(SupplierLink.buyer_id, SupplierLink.seller_id)):
        sellers.setdefault(buyer, set()).add(seller)

    def chain(i):
        out, todo = set(), [i]
        while todo:
            j = todo.pop()
            if j not in out:
                out.add(j)
                todo.extend(sellers.get(j, ()))
        return {suppliers[j][0] for j in out}

    def under(vid, area):
        a = village_area[vid]
        while a is not None:
            if a == area:
                return True
            a = parents[a]
        return False

    every = {(v, x) for v in VILLAGES for x in SUPPLIERS}
    bases = {("total", None): every}
    for vid, code in villages.items():
        bases[("village", vid)] = {p for p in every if p[0] == code}
    for area in parents:
        codes = {villages[v] for v in villages if under(v, area)}
        bases[("area", area)] = {p for p in every if p[0] in codes}
    for i in suppliers:
        bases[("supplier", i)] = {p for p in every if p[1] in chain(i)}
    for tier in {t for _c, t in suppliers.values()}:
        bases[("tier", tier)] = {p for p in every if suppliers_of_tier(suppliers, tier, p[1])}
    slices = {"": every}
    for tier in {t for _c, t in suppliers.values()}:
        slices[f"@{tier}"] = {p for p in every if suppliers_of_tier(suppliers, tier, p[1])}
    for i in suppliers:
        slices[f"@s{i}"] = {p for p in every if p[1] in chain(i)}
    return {(kind + suffix, cid): frozenset(parts & kept)
            for (kind, cid), parts in bases.items() for suffix, kept in slices.items()}  # fmt: skip


def suppliers_of_tier(suppliers: dict, tier: int, code: str) -> bool:
    return any(c == code and t == tier for c, t in suppliers.values())


def _release(segment: int, cells: dict, universe: dict) -> Release:
    """The cells of one period: shown, hidden, and absent (a true 0, known to the brand)."""
    release = Release((segment,))
    for key, parts in universe.items():
        if not parts:
            continue
        cell = cells.get(key)
        name = f"{key[0]}:{key[1]}"
        if cell is None or not cell.get("suppressed"):
            release.shown[name] = parts
        else:
            release.hidden[name] = parts
        if "@" in key[0]:
            release.layers.add(name)
    unknown = {k for k in cells if k not in universe}
    assert not unknown, f"cells the audit does not know how to read: {unknown}"
    return release


# --- every way in -------------------------------------------------------------------------------


LATEST = ReportingGrid(3, 1, 30).offered(dt.date.today())[0]
#: periods no brand may ask for: nested in, or overlapping, or beside the grid's
NOT_OFFERED = [
    "months=4",
    "months=12",
    f"months=3&end={LATEST.end - dt.timedelta(days=1)}",
    f"end={LATEST.end + dt.timedelta(days=31)}",  # ended, but not yet published
    f"months=1&end={LATEST.end}",
]


def _signed_in(app, username):
    client = app.test_client()
    r = client.post("/login", data={"username": username, "password": PASSWORD})
    assert r.status_code in (302, 303)
    return client


def _says_what_is_offered(text: str) -> None:
    assert "months=3" in text and LATEST.end.isoformat() in text, text


@pytest.mark.parametrize("query", NOT_OFFERED)
def test_every_way_in_refuses_a_period_not_offered_and_says_what_is(chain, query):
    client = _signed_in(chain, "bea")
    token = client.post("/api/v1/sessions", json={"username": "bea", "password": PASSWORD})
    api = {"Authorization": f"Bearer {token.get_json()['token']}"}
    for fmt in ("json", "csv", "geojson"):
        r = client.get(f"/api/v1/hotspots?level=village&format={fmt}&{query}", headers=api)
        assert r.status_code == 400, (fmt, query)
        body = r.get_json()
        assert body["code"] == "400.30" and body["error"] == "hotspots.period_not_offered"
        _says_what_is_offered(body["message"])
        offered = body["details"]["offered"]
        assert offered[0]["end"] == LATEST.end.isoformat() and len(offered) == 40
    for path in (
        "/hotspots/export.csv?level=village&",
        "/hotspots/export.geojson?level=area&",
        "/map/frame?",
        "/map/layer.json?kind=village&tier=2&",
        "/map/export.html?",
    ):
        r = client.get(f"{path}{query}")
        assert r.status_code == 400, (path, query)
        _says_what_is_offered(r.get_data(as_text=True))
    # the page says so too, and shows the latest period instead (saying which, as a 400)
    page = client.get(f"/map?{query}")
    assert page.status_code == 400
    text = page.get_data(as_text=True)
    _says_what_is_offered(text)
    assert f'<option value="{LATEST.end}" selected>' in text


def test_a_brand_asking_nothing_gets_the_latest_period_and_every_offered_one_works(chain):
    client = _signed_in(chain, "bea")
    token = client.post("/api/v1/sessions", json={"username": "bea", "password": PASSWORD})
    api = {"Authorization": f"Bearer {token.get_json()['token']}"}
    r = client.get("/api/v1/hotspots?level=tier", headers=api)
    assert r.status_code == 200
    assert r.get_json()["period"]["end"] == LATEST.end.isoformat()
    assert r.get_json()["period"]["months"] == 3
    previous = LATEST.start - dt.timedelta(days=1)
    r = client.get(f"/api/v1/hotspots?level=village&end={previous}&months=3", headers=api)
    assert r.status_code == 200 and r.get_json()["period"]["start"] == str(LATEST.previous_start)
    page = client.get("/map").get_data(as_text=True)
    # the select lists the offered periods, the latest chosen; the frame asks for it exactly
    assert page.count('<option value="20') == 40  # one per period (not the language choice)
    assert f"end={LATEST.end}" in page and "months=3" in page


def test_officers_still_choose_any_period(chain, make_user):
    make_user("olga", "officer", areas=["CI-D1"])
    client = _signed_in(chain, "olga")
    for query in NOT_OFFERED:
        assert client.get(f"/hotspots/export.csv?level=village&{query}").status_code == 200
        assert client.get(f"/map?view=hotspots&{query}").status_code == 200


def test_releases_and_the_command_line_refuse_it_too(chain):
    from clms.db import session_scope
    from clms.errors import Problem
    from clms.models import HotspotRelease
    from geo.maps.brand import PAGE_LEVELS

    settings = HotspotSettings.from_config(chain.config)
    with chain.app_context(), session_scope(chain) as s:
        bea = s.scalar(select(User).where(User.username == "bea"))
        with pytest.raises(Problem) as raised:
            hotspot_tables(s, bea, PAGE_LEVELS, months=6, settings=settings)
        assert raised.value.key == "hotspots.period_not_offered"
        assert s.scalar(select(HotspotRelease.id)) is None  # nothing released for it
        assert hotspot_tables(s, bea, PAGE_LEVELS, settings=settings).period == LATEST
    runner = chain.test_cli_runner()
    for args in (
        ["export", "--level", "village", "-o", "/dev/null", "--months", "12"],
        ["map", "-o", "/dev/null", "--end", str(LATEST.end - dt.timedelta(days=1))],
    ):
        result = runner.invoke(args=["hotspots", *args, "--brand", "BRAND-A"])
        assert result.exit_code == 2, result.output
        assert "months=3" in result.output and LATEST.end.isoformat() in result.output
