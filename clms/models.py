"""The data model (SQLAlchemy 2.0, typed). Schema changes go through Alembic migrations.

Personal data (names, dates of birth, coordinates, free text) lives only in the child-level tables
(``households``, ``children``, ``child_visits``, ``visits``, ``reports``) and in the raw
submissions; everything that leaves officer scope uses the pseudonymous ``Child.child_uid``.
"""

from __future__ import annotations

import datetime as dt
import secrets

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from clms.cases import workflow
from clms.db import Base

ROLES = ("monitor", "officer", "supervisor", "provider", "brand", "admin")
AREA_LEVELS = ("country", "region", "department", "district", "subdistrict")


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on every backend (SQLite keeps no zone of its own)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use clms.models.utcnow()")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


JSONType = JSON().with_variant(JSONB(), "postgresql")


def utcnow() -> dt.datetime:
    """The current time, aware, in UTC."""
    return dt.datetime.now(dt.UTC)


_UID_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"


def new_child_uid() -> str:
    """A pseudonymous child id, random so it reveals nothing about the child: ``CH-`` + 10 chars."""
    # 32 symbols, no 0/O/1/I (read aloud over a phone): 5 random bits each, 50 bits in all
    return "CH-" + "".join(_UID_ALPHABET[b & 31] for b in secrets.token_bytes(10))


# --- places and supply chain -------------------------------------------------------------------


class Area(Base):
    """An administrative area (country > region > department/district)."""

    __tablename__ = "areas"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    level: Mapped[str] = mapped_column(String(20))
    country_code: Mapped[str] = mapped_column(String(3))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("areas.id"), index=True)
    # the boundary as WKB in EPSG:4326 (longitude, latitude), from an imported boundary file
    geom: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)
    parent: Mapped[Area | None] = relationship(remote_side=[id])


class Village(Base):
    """A village or locality where households are visited."""

    __tablename__ = "villages"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    area_id: Mapped[int] = mapped_column(ForeignKey("areas.id"), index=True)
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    # the village's land as WKB in EPSG:4326: an imported polygon ("polygon"), or the cell of the
    # points nearer this village than any other, clipped to its administrative area ("voronoi")
    cell: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)
    cell_kind: Mapped[str | None] = mapped_column(String(10))
    area: Mapped[Area] = relationship()


class Brand(Base):
    """A buyer whose supply chain is monitored."""

    __tablename__ = "brands"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))


class Supplier(Base):
    """A processor, trader, cooperative or farmer group at a tier of the supply chain."""

    __tablename__ = "suppliers"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    tier: Mapped[int] = mapped_column(Integer)
    # what it is: processor, exporter, trader, cooperative, farmer group, ... (free words)
    kind: Mapped[str | None] = mapped_column(String(40))
    __table_args__ = (CheckConstraint("tier >= 1", name="ck_suppliers_tier"),)


class BrandSupplier(Base):
    """A brand buys directly from a supplier (usually tier 1)."""

    __tablename__ = "brand_suppliers"
    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id"), primary_key=True)
    supplier_id: Mapped[int] = mapped_column(ForeignKey("suppliers.id"), primary_key=True)


class SupplierLink(Base):
    """A supplier (the buyer) buys from another (the seller), one tier further from the brand.

    The links form a directed graph without cycles (checked when they are written); a brand's
    scope is every supplier reachable from its direct suppliers along them.
    """

    __tablename__ = "supplier_links"
    buyer_id: Mapped[int] = mapped_column(ForeignKey("suppliers.id"), primary_key=True)
    seller_id: Mapped[int] = mapped_column(ForeignKey("suppliers.id"), primary_key=True, index=True)
    __table_args__ = (CheckConstraint("buyer_id <> seller_id", name="ck_supplier_links_self"),)


class SupplierVillage(Base):
    """A supplier buys from households in a village: which suppliers a monitor's form lists."""

    __tablename__ = "supplier_villages"
    supplier_id: Mapped[int] = mapped_column(ForeignKey("suppliers.id"), primary_key=True)
    village_id: Mapped[int] = mapped_column(ForeignKey("villages.id"), primary_key=True)


# --- people and access -------------------------------------------------------------------------


class User(Base):
    """A person who signs in: monitor, officer, supervisor, provider, brand or admin."""

    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(80), unique=True)
    full_name: Mapped[str] = mapped_column(String(200), default="")
    email: Mapped[str | None] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    password_hash: Mapped[str] = mapped_column(String(300))
    # HTTP Digest needs md5(username:realm:password); ODK Collect offers Digest on plain http.
    # It is password-equivalent for that realm only and is stored like the password hash.
    digest_ha1: Mapped[str | None] = mapped_column(String(64))
    digest_realm: Mapped[str | None] = mapped_column(String(100))
    brand_id: Mapped[int | None] = mapped_column(ForeignKey("brands.id"))
    # the organisation a provider works for: they see only the referrals sent to it
    provider_id: Mapped[int | None] = mapped_column(
        ForeignKey("service_providers.id", name="fk_users_provider")
    )
    locale: Mapped[str | None] = mapped_column(String(5))  # en or fr; None: from the browser
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    # web sessions carry the epoch they began in; signing out, a new password and deactivation
    # raise it, which ends every session begun before (clms.auth.sessions)
    session_epoch: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # loaded when used: the submission path checks scope with one query (clms.scope)
    scopes: Mapped[list[UserScope]] = relationship(cascade="all, delete-orphan")
    brand: Mapped[Brand | None] = relationship()
    provider: Mapped[ServiceProvider | None] = relationship()
    __table_args__ = (
        CheckConstraint(
            "role IN ('monitor','officer','supervisor','provider','brand','admin')",
            name="ck_users_role",
        ),
    )


class UserScope(Base):
    """An area or a village a monitor, officer or supervisor works in (exactly one of the two)."""

    __tablename__ = "user_scopes"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    area_id: Mapped[int | None] = mapped_column(ForeignKey("areas.id"))
    village_id: Mapped[int | None] = mapped_column(ForeignKey("villages.id"))
    __table_args__ = (
        CheckConstraint(
            "(area_id IS NULL) <> (village_id IS NULL)", name="ck_user_scopes_one_target"
        ),
    )


class ApiToken(Base):
    """A bearer token for the JSON API, or a device token for OpenRosa URLs (``/key/<token>/``).

    Only the SHA-256 of the token is stored: a stolen database does not give working tokens.
    """

    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(10))  # "api" or "device"
    label: Mapped[str] = mapped_column(String(200), default="")
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    user: Mapped[User] = relationship()


class DigestNonce(Base):
    """A Digest nonce that has been used, with the highest request count (``nc``) seen with it
    (clms.openrosa.auth): a (nonce, nc) pair is accepted once, so a captured Authorization header
    cannot be sent again. Kept until the nonce expires; every gunicorn worker sees the same rows.
    """

    __tablename__ = "digest_nonces"
    nonce: Mapped[str] = mapped_column(String(200), primary_key=True)
    nc: Mapped[int] = mapped_column(Integer)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)


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
    # raw: a form that is not ours, kept and listed
    status: Mapped[str] = mapped_column(String(10))
    review_reasons: Mapped[list] = mapped_column(JSONType, default=list)
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


# --- households, visits, children --------------------------------------------------------------


class Household(Base):
    """A farming or working household, by the code monitors keep across visits."""

    __tablename__ = "households"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(100), unique=True)
    village_id: Mapped[int | None] = mapped_column(ForeignKey("villages.id"), index=True)
    supplier_id: Mapped[int | None] = mapped_column(ForeignKey("suppliers.id"), index=True)
    head_name: Mapped[str | None] = mapped_column(String(200))
    first_visit_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_visit_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    village: Mapped[Village | None] = relationship()
    supplier: Mapped[Supplier | None] = relationship()


class Visit(Base):
    """A household visit or a case follow-up, parsed from one submission version."""

    __tablename__ = "visits"
    id: Mapped[int] = mapped_column(primary_key=True)
    submission_id: Mapped[int] = mapped_column(ForeignKey("submissions.id"), unique=True)
    kind: Mapped[str] = mapped_column(String(12))  # household or followup
    # False once an edit replaced this version: history stays, counts use current visits only
    current: Mapped[bool] = mapped_column(Boolean, default=True)
    household_id: Mapped[int | None] = mapped_column(ForeignKey("households.id"), index=True)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), index=True)
    # the village the GPS point falls in (spatial join), else the village chosen in the form
    village_id: Mapped[int | None] = mapped_column(ForeignKey("villages.id"), index=True)
    # the village chosen in the form; how village_id was found ("gps" or "form"); the distance in
    # km from the GPS point to the chosen village (flagged for review when too far)
    form_village_id: Mapped[int | None] = mapped_column(
        ForeignKey("villages.id", name="fk_visits_form_village")
    )
    village_source: Mapped[str | None] = mapped_column(String(4))
    gps_distance_km: Mapped[float | None] = mapped_column(Float)
    supplier_id: Mapped[int | None] = mapped_column(ForeignKey("suppliers.id"), index=True)
    monitor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    visited_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    device_id: Mapped[str | None] = mapped_column(String(200))
    consent: Mapped[bool | None] = mapped_column(Boolean)
    child_present: Mapped[bool | None] = mapped_column(Boolean)
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    altitude: Mapped[float | None] = mapped_column(Float)
    accuracy: Mapped[float | None] = mapped_column(Float)
    services_received: Mapped[list] = mapped_column(JSONType, default=list)
    notes: Mapped[str | None] = mapped_column(Text)
    household: Mapped[Household | None] = relationship()
    village: Mapped[Village | None] = relationship(foreign_keys=[village_id])
    supplier: Mapped[Supplier | None] = relationship()
    monitor: Mapped[User | None] = relationship()
    submission: Mapped[Submission] = relationship()
    child_visits: Mapped[list[ChildVisit]] = relationship(
        back_populates="visit", order_by="ChildVisit.position"
    )


class Child(Base):
    """A child, recognised across visits by household + name + birth year.

    ``child_uid`` is the pseudonymous id used everywhere outside officer scope.
    """

    __tablename__ = "children"
    id: Mapped[int] = mapped_column(primary_key=True)
    child_uid: Mapped[str] = mapped_column(String(20), unique=True, default=new_child_uid)
    household_id: Mapped[int] = mapped_column(ForeignKey("households.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    name_key: Mapped[str] = mapped_column(String(200))  # case- and accent-folded, for matching
    sex: Mapped[str | None] = mapped_column(String(10))
    birth_year: Mapped[int | None] = mapped_column(Integer)
    birth_year_exact: Mapped[bool] = mapped_column(Boolean, default=False)  # from a date of birth
    dob: Mapped[dt.date | None] = mapped_column(Date)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    # set when an officer found this record to be the same child as another (see ChildMerge):
    # everything it had now belongs to that child, and a later visit that names it goes there too
    merged_into_id: Mapped[int | None] = mapped_column(
        ForeignKey("children.id", name="fk_children_merged_into")
    )
    # set when the child's personal data was removed (clms.dataprotection): by the retention
    # policy ("retention") or on a lawful request ("erasure"); what remains is aggregate facts
    anonymised_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    anonymised_why: Mapped[str | None] = mapped_column(String(10))
    household: Mapped[Household] = relationship()
    __table_args__ = (Index("ix_children_identity", "household_id", "name_key"),)


class ChildVisit(Base):
    """What one visit found about one child: the facts the classifier reads."""

    __tablename__ = "child_visits"
    id: Mapped[int] = mapped_column(primary_key=True)
    visit_id: Mapped[int] = mapped_column(ForeignKey("visits.id"), index=True)
    child_id: Mapped[int] = mapped_column(ForeignKey("children.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)  # 1-based repeat index in the submission
    age: Mapped[int | None] = mapped_column(Integer)
    sex: Mapped[str | None] = mapped_column(String(10))
    relationship_to_head: Mapped[str | None] = mapped_column(String(30))
    attends_school: Mapped[bool | None] = mapped_column(Boolean)
    work_activities: Mapped[list] = mapped_column(JSONType, default=list)
    work_hours_7d: Mapped[int | None] = mapped_column(Integer)
    chore_hours_7d: Mapped[int | None] = mapped_column(Integer)
    hazards: Mapped[list] = mapped_column(JSONType, default=list)
    night_work: Mapped[bool | None] = mapped_column(Boolean)
    injured_12m: Mapped[bool | None] = mapped_column(Boolean)
    worst_form_signs: Mapped[list] = mapped_column(JSONType, default=list)
    nationality: Mapped[str | None] = mapped_column(String(100))
    migrant_status: Mapped[str | None] = mapped_column(String(30))
    lives_with_parent: Mapped[bool | None] = mapped_column(Boolean)
    visit: Mapped[Visit] = relationship(back_populates="child_visits")
    child: Mapped[Child] = relationship()


class Report(Base):
    """A concern reported by anyone through ``clms_report`` (the grievance channel)."""

    __tablename__ = "reports"
    id: Mapped[int] = mapped_column(primary_key=True)
    submission_id: Mapped[int] = mapped_column(ForeignKey("submissions.id"), unique=True)
    current: Mapped[bool] = mapped_column(Boolean, default=True)
    reporter_type: Mapped[str | None] = mapped_column(String(30))
    village_id: Mapped[int | None] = mapped_column(ForeignKey("villages.id"), index=True)
    concern: Mapped[list] = mapped_column(JSONType, default=list)
    child_age_estimate: Mapped[int | None] = mapped_column(Integer)
    description: Mapped[str | None] = mapped_column(Text)
    contact: Mapped[str | None] = mapped_column(Text)
    reported_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    village: Mapped[Village | None] = relationship()


#: the case workflow's states (its rules: clms.cases.workflow, pure, imported here for the schema)
CASE_STATES = workflow.STATES
#: states in which a case still needs work here (closed and transferred ones need none)
OPEN_CASE_STATES = workflow.OPEN_STATES


class Case(Base):
    """A remediation case for one child: the workflow of domain.md section 5.

    The states and the rules for moving between them are in :mod:`clms.cases.workflow`; every
    change goes through the operations of :mod:`clms.cases` (one module per step) and adds a
    :class:`CaseEvent`. ``version`` grows with every change: a change made on a stale page is
    refused instead of overwriting.
    """

    __tablename__ = "cases"
    id: Mapped[int] = mapped_column(primary_key=True)
    case_number: Mapped[str] = mapped_column(String(40), unique=True)
    child_id: Mapped[int] = mapped_column(ForeignKey("children.id"), index=True)
    village_id: Mapped[int | None] = mapped_column(ForeignKey("villages.id"), index=True)
    supplier_id: Mapped[int | None] = mapped_column(
        ForeignKey("suppliers.id", name="fk_cases_supplier"), index=True
    )
    state: Mapped[str] = mapped_column(String(20), default="verification")
    version: Mapped[int] = mapped_column(Integer, default=1)
    # the gravest category found while the case is open (worst_form needs supervisor approval)
    category: Mapped[str | None] = mapped_column(String(20))
    risk_level: Mapped[str | None] = mapped_column(String(10))  # of the latest assessment
    opened_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    opened_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", name="fk_cases_opener"))
    state_changed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    alert_id: Mapped[int | None] = mapped_column(
        ForeignKey("alerts.id", use_alter=True, name="fk_cases_alert")
    )
    officer_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", name="fk_cases_officer"), index=True
    )
    # the monitor who does the follow-up visits: only their phone lists the case (cases.csv)
    monitor_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", name="fk_cases_monitor"), index=True
    )
    # step 1: the officer's verification visit
    verified_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    verification: Mapped[str | None] = mapped_column(String(20))  # confirmed, not_confirmed
    # step 5: proposed for closure (by the system when the criteria hold, or by an officer)
    closure_proposed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # step 6: the closure report
    outcome: Mapped[str | None] = mapped_column(String(40))
    closure_reason: Mapped[str | None] = mapped_column(Text)
    lessons_learned: Mapped[str | None] = mapped_column(Text)
    root_causes: Mapped[list] = mapped_column(JSONType, default=list)
    closed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", name="fk_cases_closer"))
    reopened_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    reopen_count: Mapped[int] = mapped_column(Integer, default=0)
    # the deadline of the current step; past it the case escalates to a supervisor, once a step
    step_due_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    step_escalated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    next_followup_due_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    followup_reminded_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    child: Mapped[Child] = relationship()
    village: Mapped[Village | None] = relationship()
    supplier: Mapped[Supplier | None] = relationship()
    officer: Mapped[User | None] = relationship(foreign_keys=[officer_id])
    monitor: Mapped[User | None] = relationship(foreign_keys=[monitor_id])
    __table_args__ = (
        CheckConstraint(
            "state IN ('verification','assessment','action_plan','implementation',"
            "'closure_review','closed','reopened','transferred')",
            name="ck_cases_state",
        ),
        CheckConstraint(
            "risk_level IS NULL OR risk_level IN ('high','medium','low')", name="ck_cases_risk"
        ),
        # one case a child at a time: a child found in work again goes to the open case
        Index(
            "uq_cases_open_child",
            "child_id",
            unique=True,
            sqlite_where=Column("state").in_(OPEN_CASE_STATES),
            postgresql_where=Column("state").in_(OPEN_CASE_STATES),
        ),
        # the case list: scope (village) within state, newest first
        Index("ix_cases_list", "village_id", "state", "opened_at"),
    )


class CaseEvent(Base):
    """One line of a case's timeline: what happened, by whom (None: the system) and when."""

    __tablename__ = "case_events"
    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    action: Mapped[str] = mapped_column(String(30))
    from_state: Mapped[str | None] = mapped_column(String(20))
    to_state: Mapped[str | None] = mapped_column(String(20))
    detail: Mapped[dict] = mapped_column(JSONType, default=dict)
    user: Mapped[User | None] = relationship()


class Assessment(Base):
    """A best-interest assessment (step 2): the child's situation and the response it needs.

    A case may be assessed again (after a reopening, or when the situation changes); the latest
    one is the case's ``risk_level``. ``child_views`` holds the child's own words.
    """

    __tablename__ = "assessments"
    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    assessed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    assessed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    risk_level: Mapped[str] = mapped_column(String(10))
    child_views: Mapped[str] = mapped_column(Text)
    family_situation: Mapped[str] = mapped_column(Text)
    schooling: Mapped[str] = mapped_column(String(30))  # attending, irregular, dropped_out, never
    schooling_notes: Mapped[str | None] = mapped_column(Text)
    immediate_safety: Mapped[str] = mapped_column(String(20))  # safe, at_risk, in_danger
    safety_notes: Mapped[str | None] = mapped_column(Text)
    response_types: Mapped[list] = mapped_column(JSONType, default=list)
    response_level: Mapped[str] = mapped_column(String(20))  # prevention, remediation, protection
    assessed_by: Mapped[User | None] = relationship()
    __table_args__ = (
        CheckConstraint("risk_level IN ('high','medium','low')", name="ck_assessments_risk"),
    )


class ServiceType(Base):
    """A remediation service of the catalogue (domain.md section 5); administrators edit it.

    ``code`` is what the follow-up form's ``services_received`` reports. An ``urgent`` service
    (emergency protection, law enforcement, health care) may be referred at any step: urgent
    protection never waits for an assessment or a plan.
    """

    __tablename__ = "service_types"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name_en: Mapped[str] = mapped_column(String(200))
    name_fr: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    min_age: Mapped[int | None] = mapped_column(Integer)
    max_age: Mapped[int | None] = mapped_column(Integer)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    sort_order: Mapped[int] = mapped_column(Integer, default=0)


class ServiceProvider(Base):
    """An organisation that delivers services: a school, clinic, legal aid clinic, social services.

    Its people sign in with the ``provider`` role (``User.provider_id``) and see only the
    referrals sent to it. ``area_id`` None: it serves everywhere.
    """

    __tablename__ = "service_providers"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(30))
    email: Mapped[str | None] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(50))
    area_id: Mapped[int | None] = mapped_column(ForeignKey("areas.id"))
    services: Mapped[list] = mapped_column(JSONType, default=list)  # service type codes
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    area: Mapped[Area | None] = relationship()


class ActionPlan(Base):
    """The remediation plan of a case (step 3); a revised plan is a new version.

    ``status``: draft, submitted (waiting for a supervisor), approved (or ``auto``: no approval
    needed), returned (by the supervisor, with a note), superseded (a newer version exists).
    """

    __tablename__ = "action_plans"
    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    status: Mapped[str] = mapped_column(String(12), default="draft")
    needs_approval: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    submitted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    submitted_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decision_note: Mapped[str | None] = mapped_column(Text)
    services: Mapped[list[PlannedService]] = relationship(
        back_populates="plan", order_by="PlannedService.id"
    )
    __table_args__ = (UniqueConstraint("case_id", "version", name="uq_action_plans_version"),)


class PlannedService(Base):
    """A service the plan gives the child: which, who delivers it, by when, and what came of it.

    ``status``: planned, referred, delivered, closed (not delivered, with ``closed_reason``).
    """

    __tablename__ = "planned_services"
    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    plan_id: Mapped[int | None] = mapped_column(ForeignKey("action_plans.id"), index=True)
    service_code: Mapped[str] = mapped_column(String(40))
    provider_id: Mapped[int] = mapped_column(ForeignKey("service_providers.id"))
    due_on: Mapped[dt.date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(12), default="planned")
    closed_reason: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    delivered_source: Mapped[str | None] = mapped_column(String(12))  # referral, followup, officer
    notes: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    plan: Mapped[ActionPlan | None] = relationship(back_populates="services")
    provider: Mapped[ServiceProvider] = relationship()
    __table_args__ = (
        CheckConstraint(
            "status IN ('planned','referred','delivered','closed')", name="ck_planned_status"
        ),
    )


class Consent(Base):
    """The child's or guardian's consent to share the case with one provider, and what it covers.

    ``shares`` lists the items of :data:`clms.cases.workflow.SHAREABLE` the provider may see.
    Withdrawing it stops new referrals to that provider (those sent stay, the record says so).
    """

    __tablename__ = "consents"
    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("service_providers.id"))
    given_by: Mapped[str] = mapped_column(String(20))  # child, guardian, child_and_guardian
    method: Mapped[str] = mapped_column(String(20))  # verbal, written, thumbprint
    shares: Mapped[list] = mapped_column(JSONType, default=list)
    notes: Mapped[str | None] = mapped_column(Text)
    recorded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    withdrawn_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    withdrawn_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    provider: Mapped[ServiceProvider] = relationship()


REFERRAL_STATUSES = ("pending", "accepted", "rejected", "done", "revoked")
REFERRAL_OUTCOMES = (
    "referred",
    "service_provided",
    "already_received_elsewhere",
    "not_applicable",
    "declined_by_child_or_family",
    "service_unavailable",
)


class Referral(Base):
    """A case referred to a provider for one service, under a consent or an authorised override.

    ``shared`` is exactly what the provider may see of the child, fixed when the referral is sent.
    """

    __tablename__ = "referrals"
    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    planned_service_id: Mapped[int | None] = mapped_column(ForeignKey("planned_services.id"))
    provider_id: Mapped[int] = mapped_column(ForeignKey("service_providers.id"), index=True)
    service_code: Mapped[str] = mapped_column(String(40))
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(10), default="pending")
    outcome: Mapped[str] = mapped_column(String(30), default="referred")
    consent_id: Mapped[int | None] = mapped_column(ForeignKey("consents.id"))
    override_reason: Mapped[str | None] = mapped_column(Text)
    override_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    shared: Mapped[list] = mapped_column(JSONType, default=list)
    message: Mapped[str | None] = mapped_column(Text)  # from the officer to the provider
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    respond_by: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    complete_by: Mapped[dt.date | None] = mapped_column(Date)
    responded_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    responded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    rejection_reason: Mapped[str | None] = mapped_column(Text)
    done_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    service_date: Mapped[dt.date | None] = mapped_column(Date)
    outcome_note: Mapped[str | None] = mapped_column(Text)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    revoked_reason: Mapped[str | None] = mapped_column(Text)
    escalated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    case: Mapped[Case] = relationship()
    provider: Mapped[ServiceProvider] = relationship()
    __table_args__ = (
        CheckConstraint(
            "status IN ('pending','accepted','rejected','done','revoked')",
            name="ck_referrals_status",
        ),
        CheckConstraint(
            "consent_id IS NOT NULL OR override_reason IS NOT NULL", name="ck_referrals_consent"
        ),
        Index("ix_referrals_provider_status", "provider_id", "status"),
    )


class CaseTransfer(Base):
    """A case handed to another agency or jurisdiction (migrant children), and what was shared."""

    __tablename__ = "case_transfers"
    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    kind: Mapped[str] = mapped_column(String(10))  # internal (another village here) or external
    to_agency: Mapped[str] = mapped_column(String(200))
    to_country: Mapped[str | None] = mapped_column(String(3))
    to_village_id: Mapped[int | None] = mapped_column(ForeignKey("villages.id"))
    from_village_id: Mapped[int | None] = mapped_column(ForeignKey("villages.id"))
    to_contact: Mapped[str | None] = mapped_column(String(300))
    reason: Mapped[str] = mapped_column(Text)
    shared: Mapped[list] = mapped_column(JSONType, default=list)
    consent_basis: Mapped[str] = mapped_column(String(20))  # consent or best_interests
    transferred_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    transferred_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class ChildMerge(Base):
    """Two records found to be the same child, merged: the visits, classifications, alerts and
    cases of ``merged_child_id`` now belong to ``kept_child_id``; the merged row stays (its
    pseudonymous id still leads to the kept child)."""

    __tablename__ = "child_merges"
    id: Mapped[int] = mapped_column(primary_key=True)
    kept_child_id: Mapped[int] = mapped_column(ForeignKey("children.id"), index=True)
    merged_child_id: Mapped[int] = mapped_column(ForeignKey("children.id"), unique=True)
    merged_uid: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str] = mapped_column(Text)
    moved: Mapped[dict] = mapped_column(JSONType, default=dict)  # table -> rows moved
    merged_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    merged_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class DuplicateDismissal(Base):
    """An officer's decision that two similar records are different children (not shown again).
    The pair is stored with the lower id first."""

    __tablename__ = "duplicate_dismissals"
    child_a_id: Mapped[int] = mapped_column(ForeignKey("children.id"), primary_key=True)
    child_b_id: Mapped[int] = mapped_column(ForeignKey("children.id"), primary_key=True)
    decided_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    __table_args__ = (CheckConstraint("child_a_id < child_b_id", name="ck_dup_pair_order"),)


# --- classification ----------------------------------------------------------------------------


class CountryProfile(Base):
    """One version of a country's law as the classifier reads it (ages, hours, hazardous list).

    A change never edits a row: it adds the next ``version`` of the same ``code`` and moves
    ``current`` to it, so every classification names exactly the law it applied. ``code`` is
    ``ILO`` for the statistical default, else the ISO 3166 alpha-3 code the areas carry.
    """

    __tablename__ = "country_profiles"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(8), index=True)
    version: Mapped[int] = mapped_column(Integer)
    current: Mapped[bool] = mapped_column(Boolean, default=True)
    name: Mapped[str] = mapped_column(String(200))
    min_age: Mapped[int] = mapped_column(Integer)
    light_work_age: Mapped[int] = mapped_column(Integer)
    light_work_max_hours: Mapped[int] = mapped_column(Integer)
    min_age_hazardous: Mapped[int] = mapped_column(Integer)
    hazardous_hours: Mapped[int] = mapped_column(Integer)
    chores_hours: Mapped[int] = mapped_column(Integer)
    compulsory_school_age: Mapped[int | None] = mapped_column(Integer)  # school required below it
    hazardous_list: Mapped[list] = mapped_column(JSONType, default=list)  # hazard codes that count
    national_hazardous_list: Mapped[bool] = mapped_column(Boolean, default=False)
    sources: Mapped[dict] = mapped_column(JSONType, default=dict)  # field -> where it came from
    change_note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_by: Mapped[User | None] = relationship()
    __table_args__ = (
        UniqueConstraint("code", "version", name="uq_country_profiles_version"),
        Index(
            "uq_country_profiles_current",
            "code",
            unique=True,
            sqlite_where=text("current"),
            postgresql_where=text("current"),
        ),
    )


class Classification(Base):
    """What the rules said about one child at one visit, under one rule set and one profile.

    Kept for ever: a reclassification that changes anything adds a row and moves ``current``.
    """

    __tablename__ = "classifications"
    id: Mapped[int] = mapped_column(primary_key=True)
    child_visit_id: Mapped[int] = mapped_column(ForeignKey("child_visits.id"), index=True)
    child_id: Mapped[int] = mapped_column(ForeignKey("children.id"), index=True)
    current: Mapped[bool] = mapped_column(Boolean, default=True)
    rule_set_version: Mapped[str] = mapped_column(String(40))
    profile_id: Mapped[int] = mapped_column(ForeignKey("country_profiles.id"))
    category: Mapped[str] = mapped_column(String(20))
    sdg_871: Mapped[bool] = mapped_column(Boolean)
    reasons: Mapped[list] = mapped_column(JSONType, default=list)  # [{"rule", "facts"}]
    risk_factors: Mapped[list] = mapped_column(JSONType, default=list)
    classified_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    previous_id: Mapped[int | None] = mapped_column(ForeignKey("classifications.id"))
    change_reason: Mapped[str | None] = mapped_column(Text)  # why it differs from previous_id
    profile: Mapped[CountryProfile] = relationship()
    child_visit: Mapped[ChildVisit] = relationship()
    __table_args__ = (
        CheckConstraint(
            "category IN ('worst_form','hazardous','child_labour','at_risk','none')",
            name="ck_classifications_category",
        ),
        Index(
            "uq_classifications_current",
            "child_visit_id",
            unique=True,
            sqlite_where=text("current"),
            postgresql_where=text("current"),
        ),
    )


# --- alerts ------------------------------------------------------------------------------------

SEVERITIES = ("critical", "high", "medium", "low")
ALERT_STATUSES = ("new", "acknowledged", "dismissed", "case_opened")
ACTIVE_ALERT_STATUSES = ("new", "acknowledged")


class Alert(Base):
    """A child found in work (source ``visit``) or a reported concern (source ``reported``).

    A child has at most one active alert (new or acknowledged): later visits update it and a worse
    category raises its severity. ``severity_rank`` (critical 4 ... low 1) orders the queue.
    """

    __tablename__ = "alerts"
    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(10))  # visit or reported
    status: Mapped[str] = mapped_column(String(12), default="new")
    child_id: Mapped[int | None] = mapped_column(ForeignKey("children.id"), index=True)
    household_id: Mapped[int | None] = mapped_column(ForeignKey("households.id"))
    report_id: Mapped[int | None] = mapped_column(ForeignKey("reports.id"), unique=True)
    village_id: Mapped[int | None] = mapped_column(ForeignKey("villages.id"), index=True)
    supplier_id: Mapped[int | None] = mapped_column(ForeignKey("suppliers.id"), index=True)
    category: Mapped[str] = mapped_column(String(20))
    severity: Mapped[str] = mapped_column(String(10))
    severity_rank: Mapped[int] = mapped_column(Integer)
    reasons: Mapped[list] = mapped_column(JSONType, default=list)
    needs_verification: Mapped[bool] = mapped_column(Boolean, default=True)
    classification_id: Mapped[int | None] = mapped_column(ForeignKey("classifications.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)  # the latest visit or report
    ack_due_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    visit_due_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    acknowledged_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    acknowledged_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    first_visit_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)  # officer's visit
    assigned_to_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    dismissed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    dismissed_reason: Mapped[str | None] = mapped_column(Text)
    escalated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    child: Mapped[Child | None] = relationship()
    household: Mapped[Household | None] = relationship()
    report: Mapped[Report | None] = relationship()
    village: Mapped[Village | None] = relationship()
    supplier: Mapped[Supplier | None] = relationship()
    assigned_to: Mapped[User | None] = relationship(foreign_keys=[assigned_to_id])
    __table_args__ = (
        CheckConstraint("source IN ('visit','reported')", name="ck_alerts_source"),
        CheckConstraint(
            "status IN ('new','acknowledged','dismissed','case_opened')", name="ck_alerts_status"
        ),
        CheckConstraint(
            "severity IN ('critical','high','medium','low')", name="ck_alerts_severity"
        ),
        # the rule that makes a retried or concurrent submission unable to duplicate an alert
        Index(
            "uq_alerts_active_child",
            "child_id",
            unique=True,
            sqlite_where=Column("status").in_(ACTIVE_ALERT_STATUSES),
            postgresql_where=Column("status").in_(ACTIVE_ALERT_STATUSES),
        ),
        Index("ix_alerts_queue", "status", "severity_rank", "ack_due_at"),
        # the officer's queue: scope (village) within status, and every column of its order and
        # of the overdue rule, so the count and the sort read the index, never the wide rows
        # (bench/alert_queue.py: first page p95 451 -> 43 ms on SQLite with 100,000 alerts)
        Index(
            "ix_alerts_scope_queue",
            "status",
            "village_id",
            "severity_rank",
            "ack_due_at",
            "acknowledged_at",
            "visit_due_at",
            "first_visit_at",
        ),
    )


class AlertEvent(Base):
    """Something that happened to an alert, by whom (None: the system) and when."""

    __tablename__ = "alert_events"
    id: Mapped[int] = mapped_column(primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id"), index=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # raised, updated, severity_raised, acknowledged, assigned, dismissed, escalated, case_opened
    action: Mapped[str] = mapped_column(String(20))
    detail: Mapped[dict] = mapped_column(JSONType, default=dict)
    user: Mapped[User | None] = relationship()


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
    last_pull_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_success_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    pulled_total: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    __table_args__ = (CheckConstraint("kind IN ('central','kobo')", name="ck_pull_sources_kind"),)


# --- notifications and scheduled work -----------------------------------------------------------


class Notification(Base):
    """An email waiting to be sent (an outbox): written with the event, sent by a job, so a mail
    server that is down never loses or delays the alert itself."""

    __tablename__ = "notifications"
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(12))  # alert, escalation, reminder, digest
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    email: Mapped[str] = mapped_column(String(200))
    subject: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    alert_id: Mapped[int | None] = mapped_column(ForeignKey("alerts.id"), index=True)
    status: Mapped[str] = mapped_column(String(10), default="pending")  # pending, sent, failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    user: Mapped[User | None] = relationship()
    __table_args__ = (Index("ix_notifications_due", "status", "next_attempt_at"),)


class HotspotRelease(Base):
    """One reporting period of one brand's hotspot figures, released once and never changed
    (geo.hotspot_releases): the counts of every cell, layer and supplier part before the privacy
    gate, with the chain and the places as they were; every answer to the brand gates them."""

    __tablename__ = "hotspot_releases"
    __table_args__ = (
        UniqueConstraint("brand_id", "start", "months", name="uq_hotspot_releases_period"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"), index=True)
    start: Mapped[dt.date] = mapped_column(Date)
    months: Mapped[int] = mapped_column(Integer)
    released_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    # zlib-compressed JSON (geo.hotspot_releases.Release)
    payload: Mapped[bytes] = mapped_column(LargeBinary)


class JobRun(Base):
    """One run of a scheduled job: when, how it ended, what it did or why it failed."""

    __tablename__ = "job_runs"
    id: Mapped[int] = mapped_column(primary_key=True)
    job: Mapped[str] = mapped_column(String(100), index=True)
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    ok: Mapped[bool | None] = mapped_column(Boolean)
    summary: Mapped[dict] = mapped_column(JSONType, default=dict)
    error: Mapped[str | None] = mapped_column(Text)


class KpiSnapshot(Base):
    """The KPI figures of one day for one area (``area_id`` None: everything), kept for trends."""

    __tablename__ = "kpi_snapshots"
    id: Mapped[int] = mapped_column(primary_key=True)
    taken_on: Mapped[dt.date] = mapped_column(Date, index=True)
    area_id: Mapped[int | None] = mapped_column(ForeignKey("areas.id"))
    figures: Mapped[dict] = mapped_column(JSONType, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    __table_args__ = (UniqueConstraint("taken_on", "area_id", name="uq_kpi_snapshots_day"),)


# --- audit ---------------------------------------------------------------------------------------


class AuditEvent(Base):
    """One entry of the append-only audit log (clms.audit): who did what, to what, when and why.

    Each entry's ``hash`` is the SHA-256 of the previous entry's hash and its own content, so that
    changing or removing an entry breaks the chain (``clms audit verify``); the database refuses
    UPDATE and DELETE on this table (triggers, migration 0007).
    """

    __tablename__ = "audit_events"
    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, unique=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
    # the user's id and name as they were (no foreign key: the log outlives accounts)
    actor_id: Mapped[int | None] = mapped_column(Integer, index=True)
    actor: Mapped[str] = mapped_column(String(150), index=True)
    role: Mapped[str] = mapped_column(String(20), default="")
    action: Mapped[str] = mapped_column(String(64), index=True)
    target: Mapped[str] = mapped_column(String(200), default="", index=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    details: Mapped[str] = mapped_column(Text, default="{}")  # canonical JSON
    ip: Mapped[str] = mapped_column(String(64), default="")
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)


class AuditHead(Base):
    """The one row holding the audit chain's last sequence number and hash; updating it first
    serialises the writers, so the chain never forks."""

    __tablename__ = "audit_head"
    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, default=0)
    last_hash: Mapped[str] = mapped_column(String(64))


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


# --- sign-in limits ------------------------------------------------------------------------------


class LoginThrottle(Base):
    """Counters that slow down password guessing (clms.auth.limits), kept in the database so that
    every worker process sees the same counts.

    ``scope`` ``user``: ``key`` is a username as typed (known or not, so that the answers do not
    tell which exist), ``count`` its failed sign-ins in a row, ``locked_until`` set when they reach
    the limit. ``scope`` ``address``: ``key`` is a client address, ``count`` its attempts in the
    minute that began at ``window_start``.
    """

    __tablename__ = "login_throttles"
    id: Mapped[int] = mapped_column(primary_key=True)
    scope: Mapped[str] = mapped_column(String(10))
    key: Mapped[str] = mapped_column(String(200))
    count: Mapped[int] = mapped_column(Integer, default=0)
    window_start: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    locked_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
    __table_args__ = (
        UniqueConstraint("scope", "key", name="uq_login_throttles_scope_key"),
        CheckConstraint("scope IN ('user','address')", name="ck_login_throttles_scope"),
    )
