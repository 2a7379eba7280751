"""The ``clms`` command: set-up, users, areas, forms, demo. Flask's own commands (run, routes,
shell) come along.
"""

from __future__ import annotations

import sys

import click
from flask import current_app
from flask.cli import FlaskGroup, with_appcontext
from sqlalchemy import select

from clms import create_app
from clms.db import engine, session_scope
from clms.models import ROLES, Area, Brand, User, Village


@click.group(cls=FlaskGroup, create_app=lambda: create_app(), add_version_option=False)
def main() -> None:
    """CLMS: child-labour monitoring. Configuration comes from CLMS_* environment variables."""


@click.command("init")
@with_appcontext
def init_command() -> None:
    """Create or upgrade the database schema (Alembic migrations) and publish our forms."""
    from clms.migrate import upgrade
    from forms.publish import ensure_builtin_forms

    upgrade(engine())
    with session_scope() as session:
        for version in ensure_builtin_forms(session):
            click.echo(f"Published {version.form.xml_form_id} version {version.version}")
    click.echo(f"Database ready: {engine().url.render_as_string(hide_password=True)}")


@click.group("users")
def users_group() -> None:
    """Manage people who sign in."""


@users_group.command("add")
@click.argument("username")
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.option("--area", "areas", multiple=True, help="Area or village code (repeatable).")
@click.option("--brand", "brand_code", help="Brand code, for the brand role.")
@click.option("--full-name", default="", help="Name shown in the interface.")
@click.option("--email", default=None, help="Where notifications go.")
@with_appcontext
def users_add(username, role, areas, brand_code, full_name, email) -> None:
    """Add USERNAME with ROLE; the password is read from standard input.

    \b
    Example:
        echo 'a long passphrase' | clms users add awa --role monitor --area CI-NAWA
    """
    from clms.operations.users import UserError, add_user

    password = _read_password()
    try:
        with session_scope() as session:
            user = add_user(
                session,
                username=username,
                role=role,
                password=password,
                scope_codes=list(areas),
                brand_code=brand_code,
                full_name=full_name,
                email=email,
                realm=current_app.config["DIGEST_REALM"],
            )
            scopes = ", ".join(areas) or "no area"
            click.echo(f"Added {user.username} ({role}; {scopes}).")
    except UserError as e:
        raise click.ClickException(str(e)) from e


def _read_password() -> str:
    """One line from stdin (prompted without echo when a person is typing)."""
    if sys.stdin.isatty():
        return click.prompt("Password", hide_input=True, confirmation_prompt=True)
    line = sys.stdin.readline()
    if not line:
        raise click.ClickException("No password on standard input.")
    return line.rstrip("\r\n")


@users_group.command("list")
@with_appcontext
def users_list() -> None:
    """List users with role and scope."""
    with session_scope() as session:
        for user in session.scalars(select(User).order_by(User.username)):
            codes = [
                session.get(Area, s.area_id).code
                if s.area_id
                else session.get(Village, s.village_id).code
                for s in user.scopes
            ]
            brand = session.get(Brand, user.brand_id).code if user.brand_id else ""
            state = "" if user.active else " (inactive)"
            click.echo(f"{user.username:20} {user.role:10} {brand:10} {' '.join(codes)}{state}")


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

    from forms.process import follow as follow_received
    from forms.process import process_received, waiting

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

            result = process_received(sessions, batch=batch, progress=advance)
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
        sessions, interval=interval, batch=batch, stop=lambda: stopping[0], progress=report
    )
    click.echo("Stopped.")


def register_commands(app) -> None:
    """Add every ``clms`` command to ``app.cli`` (so ``clms`` and the test runner see the same)."""
    from clms.demo import demo_command
    from forms.cli import forms_group

    commands = (
        init_command, users_group, areas_command, forms_group, process_command, demo_command,
    )  # fmt: skip
    for command in commands:
        app.cli.add_command(command)
