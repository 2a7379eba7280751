"""Data-protection commands: ``clms retention run``, ``clms child export``, ``clms child erase``,
``clms backup`` and ``clms restore`` (see :mod:`clms.dataprotection` and :mod:`clms.backup`).

Progress goes to standard error, results to standard output; a refusal exits with status 1 and
says what is wrong, having written nothing.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

from clms.cli import refusals
from clms.db import engine, session_scope
from clms.models import utcnow

#: who the audit log names for work done from the command line: the operator's login name
CLI_ACTOR_PREFIX = "cli:"


def _actor() -> str:
    """The command line's actor in the audit log: ``cli:<login name>``."""
    name = os.environ.get("SUDO_USER") or os.environ.get("USER") or os.environ.get("LOGNAME")
    return CLI_ACTOR_PREFIX + (name or "unknown")


@click.group("retention")
def retention_group() -> None:
    """The retention policy: anonymise children whose cases closed long ago."""


@retention_group.command("run")
@click.option("--dry-run", is_flag=True, help="Only count the children that would be anonymised.")
@with_appcontext
def retention_run(dry_run: bool) -> None:
    """Anonymise every child whose cases all closed more than CLMS_RETENTION_YEARS ago.

    A child with an open case, an active alert or a visit since the cut keeps its data. Each
    child anonymised is recorded in the audit log (child.anonymise), and the run (retention.run).
    """
    from clms.dataprotection.retention import retention_years, run_retention

    try:
        years = retention_years(current_app.config)
    except ValueError as e:
        raise click.ClickException(str(e)) from e
    if years == 0:
        click.echo("Retention is off (CLMS_RETENTION_YEARS is 0): nothing to do.")
        return
    with click.progressbar(length=1, label="Anonymising children", file=sys.stderr) as bar:
        seen = [0]

        def progress(done: int, total: int) -> None:
            bar.length = max(total, 1)
            bar.update(done - seen[0])
            seen[0] = done

        result = run_retention(
            current_app.extensions["clms_sessionmaker"],
            current_app.config,
            now=utcnow(),
            actor=_actor(),
            dry_run=dry_run,
            progress=progress,
        )
    cut = result.cut[:10] if result.cut else "-"
    if dry_run:
        click.echo(
            f"Dry run: {result.children} children would be anonymised (cases closed before "
            f"{cut}, {years} years ago). Nothing was changed."
        )
    else:
        click.echo(
            f"Anonymised {result.children} children ({result.records} records; cases closed "
            f"before {cut}, {years} years ago)."
        )


@click.group("child")
def child_group() -> None:
    """One child's data: the subject access export and erasure on a lawful request."""


@child_group.command("export")
@click.argument("child_uid")
@click.option(
    "-o", "--output", "output", required=True, type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the JSON (refused if it exists).",
)  # fmt: skip
@click.option("--reason", required=True, help="Why: the request this export answers.")
@with_appcontext
def child_export(child_uid: str, output: Path, reason: str) -> None:
    """Write everything held about CHILD_UID to a JSON file (a subject access request).

    The export is recorded in the audit log (child.export, with the reason).
    """
    from clms.dataprotection.export import export_child, export_json
    from clms.dataprotection.subject import DataProtectionError

    if output.exists():
        raise click.ClickException(f"{output} exists: choose a new file name.")
    with refusals(DataProtectionError), session_scope() as session:
        document = export_child(session, _actor(), child_uid, reason=reason, now=utcnow())
        # written before the commit: the audit entry is kept only if the file was written
        fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(export_json(document))
    parts = {k: len(v) for k, v in document.items() if isinstance(v, list)}
    summary = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in parts.items() if n)
    click.echo(f"Wrote {output}: child {document['child']['child_uid']}; {summary}.")


@child_group.command("erase")
@click.argument("child_uid")
@click.option("--reason", required=True, help="The lawful request this erasure answers.")
@click.option("--request-ref", default=None, help="The request's reference (letter, ticket).")
@click.option(
    "--force", "force_reason", default=None, metavar="REASON",
    help="Erase even though the child has an open case, for this reason.",
)  # fmt: skip
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@with_appcontext
def child_erase(
    child_uid: str, reason: str, request_ref: str | None, force_reason: str | None, yes: bool
) -> None:
    """Erase the personal data of CHILD_UID for good, on a lawful request.

    The name, date of birth, household head's name, notes, raw submissions and attachments
    go; the aggregate facts (categories, dates, village, supplier) stay, so indicators do not
    change. Refused while the child has an open case unless --force REASON: erasing the record
    of a child who may be in danger can harm the child. Recorded in the audit log (child.erase).
    """
    from clms.dataprotection.erasure import erase_child
    from clms.dataprotection.subject import DataProtectionError

    if not yes:
        click.confirm(
            f"Erase the personal data of child {child_uid}? This cannot be undone.", abort=True
        )
    with refusals(DataProtectionError), session_scope() as session:
        result = erase_child(
            session, _actor(), child_uid, reason=reason, request_ref=request_ref,
            force=force_reason is not None, force_reason=force_reason, now=utcnow(),
        )  # fmt: skip
    rows = sum(result.rows.values())
    forced = f" (open case {', '.join(result.open_cases)} forced)" if result.open_cases else ""
    click.echo(
        f"Erased child {result.child_uid}: {result.records} record(s), {rows} rows changed"
        f"{forced}. Recorded in the audit log (child.erase)."
    )


def _table_progress(label: str):
    """A progress callback printing a running count per table on standard error."""
    state = {"table": None}

    def progress(table: str, done: int, total: int) -> None:
        if state["table"] != table:
            if state["table"] is not None:
                click.echo("", err=True)
            state["table"] = table
        click.echo(f"\r  {label} {table}: {done:,} of {total:,} rows", nl=False, err=True)

    def finish() -> None:
        if state["table"] is not None:
            click.echo("", err=True)

    return progress, finish


@click.command("backup")
@click.option(
    "-o", "--output", "output", required=True, type=click.Path(dir_okay=False, path_type=Path),
    help="The backup file to write (a ZIP archive; refused if it exists).",
)  # fmt: skip
@with_appcontext
def backup_command(output: Path) -> None:
    """Write a complete, consistent backup of the database to a portable file."""
    from clms.backup import BackupError, backup

    if output.exists():
        raise click.ClickException(f"{output} exists: choose a new file name.")
    progress, finish = _table_progress("backing up")
    try:
        with refusals(BackupError):
            result = backup(engine(), output, progress)
    finally:
        finish()
    from clms.audit import record

    # a backup holds every child's data: recorded like any export (after its snapshot, so it
    # is not in the backup itself)
    with session_scope() as session:
        record(
            session, _actor(), "database.backup", f"file:{result.path.name}", None,
            tables=len(result.tables), rows=result.rows, schema_revision=result.schema_revision,
        )  # fmt: skip
    click.echo(
        f"Wrote {result.path}: {len(result.tables)} tables, {result.rows:,} rows, schema "
        f"revision {result.schema_revision}."
    )


@click.command("restore")
@click.argument("backup_file", type=click.Path(dir_okay=False, path_type=Path))
@with_appcontext
def restore_command(backup_file: Path) -> None:
    """Restore BACKUP_FILE into this EMPTY database (CLMS_DATABASE_URL).

    Every part is checked against the backup's manifest first; a non-empty database is refused.
    """
    from clms.backup import BackupError, restore

    progress, finish = _table_progress("restoring")
    try:
        with refusals(BackupError):
            result = restore(engine(), backup_file, progress)
    finally:
        finish()
    from clms.audit import record

    with session_scope() as session:  # the restored chain goes on with the restore itself
        record(
            session, _actor(), "database.restore", f"file:{backup_file.name}", None,
            rows=sum(result.rows.values()), schema_revision=result.schema_revision,
        )  # fmt: skip
    upgraded = f", then upgraded to {result.upgraded_to}" if result.upgraded_to else ""
    click.echo(
        f"Restored {sum(result.rows.values()):,} rows in {len(result.rows)} tables at schema "
        f"revision {result.schema_revision}{upgraded}. Check the audit log: clms audit verify"
    )


COMMANDS = (retention_group, child_group, backup_command, restore_command)
