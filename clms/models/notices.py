"""What happened that concerns a person (a notice in the application), and which kinds of it the
person also wants by email.

A notice holds codes, never words: its ``kind``, what it is about (``subject`` and
``subject_id``: a case, an alert, a referral or a submission), the code a person knows the item
by (``code``: a case number, a child's pseudonymous id, a referral or submission number) and a
few more codes (``detail``: the step, the decision). The page writes the sentence when it is read,
in the reader's language (:mod:`clms.notices.words`). No name and no free text of a child's
record is kept here.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from clms.db import Base
from clms.models.base import JSONType, UTCDateTime, utcnow


class Notice(Base):
    """One thing that happened that concerns ``user_id`` (the recipient), unread until opened."""

    __tablename__ = "notices"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(24))
    #: what it is about: case, alert, referral, submission
    subject: Mapped[str] = mapped_column(String(12))
    subject_id: Mapped[int] = mapped_column(Integer)
    #: how a person knows the item: a case number, a pseudonymous child id, ``#12``
    code: Mapped[str] = mapped_column(String(40), default="")
    #: codes only (the step, the decision, the case of a referral): see clms.notices.words
    detail: Mapped[dict] = mapped_column(JSONType, default=dict)
    #: who did what the notice tells of (None: the system, e.g. the escalation job)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    read_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    __table_args__ = (
        # the header's count (unread of one person) and the list (newest first) read this index
        Index("ix_notices_user_read", "user_id", "read_at"),
        Index("ix_notices_user_created", "user_id", "created_at", "id"),
    )


class NoticePreference(Base):
    """A person's choice for one kind of notice: also by email, or in the application only. A
    kind without a row has its default (:data:`clms.notices.kinds.BY_EMAIL_BY_DEFAULT`)."""

    __tablename__ = "notice_preferences"
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    kind: Mapped[str] = mapped_column(String(24), primary_key=True)
    by_email: Mapped[bool] = mapped_column(Boolean)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
