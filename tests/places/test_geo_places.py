"""Importing places: administrative boundaries (GeoJSON, zipped shapefile, GeoPackage), villages
(CSV points or polygons) and the village cells derived from them."""

from __future__ import annotations

import io
import json
import warnings
import zipfile

import geopandas as gpd
import numpy as np
import pytest
import shapely
from sqlalchemy import func, select
from sqlalchemy.orm import undefer

from clms.db import session_scope
from clms.models import Area, Village
from clms.places.areas import import_boundaries
from clms.places.localities import load_localities
from clms.places.villages import import_villages
from geo.boundaries import BoundaryError, country_outline, name_key, read_boundaries
from geo.cells import derive_cells, voronoi_cells
from geo.countries import PlaceError, village_code
from tests.conftest import PASSWORD, SHARED

BOUNDARIES = SHARED / "boundaries"
LOCALITIES = SHARED / "localities"
CIV_ADM2 = BOUNDARIES / "CIV-ADM2.geojson"
GHA_ADM2 = BOUNDARIES / "GHA-ADM2-shp.zip"
WOF_HEADER = "wof_id,name,lat,lon,country,area\n"


def _counts(app) -> tuple[int, int, int]:
    with session_scope(app) as s:
        return (
            s.scalar(select(func.count(Area.id))),
            s.scalar(select(func.count(Village.id))),
            s.scalar(select(func.count(Area.id)).where(Area.geom.is_not(None))),
        )


def _import(app, path, **options):
    with session_scope(app) as s:
        found = read_boundaries(path, known_country_geom=country_outline(s), **options)
        return import_boundaries(s, found)


def _geojson(tmp_path, features, name="areas.geojson", crs=None):
    """A GeoJSON file of ``(properties, geometry dict)`` pairs."""
    body = {
        "type": "FeatureCollection",
        "features": [{"type": "Feature", "properties": p, "geometry": g} for p, g in features],
    }
    if crs:
        body["crs"] = {"type": "name", "properties": {"name": crs}}
    path = tmp_path / name
    path.write_text(json.dumps(body), encoding="utf-8")
    return path


def _square(x, y, size=0.2):
    return shapely.geometry.mapping(shapely.box(x, y, x + size, y + size))


# --- every shared file imports -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "options", "n_features", "levels"),
    [
        ("boundaries/CIV-ADM2.geojson", {"level": "department"}, 33, {"department": 33}),
        ("boundaries/CIV-ADM3-shp.zip", {"level": "department"}, 108, {"department": 108}),
        ("boundaries/GHA-ADM2-shp.zip", {"level": "district"}, 139, {"district": 139}),
        ("boundaries/KHM-ADM2-shp.zip", {"level": "district"}, 197, {"district": 197}),
        ("localities/wof_ci_admin_polygons.geojson", {}, 61, {"region": 28, "department": 33}),
        ("localities/wof_gh_admin_polygons.geojson", {}, 120, {"region": 10, "department": 110}),
    ],
)
def test_every_shared_boundary_file_imports(app, name, options, n_features, levels):
    result = _import(app, SHARED / name, **options)
    assert (result.created, result.updated) == (n_features + 1, 0)  # and the country
    with session_scope(app) as s:
        areas = s.scalars(select(Area).options(undefer(Area.geom))).all()
        country = next(a for a in areas if a.level == "country")
        found = {}
        for a in areas:
            found[a.level] = found.get(a.level, 0) + 1
        assert found == {"country": 1, **levels}
        assert country.geom is None and country.code in ("CI", "GH", "KH")
        for a in areas:
            if a.level == "country":
                continue
            polygon = shapely.from_wkb(a.geom)
            assert polygon.is_valid and polygon.geom_type in ("Polygon", "MultiPolygon")
            assert a.country_code == country.country_code and a.parent_id is not None
        if "region" in levels:  # WOF: a county's parent is the region its wof_parent_id names
            by_id = {a.id: a for a in areas}
            for a in areas:
                if a.level == "department":
                    assert by_id[a.parent_id].level == "region"
                    assert a.code.startswith(country.code + "-WOF-")


def test_a_boundary_file_names_areas_by_stable_codes_and_is_idempotent(app):
    first = _import(app, CIV_ADM2, level="department")
    before = _counts(app)
    again = _import(app, CIV_ADM2, level="department")
    assert (first.created, again.created, again.updated) == (34, 0, 33)
    assert _counts(app) == before
    with session_scope(app) as s:
        nawa = s.scalar(select(Area).where(Area.name == "Nawa"))
        assert nawa.code == "CIV-ADM2-2-0-0-B27" or nawa.code.startswith("CIV-ADM2-2-0-0-B")
        # Soubré (6.59 W, 5.78 N) is in Nawa's polygon
        assert shapely.from_wkb(nawa.geom).contains(shapely.Point(-6.59, 5.78))


def test_geoboundaries_attaches_polygons_to_the_departments_of_the_wof_localities(app):
    csv_path = LOCALITIES / "wof_ci_localities.csv"
    with session_scope(app) as s:
        load_localities(s, csv_path, ["Haut-Sassandra", "Fromager", "Moyen-Comoe"], None)
    areas_before = _counts(app)[0]
    result = _import(app, CIV_ADM2, level="department")
    # Haut-Sassa (cut at ten characters), Goh and Indenie-Dj matched; 30 others created
    assert (result.matched_by_name, result.updated, result.created) == (3, 3, 30)
    assert _counts(app)[0] == areas_before + 30
    with session_scope(app) as s:
        haut = s.scalar(
            select(Area)
            .where(Area.code == "CI-HAUT-SASSANDRA-HAUT-SASSA")
            .options(undefer(Area.geom))
        )
        assert haut.geom is not None and haut.name == "Haut-Sassandra"  # the cut name completed
        assert s.scalar(select(func.count(Area.id)).where(Area.name == "Haut-Sassandra")) == 2
        # the one named Haut-Sassandra besides the department is the former region
        assert (
            s.scalar(
                select(func.count(Area.id)).where(
                    Area.name.in_(["Haut-Sassandra", "Goh", "Indenie-Djuablin"]),
                    Area.level == "department",
                )
            )
            == 3
        )


def test_update_only_leaves_other_features_out(app):
    with session_scope(app) as s:
        load_localities(s, LOCALITIES / "wof_ci_localities.csv", ["Fromager"], None)
        found = read_boundaries(CIV_ADM2, level="department")
        result = import_boundaries(s, found, update_only=True)
    assert (result.created, result.updated, result.skipped) == (0, 1, 32)


def test_a_parent_is_found_by_containment_in_the_level_above(app):
    _import(app, CIV_ADM2, level="region")
    _import(app, BOUNDARIES / "CIV-ADM3-shp.zip", level="department")
    with session_scope(app) as s:
        soubre = s.scalar(select(Area).where(Area.name == "Soubré", Area.level == "department"))
        assert soubre.parent.name == "Nawa" and soubre.parent.level == "region"
        assert soubre.parent.parent.level == "country"
        orphans = s.scalar(
            select(func.count(Area.id)).where(
                Area.level == "department", Area.parent_id == soubre.parent.parent_id
            )
        )
        assert orphans == 0


def test_names_match_without_accents_filler_words_or_cut_ends():
    assert name_key("District Autonome D'Abidjan") == name_key("Abidjan")
    assert name_key("N'zi-Comoé") == name_key("N'ZI COMOE")
    assert name_key("District Autonome De Yamousso*") == "YAMOUSSO"


def test_a_geopackage_layer_is_chosen(app, tmp_path):
    path = tmp_path / "areas.gpkg"
    regions = gpd.GeoDataFrame(
        {"code": ["R1"], "name": ["Nord"]}, geometry=[shapely.box(-6, 8, -5, 9)], crs=4326
    )
    districts = gpd.GeoDataFrame(
        {"code": ["D1", "D2"], "name": ["Ouest", "Est"]},
        geometry=[shapely.box(-6, 8, -5.5, 9), shapely.box(-5.5, 8, -5, 9)],
        crs=4326,
    )
    regions.to_file(path, layer="regions")
    districts.to_file(path, layer="districts")
    with pytest.raises(BoundaryError, match="holds 2 layers; choose one with --layer"):
        _import(app, path, level="region", country_code="CIV")
    _import(app, path, level="region", country_code="CIV", layer="regions")
    result = _import(app, path, level="district", country_code="CIV", layer="districts")
    assert result.created == 2
    with session_scope(app) as s:
        est = s.scalar(select(Area).where(Area.code == "CI-D2"))
        assert est.name == "Est" and est.parent.code == "CI-R1"


# --- bad files are refused whole ---------------------------------------------------------------


def _bow_tie_file(tmp_path):
    bow_tie = {"type": "Polygon", "coordinates": [[[-6, 6], [-5, 7], [-5, 6], [-6, 7], [-6, 6]]]}
    return _geojson(
        tmp_path,
        [
            ({"shapeID": "A1", "shapeName": "Bonne"}, _square(-7, 7)),
            ({"shapeID": "A2", "shapeName": "Papillon"}, bow_tie),
        ],
    )


def test_an_invalid_polygon_is_named_with_why_and_repaired_only_when_asked(app, tmp_path):
    path = _bow_tie_file(tmp_path)
    with pytest.raises(BoundaryError) as e:
        _import(app, path, level="region", country_code="CIV")
    message = str(e.value)
    assert "feature 2 ('Papillon', A2): invalid polygon (Self-intersection" in message
    assert "--repair" in message and "Bonne" not in message
    assert _counts(app) == (0, 0, 0)
    result = _import(app, path, level="region", country_code="CIV", repair=True)
    assert result.created == 3 and any("repaired" in n for n in result.notes)
    with session_scope(app) as s:
        wkb = s.scalar(select(Area.geom).where(Area.name == "Papillon"))
        repaired = shapely.from_wkb(wkb)
        assert repaired.is_valid and repaired.area == pytest.approx(0.5)


def test_null_and_non_polygon_geometries_are_named(app, tmp_path):
    path = _geojson(
        tmp_path,
        [
            ({"shapeID": "A1", "shapeName": "Vide"}, None),
            ({"shapeID": "A2", "shapeName": "Route"}, {"type": "LineString",
                                                      "coordinates": [[-6, 6], [-5, 7]]}),
        ],
    )  # fmt: skip
    with pytest.raises(BoundaryError) as e:
        _import(app, path, level="region", country_code="CIV")
    assert "feature 1 ('Vide', A1): no geometry" in str(e.value)
    assert "feature 2 ('Route', A2): a LineString, not a polygon" in str(e.value)
    assert _counts(app) == (0, 0, 0)


def test_a_missing_crs_is_refused_until_declared(app, tmp_path):
    frame = gpd.GeoDataFrame(
        {"code": ["A1"], "name": ["Sans CRS"]}, geometry=[shapely.box(-6, 6, -5, 7)]
    )
    folder = tmp_path / "shp"
    folder.mkdir()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # pyogrio warns that there is no CRS
        frame.to_file(folder / "areas.shp")
    path = tmp_path / "areas.zip"
    with zipfile.ZipFile(path, "w") as z:
        for part in folder.iterdir():
            z.write(part, part.name)
    assert not any(p.suffix == ".prj" for p in folder.iterdir())
    with pytest.raises(BoundaryError, match="declares no coordinate reference system"):
        _import(app, path, level="region", country_code="CIV")
    assert _counts(app) == (0, 0, 0)
    assert _import(app, path, level="region", country_code="CIV", crs="EPSG:4326").created == 2


def test_projected_metres_declared_as_degrees_are_refused(app, tmp_path):
    metres = gpd.GeoSeries([shapely.box(-6.5, 5.5, -6.0, 6.0)], crs=4326).to_crs(32630)
    path = _geojson(
        tmp_path,
        [({"shapeID": "M1", "shapeName": "Metres"}, shapely.geometry.mapping(metres.iloc[0]))],
    )
    with pytest.raises(BoundaryError) as e:
        _import(app, path, level="region", country_code="CIV")
    assert "feature 1 ('Metres', M1): coordinates up to" in str(e.value)
    assert "are not degrees" in str(e.value) and "--crs" in str(e.value)
    assert _counts(app) == (0, 0, 0)
    # declared as what they are, they are reprojected
    result = _import(app, path, level="region", country_code="CIV", crs="EPSG:32630")
    assert result.created == 2 and any("EPSG:32630" in n for n in result.notes)
    with session_scope(app) as s:
        polygon = shapely.from_wkb(s.scalar(select(Area.geom).where(Area.code == "CI-M1")))
        assert polygon.bounds == pytest.approx((-6.5, 5.5, -6.0, 6.0), abs=1e-6)


def test_swapped_longitude_and_latitude_are_named(app, tmp_path):
    path = _geojson(
        tmp_path,
        [
            ({"shapeID": "S1", "shapeName": "Droit"}, _square(-6, 6)),
            ({"shapeID": "S2", "shapeName": "Renverse"}, _square(6, -6)),
        ],
    )
    with pytest.raises(BoundaryError) as e:
        _import(app, path, level="region", country_code="CIV")
    assert "feature 2 ('Renverse', S2): longitude and latitude look swapped" in str(e.value)
    assert "Droit" not in str(e.value)
    assert _counts(app) == (0, 0, 0)


def test_features_outside_the_country_are_named(app):
    with pytest.raises(BoundaryError) as e:
        _import(app, BOUNDARIES / "KHM-ADM2-shp.zip", level="district", country_code="CIV")
    message = str(e.value)
    assert "197 feature(s) cannot be imported (features outside the country)" in message
    assert "feature 1 ('Mongkol Borei', KHM-ADM2-2_0_0-B1): outside Côte d'Ivoire" in message
    assert "and 177 more" in message
    assert _counts(app) == (0, 0, 0)


def test_features_outside_an_imported_country_boundary_are_named(app, tmp_path):
    with session_scope(app) as s:
        s.add(
            Area(code="CI", name="Côte d'Ivoire", level="country", country_code="CIV",
                 geom=shapely.to_wkb(shapely.box(-7, 5, -5, 7)))
        )  # fmt: skip
    path = _geojson(
        tmp_path,
        [
            ({"shapeID": "I1", "shapeName": "Dedans"}, _square(-6, 6)),
            ({"shapeID": "O1", "shapeName": "Dehors"}, _square(-4, 9)),
        ],
    )
    with pytest.raises(BoundaryError) as e:
        _import(app, path, level="region", country_code="CIV")
    assert "feature 2 ('Dehors', O1): outside the imported boundary" in str(e.value)
    assert _counts(app) == (1, 0, 1)


def test_missing_fields_and_repeated_codes_are_named(app, tmp_path):
    path = _geojson(
        tmp_path,
        [
            ({"shapeID": "A1", "shapeName": "Un"}, _square(-6, 6)),
            ({"shapeID": "A1", "shapeName": "Deux"}, _square(-6.5, 6)),
            ({"shapeID": "", "shapeName": "Trois"}, _square(-7, 6)),
        ],
    )
    with pytest.raises(BoundaryError) as e:
        _import(app, path, level="region", country_code="CIV")
    assert "feature 2 ('Deux', A1): code 'A1' again (first at feature 1)" in str(e.value)
    assert "feature 3 ('Trois', no code): no code in field 'shapeID'" in str(e.value)
    with pytest.raises(BoundaryError, match="say which level"):
        _import(app, path, country_code="CIV")
    with pytest.raises(BoundaryError, match="which country is this"):
        _import(app, path, level="region")
    assert _counts(app) == (0, 0, 0)


# --- villages ----------------------------------------------------------------------------------


def test_ghana_localities_get_their_districts_by_spatial_join_and_cells(app):
    _import(app, GHA_ADM2, level="district")
    with session_scope(app) as s:
        result = import_villages(s, LOCALITIES / "wof_gh_localities.csv")
    assert (result.created, result.updated) == (10032, 0)
    assert 0 < len(result.snapped) < 150  # coast and borders drawn by different sources
    with session_scope(app) as s:
        levels = dict(
            s.execute(
                select(Area.level, func.count(Village.id)).join(Village).group_by(Area.level)
            ).all()
        )
        assert levels == {"district": 10032}
        # checked independently: a sample of villages lies in its district's polygon
        districts = {
            a.id: shapely.from_wkb(a.geom)
            for a in s.scalars(select(Area).options(undefer(Area.geom)))
            if a.geom
        }
        villages = s.scalars(select(Village).order_by(Village.code)).all()
        snapped = {w.split("(")[1].split(",")[0] for w in result.snapped}
        inside = [v for v in villages if v.code not in snapped]
        for v in inside[:: len(inside) // 200]:
            assert districts[v.area_id].contains(shapely.Point(v.lon, v.lat)), v.code
        abakle = s.scalar(select(Village).where(Village.code == village_code("1209019223")))
        assert abakle.name == "Abakle"
    with session_scope(app) as s:
        cells = derive_cells(s)
    assert cells.cells + len(cells.duplicates) + len(cells.empty) == 10032
    assert cells.groups == 139 and cells.hull_groups == []
    # one district's cells cover it without overlaps
    with session_scope(app) as s:
        district = s.scalar(
            select(Area).where(Area.name == "Ahanta West").options(undefer(Area.geom))
        )
        polygon = shapely.from_wkb(district.geom)
        rows = s.execute(
            select(Village.cell, Village.cell_kind).where(
                Village.area_id == district.id, Village.cell.is_not(None)
            )
        ).all()
    _assert_tiles([shapely.from_wkb(c) for c, _ in rows], polygon)
    assert {kind for _, kind in rows} == {"voronoi"}


def test_ivory_coast_localities_import_by_spatial_join(app):
    _import(app, CIV_ADM2, level="department")
    with session_scope(app) as s:
        result = import_villages(s, LOCALITIES / "wof_ci_localities.csv")
        assert result.created == 10683
        again = import_villages(s, LOCALITIES / "wof_ci_localities.csv")
        assert (again.created, again.updated) == (0, 10683)
    with session_scope(app) as s:
        soubre = s.scalar(select(Village).where(Village.name == "Soubré"))
        assert soubre.area.name == "Nawa"


def _village_csv(tmp_path, rows: str, header=WOF_HEADER):
    path = tmp_path / "villages.csv"
    path.write_text(header + rows, encoding="utf-8")
    return path


def _two_departments(app):
    with session_scope(app) as s:
        country = Area(code="CI", name="Côte d'Ivoire", level="country", country_code="CIV")
        s.add(country)
        s.flush()
        for code, box in (("CI-W", (-7, 5, -6, 6)), ("CI-E", (-6, 5, -5, 6))):
            s.add(Area(code=code, name=code, level="department", country_code="CIV",
                       parent_id=country.id, geom=shapely.to_wkb(shapely.box(*box))))  # fmt: skip


def test_bad_village_rows_are_named_and_nothing_is_imported(app, tmp_path):
    _two_departments(app)
    path = _village_csv(
        tmp_path,
        "1,Bon,5.5,-6.5,CI,CI-W\n"
        "2,Inconnu,5.5,-6.5,CI,CI-NOWHERE\n"
        "3,Texte,abc,-6.5,CI,\n"
        "4,,5.5,-6.5,CI,\n"
        "5,Renverse,-6.5,5.5,CI,\n"
        "6,Londres,51.5,-0.12,CI,\n"
        "1,Encore,5.5,-6.4,CI,\n",
    )
    with session_scope(app) as s, pytest.raises(PlaceError) as e:
        import_villages(s, path, area_column="area")
    message = str(e.value)
    assert "line 4 (3, 'Texte'): coordinates 'abc', '-6.5' are not numbers" in message
    assert "line 5 (4, ''): no name" in message
    assert _counts(app)[1] == 0
    # with the unreadable rows fixed, the rest is checked: same id, swapped, abroad, unknown area
    path = _village_csv(
        tmp_path,
        "1,Bon,5.5,-6.5,CI,CI-W\n"
        "2,Inconnu,5.5,-6.5,CI,CI-NOWHERE\n"
        "5,Renverse,-6.5,5.5,CI,\n"
        "6,Londres,51.5,-0.12,CI,\n"
        "1,Encore,5.5,-6.4,CI,\n",
    )
    with session_scope(app) as s, pytest.raises(PlaceError) as e:
        import_villages(s, path, area_column="area")
    message = str(e.value)
    assert "line 4 (V5, 'Renverse'): lat -6.5, lon 5.5: latitude and longitude look swapped" in (
        message
    )
    assert "line 5 (V6, 'Londres'): lat 51.5, lon -0.12: outside Côte d'Ivoire" in message
    assert "line 6 (V1, 'Encore'): the same id as line 2" in message
    path = _village_csv(tmp_path, "1,Bon,5.5,-6.5,CI,CI-W\n2,Inconnu,5.5,-6.5,CI,CI-NOWHERE\n")
    with session_scope(app) as s, pytest.raises(PlaceError) as e:
        import_villages(s, path, area_column="area")
    assert "line 3 (V2, 'Inconnu'): unknown area code 'CI-NOWHERE'" in str(e.value)
    assert _counts(app)[1] == 0


def test_a_point_far_from_every_area_is_named(app, tmp_path):
    _two_departments(app)
    path = _village_csv(tmp_path, "1,Pres,5.5,-6.5,CI,\n2,Loin,9.5,-3.0,CI,\n")
    with session_scope(app) as s, pytest.raises(PlaceError) as e:
        import_villages(s, path)
    assert "line 3 (V2, 'Loin'): lat 9.5, lon -3.0 is in no imported area" in str(e.value)
    assert _counts(app)[1] == 0


def test_village_polygons_from_wkt_keep_their_land(app, tmp_path):
    _two_departments(app)
    polygon = shapely.box(-6.9, 5.1, -6.7, 5.3)
    path = _village_csv(
        tmp_path,
        f'1,Champ,,,CI,,"{polygon.wkt}"\n',
        header="wof_id,name,lat,lon,country,area,wkt\n",
    )
    with pytest.raises(PlaceError, match="missing column"), session_scope(app) as s:
        import_villages(s, path, wkt_column="shape")
    polygons = _village_csv(tmp_path, f'1,Champ,CI,"{polygon.wkt}"\n', "wof_id,name,country,wkt\n")
    with session_scope(app) as s:
        result = import_villages(s, polygons, wkt_column="wkt")
    assert result.polygons == 1
    points = tmp_path / "points.csv"
    points.write_text(
        WOF_HEADER + "2,Point A,5.8,-5.8,CI,\n3,Point B,5.2,-5.3,CI,\n4,Point C,5.6,-6.5,CI,\n"
        "5,Point D,5.9,-6.8,CI,\n"
    )
    with session_scope(app) as s:
        import_villages(s, points)
        cells = derive_cells(s)
    assert cells.polygons_kept == 1 and cells.groups == 2
    with session_scope(app) as s:
        rows = s.execute(
            select(Village.name, Village.cell, Village.cell_kind, Area.code, Area.geom).join(Area)
        ).all()
    kinds = {name: kind for name, _, kind, _, _ in rows}
    assert kinds == {"Champ": "polygon", "Point A": "voronoi", "Point B": "voronoi",
                     "Point C": "voronoi", "Point D": "voronoi"}  # fmt: skip
    west = [shapely.from_wkb(cell) for _, cell, _, code, _ in rows if code == "CI-W"]
    _assert_tiles(west, shapely.box(-7, 5, -6, 6))
    champ = next(shapely.from_wkb(c) for n, c, *_ in rows if n == "Champ")
    assert champ.equals(polygon)


def test_villages_from_a_geopackage_of_polygons(app, tmp_path):
    _two_departments(app)
    path = tmp_path / "villages.gpkg"
    gpd.GeoDataFrame(
        {"code": ["VP1", "VP2"], "name": ["Nord", "Sud"]},
        geometry=[shapely.box(-6.9, 5.6, -6.8, 5.7), shapely.box(-5.9, 5.1, -5.8, 5.2)],
        crs=4326,
    ).to_file(path)
    with session_scope(app) as s:
        result = import_villages(s, path, id_column="code", country_code="CIV")
    assert (result.created, result.polygons) == (2, 2)
    with session_scope(app) as s:
        placed = dict(s.execute(select(Village.code, Area.code).join(Area)).all())
    assert placed == {"VP1": "CI-W", "VP2": "CI-E"}


# --- cells -------------------------------------------------------------------------------------


def _assert_tiles(cells, polygon):
    """The cells cover ``polygon`` and do not overlap (to floating-point precision)."""
    union = shapely.union_all(cells)
    assert union.symmetric_difference(polygon).area < 1e-9 * max(polygon.area, 1)
    assert sum(c.area for c in cells) == pytest.approx(polygon.area, rel=1e-9)


def test_voronoi_cells_tile_the_clip_polygon_without_overlap():
    rng = np.random.default_rng(7)
    clip = shapely.Polygon([(0, 0), (4, 0), (4, 3), (2, 4), (0, 3)]).difference(
        shapely.box(1.5, 1.5, 2.5, 2.5)
    )
    points = shapely.points(rng.uniform(0, 4, 300), rng.uniform(0, 4, 300))
    points = points[shapely.contains(clip, points)]
    found = voronoi_cells(gpd.GeoSeries(points), clip)
    assert found.outside == [] and found.duplicates == []
    assert all(c is not None for c in found.cells)
    _assert_tiles(list(found.cells), clip)
    # each point is in its own cell
    assert all(c.covers(p) for c, p in zip(found.cells, points, strict=True))


def test_voronoi_cells_of_one_two_repeated_and_outside_points():
    clip = shapely.box(0, 0, 10, 10)
    one = voronoi_cells([shapely.Point(5, 5)], clip)
    assert one.cells[0].equals(clip)
    two = voronoi_cells([shapely.Point(2, 5), shapely.Point(8, 5)], clip)
    assert [c.area for c in two.cells] == pytest.approx([50, 50])
    repeated = voronoi_cells([shapely.Point(2, 5), shapely.Point(8, 5), shapely.Point(2, 5)], clip)
    assert repeated.duplicates == [2] and repeated.cells[2] is None
    _assert_tiles([c for c in repeated.cells if c is not None], clip)
    outside = voronoi_cells([shapely.Point(2, 5), shapely.Point(12, 5)], clip)
    assert outside.outside == [1]
    _assert_tiles(list(outside.cells), clip)
    assert outside.cells[1].bounds == pytest.approx((7, 0, 10, 10))  # the nearest part


def test_voronoi_cells_of_ten_thousand_villages_are_fast():
    import time

    rng = np.random.default_rng(3)
    clip = shapely.Point(0, 0).buffer(1.0, quad_segs=256)
    points = shapely.points(rng.uniform(-1, 1, 13000), rng.uniform(-1, 1, 13000))
    points = points[shapely.contains(clip, points)][:10000]
    started = time.perf_counter()
    found = voronoi_cells(points, clip)
    assert time.perf_counter() - started < 5
    _assert_tiles(list(found.cells), clip)


def test_areas_without_any_boundary_are_cut_to_their_villages_hull(app, places):
    with session_scope(app) as s:
        result = derive_cells(s, "CI-D1")
    assert result.hull_groups == ["CI-D1"] and result.cells == 2
    with session_scope(app) as s:
        cells = {
            v.code: shapely.from_wkb(v.cell)
            for v in s.scalars(select(Village).options(undefer(Village.cell)))
            if v.cell
        }
    assert set(cells) == {"V1", "V2"}  # only the area asked for
    hull = shapely.buffer(shapely.MultiPoint([(-6.59, 5.78), (-6.61, 5.70)]).convex_hull, 0.05)
    _assert_tiles(list(cells.values()), hull)
    with session_scope(app) as s, pytest.raises(LookupError, match="No area 'NOPE'"):
        derive_cells(s, "NOPE")


# --- command line and web page -----------------------------------------------------------------


def test_the_commands_import_and_report(app, runner, tmp_path):
    result = runner.invoke(args=["places", "boundaries", str(CIV_ADM2), "--level", "department",
                                 "--dry-run"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Would import 34 areas: 34 created" in result.output and "Dry run" in result.output
    assert _counts(app) == (0, 0, 0)
    result = runner.invoke(args=["places", "boundaries", str(CIV_ADM2), "--level", "department"])
    assert result.exit_code == 0 and "Imported 34 areas: 34 created, 0 updated" in result.output
    path = _village_csv(tmp_path, "1,Soubre,5.78,-6.59,CI,\n2,Meagui,5.41,-6.56,CI,\n")
    result = runner.invoke(args=["places", "villages", str(path)])
    assert result.exit_code == 0 and "2 villages: 2 created" in result.output
    # the cells follow an import at once
    assert "Cells: 2 village cells derived in 1 area(s)" in result.output
    with session_scope(app) as s:
        assert s.scalar(select(func.count(Village.id)).where(Village.cell_kind == "voronoi")) == 2
    result = runner.invoke(args=["places", "cells"])
    assert result.exit_code == 0 and "2 village cells derived in 1 area(s)" in result.output
    bad = _bow_tie_file(tmp_path)
    result = runner.invoke(args=["places", "boundaries", str(bad), "--level", "region",
                                 "--country", "CIV"])  # fmt: skip
    assert result.exit_code == 1
    assert "Error: areas.geojson: 1 feature(s) cannot be imported" in result.output
    assert "feature 2 ('Papillon', A2): invalid polygon" in result.output


def _login(client, username: str) -> None:
    response = client.post("/login", data={"username": username, "password": PASSWORD})
    assert response.status_code == 302


def test_only_administrators_use_the_places_page(app, client, places, make_user):
    make_user("olga", "officer", areas=["CI-D1"])
    make_user("bea", "brand", brand="BRAND-A")
    for username in ("olga", "bea"):
        _login(client, username)
        assert client.get("/places").status_code == 403
        data = {"file": (io.BytesIO(b'{"type": "FeatureCollection"}'), "a.geojson")}
        assert client.post("/places/boundaries", data=data).status_code == 403
        assert client.post("/places/cells").status_code == 403
        client.post("/logout")
    assert _counts(app)[2] == 0


def test_an_administrator_uploads_boundaries_and_villages(app, client, make_user, tmp_path):
    make_user("ada", "admin")
    _login(client, "ada")
    page = client.get("/places")
    assert page.status_code == 200 and "No areas yet" in page.get_data(as_text=True)
    data = {
        "file": (io.BytesIO(GHA_ADM2.read_bytes()), "GHA-ADM2-shp.zip"),
        "level": "district",
    }
    response = client.post("/places/boundaries", data=data, follow_redirects=True)
    text = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Boundaries imported: 140 areas: 140 created, 0 updated." in text
    assert "Ahanta West" in text
    csv_text = WOF_HEADER + "1,Busua,4.80,-1.93,GH,\n2,Dixcove,4.79,-1.95,GH,\n"
    data = {"file": (io.BytesIO(csv_text.encode()), "villages.csv")}
    response = client.post("/places/villages", data=data, follow_redirects=True)
    assert "Villages imported: 2 villages: 2 created" in response.get_data(as_text=True)
    # the cells follow an import at once
    assert "Cells derived: 2 village cells derived in 1 area(s)" in response.get_data(as_text=True)
    response = client.post("/places/cells", data={"area": ""}, follow_redirects=True)
    assert "Cells derived: 2 village cells derived in 1 area(s)" in response.get_data(as_text=True)
    with session_scope(app) as s:
        assert s.scalar(select(func.count(Village.id)).where(Village.cell_kind == "voronoi")) == 2


def test_a_rejected_upload_is_explained_and_writes_nothing(app, client, make_user, tmp_path):
    make_user("ada", "admin")
    _login(client, "ada")
    path = _bow_tie_file(tmp_path)
    data = {"file": (io.BytesIO(path.read_bytes()), "areas.geojson"), "level": "region",
            "country": "CIV"}  # fmt: skip
    response = client.post("/places/boundaries", data=data)
    text = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "Nothing was imported." in text and "Papillon" in text and "Self-intersection" in text
    assert _counts(app) == (0, 0, 0)
    data = {"file": (io.BytesIO(b"<kml/>"), "areas.kml")}
    response = client.post("/places/boundaries", data=data)
    assert response.status_code == 400 and "not a file this form reads" in response.get_data(
        as_text=True
    )
    bad_csv = WOF_HEADER + "1,Busua,abc,-1.93,GH,\n"
    data = {"file": (io.BytesIO(bad_csv.encode()), "villages.csv")}
    response = client.post("/places/villages", data=data)
    assert response.status_code == 422 and "line 2 (1, &#39;Busua&#39;)" in response.get_data(
        as_text=True
    )
    response = client.post("/places/cells", data={"area": "NOPE"})
    assert response.status_code == 422
    assert _counts(app) == (0, 0, 0)


def test_an_upload_larger_than_the_server_accepts_is_refused(app, client, make_user):
    make_user("ada", "admin")
    _login(client, "ada")
    app.config["MAX_CONTENT_LENGTH"] = 4096
    data = {"file": (io.BytesIO(b" " * 10_000), "big.geojson"), "level": "region"}
    response = client.post("/places/boundaries", data=data)
    assert response.status_code == 413
    assert _counts(app) == (0, 0, 0)
