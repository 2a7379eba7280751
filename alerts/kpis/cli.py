"""``clms kpis``: the kept facts the indicators read (issue 19).

``clms kpis rebuild-facts`` makes every fact again from the visits, child visits and
classifications (after a restore from a backup made before the facts existed, or to repair);
``--check`` only says whether the kept facts equal a rebuild, and changes nothing.
"""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import with_appcontext

from clms.db import session_scope
from clms.facts import fact_rows, rebuild


@click.group("kpis")
def kpis_group() -> None:
    """The indicators' kept facts."""


@kpis_group.command("rebuild-facts")
@click.option("--check", is_flag=True, help="Compare the kept facts with a rebuild; keep them.")
@with_appcontext
def rebuild_facts_command(check: bool) -> None:
    """Make every kept fact again from the rows (one transaction), with its progress."""
    with session_scope(current_app) as session:
        kept = fact_rows(session) if check else None
        with click.progressbar(length=1, label="Making the facts of children again") as bar:
            seen = [0]

            def advance(done: int, total: int) -> None:
                bar.length = max(total, 1)
                bar.update(done - seen[0])
                seen[0] = done

            made = rebuild(session, progress=advance)
        if not check:
            click.echo(f"Kept facts made again: {made} current classified child visits.")
            return
        rebuilt = fact_rows(session)
        session.rollback()
    if kept == rebuilt:
        click.echo(f"The kept facts equal a rebuild ({len(kept)} rows).")
        return
    by_id = {r[0]: r for r in kept}
    again = {r[0]: r for r in rebuilt}
    differ = sorted(i for i in by_id.keys() | again.keys() if by_id.get(i) != again.get(i))
    click.echo(
        f"The kept facts differ from a rebuild for {len(differ)} child visits "
        f"(first: {', '.join(map(str, differ[:10]))}); run 'clms kpis rebuild-facts'.",
        err=True,
    )
    raise SystemExit(1)
