"""Forms and what they bring: forms and their versions and media, submissions and their files,
the ODK Central and KoboToolbox sources they are pulled from, and ODK form encryption.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from clms.db import Base
from clms.models.base import JSONType, UTCDateTime, utcnow

if TYPE_CHECKING:
    from clms.models.people import User


# --- forms -------------------------------------------------------------------------------------


class Form(Base):
    """A form by its XForm id (``xmlFormId``); its versions are kept for ever."""

    __tablename__ = "forms"
    id: Mapped[int] = mapped_column(primary_key=True)
    xml_form_id: Mapped[str] = mapped_column(String(200), unique=True)
    title: Mapped[str] = mapped_column(String(300))
    # "open": listed and accepting; "closing": accepting but not listed; "closed": neither
    state: Mapped[str] = mapped_column(String(10), default="open")
    live_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("form_versions.id", use_alter=True, name="fk_forms_live_version")
    )
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    live_version: Mapped[FormVersion | None] = relationship(foreign_keys=[live_version_id])
    area_ids: Mapped[list[FormArea]] = relationship(cascade="all, delete-orphan")


class FormArea(Base):
    """Restricts a form to monitors of these areas; a form without rows is for every monitor."""

    __tablename__ = "form_areas"
    form_id: Mapped[int] = mapped_column(
        ForeignKey("forms.id", ondelete="CASCADE"), primary_key=True
    )
    area_id: Mapped[int] = mapped_column(ForeignKey("areas.id"), primary_key=True)


class FormVersion(Base):
    """One published version of a form: the exact XForm bytes served to phones, and its source."""

    __tablename__ = "form_versions"
    id: Mapped[int] = mapped_column(primary_key=True)
    form_id: Mapped[int] = mapped_column(ForeignKey("forms.id"), index=True)
    version: Mapped[str] = mapped_column(String(100))
    xml: Mapped[bytes] = mapped_column(LargeBinary)
    md5: Mapped[str] = mapped_column(String(32))
    source_name: Mapped[str] = mapped_column(String(300), default="")
    source: Mapped[bytes | None] = mapped_column(LargeBinary)
    warnings: Mapped[list] = mapped_column(JSONType, default=list)
    media_files: Mapped[list] = mapped_column(JSONType, default=list)  # names the form references
    published_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    published_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    form: Mapped[Form] = relationship(foreign_keys=[form_id])
    __table_args__ = (UniqueConstraint("form_id", "version", name="uq_form_versions_version"),)


class FormAttachment(Base):
    """A static media file uploaded for a form that is not ours (ours build theirs per monitor)."""

    __tablename__ = "form_attachments"
    id: Mapped[int] = mapped_column(primary_key=True)
    form_version_id: Mapped[int] = mapped_column(ForeignKey("form_versions.id"), index=True)
    name: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(100))
    data: Mapped[bytes] = mapped_column(LargeBinary)
    md5: Mapped[str] = mapped_column(String(32))
    __table_args__ = (UniqueConstraint("form_version_id", "name", name="uq_form_attachment"),)


# --- submissions -------------------------------------------------------------------------------


class Submission(Base):
    """One received version of a submission, its XML kept byte for byte.

    ``logical_id`` is the instanceID of the first version; an edit (``deprecatedID``) adds a row
    with the same ``logical_id`` and clears ``current`` on the one it replaces.
    """

    __tablename__ = "submissions"
    id: Mapped[int] = mapped_column(primary_key=True)
    instance_id: Mapped[str] = mapped_column(String(255))
    logical_id: Mapped[str] = mapped_column(String(255), index=True)
    deprecated_id: Mapped[str | None] = mapped_column(String(255))
    current: Mapped[bool] = mapped_column(Boolean, default=True)
    form_id: Mapped[int] = mapped_column(ForeignKey("forms.id"), index=True)
    form_version_id: Mapped[int] = mapped_column(ForeignKey("form_versions.id"))
    xml: Mapped[bytes] = mapped_column(LargeBinary)
    xml_sha256: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    source: Mapped[str] = mapped_column(String(20))  # openrosa, central, kobo
    submitter_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    device_id: Mapped[str | None] = mapped_column(String(200))
    # parsed: our form, understood; review: stored, needs a person (reasons in review_reasons);
    # raw: a form that is not ours, kept and listed; encrypted: waiting for its form's key;
    # rejected: a reviewer rejected it (final, never processed); corrected: a reviewer made a new
    # version of it (forms.decisions), which replaced it
    status: Mapped[str] = mapped_column(String(10))
    review_reasons: Mapped[list] = mapped_column(JSONType, default=list)
    # the codes of the reasons a reviewer accepted (forms.reasons): processing holds it no more
    # for them
    accepted_reasons: Mapped[list] = mapped_column(JSONType, default=list)
    # Withdrawn by the server it was pulled from (clms.intake.withdraw): deleted there, rejected by
    # a Central reviewer, or "not approved" in Kobo. Never erased: the rows stay, its visits stop
    # counting (their ``current`` is cleared), and a restore there brings them back.
    withdrawn_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    withdrawn_reason: Mapped[str | None] = mapped_column(String(20))
    # where a pulled submission lives on its server: the source, and its id there (Central: the
    # rootId of its edit chain; Kobo: the integer _id, as text); the review state it has there
    pull_source_id: Mapped[int | None] = mapped_column(
        ForeignKey(
            "pull_sources.id",
            ondelete="SET NULL",
            name="fk_submissions_pull_source",
        )
    )
    remote_id: Mapped[str | None] = mapped_column(String(255))
    remote_review_state: Mapped[str | None] = mapped_column(String(40))
    form: Mapped[Form] = relationship()
    form_version: Mapped[FormVersion] = relationship()
    submitter: Mapped[User | None] = relationship()
    attachments: Mapped[list[SubmissionAttachment]] = relationship(
        back_populates="submission", order_by="SubmissionAttachment.name"
    )
    # instanceIDs are unique per form, as in ODK Central (its own test data reuses "one", "two")
    __table_args__ = (
        UniqueConstraint("form_id", "instance_id", name="uq_submissions_instance"),
        UniqueConstraint("form_id", "deprecated_id", name="uq_submissions_deprecated"),
        Index("ix_submissions_status_current", "status", "current"),
        Index("ix_submissions_remote", "pull_source_id", "remote_id"),
        CheckConstraint(
            "withdrawn_reason IN ('deleted','rejected','not_approved')",
            name="ck_submissions_withdrawn_reason",
        ),
    )


class SubmissionReview(Base):
    """A reviewer's decision on a submission held for review (:mod:`forms.decisions`): a
    correction (``field`` changed from ``old_value`` to ``new_value``, making the version
    ``new_submission_id``), an acceptance as it is (``accepted`` codes), or a rejection. Kept for
    ever, by the submission's logical id so the history follows every version."""

    __tablename__ = "submission_reviews"
    id: Mapped[int] = mapped_column(primary_key=True)
    logical_id: Mapped[str] = mapped_column(String(255))
    form_id: Mapped[int] = mapped_column(ForeignKey("forms.id"))
    submission_id: Mapped[int] = mapped_column(ForeignKey("submissions.id"))
    action: Mapped[str] = mapped_column(String(10))  # correct, accept, reject
    reason: Mapped[str] = mapped_column(Text, default="")
    field: Mapped[str | None] = mapped_column(String(255))
    old_value: Mapped[str | None] = mapped_column(Text)
    new_value: Mapped[str | None] = mapped_column(Text)
    new_submission_id: Mapped[int | None] = mapped_column(ForeignKey("submissions.id"))
    accepted: Mapped[list] = mapped_column(JSONType, default=list)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor: Mapped[User | None] = relationship()
    __table_args__ = (
        CheckConstraint(
            "action IN ('correct','accept','reject')", name="ck_submission_reviews_action"
        ),
        # one decision per version: a second reviewer's (or a double post's) is refused
        UniqueConstraint("submission_id", name="uq_submission_reviews_submission"),
        Index("ix_submission_reviews_logical", "form_id", "logical_id"),
    )


class SubmissionAttachment(Base):
    """A file that came with a submission (photo, audio, encrypted part), kept unchanged."""

    __tablename__ = "submission_attachments"
    id: Mapped[int] = mapped_column(primary_key=True)
    submission_id: Mapped[int] = mapped_column(ForeignKey("submissions.id"), index=True)
    name: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(100))
    data: Mapped[bytes] = mapped_column(LargeBinary)
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    submission: Mapped[Submission] = relationship(back_populates="attachments")
    __table_args__ = (UniqueConstraint("submission_id", "name", name="uq_submission_attachment"),)


# --- pulling from ODK Central and KoboToolbox ----------------------------------------------------


class PullSource(Base):
    """A project form on ODK Central or an asset on KoboToolbox whose submissions we pull.

    ``credentials`` is encrypted (see :mod:`forms.pull`); it is never logged or shown back.
    ``cursor`` is the submission time of the newest submission pulled so far.
    """

    __tablename__ = "pull_sources"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    kind: Mapped[str] = mapped_column(String(10))  # central or kobo
    base_url: Mapped[str] = mapped_column(String(500))
    project_id: Mapped[str | None] = mapped_column(String(100))  # Central project id
    remote_form_id: Mapped[str] = mapped_column(String(200))  # Central xmlFormId / Kobo asset uid
    credentials: Mapped[bytes] = mapped_column(LargeBinary)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    cursor: Mapped[str | None] = mapped_column(String(64))
    # Central: the newest updatedAt or deletedAt seen, for edits, review states and deletions
    changes_cursor: Mapped[str | None] = mapped_column(String(64))
    last_pull_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_success_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    pulled_total: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    __table_args__ = (CheckConstraint("kind IN ('central','kobo')", name="ck_pull_sources_kind"),)


class PullRetry(Base):
    """A submission a pull could not take: it waits here with its reason, shown to admins, and
    every pull of the source tries it again; the cursor moves on without losing it."""

    __tablename__ = "pull_retries"
    id: Mapped[int] = mapped_column(primary_key=True)
    source_id: Mapped[int] = mapped_column(
        ForeignKey("pull_sources.id", ondelete="CASCADE"), index=True
    )
    remote_id: Mapped[str] = mapped_column(String(255))  # what the server fetches it by
    instance_id: Mapped[str | None] = mapped_column(String(255))
    submitted_at: Mapped[str | None] = mapped_column(String(64))  # as the server wrote it
    code: Mapped[str] = mapped_column(String(60))
    message: Mapped[str] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    first_failed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_tried_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    source: Mapped[PullSource] = relationship()
    __table_args__ = (UniqueConstraint("source_id", "remote_id", name="uq_pull_retries_remote"),)


# --- ODK form encryption -------------------------------------------------------------------------


class FormKey(Base):
    """An ODK encryption key pair of a form (:mod:`forms.crypto`).

    The public key goes into every version of the form (``base64RsaPublicKey``); the private key
    is kept only as PKCS#8 PEM encrypted with the operator's passphrase, which is never stored. A
    form has at most one ``active`` key, the one new versions carry; older keys stay to decrypt
    the submissions made with them.
    """

    __tablename__ = "form_keys"
    id: Mapped[int] = mapped_column(primary_key=True)
    form_id: Mapped[int] = mapped_column(ForeignKey("forms.id"), index=True)
    public_key: Mapped[str] = mapped_column(Text)  # base64 DER SubjectPublicKeyInfo
    private_key_pem: Mapped[bytes] = mapped_column(LargeBinary)  # encrypted PKCS#8
    fingerprint: Mapped[str] = mapped_column(String(64))  # sha256 of the DER public key
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    retired_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_by: Mapped[User | None] = relationship()
    __table_args__ = (
        Index(
            "uq_form_keys_one_active",
            "form_id",
            unique=True,
            sqlite_where=text("active"),
            postgresql_where=text("active"),
        ),
    )


class EncryptedSubmission(Base):
    """The encryption manifest of a submission that arrived encrypted, kept as received.

    Until it is decrypted (``waiting``) the submission's status is ``encrypted`` and its XML is
    this manifest; decrypting (``forms.encryption``) puts the plaintext XML on the submission and
    sends it through the normal processing, and this row keeps the manifest, the key that opened
    it and when. The ``*.enc`` files stay among the submission's attachments either way.
    """

    __tablename__ = "encrypted_submissions"
    submission_id: Mapped[int] = mapped_column(ForeignKey("submissions.id"), primary_key=True)
    form_id: Mapped[int] = mapped_column(ForeignKey("forms.id"))
    manifest: Mapped[bytes] = mapped_column(LargeBinary)
    manifest_sha256: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(10), default="waiting")  # waiting, decrypted
    form_key_id: Mapped[int | None] = mapped_column(ForeignKey("form_keys.id"))
    decrypted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    decrypted_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    last_error: Mapped[str | None] = mapped_column(Text)  # why the last attempt failed
    __table_args__ = (
        CheckConstraint("state IN ('waiting','decrypted')", name="ck_encrypted_submissions_state"),
        Index("ix_encrypted_submissions_form_state", "form_id", "state"),
    )
