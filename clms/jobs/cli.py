"""``clms scheduler`` and ``clms jobs list|run``.

Run exactly one ``clms scheduler`` per database, next to the web workers (a second one exits, or
stands by with ``--wait``). ``clms jobs run NAME`` runs one job now, as the scheduler would, and
exits 1 when it failed: handy from cron, a deployment script or a terminal.

Under a supervisor (systemd ``Restart=always``), run ``clms scheduler --wait``: a scheduler that
lost its lock (the database restarted) exits 1 rather than risk running jobs twice, and the one
started after it stands by until the database is back and the lock is free. ``--run-now JOB``
runs a job as soon as the scheduler starts: a pull after an outage need not wait for its interval.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading

import click
from apscheduler.events import EVENT_SCHEDULER_START
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy.exc import OperationalError

from clms.db import session_scope
from clms.jobs import registry


def _configure_logging() -> None:
    """Log each run at info level to stderr, unless logging is already set up."""
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
    # run_job logs every run; APScheduler's executor would say it a second time
    logging.getLogger("apscheduler.executors").setLevel(logging.WARNING)


@click.command("scheduler")
@click.option(
    "--wait",
    is_flag=True,
    help="If another scheduler already runs, stand by and take over when it stops.",
)
@click.option(
    "--poll", default=10.0, show_default=True, help="Seconds between looks at the lock (--wait)."
)
@click.option(
    "--run-now",
    "run_now",
    multiple=True,
    metavar="JOB",
    help="Run JOB as soon as the scheduler starts, then on its schedule (repeatable).",
)
@with_appcontext
def scheduler_command(wait: bool, poll: float, run_now: tuple[str, ...]) -> None:
    """Run the scheduled jobs until stopped (SIGTERM or Ctrl-C).

    Exactly one scheduler runs the jobs of a database: a second one exits with an error, or
    with --wait stands by. Web workers never run jobs. --run-now JOB runs a job at once (after a
    restart, say, a pull need not wait for the next interval).
    """
    from clms.jobs.scheduler import SchedulerLock, build_scheduler

    unknown = [name for name in run_now if name not in registry.JOBS]
    if unknown:
        raise click.BadParameter(
            f"no job called {unknown[0]!r}; the jobs are: {', '.join(registry.JOBS)}",
            param_hint="--run-now",
        )
    _configure_logging()
    app = current_app._get_current_object()
    lock = SchedulerLock(app.config["DATABASE_URL"])
    stopping = threading.Event()
    scheduler_box: list = []
    stoppers: list[threading.Thread] = []
    shutting = threading.Lock()

    def shutdown_once() -> None:
        with shutting:
            if not (stopping.is_set() and scheduler_box and scheduler_box[0].running):
                return
            scheduler = scheduler_box.pop()
        scheduler.shutdown()  # waits for the running jobs to finish

    def stop(_signum, _frame) -> None:
        stopping.set()
        # shut down from another thread: the main thread is inside the scheduler's loop
        stoppers.append(threading.Thread(target=shutdown_once))
        stoppers[-1].start()

    previous = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        reached = True
        try:
            got = lock.acquire(wait=False)
        except OperationalError as exc:
            if not wait:
                raise click.ClickException(
                    f"the database cannot be reached ({exc.orig}); nothing was run. Start again "
                    "when it is back, or use --wait to stand by until it is."
                ) from None
            click.echo("The database cannot be reached; standing by until it is back.")
            got = reached = False
        if not got:
            if not wait:
                raise click.ClickException(
                    "another `clms scheduler` is already running the jobs of this database "
                    f"(lock: {lock.description}); this one stops. Use --wait to stand by."
                )
            if reached:
                click.echo(f"Another scheduler is running; standing by (lock: {lock.description}).")
            if not lock.acquire(wait=True, poll=poll, stop=stopping.is_set):
                click.echo("Stopped while standing by.")
                return
        try:
            scheduler = build_scheduler(app, lock=lock, run_now=run_now)
            # a signal that came before the scheduler was running stops it as soon as it runs
            scheduler.add_listener(lambda _event: shutdown_once(), EVENT_SCHEDULER_START)
            scheduler_box.append(scheduler)
            names = ", ".join(registry.JOBS)
            click.echo(f"Scheduler running jobs {names}; stop with Ctrl-C or SIGTERM.")
            scheduler.start()
            # start() returns as soon as shutdown() begins: wait until running jobs are done
            for thread in stoppers:
                thread.join()
        finally:
            lock.release()
        if not stopping.is_set():  # it stopped itself: the lock was lost (clms.jobs.scheduler._run)
            raise click.ClickException("the scheduler lock was lost; stopped (see the log)")
        click.echo("Scheduler stopped.")
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@click.group("jobs")
def jobs_group() -> None:
    """Scheduled jobs: list them, run one now."""


@jobs_group.command("list")
@with_appcontext
def jobs_list() -> None:
    """List the jobs: name, schedule, last run and how it ended."""
    with session_scope() as session:
        runs = registry.last_runs(session)
    click.echo(f"{'job':20} {'schedule':32} {'last run (UTC)':20} outcome")
    for name, job in registry.JOBS.items():
        trigger = str(job.trigger(current_app.config))
        run = runs.get(name)
        if run is None:
            when, outcome = "never", ""
        else:
            when = run.started_at.strftime("%Y-%m-%d %H:%M:%S")
            if run.ok is None:
                outcome = "running (or stopped midway)"
            elif run.ok:
                outcome = "ok"
            else:
                outcome = f"FAILED: {run.error}"
        click.echo(f"{name:20} {trigger:32} {when:20} {outcome}".rstrip())


@jobs_group.command("run")
@click.argument("name")
@with_appcontext
def jobs_run(name: str) -> None:
    """Run the job NAME now (as the scheduler would) and print what it did; exit 1 on failure."""
    if name not in registry.JOBS:
        raise click.BadParameter(
            f"no job called {name!r}; the jobs are: {', '.join(registry.JOBS)}", param_hint="NAME"
        )
    _configure_logging()
    run = registry.run_job(current_app._get_current_object(), name)
    if run.ok:
        click.echo(f"{name}: ok")
        click.echo(json.dumps(run.summary, indent=2, sort_keys=True))
        return
    click.echo(f"{name}: FAILED: {run.error}", err=True)
    sys.exit(1)
