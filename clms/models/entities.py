"""The cases as ODK entities: the phone-side copy of each case, with its versions.

A monitor's phone keeps the cases it follows up as entities of the list ``cases`` (served as
cases.csv, ODK entities spec 2024.1). Each case has one :class:`CaseEntity` (a stable UUID, the
current version and the properties the follow-ups saved); each follow-up that updates it adds a
:class:`CaseEntityVersion` with the version the phone started from. Two phones updating from the
same version make a conflict (``soft``: different properties; ``hard``: the same ones with
different values), kept until an officer resolves it. The case itself is changed by the follow-up
as always (clms.cases.findings); these rows only say what the phones hold.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import CheckConstraint, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from clms.db import Base
from clms.models.base import JSONType, UTCDateTime, utcnow

ENTITY_CONFLICTS = ("soft", "hard")


class CaseEntity(Base):
    """One case as an entity of the list ``cases``: its UUID (the entity id phones know it by),
    its current version and properties, and whether an unresolved conflict is on it."""

    __tablename__ = "case_entities"
    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), unique=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    # the properties the follow-ups saved (text, as the phone holds them)
    properties: Mapped[dict] = mapped_column(JSONType, default=dict)
    conflict: Mapped[str | None] = mapped_column(String(10))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    __table_args__ = (
        CheckConstraint(
            "conflict IS NULL OR conflict IN ('soft','hard')", name="ck_case_entities_conflict"
        ),
    )


class CaseEntityVersion(Base):
    """A version of a case entity: version 1 made by the server, each later one by a follow-up
    (``submission_id``), with the version the phone updated (``base_version``, on the server;
    an offline branch's own numbering is in ``branch_id``/``branch_base_version``), what it sent
    (``received``), the properties after it, and the conflict it made, until resolved."""

    __tablename__ = "case_entity_versions"
    id: Mapped[int] = mapped_column(primary_key=True)
    entity_id: Mapped[int] = mapped_column(
        ForeignKey("case_entities.id", ondelete="CASCADE"), index=True
    )
    version: Mapped[int] = mapped_column(Integer)
    base_version: Mapped[int | None] = mapped_column(Integer)
    submission_id: Mapped[int | None] = mapped_column(
        ForeignKey("submissions.id", ondelete="SET NULL"), index=True
    )
    submitter_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    received: Mapped[dict] = mapped_column(JSONType, default=dict)
    properties: Mapped[dict] = mapped_column(JSONType, default=dict)
    branch_id: Mapped[str | None] = mapped_column(String(64))
    trunk_version: Mapped[int | None] = mapped_column(Integer)
    branch_base_version: Mapped[int | None] = mapped_column(Integer)
    conflict: Mapped[str | None] = mapped_column(String(10))
    conflicting: Mapped[list] = mapped_column(JSONType, default=list)
    resolved_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    resolved_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    resolution_note: Mapped[str | None] = mapped_column(Text)
    __table_args__ = (
        UniqueConstraint("entity_id", "version", name="uq_case_entity_versions_version"),
        CheckConstraint(
            "conflict IS NULL OR conflict IN ('soft','hard')",
            name="ck_case_entity_versions_conflict",
        ),
    )
