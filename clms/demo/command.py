"""The ``clms demo`` command: the steps in order (see :mod:`clms.demo`), the server, the
in-process submission processor and scheduler, and what it prints.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from clms.auth.users import UserError
from clms.cli import refusals
from clms.demo.answers import Generator
from clms.demo.people import build_places_and_people
from clms.demo.plan import Account, DemoPlan, new_password
from clms.demo.progress import ProgressLine, say
from clms.demo.sending import (
    HOUSEHOLD_FORM,
    REPORT_FORM,
    Job,
    followup_jobs,
    held_jobs,
    household_jobs,
    live_xform,
    report_jobs,
    send_jobs,
)
from clms.demo.submissions import primary_instance
from clms.demo.supply_chain import BRANDS
from clms.errors import Problem
from clms.models import Alert, Brand, Case, Submission, User

# --- the command ---------------------------------------------------------------------------------


def _quiet_handler():
    from werkzeug.serving import WSGIRequestHandler

    class Handler(WSGIRequestHandler):
        """Logs requests as usual, except while the demo sends its own thousands."""

        def log_request(self, code="-", size="-"):
            if getattr(self.server, "clms_quiet", False):
                return
            super().log_request(code, size)

    return Handler


def _demo_present(session: Session) -> bool:
    return (
        session.scalar(select(func.count(Brand.id)).where(Brand.code.in_([b[0] for b in BRANDS])))
        or 0
    ) > 0


def _existing_accounts(session: Session, realm: str) -> list[Account]:
    """One demo account per role, with a new password (the old ones were shown only once)."""
    from clms.auth import password_min_length, set_password

    min_length = password_min_length(current_app.config)
    accounts = []
    for role in ("admin", "monitor", "officer", "supervisor", "provider", "brand"):
        user = session.scalar(
            select(User).where(User.role == role, User.active.is_(True)).order_by(User.username)
        )
        if user is None:
            continue
        password = new_password()
        set_password(user, password, realm, min_length=min_length)
        accounts.append(Account(role, user.username, password))
    return accounts


def _print_accounts(url: str, accounts: Iterable[Account], note: str) -> None:
    shown: dict[str, Account] = {}
    for account in accounts:
        shown.setdefault(account.role, account)
    click.echo("")
    click.echo(f"CLMS demo: {url}")
    click.echo(f"Sign in with ({note}):")
    width = max((len(a.username) for a in shown.values()), default=8)
    for role in ("admin", "monitor", "officer", "supervisor", "provider", "brand"):
        a = shown.get(role)
        if a is not None:
            extra = f"  ({a.note})" if a.note else ""
            click.echo(f"  {role:10}  {a.username:{width}}  {a.password}{extra}")
    click.echo(f"ODK Collect: server URL {url}, with the monitor's username and password.")


@click.command("demo")
@click.option("--port", default=5000, show_default=True, type=int, help="Port to serve on.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to serve on.")
@click.option(
    "--households",
    default=3000,
    show_default=True,
    type=click.IntRange(0, None),
    help="Household visits to send.",
)
@click.option("--seed", default=7, show_default=True, type=int, help="Seed of the generated data.")
@click.option("--no-serve", is_flag=True, help="Build the data, then exit instead of serving.")
@with_appcontext
def demo_command(port: int, host: str, households: int, seed: int, no_serve: bool) -> None:
    """Build a demo: places, supply chain, users, forms, and household visits sent through the
    real OpenRosa endpoint; then serve it. Uses CLMS_DATABASE_URL (default: SQLite in instance/).
    """
    from werkzeug.serving import make_server

    from clms.db import engine, session_scope
    from clms.migrate import upgrade

    app = current_app._get_current_object()
    realm = app.config["DIGEST_REALM"]
    shared = Path(app.config["SHARED_DATA"])

    # a. schema
    upgrade(engine())
    say(f"Database: {engine().url.render_as_string(hide_password=True)}")

    with session_scope() as session:
        present = _demo_present(session)
    if present and no_serve:
        say("The database already holds demo data: nothing to build.")
        return

    try:
        server = make_server(host, port, app, threaded=True, request_handler=_quiet_handler())
    except OSError as e:
        raise click.ClickException(
            f"Cannot serve on {host}:{port} ({e}); choose another --port."
        ) from e
    server.clms_quiet = True  # the demo's own submissions are counted, not logged one by one
    thread = threading.Thread(target=server.serve_forever, name="clms-demo-server", daemon=True)
    thread.start()
    # the submission processor runs in-process here (production runs it in `clms scheduler`)
    from clms.intake.process import follow

    stop_processing = threading.Event()
    processor = threading.Thread(
        target=follow,
        args=(app.extensions["clms_sessionmaker"],),
        kwargs={"interval": 0.5, "stop": stop_processing.is_set, "config": app.config},
        name="clms-demo-processor",
        daemon=True,
    )
    processor.start()
    # and the scheduled jobs (notifications, escalations, pulls, KPI snapshots) likewise
    from clms.jobs.scheduler import run_in_background

    scheduler = run_in_background(app)
    url_host = "127.0.0.1" if host in ("0.0.0.0", "", "::") else host  # noqa: S104 - a comparison
    base_url = f"http://{url_host}:{server.port}/"
    failed = False
    try:
        if present:
            # b. already built: serve what is there
            say("The database already holds demo data: not building it again, serving it.")
            with session_scope() as session:
                accounts = _existing_accounts(session, realm)
            note = "new passwords were set for these accounts just now"
        else:
            accounts, failed = _build(app, seed, households, base_url, server, shared, realm)
            note = "random passwords, shown only now"
        _print_accounts(base_url, accounts, note)
        if no_serve:
            if failed:
                raise click.ClickException("Some submissions were not accepted (see above).")
            return
        server.clms_quiet = False
        click.echo("Serving; press Ctrl+C to stop.")
        try:
            while thread.is_alive():
                thread.join(0.5)
        except KeyboardInterrupt:
            click.echo("Stopping.")
    finally:
        stop_processing.set()
        scheduler.shutdown(wait=False)
        server.shutdown()
        server.server_close()
        thread.join(5)
        processor.join(10)


def _wait_processed(accepted: int, timeout: float = 600.0) -> None:
    """Show the in-process processor (see demo_command) working through what was accepted."""
    from clms.db import session_scope
    from forms.received import waiting

    progress = ProgressLine("Processing submissions", accepted)
    deadline = time.monotonic() + timeout
    while True:
        with session_scope() as session:
            left, _oldest = waiting(session)
        progress.update(max(0, accepted - left))
        if left == 0:
            break
        if time.monotonic() > deadline:
            raise click.ClickException(f"{left} submissions still waiting to be processed.")
        time.sleep(0.2)
    progress.finish()


def _build(app, seed, households, base_url, server, shared, realm) -> tuple[list[Account], bool]:
    """Steps c-g; returns the accounts to show and whether any submission failed."""
    from clms.db import session_scope

    try:
        from forms.publish import ensure_builtin_forms
    except ImportError as e:
        raise click.ClickException(
            f"Cannot publish the forms: forms.publish.ensure_builtin_forms is not available ({e})."
        ) from e

    from alerts.profiles.store import ensure_profiles

    generator = Generator(seed)
    # c-f in one transaction: all of it or nothing
    with refusals(say=_refusal), session_scope() as session:
        plan = build_places_and_people(session, shared, realm, generator.rng)
        # f. forms, and the country profiles the classifier applies
        ensure_builtin_forms(session)
        reference = shared / "reference" / "dol_ilab_countries_2021.xml"
        ensure_profiles(session, reference if reference.exists() else None)
        session.flush()
        hh_xform = live_xform(session, HOUSEHOLD_FORM)
        report_xform = live_xform(session, REPORT_FORM)
    if hh_xform is None:
        raise click.ClickException(f"Form {HOUSEHOLD_FORM} has no live version after publishing.")
    say("Forms: published.")

    # g. submissions, through the real endpoint
    jobs = household_jobs(generator, plan, primary_instance(hh_xform), households)
    if households:  # and a few a person must look at (the administrator's home lists them)
        jobs += held_jobs(generator, plan, primary_instance(hh_xform))
    if report_xform is not None and households:
        jobs += report_jobs(
            generator, plan, primary_instance(report_xform), min(50, max(3, households // 60))
        )
    passwords = {m.username: m.password for m in plan.monitors}
    failed = False
    if jobs:
        failed = _send(base_url, jobs, passwords, "Submissions")
        with session_scope() as session:
            rows = session.execute(
                select(Submission.status, func.count(Submission.id)).group_by(Submission.status)
            ).all()
        say("Stored: " + ", ".join(f"{n} {status}" for status, n in sorted(rows)))
        _show_alerts()
        failed = _remediation(app, generator, plan, base_url, passwords) or failed
        _in_step(app, next((a.username for a in plan.accounts if a.role == "officer"), None))
    return plan.accounts, failed


def _in_step(app, officer: str | None) -> None:
    """The cooperative's ODK Central and what it did to some submissions (clms.demo.in_step)."""
    from clms.db import session_scope
    from clms.demo.in_step import SOURCE, make_in_step

    with session_scope() as session:
        made = make_in_step(session, app.config["CREDENTIALS_KEY"], officer)
    say(
        f"Pulled from '{SOURCE}' (switched off: not reachable from the demo): {made.pulled} "
        f"visits; deleted there: the visit behind case {made.deleted or '-'}; rejected there: "
        f"submission {made.rejected or '-'}; 1 submission waiting on its retry list."
    )


def _refusal(p: Problem) -> str:
    """What stopped the demo's set-up: its own users clash with people already there, or what
    the places, forms or profiles refused."""
    if isinstance(p, UserError):
        return f"{p} The demo adds its own users: run it on an empty database (CLMS_DATABASE_URL)."
    return str(p)


def _send(base_url: str, jobs: list[Job], passwords: dict[str, str], label: str) -> bool:
    """Send ``jobs`` through the endpoint with progress, wait for them to be processed; returns
    whether any was refused."""
    progress = ProgressLine(f"{label} to {base_url}submission", len(jobs))
    report = send_jobs(base_url, jobs, passwords, progress=progress)
    progress.finish()
    say(f"{label}: {report.created} of {report.sent} accepted (201).")
    for job, status, body in report.failures[:10]:
        where = f"{job.form_id} {job.label} as {job.username}"
        say(f"  {where}: HTTP {status}: {body.strip()[:500]}")
    if len(report.failures) > 10:
        say(f"  ... and {len(report.failures) - 10} more refused.")
    _wait_processed(report.created)
    return bool(report.failures)


def _remediation(app, generator: Generator, plan: DemoPlan, base_url, passwords) -> bool:
    """A season of remediation work on the alerts (see :mod:`clms.demo.cases`)."""
    from clms.cases import workflow as wf
    from clms.db import session_scope
    from clms.demo.cases import (
        approve_closures,
        date_alerts_as_synced,
        read_old_notices,
        work_cases,
    )

    with session_scope() as session:
        date_alerts_as_synced(session)
    with session_scope() as session:
        candidates = session.scalar(
            select(func.count()).select_from(Alert).where(
                Alert.status == "new", Alert.category.in_(["worst_form", "hazardous",
                                                            "child_labour"]))
        ) or 0  # fmt: skip
    progress = ProgressLine("Officers working the alerts", candidates)
    policy = wf.Policy.from_config(app.config)  # the workflow's settings
    work = work_cases(lambda: session_scope(app), generator.rng, progress, policy=policy)
    progress.finish()
    for refusal in work.refused[:5]:
        say(f"  refused: {refusal}")
    say(f"Cases: {work.opened} opened from alerts, {work.referrals} referrals to providers.")
    failed = False
    with session_scope() as session:
        jobs = followup_jobs(session, generator, plan)
    if jobs:
        failed = _send(base_url, jobs, passwords, "Follow-up visits")
    closed = approve_closures(lambda: session_scope(app), generator.rng, policy=policy)
    say(f"Closures approved by the supervisors: {closed}.")
    with session_scope() as session:
        read = read_old_notices(session)
    say(f"Notices read by their people as they came (older than two weeks): {read}.")
    _show_cases()
    return failed or bool(work.refused)


def _show_cases() -> None:
    """The demo's cases by step, as bars."""
    from clms.cases.workflow import STATES
    from clms.db import session_scope

    with session_scope() as session:
        counts = dict(
            session.execute(select(Case.state, func.count(Case.id)).group_by(Case.state)).all()
        )
    total = sum(counts.values())
    say(f"Cases by step: {total}")
    for state in STATES:
        n = counts.get(state, 0)
        bar = "#" * (round(40 * n / total) if total else 0)
        say(f"  {state:>14} {n:>6}  {bar}")


def _show_alerts() -> None:
    """The alerts the demo's visits raised, by severity, as bars to compare at a glance."""
    from clms.db import session_scope
    from clms.models import SEVERITIES, Alert

    with session_scope() as session:
        counts = dict(
            session.execute(
                select(Alert.severity, func.count(Alert.id)).group_by(Alert.severity)
            ).all()
        )
    total = sum(counts.values())
    say(f"Alerts raised: {total}")
    for severity in SEVERITIES:
        n = counts.get(severity, 0)
        bar = "#" * (round(40 * n / total) if total else 0)
        say(f"  {severity:>8} {n:>6}  {bar}")
