"""Publishing forms: an XLSForm or an XForm becomes the live version of a form.

The operation checks everything before it writes anything: the file is read (spreadsheet, Markdown
XLSForm or XForm), converted with pyxform, optionally checked with ODK Validate (JavaRosa, the
engine of ODK Collect; all of this is :mod:`forms.convert`), and its version must increase on the
live one. Only then are a :class:`~clms.models.Form` (when new) and a
:class:`~clms.models.FormVersion` added and flushed; the caller commits. Errors are catalogue
problems (``form.invalid``, ``form.version_not_increasing``) whose message tells a person where to
look: for a spreadsheet the sheet, the row and the problem.
"""

from __future__ import annotations

import hashlib
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from clms.errors import problem
from clms.models import Form, FormAttachment, FormKey, FormVersion, User
from forms.convert import (
    XFormInfo,
    convert_xlsform,
    file_kind,
    natural_key,
    odk_validate,
    read_xform,
    submission_public_key,
    with_public_key,
)
from forms.parse import OUR_FORMS

FORMS_DIR = Path(__file__).resolve().parent
XLSFORM_DIR = FORMS_DIR / "xlsform"
BUILD_DIR = FORMS_DIR / "build"


@dataclass
class PublishResult:
    """What :func:`publish_form` did.

    ``created`` is True when the form itself is new (its first version was published).
    ``warnings`` are pyxform's and ODK Validate's warnings plus our own (e.g. an assigned version).
    """

    form_version: FormVersion
    warnings: list[str] = field(default_factory=list)
    created: bool = False


@dataclass
class FormSummary:
    """One row of the forms list."""

    xml_form_id: str
    title: str
    state: str
    live_version: str | None
    versions: int


# --- the operation ------------------------------------------------------------------------------


def publish_form(
    session: Session,
    filename: str,
    data: bytes,
    published_by: User | int | None = None,
    validate: bool | None = None,
) -> PublishResult:
    """Publish ``data`` (XLSForm ``.xlsx``/``.xls``/``.md`` or XForm ``.xml``) as a new version.

    Parameters
    ----------
    session:
        The database session; the new rows are flushed, never committed.
    filename:
        The uploaded file's name: its extension says what the file claims to be, its stem is the
        form id of an XLSForm whose settings sheet names none.
    data:
        The file's bytes. An XForm is stored byte for byte as given.
    published_by:
        The user (or user id) publishing, kept on the version.
    validate:
        Run ODK Validate; ``None``: ``auto`` (when java exists). The roof passes the ODK_VALIDATE
        setting as :func:`validate_setting` reads it.

    Raises
    ------
    Problem
        ``form.invalid`` for a file that cannot be read or converted (naming sheet and row for
        spreadsheets) or that ODK Validate rejects; ``form.version_not_increasing`` when the
        version does not increase on the live one. Nothing is written then.

    Examples
    --------
    >>> result = publish_form(session, "clms_report.md", source_bytes)  # doctest: +SKIP
    >>> result.form_version.version, result.warnings  # doctest: +SKIP
    ('2026112201', [])
    """
    if validate is None:
        validate = validate_setting()
    warnings: list[str] = []
    kind = file_kind(filename, data)
    if kind == "xform":
        xml, source = data, None
    else:
        xml, conversion_warnings = convert_xlsform(filename, data, kind=kind)
        warnings.extend(conversion_warnings)
        source = data
    # the safe parse comes first: ODK Validate's own XML parser never sees a hostile document
    info = read_xform(xml, filename)
    form = session.scalar(select(Form).where(Form.xml_form_id == info.form_id))
    # an encrypted form keeps its public key on every version (forms.encryption)
    public_key = _active_public_key(session, form)
    carried = submission_public_key(xml)
    if carried != public_key:
        _check_public_key(info.form_id, kind, public_key, carried)
        xml, conversion_warnings = convert_xlsform(filename, data, kind=kind, public_key=public_key)
        warnings = list(conversion_warnings)
        info = read_xform(xml, filename)
    if form is not None:
        _check_version_increases(session, form, info)
    if validate:
        warnings.extend(odk_validate(xml))

    created = form is None
    published_by_id = published_by.id if isinstance(published_by, User) else published_by
    try:
        # A savepoint: if another publish of the same form or version wins the race (the unique
        # constraints catch it), the caller's transaction stays usable and gets a clear problem.
        with session.begin_nested():
            if created:
                form = Form(xml_form_id=info.form_id, title=info.title[:300], state="open")
                session.add(form)
                session.flush()
            else:
                form.title = info.title[:300]
            version = FormVersion(
                form_id=form.id,
                version=info.version,
                xml=xml,
                md5=hashlib.md5(xml).hexdigest(),
                source_name=Path(filename).name[:300],
                source=source,
                warnings=list(warnings),
                media_files=info.media_files,
                published_by_id=published_by_id,
            )
            session.add(version)
            session.flush()
            form.live_version = version
            session.flush()
    except IntegrityError as e:
        raise problem(
            "form.version_not_increasing",
            form_id=info.form_id,
            version=info.version,
            live=f"{info.version}, published by someone else at the same moment",
        ) from e
    return PublishResult(form_version=version, warnings=warnings, created=created)


def ensure_builtin_forms(session: Session) -> list[FormVersion]:
    """Publish the built XForms of our forms (forms/build/<id>.xml) whose live version differs.

    A form whose live version is the same bytes is left alone, and so is one whose live version is
    already higher than the built one (an administrator published a newer version). Returns the
    versions published now. Used by ``clms init`` and the demo; the caller commits.
    """
    published = []
    for form_id in OUR_FORMS:
        path = BUILD_DIR / f"{form_id}.xml"
        data = path.read_bytes()
        form = session.scalar(select(Form).where(Form.xml_form_id == form_id))
        live = form.live_version if form is not None else None
        if live is not None:
            if live.md5 == hashlib.md5(data).hexdigest():
                continue
            built = read_xform(data, path.name)
            if natural_key(built.version) <= natural_key(live.version):
                continue
        if _active_public_key(session, form) is not None:
            # an encrypted form: the built XForm lacks its key, the source gets it (publish_form)
            path = XLSFORM_DIR / f"{form_id}.md"
            data = path.read_bytes()
        # built by us and checked by `clms forms build`: ODK Validate need not run again here
        published.append(publish_form(session, path.name, data, validate=False).form_version)
    return published


def publish_with_key(
    session: Session, form: Form, key: FormKey, published_by: User | int | str | None = None
) -> FormVersion:
    """Publish a new version of ``form``: its live version carrying ``key``'s public key.

    Phones that download it encrypt what they send. The version is the live one with ``+key<id>``
    (an earlier ``+key<n>`` replaced), which sorts above it; the static media files come along.
    Flushes; the caller commits.
    """
    live = form.live_version
    if live is None:
        raise problem("form.invalid", detail=f"Form '{form.xml_form_id}' has no live version.")
    version = re.sub(r"\+key\d+$", "", live.version) + f"+key{key.id}"
    xml = with_public_key(live.xml, key.public_key, version)
    read_xform(xml, live.source_name or "form.xml")  # what we serve must still read back
    published_by_id = published_by.id if isinstance(published_by, User) else None
    if isinstance(published_by, int):
        published_by_id = published_by
    row = FormVersion(
        form_id=form.id,
        version=version,
        xml=xml,
        md5=hashlib.md5(xml).hexdigest(),
        source_name=live.source_name,
        source=live.source,
        warnings=[],
        media_files=list(live.media_files),
        published_by_id=published_by_id,
    )
    session.add(row)
    session.flush()
    static = select(FormAttachment).where(FormAttachment.form_version_id == live.id)
    for att in session.scalars(static):
        session.add(
            FormAttachment(
                form_version_id=row.id,
                name=att.name,
                content_type=att.content_type,
                data=att.data,
                md5=att.md5,
            )
        )
    form.live_version = row
    session.flush()
    return row


def form_summaries(session: Session) -> list[FormSummary]:
    """Every form with its live version, state and number of versions, by form id."""
    counts = dict(
        session.execute(
            select(FormVersion.form_id, func.count()).group_by(FormVersion.form_id)
        ).all()
    )
    rows = []
    for form in session.scalars(select(Form).order_by(Form.xml_form_id)):
        rows.append(
            FormSummary(
                xml_form_id=form.xml_form_id,
                title=form.title,
                state=form.state,
                live_version=form.live_version.version if form.live_version else None,
                versions=counts.get(form.id, 0),
            )
        )
    return rows


def form_with_versions(session: Session, xml_form_id: str) -> tuple[Form, list[FormVersion]]:
    """The form ``xml_form_id`` and its versions, newest first; ``form.not_found`` if unknown."""
    form = session.scalar(select(Form).where(Form.xml_form_id == xml_form_id))
    if form is None:
        raise problem("form.not_found", form_id=xml_form_id)
    versions = session.scalars(
        select(FormVersion)
        .where(FormVersion.form_id == form.id)
        .order_by(FormVersion.published_at.desc(), FormVersion.id.desc())
    ).all()
    return form, list(versions)


def form_version(session: Session, form: Form, version: str) -> FormVersion | None:
    """The version ``version`` of ``form`` (versions may be empty strings), or None."""
    return session.scalar(
        select(FormVersion).where(FormVersion.form_id == form.id, FormVersion.version == version)
    )


def validate_setting(config: Mapping | None = None) -> bool:
    """Whether to run ODK Validate: the setting ODK_VALIDATE of ``config`` (auto, 1, 0; auto
    without a configuration or the setting); auto = java is on PATH."""
    value = config.get("ODK_VALIDATE", "auto") if config is not None else "auto"
    if isinstance(value, bool):
        return value
    value = str(value).strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    return shutil.which("java") is not None


# --- private helpers ----------------------------------------------------------------------------


def _active_public_key(session: Session, form: Form | None) -> str | None:
    if form is None:
        return None
    return session.scalar(
        select(FormKey.public_key).where(FormKey.form_id == form.id, FormKey.active)
    )


def _check_public_key(form_id: str, kind: str, ours: str | None, carried: str | None) -> None:
    """Refuse a form whose public key is not the one this server holds for it: submissions made
    with another key could never be read here."""
    how = f"`clms forms keygen {form_id}` or the form's page"
    if ours is None:
        raise problem(
            "form.invalid",
            detail=f"The form carries a public key (settings: public_key), but this server holds "
            f"no key for form '{form_id}', so it could never read what phones send. Publish it "
            f"without public_key, then generate the form's key here ({how}).",
        )
    if carried is not None:
        raise problem(
            "form.invalid",
            detail=f"The form carries a public key that is not form '{form_id}''s key on this "
            "server. Remove public_key from the settings sheet: the server adds the form's key.",
        )
    if kind == "xform":
        raise problem(
            "form.invalid",
            detail=f"Form '{form_id}' is encrypted on this server: an XForm must carry the form's "
            "public key on <submission base64RsaPublicKey=...>. Publish the XLSForm instead "
            "and the server adds the key.",
        )


def _check_version_increases(session: Session, form: Form, info: XFormInfo) -> None:
    live = form.live_version
    known = session.scalars(select(FormVersion.version).where(FormVersion.form_id == form.id)).all()
    if live is not None and natural_key(info.version) <= natural_key(live.version):
        raise problem(
            "form.version_not_increasing",
            form_id=form.xml_form_id,
            version=info.version,
            live=live.version,
        )
    if info.version in known:
        raise problem(
            "form.version_not_increasing",
            form_id=form.xml_form_id,
            version=info.version,
            live=live.version if live is not None else info.version,
        )
