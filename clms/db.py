"""Database engine and sessions.

One engine per application. A web request gets one session (``db()``), committed at the boundary by
the view that changes data and always closed at teardown. The CLI and jobs use ``session_scope``.
Nothing here is SQLite-only: SQLite gets WAL and a busy timeout so that several gunicorn workers can
share the embedded database, PostgreSQL needs nothing special.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from flask import Flask, current_app, g
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker


class Base(DeclarativeBase):
    """Declarative base of every model."""


def make_engine(url: str) -> Engine:
    """Create the engine for ``url`` with settings that suit concurrent web workers."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # pragma: no cover - run on connect
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()
            # let SQLAlchemy's "begin" event below issue BEGIN instead of pysqlite
            dbapi_conn.isolation_level = None

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn):  # pragma: no cover - run on begin
            # pysqlite's deferred BEGIN lets two writers both read, then one fails to upgrade its
            # lock with "database is locked" and no retry. BEGIN IMMEDIATE takes the write lock up
            # front and waits on busy_timeout instead, as PostgreSQL's row locks would. A
            # transaction declared read-only (read_only()) takes no lock: WAL readers never wait.
            if conn.get_execution_options().get(READ_ONLY):
                conn.exec_driver_sql("BEGIN")
            else:
                conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)


READ_ONLY = "clms_read_only"


def read_only(session: Session) -> None:
    """Declare the session's next transaction read-only (call before its first statement).

    On SQLite it then begins without taking the database's single write lock, so reads never queue
    behind writers; a write in it fails. Elsewhere it changes nothing.
    """
    session.connection(execution_options={READ_ONLY: True})


def init_app(app: Flask) -> None:
    """Attach an engine and session factory to ``app`` and close the request session at teardown."""
    engine = make_engine(app.config["DATABASE_URL"])
    app.extensions["clms_engine"] = engine
    app.extensions["clms_sessionmaker"] = sessionmaker(bind=engine, expire_on_commit=False)

    @app.teardown_appcontext
    def _close_session(_exc):
        session = g.pop("db_session", None)
        if session is not None:
            session.close()


def db() -> Session:
    """The session of the current request (or application context), created on first use."""
    if "db_session" not in g:
        g.db_session = current_app.extensions["clms_sessionmaker"]()
    return g.db_session


def engine() -> Engine:
    """The engine of the current application."""
    return current_app.extensions["clms_engine"]


@contextmanager
def session_scope(app: Flask | None = None) -> Iterator[Session]:
    """A session that commits when the block ends and rolls back on error (CLI and jobs)."""
    app = app or current_app
    session = app.extensions["clms_sessionmaker"]()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
