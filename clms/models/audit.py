"""The append-only audit log and the head of its hash chain."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from clms.db import Base
from clms.models.base import UTCDateTime

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
