"""Hotspot figures, their privacy gate and every way out (API, web downloads, command line).

The world (period: the 12 months ending 2025-06-30; previous period: July 2023 - June 2024).
Brand A buys from T1-EXP, which buys from T2-COOP, which buys from T3-GRP; brand B buys from
T1-B only. Areas: CI > CI-R1 > CI-D1 (V1, V2, V5) and CI-D2 (V3, V4).

======= ======== ===================================================================
village supplier children (households), latest category this period
======= ======== ===================================================================
V1      T2-COOP  20 (10): 3 child labour, 2 hazardous, 1 worst form, 14 none;
                 3 of the 6 identified were remediated in the period, a 4th after it;
                 one of the 14 was classified child labour in V3 earlier in the period
V1      T1-B     5 (2), brand B's, all worst forms (never brand A's)
V2      T2-COOP  3 (2): primary suppression for a brand
V5      T3-GRP   12 (6): none; secondary suppression (smallest of CI-D1)
V3      T3-GRP   15 (8): 3 child labour
V4      T1-B     30 (10), brand B's: 15 hazardous
======= ======== ===================================================================

Previous period: V1 had 10 children (5 households), 2 in child labour (prevalence 0.2); V3 had
4 children (2 households): too few for a brand to see its previous figure.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import itertools
import json

import openpyxl
import pytest
from shapely import to_wkb
from shapely.geometry import Polygon
from sqlalchemy import select

from clms.db import session_scope
from clms.models import (
    Area,
    Brand,
    BrandSupplier,
    Case,
    PlannedService,
    ServiceProvider,
    Supplier,
    SupplierLink,
    User,
    Village,
)
from geo.hotspots.figures import wilson_interval
from geo.hotspots.settings import HotspotSettings
from geo.hotspots.tables import hotspot_table
from geo.periods import Period
from geo.privacy import PrivacyError, assert_brand_safe
from tests import builders
from tests.conftest import PASSWORD

END = dt.date(2025, 6, 30)
QUERY = "end=2025-06-30"
_numbers = itertools.count(1)


def at(year: int, month: int, day: int = 15) -> dt.datetime:
    return dt.datetime(year, month, day, 9, tzinfo=dt.UTC)


class Builder:
    """Writes households, children, visits and classifications for the world above."""

    def __init__(self, s):
        self.s = s

    def households(self, prefix, village, supplier, n):
        return [
            builders.household(self.s, village, code=f"{prefix}-{i}", supplier=supplier,
                               head_name=f"Head Zanzibar {prefix} {i}")
            for i in range(n)
        ]  # fmt: skip

    def visit(self, when, village, supplier, household, children):
        """One household visit classifying ``children`` [(child, category), ...]."""
        return builders.visit(
            self.s, household, when, children, village=village, supplier=supplier, age=12,
            rule_set_version="t", lat=5.123456, lon=-6.654321, notes="Secret note Quokka",
        )  # fmt: skip

    def population(self, prefix, village, supplier, categories, n_households, when):
        """Children named ``Kwabena{prefix}{i}`` with ``categories``, spread over households."""
        homes = self.households(f"HH-{prefix}", village, supplier, n_households)
        children = [
            builders.child(self.s, homes[i % n_households], f"Kwabena{prefix}{i} Zorro",
                           name_key=f"kwabena{prefix}{i}")
            for i in range(len(categories))
        ]  # fmt: skip
        for i, (child, category) in enumerate(zip(children, categories, strict=True)):
            self.visit(when, village, supplier, homes[i % n_households], [(child, category)])
        return children

    def remediated(self, child, when):
        """A case of ``child`` with a service delivered at ``when``."""
        provider = self.s.scalar(select(ServiceProvider.id).limit(1))
        if provider is None:
            p = ServiceProvider(code="SCHOOL", name="School", kind="school")
            self.s.add(p)
            self.s.flush()
            provider = p.id
        n = next(_numbers)
        case = Case(case_number=f"C-{n}", child_id=child.id, opened_at=when)
        self.s.add(case)
        self.s.flush()
        self.s.add(
            PlannedService(
                case_id=case.id,
                service_code="school_kit",
                provider_id=provider,
                due_on=when.date(),
                status="delivered",
                delivered_at=when,
            )  # fmt: skip
        )
        self.s.flush()


@pytest.fixture(scope="session")
def password_hash():
    """One hash of PASSWORD for every user of these tests: hashing is slow on purpose."""
    from werkzeug.security import generate_password_hash

    return generate_password_hash(PASSWORD)


@pytest.fixture
def world(app, places, make_user, password_hash, monkeypatch):
    """The world of the module documentation and its people: bea (brand A), bob (brand B),
    olga (officer CI-D1), otto (officer CI-D2), sam (supervisor CI-R1), ada (admin, no scope),
    mo (monitor), pat (provider).

    Brands see the years of a reporting grid that begins in July (geo.periods), so the world's
    period, July 2024 - June 2025, is one of theirs and the previous one too."""
    app.config.update(BRAND_PERIOD_MONTHS=12, BRAND_PERIOD_FIRST_MONTH=7)
    with session_scope(app) as s:
        d1 = s.scalar(select(Area).where(Area.code == "CI-D1"))
        square = Polygon([(-6.6, 5.7), (-6.5, 5.7), (-6.5, 5.8), (-6.6, 5.8)])
        s.add(Village(code="V5", name="Kragui", area_id=d1.id, lat=5.75, lon=-6.55))
        s.add(Supplier(code="T1-B", name="Other Exporter", tier=1))
        s.add(Brand(code="BRAND-B", name="Brand B"))
        s.flush()
        ids = {code: s.scalar(select(Supplier.id).where(Supplier.code == code))
               for code in ("T1-EXP", "T2-COOP", "T3-GRP", "T1-B")}  # fmt: skip
        brands = {code: s.scalar(select(Brand.id).where(Brand.code == code))
                  for code in ("BRAND-A", "BRAND-B")}  # fmt: skip
        s.add_all([
            BrandSupplier(brand_id=brands["BRAND-A"], supplier_id=ids["T1-EXP"]),
            BrandSupplier(brand_id=brands["BRAND-B"], supplier_id=ids["T1-B"]),
            SupplierLink(buyer_id=ids["T1-EXP"], seller_id=ids["T2-COOP"]),
            SupplierLink(buyer_id=ids["T2-COOP"], seller_id=ids["T3-GRP"]),
        ])  # fmt: skip
        for village in s.scalars(select(Village)):
            village.cell = to_wkb(square)
        d1.geom = to_wkb(square)
        # the kept facts of the world's some 80 children made once, at the end of the block
        with builders.facts_at_end(s):
            b = Builder(s)
            now = at(2025, 3)
            v1 = b.population(
                "V1", "V1", "T2-COOP",
                ["child_labour"] * 3 + ["hazardous"] * 2 + ["worst_form"] + ["none"] * 14, 10, now,
            )  # fmt: skip
            for child in v1[:3]:
                b.remediated(child, at(2025, 4))
            b.remediated(v1[3], at(2025, 7, 5))  # after the period: not remediated in it
            # v1[19] was in child labour in V3 in January, then seen in V1 in March: counts in V1
            b.visit(at(2025, 1), "V3", "T3-GRP", b.households("HH-MOVE", "V3", "T3-GRP", 1)[0],
                    [(v1[19], "child_labour")])  # fmt: skip
            s.flush()
            b.population("BV1", "V1", "T1-B", ["worst_form"] * 5, 2, now)
            b.population("V2", "V2", "T2-COOP", ["child_labour", "none", "none"], 2, now)
            b.population("V5", "V5", "T3-GRP", ["none"] * 12, 6, now)
            b.population("V3", "V3", "T3-GRP", ["child_labour"] * 3 + ["none"] * 12, 8, now)
            b.population("BV4", "V4", "T1-B", ["hazardous"] * 15 + ["none"] * 15, 10, now)
            # the previous period
            before = at(2024, 3)
            b.population("PV1", "V1", "T2-COOP", ["child_labour"] * 2 + ["none"] * 8, 5, before)
            b.population("PV3", "V3", "T3-GRP", ["child_labour"] * 2 + ["none"] * 2, 2, before)
            # a visit before the previous period never counts
            b.population("OLD", "V1", "T2-COOP", ["worst_form"] * 12, 6, at(2022, 3))
    monkeypatch.setattr("clms.auth.generate_password_hash", lambda _password: password_hash)
    make_user("bea", "brand", brand="BRAND-A")
    make_user("bob", "brand", brand="BRAND-B")
    make_user("olga", "officer", areas=["CI-D1"])
    make_user("otto", "officer", areas=["CI-D2"])
    make_user("sam", "supervisor", areas=["CI-R1"])
    make_user("ada", "admin")
    make_user("mo", "monitor", areas=["CI-D1"])
    make_user("pat", "provider")
    return app


def table_of(app, username, level, **kwargs):
    with app.app_context(), session_scope(app) as s:
        user = s.scalar(select(User).where(User.username == username))
        settings = HotspotSettings.from_config(app.config)
        return hotspot_table(s, user, level, end=END, settings=settings, **kwargs)


def by_code(table) -> dict:
    return {row["code"]: row for row in table.rows}


# --- pure: the period and the interval ---------------------------------------------------------


def test_period_and_previous_period():
    p = Period.ending(dt.date(2025, 6, 30), 12)
    assert (p.start, p.end) == (dt.date(2024, 7, 1), dt.date(2025, 6, 30))
    assert (p.previous_start, p.previous_end) == (dt.date(2023, 7, 1), dt.date(2024, 6, 30))
    p = Period.ending(dt.date(2024, 3, 31), 1)
    assert (p.start, p.previous_start) == (dt.date(2024, 3, 1), dt.date(2024, 2, 1))
    p = Period.ending(dt.date(2024, 3, 30), 1)  # 31 March - 1 month: 29 February (leap year)
    assert (p.start, p.previous_start) == (dt.date(2024, 2, 29), dt.date(2024, 1, 29))


@pytest.mark.parametrize(
    "x, n, low, high",
    [(3, 10, 0.1078, 0.6032), (6, 20, 0.1455, 0.5190), (0, 10, 0.0, 0.2775), (10, 10, 0.7225, 1.0)],
)
def test_wilson_interval_known_values(x, n, low, high):
    lo, hi = wilson_interval(x, n)
    assert (round(lo, 4), round(hi, 4)) == (low, high)
    assert wilson_interval(0, 0) is None


# --- the figures -------------------------------------------------------------------------------


def test_officer_figures_checked_by_hand(world):
    table = table_of(world, "olga", "village")
    rows = by_code(table)
    assert set(rows) == {"V1", "V2", "V5"}  # CI-D1 only
    v1 = rows["V1"]
    # 20 of brand A's supply chain and 5 of brand B's: the officer sees every child of the area
    assert (v1["children"], v1["households"]) == (25, 12)
    assert (v1["child_labour"], v1["hazardous"], v1["worst_forms"]) == (11, 2, 6)
    assert v1["prevalence"] == round(11 / 25, 4)
    low, high = wilson_interval(11, 25)
    assert (v1["prevalence_low"], v1["prevalence_high"]) == (round(low, 4), round(high, 4))
    assert v1["previous_prevalence"] == 0.2
    assert v1["change"] == 24.0  # 44% - 20%
    # identified: the 6 and brand B's 5 (the child seen in child labour in V3 first was seen
    # outside this officer's areas); remediated in the period: 3
    assert v1["identified"] == 11
    assert v1["remediation_coverage"] == round(3 / 11, 4)
    assert "suppressed" not in v1
    total = table.total
    assert total["children"] == 25 + 3 + 12
    assert "V3" not in rows


def test_brand_figures_only_its_chain_with_suppression(world):
    table = table_of(world, "bea", "village")
    rows = by_code(table)
    assert set(rows) == {"V1", "V2", "V3", "V5"}  # V4 is brand B's only
    v1 = rows["V1"]
    assert (v1["children"], v1["households"]) == (20, 10)  # brand B's 5 never count
    assert (v1["child_labour"], v1["hazardous"], v1["worst_forms"]) == (6, 2, 1)
    assert v1["prevalence"] == 0.3
    assert (v1["prevalence_low"], v1["prevalence_high"]) == (0.1455, 0.519)
    # V1's previous cell (10 children) is hidden in the previous year as the brand sees it
    # (CI-D2 then held only V3's 4 children, so CI-D1 and V1 went with it): so is its figure here
    assert v1["previous_prevalence"] is None and v1["change"] is None
    assert v1["previous_suppressed"] is True
    assert v1["identified"] == 7 and v1["remediation_coverage"] == round(3 / 7, 4)
    assert rows["V2"] == {
        "level": "village",
        "code": "V2",
        "name": "Lobakuya",
        "area_code": "CI-D1",
        "suppressed": True,
        "reason": "fewer than 10 children monitored",
    }
    # CI-D1 (35 children) is published: V2 alone could be worked out, so V5 goes too
    assert rows["V5"]["suppressed"] and "children" not in rows["V5"]
    assert "secondary" in rows["V5"]["reason"] or "totals" in rows["V5"]["reason"]
    v3 = rows["V3"]
    assert v3["children"] == 15 and v3["prevalence"] == 0.2
    # its previous cell had 4 children: no previous figure for a brand
    assert v3["previous_prevalence"] is None and v3["change"] is None
    assert v3["previous_suppressed"] is True
    assert table.total["children"] == 20 + 3 + 12 + 15
    assert_brand_safe(table.as_dict(), min_children=10, min_households=5)


def test_brand_areas_suppliers_tiers(world):
    areas = by_code(table_of(world, "bea", "area"))
    assert areas["CI-D1"]["children"] == 35 and areas["CI-D2"]["children"] == 15
    assert areas["CI-R1"]["children"] == areas["CI"]["children"] == 50
    assert {r["area_level"] for r in areas.values()} == {"country", "region", "department"}
    departments = by_code(table_of(world, "bea", "area", area_level="department"))
    assert set(departments) == {"CI-D1", "CI-D2"}
    suppliers = by_code(table_of(world, "bea", "supplier"))
    assert set(suppliers) == {"T1-EXP", "T2-COOP", "T3-GRP"}  # never T1-B
    # a tier-1 supplier covers its whole chain; T2-COOP its own and T3-GRP's
    assert suppliers["T1-EXP"]["children"] == 50
    assert suppliers["T2-COOP"]["children"] == 50
    assert suppliers["T3-GRP"]["children"] == 27
    assert suppliers["T2-COOP"]["tier"] == 2
    tiers = by_code(table_of(world, "bea", "tier"))
    assert tiers["2"]["children"] == 23 and tiers["3"]["children"] == 27
    # restricted to a tier or a supplier's sub-chain (the map's layers): V3 shows its layers
    # (its one supplier's part, 15 children, is large); V2 (3 children) and V5 (hidden among all
    # suppliers) do not; nor does V1: the tier-2 total (23) minus V1's tier-2 layer (20) would
    # give V2's 3 children. A place hiding its layers is listed in every layer, even one it has
    # no child in (V1 and V2 have none in tier 3)
    only_tier_3 = by_code(table_of(world, "bea", "village", tier=3))
    assert set(only_tier_3) == {"V1", "V2", "V3", "V5"}
    assert {code for code, row in only_tier_3.items() if not row["suppressed"]} == {"V3"}
    assert only_tier_3["V3"]["children"] == 15
    assert only_tier_3["V1"] == {
        "level": "village", "code": "V1", "name": only_tier_3["V1"]["name"], "area_code": "CI-D1",
        "suppressed": True, "reason": "hidden so that no supplier's part of this place can be"
        " worked out",
    }  # fmt: skip
    with session_scope(world) as s:
        t3 = s.scalar(select(Supplier.id).where(Supplier.code == "T3-GRP"))
    assert by_code(table_of(world, "bea", "village", supplier_id=t3)) == only_tier_3


def test_map_layers_cannot_be_subtracted_from_the_whole(world):
    # 4 more children in V1, sold through T3-GRP (tier 3): V1 has 24, 20 of them in tier 2
    with session_scope(world) as s:
        Builder(s).population("X", "V1", "T3-GRP", ["child_labour"] * 4, 2, at(2025, 3))
    assert by_code(table_of(world, "bea", "village"))["V1"]["children"] == 24
    tier_2 = by_code(table_of(world, "bea", "village", tier=2))
    # published, V1's tier-2 layer (20) would give away tier 3's 4 children: 24 - 20
    assert tier_2["V1"]["suppressed"]
    assert by_code(table_of(world, "bea", "village", tier=3))["V1"]["suppressed"]
    # a cell hidden in the whole is hidden in every layer (V5: secondary suppression)
    assert by_code(table_of(world, "bea", "village", tier=3))["V5"]["suppressed"]
    with session_scope(world) as s:
        t2 = s.scalar(select(Supplier.id).where(Supplier.code == "T2-COOP"))
        t3 = s.scalar(select(Supplier.id).where(Supplier.code == "T3-GRP"))
    # V1's tier-3 part is small: V1 shows no layer at all, even T2-COOP's sub-chain, which
    # holds all of it (its other layers, compared with it, would give the small part)
    assert by_code(table_of(world, "bea", "village", supplier_id=t2))["V1"]["suppressed"]
    assert by_code(table_of(world, "bea", "village", supplier_id=t3))["V1"]["suppressed"]
    # V3 (one supplier, 15 children) shows its layers; the supplier and tier tables agree
    assert by_code(table_of(world, "bea", "village", supplier_id=t3))["V3"]["children"] == 15


def test_brand_b_never_sees_brand_a(world):
    table = table_of(world, "bob", "village")
    rows = by_code(table)
    assert set(rows) == {"V1", "V4"}
    assert rows["V1"]["suppressed"]  # 5 children
    # V4 (30) alone under CI-D2 and V1 suppressed under CI-D1: the total still hides V1
    assert table.total["children"] == 35
    assert by_code(table_of(world, "bob", "area"))["CI-D1"]["suppressed"]


def test_no_scope_gets_nothing(world):
    for username in ("ada", "mo", "pat"):
        table = table_of(world, username, "village")
        assert table.rows == [] and table.total["children"] == 0


def test_thresholds_can_only_be_raised(world):
    world.config["PRIVACY_MIN_CHILDREN"] = 16
    rows = by_code(table_of(world, "bea", "village"))
    assert rows["V3"]["suppressed"] and not rows["V1"]["suppressed"]
    rows = by_code(table_of(world, "bea", "village", min_children=3, min_households=1))
    assert rows["V3"]["suppressed"] and rows["V2"]["suppressed"]


# --- the API -----------------------------------------------------------------------------------


def token(client, username) -> dict:
    r = client.post("/api/v1/sessions", json={"username": username, "password": PASSWORD})
    return {"Authorization": f"Bearer {r.get_json()['token']}"}


SECRETS = ("Kwabena", "Zorro", "HH-", "Zanzibar", "Quokka", "5.123456", "6.654321", "child_id")


def assert_no_child_data(body: str) -> None:
    for secret in SECRETS:
        assert secret not in body, secret


def test_api_brand_answers_are_aggregates_only(world, client):
    headers = token(client, "bea")
    for level in ("village", "area", "supplier", "tier"):
        r = client.get(f"/api/v1/hotspots?level={level}&{QUERY}", headers=headers)
        assert r.status_code == 200
        body = r.get_json()
        assert_brand_safe(body, min_children=10, min_households=5)
        assert_no_child_data(r.get_data(as_text=True))
        assert body["level"] == level and body["period"]["end"] == "2025-06-30"
        assert body["rows"] and body["total"]["children"] == 50


def test_api_brand_csv_and_geojson(world, client):
    headers = token(client, "bea")
    r = client.get(f"/api/v1/hotspots?level=village&{QUERY}&format=csv", headers=headers)
    assert r.status_code == 200 and r.mimetype == "text/csv"
    text = r.get_data().decode("utf-8-sig")
    assert_no_child_data(text)
    records = {row["code"]: row for row in csv.DictReader(io.StringIO(text))}
    assert records["V1"]["children"] == "20" and records["V1"]["suppressed"] == "false"
    assert records["V2"]["children"] == "" and records["V2"]["suppressed"] == "true"
    assert records["V2"]["reason"]
    assert records[""]["level"] == "total"  # the scope total closes the file
    r = client.get(f"/api/v1/hotspots?level=village&{QUERY}&format=geojson", headers=headers)
    assert r.status_code == 200
    collection = r.get_json()
    assert_brand_safe(collection, min_children=10, min_households=5)
    assert_no_child_data(r.get_data(as_text=True))
    features = {f["properties"]["code"]: f for f in collection["features"]}
    assert features["V1"]["geometry"]["type"] == "Polygon"
    assert features["V1"]["properties"]["children"] == 20
    assert "children" not in features["V2"]["properties"]
    r = client.get(f"/api/v1/hotspots?level=area&{QUERY}&format=geojson", headers=headers)
    features = {f["properties"]["code"]: f for f in r.get_json()["features"]}
    assert features["CI-D1"]["geometry"]["type"] == "Polygon"
    assert features["CI-D2"]["geometry"] is None  # no boundary stored


ROLES = [
    ("olga", 200, {"V1", "V2", "V5"}),
    ("otto", 200, {"V3", "V4"}),
    ("sam", 200, {"V1", "V2", "V3", "V4", "V5"}),
    ("mo", 403, None),
    ("pat", 403, None),
    ("ada", 403, None),
]


def test_api_roles(world, client):
    for username, status, villages in ROLES:
        r = client.get(f"/api/v1/hotspots?level=village&{QUERY}", headers=token(client, username))
        assert r.status_code == status, username
        if villages is not None:
            rows = r.get_json()["rows"]
            assert {row["code"] for row in rows} == villages
            assert all("suppressed" not in row for row in rows)  # officers: exact figures
    # the officer of CI-D2 sees brand B's V4 too: every child of the area
    r = client.get(f"/api/v1/hotspots?level=village&{QUERY}", headers=token(client, "otto"))
    assert {row["code"]: row["children"] for row in r.get_json()["rows"]} == {"V3": 16, "V4": 30}
    assert client.get("/api/v1/hotspots?level=village").status_code == 401


BAD = [
    ("level=household", "level"),
    ("", "level"),
    ("level=village&end=2025-13-01", "end"),
    ("level=village&months=0", "months"),
    ("level=village&months=x", "months"),
    ("level=village&tier=zero", "tier"),
    ("level=village&format=xml", "format"),
    ("level=tier&format=geojson", "format"),
    ("level=area&area_level=planet", "area_level"),
]


def test_api_bad_parameters_and_suppliers(world, client):
    headers = token(client, "bea")
    for query, parameter in BAD:
        r = client.get(f"/api/v1/hotspots?{query}", headers=headers)
        assert r.status_code == 400, query
        assert r.get_json()["details"]["parameter"] == parameter
    # a code naming nothing and brand B's supplier answer the same: nothing leaks
    for code in ("NOPE", "T1-B"):
        r = client.get(f"/api/v1/hotspots?level=village&supplier={code}", headers=headers)
        assert r.status_code == 404
        assert code not in r.get_data(as_text=True)
    r = client.get(f"/api/v1/hotspots?level=village&supplier=T3-GRP&{QUERY}", headers=headers)
    rows = r.get_json()["rows"]
    assert {row["code"] for row in rows if not row["suppressed"]} == {"V3"}
    assert {row["code"] for row in rows} == {"V1", "V2", "V3", "V5"}


# --- web downloads and the command line --------------------------------------------------------


def login(client, username):
    r = client.post("/login", data={"username": username, "password": PASSWORD})
    assert r.status_code in (302, 303)


def test_web_exports_brand(world, client):
    login(client, "bea")
    r = client.get(f"/hotspots/export.csv?level=village&{QUERY}")
    assert r.status_code == 200 and "attachment" in r.headers["Content-Disposition"]
    assert_no_child_data(r.get_data(as_text=True))
    assert "V1" in r.get_data(as_text=True)
    r = client.get(f"/hotspots/export.geojson?level=area&{QUERY}")
    assert r.status_code == 200
    assert_brand_safe(r.get_json(), min_children=10, min_households=5)
    assert_no_child_data(r.get_data(as_text=True))


def test_web_export_xlsx_holds_the_csvs_cells(world, client):
    """The XLSX of a brand's table: the same cells as its CSV, behind the same gate, streamed
    as every export is (issue 19)."""
    login(client, "bea")
    data = client.get(f"/hotspots/export.csv?level=village&{QUERY}").get_data()
    csv_rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    r = client.get(f"/hotspots/export.xlsx?level=village&{QUERY}")
    assert r.status_code == 200 and r.headers["Cache-Control"] == "no-store"
    assert r.headers["Content-Disposition"].endswith('.xlsx"')
    book = openpyxl.load_workbook(io.BytesIO(r.data))
    rows = [["" if v is None else str(v).lower() if isinstance(v, bool) else str(v) for v in row]
            for row in book.active.iter_rows(values_only=True)]  # fmt: skip
    assert rows == csv_rows and len(rows) > 2
    assert_no_child_data(r.data.decode("latin-1"))
    client.post("/logout")
    login(client, "mo")
    assert client.get(f"/hotspots/export.xlsx?level=village&{QUERY}").status_code == 403


def test_a_french_brand_reads_why_a_cell_is_hidden_in_french(world, client):
    """The files a person downloads give the suppression reasons in their language (the API's
    answers keep the gate's words); nothing else in them changes."""
    login(client, "bea")
    english = client.get(f"/hotspots/export.csv?level=village&{QUERY}").get_data()
    french = client.get(
        f"/hotspots/export.csv?level=village&{QUERY}", headers={"Accept-Language": "fr"}
    ).get_data()

    def records(data):
        return list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))

    reasons = {r["reason"] for r in records(french) if r["suppressed"] == "true"}
    assert reasons and all(r.startswith(("moins de", "masqué")) for r in reasons), reasons
    assert "fewer than 10 children monitored" in {r["reason"] for r in records(english)}
    assert [{**r, "reason": ""} for r in records(french)] == [
        {**r, "reason": ""} for r in records(english)
    ]
    headers = {**token(client, "bea"), "Accept-Language": "fr"}
    api = client.get(f"/api/v1/hotspots?level=village&{QUERY}", headers=headers).get_json()
    assert "fewer than 10 children monitored" in {r.get("reason") for r in api["rows"]}


def test_web_exports_refused_to_others(world, client):
    login(client, "mo")
    assert client.get("/hotspots/export.csv?level=village").status_code == 403


def test_web_export_officer(world, client):
    login(client, "otto")
    r = client.get(f"/hotspots/export.csv?level=village&{QUERY}")
    records = list(csv.DictReader(io.StringIO(r.get_data().decode("utf-8-sig"))))
    assert {row["code"] for row in records} == {"V3", "V4", ""}


def test_cli_export(world, runner, tmp_path):
    out = tmp_path / "villages.geojson"
    result = runner.invoke(
        args=["hotspots", "export", "--brand", "BRAND-A", "--level", "village",
              "--format", "geojson", "--end", "2025-06-30", "-o", str(out)]
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    collection = json.loads(out.read_text())
    assert_brand_safe(collection, min_children=10, min_households=5)
    assert_no_child_data(out.read_text())
    out = tmp_path / "v.csv"
    result = runner.invoke(
        args=["hotspots", "export", "--user", "olga", "--level", "village", "--format", "csv",
              "--end", "2025-06-30", "-o", str(out)]
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Kwabena" not in out.read_text()
    with out.open(encoding="utf-8-sig") as f:
        assert {r["code"] for r in csv.DictReader(f)} == {"V1", "V2", "V5", ""}
    result = runner.invoke(
        args=["hotspots", "export", "--brand", "NOPE", "--level", "village", "-o", str(out)]
    )
    assert result.exit_code != 0 and "NOPE" in result.output
    result = runner.invoke(args=["hotspots", "export", "--level", "village", "-o", str(out)])
    assert result.exit_code != 0


def test_assert_brand_safe_refuses_child_data():
    with pytest.raises(PrivacyError):
        assert_brand_safe({"rows": [{"code": "V1", "household_code": "HH-1"}]})
    with pytest.raises(PrivacyError):
        assert_brand_safe({"type": "Feature", "geometry": {"type": "Point", "coordinates": [1, 2]},
                           "properties": {"code": "V1"}})  # fmt: skip
    with pytest.raises(PrivacyError):
        assert_brand_safe({"code": "V1", "suppressed": True, "children": 3})
    with pytest.raises(PrivacyError):
        assert_brand_safe({"code": "V1", "children": 3, "households": 2}, min_children=10)


def test_a_brands_previous_figures_are_those_it_sees_of_the_previous_period(world):
    """A brand's previous prevalence of a cell is the prevalence the brand is shown for that
    cell in the previous period of the grid, or nothing where that period hides the cell: the
    current year's rows never publish what the previous year's gate suppressed."""
    before = dt.date(2024, 6, 30)
    with world.app_context(), session_scope(world) as s:
        bea = s.scalar(select(User).where(User.username == "bea"))
        # a brand-new child in V1 last year makes the previous year's cells large enough to show
        b = Builder(s)
        b.population("V1-PREV", "V1", "T2-COOP", ["none"] * 12, 6, at(2024, 2))
        s.flush()
        compared = shown = 0
        settings = HotspotSettings.from_config(world.config)
        for level in ("village", "area", "supplier", "tier"):
            now = hotspot_table(s, bea, level, end=END, settings=settings)
            then = hotspot_table(s, bea, level, end=before, settings=settings)
            earlier = {row["code"]: row for row in [*then.rows, then.total]}
            for row in [*now.rows, now.total]:
                if row.get("suppressed"):
                    continue
                compared += 1
                old = earlier.get(row["code"])
                if old is None or old.get("suppressed"):
                    assert row["previous_prevalence"] is None and row["previous_suppressed"]
                else:
                    shown += 1
                    assert row["previous_prevalence"] == old["prevalence"]
                    assert row["change"] == round(100 * (row["prevalence"] - old["prevalence"]), 1)
    assert compared and shown
