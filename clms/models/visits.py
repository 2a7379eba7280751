"""What the visits found: households, visits, children, reports, and how each child was
classified (under which country profile).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from clms.db import Base
from clms.models.base import JSONType, UTCDateTime, new_child_uid, utcnow

if TYPE_CHECKING:
    from clms.models.forms import Submission
    from clms.models.people import User
    from clms.models.places import Village
    from clms.models.supply import Supplier


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
