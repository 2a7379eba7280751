"""ODK form encryption on the server: form keys, receiving encrypted submissions, decrypting them.

The cryptography is in :mod:`forms.crypto` (pure); this module stores and reads.

* :func:`generate_form_key` makes a form's key pair (the private key encrypted with the operator's
  passphrase, which is never stored nor logged) and publishes a new version of the form carrying
  the public key, so phones that download it start encrypting.
* :func:`read_manifest` and :func:`keep_manifest` are called by :mod:`forms.ingest` for every way a
  submission arrives (OpenRosa push, Central or Kobo pull): an encryption manifest is stored as
  received, with status ``encrypted`` ("waiting for the key"), and its ``*.enc`` files are kept as
  attachments (they may arrive over several POSTs, as ODK Collect splits large submissions).
* :func:`unlock_keys`, :func:`waiting_submissions` and :func:`decrypt_one` are the steps of
  decrypting the waiting submissions of a form with the keys the passphrase unlocks; the run
  (``clms.intake.decrypt.decrypt_pending``) gives each submission its own transaction, then runs
  the normal processing exactly as for a plaintext submission. One that cannot be decrypted is
  reported by instanceID with the reason and stays waiting, its encrypted original untouched.

Nothing here commits: the caller's transaction is the boundary.
"""

from __future__ import annotations

import hashlib
import mimetypes
from dataclasses import dataclass, field

from sqlalchemy import Row, func, select, update
from sqlalchemy.orm import Session

from clms.errors import DomainProblem, problem
from clms.models import (
    EncryptedSubmission,
    Form,
    FormKey,
    Submission,
    SubmissionAttachment,
    User,
    utcnow,
)
from forms import crypto
from forms.parse import OUR_FORMS

SUBMISSIONS = Submission.__table__
ATTACHMENTS = SubmissionAttachment.__table__
ENCRYPTED = EncryptedSubmission.__table__


class FormKeyError(DomainProblem):
    """A form key cannot be made or used; the message says why, for a person (``form.not_found``,
    ``form.no_live_version``, ``form.key_exists``, ``form.no_key``, ``form.none_encrypted``)."""


# --- keys -------------------------------------------------------------------------------------


def active_key(session: Session, form_id: int) -> FormKey | None:
    """The key new versions of the form carry, or None when the form is not encrypted."""
    return session.scalar(select(FormKey).where(FormKey.form_id == form_id, FormKey.active))


def generate_form_key(
    session: Session,
    form: Form,
    passphrase: str,
    actor: User | str | None = None,
    replace: bool = False,
    bits: int = crypto.RSA_BITS,
) -> FormKey:
    """Give ``form`` a new key pair and publish a version of it carrying the public key.

    ``replace`` retires the form's active key (kept, to decrypt what was sent with it). Writes an
    audit entry; flushes, the caller commits. Raises :class:`ValueError` for a short passphrase
    and :class:`FormKeyError` when the form already has a key and ``replace`` is not given.
    """
    from clms.audit import record
    from forms.publish import publish_with_key

    crypto.check_passphrase(passphrase)
    if form.live_version is None:
        raise FormKeyError(key="form.no_live_version", form_id=form.xml_form_id)
    old = active_key(session, form.id)
    if old is not None and not replace:
        raise FormKeyError(
            key="form.key_exists", form_id=form.xml_form_id, fingerprint=old.fingerprint[:16]
        )
    pair = crypto.generate_key_pair(passphrase, bits=bits)
    if old is not None:
        old.active, old.retired_at = False, utcnow()
        session.flush()  # one active key per form: the old one steps down first
    key = FormKey(
        form_id=form.id,
        public_key=pair.public_key,
        private_key_pem=pair.private_key_pem,
        fingerprint=pair.fingerprint,
        active=True,
        created_by_id=actor.id if isinstance(actor, User) else None,
    )
    session.add(key)
    session.flush()
    version = publish_with_key(session, form, key, published_by=actor)
    record(
        session,
        actor,
        "form.key_generate",
        target=f"form:{form.xml_form_id}",
        fingerprint=key.fingerprint,
        bits=bits,
        replaced=old.fingerprint if old is not None else None,
        version=version.version,
    )
    return key


def waiting_count(session: Session, form_id: int) -> int:
    """How many submissions of the form wait for its key."""
    return session.scalar(
        select(func.count()).where(ENCRYPTED.c.form_id == form_id, ENCRYPTED.c.state == "waiting")
    )


# --- receiving (called by forms.ingest) -----------------------------------------------------------


def read_manifest(root) -> crypto.Manifest | None:
    """The manifest of an encrypted submission, None for a plaintext one; a manifest that misses
    a part is refused with ``submission.encrypted_invalid``."""
    if not crypto.is_encrypted(root):
        return None
    try:
        return crypto.parse_manifest(root)
    except crypto.DecryptionError as e:
        raise problem("submission.encrypted_invalid", detail=str(e)) from e


def check_form_encrypted(session: Session, form: Row) -> None:
    """Refuse an encrypted submission for a form that holds no key: nobody could ever read it."""
    has_key = session.scalar(select(func.count()).where(FormKey.form_id == form.id))
    if not has_key:
        raise problem("submission.encrypted_no_key", form_id=form.xml_form_id)


def keep_manifest(
    session: Session, submission_id: int, form_id: int, manifest_xml: bytes, digest: str
) -> None:
    """Mark a just-stored submission as encrypted and waiting for the key."""
    session.execute(
        ENCRYPTED.insert(),
        {
            "submission_id": submission_id,
            "form_id": form_id,
            "manifest": manifest_xml,
            "manifest_sha256": digest,
            "state": "waiting",
        },
    )


def is_manifest_of(session: Session, submission_id: int, digest: str) -> bool:
    """Whether ``digest`` is the sha256 of the manifest the submission arrived as (a phone
    re-sending an encrypted submission that was decrypted meanwhile is a retry, not a conflict)."""
    return (
        session.scalar(
            select(ENCRYPTED.c.manifest_sha256).where(ENCRYPTED.c.submission_id == submission_id)
        )
        == digest
    )


# --- decrypting -----------------------------------------------------------------------------------


@dataclass
class DecryptResult:
    """What decrypting (``clms.intake.decrypt.decrypt_pending``) did."""

    forms: list[str] = field(default_factory=list)  # the forms whose keys the passphrase opened
    decrypted: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)  # (instanceID, why)
    parsed: int = 0
    review: int = 0

    @property
    def attempted(self) -> int:
        return self.decrypted + len(self.failed)


def waiting_submissions(session: Session, form_ids: list[int]) -> list[tuple[int, int]]:
    """The submissions of ``form_ids`` waiting for their key, as (submission id, form id), in order
    of arrival."""
    return [
        (submission_id, form_id)
        for submission_id, form_id in session.execute(
            select(ENCRYPTED.c.submission_id, ENCRYPTED.c.form_id)
            .where(ENCRYPTED.c.state == "waiting", ENCRYPTED.c.form_id.in_(form_ids))
            .order_by(ENCRYPTED.c.submission_id)
        )
    ]


def unlock_keys(
    session: Session, passphrase: str, xml_form_id: str | None, actor, result: DecryptResult
) -> dict[int, list[tuple[int, object]]] | None:
    """Per form id, the (key id, private key) pairs the passphrase opens, active key first (of
    ``xml_form_id``, or of every form with a key); None when it opens none (an audit entry
    records the refused attempt). The forms opened go to ``result.forms``. Raises
    :class:`FormKeyError` for an unknown form or a form without a key. Flushes, never commits."""
    from clms.audit import record

    query = select(FormKey, Form.xml_form_id).join(Form, Form.id == FormKey.form_id)
    if xml_form_id is not None:
        form_id = session.scalar(select(Form.id).where(Form.xml_form_id == xml_form_id))
        if form_id is None:
            raise FormKeyError(key="form.not_found", form_id=xml_form_id)
        query = query.where(FormKey.form_id == form_id)
    rows = session.execute(query.order_by(FormKey.active.desc(), FormKey.id.desc())).all()
    if not rows:
        if xml_form_id:
            raise FormKeyError(key="form.no_key", form_id=xml_form_id)
        raise FormKeyError(key="form.none_encrypted")
    keys: dict[int, list[tuple[int, object]]] = {}
    for key, form_code in rows:
        try:
            private = crypto.unlock_private_key(key.private_key_pem, passphrase)
        except crypto.DecryptionError:
            continue
        keys.setdefault(key.form_id, []).append((key.id, private))
        if form_code not in result.forms:
            result.forms.append(form_code)
    if not keys:
        record(
            session,
            actor,
            "form.decrypt_refused",
            target=f"form:{xml_form_id}" if xml_form_id else None,
            why="wrong passphrase",
        )
        return None
    return keys


def decrypt_one(
    session: Session,
    submission_id: int,
    keys: list[tuple[int, object]],
    actor_id: int | None,
    result: DecryptResult,
) -> None:
    """Decrypt one waiting submission and put its plaintext in place (counted in ``result``); one
    that cannot be decrypted keeps the reason (``last_error``) and is listed in ``result.failed``.
    Meant to be its submission's own transaction; flushes, never commits."""
    from forms.xmlsafe import parse_xml

    row = session.execute(
        select(
            ENCRYPTED.c.manifest, SUBMISSIONS.c.instance_id, SUBMISSIONS.c.form_id,
            Form.xml_form_id,
        )
        .join(SUBMISSIONS, SUBMISSIONS.c.id == ENCRYPTED.c.submission_id)
        .join(Form, Form.id == SUBMISSIONS.c.form_id)
        .where(ENCRYPTED.c.submission_id == submission_id, ENCRYPTED.c.state == "waiting")
    ).first()  # fmt: skip
    if row is None:  # decrypted meanwhile by another run
        return
    try:
        manifest = crypto.parse_manifest(parse_xml(row.manifest))
        files = dict(
            session.execute(
                select(ATTACHMENTS.c.name, ATTACHMENTS.c.data).where(
                    ATTACHMENTS.c.submission_id == submission_id,
                    ATTACHMENTS.c.name.in_(manifest.files),
                )
            ).all()
        )
        plain = crypto.decrypt_submission([k for _, k in keys], manifest, files)
    except crypto.DecryptionError as e:
        # nothing was written yet: the reason is the transaction's only change
        session.execute(
            update(ENCRYPTED)
            .where(ENCRYPTED.c.submission_id == submission_id)
            .values(last_error=str(e)[:1000])
        )
        result.failed.append((row.instance_id, str(e)))
        return
    # conditional: of two runs decrypting the same submission, exactly one puts it in place
    claimed = session.execute(
        update(ENCRYPTED)
        .where(ENCRYPTED.c.submission_id == submission_id, ENCRYPTED.c.state == "waiting")
        .values(
            state="decrypted",
            form_key_id=keys[plain.key_index][0],
            decrypted_at=utcnow(),
            decrypted_by_id=actor_id,
            last_error=None,
        )
    ).rowcount
    if claimed != 1:  # the conditional update changed nothing: there is nothing to undo
        return
    session.execute(
        update(SUBMISSIONS)
        .where(SUBMISSIONS.c.id == submission_id)
        .values(
            xml=plain.xml,
            xml_sha256=hashlib.sha256(plain.xml).hexdigest(),
            # from here on exactly as a plaintext submission: our forms wait for the processing job
            status="received" if row.xml_form_id in OUR_FORMS else "raw",
        )
    )
    have = set(
        session.scalars(
            select(ATTACHMENTS.c.name).where(ATTACHMENTS.c.submission_id == submission_id)
        )
    )
    media = [
        {
            "submission_id": submission_id,
            "name": name,
            "content_type": mimetypes.guess_type(name)[0] or "application/octet-stream",
            "data": data,
            "sha256": hashlib.sha256(data).hexdigest(),
            "size": len(data),
            "received_at": utcnow(),
        }
        for name, data in plain.media
        if name not in have
    ]
    if media:
        session.execute(ATTACHMENTS.insert(), media)
    result.decrypted += 1
