"""`clms forms ...` commands: build our XForms, publish a form, list forms."""

from __future__ import annotations

from pathlib import Path

import click
from flask.cli import with_appcontext

from clms.errors import Problem


@click.group("forms")
def forms_group() -> None:
    """Build, publish and list forms."""


@forms_group.command("build")
@click.option(
    "--validate/--no-validate",
    default=True,
    help="Check each XForm with ODK Validate (needs java). On by default.",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Write the XForms here instead of forms/build.",
)
def forms_build(validate: bool, out_dir: Path | None) -> None:
    """Compile forms/xlsform/*.md into forms/build/<form_id>.xml.

    \b
    Example:
        clms forms build && git diff forms/build
    """
    from forms.build import BuildError, build_forms
    from forms.publish import BUILD_DIR

    warnings: dict[str, list[str]] = {}
    try:
        paths = build_forms(out_dir or BUILD_DIR, validate=validate, warnings=warnings)
    except BuildError as e:
        raise click.ClickException(str(e)) from e
    for path in paths:
        click.echo(f"Built {path.stem} -> {path}")
        for warning in warnings.get(path.stem, []):
            click.echo(f"  warning: {warning}")


@forms_group.command("publish")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--validate/--no-validate",
    default=None,
    help="Run ODK Validate (default: the ODK_VALIDATE setting).",
)
@with_appcontext
def forms_publish(file: Path, validate: bool | None) -> None:
    """Publish FILE (XLSForm .xlsx, .xls, .md or XForm .xml) as the form's live version.

    \b
    Example:
        clms forms publish household.xlsx
    """
    from clms.db import session_scope
    from forms.publish import publish_form

    try:
        with session_scope() as session:
            result = publish_form(session, file.name, file.read_bytes(), validate=validate)
            version = result.form_version
            form_id, number = version.form.xml_form_id, version.version
    except Problem as p:
        raise click.ClickException(p.message) from p
    for warning in result.warnings:
        click.echo(f"warning: {warning}")
    what = "new form" if result.created else "new live version"
    click.echo(f"Published {form_id} version {number} ({what}).")


@forms_group.command("list")
@with_appcontext
def forms_list() -> None:
    """List forms: id, title, live version, state and number of versions."""
    from clms.db import session_scope
    from forms.publish import form_summaries

    with session_scope() as session:
        rows = form_summaries(session)
    if not rows:
        click.echo("No forms yet: run `clms forms publish FILE` (or `clms init`).")
        return
    click.echo(f"{'form id':28} {'live version':16} {'state':8} {'versions':>8}  title")
    for row in rows:
        click.echo(
            f"{row.xml_form_id:28} {row.live_version or '-':16} {row.state:8} "
            f"{row.versions:>8}  {row.title}"
        )
