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
    __table_args__ = (CheckConstraint("tier >= 1", name="ck_suppliers_tier"),)


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
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    # loaded when used: the submission path checks scope with one query (clms.scope)
    scopes: Mapped[list[UserScope]] = relationship(cascade="all, delete-orphan")
    brand: Mapped[Brand | None] = relationship()
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
    village_id: Mapped[int | None] = mapped_column(ForeignKey("villages.id"), index=True)
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
    village: Mapped[Village | None] = relationship()
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


class Case(Base):
    """A remediation case for one child (the workflow itself comes with the case module)."""

    __tablename__ = "cases"
    id: Mapped[int] = mapped_column(primary_key=True)
    case_number: Mapped[str] = mapped_column(String(40), unique=True)
    child_id: Mapped[int] = mapped_column(ForeignKey("children.id"), index=True)
    village_id: Mapped[int | None] = mapped_column(ForeignKey("villages.id"), index=True)
    state: Mapped[str] = mapped_column(String(20), default="verification")
    opened_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    alert_id: Mapped[int | None] = mapped_column(
        ForeignKey("alerts.id", use_alter=True, name="fk_cases_alert")
    )
    officer_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", name="fk_cases_officer"), index=True
    )
    # the deadline of the current step; past it the case escalates to a supervisor, once a step
    step_due_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    step_escalated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    next_followup_due_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    followup_reminded_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    child: Mapped[Child] = relationship()
    village: Mapped[Village | None] = relationship()
    officer: Mapped[User | None] = relationship(foreign_keys=[officer_id])


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
