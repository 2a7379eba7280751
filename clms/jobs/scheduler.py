"""The scheduler: runs the registered jobs (:mod:`clms.jobs.registry`) on time, in one process.

``clms scheduler`` (:mod:`clms.jobs.cli`) is that process. Web workers (gunicorn) never run
jobs, however many there are: only the process holding the *scheduler lock* does, which is what
makes several workers, or a second ``clms scheduler`` started by mistake, safe:

- PostgreSQL: a session-level advisory lock (``pg_try_advisory_lock``) taken on a connection of
  its own and held for the life of the process; it is released by the server when the process
  dies, however it dies;
- SQLite: an ``flock`` on ``<database file>.scheduler-lock``, released by the kernel likewise.

A second scheduler exits with a message, or with ``--wait`` stands by and takes over when the
first one stops.

The jobs are kept in the database (APScheduler's ``SQLAlchemyJobStore``, table
``apscheduler_jobs``) so a restart knows when each job last ran: runs missed while the scheduler
was down are coalesced into one run (``coalesce``), made when it is back (see
:func:`grace_seconds`). At start every job of the registry is (re)written with
``replace_existing`` (a changed ``DIGEST_HOUR`` or ``PULL_MINUTES`` takes effect), keeping the
stored next run time when the trigger is unchanged; jobs no longer in the registry are removed.
A stored job names its function by text (``clms.jobs.scheduler:_run`` and the job name), so
nothing but names and triggers is pickled; a job stored under the text of an older layout
(:data:`FORMER_RUN_REFS`) is the same job, rewritten with the current text at start.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import logging
import os
import pickle
import threading
import time
from collections.abc import Callable

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import STATE_STOPPED, BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from flask import Flask
from sqlalchemy import Engine, create_engine, delete, inspect, make_url, select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

from clms.db import make_engine
from clms.jobs import registry

log = logging.getLogger(__name__)

JOBSTORE_TABLE = "apscheduler_jobs"
RUN_REF = "clms.jobs.scheduler:_run"
#: what stored jobs named before the scheduler moved here from ``alerts``: the same function
FORMER_RUN_REFS = ("alerts.scheduler:_run",)
#: the advisory lock key on PostgreSQL: any constant unique to CLMS (b"CLMSSCHD" as an int64)
PG_LOCK_KEY = int.from_bytes(b"CLMSSCHD", "big") - 2**63
JOB_DEFAULTS = {"coalesce": True, "max_instances": 1, "misfire_grace_time": 300}
WORKERS = 4


class SchedulerLockTaken(RuntimeError):
    """Another scheduler process holds the lock on this database."""


class SchedulerLock:
    """The lock that makes one process, and only one, the scheduler of a database.

    >>> lock = SchedulerLock("sqlite:////srv/clms/clms.sqlite3")  # doctest: +SKIP
    >>> lock.acquire()            # False: another scheduler runs
    """

    def __init__(self, database_url: str):
        self.url = make_url(database_url)
        self._fd: int | None = None
        self._conn = None
        self._engine: Engine | None = None
        # held() is asked from the job threads: one statement at a time on the lock's connection
        self._mutex = threading.Lock()
        self.description = ""
        if self.url.get_backend_name() == "sqlite":
            database = self.url.database
            in_memory = not database or database == ":memory:"
            self.path = None if in_memory else f"{database}.scheduler-lock"
            self.description = self.path or "(in-memory database: no lock needed)"
        elif self.url.get_backend_name() == "postgresql":
            self.path = None
            self.description = f"pg_advisory_lock({PG_LOCK_KEY}) on {self.url.database}"
        else:  # pragma: no cover - only SQLite and PostgreSQL are supported
            raise ValueError(f"no scheduler lock for {self.url.get_backend_name()}")

    @property
    def is_postgresql(self) -> bool:
        return self.url.get_backend_name() == "postgresql"

    def acquire(
        self,
        *,
        wait: bool = False,
        poll: float = 5.0,
        stop: Callable[[], bool] = lambda: False,
    ) -> bool:
        """Take the lock; True when held. With ``wait``, try every ``poll`` seconds until it is
        free (True) or ``stop()`` says to give up (False).

        A database that cannot be reached raises :class:`~sqlalchemy.exc.OperationalError`;
        with ``wait`` it is waited for like a lock held by another scheduler (a scheduler
        restarted by a supervisor during a database outage starts when the database is back).
        """
        unreachable = False
        while True:
            try:
                if self._try():
                    return True
            except OperationalError as exc:
                if not wait:
                    raise
                if not unreachable:  # once per outage, not at every poll
                    log.warning("the database cannot be reached (%s); waiting for it", exc.orig)
                unreachable = True
            deadline = time.monotonic() + poll
            while True:
                if not wait or stop():
                    return False
                if time.monotonic() >= deadline:
                    break
                time.sleep(min(0.2, poll))

    def _try(self) -> bool:
        if self.held():
            return True
        if self.is_postgresql:
            if self._engine is None:
                self._engine = create_engine(self.url, poolclass=NullPool)
            conn = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            try:
                got = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": PG_LOCK_KEY})
                if got.scalar():
                    self._conn = conn
                    return True
            except BaseException:
                conn.close()
                raise
            conn.close()
            return False
        if self.path is None:
            self._fd = -1  # nothing to lock: an in-memory database has one process
            return True
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return True

    def held(self) -> bool:
        """Whether this process still holds the lock (on PostgreSQL: its connection is alive)."""
        with self._mutex:
            if self._conn is not None:
                try:
                    self._conn.execute(text("SELECT 1"))
                    return True
                except Exception:
                    log.exception("the scheduler lock's database connection is lost")
                    self._close_conn()
                    return False
            return self._fd is not None

    def release(self) -> None:
        """Give the lock back (also done by the server or kernel when the process ends)."""
        with self._mutex:
            self._release()

    def _release(self) -> None:
        if self._conn is not None:
            try:
                self._conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": PG_LOCK_KEY})
            except Exception:  # the connection is gone: so is the lock
                log.warning("could not release the scheduler lock cleanly", exc_info=True)
            self._close_conn()
        if self._fd is not None:
            if self._fd >= 0:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
                os.close(self._fd)
            self._fd = None
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    def _close_conn(self) -> None:
        with contextlib.suppress(Exception):  # closing a broken connection may fail: it is gone
            self._conn.close()
        self._conn = None

    def __enter__(self) -> SchedulerLock:
        if not self.acquire():
            raise SchedulerLockTaken(self.description)
        return self

    def __exit__(self, *_exc) -> None:
        self.release()


class _Stoppable:
    """APScheduler 3 looks for due jobs once more after ``shutdown()`` has closed the job store
    (its loop wakes, then checks the state): that look would open a connection on a disposed
    engine, never closed. Looking under the job store lock, and not once stopped, avoids it."""

    def _process_jobs(self):
        with self._jobstores_lock:
            if self.state == STATE_STOPPED:
                return None
            return super()._process_jobs()


class ClmsBlockingScheduler(_Stoppable, BlockingScheduler):
    """The scheduler of ``clms scheduler``."""


class ClmsBackgroundScheduler(_Stoppable, BackgroundScheduler):
    """The scheduler of ``clms demo``: runs in a thread."""


class _State:
    """The process's scheduler: what :func:`_run` needs to run a job (one scheduler a process)."""

    app: Flask | None = None
    lock: SchedulerLock | None = None
    scheduler: BaseScheduler | None = None


_state = _State()


def _run(name: str) -> None:
    """What the scheduler calls (by the text reference ``clms.jobs.scheduler:_run``)."""
    app, lock = _state.app, _state.lock
    if app is None:
        log.error("job %s: the scheduler has no application; not run", name)
        return
    if lock is not None and not lock.held():
        # another process may be the scheduler now: stop rather than run jobs twice
        log.critical("the scheduler lock is lost; stopping this scheduler (job %s not run)", name)
        scheduler = _state.scheduler
        if scheduler is not None:
            threading.Thread(target=scheduler.shutdown, kwargs={"wait": False}).start()
        return
    registry.run_job(app, name)


def build_scheduler(
    app: Flask, *, lock: SchedulerLock | None = None, run_now: tuple[str, ...] = ()
) -> BlockingScheduler:
    """The scheduler of ``clms scheduler``: every registered job, kept in the database.

    Not started. ``lock`` is the held :class:`SchedulerLock` (checked before each run); the
    caller takes it before starting and releases it after shutdown. The jobs named in ``run_now``
    run as soon as the scheduler starts (then on their schedule): after an outage, a pull or the
    processing of what waits need not wait for the next interval.
    """
    url = app.config["DATABASE_URL"]
    engine = make_engine(url)  # its own engine: the job store disposes of it at shutdown
    kept = _prepare_jobstore(engine, app.config)
    scheduler = ClmsBlockingScheduler(
        jobstores={"default": SQLAlchemyJobStore(engine=engine, tablename=JOBSTORE_TABLE)},
        executors={"default": ThreadPoolExecutor(WORKERS)},
        job_defaults=dict(JOB_DEFAULTS),
        timezone=dt.UTC,
    )
    now = dt.datetime.now(dt.UTC)
    _add_jobs(scheduler, app, lock, kept | dict.fromkeys(run_now, now))
    return scheduler


def run_in_background(app: Flask) -> BackgroundScheduler:
    """Run the jobs in a background thread of this process (``clms demo``); started.

    Takes the scheduler lock first: when another scheduler already runs the jobs on this database
    the returned scheduler has no job. The lock is released when the scheduler shuts down.
    """
    lock = SchedulerLock(app.config["DATABASE_URL"])
    scheduler = ClmsBackgroundScheduler(
        jobstores={"default": MemoryJobStore()},
        executors={"default": ThreadPoolExecutor(WORKERS)},
        job_defaults=dict(JOB_DEFAULTS),
        timezone=dt.UTC,
        daemon=True,
    )
    if lock.acquire():
        _add_jobs(scheduler, app, lock, {})

        def release(_event=None) -> None:
            lock.release()

        from apscheduler.events import EVENT_SCHEDULER_SHUTDOWN

        scheduler.add_listener(release, EVENT_SCHEDULER_SHUTDOWN)
    else:
        log.info("another scheduler runs the jobs on this database (%s)", lock.description)
    scheduler.start()
    return scheduler


def grace_seconds(trigger) -> int | None:
    """How late a run may still start. Missed runs are coalesced into the latest one, which is
    less than one interval old: an interval job gets its interval and a minute, so the coalesced
    run always happens; a daily (cron) job has no limit (None): a digest or a snapshot missed
    while the scheduler was down is made once when it is back, however late."""
    if isinstance(trigger, IntervalTrigger):
        return int(trigger.interval_length) + 60
    if isinstance(trigger, CronTrigger):
        return None
    return JOB_DEFAULTS["misfire_grace_time"]


def _add_jobs(
    scheduler: BaseScheduler,
    app: Flask,
    lock: SchedulerLock | None,
    kept: dict[str, dt.datetime],
) -> None:
    _state.app, _state.lock, _state.scheduler = app, lock, scheduler
    for name, job in registry.JOBS.items():
        trigger = job.trigger(app.config)
        extra = {"next_run_time": kept[name]} if name in kept else {}
        scheduler.add_job(
            RUN_REF,
            trigger=trigger,
            args=[name],
            id=name,
            name=name,
            replace_existing=True,
            misfire_grace_time=grace_seconds(trigger),
            **extra,
        )


def _prepare_jobstore(engine: Engine, config) -> dict[str, dt.datetime]:
    """Remove stored jobs the registry no longer has; return the stored next run time of each job
    whose trigger is unchanged (kept, so runs missed while stopped are caught up, once)."""
    if not inspect(engine).has_table(JOBSTORE_TABLE):
        return {}
    from sqlalchemy import Column, Float, LargeBinary, MetaData, Table, Unicode

    table = Table(
        JOBSTORE_TABLE,
        MetaData(),
        Column("id", Unicode(191), primary_key=True),
        Column("next_run_time", Float(25)),
        Column("job_state", LargeBinary),
    )
    kept = {}
    with engine.begin() as conn:
        conn.execute(delete(table).where(table.c.id.not_in(list(registry.JOBS))))
        for job_id, state in conn.execute(select(table.c.id, table.c.job_state)):
            try:
                # our own table, written by our own scheduler: anyone able to change it could
                # change everything else in the database too
                stored = pickle.loads(state)  # noqa: S301
            except Exception:
                log.warning("stored job %s cannot be read; it is written anew", job_id)
                continue
            trigger = registry.JOBS[job_id].trigger(config)
            same = (
                stored.get("func") in (RUN_REF, *FORMER_RUN_REFS)
                and tuple(stored.get("args", ())) == (job_id,)
                and type(stored.get("trigger")) is type(trigger)
                and str(stored.get("trigger")) == str(trigger)
            )
            if same and stored.get("next_run_time") is not None:
                kept[job_id] = stored["next_run_time"]
    return kept
