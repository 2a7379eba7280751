"""The maps: the officer map (households and open alerts of the officer's areas, filtered), the
brand map (the published hotspot figures as a choropleth, nothing child-level), their pages, the
standalone export and ``clms hotspots map``.

The world is the hotspot tests' (tests/hotspots/test_hotspots.py: brand A's chain buys in V1, V2,
V3, V5; V2 is suppressed for a brand, V5 by secondary suppression), with a cell of its own for
each village, boundaries for the two departments and a few open alerts.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import time

import numpy as np
import pytest
import shapely
from shapely import box, to_wkb
from sqlalchemy import select

from clms.db import session_scope
from clms.errors import Problem
from clms.models import Alert, Area, Child, Household, Supplier, User, Village
from geo.hotspots.settings import HotspotSettings
from geo.maps.brand import brand_map_data, brand_map_html
from geo.maps.build import (
    GRID,
    BrandLayer,
    BrandMapData,
    build_brand_map,
    build_officer_map,
    encode_geometries,
)
from geo.maps.officer import OfficerFilters, officer_map_data
from tests import builders
from tests.conftest import PASSWORD
from tests.hotspots.test_hotspots import END, password_hash, world  # noqa: F401  (fixtures)

#: what must never reach a brand: child and head names, household codes, the visits' GPS point
#: and free text (all distinctive in the world), and the CDNs nothing may load from
SECRETS = ("Kwabena", "Zorro", "HH-", "Zanzibar", "Quokka", "5.123456", "6.654321", "-66543")
CDNS = ("cdn.jsdelivr", "cdnjs.cloudflare", "code.jquery", "bootstrapcdn", "unpkg.com")
PERIOD = {"from": "2025-01-01", "to": "2025-06-30"}


@pytest.fixture
def maps(world):  # noqa: F811
    """The hotspot world with a square cell for each village, the departments' boundaries, and
    open alerts: a critical one in V1 (household HH-V1-0), a low one in V3, a dismissed one in
    V1; kofi is an officer of CI-D2's neighbour with nothing in it."""
    app = world
    with session_scope(app) as s:
        for v in s.scalars(select(Village)):
            v.cell = to_wkb(box(v.lon - 0.02, v.lat - 0.02, v.lon + 0.02, v.lat + 0.02))
        for code, bounds in (("CI-D1", (-6.7, 5.6, -6.4, 5.9)), ("CI-D2", (-7.0, 5.4, -6.8, 5.6))):
            s.scalar(select(Area).where(Area.code == code)).geom = to_wkb(box(*bounds))
        _alert(s, "HH-V1-0", "critical", "new")
        _alert(s, "HH-V3-0", "low", "acknowledged")
        _alert(s, "HH-V1-1", "high", "dismissed")
    return app


def _alert(s, household_code: str, severity: str, status: str) -> Alert:
    household = s.scalar(select(Household).where(Household.code == household_code))
    child = s.scalar(select(Child).where(Child.household_id == household.id).limit(1))
    return builders.alert(
        s, child, supplier=household.supplier_id, category="hazardous", severity=severity,
        status=status, reasons=[], created_at=dt.datetime(2025, 3, 20, 9, tzinfo=dt.UTC),
        visit_due_at=None,
    )  # fmt: skip


def _user(s, username: str) -> User:
    return s.scalar(select(User).where(User.username == username))


def _settings(app) -> HotspotSettings:
    """The application's reporting grid and thresholds, as the views pass them down."""
    return HotspotSettings.from_config(app.config)


def _filters(**kwargs) -> OfficerFilters:
    return OfficerFilters.parse({**PERIOD, **kwargs}, END)


def _login(client, username: str) -> None:
    r = client.post("/login", data={"username": username, "password": PASSWORD})
    assert r.status_code in (302, 303)


def without_tokens(text: str) -> str:
    """The page without its CSRF tokens: random URL-safe base64, which can spell "HH-" by chance."""
    return re.sub(r'name="csrf_token" value="[^"]*"', 'name="csrf_token" value=""', text)


def _assert_no_child_data(app, text: str) -> None:
    text = without_tokens(text)
    for secret in SECRETS:
        assert secret not in text, secret
    with session_scope(app) as s:
        uids = list(s.scalars(select(Child.child_uid)))
    assert uids and not [uid for uid in uids if uid in text]


def _decode(encoded):
    """The page script's decoding, in Python: [[[(lon, lat), ...] ring] polygon] geometry."""
    out = []
    for polygon in encoded:
        rings = []
        for ring in polygon:
            xy = np.cumsum(np.array(ring).reshape(-1, 2), axis=0) / GRID
            rings.append([tuple(p) for p in xy])
        out.append(rings)
    return out


# --- building, without a database ----------------------------------------------------------------


def test_geometries_encode_once_and_decode_to_the_grid():
    with_hole = shapely.Polygon(
        [(-6.5, 5.5), (-6.4, 5.5), (-6.4, 5.6), (-6.5, 5.6)],
        [[(-6.47, 5.53), (-6.43, 5.53), (-6.43, 5.57), (-6.47, 5.57)]],
    )
    multi = shapely.MultiPolygon([box(-7.0, 6.0, -6.9, 6.1), box(-6.8, 6.0, -6.7, 6.12345)])
    encoded = encode_geometries([to_wkb(with_hole), None, to_wkb(multi)])
    assert len(encoded) == 3 and encoded[1] == []
    hole = _decode(encoded[0])
    assert len(hole) == 1 and len(hole[0]) == 2  # one polygon: its shell and its hole
    assert shapely.Polygon(hole[0][0], [hole[0][1]]).equals_exact(with_hole, 1e-9)
    parts = _decode(encoded[2])
    assert len(parts) == 2
    # on the 1e-4 grid: 6.12345 became 6.1234 or 6.1235
    assert max(y for x, y in parts[1][0]) == pytest.approx(6.12345, abs=0.6e-4)
    assert all(isinstance(n, int) for n in encoded[2][1][0])


def _synthetic(n_cells: int, n_layers: int) -> BrandMapData:
    rng = np.random.default_rng(7)
    points = shapely.points(rng.uniform(-8, -6, n_cells), rng.uniform(5, 7, n_cells))
    frame = box(-8, 5, -6, 7)
    cells = shapely.get_parts(
        shapely.voronoi_polygons(shapely.multipoints(points), extend_to=frame)
    )
    wkbs = shapely.to_wkb(shapely.intersection(cells, frame))
    data = BrandMapData(cells=[(f"V{i}", f"Village {i}", w) for i, w in enumerate(wkbs)])
    row = {"households": 9, "children": 30, "child_labour": 6, "hazardous": 3, "worst_forms": 1,
           "prevalence": 0.2, "prevalence_low": 0.0951, "prevalence_high": 0.3729, "change": -1.5,
           "remediation_coverage": 0.8333}  # fmt: skip
    for k in range(n_layers):
        rows = {f"V{i}": dict(row) for i in range(n_cells) if i % n_layers == k or k == 0}
        data.layers.append(BrandLayer(f"Layer {k}", "village", rows))
    return data


def test_brand_map_size_grows_with_the_cells_not_with_the_layers():
    start = time.perf_counter()
    one = build_brand_map(_synthetic(400, 1)).get_root().render()
    elapsed = time.perf_counter() - start
    six = build_brand_map(_synthetic(400, 6)).get_root().render()
    assert elapsed < 2
    # six layers add only their figure tables (about 60 bytes a covered cell), not geometries
    assert len(six) - len(one) < 2 * 400 * 60
    assert len(one) < 200_000 + 400 * 400  # Leaflet inlined (~160 kB) and ~400 bytes a cell
    assert six.count('"Layer 5"') == 2 and "L.polygon" in six  # the layer, its control entry
    for cdn in CDNS:
        assert cdn not in six


def test_a_layer_copies_only_the_published_figures():
    data = _synthetic(3, 1)
    data.layers[0].rows["V1"] = {"suppressed": True, "reason": "fewer than 10 children"}
    # a row carrying more than figures (it never should): the extra keys stay out of the map
    data.layers[0].rows["V2"].update(household_code="HH-Leak", child_name="Kwabena Leak")
    html = build_brand_map(data).get_root().render()
    assert "HH-Leak" not in html and "Kwabena" not in html
    assert "fewer than 10 children" not in html  # the reason is for the table, not needed here
    assert "[1]" in html and "Not enough data" in html


# --- the officer map ------------------------------------------------------------------------------


def test_officer_sees_only_the_households_and_alerts_of_their_areas(maps):
    with session_scope(maps) as s:
        olga = officer_map_data(s, _user(s, "olga"), _filters())
        otto = officer_map_data(s, _user(s, "otto"), _filters())
    olga_codes = {row[2] for row in olga.households}
    assert {c.split("-")[1] for c in olga_codes} == {"V1", "BV1", "V2", "V5"}
    assert not [c for c in olga_codes if c.startswith(("HH-V3", "HH-BV4", "HH-MOVE"))]
    assert {row[2] for row in otto.households} & olga_codes == set()
    # the point is the latest visit's GPS; the last visit date and open alerts in the popup
    first = next(row for row in olga.households if row[2] == "HH-V1-0")
    assert first[:2] == [5.123456, -6.654321] and first[3] == "Gnamagui"
    assert first[4] == "2025-03-15" or first[4] is None
    assert first[5] == 1
    # open alerts only (the dismissed one is not there), in scope only
    assert [(a[3], a[5]) for a in olga.alerts] == [("critical", "HH-V1-0")]
    assert [(a[3], a[5]) for a in otto.alerts] == [("low", "HH-V3-0")]


@pytest.mark.parametrize(
    "kwargs, villages, alerts",
    [
        ({"village": "V2"}, {"V2"}, 0),
        ({"supplier": "T3-GRP"}, {"V5"}, 0),
        ({"area": "CI-D1"}, {"V1", "BV1", "V2", "V5"}, 1),
        ({"severity": "low"}, {"V1", "BV1", "V2", "V5"}, 0),
        ({"from": "2025-04-01"}, set(), 0),
    ],
)
def test_officer_map_filters(maps, kwargs, villages, alerts):
    with session_scope(maps) as s:
        data = officer_map_data(s, _user(s, "olga"), _filters(**kwargs))
    assert {row[2].split("-")[1] for row in data.households} == villages
    assert len(data.alerts) == alerts


@pytest.mark.parametrize(
    "args, parameter",
    [
        ({"from": "2025-13-01"}, "from"),
        ({"from": "2025-06-01", "to": "2025-01-01"}, "from"),
        ({"severity": "urgent"}, "severity"),
        ({"village": "NOPE"}, "village"),
        ({"area": "NOPE"}, "area"),
        ({"supplier": "NOPE"}, "supplier"),
    ],
)
def test_officer_map_refuses_bad_filters_naming_them(maps, args, parameter):
    with session_scope(maps) as s, pytest.raises(Problem) as raised:
        officer_map_data(s, _user(s, "olga"), OfficerFilters.parse(args, END))
    assert raised.value.details["parameter"] == parameter


def test_officer_map_html_has_no_child_and_links_alerts(maps):
    with session_scope(maps) as s:
        data = officer_map_data(s, _user(s, "olga"), _filters())
        alert_id = s.scalar(select(Alert.id).where(Alert.severity == "critical"))
    html = build_officer_map(data, alert_url="/alerts/{id}").get_root().render()
    assert "HH-V1-0" in html and "markerClusterGroup" in html
    assert "/alerts/{id}" in html and f',{alert_id},"critical"' in html
    for secret in ("Kwabena", "Zorro", "Zanzibar", "Quokka", "CH-"):
        assert secret not in html
    for cdn in CDNS:
        assert cdn not in html


# --- the brand map ------------------------------------------------------------------------------


def test_brand_map_data_layers_and_suppression(maps):
    with maps.app_context(), session_scope(maps) as s:
        data = brand_map_data(s, _user(s, "bea"), end=END, settings=_settings(maps))
    labels = [str(layer.label) for layer in data.layers]
    assert labels[0] == "Villages: all suppliers" and labels[-1] == "Areas"
    assert "Villages: tier 2 suppliers" in labels and "Villages: Coop Soubré Espoir" in labels
    everything = data.layers[0].rows
    assert set(everything) == {"V1", "V2", "V3", "V5"}  # V4 is brand B's only
    assert everything["V2"]["suppressed"] and everything["V5"]["suppressed"]
    assert everything["V1"]["children"] == 20
    # V5 is hidden among all suppliers: its tier's layer (the same children) hides it too
    tier3 = data.layers[labels.index("Villages: tier 3 suppliers")].rows
    assert tier3["V5"]["suppressed"] and "children" not in tier3["V5"]
    # every place hiding its layers is listed in each of them (geo.privacy.layer_places)
    assert set(tier3) == {"V1", "V2", "V3", "V5"}
    assert {code for code, row in tier3.items() if not row["suppressed"]} == {"V3"}
    assert {code for code, _name, _geom in data.cells} == {"V1", "V2", "V3", "V5"}
    assert {code for code, _name, _geom in data.areas} == {"CI-D1", "CI-D2"}


def test_a_lazy_brand_map_reads_one_table_and_fetches_the_others(maps, monkeypatch):
    import geo.maps.brand

    calls = []
    real = geo.maps.brand._hotspot_tables
    monkeypatch.setattr(
        geo.maps.brand, "_hotspot_tables", lambda *a, **k: calls.append((a[2], k)) or real(*a, **k)
    )
    with maps.app_context(), session_scope(maps) as s:
        data = brand_map_data(s, _user(s, "bea"), end=END, lazy=True, settings=_settings(maps))
    # one aggregation: the tables of the page beside the map, no layer
    [(levels, options)] = calls
    assert levels == geo.maps.brand.PAGE_LEVELS
    assert not options["tiers"] and not options["supplier_ids"]
    assert data.layers[0].rows is not None
    assert [layer.query for layer in data.layers[1:4]] == [{"tier": 1}, {"tier": 2}, {"tier": 3}]
    assert data.layers[-1].query == {"area_level": "department"}
    html = build_brand_map(data, layer_url="/map/layer.json?months=12").get_root().render()
    assert "/map/layer.json?months=12\\u0026kind=village\\u0026tier=2" in html
    with pytest.raises(ValueError):
        build_brand_map(data)  # a layer to fetch, and nowhere to fetch it from


def test_brand_map_html_holds_no_child_level_data(maps):
    with maps.app_context(), session_scope(maps) as s:
        html = brand_map_html(s, _user(s, "bea"), end=END, settings=_settings(maps))
    _assert_no_child_data(maps, html)
    assert "Gnamagui" in html and "Not enough data" in html and "Children in child labour" in html
    assert "geoBoundaries" in html
    # no point, no marker of any kind in the map's own script (the last one, after Leaflet's)
    script = html.rsplit("<script>", 1)[1]
    assert "L.polygon" in script and "Marker" not in script and "marker" not in script
    for cdn in CDNS:
        assert cdn not in html


def test_brand_map_in_french(maps):
    with maps.app_context(), session_scope(maps) as s:
        data = brand_map_data(s, _user(s, "bea"), end=END, settings=_settings(maps))
    from clms.i18n import translator

    html = build_brand_map(data, translate=translator("fr"), locale="fr").get_root().render()
    assert "Données insuffisantes" in html and "Villages : tous les fournisseurs" in html


# --- the pages ------------------------------------------------------------------------------------


def test_brand_pages(maps, client):
    _login(client, "bea")
    r = client.get("/")
    assert r.status_code == 302 and r.headers["Location"].endswith("/map")
    r = client.get("/map?end=2025-06-30")
    page = r.get_data(as_text=True)
    assert r.status_code == 200
    assert 'src="/map/frame?' in page and "/map/export.html?" in page
    assert "Gnamagui" in page and "Not enough data" in page  # the table below the map
    # the households of the children counted, not the KPIs' households visited ("covered")
    assert "Households of children monitored" in page and ">Households<" not in page
    assert "/hotspots/export.csv?" in page and "/hotspots/export.geojson?" in page
    _assert_no_child_data(maps, page)
    r = client.get("/map/frame?end=2025-06-30")
    frame = r.get_data(as_text=True)
    assert r.status_code == 200 and "frame-ancestors 'self'" in r.headers["Content-Security-Policy"]
    assert "/static/vendor/node_modules/leaflet/dist/leaflet.js" in frame
    _assert_no_child_data(maps, frame)
    r = client.get("/map/export.html?end=2025-06-30&months=12")
    assert r.status_code == 200 and "attachment" in r.headers["Content-Disposition"]
    export = r.get_data(as_text=True)
    assert "/static/" not in export and "Leaflet" in export  # inlined: works offline
    _assert_no_child_data(maps, export)
    r = client.get("/static/vendor/node_modules/leaflet/dist/leaflet.js")
    assert r.status_code == 200
    r.close()
    r = client.get("/map?months=0")
    assert r.status_code == 400 and "months" in r.get_data(as_text=True)


def _downloads(page: str) -> list[str]:
    return [
        href.replace("&amp;", "&")
        for href in re.findall(r'href="(/hotspots/export\.[a-z]+\?[^"]+)"', page)
    ]


def test_the_brand_page_links_the_downloads_of_each_table_for_its_period(maps, client):
    _login(client, "bea")
    page = client.get("/map?end=2025-06-30&months=12").get_data(as_text=True)
    links = _downloads(page)
    # a CSV for each table, a GeoJSON for the tables with geometries, for the period shown
    assert sorted(re.search(r"level=(\w+)", u).group(1) + u[17:20] for u in links) == [
        "areacsv", "areageo", "areaxls", "suppliercsv", "supplierxls", "tiercsv", "tierxls",
        "villagecsv", "villagegeo", "villagexls",
    ]  # fmt: skip
    assert all("end=2025-06-30" in u and "months=12" in u for u in links)
    village_csv = next(u for u in links if "level=village" in u and ".csv" in u)
    r = client.get(village_csv)
    assert r.status_code == 200 and "attachment" in r.headers["Content-Disposition"]
    beas = r.get_data(as_text=True)
    gnamagui = next(line for line in beas.splitlines() if "Gnamagui" in line)
    assert ",false," in gnamagui  # published to bea: the figures the table shows
    village_geojson = next(u for u in links if "level=village" in u and ".geojson" in u)
    features = client.get(village_geojson).get_json()["features"]
    assert any(f["properties"].get("name") == "Gnamagui" for f in features)
    _assert_no_child_data(maps, r.get_data(as_text=True))
    # another brand following the same links gets its own figures (the route's gate), not these
    client.post("/logout")
    _login(client, "bob")
    r = client.get(village_csv)
    bobs = r.get_data(as_text=True)
    assert r.status_code == 200 and bobs != beas
    assert all(",false," not in line for line in bobs.splitlines() if "Gnamagui" in line)
    # and a monitor or a provider nothing
    for username in ("mo", "pat"):
        client.post("/logout")
        _login(client, username)
        assert client.get(village_csv).status_code == 403


def test_the_staff_hotspot_view_links_downloads_the_officer_may_make(maps, client):
    _login(client, "olga")
    links = _downloads(client.get("/map?view=hotspots&end=2025-06-30").get_data(as_text=True))
    assert links and all("view=" not in u for u in links)
    assert all(client.get(u).status_code == 200 for u in links)


def test_layer_figures_as_the_page_fetches_them(maps, client):
    with session_scope(maps) as s:
        ids = dict(s.execute(select(Supplier.code, Supplier.id)).all())
    _login(client, "bea")
    r = client.get("/map/layer.json?kind=village&tier=3&end=2025-06-30")
    assert r.status_code == 200
    rows = r.get_json()["rows"]
    # V5 hidden as among all suppliers; V1 and V2 hide their layers (their parts of tier 2 could
    # be worked out from the tier-2 total): listed as hidden even where they hold no tier-3 child
    assert set(rows) == {"V1", "V2", "V3", "V5"} and rows["V5"] == [] and rows["V1"] == []
    assert rows["V3"] and rows["V3"][0] is not None
    _assert_no_child_data(maps, r.get_data(as_text=True))
    r = client.get(f"/map/layer.json?supplier_id={ids['T3-GRP']}&end=2025-06-30")
    assert r.get_json()["rows"] == rows
    r = client.get("/map/layer.json?kind=area&area_level=department&end=2025-06-30")
    assert set(r.get_json()["rows"]) == {"CI-D1", "CI-D2"}
    # brand B's supplier is not on brand A's map
    assert client.get(f"/map/layer.json?supplier_id={ids['T1-B']}").status_code == 404
    assert client.get("/map/layer.json?kind=household").status_code == 400
    assert client.get("/map/layer.json?tier=two").status_code == 400
    # an officer's brand-style view: exact figures, the ten of a tooltip
    client.post("/logout")
    _login(client, "olga")
    rows = client.get("/map/layer.json?view=hotspots&tier=2&end=2025-06-30").get_json()["rows"]
    assert set(rows) == {"V1", "V2"} and len(rows["V1"]) == 10 and rows["V1"][1] == 20
    assert "Kwabena" not in json.dumps(rows)
    client.post("/logout")
    _login(client, "mo")
    assert client.get("/map/layer.json?tier=3").status_code == 403


def test_officer_pages(maps, client):
    _login(client, "olga")
    r = client.get("/map?from=2025-01-01&to=2025-06-30&severity=critical")
    page = r.get_data(as_text=True)
    assert r.status_code == 200 and 'name="severity"' in page and "view=hotspots" in page
    src = re.search(r'<iframe[^>]*src="([^"]+)"', page).group(1).replace("&amp;", "&")
    frame = client.get(src).get_data(as_text=True)
    assert "HH-V1-0" in frame and "HH-V3" not in frame and "Kwabena" not in frame
    r = client.get("/map?from=nonsense")
    assert r.status_code == 400 and "from" in r.get_data(as_text=True)
    assert client.get("/map/frame?village=NOPE").status_code == 400
    r = client.get("/map?view=hotspots&end=2025-06-30")
    assert r.status_code == 200 and "view=hotspots" in r.get_data(as_text=True)
    assert client.get("/map/frame?view=hotspots&end=2025-06-30").status_code == 200


def test_admin_without_scope_and_other_roles(maps, client):
    _login(client, "ada")
    r = client.get("/map")
    assert r.status_code == 200 and "No area or village is assigned to you" in r.get_data(
        as_text=True
    )
    assert client.get("/map/export.html").status_code == 403
    assert client.get("/map/layer.json?tier=1").status_code == 403
    for username in ("mo", "pat"):
        client.post("/logout")
        _login(client, username)
        assert client.get("/map").status_code == 403
        assert client.get("/map/frame").status_code == 403
        assert client.get("/map/export.html").status_code == 403


# --- the command line -----------------------------------------------------------------------------


def test_cli_writes_the_brand_map(maps, runner, tmp_path):
    out = tmp_path / "brand.html"
    result = runner.invoke(
        args=["hotspots", "map", "--brand", "BRAND-A", "--end", "2025-06-30", "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    html = out.read_text()
    assert "Gnamagui" in html and "Not enough data" in html
    _assert_no_child_data(maps, html)
    missing = tmp_path / "none.html"
    result = runner.invoke(args=["hotspots", "map", "--brand", "NOPE", "-o", str(missing)])
    assert result.exit_code != 0 and "NOPE" in result.output and not missing.exists()


def test_the_tables_figures_are_written_in_the_readers_language(app):
    """A brand's and an officer's hotspot tables write their counts, shares and points as the
    rest of the pages do: grouped, with the language's decimal sign (the French cards showed
    "1234" and "12.5 %")."""
    from clms.web.maps_views import figure

    row = {"children": 1234, "prevalence": 0.125, "change": -1.5, "up": 2.25, "none": None}
    nnbsp = "\u202f"
    with app.test_request_context(headers={"Accept-Language": "fr"}):
        assert figure(row, "children") == f"1{nnbsp}234"
        assert figure(row, "prevalence", "share") == "12,5\xa0%"
        assert figure(row, "change", "points") == "-1,5"
        assert figure(row, "up", "points") == "+2,2"  # half to even, as the shares
        assert figure(row, "none") == "—"
    with app.test_request_context(headers={"Accept-Language": "en"}):
        assert figure(row, "children") == "1,234"
        assert figure(row, "prevalence", "share") == "12.5%"
        assert (figure(row, "change", "points"), figure(row, "up", "points")) == ("-1.5", "+2.2")
