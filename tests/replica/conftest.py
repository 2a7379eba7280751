"""A real PostgreSQL streaming standby of the test server, for the read-replica tests.

The standby is made once per run, only when these tests run: ``pg_basebackup -R`` of the test
server (``tests/pgserver.py``), started on its own port, streaming (about half a second). The
tests use a database of their own on the primary (``clms_replica``, migrated before the copy),
and an ``app`` whose ``READ_DATABASE_URL`` is that database on the standby. They commit for real
(``@pytest.mark.committing``); the tables are emptied after each, on the primary, and the standby
follows. PostgreSQL only: with ``--db=sqlite`` they are skipped (SQLite has no replicas).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from clms.app import create_app
from clms.migrate import upgrade
from tests.conftest import COMPILED_TEMPLATES, SHARED, BrowserClient, empty_tables

DATABASE = "clms_replica"


@pytest.fixture(scope="session")
def standby(request):
    """(primary server, standby server): the standby streams the primary's every database."""
    if "postgresql" not in request.config.getoption("--db"):
        pytest.skip("a read replica is a PostgreSQL standby: these tests need --db postgresql")
    postgres_server = request.getfixturevalue("postgres_server")  # started only when needed
    url = postgres_server.create_database(DATABASE)
    engine = create_engine(url)
    upgrade(engine)
    empty_tables(engine)
    engine.dispose()
    server = postgres_server.start_standby(Path(tempfile.mkdtemp(prefix="clms-pg-standby-")))
    yield postgres_server, server
    server.stop()


@pytest.fixture
def app(standby, tmp_path):
    """The application on the primary, reading its heavy pages from the standby; the replica is
    looked at on every read (``RECHECK`` 0) so a test sees a change of its state at once."""
    primary, server = standby
    app = create_app(
        {
            "DATABASE_URL": primary.url(DATABASE),
            "READ_DATABASE_URL": server.url(DATABASE),
            "SECRET_KEY": "test-secret",
            "TESTING": True,
            "SHARED_DATA": str(SHARED),
            "ODK_VALIDATE": "0",
        }
    )
    app.instance_path = str(tmp_path / "instance")
    app.test_client_class = BrowserClient
    app.jinja_env.bytecode_cache = COMPILED_TEMPLATES
    app.extensions["clms_replica"].RECHECK = 0.0
    try:
        yield app
    finally:
        if server.sql("SELECT pg_is_in_recovery()"):  # a test may have paused the replay
            server.sql("SELECT pg_wal_replay_resume()")
        empty_tables(app.extensions["clms_engine"])
        app.extensions["clms_engine"].dispose()
        app.extensions["clms_replica"].engine.dispose()


def caught_up(standby, timeout: float = 30) -> None:
    """Wait until the standby has replayed everything the primary has written so far."""
    primary, server = standby
    # the insert location: with synchronous_commit=off a commit may not be written to the WAL yet
    target = primary.sql("SELECT pg_current_wal_insert_lsn()")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = server.sql(f"SELECT pg_last_wal_replay_lsn() >= '{target}'::pg_lsn")
        if done:
            return
        time.sleep(0.05)
    raise AssertionError(f"the standby did not replay up to {target} in {timeout} s")
