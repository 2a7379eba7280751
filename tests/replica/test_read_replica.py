"""Indicators, hotspots, maps and exports read from a PostgreSQL streaming standby
(``READ_DATABASE_URL``, :func:`clms.db.read_session`); writes, the audit entries of those reads
and what must be read right after being written stay on the primary; a standby that is down or
behind is not read (the primary answers, with a log line), and is read again once it is back.

Against a real standby (tests/replica/conftest.py). Where the reads went is seen two ways: the
statements each engine ran, and figures that only one of the two servers can give (the standby's
replay paused with ``pg_wal_replay_pause()`` while the primary takes a new visit).

The world is the hotspot tests' (tests/hotspots/test_hotspots.py): bea is brand A's user, olga an
officer of CI-D1, sam a supervisor of CI-R1; brands see July-June years.
"""

from __future__ import annotations

import logging
import re

import pytest
from sqlalchemy import event, func, select

import geo.hotspots.releases
from clms.db import ReplicaState
from clms.jobs.registry import JobContext, run_job
from clms.models import AuditEvent, HotspotRelease, KpiSnapshot
from tests.conftest import PASSWORD
from tests.hotspots import test_hotspots
from tests.hotspots.test_hotspots import Builder, at
from tests.replica.conftest import caught_up

pytestmark = pytest.mark.committing

# the hotspot tests' world, on this folder's app (primary + standby)
password_hash = test_hotspots.password_hash
world = test_hotspots.world

#: a statement that reads the children's data (what the heavy pages are made of)
CHILD_DATA = re.compile(r"\b(child_visits|classifications|households|villages|areas|suppliers)\b")
PERIOD = "end=2025-06-30"
YEAR = "from=2024-07-01&to=2025-06-30"  # the KPIs of the world's period
READS = ("SELECT", "WITH")


@pytest.fixture
def statements(app):
    """The statements each engine ran: ``{"primary": [...], "replica": [...]}``."""
    seen: dict[str, list[str]] = {"primary": [], "replica": []}
    engines = {
        "primary": app.extensions["clms_engine"],
        "replica": app.extensions["clms_replica"].engine,
    }
    listeners = []
    for name, engine in engines.items():

        def on(_conn, _cursor, statement, _params, _context, _many, name=name):
            seen[name].append(statement)

        event.listen(engine, "before_cursor_execute", on)
        listeners.append((engine, on))
    yield seen
    for engine, on in listeners:
        event.remove(engine, "before_cursor_execute", on)


def signed_in(app, username: str):
    client = app.test_client()
    answer = client.post("/login", data={"username": username, "password": PASSWORD})
    assert answer.status_code == 302
    return client


def token(app, username: str) -> dict:
    answer = app.test_client().post(
        "/api/v1/sessions", json={"username": username, "password": PASSWORD}
    )
    assert answer.status_code in (200, 201), answer.get_json()
    return {"Authorization": f"Bearer {answer.get_json()['token']}"}


def reset(statements) -> None:
    statements["primary"].clear()
    statements["replica"].clear()


def child_reads(statements, name: str) -> list[str]:
    return [s for s in statements[name] if CHILD_DATA.search(s) and s.lstrip().startswith(READS)]


def test_the_replica_is_the_standby(app, standby):
    """What the application calls its replica is the standby the test set-up started: in
    recovery, streaming, on the standby's port, 0 s behind once it has caught up."""
    _primary, server = standby
    replica = app.extensions["clms_replica"]
    assert replica.engine.url.port == server.port
    caught_up(standby)
    state = replica.check()
    assert (state.status, state.readable) == ("streaming", True)
    assert state.lag == 0
    with replica.engine.connect() as conn:
        assert conn.scalar(select(func.pg_is_in_recovery())) is True


@pytest.mark.parametrize(
    ("username", "path"),
    [
        ("sam", f"/kpis?{YEAR}"),
        ("sam", f"/kpis?group=village&{YEAR}"),
        ("sam", f"/kpis/export.csv?{YEAR}"),
        ("sam", f"/kpis/export.xlsx?{YEAR}"),
        ("sam", f"/exports/child-visits.csv?{YEAR}"),
        ("sam", f"/exports/child-visits.xlsx?{YEAR}"),
        ("olga", "/map"),
        ("olga", "/map/frame"),
        ("olga", f"/map?view=hotspots&{PERIOD}"),
        ("olga", f"/map/layer.json?kind=area&{PERIOD}"),
        ("olga", f"/hotspots/export.csv?level=village&{PERIOD}"),
        ("olga", f"/hotspots/export.geojson?level=village&{PERIOD}"),
        ("bea", f"/map?{PERIOD}"),
        ("bea", f"/map/frame?{PERIOD}"),
        ("bea", f"/map/export.html?{PERIOD}"),
        ("bea", f"/hotspots/export.csv?level=village&{PERIOD}"),
    ],
)
def test_the_heavy_pages_read_the_standby(app, world, standby, statements, username, path):
    """Every read of the children's data of these pages goes to the standby: the primary sees
    the sign-in check and, for a download, its audit entry, written there."""
    client = signed_in(app, username)
    caught_up(standby)
    reset(statements)
    answer = client.get(path)
    body = answer.get_data()  # a streamed export is read to its end
    assert answer.status_code == 200, body[:500]
    assert child_reads(statements, "replica"), statements["replica"]
    assert child_reads(statements, "primary") == []
    writes = [s for s in statements["replica"] if not s.lstrip().startswith(READS)]
    assert writes == []


@pytest.mark.parametrize(
    "path", [f"/api/v1/kpis?group=area&{YEAR}", f"/api/v1/hotspots?level=area&{PERIOD}"]
)
def test_the_api_reads_the_standby(app, world, standby, statements, path):
    headers = token(app, "sam")
    caught_up(standby)
    reset(statements)
    answer = app.test_client().get(path, headers=headers)
    assert answer.status_code == 200, answer.get_json()
    assert child_reads(statements, "replica")
    assert child_reads(statements, "primary") == []


def test_an_exports_audit_entry_is_written_on_the_primary(app, world, standby):
    """The download is read on the standby, and its entry in the audit log (written before the
    answer leaves) is on the primary, from where it reaches the standby."""
    client = signed_in(app, "sam")
    caught_up(standby)
    answer = client.get(f"/exports/child-visits.csv?{YEAR}")
    assert answer.status_code == 200
    assert answer.get_data().count(b"\n") > 50
    primary, server = standby
    db = "clms_replica"
    query = "SELECT count(*) FROM audit_events WHERE action = 'child_visits.export'"
    assert primary.sql(query, db) == 1
    caught_up(standby)
    assert server.sql(query, db) == 1


def _identified(app, headers) -> int:
    answer = app.test_client().get(f"/api/v1/kpis?{YEAR}", headers=headers)
    assert answer.status_code == 200
    return answer.get_json()["overall"]["children_identified"]


def test_figures_come_from_the_standby_and_from_the_primary_once_it_is_too_far_behind(
    app, world, standby, caplog
):
    """With the standby's replay paused, a child identified on the primary is not in the figures
    (they are the standby's) while the standby is within READ_MAX_LAG_SECONDS; once it is further
    behind than that, the primary answers, with the child, and the log says so."""
    _primary, server = standby
    headers = token(app, "sam")
    caught_up(standby)
    before = _identified(app, headers)
    server.sql("SELECT pg_wal_replay_pause()")
    with app.app_context():
        from clms.db import session_scope

        with session_scope(app) as s:
            Builder(s).population("NEW", "V2", "T2-COOP", ["worst_form"] * 3, 1, at(2025, 6))
    assert _identified(app, headers) == before  # the standby's figures: not replayed yet
    replica = app.extensions["clms_replica"]
    assert replica.state().status == "streaming"
    assert replica.state().lag > 0
    replica.max_lag = 0.0  # now it is too far behind
    with caplog.at_level(logging.WARNING, logger="clms.db"):
        assert _identified(app, headers) == before + 3  # the primary's
    assert replica.state().status == "lagging"
    assert "is lagging" in caplog.text and "the primary answers" in caplog.text
    server.sql("SELECT pg_wal_replay_resume()")
    caught_up(standby)
    replica.max_lag = 30.0
    assert replica.state().readable
    assert _identified(app, headers) == before + 3  # the standby's again, caught up


def test_a_release_made_a_moment_ago_is_read_on_the_primary(app, world, standby, monkeypatch):
    """A brand's first view of a period writes its release on the primary; the next view reads
    it there when the standby has not replayed it yet: the same figures, aggregated once (not a
    second aggregation that a unique key would then refuse). Fails if the release were written
    through the standby's connection (read-only) or looked for only there."""
    calls = []
    real = geo.hotspots.releases.release_inputs

    def counted(session, brand_id, period):
        calls.append(period.start)
        return real(session, brand_id, period)

    monkeypatch.setattr(geo.hotspots.releases, "release_inputs", counted)
    geo.hotspots.releases._GATED.clear()
    primary, server = standby
    headers = token(app, "bea")
    caught_up(standby)
    server.sql("SELECT pg_wal_replay_pause()")
    first = app.test_client().get(f"/api/v1/hotspots?level=village&{PERIOD}", headers=headers)
    assert first.status_code == 200, first.get_json()
    assert primary.sql("SELECT count(*) FROM hotspot_releases", "clms_replica") == 2
    assert server.sql("SELECT count(*) FROM hotspot_releases", "clms_replica") == 0
    again = app.test_client().get(f"/api/v1/hotspots?level=village&{PERIOD}", headers=headers)
    assert again.status_code == 200
    assert again.get_json() == first.get_json()
    assert len(calls) == 2  # the period and the one before it, once each
    server.sql("SELECT pg_wal_replay_resume()")
    caught_up(standby)
    with app.app_context():
        from clms.db import session_scope

        with session_scope(app) as s:
            assert s.scalar(select(func.count(HotspotRelease.id))) == 2


def test_the_nightly_snapshot_reads_the_standby_and_writes_the_primary(
    app, world, standby, statements
):
    caught_up(standby)
    reset(statements)
    run = run_job(JobContext.for_app(app), "kpi_snapshot")
    assert run.ok, run.error
    assert child_reads(statements, "replica")
    assert child_reads(statements, "primary") == []
    assert any("kpi_snapshots" in s for s in statements["primary"] if "INSERT" in s)
    with app.app_context():
        from clms.db import session_scope

        with session_scope(app) as s:
            assert s.scalar(select(func.count(KpiSnapshot.id))) >= 1


def test_a_stopped_standby_is_not_read_and_is_read_again_once_back(
    app, world, standby, statements, caplog, monkeypatch
):
    """The standby stopped: every page answers from the primary (the log and an administrator's
    home page say why), quickly (a refused connection, no timeout); started again, it is read
    again."""
    _primary, server = standby
    client = signed_in(app, "sam")
    headers = token(app, "sam")
    caught_up(standby)
    expected = _identified(app, headers)
    replica = app.extensions["clms_replica"]
    admin = signed_in(app, "ada")
    home = admin.get("/").get_data(as_text=True)
    assert "Indicators, maps and exports are read from the replica, 0.0 s behind" in home
    assert "Read replica" not in client.get("/").get_data(as_text=True)  # administrators only
    server._run(server_bin("pg_ctl"), "-D", str(server.data), "-m", "fast", "-w", "stop")
    try:
        reset(statements)
        with caplog.at_level(logging.WARNING, logger="clms.db"):
            assert _identified(app, headers) == expected
            for path in (
                f"/kpis?{YEAR}",
                f"/exports/child-visits.csv?{YEAR}",
                "/map",
                f"/map?view=hotspots&{PERIOD}",
            ):
                answer = client.get(path)
                answer.get_data()
                assert answer.status_code == 200, path
        assert replica.state().status == "down"
        home = admin.get("/").get_data(as_text=True)
        assert "The replica is not read now: it does not answer." in home
        # a replica lost between its check and the request's reading it: that request answers
        # 503 as for the primary, and the replica is marked down at once
        with monkeypatch.context() as patch:
            patch.setattr(replica, "readable", lambda: True)
            replica._state = ReplicaState("streaming", 0.0)
            lost = app.test_client().get(f"/api/v1/kpis?{YEAR}", headers=headers)
        assert lost.status_code == 503 and lost.headers["Retry-After"] == "60"
        assert replica._state.status == "down"
        assert "is down" in caplog.text
        assert child_reads(statements, "primary")
        with app.app_context():
            from clms.db import session_scope

            with session_scope(app) as s:
                action = select(func.count(AuditEvent.id)).where(
                    AuditEvent.action == "child_visits.export"
                )
                assert s.scalar(action) == 1
    finally:
        server._start_server()
        server.wait_streaming()
    caught_up(standby)
    assert replica.state().readable
    reset(statements)
    assert _identified(app, headers) == expected
    assert child_reads(statements, "replica")


def server_bin(name: str) -> str:
    from tests.pgserver import _pg_bin

    return _pg_bin(name)
