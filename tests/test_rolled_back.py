"""The ``app`` fixture's promise (tests/transactions.py): what the code under test commits is seen
by the rest of the test and by no other test; a rollback of the code under test undoes its own
work only."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, func, select

from clms.db import session_scope
from clms.models import Brand
from tests.transactions import SecondConnection

COMMITTED_IN_FIRST_TEST: set[str] = set()


def _codes(app) -> set[str]:
    with session_scope(app) as s:
        return set(s.scalars(select(Brand.code)))


def test_what_the_code_commits_is_seen_later_in_the_test(app, database_url):
    with session_scope(app) as s:  # the code under test commits
        s.add(Brand(code="KEPT", name="Kept"))
    assert _codes(app) == {"KEPT"}  # a later session of the same test sees it
    with app.extensions["clms_engine"].begin() as conn:  # and a connection of the engine
        assert conn.scalar(select(func.count()).select_from(Brand)) == 1

    # nothing reached the database itself: a connection of an engine of its own sees no row
    other = create_engine(database_url)
    try:
        with other.connect() as conn:
            assert conn.scalar(select(func.count()).select_from(Brand)) == 0
    finally:
        other.dispose()
    COMMITTED_IN_FIRST_TEST.add(database_url)


def test_and_is_gone_in_the_next_test(app, database_url):
    assert database_url in COMMITTED_IN_FIRST_TEST, "runs after the test above"
    assert _codes(app) == set()
    with session_scope(app) as s:  # ids count from 1 again (PostgreSQL's sequences set back)
        brand = Brand(code="FIRST", name="First")
        s.add(brand)
        s.flush()
        assert brand.id == 1


def test_a_rollback_of_the_code_undoes_its_own_savepoint_only(app):
    sessions = app.extensions["clms_sessionmaker"]
    with session_scope(app) as s:
        s.add(Brand(code="COMMITTED", name="Committed"))

    with sessions() as s:  # the code under test writes, then rolls back
        s.add(Brand(code="ROLLED-BACK", name="Rolled back"))
        s.flush()
        assert set(s.scalars(select(Brand.code))) == {"COMMITTED", "ROLLED-BACK"}
        s.rollback()
        assert set(s.scalars(select(Brand.code))) == {"COMMITTED"}
        s.add(Brand(code="AFTER", name="After the rollback"))
        s.commit()

    with pytest.raises(RuntimeError), app.extensions["clms_engine"].begin() as conn:
        conn.execute(Brand.__table__.insert().values(code="FAILED", name="Failed"))
        raise RuntimeError("the code under test fails: its transaction is rolled back")

    with sessions() as s:  # a savepoint of the code's own (Session.begin_nested)
        s.add(Brand(code="OUTER", name="Outer"))
        with s.begin_nested() as nested:
            s.add(Brand(code="INNER", name="Inner"))
            s.flush()
            nested.rollback()
        s.commit()

    with sessions() as s:  # closed without commit: its writes are gone
        s.add(Brand(code="UNCOMMITTED", name="Never committed"))
        s.flush()

    assert _codes(app) == {"COMMITTED", "AFTER", "OUTER"}


def test_a_reading_transaction_left_open_keeps_what_others_committed_meanwhile(app):
    """A session that only read stays open while a request commits (savepoints nest, separate
    connections do not): closing it without a commit does not undo the request's work."""
    sessions = app.extensions["clms_sessionmaker"]
    reader = sessions()
    assert reader.scalar(select(func.count()).select_from(Brand)) == 0
    with session_scope(app) as s:
        s.add(Brand(code="MEANWHILE", name="Committed meanwhile"))
    reader.close()  # a rollback of a transaction that wrote nothing
    assert _codes(app) == {"MEANWHILE"}


def test_a_second_real_connection_is_refused(app):
    engine = app.extensions["clms_engine"]._engine
    with pytest.raises(SecondConnection, match="committing"):
        engine.connect()
