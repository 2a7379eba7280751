"""``clms audit``: check the audit log's chain and read it from the command line.

``clms audit verify`` recomputes every entry's hash in order and exits with status 1, naming the
first broken entry, if any was changed, removed or inserted; ``clms audit show`` prints the
latest entries, filtered as the admin page filters them.
"""

from __future__ import annotations

import datetime as dt

import click
from flask.cli import with_appcontext

from clms.db import session_scope


@click.group("audit")
def audit_group() -> None:
    """The append-only, hash-chained audit log."""


@audit_group.command("verify")
@with_appcontext
def verify_command() -> None:
    """Check that no entry of the audit log was changed, removed or inserted."""
    from clms.audit import verify

    def progress(done: int, total: int) -> None:
        click.echo(f"\r  checked {done:,} of {total:,} entries", nl=False, err=True)

    with session_scope() as session:
        result = verify(session, progress=progress)
    click.echo("", err=True)
    if not result.ok:
        raise click.ClickException(
            f"The audit log is broken at entry {result.broken_at}: {result.problem}. "
            f"{result.checked} entries before it are intact."
        )
    click.echo(f"The audit log is intact: {result.checked} entries, chain verified.")


@audit_group.command("show")
@click.option("--actor", help="Only this user's entries.")
@click.option("--action", help="An action (case.read) or a prefix ending in '.' (case.).")
@click.option("--target", help="A target (case:C-1) or a prefix ending in ':' (case:).")
@click.option("--since", type=click.DateTime(["%Y-%m-%d"]), help="From this day (UTC).")
@click.option("--until", type=click.DateTime(["%Y-%m-%d"]), help="To this day (UTC).")
@click.option("--limit", type=click.IntRange(1, 10000), default=50, show_default=True)
@with_appcontext
def show_command(actor, action, target, since, until, limit) -> None:
    """Print the latest entries, newest first."""
    from clms.audit import search

    def day(value):
        return value.date() if isinstance(value, dt.datetime) else None

    with session_scope() as session:
        for e in search(session, actor=actor, action=action, target=target, since=day(since),
                        until=day(until), limit=limit):  # fmt: skip
            reason = f" reason={e.reason!r}" if e.reason else ""
            click.echo(
                f"{e.seq:>7} {e.at:%Y-%m-%d %H:%M:%S} {e.actor} ({e.role or '-'}) {e.action} "
                f"{e.target}{reason} {e.details if e.details != '{}' else ''}".rstrip()
            )
