"""Each visit's village from its GPS point (spatial join on the village cells), the far-GPS review
flag, and ``clms places locate``."""

from __future__ import annotations

import pytest
import shapely
from sqlalchemy import select, update

from clms.db import session_scope
from clms.models import Household, Submission, Village, Visit
from geo import join
from geo.join import VillageIndex, distances_km, gps_problem, village_index
from tests.submissions import household_xml

#: half the side of the test cells, in degrees (about 3.3 km): V1's and V2's do not touch
HALF = 0.03


def square(lat: float, lon: float, half: float = HALF) -> bytes:
    """The WKB of a square cell centred on a village point (x = longitude, y = latitude)."""
    return shapely.to_wkb(shapely.box(lon - half, lat - half, lon + half, lat + half))


def set_cells(app, half: float = HALF) -> dict[str, int]:
    """Give every village of the ``places`` fixture a square cell; returns their ids by code."""
    with session_scope(app) as s:
        villages = s.scalars(select(Village)).all()
        for v in villages:
            v.cell, v.cell_kind = square(v.lat, v.lon, half), "polygon"
        return {v.code: v.id for v in villages}


def village_ids(app) -> dict[str, int]:
    with session_scope(app) as s:
        return dict(s.execute(select(Village.code, Village.id)).all())


def submitted(app, household_code: str) -> tuple[Visit, Submission]:
    """The visit of ``household_code`` and its submission (detached, loaded)."""
    with session_scope(app) as s:
        visit, sub = s.execute(
            select(Visit, Submission)
            .join(Household, Household.id == Visit.household_id)
            .join(Submission, Submission.id == Visit.submission_id)
            .where(Household.code == household_code)
        ).one()
        s.expunge_all()
        return visit, sub


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Each test starts without a cached index (PostgreSQL reuses one database for all tests)."""
    join.forget()
    yield
    join.forget()


# --- pure: the index and the distances ---------------------------------------------------------


def test_locate_puts_points_in_cells_and_edges_in_the_smaller_id():
    index = VillageIndex.from_rows(
        [
            (7, "B", 1, shapely.to_wkb(shapely.box(1, 0, 2, 1))),
            (3, "A", 1, shapely.to_wkb(shapely.box(0, 0, 1, 1))),
            (9, "BAD", 1, b"not wkb"),  # unreadable: left out, not an error
        ]
    )
    assert list(index.ids) == [3, 7]
    lons = [0.5, 1.5, 1.0, 1.0, 9.0, float("nan")]
    lats = [0.5, 0.5, 0.5, 1.0, 9.0, 0.5]
    # on the shared edge (and its corner) the smaller id wins, whatever the order of the rows
    assert index.locate(lons, lats) == [3, 7, 3, 3, None, None]
    reversed_index = VillageIndex.from_rows(
        [(7, "B", 1, shapely.to_wkb(shapely.box(1, 0, 2, 1))),
         (3, "A", 1, shapely.to_wkb(shapely.box(0, 0, 1, 1)))][::-1]
    )  # fmt: skip
    assert reversed_index.locate(lons, lats) == [3, 7, 3, 3, None, None]
    assert index.locate([], []) == []
    cells = index.cells_of([7, 5, None, 3])
    assert [c.bounds if c is not None else None for c in cells] == [
        (1.0, 0.0, 2.0, 1.0), None, None, (0.0, 0.0, 1.0, 1.0),
    ]  # fmt: skip


def test_locate_is_vectorised_over_many_points():
    # a 100 x 100 grid of cells, 200,000 points: one call, each point in the right cell
    rng = __import__("numpy").random.default_rng(7)
    rows = [
        (i * 100 + j + 1, f"V{i}-{j}", 1, shapely.to_wkb(shapely.box(i, j, i + 1, j + 1)))
        for i in range(100)
        for j in range(100)
    ]
    index = VillageIndex.from_rows(rows)
    lons = rng.uniform(0.001, 99.999, 200_000)
    lats = rng.uniform(0.001, 99.999, 200_000)
    found = index.locate_array(lons, lats)
    expected = lons.astype(int) * 100 + lats.astype(int) + 1
    assert (index.ids[found] == expected).all()


def test_distances_are_zero_inside_to_the_edge_outside_and_to_the_point_without_cell():
    cell = shapely.box(-6.62, 5.75, -6.56, 5.81)
    d_in, d_out, d_point, d_none = distances_km(
        [-6.59, -6.59, -6.59, -6.59],
        [5.78, 5.873, 5.843, 5.78],
        [cell, cell, None, None],
        [None, None, 5.78, None],
        [None, None, -6.59, None],
    )
    assert d_in == 0
    assert d_out == pytest.approx(7.0, abs=0.05)  # 0.063 degrees of latitude beyond the edge
    assert d_point == pytest.approx(7.0, abs=0.05)
    assert d_none is None


@pytest.mark.parametrize(
    ("lat", "lon", "accuracy", "problem"),
    [
        (0.0, 0.0, 5.0, "null island"),
        (95.0, 10.0, None, "outside -90..90"),
        (5.0, -200.0, None, "outside -90..90"),
        (float("nan"), 1.0, None, "not a number"),
        (5.78, -6.59, 50_000.0, "accuracy 50000 m"),
        (5.78, -6.59, -1.0, "accuracy -1 m"),
    ],
)
def test_unusable_points_are_named(lat, lon, accuracy, problem):
    assert problem in gps_problem(lat, lon, accuracy)


def test_usable_points_have_no_problem():
    assert gps_problem(5.78, -6.59, 8.0) is None
    assert gps_problem(0.0, 5.0, None) is None  # on the equator, not null island


# --- the cache -----------------------------------------------------------------------------------


def test_the_cache_notices_new_and_changed_cells(app, places):
    with session_scope(app) as s:
        assert village_index(s) is None  # no cells yet
    ids = set_cells(app)
    with session_scope(app) as s:
        first = village_index(s)
        assert sorted(first.ids) == sorted(ids.values())
        assert village_index(s) is first  # nothing changed: the same index, not read again
        assert first.locate([-6.59], [5.78]) == [ids["V1"]]
        # V1's cell imported again, larger, with one more vertex (as a new polygon would have)
        v1 = s.get(Village, ids["V1"])
        v1.cell = shapely.to_wkb(
            shapely.Polygon([(-6.70, 5.76), (-6.56, 5.76), (-6.56, 5.81), (-6.63, 5.83),
                             (-6.70, 5.81)])
        )  # fmt: skip
        s.flush()
        second = village_index(s)
        assert second is not first
        assert second.locate([-6.68], [5.78]) == [ids["V1"]]
        # a new village point (cells derived again from the points)
        v2 = s.get(Village, ids["V2"])
        v2.lat += 0.001
        s.flush()
        third = village_index(s)
        assert third is not second
        # a cell removed
        v1.cell = None
        s.flush()
        assert len(village_index(s)) == 3


def test_a_change_the_fingerprint_misses_is_seen_when_the_index_is_old_or_forgotten(
    app, places, monkeypatch
):
    ids = set_cells(app)
    with session_scope(app) as s:
        first = village_index(s)
        # the same number of vertices, moved: same byte length, same villages and points
        s.get(Village, ids["V1"]).cell = shapely.to_wkb(shapely.box(-6.70, 5.76, -6.64, 5.82))
        s.flush()
        assert village_index(s) is first  # the documented blind spot of the fingerprint
        join.forget(s)  # what an importer does after writing cells
        second = village_index(s)
        assert second.locate([-6.68], [5.78]) == [ids["V1"]]
        monkeypatch.setattr(join, "MAX_AGE_S", 0.0)  # and older indexes are rebuilt anyway
        assert village_index(s) is not second


# --- ingestion through OpenRosa ------------------------------------------------------------------


def test_gps_in_another_villages_cell_places_the_visit_there(app, phone, version, process):
    ids = set_cells(app)
    # chosen V1, the point inside V2's cell (also in awa's department), 2.8 km from V1's cell
    phone.submit(household_xml(version, village="V1", gps="5.725 -6.60 200 5",
                               household_code="HH-1"))  # fmt: skip
    result = process()
    assert result.parsed == 1 and result.review == 0
    visit, sub = submitted(app, "HH-1")
    assert sub.status == "parsed", sub.review_reasons
    assert visit.village_id == ids["V2"]
    assert visit.form_village_id == ids["V1"]
    assert visit.village_source == "gps"
    assert visit.gps_distance_km == pytest.approx(2.78, abs=0.02)
    with session_scope(app) as s:
        assert s.scalar(select(Household.village_id).where(Household.code == "HH-1")) == ids["V2"]


def test_a_household_whose_point_crosses_into_the_next_cell_is_not_sent_to_review(
    app, phone, version, process
):
    ids = set_cells(app)
    for gps in ("5.781 -6.592 200 5", "5.725 -6.60 200 5"):  # in V1's cell, then in V2's
        phone.submit(household_xml(version, village="V1", gps=gps, household_code="HH-1"))
        assert process().parsed == 1  # the form says V1 both times: no "recorded before" issue
    with session_scope(app) as s:
        # the household is where its latest visit's point is
        assert s.scalar(select(Household.village_id).where(Household.code == "HH-1")) == ids["V2"]
    # neither the form nor the point naming the village recorded before is still an issue
    phone.submit(household_xml(version, village="V2", gps=None, household_code="HH-2"))
    phone.submit(household_xml(version, village="V1", gps="5.781 -6.592 200 5",
                               household_code="HH-2"))  # fmt: skip
    result = process()
    assert (result.parsed, result.review) == (1, 1)


def test_gps_inside_the_chosen_villages_cell_is_at_distance_zero(app, phone, version, process):
    ids = set_cells(app)
    phone.submit(household_xml(version, village="V1", gps="5.781 -6.592 200 5",
                               household_code="HH-1"))  # fmt: skip
    process()
    visit, _sub = submitted(app, "HH-1")
    assert (visit.village_id, visit.village_source, visit.gps_distance_km) == (
        ids["V1"], "gps", 0.0,
    )  # fmt: skip


def test_without_cells_the_form_village_is_kept(app, phone, version, process):
    ids = village_ids(app)
    # between V1 and V2, and no village has a cell
    phone.submit(household_xml(version, village="V1", gps="5.76 -6.60 200 5",
                               household_code="HH-1"))  # fmt: skip
    assert process().parsed == 1
    visit, _sub = submitted(app, "HH-1")
    assert visit.village_id == visit.form_village_id == ids["V1"]
    assert visit.village_source == "form"
    # no cell: the distance is to the village's point (5.78, -6.59)
    assert visit.gps_distance_km == pytest.approx(2.48, abs=0.02)


def test_one_spatial_join_per_batch(app, phone, version, process, monkeypatch):
    set_cells(app)
    calls = []
    real = join.village_index
    monkeypatch.setattr(join, "village_index", lambda s: calls.append(1) or real(s))
    for n in range(5):
        phone.submit(household_xml(version, gps="5.725 -6.60 200 5", household_code=f"HH-{n}"))
    assert process().parsed == 5
    assert len(calls) == 1


@pytest.mark.parametrize("cells", [True, False])
def test_a_point_7_km_away_is_stored_and_sent_to_review(app, phone, version, process, cells):
    ids = set_cells(app) if cells else village_ids(app)
    # 0.063 degrees north of V1's cell (cells) or of its point (no cells): 7.0 km, in no cell
    lat = 5.78 + (HALF if cells else 0) + 0.063
    phone.submit(household_xml(version, village="V1", gps=f"{lat:.3f} -6.59 200 5",
                               household_code="HH-1"))  # fmt: skip
    assert process().review == 1
    visit, sub = submitted(app, "HH-1")
    assert sub.status == "review"
    assert visit.village_id == ids["V1"] and visit.village_source == "form"
    assert visit.gps_distance_km == pytest.approx(7.0, abs=0.05)
    [issue] = [i for i in sub.review_reasons if i["path"] == "gps"]
    assert "7.0 km from village V1" in issue["problem"]
    assert "more than 5 km" in issue["problem"]


def test_the_far_distance_is_a_setting(app, phone, version, process):
    set_cells(app)
    app.config["GPS_FAR_METRES"] = 10_000
    phone.submit(household_xml(version, village="V1", gps="5.873 -6.59 200 5",
                               household_code="HH-1"))  # fmt: skip
    with app.app_context():
        assert process().parsed == 1


@pytest.mark.parametrize(
    ("gps", "problem"),
    [
        ("0 0 0 5", "null island"),
        ("5.725 -6.60 200 99999", "accuracy 99999 m"),
        ("95 200", "not a GPS point"),  # refused by the parser already
    ],
)
def test_unusable_points_go_to_review_and_keep_the_form_village(
    app, phone, version, process, gps, problem
):
    ids = set_cells(app)
    phone.submit(household_xml(version, village="V1", gps=gps, household_code="HH-1"))
    assert process().review == 1
    visit, sub = submitted(app, "HH-1")
    assert visit.village_id == visit.form_village_id == ids["V1"]
    assert visit.village_source == "form"
    assert visit.gps_distance_km is None
    assert any(i["path"] == "gps" and problem in i["problem"] for i in sub.review_reasons), (
        sub.review_reasons
    )


def test_a_point_in_a_village_outside_the_monitors_scope_does_not_move_the_visit(
    app, phone, version, process
):
    ids = set_cells(app)
    with session_scope(app) as s:  # V3 (CI-D2, not awa's) gets a cell just east of V1's
        s.get(Village, ids["V3"]).cell = shapely.to_wkb(shapely.box(-6.56, 5.75, -6.50, 5.81))
    # 1.1 km east of V1's cell, in V3's: the visit stays in V1, and that alone is no issue
    phone.submit(household_xml(version, village="V1", gps="5.78 -6.55 200 5",
                               household_code="HH-1"))  # fmt: skip
    # in V4's cell (CI-D2), 40 km from V1: stays in V1, sent to review for the distance
    phone.submit(household_xml(version, village="V1", gps="5.52 -6.95 200 5",
                               household_code="HH-2"))  # fmt: skip
    result = process()
    assert (result.parsed, result.review) == (1, 1)
    near, sub = submitted(app, "HH-1")
    assert (near.village_id, near.form_village_id, near.village_source) == (
        ids["V1"], ids["V1"], "form",
    )  # fmt: skip
    assert near.gps_distance_km == pytest.approx(1.1, abs=0.05)
    assert sub.status == "parsed"
    far, sub = submitted(app, "HH-2")
    assert (far.village_id, far.village_source) == (ids["V1"], "form")
    [issue] = sub.review_reasons
    assert issue["path"] == "gps" and "km from village V1" in issue["problem"]


# --- clms places locate --------------------------------------------------------------------------


def test_locate_command_moves_old_visits_and_is_idempotent(app, phone, version, process, runner):
    # visits stored before any cell existed: both in their form village
    phone.submit(household_xml(version, village="V1", gps="5.725 -6.60 200 5",
                               household_code="HH-1"))  # fmt: skip
    phone.submit(household_xml(version, village="V1", gps="5.781 -6.592 200 5",
                               household_code="HH-2"))  # fmt: skip
    phone.submit(household_xml(version, village="V1", gps="0 0 0 5", household_code="HH-3"))
    # in V3 (CI-D2), not one of awa's villages: stays in V1 (and far from it)
    phone.submit(household_xml(version, village="V1", gps="5.55 -6.90 200 5",
                               household_code="HH-4"))  # fmt: skip
    process()
    with session_scope(app) as s:
        # one of them older still: stored before form_village_id and village_source existed
        hh2 = s.scalar(select(Household.id).where(Household.code == "HH-2"))
        s.execute(
            update(Visit)
            .where(Visit.household_id == hh2)
            .values(form_village_id=None, village_source=None, gps_distance_km=None)
        )
    ids = set_cells(app)

    result = runner.invoke(args=["places", "locate"])
    assert result.exit_code == 0, result.output
    # HH-4 changed too: its distance is now to V1's cell, no longer to V1's point
    assert "Checked 4 visits: 3 changed, 2 in the village of their GPS point, 1 kept" in (
        result.output
    )
    assert "1 with an unusable point, 1 more than 5 km" in result.output
    assert "1 households moved" in result.output
    v1, _ = submitted(app, "HH-1")
    assert (v1.village_id, v1.form_village_id, v1.village_source) == (ids["V2"], ids["V1"], "gps")
    assert v1.gps_distance_km == pytest.approx(2.78, abs=0.02)
    v2, _ = submitted(app, "HH-2")
    assert (v2.village_id, v2.form_village_id, v2.village_source, v2.gps_distance_km) == (
        ids["V1"], ids["V1"], "gps", 0.0,
    )  # fmt: skip
    v3, _ = submitted(app, "HH-3")
    assert (v3.village_id, v3.village_source) == (ids["V1"], "form")
    v4, _ = submitted(app, "HH-4")
    assert (v4.village_id, v4.village_source) == (ids["V1"], "form")
    assert v4.gps_distance_km == pytest.approx(
        distances_km([-6.90], [5.55], [shapely.from_wkb(square(5.78, -6.59))], [None], [None])[0]
    )
    with session_scope(app) as s:
        assert s.scalar(select(Household.village_id).where(Household.code == "HH-1")) == ids["V2"]

    again = runner.invoke(args=["places", "locate", "--all"])
    assert again.exit_code == 0, again.output
    assert "Checked 4 visits: 0 changed" in again.output
    missing = runner.invoke(args=["places", "locate"])  # HH-3 and HH-4 are not placed by GPS
    assert "Checked 2 visits: 0 changed" in missing.output


def test_locate_command_with_nothing_to_do(app, places, runner):
    result = runner.invoke(args=["places", "locate"])
    assert result.exit_code == 0, result.output
    assert "No visit with a GPS point to locate." in result.output
    bad = runner.invoke(args=["places", "locate", "--batch", "0"])
    assert bad.exit_code != 0 and "--batch" in bad.output


# --- monitor quality -----------------------------------------------------------------------------


def test_monitor_quality_counts_the_stored_distance_to_the_chosen_village(
    app, phone, version, process, make_user
):
    import datetime as dt

    from alerts.kpis import KpiFilters, kpi_report
    from clms.config import gps_far_km
    from clms.models import User

    set_cells(app)
    make_user("olga", "officer", areas=["CI-D1"])
    # chosen V1, the point at V2's own point: 5.6 km from V1's cell, 0 km from its new village
    phone.submit(household_xml(version, village="V1", gps="5.70 -6.61 200 5",
                               household_code="HH-1"))  # fmt: skip
    process()
    visit, _sub = submitted(app, "HH-1")
    assert visit.gps_distance_km == pytest.approx(5.56, abs=0.02)
    with session_scope(app) as s:
        olga = s.scalar(select(User).where(User.username == "olga"))
        report = kpi_report(s, olga, KpiFilters(dt.date(2026, 11, 1), dt.date(2026, 11, 30)))
    [awa] = [row for row in report.monitors if row["label"] == "awa"]
    assert (awa["visits_with_gps"], awa["visits_far"]) == (1, 1)
    # the same setting as the review at ingestion: 6 km away is no longer far
    app.config["GPS_FAR_METRES"] = 6000
    with app.app_context(), session_scope(app) as s:
        olga = s.scalar(select(User).where(User.username == "olga"))
        report = kpi_report(s, olga, KpiFilters(dt.date(2026, 11, 1), dt.date(2026, 11, 30)),
                            far_km=gps_far_km(app.config))  # fmt: skip
    [awa] = [row for row in report.monitors if row["label"] == "awa"]
    assert (awa["visits_with_gps"], awa["visits_far"]) == (1, 0)
