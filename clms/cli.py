"""The ``clms`` command: set-up, users, areas, forms, demo. Flask's own commands (run, routes,
shell) come along.

A command tells a refusal (a problem of the catalogue, :mod:`clms.errors`) one way:
:func:`refusals` ends it with the problem's message.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import click
from flask import current_app
from flask.cli import FlaskGroup, with_appcontext
from sqlalchemy import select

from clms.app import create_app
from clms.db import engine, session_scope
from clms.errors import Problem
from clms.models import ROLES, Area, Brand, User, Village

DOL_COUNTRIES = "dol_ilab_countries_2021.xml"  # US DOL ILAB country data (shared/data/reference)


@click.group(cls=FlaskGroup, create_app=lambda: create_app(), add_version_option=False)
def main() -> None:
    """CLMS: child-labour monitoring. Configuration comes from CLMS_* environment variables."""


@contextmanager
def refusals(*kinds: type[Problem], say: Callable[[Problem], str] | None = None) -> Iterator[None]:
    """The one way a command tells a refusal: a problem of ``kinds`` (of the catalogue, any, when
    none is named) raised inside ends the command with its message, ``Error: ...`` on standard
    error and exit status 1 (``say`` words it otherwise). Outside a ``session_scope``, so that
    the transaction is rolled back first."""
    caught = kinds or (Problem,)
    try:
        yield
    except caught as p:
        raise click.ClickException(say(p) if say is not None else p.message) from p


@click.command("init")
@with_appcontext
def init_command() -> None:
    """Create or upgrade the database schema (Alembic migrations) and publish our forms."""
    from alerts.profiles.store import ensure_profiles
    from clms.migrate import upgrade
    from forms.publish import ensure_builtin_forms

    upgrade(engine())
    with session_scope() as session:
        for version in ensure_builtin_forms(session):
            click.echo(f"Published {version.form.xml_form_id} version {version.version}")
        reference = Path(current_app.config["SHARED_DATA"]) / "reference" / DOL_COUNTRIES
        added = ensure_profiles(session, reference if reference.exists() else None)
        if added:
            click.echo(f"Seeded {len(added)} country profiles.")
        from clms.cases.catalogue import ensure_services

        services = ensure_services(session)
        if services:
            click.echo(f"Seeded {len(services)} services of the remediation catalogue.")
    click.echo(f"Database ready: {engine().url.render_as_string(hide_password=True)}")


@click.group("users")
def users_group() -> None:
    """Manage people who sign in."""


@users_group.command("add")
@click.argument("username")
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.option("--area", "areas", multiple=True, help="Area or village code (repeatable).")
@click.option("--brand", "brand_code", help="Brand code, for the brand role.")
@click.option("--provider", "provider_code", help="Service provider code, for the provider role.")
@click.option("--full-name", default="", help="Name shown in the interface.")
@click.option("--email", default=None, help="Where notifications go.")
@with_appcontext
def users_add(username, role, areas, brand_code, provider_code, full_name, email) -> None:
    """Add USERNAME with ROLE; the password is read from standard input.

    \b
    Example:
        echo 'a long passphrase' | clms users add awa --role monitor --area CI-NAWA
    """
    from clms.auth import password_min_length
    from clms.auth.users import add_user

    password = _read_password()
    with _user_change() as session:
        user = add_user(
            session,
            username=username,
            role=role,
            password=password,
            scope_codes=list(areas),
            brand_code=brand_code,
            provider_code=provider_code,
            full_name=full_name,
            email=email,
            realm=current_app.config["DIGEST_REALM"],
            actor=CLI_ACTOR,
            min_length=password_min_length(current_app.config),
        )
        scopes = ", ".join(areas) or "no area"
        click.echo(f"Added {user.username} ({role}; {scopes}).")


def _read_password() -> str:
    """One line from stdin (prompted without echo when a person is typing)."""
    if sys.stdin.isatty():
        return click.prompt("Password", hide_input=True, confirmation_prompt=True)
    line = sys.stdin.readline()
    if not line:
        raise click.ClickException("No password on standard input.")
    return line.rstrip("\r\n")


CLI_ACTOR = "cli"  # who the audit log names for changes made with this command


@contextmanager
def _user_change():
    """One transaction for a change of users; a refused change becomes a clean error message
    and leaves nothing written."""
    from clms.auth.users import UserError

    with refusals(UserError), session_scope() as session:
        yield session


@users_group.command("list")
@with_appcontext
def users_list() -> None:
    """List users with role, scope, state (inactive, locked) and last sign-in on the web or API."""
    from clms.auth.limits import lock_state

    with session_scope() as session:
        users = list(session.scalars(select(User).order_by(User.username)))
        locked = lock_state(session, [u.username for u in users])
        for user in users:
            codes = [
                session.get(Area, s.area_id).code
                if s.area_id
                else session.get(Village, s.village_id).code
                for s in user.scopes
            ]
            brand = session.get(Brand, user.brand_id).code if user.brand_id else ""
            state = "" if user.active else " (inactive)"
            if user.username in locked:
                state += f" (locked until {locked[user.username]:%Y-%m-%d %H:%M} UTC)"
            seen = user.last_sign_in_at
            seen = f" (last sign-in {seen:%Y-%m-%d %H:%M} UTC)" if seen else " (never signed in)"
            click.echo(
                f"{user.username:20} {user.role:10} {brand:10} {' '.join(codes)}{state}{seen}"
            )


@users_group.command("password")
@click.argument("username")
@click.option("--reason", default="", help="Why (kept in the audit log).")
@with_appcontext
def users_password(username, reason) -> None:
    """Set a new password for USERNAME, read from standard input.

    Their web sessions end and their API tokens are revoked; phones' device tokens stay.
    """
    from clms.auth import password_min_length
    from clms.auth.users import change_password

    password = _read_password()
    with _user_change() as session:
        revoked = change_password(
            session, username, password, realm=current_app.config["DIGEST_REALM"],
            actor=CLI_ACTOR, reason=reason, min_length=password_min_length(current_app.config),
        )  # fmt: skip
    click.echo(f"New password set for {username}; sessions ended, {revoked} API token(s) revoked.")


@users_group.command("set-role")
@click.argument("username")
@click.argument("role", type=click.Choice(ROLES))
@click.option("--area", "areas", multiple=True, help="Area or village code (repeatable).")
@click.option("--brand", "brand_code", help="Brand code, for the brand role.")
@click.option("--provider", "provider_code", help="Service provider code, for the provider role.")
@click.option("--reason", required=True, help="Why (kept in the audit log).")
@with_appcontext
def users_set_role(username, role, areas, brand_code, provider_code, reason) -> None:
    """Give USERNAME the role ROLE (with its areas, brand or provider).

    \b
    Example:
        clms users set-role kone supervisor --area CI-D1 --reason "promoted, memo 2026-14"
    """
    from clms.auth.users import change_role

    with _user_change() as session:
        user = change_role(
            session, username, role, reason=reason, actor=CLI_ACTOR, scope_codes=list(areas),
            brand_code=brand_code, provider_code=provider_code,
        )  # fmt: skip
        click.echo(f"{user.username} is now {role} ({', '.join(areas) or 'no area'}).")


@users_group.command("set-areas")
@click.argument("username")
@click.option("--area", "areas", multiple=True, required=True, help="Area or village code.")
@click.option("--reason", required=True, help="Why (kept in the audit log).")
@with_appcontext
def users_set_areas(username, areas, reason) -> None:
    """Replace the areas and villages USERNAME works in (monitor, officer, supervisor)."""
    from clms.auth.users import change_areas

    with _user_change() as session:
        change_areas(session, username, list(areas), reason=reason, actor=CLI_ACTOR)
    click.echo(f"{username} now works in {', '.join(areas)}.")


@users_group.command("deactivate")
@click.argument("username")
@click.option("--reason", required=True, help="Why (kept in the audit log).")
@with_appcontext
def users_deactivate(username, reason) -> None:
    """Stop USERNAME signing in: sessions end at their next request, all tokens are revoked."""
    from clms.auth.users import deactivate_user

    with _user_change() as session:
        revoked = deactivate_user(session, username, reason=reason, actor=CLI_ACTOR)
    click.echo(f"Deactivated {username}; {revoked} token(s) revoked.")


@users_group.command("activate")
@click.argument("username")
@click.option("--reason", required=True, help="Why (kept in the audit log).")
@with_appcontext
def users_activate(username, reason) -> None:
    """Let a deactivated USERNAME sign in again (revoked tokens stay revoked)."""
    from clms.auth.users import activate_user

    with _user_change() as session:
        activate_user(session, username, reason=reason, actor=CLI_ACTOR)
    click.echo(f"Activated {username}.")


@users_group.command("unlock")
@click.argument("username")
@click.option("--reason", default="", help="Why (kept in the audit log).")
@with_appcontext
def users_unlock(username, reason) -> None:
    """End the sign-in lock of USERNAME (set after too many failed sign-ins)."""
    from clms.auth.users import unlock_user

    with _user_change() as session:
        state = unlock_user(session, username, actor=CLI_ACTOR, reason=reason)
    was = "was locked" if state["locked"] else "was not locked"
    click.echo(f"{username} {was}; {state['failures']} failed sign-in(s) forgotten.")


@users_group.command("tokens")
@click.argument("username")
@with_appcontext
def users_tokens(username) -> None:
    """List the API and device tokens of USERNAME (never the tokens themselves)."""
    from clms.auth.users import list_tokens, token_state

    def when(moment) -> str:
        return f"{moment:%Y-%m-%d %H:%M}" if moment is not None else "-"

    with _user_change() as session:
        tokens = list_tokens(session, username)
        if not tokens:
            click.echo(f"{username} has no tokens.")
            return
        click.echo(f"{'id':>6} {'kind':6} {'state':8} {'created':16} {'expires':16} "
                   f"{'revoked':16} label")  # fmt: skip
        for t in tokens:
            click.echo(
                f"{t.id:>6} {t.kind:6} {token_state(t):8} {when(t.created_at):16} "
                f"{when(t.expires_at):16} {when(t.revoked_at):16} {t.label}"
            )


@users_group.command("revoke-tokens")
@click.argument("username")
@click.option("--kind", type=click.Choice(["api", "device"]), help="Only this kind (default all).")
@click.option("--reason", default="", help="Why (kept in the audit log).")
@with_appcontext
def users_revoke_tokens(username, kind, reason) -> None:
    """Revoke the live tokens of USERNAME: API bearer tokens, phones' device tokens, or both."""
    from clms.auth.users import revoke_user_tokens

    with _user_change() as session:
        count = revoke_user_tokens(session, username, actor=CLI_ACTOR, kind=kind, reason=reason)
    click.echo(f"Revoked {count} {kind or 'API and device'} token(s) of {username}.")


@users_group.command("device-token")
@click.argument("username")
@click.option("--label", default="", help="Which phone, e.g. 'tablet 3'.")
@click.option(
    "--days", type=int, default=None,
    help="Lifetime in days (default CLMS_DEVICE_TOKEN_DAYS, 180); renew with renew-token.",
)  # fmt: skip
@click.option("--hours", type=int, default=None, help="Lifetime in hours instead.")
@with_appcontext
def users_device_token(username, label, days, hours) -> None:
    """Issue a device token for a phone of USERNAME and print its OpenRosa URL path (once).

    In ODK Collect, set the server URL to https://<this server>/key/<token>.
    """
    from clms.auth.users import issue_device_token

    with _user_change() as session:
        token, row = issue_device_token(
            session, username, actor=CLI_ACTOR, label=label, hours=hours,
            days=int(current_app.config["DEVICE_TOKEN_DAYS"]) if days is None else days,
        )  # fmt: skip
        ends = f"expires {row.expires_at:%Y-%m-%d %H:%M} UTC"
    click.echo(f"Device token {row.id} for {username} ({ends}); shown only now:")
    click.echo(f"/key/{token}")


@users_group.command("renew-token")
@click.argument("username")
@click.argument("token_id", type=int)
@click.option(
    "--days", type=int, default=None,
    help="New lifetime from now, in days (default CLMS_DEVICE_TOKEN_DAYS, 180).",
)  # fmt: skip
@with_appcontext
def users_renew_token(username, token_id, days) -> None:
    """Extend device token TOKEN_ID of USERNAME (its id in `clms users tokens`): the phone keeps
    working with nothing to change on it."""
    from clms.auth.users import renew_device_token

    with _user_change() as session:
        row = renew_device_token(
            session, username, token_id, actor=CLI_ACTOR,
            days=int(current_app.config["DEVICE_TOKEN_DAYS"]) if days is None else days,
        )  # fmt: skip
        ends = f"{row.expires_at:%Y-%m-%d %H:%M}"
    click.echo(f"Device token {token_id} of {username} now expires {ends} UTC.")


@click.command("areas")
@click.option("--villages/--no-villages", default=True, help="Also list village codes.")
@with_appcontext
def areas_command(villages: bool) -> None:
    """List the area and village codes that --area accepts."""
    with session_scope() as session:
        areas = session.scalars(select(Area).order_by(Area.code)).all()
        if not areas:
            click.echo("No areas yet: import places or run `clms demo`.")
            return
        by_parent: dict[int | None, list[Area]] = {}
        for area in areas:
            by_parent.setdefault(area.parent_id, []).append(area)
        village_rows: dict[int, list[Village]] = {}
        if villages:
            for v in session.scalars(select(Village).order_by(Village.code)):
                village_rows.setdefault(v.area_id, []).append(v)

        def show(area: Area, depth: int) -> None:
            click.echo(f"{'  ' * depth}{area.code:24} {area.level:11} {area.name}")
            for v in village_rows.get(area.id, []):
                click.echo(f"{'  ' * (depth + 1)}{v.code:24} village     {v.name}")
            for child in by_parent.get(area.id, []):
                show(child, depth + 1)

        known = {a.id for a in areas}
        for root in [a for a in areas if a.parent_id is None or a.parent_id not in known]:
            show(root, 0)


@click.command("process")
@click.option("--follow", is_flag=True, help="Keep running; process submissions as they come.")
@click.option("--interval", default=1.0, show_default=True, help="Seconds between looks.")
@click.option("--batch", default=50, show_default=True, help="Submissions per transaction.")
@with_appcontext
def process_command(follow: bool, interval: float, batch: int) -> None:
    """Parse received submissions into households, visits and children.

    Without --follow: process everything waiting, with a progress bar, then exit. With --follow:
    run until stopped (SIGTERM or Ctrl-C finish the current batch first), printing each batch.
    """
    import signal

    from clms.intake.process import follow as follow_received
    from clms.intake.process import process_received
    from forms.received import waiting

    sessions = current_app.extensions["clms_sessionmaker"]
    if not follow:
        with session_scope() as session:
            count, _oldest = waiting(session)
        if count == 0:
            click.echo("No submissions waiting.")
            return
        with click.progressbar(length=count, label="Processing submissions") as bar:
            seen = [0]

            def advance(total) -> None:
                bar.update(total.processed - seen[0])
                seen[0] = total.processed

            result = process_received(
                sessions, batch=batch, progress=advance, config=current_app.config
            )
        click.echo(
            f"Processed {result.processed}: {result.parsed} parsed, {result.review} for review, "
            f"{result.failed} failed (marked for review)."
        )
        return

    stopping = [False]

    def stop(_signum, _frame) -> None:
        stopping[0] = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    def report(total) -> None:
        click.echo(
            f"processed {total.processed}: {total.parsed} parsed, {total.review} for review, "
            f"{total.failed} failed"
        )

    click.echo(f"Processing received submissions every {interval:g} s; stop with Ctrl-C.")
    follow_received(
        sessions, interval=interval, batch=batch, stop=lambda: stopping[0], progress=report,
        config=current_app.config,
    )  # fmt: skip
    click.echo("Stopped.")


@click.command("reclassify")
@click.option("--dry-run", is_flag=True, help="Report what would change; write nothing.")
@click.option("--chunk", default=2000, show_default=True, help="Child visits per transaction.")
@click.option("--examples", default=10, show_default=True, help="Changes to show one by one.")
@with_appcontext
def reclassify_command(dry_run: bool, chunk: int, examples: int) -> None:
    """Classify every child visit again with the current rules and country profiles.

    Run it after a country profile or the rules change. Unchanged visits are left alone; each
    change adds a classification that names the one it replaces and says why; a graver result on
    a child's latest visit raises the child's alert.
    """
    from clms.intake.reclassify import reclassify

    sessions = current_app.extensions["clms_sessionmaker"]
    with click.progressbar(length=1, label="Classifying child visits") as bar:
        seen = [0]

        def advance(done: int, total: int) -> None:
            bar.length = max(total, 1)
            bar.update(done - seen[0])
            seen[0] = done

        report = reclassify(sessions, chunk=chunk, dry_run=dry_run, progress=advance,
                            max_examples=examples, config=current_app.config)  # fmt: skip
    verb = "would change" if dry_run else "changed"
    click.echo(
        f"Examined {report.examined} child visits: {report.changed} {verb}, "
        f"{report.unchanged} unchanged."
    )
    if report.transitions:
        click.echo("Category changes (from -> to: visits):")
        for (old, new), n in sorted(report.transitions.items(), key=lambda kv: -kv[1]):
            click.echo(f"  {old:>12} -> {new:<12} {n:>8}  {_bar(n, report.changed)}")
    if report.why:
        click.echo("Why:")
        for why, n in report.why.most_common(10):
            click.echo(f"  {n:>8}  {why}")
    for ex in report.examples:
        click.echo(f"  child visit {ex['child_visit_id']}: {ex['from']} -> {ex['to']}: {ex['why']}")
    a = report.alerts
    if a.raised or a.severity_raised:
        click.echo(f"Alerts: {a.raised} raised, {a.severity_raised} made more severe.")


def _bar(n: int, total: int, width: int = 30) -> str:
    """A text bar, so that the sizes of the changes compare at a glance."""
    return "#" * max(1, round(width * n / total)) if total else ""


def register_commands(app) -> None:
    """Add every ``clms`` command to ``app.cli`` (so ``clms`` and the test runner see the same)."""
    from alerts.kpis.cli import kpis_group
    from alerts.profiles.cli import profiles_group
    from clms.audit_cli import audit_group
    from clms.demo.command import demo_command
    from clms.jobs.cli import jobs_group, scheduler_command
    from clms.supply.cli import supply_group
    from forms.cli import forms_group
    from forms.pull.cli import sources_group
    from geo.cli import places_group
    from geo.hotspots_cli import hotspots_group

    commands = (
        init_command, users_group, areas_command, forms_group, process_command, demo_command,
        reclassify_command, profiles_group, sources_group, scheduler_command, jobs_group,
        places_group, supply_group, hotspots_group, audit_group, kpis_group,
    )  # fmt: skip
    from clms.dataprotection.cli import COMMANDS as data_protection_commands

    for command in (*commands, *data_protection_commands):
        app.cli.add_command(command)
