"""Who is asking, and may they: passwords, tokens, role declarations.

Every view declares the roles that may use it with :func:`allow`; the declaration is kept on the
view function so a test can walk every route and check it. How the person is identified depends on
the surface: a signed session cookie for web pages, a bearer token for the JSON API, and HTTP
Digest, Basic over https or a device token in the URL for OpenRosa (see :mod:`clms.openrosa.auth`).
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import secrets
from collections.abc import Callable, Iterable

from flask import g
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from clms.errors import problem
from clms.models import ROLES, ApiToken, User, utcnow

PUBLIC = "public"  # anyone, signed in or not
MIN_PASSWORD_LENGTH = 10


def allow(*roles: str) -> Callable:
    """Declare, and enforce, which roles may use a view.

    >>> @allow("officer", "supervisor")
    ... def alerts(): ...
    >>> sorted(alerts.allowed_roles)
    ['officer', 'supervisor']
    """
    unknown = set(roles) - set(ROLES) - {PUBLIC}
    if unknown or not roles:
        raise ValueError(f"allow() needs roles from {ROLES} or PUBLIC, got {roles}")

    def decorate(view: Callable) -> Callable:
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            if PUBLIC not in roles:
                user = g.get("user")
                if user is None:
                    raise problem("auth.required")
                if user.role not in roles:
                    raise problem("auth.forbidden")
            return view(*args, **kwargs)

        wrapper.allowed_roles = frozenset(roles)
        return wrapper

    return decorate


def check_password_policy(password: str) -> None:
    """Refuse passwords too short to resist guessing (the policy grows with the security work)."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"A password needs at least {MIN_PASSWORD_LENGTH} characters.")


def digest_ha1(username: str, realm: str, password: str) -> str:
    """HA1 of RFC 7616 (MD5), what Digest authentication checks against."""
    return hashlib.md5(f"{username}:{realm}:{password}".encode()).hexdigest()


def set_password(user: User, password: str, realm: str) -> None:
    """Store the password's hash (and the Digest HA1 for OpenRosa) on ``user``."""
    check_password_policy(password)
    user.password_hash = generate_password_hash(password)
    user.digest_ha1 = digest_ha1(user.username, realm, password)
    user.digest_realm = realm


def authenticate(session: Session, username: str, password: str) -> User | None:
    """The active user with this username and password, or None (same cost either way)."""
    user = session.scalar(select(User).where(User.username == username))
    if user is None or not user.active:
        # compare against a dummy hash so timing does not reveal which usernames exist
        check_password_hash(_DUMMY_HASH, password)
        return None
    return user if check_password_hash(user.password_hash, password) else None


_DUMMY_HASH = generate_password_hash("not a real password at all")


def _sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(
    session: Session, user: User, kind: str, hours: int | None = None, label: str = ""
) -> tuple[str, ApiToken]:
    """Create a token; returns the plaintext (shown once, never stored) and its row."""
    plaintext = secrets.token_urlsafe(32)
    row = ApiToken(
        user_id=user.id,
        kind=kind,
        label=label,
        token_sha256=_sha256(plaintext),
        expires_at=utcnow() + dt.timedelta(hours=hours) if hours else None,
    )
    session.add(row)
    session.flush()
    return plaintext, row


def user_for_token(session: Session, plaintext: str, kinds: Iterable[str]) -> User | None:
    """The active user a valid (unexpired, unrevoked) token of one of ``kinds`` belongs to."""
    row = session.scalar(select(ApiToken).where(ApiToken.token_sha256 == _sha256(plaintext)))
    if row is None or row.kind not in set(kinds) or row.revoked_at is not None:
        return None
    if row.expires_at is not None and row.expires_at <= utcnow():
        return None
    return row.user if row.user.active else None
