"""A brand's hotspot tables kept for its pages (geo.hotspot_cache) and refreshed by the scheduler.

The world is the hotspot tests' (tests/test_hotspots.py): bea is brand A's user, bob brand B's,
olga an officer of CI-D1.
"""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

import geo.hotspot_cache
from alerts.jobs import JobContext, run_job
from clms.db import session_scope
from clms.models import HotspotCache, User
from geo.hotspot_cache import brand_tables, refresh
from geo.hotspots import hotspot_tables
from geo.maps import PAGE_LEVELS
from tests import test_hotspots
from tests.conftest import PASSWORD
from tests.test_hotspots import END

# the hotspot tests' fixtures
password_hash = test_hotspots.password_hash
world = test_hotspots.world

# a day the period ending END is published to brands (30 days after it ends, geo.periods)
NOW = dt.datetime(2025, 8, 1, 9, 0, tzinfo=dt.UTC)


def _user(s, username: str) -> User:
    return s.scalar(select(User).where(User.username == username))


@pytest.fixture
def aggregations(monkeypatch):
    """The aggregations the cache asks for: a list of the levels of each call."""
    calls = []
    real = geo.hotspot_cache.hotspot_tables

    def counted(session, user, levels, **options):
        calls.append(tuple(levels))
        return real(session, user, levels, **options)

    monkeypatch.setattr(geo.hotspot_cache, "hotspot_tables", counted)
    return calls


def _run(app, now: dt.datetime) -> dict:
    """The hotspots_refresh job, as the scheduler runs it: its summary."""
    done = run_job(JobContext.for_app(app, now), "hotspots_refresh")
    assert done.ok, done.error
    return done.summary


def _tables(tables) -> list:
    return [(level, tables.table(level).rows, tables.table(level).total) for level in PAGE_LEVELS]


def test_a_brands_tables_are_kept_and_read_back_the_same(world, aggregations):
    with world.app_context(), session_scope(world) as s:
        bea = _user(s, "bea")
        live = hotspot_tables(s, bea, PAGE_LEVELS, end=END)
        first = brand_tables(s, bea, PAGE_LEVELS, end=END, now=NOW)
        assert first.computed_at == NOW
    with world.app_context(), session_scope(world) as s:
        again = brand_tables(
            s, _user(s, "bea"), PAGE_LEVELS, end=END, now=NOW + dt.timedelta(minutes=59)
        )
    assert aggregations == [PAGE_LEVELS]  # the second call read the kept tables
    assert again.computed_at == NOW
    assert _tables(again) == _tables(first) == _tables(live)
    # suppressed cells stay suppressed, without numbers, when read back
    suppressed = [r for r in again.table("village").rows if r.get("suppressed")]
    assert suppressed and all("children" not in r for r in suppressed)


def test_kept_tables_expire_and_are_aggregated_again(world, aggregations):
    with world.app_context(), session_scope(world) as s:
        brand_tables(s, _user(s, "bea"), PAGE_LEVELS, end=END, now=NOW)
    with world.app_context(), session_scope(world) as s:
        later = NOW + dt.timedelta(minutes=61)
        tables = brand_tables(s, _user(s, "bea"), PAGE_LEVELS, end=END, now=later)
        assert tables.computed_at == later
        assert s.scalar(select(func.count(HotspotCache.id))) == 1  # the entry was replaced
    assert len(aggregations) == 2


def test_each_brand_and_each_question_has_its_own_entry(world, aggregations):
    with world.app_context(), session_scope(world) as s:
        a = brand_tables(s, _user(s, "bea"), PAGE_LEVELS, end=END, now=NOW)
        b = brand_tables(s, _user(s, "bob"), PAGE_LEVELS, end=END, now=NOW)
        brand_tables(s, _user(s, "bea"), PAGE_LEVELS, end=dt.date(2024, 6, 30), now=NOW)
        brand_tables(s, _user(s, "bea"), ("village",), end=END, now=NOW)
    assert len(aggregations) == 4
    assert _tables(a) != _tables(b)
    # a stricter privacy setting is never served the tables kept under the looser one
    world.config["PRIVACY_MIN_CHILDREN"] = 50
    with world.app_context(), session_scope(world) as s:
        strict = brand_tables(s, _user(s, "bea"), PAGE_LEVELS, end=END, now=NOW)
    assert len(aggregations) == 5
    assert all(r.get("suppressed") for r in strict.table("village").rows)


def test_a_change_of_a_chain_drops_the_kept_figures(world, aggregations):
    from clms.supply import link, unlink

    with world.app_context(), session_scope(world) as s:
        before = brand_tables(s, _user(s, "bob"), PAGE_LEVELS, end=END, now=NOW)
        brand_tables(s, _user(s, "bea"), PAGE_LEVELS, end=END, now=NOW)
        assert s.scalar(select(func.count(HotspotCache.id))) == 2
        # brand B now buys from T2-COOP too: its scope grows at once, not when the entry expires
        assert link(s, "BRAND-B", "T2-COOP").changed
        assert s.scalar(select(func.count(HotspotCache.id))) == 0
    with world.app_context(), session_scope(world) as s:
        after = brand_tables(s, _user(s, "bob"), PAGE_LEVELS, end=END, now=NOW)
        assert after.table("village").total["children"] > before.table("village").total["children"]
        assert unlink(s, "BRAND-B", "T2-COOP").changed
        assert s.scalar(select(func.count(HotspotCache.id))) == 0
    assert len(aggregations) == 3


def test_officers_figures_are_never_kept(world, aggregations):
    with world.app_context(), session_scope(world) as s:
        for _ in range(2):
            tables = brand_tables(s, _user(s, "olga"), PAGE_LEVELS, end=END, now=NOW)
            assert tables.computed_at is None
        assert s.scalar(select(func.count(HotspotCache.id))) == 0
    assert len(aggregations) == 2


def test_the_cache_can_be_turned_off(world, aggregations):
    world.config["HOTSPOT_CACHE_MINUTES"] = 0
    with world.app_context(), session_scope(world) as s:
        for _ in range(2):
            brand_tables(s, _user(s, "bea"), PAGE_LEVELS, end=END, now=NOW)
        assert s.scalar(select(func.count(HotspotCache.id))) == 0
    assert _run(world, NOW) == {"brands": 0, "cache": "off"}
    assert len(aggregations) == 2


def test_the_job_refreshes_every_brand_and_the_page_then_reads_it(world, aggregations):
    today = dt.datetime.now(dt.UTC).replace(microsecond=0)
    assert _run(world, today) == {"brands": 2}
    assert len(aggregations) == 2
    with session_scope(world) as s:
        assert s.scalar(select(func.count(HotspotCache.id))) == 2
    # the brand's page and its map frame read the kept tables: no aggregation, and the page
    # says when they were computed
    client = world.test_client()
    client.post("/login", data={"username": "bea", "password": PASSWORD})
    page = client.get("/map")
    assert page.status_code == 200
    assert f"Figures computed at {today:%Y-%m-%d %H:%M} UTC" in page.get_data(as_text=True)
    assert client.get("/map/frame").status_code == 200
    assert len(aggregations) == 2
    # a refresh replaces the entries, and drops those not used for two cache lives
    with world.app_context(), session_scope(world) as s:
        brand_tables(s, _user(s, "bea"), PAGE_LEVELS, end=END, now=today)
        assert refresh(s, PAGE_LEVELS, now=today + dt.timedelta(hours=3)) == 2
        assert s.scalar(select(func.count(HotspotCache.id))) == 2
