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

The heavy reads (indicators, hotspots, maps, exports) may come from a PostgreSQL streaming replica
(``READ_DATABASE_URL``): the views of those routes take :func:`read_session` instead of ``db()``,
the one place that decides where a request reads (:class:`Replica`: the standby while it answers
and is no more than ``READ_MAX_LAG_SECONDS`` behind, else the primary, with a log line). Writes,
the sign-in check, the audit entries of those reads and anything that must see what was just
written stay on the primary (:func:`primary_bind`). Without the setting every read is on the
primary, as before.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from flask import Flask, current_app, g
from sqlalchemy import Engine, create_engine, event, make_url, text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

T = TypeVar("T")
log = logging.getLogger("clms.db")


class Base(DeclarativeBase):
    """Declarative base of every model."""


#: the SQL math functions the queries use (the KPIs' haversine) that an SQLite built without
#: SQLITE_ENABLE_MATH_FUNCTIONS lacks (Debian's has them): Python's own, given to it then
_MATH = {"sin": math.sin, "cos": math.cos, "asin": math.asin, "sqrt": math.sqrt,
         "radians": math.radians}  # fmt: skip


def _sqlite_math(dbapi_conn) -> None:
    try:
        dbapi_conn.execute("SELECT sin(0), cos(0), asin(0), sqrt(0), radians(0)").fetchone()
    except Exception:  # noqa: BLE001 - "no such function": give it Python's
        for name, function in _MATH.items():
            dbapi_conn.create_function(name, 1, function, deterministic=True)


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
            _sqlite_math(dbapi_conn)
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
    """Attach an engine and session factory to ``app`` (and the read replica's, when
    ``READ_DATABASE_URL`` is set), and close the request's sessions at teardown."""
    engine = make_engine(app.config["DATABASE_URL"])
    app.extensions["clms_engine"] = engine
    app.extensions["clms_sessionmaker"] = sessionmaker(bind=engine, expire_on_commit=False)
    if app.config.get("READ_DATABASE_URL"):
        app.extensions["clms_replica"] = Replica(
            app.config["READ_DATABASE_URL"], int(app.config.get("READ_MAX_LAG_SECONDS", 30))
        )

    @app.teardown_appcontext
    def _close_session(_exc):
        reading = g.pop("db_read_session", None)
        session = g.pop("db_session", None)
        for one in (session, None if reading is session else reading):
            if one is not None:
                try:
                    one.close()
                except Exception:
                    # the database dropped the connection, so the rollback that ends it failed
                    # (the answer, a 503, is already made): discard the connection instead of
                    # pooling it
                    with contextlib.suppress(Exception):
                        one.invalidate()


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


def read_session() -> Session:
    """The session the current request reads indicators, hotspots, maps and exports from (the
    roof's entry for those views, instead of ``db()``), created on first use, read-only.

    On the read replica while it may be read (:meth:`Replica.readable`), else the request's own
    session on the primary, as without a replica. Either way the transaction the sign-in check
    began on the primary ends first, so a long read holds no primary connection. What must be
    written (the audit entries of the reads: :func:`clms.audit.record_read` with this session or
    ``db()``), or read right after being written (:func:`primary_bind`), goes to the primary."""
    if "db_read_session" not in g:
        primary = db()
        primary.commit()  # nothing written: the person was only read
        session = read_sessions(current_app._get_current_object(), fallback=primary)()
        read_only(session)
        session.info[REQUEST_READS] = True
        g.db_read_session = session
    return g.db_read_session


def detach_read_session() -> Session | None:
    """Take the request's read session (:func:`read_session`) out of the request's teardown, for
    a response that reads while it streams, after the request has ended: the caller closes it."""
    session = g.pop("db_read_session", None)
    if session is not None and g.get("db_session") is session:
        g.pop("db_session")
    return session


def read_sessions(app: Flask, fallback: Session | None = None) -> Callable[[], Session]:
    """A factory of sessions for heavy reads (a request's, a job's): each new one on ``app``'s
    replica when it may be read, else on the primary (``fallback`` itself when given, a new
    session otherwise). A replica's session knows the primary's engine (:func:`primary_bind`)."""
    replica: Replica | None = app.extensions.get("clms_replica")

    def make() -> Session:
        if replica is not None and replica.readable():
            session = replica.sessions()
            session.info[PRIMARY] = app.extensions["clms_engine"]
            return session
        return fallback if fallback is not None else app.extensions["clms_sessionmaker"]()

    return make


def ping(session: Session) -> None:
    """One trivial statement on ``session``'s database (a health check): raises if it cannot be
    reached."""
    session.execute(text("SELECT 1"))
    session.rollback()


def primary_bind(session: Session):
    """Where to write, or to read what was just written, beside ``session``: the primary's engine
    for a session on the read replica, ``session``'s own bind otherwise."""
    return session.info.get(PRIMARY) or session.get_bind()


@contextmanager
def reading_scope(reads: Callable[[], Session] | None, session: Session) -> Iterator[Session]:
    """The session a job's heavy reads use beside its writing ``session``: ``session`` itself when
    there is no replica (``reads`` None: ``JobContext.read_sessions``), else a new read-only session
    from ``reads`` (the replica, or the primary when it may not be read), closed after the block."""
    if reads is None:
        yield session
        return
    reading = reads()
    try:
        read_only(reading)
        yield reading
    finally:
        reading.close()


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


# --- the read replica ---------------------------------------------------------------------------

PRIMARY = "clms_primary"  # session.info: the primary's engine, on a replica's session
REQUEST_READS = "clms_request_reads"  # session.info: the request's read session (clms.audit)

#: asked of the replica at most every RECHECK seconds per worker: is it a standby, is it streaming
#: from the primary, how far behind is it (0 when it has replayed all it received; just after a
#: restart it may have replayed more than its receiver has received yet)
_CHECK = text(
    "SELECT pg_is_in_recovery(), EXISTS (SELECT 1 FROM pg_stat_wal_receiver), "
    "CASE WHEN pg_last_wal_replay_lsn() >= pg_last_wal_receive_lsn() THEN 0 "
    "ELSE extract(epoch FROM now() - pg_last_xact_replay_timestamp()) END"
)


class ReplicaState:
    """What the last look at the replica found: ``status`` (streaming, lagging, not_streaming,
    not_standby, down), ``lag`` in seconds (None: unknown), ``detail`` (the error, if down)."""

    def __init__(self, status: str, lag: float | None = None, detail: str = ""):
        self.status, self.lag, self.detail = status, lag, detail
        self.checked = time.monotonic()

    @property
    def readable(self) -> bool:
        return self.status == "streaming"

    def __repr__(self) -> str:
        return f"ReplicaState({self.status!r}, lag={self.lag!r})"


class Replica:
    """A PostgreSQL streaming replica of the primary, read while it is fit to be read.

    Fit: it answers, it is a standby (``pg_is_in_recovery()``), its WAL receiver runs (it is in
    touch with the primary), and it is no more than ``max_lag`` seconds behind (a replica that has
    replayed all it received is 0 behind; one still replaying is as far behind as its last
    replayed commit). Anything else, and the reads go to the primary, logged once per change: a
    replica down or behind costs the primary some load, never a wrong or missing answer. A
    connection to it lost mid-request marks it down at once (that request answers 503, as for
    the primary; the next ones read the primary). It is looked at again every ``RECHECK`` seconds
    per worker (one small query); connecting to it gives up after 3 s (unless its URL says)."""

    RECHECK = 10.0

    def __init__(self, url: str, max_lag: float):
        if "connect_timeout" not in url:
            url = make_url(url).update_query_dict({"connect_timeout": "3"})
            url = url.render_as_string(hide_password=False)
        self.engine = make_engine(url)
        self.sessions = sessionmaker(bind=self.engine, expire_on_commit=False)
        self.max_lag = float(max_lag)
        self._state: ReplicaState | None = None
        self._lock = threading.Lock()
        event.listen(self.engine, "handle_error", self._failed)

    def readable(self) -> bool:
        """May the replica be read now? (looked at again when the last look is RECHECK old)"""
        return self.state().readable

    def state(self) -> ReplicaState:
        """The last look at the replica, taken again when older than RECHECK seconds."""
        with self._lock:
            known = self._state
            if known is None or time.monotonic() - known.checked >= self.RECHECK:
                self._set(self.check())
            return self._state

    def check(self) -> ReplicaState:
        """Look at the replica now (one query); never raises."""
        try:
            with self.engine.connect() as conn:
                standby, streaming, lag = conn.execute(_CHECK).one()
                if standby and streaming and lag != 0:  # behind, or nothing replayed yet
                    lag = self._settled(conn, lag)
        except DBAPIError as error:
            return ReplicaState("down", detail=_first_line(error.orig or error))
        except Exception as error:  # e.g. no connection to be had from its pool in time
            return ReplicaState("down", detail=_first_line(error))
        lag = None if lag is None else max(0.0, float(lag))
        if not standby:
            return ReplicaState("not_standby")
        if not streaming:
            return ReplicaState("not_streaming", lag)
        if lag is None or lag > self.max_lag:
            return ReplicaState("lagging", lag)
        return ReplicaState("streaming", lag)

    def _settled(self, conn, lag: float | None) -> float | None:
        """The lag of a replica found still replaying: 0 if it replays, within a second, all it
        had received when looked at (WAL in flight, not a replica behind: after a quiet spell
        the last replayed commit is old however current the replica is, and a standby that has
        replayed no commit since it started has no such time at all), else ``lag``."""
        received = conn.execute(text("SELECT pg_last_wal_receive_lsn()")).scalar()
        for _ in range(10):
            time.sleep(0.1)
            if conn.execute(
                text("SELECT pg_last_wal_replay_lsn() >= CAST(:lsn AS pg_lsn)"), {"lsn": received}
            ).scalar():
                return 0.0
        return lag

    def _set(self, state: ReplicaState) -> None:
        before, self._state = self._state, state
        if before is not None and before.readable == state.readable:
            return
        if state.readable:
            log.info("read replica %s: reading from it (%.1f s behind)", self._name(), state.lag)
        else:
            log.warning(
                "read replica %s is %s%s%s: the primary answers the reads meant for it",
                self._name(),
                state.status,
                "" if state.lag is None else f" ({state.lag:.1f} s behind)",
                f" ({state.detail})" if state.detail else "",
            )

    def _failed(self, context) -> None:
        # the replica went away under a request (its connection dropped, or no new one can be
        # made): stop reading it now
        if context.is_disconnect or context.connection is None:
            self._set(ReplicaState("down", detail=_first_line(context.original_exception)))

    def _name(self) -> str:
        url = self.engine.url
        return f"{url.host}:{url.port or 5432}/{url.database}"


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__
