"""A brand's figures of a period are released once and never change (geo.hotspots.releases).

Found when the period grid was attacked: a closed period's figures still moved when a late
visit, a service recorded afterwards, a change of the supply chain or a reclassification reached
them, and a brand that kept Monday's answer could subtract Friday's. Now the first answer about a
period makes its release, and every answer after it, on every route, is made from that release
through the privacy gate.

The world is the hotspot tests' (tests/hotspots/test_hotspots.py): bea is brand A's user, bob
brand B's, olga an officer of CI-D1; brands see July-June years.
"""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select, update

import geo.hotspots.releases
from clms.db import session_scope
from clms.jobs.registry import JobContext, run_job
from clms.models import Classification, HotspotRelease, User
from geo.hotspots.settings import HotspotSettings
from geo.hotspots.tables import hotspot_tables
from geo.maps.brand import PAGE_LEVELS
from tests.conftest import PASSWORD
from tests.hotspots import test_hotspots
from tests.hotspots.test_hotspots import END, Builder, at

# the hotspot tests' fixtures
password_hash = test_hotspots.password_hash
world = test_hotspots.world


def _user(s, username: str) -> User:
    return s.scalar(select(User).where(User.username == username))


@pytest.fixture
def aggregations(monkeypatch):
    """The releases aggregated from the data: a list of (brand id, period start) per call."""
    calls = []
    real = geo.hotspots.releases.release_inputs

    def counted(session, brand_id, period):
        calls.append((brand_id, period.start))
        return real(session, brand_id, period)

    monkeypatch.setattr(geo.hotspots.releases, "release_inputs", counted)
    return calls


def _everything(world, username: str) -> list:
    """Every table and layer the brand can ask for, as the routes answer."""
    out = []
    with world.app_context(), session_scope(world) as s:
        user = _user(s, username)
        settings = HotspotSettings.from_config(world.config)
        tables = hotspot_tables(s, user, PAGE_LEVELS, end=END, settings=settings)
        for level in PAGE_LEVELS:
            out.append((level, tables.table(level).rows, tables.table(level).total))
            for tier in (1, 2, 3):
                out.append((level, tier, tables.table(level, tier=tier).rows))
            for supplier_id in tables.supplier_ids:
                out.append((level, supplier_id, tables.table(level, supplier_id=supplier_id).rows))
    return out


def test_a_period_is_aggregated_once_and_every_answer_reads_the_release(world, aggregations):
    first = _everything(world, "bea")
    again = _everything(world, "bea")
    assert first == again
    # the period and the one before it (for the previous figures), once each
    assert sorted(start for _b, start in aggregations) == [dt.date(2023, 7, 1), dt.date(2024, 7, 1)]
    with session_scope(world) as s:
        assert s.scalar(select(func.count(HotspotRelease.id))) == 2
    # suppressed cells stay suppressed, without numbers
    villages = first[0][1]
    assert any(r.get("suppressed") for r in villages)
    assert all("children" not in r for r in villages if r.get("suppressed"))


def test_nothing_that_happens_after_the_release_changes_a_brands_figures(world):
    """A late visit of the period, a service recorded afterwards for a child of it, a supplier
    added to the brand's chain and a reclassification: the officer's figures move, the brand's
    stay exactly as released, on the API and the downloads too."""
    before = _everything(world, "bea")
    client = world.test_client()
    assert client.post("/login", data={"username": "bea", "password": PASSWORD}).status_code == 302
    csv_before = client.get("/hotspots/export.csv?level=village&end=2025-06-30").data
    with world.app_context(), session_scope(world) as s:
        settings = HotspotSettings.from_config(world.config)
        olga = hotspot_tables(s, _user(s, "olga"), ("village",), end=END, settings=settings)
        olga_before = olga.table("village")
        b = Builder(s)
        # a household of V1 visited in March 2025 whose submission arrives only now
        b.population("LATE", "V1", "T2-COOP", ["hazardous", "none"], 1, at(2025, 3))
        # one more remediated child of the period
        child = b.population("REM", "V1", "T2-COOP", ["child_labour"], 1, at(2025, 4))[0]
        b.remediated(child, at(2025, 5))
        # reclassified: every "none" becomes "at_risk"
        s.execute(update(Classification).where(Classification.category == "none")
                  .values(category="at_risk"))  # fmt: skip
    from clms.supply.operations import link

    with world.app_context(), session_scope(world) as s:
        assert link(s, "BRAND-A", "T1-B").changed  # brand A now buys from brand B's exporter
    after = _everything(world, "bea")
    assert after == before
    assert client.get("/hotspots/export.csv?level=village&end=2025-06-30").data == csv_before
    with world.app_context(), session_scope(world) as s:
        olga = hotspot_tables(s, _user(s, "olga"), ("village",), end=END, settings=settings)
        olga_after = olga.table("village")
    assert olga_after.total["children"] == olga_before.total["children"] + 3


def test_a_stricter_threshold_hides_more_of_the_released_counts(world):
    loose = _everything(world, "bea")
    world.config["PRIVACY_MIN_CHILDREN"] = 50
    strict = _everything(world, "bea")
    assert loose != strict
    assert all(r.get("suppressed") for r in strict[0][1])


def test_each_brand_and_each_period_has_its_own_release(world, aggregations):
    a = _everything(world, "bea")
    b = _everything(world, "bob")
    assert a != b
    with world.app_context(), session_scope(world) as s:
        settings = HotspotSettings.from_config(world.config)
        hotspot_tables(s, _user(s, "bea"), PAGE_LEVELS, end=dt.date(2024, 6, 30), settings=settings)
        assert s.scalar(select(func.count(HotspotRelease.id))) == 5  # 2 + 2 + the year before
    assert len(aggregations) == 5


def test_officers_figures_are_never_released(world, aggregations):
    with world.app_context(), session_scope(world) as s:
        settings = HotspotSettings.from_config(world.config)
        for _ in range(2):
            tables = hotspot_tables(s, _user(s, "olga"), PAGE_LEVELS, end=END, settings=settings)
            assert tables.computed_at is None
        assert s.scalar(select(func.count(HotspotRelease.id))) == 0
    assert aggregations == []


def test_the_job_releases_every_brands_latest_period_and_the_page_reads_it(world, aggregations):
    today = dt.datetime.now(dt.UTC).replace(microsecond=0)
    done = run_job(JobContext.for_app(world, today), "hotspots_refresh")
    assert done.ok, done.error
    assert done.summary == {"releases": 4}  # two brands, the latest period and the one before
    again = run_job(JobContext.for_app(world, today + dt.timedelta(hours=1)), "hotspots_refresh")
    assert again.summary == {"releases": 0}
    client = world.test_client()
    client.post("/login", data={"username": "bea", "password": PASSWORD})
    page = client.get("/map")
    assert page.status_code == 200
    from clms.locale import when

    assert f"released on {when(today, 'en')} and" in page.get_data(as_text=True)  # Jun 8, 2026, …
    assert client.get("/map/frame").status_code == 200
    assert len(aggregations) == 4  # the page and its frame aggregated nothing


@pytest.mark.committing  # two requests at once, in threads
def test_two_first_views_at_once_make_one_release(world):
    """Two requests asking for a period nobody asked for before: one release is kept, and both
    answer with the same figures."""
    import threading

    answers = []

    def view():
        client = world.test_client()
        client.post("/login", data={"username": "bea", "password": PASSWORD})
        answers.append(client.get("/hotspots/export.csv?level=village&end=2025-06-30").data)

    threads = [threading.Thread(target=view) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(answers) == 2 and answers[0] == answers[1]
    with session_scope(world) as s:
        assert s.scalar(select(func.count(HotspotRelease.id))) == 2
