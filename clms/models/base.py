"""The column types and helpers every model uses: aware UTC datetimes, JSON, the time now,
the pseudonymous child id.
"""

from __future__ import annotations

import datetime as dt
import secrets

from sqlalchemy import JSON, DateTime, TypeDecorator
from sqlalchemy.dialects.postgresql import JSONB


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
