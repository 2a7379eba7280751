"""Areas and villages from the Who's On First localities of Côte d'Ivoire."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from clms.db import session_scope
from clms.models import Area, Village
from clms.places.localities import county_names_from_geoboundaries, load_localities
from geo.countries import PlaceError, slug, village_code
from tests.conftest import SHARED

CSV = SHARED / "localities" / "wof_ci_localities.csv"
ADM2 = SHARED / "boundaries" / "CIV-ADM2.geojson"
HEADER = (
    "wof_id,geonames_id,name,feature_code,lat,lon,population,"
    "region_id,region_name,county_id,county_name,country,src_geom\n"
)


def _counts(app) -> tuple[int, int]:
    with session_scope(app) as s:
        return s.scalar(select(func.count(Area.id))), s.scalar(select(func.count(Village.id)))


def test_codes_are_ascii_upper_case_and_reversible():
    assert slug("Lôh-Djiboua") == "LOH-DJIBOUA"
    assert slug("N'zi-Comoé") == "N-ZI-COMOE"
    code = village_code("1209251639")
    assert code.startswith("V") and code.isascii() and code.isupper() and len(code) <= 8
    assert int(code[1:], 36) == 1209251639


def test_loading_regions_builds_the_hierarchy_with_villages(app):
    full = county_names_from_geoboundaries(ADM2, ["Haut-Sassa", "Goh"])
    assert full == {"Haut-Sassa": "Haut-Sassandra"}
    with session_scope(app) as s:
        n_areas, n_villages = load_localities(
            s, CSV, ["Haut-Sassandra", "fromager"], None, county_names=full
        )
    # the file: Haut-Sassandra > Haut-Sassa (331 localities), Fromager > Goh (270)
    assert (n_areas, n_villages) == (5, 331 + 270)
    with session_scope(app) as s:
        areas = {a.code: a for a in s.scalars(select(Area))}
        assert set(areas) == {
            "CI",
            "CI-HAUT-SASSANDRA",
            "CI-HAUT-SASSANDRA-HAUT-SASSA",
            "CI-FROMAGER",
            "CI-FROMAGER-GOH",
        }
        assert areas["CI"].level == "country" and areas["CI"].parent_id is None
        assert areas["CI-FROMAGER"].level == "region"
        assert areas["CI-FROMAGER"].parent_id == areas["CI"].id
        goh = areas["CI-FROMAGER-GOH"]
        assert goh.level == "department" and goh.parent_id == areas["CI-FROMAGER"].id
        assert areas["CI-HAUT-SASSANDRA-HAUT-SASSA"].name == "Haut-Sassandra"  # display name fixed
        assert all(a.country_code == "CIV" for a in areas.values())

        villages = s.scalars(select(Village)).all()
        assert {v.area_id for v in villages} == {
            goh.id,
            areas["CI-HAUT-SASSANDRA-HAUT-SASSA"].id,
        }
        for v in villages:
            assert v.code.startswith("V") and v.code.isascii() and v.code == v.code.upper()
            assert 4.3 < v.lat < 10.8 and -8.7 < v.lon < -2.4
        assert len({v.code for v in villages}) == len(villages)
        # one row checked against the file: WOF id -> code, name and point kept
        row = _first_row_of("Fromager")
        sample = s.scalar(select(Village).where(Village.code == village_code(row["wof_id"])))
        assert sample is not None and sample.area_id == goh.id
        assert (sample.name, sample.lat, sample.lon) == (
            row["name"],
            float(row["lat"]),
            float(row["lon"]),
        )


def _first_row_of(region: str) -> dict:
    """The first row of a region in the file (read plainly, not through the loader)."""
    import csv

    with open(CSV, encoding="utf-8") as fh:
        return next(r for r in csv.DictReader(fh) if r["region_name"] == region)


def test_loading_again_adds_nothing(app):
    with session_scope(app) as s:
        first = load_localities(s, CSV, ["Sud-Bandama"], None)
    assert first == (3, 281)
    before = _counts(app)
    with session_scope(app) as s:
        again = load_localities(s, CSV, ["Sud-Bandama"], None)
    assert again == (0, 0) and again.skipped == []
    assert _counts(app) == before


def test_max_villages_is_spread_over_departments_and_stable(app):
    seen = []
    with session_scope(app) as s:
        result = load_localities(
            s, CSV, ["Bas-Sassandra"], 30, progress=lambda d, t: seen.append((d, t))
        )
    assert result.villages == 30 and seen[-1] == (30, 30)
    with session_scope(app) as s:
        per_area = dict(
            s.execute(
                select(Area.code, func.count(Village.id)).join(Village).group_by(Area.code)
            ).all()
        )
        first_codes = set(s.scalars(select(Village.code)))
    # Gbokle, Nawa, San Pedro, and the four towns the file gives the region without a county
    assert per_area["CI-BAS-SASSANDRA-NAWA"] >= 8
    assert per_area["CI-BAS-SASSANDRA-GBOKLE"] >= 8
    assert per_area["CI-BAS-SASSANDRA-SAN-PEDRO"] >= 8
    assert per_area.get("CI-BAS-SASSANDRA", 0) == 4
    # a larger load is a superset of the smaller one: the choice does not move
    with session_scope(app) as s:
        more = load_localities(s, CSV, ["Bas-Sassandra"], 40)
        assert more == (0, 10)
        assert first_codes < set(s.scalars(select(Village.code)))


def test_a_department_name_loads_that_department_only(app):
    with session_scope(app) as s:
        assert load_localities(s, CSV, ["Nawa"], None) == (3, 174)
        assert set(s.scalars(select(Area.code))) == {
            "CI",
            "CI-BAS-SASSANDRA",
            "CI-BAS-SASSANDRA-NAWA",
        }


def test_unknown_region_names_list_the_available_ones(app):
    with session_scope(app) as s, pytest.raises(PlaceError) as e:
        load_localities(s, CSV, ["Nawa", "Atlantis", "Mordor"], None)
    message = str(e.value)
    assert "Unknown region name(s): 'Atlantis', 'Mordor'" in message
    for name in ("Bas-Sassandra", "Haut-Sassandra", "Fromager", "Sud-Bandama"):
        assert name in message
    assert _counts(app) == (0, 0)


def _fixture_csv(tmp_path):
    path = tmp_path / "localities.csv"
    path.write_text(
        HEADER
        + "1000000001,,Gnamagui,PPL,5.78,-6.59,0,1,Nawa Test,2,Soubre,CI,geonames\n"
        + "1000000002,,Londres,PPL,51.5,-0.12,0,1,Nawa Test,2,Soubre,CI,geonames\n"
        + "1000000003,,Sans Point,PPL,,,0,1,Nawa Test,2,Soubre,CI,geonames\n"
        + "1000000004,,Oupoyo,PPL,5.55,-6.90,0,1,Nawa Test,3,Meagui,CI,geonames\n"
        + "1000000005,,Autre,PPL,7.0,-5.0,0,9,Elsewhere,9,Far,CI,geonames\n",
        encoding="utf-8",
    )
    return path


def test_bad_coordinates_are_named_and_nothing_is_added(app, tmp_path):
    path = _fixture_csv(tmp_path)
    with session_scope(app) as s, pytest.raises(PlaceError) as e:
        load_localities(s, path, ["Nawa Test"], None)
    message = str(e.value)
    assert "2 row(s) cannot be loaded" in message
    assert (
        "line 3 (wof_id 1000000002, 'Londres'): "
        "coordinates lat 51.5, lon -0.12 are outside Côte d'Ivoire" in message
    )
    assert "line 4 (wof_id 1000000003, 'Sans Point'): coordinates missing" in message
    assert "on_error='skip'" in message
    assert _counts(app) == (0, 0)


def test_bad_rows_can_be_skipped_and_are_reported(app, tmp_path):
    path = _fixture_csv(tmp_path)
    with session_scope(app) as s:
        result = load_localities(s, path, ["Nawa Test"], None, on_error="skip")
    assert result == (4, 2)  # CI, CI-NAWA-TEST, CI-NAWA-TEST-SOUBRE, CI-NAWA-TEST-MEAGUI
    assert [(b.line, b.name) for b in result.skipped] == [(3, "Londres"), (4, "Sans Point")]
    assert "outside Côte d'Ivoire" in result.skipped[0].reason
    with session_scope(app) as s:
        villages = {v.name: v for v in s.scalars(select(Village))}
        assert set(villages) == {"Gnamagui", "Oupoyo"}
        assert (villages["Gnamagui"].lat, villages["Gnamagui"].lon) == (5.78, -6.59)
        assert s.get(Area, villages["Oupoyo"].area_id).code == "CI-NAWA-TEST-MEAGUI"


def test_rows_outside_the_chosen_regions_are_not_checked(app, tmp_path):
    path = _fixture_csv(tmp_path)
    with session_scope(app) as s:
        assert load_localities(s, path, ["Elsewhere"], None) == (3, 1)


def test_bad_options_are_refused(app):
    with session_scope(app) as s:
        with pytest.raises(ValueError, match="on_error"):
            load_localities(s, CSV, ["Nawa"], None, on_error="ignore")
        with pytest.raises(ValueError, match="max_villages"):
            load_localities(s, CSV, ["Nawa"], -1)
