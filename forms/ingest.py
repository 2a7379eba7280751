"""Storing a submission: one operation for every way data arrives (OpenRosa push, Central or Kobo
pull), so the same submission arriving twice, or both ways, is stored once.

The rules are ODK Central's (shared/design/protocols.md): the same instanceID with byte-identical
XML is a safe retry (201 again, new attachments added); the same instanceID with other XML is a
conflict (409); ``deprecatedID`` names the version an edit replaces (unknown: 404; already replaced:
409). The raw XML and attachments are kept byte for byte. Our forms are then parsed into households,
visits and children in the same transaction; whatever cannot be understood marks the submission for
review with the reasons, and nothing is lost.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from clms.errors import problem
from clms.models import (
    Form,
    FormVersion,
    Report,
    Submission,
    SubmissionAttachment,
    User,
    Visit,
    utcnow,
)
from forms import store
from forms.parse import parse_submission
from forms.xmlsafe import instance_ids, parse_xml


@dataclass
class Attachment:
    """A file part of a submission."""

    name: str
    content_type: str
    data: bytes


@dataclass
class IncomingSubmission:
    """What arrived: the XML bytes exactly as received, attachments, and who sent it how."""

    xml: bytes
    source: str  # openrosa, central, kobo
    attachments: list[Attachment] = field(default_factory=list)
    submitter: User | None = None
    device_id: str | None = None


@dataclass
class IngestResult:
    submission: Submission
    created: bool  # False: a retry of a submission already stored
    attachments_added: int


def check_attachment_name(name: str) -> str:
    """Refuse attachment names that could escape a folder or confuse a file system."""
    bad = (
        not name
        or len(name) > 255
        or name in (".", "..")
        or any(c in name for c in "/\\\x00")
        or any(ord(c) < 32 for c in name)
    )
    if bad:
        raise problem("request.bad_attachment_name", name=name[:100])
    return name


def ingest_submission(
    session: Session,
    incoming: IncomingSubmission,
    check_form: Callable[[Form], None] | None = None,
) -> IngestResult:
    """Store ``incoming`` (or recognise it as a retry) and parse it; flushes, never commits.

    ``check_form`` may refuse the form for this submitter (it raises a problem).

    Raises a catalogue :class:`~clms.errors.Problem` for anything that must be refused; the caller
    rolls back, so a refusal never leaves a partial record.
    """
    for att in incoming.attachments:
        check_attachment_name(att.name)
    root = parse_xml(incoming.xml)
    xml_form_id = root.get("id") or ""
    form = session.scalar(select(Form).where(Form.xml_form_id == xml_form_id))
    if form is None:
        raise problem("form.not_found", form_id=xml_form_id)
    if check_form is not None:
        check_form(form)
    instance_id, deprecated_id = instance_ids(root)
    if instance_id is None:
        raise problem("submission.instance_id_missing")
    digest = hashlib.sha256(incoming.xml).hexdigest()

    existing = _by_instance_id(session, form, instance_id)
    if existing is not None:
        return _retry(session, existing, digest, instance_id, incoming.attachments)

    if form.state == "closed":
        raise problem("form.closed", form_id=xml_form_id)
    version = root.get("version") or ""
    form_version = session.scalar(
        select(FormVersion).where(FormVersion.form_id == form.id, FormVersion.version == version)
    )
    if form_version is None:
        known = session.scalars(
            select(FormVersion.version).where(FormVersion.form_id == form.id)
        ).all()
        raise problem(
            "submission.form_version_unknown",
            form_id=xml_form_id,
            version=version,
            known=", ".join(repr(v) for v in known) or "none",
        )

    logical_id = instance_id
    if deprecated_id is not None:
        logical_id = _replace_version(session, form, deprecated_id)

    submission = Submission(
        instance_id=instance_id,
        logical_id=logical_id,
        deprecated_id=deprecated_id,
        current=True,
        form_id=form.id,
        form_version_id=form_version.id,
        xml=incoming.xml,
        xml_sha256=digest,
        received_at=utcnow(),
        source=incoming.source,
        submitter_id=incoming.submitter.id if incoming.submitter else None,
        device_id=incoming.device_id,
        status="raw",
        review_reasons=[],
    )
    try:
        # a savepoint: when a concurrent request stored the same instanceID first, only this
        # insert is undone and the request continues as the retry it is
        with session.begin_nested():
            session.add(submission)
            session.flush()
    except IntegrityError:
        existing = _by_instance_id(session, form, instance_id)
        if existing is None:
            # the other unique key: another edit replaced deprecatedID in the meantime
            raise problem("submission.deprecated_replaced", deprecated_id=deprecated_id) from None
        return _retry(session, existing, digest, instance_id, incoming.attachments)

    added = _add_attachments(session, submission, incoming.attachments)
    record = parse_submission(root)
    if record is not None:
        issues = store.save_record(session, submission, record, incoming.submitter)
        submission.status = "review" if issues else "parsed"
        submission.review_reasons = [i.as_dict() for i in issues]
    session.flush()
    return IngestResult(submission=submission, created=True, attachments_added=added)


def _by_instance_id(session: Session, form: Form, instance_id: str) -> Submission | None:
    return session.scalar(
        select(Submission).where(
            Submission.form_id == form.id, Submission.instance_id == instance_id
        )
    )


def _retry(
    session: Session,
    existing: Submission,
    digest: str,
    instance_id: str,
    attachments: list[Attachment],
) -> IngestResult:
    """A submission seen before: identical bytes are a retry (add new files), else a conflict."""
    if existing.xml_sha256 != digest:
        raise problem("submission.conflict", instance_id=instance_id)
    added = _add_attachments(session, existing, attachments)
    return IngestResult(submission=existing, created=False, attachments_added=added)


def _replace_version(session: Session, form: Form, deprecated_id: str) -> str:
    """Retire the version an edit replaces; returns the logical id the edit continues."""
    old = _by_instance_id(session, form, deprecated_id)
    if old is None:
        raise problem("submission.deprecated_unknown", deprecated_id=deprecated_id)
    # conditional update: of two edits racing to replace the same version, exactly one wins
    retired = session.execute(
        update(Submission)
        .where(Submission.id == old.id, Submission.current.is_(True))
        .values(current=False)
        .execution_options(synchronize_session=False)
    ).rowcount
    if retired != 1:
        raise problem("submission.deprecated_replaced", deprecated_id=deprecated_id)
    for model in (Visit, Report):
        session.execute(
            update(model)
            .where(model.submission_id == old.id)
            .values(current=False)
            .execution_options(synchronize_session=False)
        )
    return old.logical_id


def _add_attachments(session: Session, submission: Submission, files: list[Attachment]) -> int:
    """Keep every file not yet stored for this submission; a file already there is not replaced."""
    if not files:
        return 0
    have = set(
        session.scalars(
            select(SubmissionAttachment.name).where(
                SubmissionAttachment.submission_id == submission.id
            )
        )
    )
    added = 0
    for f in files:
        if f.name in have:
            continue
        row = SubmissionAttachment(
            submission_id=submission.id,
            name=f.name,
            content_type=f.content_type or "application/octet-stream",
            data=f.data,
            sha256=hashlib.sha256(f.data).hexdigest(),
            size=len(f.data),
        )
        try:
            with session.begin_nested():  # a concurrent retry may add the same file
                session.add(row)
                session.flush()
            added += 1
            have.add(f.name)
        except IntegrityError:
            continue
    return added
