"""The scheduled jobs: plain functions in a registry.

The scheduler (:mod:`clms.jobs.scheduler`), the CLI (``clms jobs run NAME``) and the tests call the
same function through :func:`run_job`, which runs a job with retries, records a
:class:`~clms.models.JobRun` and never raises: a failing job must not stop the others.

A job is a function of a :class:`JobContext` (the settings, a factory of new sessions, the time)
that returns a small summary dict. The job is the transaction boundary of its work: it opens its
own transactions with the one helper, :func:`clms.db.session_scope` ``(ctx.sessions)`` (a short one
per piece of work, never two at once: on SQLite writers queue on a single lock), and the features
it calls flush, never commit. Its settings come from ``ctx.config``, passed down as arguments.
Every job is safe to run again or at the same time as itself: what it does is recorded on the rows
it changes.

=================== ======================== ==================================================
job                 when (UTC)               does
=================== ======================== ==================================================
process_submissions every 10 s               the intake pipeline (clms.intake.process)
pull_sources        every PULL_MINUTES       pull ODK Central / KoboToolbox (clms.intake.pull)
send_notifications  every minute             send the mail that is due (clms.jobs.outbox)
escalate            every 15 min             overdue alerts, case steps, referrals upward
remind_followups    hourly                   remind officers of follow-ups due within 24 h
daily_digest        daily at DIGEST_HOUR:00  digest of medium and low alerts per officer
kpi_snapshot        daily at 01:30           KPI figures per area (alerts.kpis)
hotspots_refresh    hourly                   release brands' new periods (geo.hotspots.releases)
prune_job_runs      daily at 02:15           forget job runs older than 30 days
retention           daily at 03:00           anonymise children past RETENTION_YEARS
=================== ======================== ==================================================
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import time
import traceback
from collections.abc import Callable, Mapping
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from flask import Flask
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from clms.db import read_sessions, reading_scope, session_scope
from clms.models import JobRun, utcnow

log = logging.getLogger(__name__)

#: attempts of a failing job before the run is recorded as failed
ATTEMPTS = 3
#: seconds before the second attempt; doubled before each next one
RETRY_BACKOFF = 2.0
#: job runs older than this are deleted by ``prune_job_runs`` (the latest of each job is kept)
KEEP_JOB_RUNS = dt.timedelta(days=30)


@dataclass(frozen=True)
class JobContext:
    """What a job gets: the settings, ``sessions()`` making a new Session, and the time;
    ``read_sessions`` makes sessions for heavy reads on the read replica (None: no replica, read
    through ``sessions``; see :func:`clms.db.reading_scope`)."""

    config: Mapping[str, Any]
    sessions: Callable[[], Session]
    now: dt.datetime = field(default_factory=utcnow)
    app: Flask | None = None
    read_sessions: Callable[[], Session] | None = None

    @classmethod
    def for_app(cls, app: Flask, now: dt.datetime | None = None) -> JobContext:
        """The context of ``app``: its settings and its sessionmaker."""
        reads = read_sessions(app) if "clms_replica" in app.extensions else None
        return cls(app.config, app.extensions["clms_sessionmaker"], now or utcnow(), app, reads)


@dataclass(frozen=True)
class Job:
    """A scheduled job: ``func(ctx) -> summary``, and when to run it.

    ``trigger`` makes the APScheduler trigger from the settings (``PULL_MINUTES`` and
    ``DIGEST_HOUR`` come from the configuration).
    """

    name: str
    func: Callable[[JobContext], dict]
    trigger: Callable[[Mapping[str, Any]], BaseTrigger]
    description: str


#: every job by name, in the order they were registered
JOBS: dict[str, Job] = {}


def register(name: str, trigger: Callable[[Mapping[str, Any]], BaseTrigger]):
    """Decorator adding a function to :data:`JOBS` (description: its docstring's first line)."""

    def add(func: Callable[[JobContext], dict]) -> Callable[[JobContext], dict]:
        description = (func.__doc__ or name).strip().splitlines()[0]
        JOBS[name] = Job(name, func, trigger, description)
        return func

    return add


def every(**interval) -> Callable[[Mapping[str, Any]], BaseTrigger]:
    """A trigger factory: ``every(minutes=15)``."""
    return lambda _config: IntervalTrigger(timezone=dt.UTC, **interval)


def daily(hour: int, minute: int = 0) -> Callable[[Mapping[str, Any]], BaseTrigger]:
    """A trigger factory: every day at ``hour:minute`` UTC."""
    return lambda _config: CronTrigger(hour=hour, minute=minute, timezone=dt.UTC)


# --- the jobs ------------------------------------------------------------------------------------


@register("process_submissions", every(seconds=10))
def process_submissions(ctx: JobContext) -> dict:
    """Parse received submissions into households, visits and children."""
    from clms.intake.process import process_received

    result = process_received(ctx.sessions, full_batches_only=False, config=ctx.config)
    return {
        "processed": result.processed,
        "parsed": result.parsed,
        "review": result.review,
        "failed": result.failed,
    }


@register(
    "pull_sources",
    lambda config: IntervalTrigger(minutes=int(config["PULL_MINUTES"]), timezone=dt.UTC),
)
def pull_sources(ctx: JobContext) -> dict:
    """Pull new submissions from ODK Central and KoboToolbox sources."""
    try:
        from clms.intake.pull import pull_all
    except ModuleNotFoundError as exc:
        if exc.name != "clms.intake.pull":
            raise
        return {"skipped": "clms.intake.pull is not installed"}
    return pull_all(ctx.sessions, ctx.config)


@register("send_notifications", every(minutes=1))
def send_notifications(ctx: JobContext) -> dict:
    """Send the notification emails that are due (the outbox)."""
    from clms.jobs.outbox import send_due

    return send_due(ctx.sessions, ctx.config, now=ctx.now)


@register("escalate", every(minutes=15))
def escalate(ctx: JobContext) -> dict:
    """Escalate overdue alerts, case steps and referrals to supervisors, once."""
    from alerts.escalate import escalate_case_steps, escalate_overdue_alerts, escalate_referrals

    with session_scope(ctx.sessions) as session:
        alerts = escalate_overdue_alerts(session, ctx.now)
    with session_scope(ctx.sessions) as session:
        cases = escalate_case_steps(session, ctx.now)
    with session_scope(ctx.sessions) as session:
        referrals = escalate_referrals(session, ctx.now)
    return {"alerts": alerts, "case_steps": cases, "referrals": referrals}


@register("remind_followups", every(hours=1))
def remind_followups(ctx: JobContext) -> dict:
    """Remind case officers of follow-up visits due within 24 hours."""
    from alerts.escalate import remind_followups as remind

    with session_scope(ctx.sessions) as session:
        return remind(session, ctx.now)


@register(
    "daily_digest",
    lambda config: CronTrigger(hour=int(config["DIGEST_HOUR"]), minute=0, timezone=dt.UTC),
)
def daily_digest(ctx: JobContext) -> dict:
    """Queue each officer's daily digest of new medium and low alerts."""
    from alerts.notify import queue_daily_digest

    with session_scope(ctx.sessions) as session:
        return {"digests": queue_daily_digest(session, ctx.now)}


@register("kpi_snapshot", daily(1, 30))
def kpi_snapshot(ctx: JobContext) -> dict:
    """Take the day's KPI snapshot per area and overall (figures read from the read replica
    when there is one fit to be read, written on the primary)."""
    from alerts.kpis import take_kpi_snapshot
    from clms.config import gps_far_km

    with session_scope(ctx.sessions) as session, reading_scope(ctx.read_sessions, session) as reads:
        rows = take_kpi_snapshot(
            session, ctx.now.date(), now=ctx.now, far_km=gps_far_km(ctx.config), reads=reads
        )
    return {"day": ctx.now.date().isoformat(), "rows": rows}


@register("hotspots_refresh", lambda config: IntervalTrigger(hours=1, timezone=dt.UTC))
def hotspots_refresh(ctx: JobContext) -> dict:
    """Release each brand's latest published period (geo.hotspots.releases) as soon as it is
    published, so that no page view waits for the aggregation; releases already made stay."""
    from geo.hotspots.releases import refresh
    from geo.hotspots.settings import HotspotSettings

    settings = HotspotSettings.from_config(ctx.config)
    with session_scope(ctx.sessions) as session:
        made = refresh(session, now=ctx.now, settings=settings)
    return {"releases": made}


@register("prune_job_runs", daily(2, 15))
def prune_job_runs(ctx: JobContext) -> dict:
    """Delete job runs older than 30 days (the latest run of each job is kept)."""
    with session_scope(ctx.sessions) as session:
        latest = select(func.max(JobRun.id)).group_by(JobRun.job).scalar_subquery()
        result = session.execute(
            delete(JobRun).where(
                JobRun.started_at < ctx.now - KEEP_JOB_RUNS, JobRun.id.not_in(latest)
            )
        )
        return {"deleted": result.rowcount}


@register("retention", daily(3, 0))
def retention(ctx: JobContext) -> dict:
    """Anonymise children whose cases all closed more than RETENTION_YEARS ago."""
    from clms.dataprotection import run_retention

    result = run_retention(ctx.sessions, ctx.config, now=ctx.now, actor="scheduler")
    if result.disabled:
        return {"retention": "off"}
    return {"children": result.children, "records": result.records, "cut": result.cut}


# --- running a job -------------------------------------------------------------------------------


def run_job(
    app_or_ctx: Flask | JobContext,
    name: str,
    *,
    attempts: int | None = None,
    backoff: float | None = None,
) -> JobRun:
    """Run the job ``name`` now and record it as a :class:`JobRun`; never raises.

    A job that raises is tried again, up to ``attempts`` times in all (default :data:`ATTEMPTS`),
    waiting ``backoff`` seconds, then twice as long, between tries; the run is then recorded as
    failed with the last line of the traceback in ``error`` (the whole traceback is logged), and
    the next scheduled run tries again anyway. The returned JobRun is detached (``id`` is set when
    it could be recorded).

    >>> run = run_job(app, "escalate")  # doctest: +SKIP
    >>> run.ok, run.summary
    (True, {'alerts': {'escalated': 0, 'notifications': 0}, 'case_steps': {...}})
    """
    attempts = ATTEMPTS if attempts is None else max(1, attempts)
    backoff = RETRY_BACKOFF if backoff is None else backoff
    ctx = app_or_ctx if isinstance(app_or_ctx, JobContext) else JobContext.for_app(app_or_ctx)
    started = utcnow()
    run_id = _record_start(ctx, name, started)
    job = JOBS.get(name)
    summary: dict = {}
    error: str | None = None
    clock = time.monotonic()
    if job is None:
        error = f"KeyError: no job called {name!r}"
        log.error("job %s: there is no such job (known: %s)", name, ", ".join(JOBS))
    else:
        for attempt in range(1, attempts + 1):
            try:
                with ctx.app.app_context() if ctx.app is not None else nullcontext():
                    summary = _jsonable(job.func(ctx))
                error = None
                if attempt > 1:
                    summary["attempts"] = attempt
                break
            except Exception as exc:
                error = traceback.format_exception_only(exc)[-1].strip()
                if attempt < attempts:
                    delay = backoff * 2 ** (attempt - 1)
                    log.warning(
                        "job %s failed (attempt %d of %d), trying again in %.1f s",
                        name, attempt, attempts, delay, exc_info=True,
                    )  # fmt: skip
                    time.sleep(delay)
                else:
                    log.error("job %s failed after %d attempts", name, attempts, exc_info=True)
                    if attempts > 1:
                        error = f"{error} (after {attempts} attempts)"
    finished = utcnow()
    ok = error is None
    if ok:
        log.info("job %s done in %.2f s: %s", name, time.monotonic() - clock, summary)
    run = JobRun(
        id=run_id, job=name, started_at=started, finished_at=finished, ok=ok, summary=summary,
        error=error,
    )  # fmt: skip
    _record_end(ctx, run)
    return run


def last_runs(session: Session) -> dict[str, JobRun]:
    """The latest recorded run of each job, by name."""
    latest = select(func.max(JobRun.id)).group_by(JobRun.job).scalar_subquery()
    return {r.job: r for r in session.scalars(select(JobRun).where(JobRun.id.in_(latest)))}


def _record_start(ctx: JobContext, name: str, started: dt.datetime) -> int | None:
    """Insert the run as started (``ok`` null: a run that dies midway stays visible)."""
    try:
        with session_scope(ctx.sessions) as session:
            run = JobRun(job=name, started_at=started, ok=None, summary={})
            session.add(run)
            session.flush()
            return run.id
    except Exception:  # the database is away: run the job anyway, it will say so
        log.exception("job %s: could not record its start", name)
        return None


def _record_end(ctx: JobContext, run: JobRun) -> None:
    values = {
        "finished_at": run.finished_at,
        "ok": run.ok,
        "summary": run.summary,
        "error": run.error,
    }
    try:
        with session_scope(ctx.sessions) as session:
            if run.id is not None:
                session.execute(update(JobRun).where(JobRun.id == run.id).values(**values))
            else:
                row = JobRun(job=run.job, started_at=run.started_at, **values)
                session.add(row)
                session.flush()
                run.id = row.id
    except Exception:
        log.exception("job %s: could not record how it ended (ok=%s)", run.job, run.ok)


def _jsonable(result: Any) -> dict:
    """The job's summary as a JSON-safe dict (dataclasses become dicts; dates and other objects
    strings)."""
    if result is None:
        return {}
    result = _plain(result)
    if not isinstance(result, Mapping):
        result = {"result": result}
    return json.loads(json.dumps(dict(result), default=str))


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value
