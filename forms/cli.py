"""`clms forms ...` commands: build our XForms, publish a form, list forms, encrypt a form
(keygen) and decrypt what its phones sent (decrypt)."""

from __future__ import annotations

from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

from clms.cli import refusals
from clms.errors import problem


@click.group("forms")
def forms_group() -> None:
    """Build, publish, list, encrypt and decrypt forms."""


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
    with refusals(BuildError):
        paths = build_forms(out_dir or BUILD_DIR, validate=validate, warnings=warnings)
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
    from forms.publish import publish_form, validate_setting

    if validate is None:
        validate = validate_setting(current_app.config)
    with refusals(), session_scope() as session:
        result = publish_form(session, file.name, file.read_bytes(), validate=validate)
        version = result.form_version
        form_id, number = version.form.xml_form_id, version.version
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


def _read_passphrase(passphrase_file: Path | None, confirm: bool) -> str:
    """The passphrase from the first line of a file, or typed (hidden; twice for a new key)."""
    if passphrase_file is not None:
        lines = passphrase_file.read_text(encoding="utf-8").splitlines()
        return lines[0] if lines else ""
    return click.prompt(
        "Passphrase of the form's private key", hide_input=True, confirmation_prompt=confirm
    )


@forms_group.command("keygen")
@click.argument("form_id")
@click.option(
    "--passphrase-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Read the passphrase from the first line of this file instead of asking for it.",
)
@click.option(
    "--replace",
    is_flag=True,
    help="Replace the form's key; the old one is kept to decrypt what was sent with it.",
)
@click.option("--bits", type=click.IntRange(2048, 8192), default=None, help="RSA key size.")
@with_appcontext
def forms_keygen(form_id: str, passphrase_file: Path | None, replace: bool, bits: int | None):
    """Encrypt FORM_ID: make its key pair and publish a version carrying the public key.

    Phones that download the new version encrypt every submission; only the private key, which
    the passphrase protects, decrypts them. The passphrase is not stored anywhere: lose it and
    the submissions sent with this key cannot be read.

    \b
    Example:
        clms forms keygen clms_household_visit
    """
    from sqlalchemy import select

    from clms.db import session_scope
    from clms.models import Form
    from forms import crypto
    from forms.encryption import generate_form_key

    passphrase = _read_passphrase(passphrase_file, confirm=True)
    try:
        crypto.check_passphrase(passphrase)
        with refusals(), session_scope() as session:
            form = session.scalar(select(Form).where(Form.xml_form_id == form_id))
            if form is None:
                raise problem("form.not_found", form_id=form_id)
            key = generate_form_key(
                session, form, passphrase, actor="cli", replace=replace,
                bits=bits or crypto.RSA_BITS,
            )  # fmt: skip
            fingerprint, version = key.fingerprint, form.live_version.version
    except ValueError as e:  # a passphrase too short, a key size the library refuses
        raise click.ClickException(str(e)) from e
    click.echo(f"Form {form_id} is encrypted: key {fingerprint[:16]}, new version {version}.")
    click.echo("Keep the passphrase safe: without it nothing sent with this key can be read.")


@forms_group.command("decrypt")
@click.argument("form_id", required=False)
@click.option(
    "--passphrase-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Read the passphrase from the first line of this file instead of asking for it.",
)
@click.option(
    "--no-process", is_flag=True, help="Only decrypt; leave the parsing to `clms process`."
)
@with_appcontext
def forms_decrypt(form_id: str | None, passphrase_file: Path | None, no_process: bool) -> None:
    """Decrypt the encrypted submissions waiting for FORM_ID's key (every encrypted form the
    passphrase opens, without FORM_ID) and process them like any other submission.

    Each submission is decrypted on its own: one that cannot be (a missing or changed file) is
    reported by instanceID and stays waiting. Running it again does nothing more.

    \b
    Example:
        clms forms decrypt clms_household_visit --passphrase-file /run/secrets/clms_key
    """
    from clms.intake.decrypt import decrypt_pending
    from forms import crypto
    from forms.encryption import FormKeyError

    passphrase = _read_passphrase(passphrase_file, confirm=False)
    sessions = current_app.extensions["clms_sessionmaker"]

    def progress(done: int, total: int) -> None:
        click.echo(f"\rDecrypted {done}/{total}", nl=done == total, err=True)

    with refusals(crypto.DecryptionError, FormKeyError):
        result = decrypt_pending(
            sessions, passphrase, form_id, actor="cli", progress=progress, process=not no_process
        )
    for instance_id, why in result.failed:
        click.echo(f"Not decrypted: {instance_id}: {why}", err=True)
    click.echo(
        f"Decrypted {result.decrypted} submission(s) of {', '.join(result.forms)}; "
        f"{len(result.failed)} could not be decrypted; {result.parsed} parsed, "
        f"{result.review} for review."
    )
    if result.failed:
        raise SystemExit(1)
