"""Storing a submission: one operation for every way data arrives (OpenRosa push, Central or Kobo
pull), so the same submission arriving twice, or both ways, is stored once.

The rules are ODK Central's (shared/design/protocols.md): the same instanceID with byte-identical
XML is a safe retry (201 again, new attachments added); the same instanceID with other XML is a
conflict (409); ``deprecatedID`` names the version an edit replaces (unknown: 404; already replaced:
409). The raw XML and attachments are kept byte for byte; that is all a phone waits for.

A pulled submission says where it lives on its server (``pull_source_id``, ``remote_id``) and the
root of its edit chain (``root_id``: Central's rootId, the first instanceID of the chain), which
is its logical identity here. An edit whose older version never reached us (a reviewer edited it
on the server before our first pull) is accepted as the current version of that root: the server
holds the history, and refusing it would lose the visit for good. A version older than the one
we hold, arriving late, is kept as a past version (not current). A phone's push keeps Central's
rules.

Submissions of our forms are stored ``received`` and parsed afterwards into households, visits and
children by the processing job (:mod:`clms.intake.process`); whatever cannot be understood marks
the submission for review with the reasons, and nothing is lost. Other forms are stored ``raw``.
An encrypted submission (an ODK encryption manifest and its ``*.enc`` files) is stored
``encrypted``, waiting for the form's key (:mod:`forms.encryption`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Row, bindparam, exists, insert, select, update
from sqlalchemy.orm import Session

from clms.errors import problem
from clms.facts import refresh_submissions
from clms.models import (
    Form,
    FormArea,
    FormVersion,
    Report,
    Submission,
    SubmissionAttachment,
    User,
    Visit,
    utcnow,
)
from forms import encryption
from forms.parse import OUR_FORMS
from forms.xmlsafe import instance_ids, parse_xml

SUBMISSIONS = Submission.__table__
ATTACHMENTS = SubmissionAttachment.__table__

# built once: every submission runs them (see forms.store)
# One query tells what a submission needs to know about its form: the form's columns that
# check_form reads (not the entity: loading an ORM object costs more than the query), whether it is
# restricted to areas, the id of the version the submission names, and whether this instanceID is
# already stored.
_FORM_CONTEXT = select(
    Form.id,
    Form.xml_form_id,
    Form.state,
    Form.live_version_id,
    exists().where(FormArea.form_id == Form.id).label("has_areas"),
    select(FormVersion.id)
    .where(FormVersion.form_id == Form.id, FormVersion.version == bindparam("version"))
    .scalar_subquery()
    .label("version_id"),
    select(SUBMISSIONS.c.id)
    .where(SUBMISSIONS.c.form_id == Form.id, SUBMISSIONS.c.instance_id == bindparam("instance_id"))
    .scalar_subquery()
    .label("existing_id"),
).where(Form.xml_form_id == bindparam("xml_form_id"))
_BY_INSTANCE_ID = select(
    SUBMISSIONS.c.id, SUBMISSIONS.c.logical_id, SUBMISSIONS.c.xml_sha256, SUBMISSIONS.c.status,
    SUBMISSIONS.c.review_reasons, SUBMISSIONS.c.pull_source_id,
).where(
    SUBMISSIONS.c.form_id == bindparam("form_id"),
    SUBMISSIONS.c.instance_id == bindparam("instance_id"),
)  # fmt: skip
_INSERT_SUBMISSION = insert(SUBMISSIONS).returning(SUBMISSIONS.c.id)
_INSERT_ATTACHMENT = insert(ATTACHMENTS)


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
    # a pull: the source, the submission's id there, and the root of its edit chain (the logical
    # id; None: the instanceID, or the chain of its deprecatedID)
    pull_source_id: int | None = None
    remote_id: str | None = None
    root_id: str | None = None


@dataclass
class IngestResult:
    submission_id: int
    # received (ours, waiting for the processing job), parsed, review (see review_reasons) or raw (a
    # form that is not ours); a retry reports the status the stored submission has now
    status: str
    review_reasons: list[dict]
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
    check_form: Callable[[Row], None] | None = None,
) -> IngestResult:
    """Store ``incoming`` (or recognise it as a retry) and parse it; never commits.

    ``check_form`` may refuse the form for this submitter (it raises a problem); it gets the form's
    ``id``, ``xml_form_id``, ``state``, ``live_version_id`` and ``has_areas`` as a row.

    Raises a catalogue :class:`~clms.errors.Problem` for anything that must be refused; the caller
    rolls back, so a refusal never leaves a partial record. Everything is read first and written
    last; a concurrent request that stored the same instanceID (or created the same household) in
    between makes a write raise :class:`IntegrityError`: roll back and call again, as
    :func:`clms.db.commit_retrying` does, and the second attempt sees the other request's rows.
    """
    for att in incoming.attachments:
        check_attachment_name(att.name)
    # the pure work first: no transaction is open while the XML is parsed
    root = parse_xml(incoming.xml)
    # an ODK encryption manifest (forms.encryption): kept as received, waiting for the form's key
    manifest = encryption.read_manifest(root)
    xml_form_id = root.get("id") or ""
    instance_id, deprecated_id = instance_ids(root)
    version = root.get("version") or ""
    form = session.execute(
        _FORM_CONTEXT,
        {"xml_form_id": xml_form_id, "version": version, "instance_id": instance_id or ""},
    ).first()
    if form is None:
        raise problem("form.not_found", form_id=xml_form_id)
    if check_form is not None:
        check_form(form)
    if manifest is not None:
        encryption.check_form_encrypted(session, form)
    if instance_id is None:
        raise problem("submission.instance_id_missing")
    digest = hashlib.sha256(incoming.xml).hexdigest()

    if form.existing_id is not None:
        existing = _by_instance_id(session, form.id, instance_id)
        result = _retry(session, existing, digest, instance_id, incoming.attachments)
        if incoming.pull_source_id is not None and existing.pull_source_id is None:
            # pushed by a phone, and found on a server too: the pull can now follow it there
            session.execute(
                update(SUBMISSIONS)
                .where(SUBMISSIONS.c.id == existing.id)
                .values(pull_source_id=incoming.pull_source_id, remote_id=incoming.remote_id)
            )
        return result

    if form.state == "closed":
        raise problem("form.closed", form_id=xml_form_id)
    form_version_id = form.version_id
    if form_version_id is None:
        known = session.scalars(
            select(FormVersion.version).where(FormVersion.form_id == form.id)
        ).all()
        raise problem(
            "submission.form_version_unknown",
            form_id=xml_form_id,
            version=version,
            known=", ".join(repr(v) for v in known) or "none",
        )

    # our forms are parsed afterwards, in order and in batches (clms.intake); others stay raw
    status = "received" if xml_form_id in OUR_FORMS else "raw"
    if manifest is not None:
        status = "encrypted"
    logical_id, current = incoming.root_id or instance_id, True
    if deprecated_id is not None:
        logical_id = _replace_version(session, form.id, deprecated_id, incoming, instance_id)
    elif incoming.root_id is not None:
        # a pulled version that replaces nothing: the first of its chain, or an older version
        # arriving after a later one was stored (kept, not current)
        current = _current_of(session, form.id, SUBMISSIONS.c.logical_id == logical_id) is None
    # a version of a submission its server withdrew is withdrawn too: it waits, unprocessed,
    # until the server restores it (clms.intake.withdraw)
    withdrawn = _withdrawn_chain(session, form.id, logical_id) if deprecated_id else None
    submission_id = session.execute(
        _INSERT_SUBMISSION,
        {
            "instance_id": instance_id,
            "logical_id": logical_id,
            "deprecated_id": deprecated_id,
            "current": current,
            "form_id": form.id,
            "form_version_id": form_version_id,
            "xml": incoming.xml,
            "xml_sha256": digest,
            "received_at": utcnow(),
            "source": incoming.source,
            "submitter_id": incoming.submitter.id if incoming.submitter else None,
            "device_id": incoming.device_id,
            "status": status,
            "review_reasons": [],
            "pull_source_id": incoming.pull_source_id,
            "remote_id": incoming.remote_id,
            "withdrawn_at": withdrawn.withdrawn_at if withdrawn else None,
            "withdrawn_reason": withdrawn.withdrawn_reason if withdrawn else None,
        },
    ).scalar_one()
    if manifest is not None:
        encryption.keep_manifest(session, submission_id, form.id, incoming.xml, digest)
    added = _add_attachments(session, submission_id, incoming.attachments, have=set())
    return IngestResult(submission_id, status, [], created=True, attachments_added=added)


def _by_instance_id(session: Session, form_id: int, instance_id: str) -> Row | None:
    params = {"form_id": form_id, "instance_id": instance_id}
    return session.execute(_BY_INSTANCE_ID, params).first()


def _retry(
    session: Session,
    existing: Row,
    digest: str,
    instance_id: str,
    attachments: list[Attachment],
) -> IngestResult:
    """A submission seen before: identical bytes are a retry (add new files), else a conflict."""
    # a submission that arrived encrypted and was decrypted since is still the same manifest
    if existing.xml_sha256 != digest and not encryption.is_manifest_of(
        session, existing.id, digest
    ):
        raise problem("submission.conflict", instance_id=instance_id)
    have = set()
    if attachments:
        have = set(
            session.scalars(
                select(ATTACHMENTS.c.name).where(ATTACHMENTS.c.submission_id == existing.id)
            )
        )
    added = _add_attachments(session, existing.id, attachments, have)
    return IngestResult(
        existing.id, existing.status, existing.review_reasons, created=False,
        attachments_added=added,
    )  # fmt: skip


def _withdrawn_chain(session: Session, form_id: int, logical_id: str) -> Row | None:
    """When and why the server withdrew the logical submission ``logical_id``, if it did."""
    return session.execute(
        select(SUBMISSIONS.c.withdrawn_at, SUBMISSIONS.c.withdrawn_reason)
        .where(
            SUBMISSIONS.c.form_id == form_id,
            SUBMISSIONS.c.logical_id == logical_id,
            SUBMISSIONS.c.withdrawn_at.is_not(None),
        )
        .limit(1)
    ).first()


def _current_of(session: Session, form_id: int, *where) -> Row | None:
    """The current version of the form's submission that ``where`` names, if stored."""
    return session.execute(
        select(SUBMISSIONS.c.id, SUBMISSIONS.c.instance_id, SUBMISSIONS.c.logical_id).where(
            SUBMISSIONS.c.form_id == form_id, SUBMISSIONS.c.current.is_(True), *where
        )
    ).first()


def _replace_version(
    session: Session,
    form_id: int,
    deprecated_id: str,
    incoming: IncomingSubmission,
    instance_id: str,
) -> str:
    """Retire the version an edit replaces; returns the logical id the edit continues.

    A pulled edit whose older version never reached us (``incoming.pull_source_id`` set) is
    accepted: it replaces the current version of its root, or of the submission that lives at the
    same place on the server (Kobo keeps an edit under the same ``_id``; kpi's API gives only the
    last of two edits made between pulls), and otherwise starts a new logical submission.
    """
    old = _by_instance_id(session, form_id, deprecated_id)
    if old is None and incoming.pull_source_id is not None:
        if incoming.root_id is not None:
            old = _current_of(session, form_id, SUBMISSIONS.c.logical_id == incoming.root_id)
        if old is None and incoming.remote_id is not None:
            old = _current_of(
                session, form_id,
                SUBMISSIONS.c.pull_source_id == incoming.pull_source_id,
                SUBMISSIONS.c.remote_id == incoming.remote_id,
            )  # fmt: skip
        if old is None:
            return incoming.root_id or instance_id
    if old is None:
        raise problem("submission.deprecated_unknown", deprecated_id=deprecated_id)
    # conditional update: of two edits racing to replace the same version, exactly one wins
    retired = session.execute(
        update(SUBMISSIONS)
        .where(SUBMISSIONS.c.id == old.id, SUBMISSIONS.c.current.is_(True))
        .values(current=False)
    ).rowcount
    if retired != 1:
        raise problem("submission.deprecated_replaced", deprecated_id=deprecated_id)
    stop_counting(session, [old.id])
    return old.logical_id


def stop_counting(session: Session, submission_ids: list[int]) -> None:
    """The visits and reports of versions another replaced stop counting (history stays), and
    the kept facts with them (:mod:`clms.facts`)."""
    for model in (Visit, Report):
        table = model.__table__
        session.execute(
            update(table).where(table.c.submission_id.in_(submission_ids)).values(current=False)
        )
    refresh_submissions(session, submission_ids)


def _add_attachments(
    session: Session, submission_id: int, files: list[Attachment], have: set[str]
) -> int:
    """Keep every file not in ``have`` (the names already stored); a stored file is not replaced.

    A concurrent retry adding the same file makes the INSERT violate the unique name; the caller
    retries the transaction and then finds the file.
    """
    rows = []
    for f in files:
        if f.name in have:
            continue
        have.add(f.name)
        rows.append(
            {
                "submission_id": submission_id,
                "name": f.name,
                "content_type": f.content_type or "application/octet-stream",
                "data": f.data,
                "sha256": hashlib.sha256(f.data).hexdigest(),
                "size": len(f.data),
            }
        )
    if rows:
        session.execute(_INSERT_ATTACHMENT, rows)
    return len(rows)
