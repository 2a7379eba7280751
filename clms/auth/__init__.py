"""Who is asking, and may they: passwords, tokens, role declarations.

Every view declares the roles that may use it with :func:`allow`; the declaration is kept on the
view function so a test can walk every route and check it. How the person is identified depends on
the surface: a signed session cookie for web pages, a bearer token for the JSON API, and HTTP
Digest, Basic over https or a device token in the URL for OpenRosa (see :mod:`clms.openrosa.auth`).

Around them: the password policy (:mod:`clms.auth.passwords`), the lock per username and the limit
per client address on every password check (:mod:`clms.auth.limits`), bearer and device tokens
that expire and can be revoked, and web sessions that end after inactivity, after a fixed
lifetime, and for every device at once when the person's *session epoch* is raised (signing out,
a new password, deactivation: :func:`end_sessions`).
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import secrets
from collections.abc import Callable, Iterable, Mapping

from flask import g, request
from flask.sessions import SecureCookieSessionInterface
from sqlalchemy import select, update
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from clms.auth.passwords import DEFAULT_MIN_LENGTH
from clms.auth.passwords import check_password_policy as _check_policy
from clms.errors import problem
from clms.models import ROLES, ApiToken, User, utcnow

PUBLIC = "public"  # anyone, signed in or not
MIN_PASSWORD_LENGTH = DEFAULT_MIN_LENGTH  # the least; CLMS_PASSWORD_MIN_LENGTH may raise it


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


def check_password_policy(password: str, username: str = "", min_length: int | None = None) -> None:
    """Refuse a password that is easy to guess, saying everything wrong with it (``ValueError``).

    The rules are :func:`clms.auth.passwords.password_problems`'s, with ``min_length`` (the
    ``PASSWORD_MIN_LENGTH`` setting, :func:`password_min_length`; None: the least,
    :data:`MIN_PASSWORD_LENGTH`).
    """
    _check_policy(password, username, max(MIN_PASSWORD_LENGTH, min_length or MIN_PASSWORD_LENGTH))


def password_min_length(config: Mapping | None = None) -> int:
    """``PASSWORD_MIN_LENGTH`` of ``config`` (never below :data:`MIN_PASSWORD_LENGTH`, which is
    also the answer without a configuration)."""
    value = config.get("PASSWORD_MIN_LENGTH") if config is not None else None
    return max(MIN_PASSWORD_LENGTH, int(value or MIN_PASSWORD_LENGTH))


def digest_ha1(username: str, realm: str, password: str) -> str:
    """HA1 of RFC 7616 (MD5), what Digest authentication checks against."""
    return hashlib.md5(f"{username}:{realm}:{password}".encode()).hexdigest()


def set_password(user: User, password: str, realm: str, *, min_length: int | None = None) -> None:
    """Store the password's hash (and the Digest HA1 for OpenRosa) on ``user``, after checking
    it against the policy with ``min_length`` (``PASSWORD_MIN_LENGTH``; None: the least)
    (``ValueError`` saying what is wrong)."""
    check_password_policy(password, user.username or "", min_length)
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


def revoke_tokens(session: Session, user: User, kind: str | None = None) -> int:
    """Revoke ``user``'s live tokens (of ``kind``, ``api`` or ``device``; all when None); returns
    how many. Revoked tokens stay listed (``clms users tokens``) with when they were revoked."""
    now = utcnow()
    where = [ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None)]
    if kind is not None:
        where.append(ApiToken.kind == kind)
    result = session.execute(
        update(ApiToken).where(*where).values(revoked_at=now),
        execution_options={"synchronize_session": False},
    )
    return result.rowcount


def revoke_token(session: Session, plaintext: str) -> ApiToken | None:
    """Revoke the token ``plaintext`` (the one a request came with); returns its row."""
    row = session.scalar(select(ApiToken).where(ApiToken.token_sha256 == _sha256(plaintext)))
    if row is not None and row.revoked_at is None:
        row.revoked_at = utcnow()
    return row


def note_sign_in(user: User) -> None:
    """Remember when ``user`` last signed in (the web page or the API's token endpoint; phones
    authenticate with every request and are not counted). Audited by the caller's
    ``auth.login``."""
    user.last_sign_in_at = utcnow()


def end_sessions(session: Session, user: User) -> None:
    """End every web session ``user`` has, on every device, at its next request: raise the
    session epoch that each session must match (one atomic update, so concurrent sign-outs
    cannot lose a raise)."""
    session.execute(
        update(User)
        .where(User.id == user.id)
        .values(session_epoch=User.session_epoch + 1)
        .execution_options(synchronize_session=False)
    )
    session.refresh(user, ["session_epoch"])


class CookieSessions(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, with ``SESSION_COOKIE_SECURE = "auto"`` meaning: Secure
    exactly when the request came over https (behind a proxy, set ``TRUST_PROXY`` so that its
    ``X-Forwarded-Proto`` counts)."""

    def get_cookie_secure(self, app) -> bool:
        setting = str(app.config.get("SESSION_COOKIE_SECURE", "auto")).strip().lower()
        if setting == "auto":
            return request.is_secure
        return setting in ("1", "true", "yes", "on")


def init_app(app) -> None:
    """Session cookies: HttpOnly, SameSite=Lax, Secure as ``SESSION_COOKIE_SECURE`` says."""
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    app.session_interface = CookieSessions()
