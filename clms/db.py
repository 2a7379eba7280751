"""Database engine and sessions, and the one transaction helper.

One engine per application. The transaction boundaries, one way each:

- a web request: one session (``db()``), committed by the view that changes data (or by the
  request's own boundary helpers in the roof), always closed at teardown;
- a command or a job: :func:`session_scope`, the one helper that makes a new session, commits
  when its block ends, rolls back on error and closes; a job passes its ``ctx.sessions``, a
  command its application (or nothing: the current one);
- a request or a job whose work may lose a race: :func:`commit_retrying`.

Code below the boundaries flushes, never commits.

``db()``, ``engine()`` and :func:`session_scope` without an argument are the roof's entry: they
find the current application (``current_app``), and only the roof (views, commands, the app
factory) calls them so. Below the roof nothing reads the application: sessions, session factories
and settings are passed in.

Nothing here is SQLite-only: SQLite gets WAL and a busy timeout so that several gunicorn workers can
share the embedded database, PostgreSQL needs nothing special.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from flask import Flask, current_app, g
from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

T = TypeVar("T")


class Base(DeclarativeBase):
    """Declarative base of every model."""


def make_engine(url: str) -> Engine:
    """Create the engine for ``url`` with settings that suit concurrent web workers."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
        database = make_url(url).database
        lock_path = f"{database}.write-lock" if database and database != ":memory:" else None

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # pragma: no cover - run on connect
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            # FULL: a commit (a phone's 201) survives a power cut, not only a killed process
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()
            # let SQLAlchemy's "begin" event below issue BEGIN instead of pysqlite
            dbapi_conn.isolation_level = None
            if lock_path is not None:
                _record.info[_LOCK_FD] = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)

        @event.listens_for(engine, "close")
        def _sqlite_close(_dbapi_conn, record):  # pragma: no cover - run on close
            fd = record.info.pop(_LOCK_FD, None)
            if fd is not None:
                os.close(fd)

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn):  # pragma: no cover - run on begin
            # pysqlite's deferred BEGIN lets two writers both read, then one fails to upgrade its
            # lock with "database is locked" and no retry. BEGIN IMMEDIATE takes the write lock up
            # front and waits on busy_timeout instead, as PostgreSQL's row locks would. A
            # transaction declared read-only (read_only()) takes no lock: WAL readers never wait.
            #
            # Writers first queue on an flock of a file next to the database: the kernel wakes the
            # next one the moment the lock is free, where SQLite's own busy handler sleeps 1, 2,
            # 5, 10 ... 100 ms between looks, leaving the CPU idle while writers queue.
            if conn.get_execution_options().get(READ_ONLY):
                conn.exec_driver_sql("BEGIN")
                return
            fd = conn.connection.info.get(_LOCK_FD)
            if fd is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
                conn.connection.info[_LOCKED] = True
            try:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            except BaseException:
                _unlock(conn)
                raise

        def _unlock(conn):  # pragma: no cover - run on commit and rollback
            info = conn.connection.info
            if info.pop(_LOCKED, False):
                fcntl.flock(info[_LOCK_FD], fcntl.LOCK_UN)

        @event.listens_for(engine, "commit")
        def _sqlite_commit(conn):  # pragma: no cover - run on commit
            # the event comes just before COMMIT: a writer woken now waits a moment in BEGIN
            # IMMEDIATE (SQLite's busy handler) until COMMIT is done, microseconds later
            _unlock(conn)

        @event.listens_for(engine, "rollback")
        def _sqlite_rollback(conn):  # pragma: no cover - run on rollback
            _unlock(conn)

        return engine
    # a database host that drops packets silently answers 503 within seconds, not never
    connect_args = {} if "connect_timeout" in url else {"connect_timeout": 10}
    return create_engine(
        url, pool_pre_ping=True, pool_size=5, max_overflow=5, connect_args=connect_args
    )


READ_ONLY = "clms_read_only"
_LOCK_FD, _LOCKED = "clms_write_lock_fd", "clms_write_locked"


def read_only(session: Session) -> None:
    """Declare the session's next transaction read-only (call before its first statement).

    On SQLite it then begins without taking the database's single write lock, so reads never queue
    behind writers; a write in it fails. Elsewhere it changes nothing. :func:`writable` ends it.
    """
    session.connection(execution_options={READ_ONLY: True})


def writable(session: Session) -> None:
    """End a read-only transaction (:func:`read_only`) so that the next statement begins one that
    may write; it has only read, so nothing is lost (loaded objects stay as they are). A session
    in any other state is left alone."""
    if session.in_transaction() and session.connection().get_execution_options().get(READ_ONLY):
        session.commit()


def insert_ignoring_conflict(conn, table, values: dict, keys: list[str]) -> int:
    """``INSERT ... ON CONFLICT (keys) DO NOTHING`` on either database: the number of rows
    inserted, 0 when a row with the same ``keys`` exists (or was committed meanwhile by another
    transaction, which PostgreSQL waits for)."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    stmt = insert(table).values(**values).on_conflict_do_nothing(index_elements=keys)
    # the row inserted comes back, none on a conflict (the drivers' rowcount is -1 here on
    # PostgreSQL: it cannot tell)
    key = table.c[keys[0]]
    return len(conn.execute(stmt.returning(key)).all())


def init_app(app: Flask) -> None:
    """Attach an engine and session factory to ``app`` and close the request session at teardown."""
    engine = make_engine(app.config["DATABASE_URL"])
    app.extensions["clms_engine"] = engine
    app.extensions["clms_sessionmaker"] = sessionmaker(bind=engine, expire_on_commit=False)

    @app.teardown_appcontext
    def _close_session(_exc):
        session = g.pop("db_session", None)
        if session is not None:
            try:
                session.close()
            except Exception:
                # the database dropped the connection, so the rollback that ends it failed (the
                # answer, a 503, is already made): discard the connection instead of pooling it
                with contextlib.suppress(Exception):
                    session.invalidate()


def db() -> Session:
    """The session of the current request (or application context), created on first use: the
    roof's entry (views), committed by the view."""
    if "db_session" not in g:
        g.db_session = current_app.extensions["clms_sessionmaker"]()
    return g.db_session


def engine() -> Engine:
    """The engine of the current application (the roof's entry: commands that work on the whole
    database)."""
    return current_app.extensions["clms_engine"]


@contextmanager
def session_scope(source: Flask | Callable[[], Session] | None = None) -> Iterator[Session]:
    """The one transaction helper of commands and jobs: a new session whose transaction commits
    when the block ends, is rolled back on error, and is always closed.

    ``source`` makes the session: an application (its sessionmaker; what commands and tests
    pass), or a factory of sessions (a job's ``ctx.sessions``, a sessionmaker). None: the current
    application, for the roof's commands only.

    >>> with session_scope(ctx.sessions) as session:  # doctest: +SKIP
    ...     escalate_overdue_alerts(session, ctx.now)
    """
    if source is None:
        source = current_app._get_current_object()
    sessions = source.extensions["clms_sessionmaker"] if isinstance(source, Flask) else source
    session = sessions()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def commit_retrying(session: Session, work: Callable[[], T], attempts: int = 3) -> T:
    """Run ``work()`` in ``session``'s transaction and commit: the boundary of a request or a job
    whose work may lose a race to a concurrent transaction; returns what ``work`` returned.

    A lost race (the same instanceID, household or attachment stored by another transaction
    between our read and our write) surfaces as a unique-key violation: the transaction is rolled
    back and ``work`` runs again, up to ``attempts`` times in all, and the next attempt finds the
    other transaction's rows. Any other failure rolls back and propagates.
    """
    for attempt in range(1, attempts + 1):
        try:
            result = work()
            session.commit()
            return result
        except IntegrityError:
            session.rollback()
            if attempt == attempts:
                raise
        except BaseException:
            session.rollback()
            raise
    raise AssertionError("unreachable")
