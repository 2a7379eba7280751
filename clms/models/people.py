"""People and access: users and their scopes, API and device tokens, Digest nonces, sign-in
limits.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from clms.db import Base
from clms.models.base import UTCDateTime, utcnow

if TYPE_CHECKING:
    from clms.models.cases import ServiceProvider
    from clms.models.supply import Brand

ROLES = ("monitor", "officer", "supervisor", "provider", "brand", "admin")


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
    # the last sign-in on the web or the API (clms.auth.note_sign_in); phones are not counted:
    # they authenticate with every request, their last submission says when they were last used
    last_sign_in_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
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
