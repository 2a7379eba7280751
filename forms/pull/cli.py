"""`clms sources ...` commands: add, list, pull, enable and disable ODK Central / Kobo sources.

Passwords and tokens are read from standard input (or a hidden prompt), never from the command
line, where they would stay in the shell history and in the process list.
"""

from __future__ import annotations

import re
import sys

import click
from flask import current_app
from flask.cli import with_appcontext

from clms.cli import refusals
from forms.pull.run import PullResult
from forms.pull.sources import KINDS, SourceInvalid


@click.group("sources")
def sources_group() -> None:
    """Pull submissions from ODK Central and KoboToolbox."""


@sources_group.command("add")
@click.argument("name")
@click.option("--kind", type=click.Choice(KINDS), required=True)
@click.option(
    "--url", "base_url", required=True, help="The server, e.g. https://kf.kobotoolbox.org"
)
@click.option(
    "--form", "remote_form_id", required=True, help="Central xmlFormId or Kobo asset uid."
)
@click.option("--project", "project_id", default=None, help="ODK Central project id (a number).")
@click.option("--email", default=None, help="ODK Central account; asked for when missing.")
@with_appcontext
def sources_add(name, kind, base_url, remote_form_id, project_id, email) -> None:
    """Add source NAME; the Central password or the Kobo API token is read from standard input.

    \b
    Examples:
        clms sources add nawa --kind central --url https://central.example.org \\
            --project 3 --form clms_household_visit --email pull@example.org
        echo "$KOBO_TOKEN" | clms sources add nawa-kobo --kind kobo \\
            --url https://kf.kobotoolbox.org --form aXyZ123abc
    """
    from clms.db import session_scope
    from forms.pull.sources import add_source

    if kind == "central":
        if not email:
            email = click.prompt("ODK Central account email")
        credentials = {"email": email, "password": _read_secret("Password")}
    else:
        credentials = {"token": _read_secret("API token")}
    with refusals(SourceInvalid, say=lambda p: _options(p.message)), session_scope() as session:
        add_source(
            session, name, kind, base_url, remote_form_id, credentials, project_id=project_id,
            key=current_app.config["CREDENTIALS_KEY"],
        )  # fmt: skip
    click.echo(
        f"Added source {name} ({kind}, {base_url.strip()}). "
        f"Pull it with `clms sources pull {name}`."
    )


@sources_group.command("list")
@with_appcontext
def sources_list() -> None:
    """List sources with their cursor, last pull and last error (never their credentials)."""
    from clms.db import session_scope
    from forms.pull.sources import list_sources

    with session_scope() as session:
        sources = list_sources(session)
    if not sources:
        click.echo("No sources yet: add one with `clms sources add`.")
        return
    for s in sources:
        where = f"project {s.project_id} form {s.remote_form_id}" if s.kind == "central" else (
            f"asset {s.remote_form_id}"
        )  # fmt: skip
        state = "" if s.enabled else " (disabled)"
        click.echo(f"{s.name}{state}: {s.service} {s.base_url} {where}")
        last = _when(s.last_pull_at) if s.last_pull_at else "never"
        click.echo(
            f"  cursor {s.cursor or '-'}; last pull {last}; last success "
            f"{_when(s.last_success_at) if s.last_success_at else 'never'}; "
            f"{s.pulled_total} pulled in all"
        )
        if s.waiting:
            click.echo(
                f"  {s.waiting} submission{'' if s.waiting == 1 else 's'} waiting to be pulled "
                "again (see the Sources page)"
            )
        if s.last_error:
            click.echo(f"  last error: {s.last_error}")


@sources_group.command("pull")
@click.argument("name", required=False)
@click.option(
    "--from-start", is_flag=True, help="Forget the cursor and read everything again (harmless)."
)
@with_appcontext
def sources_pull(name: str | None, from_start: bool) -> None:
    """Pull what is new on source NAME, or on every enabled source.

    Exits with status 1 when a source could not be pulled to the end.
    """
    from clms.db import session_scope
    from clms.intake.pull import pull_all, pull_source
    from forms.pull.sources import list_sources, source_id_by_name, update_source

    sessions = current_app.extensions["clms_sessionmaker"]
    config = current_app.config
    key = config["CREDENTIALS_KEY"]
    with session_scope() as session:
        if name is not None:
            source_id = source_id_by_name(session, name)
            if source_id is None:
                raise click.ClickException(f"There is no source called {name!r} (see `list`).")
            if from_start:
                update_source(session, source_id, reset_cursor=True, key=key)
        elif from_start:
            for s in list_sources(session):
                if s.enabled:
                    update_source(session, s.id, reset_cursor=True, key=key)
    progress = _Progress()
    try:
        if name is not None:
            results = {name: pull_source(sessions, source_id, config, progress=progress)}
        else:
            results = pull_all(sessions, config, progress=progress)
    finally:
        progress.close()
    if not results:
        click.echo("No enabled sources: add one with `clms sources add`.")
        return
    for result in results.values():
        click.echo(("Pulled " if result.ok else "Failed: ") + result.summary())
    failed = [n for n, r in results.items() if not r.ok]
    if failed:
        raise click.ClickException(
            f"{len(failed)} of {len(results)} source{'' if len(results) == 1 else 's'} could not "
            f"be pulled to the end: {', '.join(failed)}."
        )


@sources_group.command("disable")
@click.argument("name")
@with_appcontext
def sources_disable(name: str) -> None:
    """Leave source NAME out of scheduled pulls (its submissions stay)."""
    _set_enabled(name, False)
    click.echo(f"Disabled source {name}.")


@sources_group.command("enable")
@click.argument("name")
@with_appcontext
def sources_enable(name: str) -> None:
    """Pull source NAME again with the others."""
    _set_enabled(name, True)
    click.echo(f"Enabled source {name}.")


def _set_enabled(name: str, enabled: bool) -> None:
    from clms.db import session_scope
    from forms.pull.sources import set_source_enabled, source_id_by_name

    with session_scope() as session:
        source_id = source_id_by_name(session, name)
        if source_id is None:
            raise click.ClickException(f"There is no source called {name!r} (see `list`).")
        set_source_enabled(session, source_id, enabled)


class _Progress:
    """A progress bar per source, opened once the server says how many submissions there are."""

    def __init__(self):
        self.source: str | None = None
        self.bar = None
        self.shown = 0

    def __call__(self, result: PullResult) -> None:
        if result.source != self.source:
            self.close()
            self.source = result.source
        if self.bar is None and result.expected:
            self.bar = click.progressbar(length=result.expected, label=f"Pulling {result.source}")
            self.bar.__enter__()
        if self.bar is not None:
            changes = [
                f"{n} {what}"
                for n, what in (
                    (result.edits, "edited"),
                    (result.withdrawn, "withdrawn"),
                    (result.restored, "restored"),
                    (result.retried, "taken from the retry list"),
                    (result.problem_count, "not stored, to retry"),
                )
                if n
            ]
            self.bar.label = f"Pulling {result.source}" + (
                f" ({', '.join(changes)})" if changes else ""
            )
            self.bar.update(result.fetched - self.shown)
            self.shown = result.fetched

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
        self.bar, self.shown = None, 0


def _read_secret(label: str) -> str:
    """One line from stdin, or a hidden prompt when a person is typing."""
    if sys.stdin.isatty():
        return click.prompt(label, hide_input=True)
    line = sys.stdin.readline()
    if not line.strip():
        raise click.ClickException(f"No {label.lower()} on standard input.")
    return line.rstrip("\r\n")


def _options(message: str) -> str:
    """Name the command's options in validation messages (base_url: ... -> --url: ...)."""
    options = {
        "base_url": "--url", "remote_form_id": "--form", "project_id": "--project",
        "kind": "--kind", "email": "--email", "name": "NAME", "password": "password (stdin)",
        "token": "API token (stdin)",
    }  # fmt: skip
    return re.sub(
        r"(^|; )(\w+): ", lambda m: f"{m.group(1)}{options.get(m.group(2), m.group(2))}: ", message
    )


def _when(value) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC")
