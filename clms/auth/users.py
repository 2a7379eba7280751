"""Adding and changing users: roles, areas, passwords, tokens, locks, deactivation.

Every change here is a change of who may do what, so each writes an audit entry
(:func:`clms.audit.record`) in the caller's transaction: ``user.add``, ``user.role``,
``user.areas``, ``user.password``, ``user.deactivate``, ``user.activate``, ``user.unlock``,
``user.tokens_revoked``, ``user.token_issued``. Role and area changes keep the before and the
after in the entry's details. Every function checks everything first and raises
:class:`UserError` (the message says what is wrong) before it changes anything.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from clms.audit import record
from clms.auth import end_sessions, issue_token, password_min_length, revoke_tokens, set_password
from clms.auth.limits import unlock
from clms.auth.passwords import password_refusal
from clms.errors import DomainProblem
from clms.i18n import Msg, available_locales
from clms.models import (
    ROLES,
    ApiToken,
    Area,
    Brand,
    ServiceProvider,
    User,
    UserScope,
    Village,
    utcnow,
)

SCOPED_ROLES = {"monitor", "officer", "supervisor"}
TOKEN_KINDS = ("api", "device")
#: a username: 2 to 80 lowercase ASCII letters, digits, '.', '_' or '-', starting with a letter or
#: a digit (no look-alike letters, invisible or control characters; unique whatever the case)
USERNAME = re.compile(r"[a-z0-9][a-z0-9._-]{1,79}", re.ASCII)
#: the longest full name and e-mail address (their columns' size)
MAX_NAME, MAX_EMAIL = 200, 200
#: the longest reason of a change (as the decisions on submissions)
MAX_REASON = 2000
#: an e-mail address: one '@' with something on each side, no spaces or control characters
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s.]+")
#: the characters stripped from both ends of a reason: whitespace and the invisible ones
_BLANK = "\u200b\u200c\u200d\ufeff"
_EDGES = re.compile(rf"^[\s{_BLANK}]+|[\s{_BLANK}]+$")


class UserError(DomainProblem, ValueError):
    """A user cannot be added or changed as asked; the message says why (``users.refused``) and
    ``details["field"]`` names what is wrong (``username``, ``role``, ``areas``, ``brand``,
    ``provider``, ``password``, ``reason``, ``state``, ``token``, ...), so that a form shows the
    message next to it."""

    KEY = "users.refused"

    @property
    def field(self) -> str:
        return self.details.get("field", "")


def _refuse(field: str, message: Msg) -> UserError:
    return UserError(message, field=field)


def add_user(
    session: Session,
    *,
    username: str,
    role: str,
    password: str,
    realm: str,
    scope_codes: list[str] | None = None,
    brand_code: str | None = None,
    full_name: str = "",
    email: str | None = None,
    provider_code: str | None = None,
    actor: User | str | None = None,
    min_length: int | None = None,
    locale: str | None = None,
    languages: tuple[str, ...] | None = None,
) -> User:
    """Add a user; monitors, officers and supervisors need at least one area or village code.

    Raises :class:`UserError` naming what is wrong (unknown code, duplicate username, a password
    the policy refuses with ``min_length``, the ``PASSWORD_MIN_LENGTH`` setting; None: the
    least, ...). Audited as ``user.add`` by ``actor``.
    """
    scope_codes = scope_codes or []
    username = username.strip()
    if not USERNAME.fullmatch(username):
        raise _refuse(
            "username",
            Msg(
                "The username {username!r} must be 2 to 80 characters: lowercase letters a-z, "
                "digits, '.', '_' or '-', beginning with a letter or a digit.",
                username=username[:100],
            ),
        )
    taken = session.scalar(select(User.username).where(func.lower(User.username) == username))
    if taken is not None:
        raise _refuse(
            "username", Msg("There is already a user called {username!r}.", username=taken)
        )
    full_name = _check_name(full_name)
    email = _check_email(email)
    brand, provider, scopes = _permissions(session, role, scope_codes, brand_code, provider_code)
    if locale is not None and locale not in (languages or available_locales()):
        raise _refuse("locale", Msg("Unknown language {locale!r}.", locale=locale))
    user = User(
        username=username, role=role, full_name=full_name, email=email, brand=brand,
        provider=provider, locale=locale,
    )  # fmt: skip
    _set_password(user, password, realm, min_length)
    user.scopes.extend(scopes)
    session.add(user)
    session.flush()
    record(session, actor, "user.add", f"user:{username}", after=describe(session, user))
    return user


def change_role(
    session: Session,
    username: str,
    role: str,
    *,
    reason: str,
    actor: User | str | None,
    scope_codes: list[str] | None = None,
    brand_code: str | None = None,
    provider_code: str | None = None,
) -> User:
    """Give ``username`` ``role`` with its areas, brand or provider (the same rules as
    :func:`add_user`); audited as ``user.role`` with the before and the after. Nobody changes
    their own role (``actor`` is the user), and the last active administrator stays one."""
    user = _user(session, username)
    reason = _require_reason(reason)
    _not_self(
        user, actor, "role", Msg("You cannot change your own role: ask another administrator.")
    )
    if user.role == "admin" and role != "admin":
        _keep_an_admin(session, user, "role")
    brand, provider, scopes = _permissions(
        session, role, scope_codes or [], brand_code, provider_code
    )
    before = describe(session, user)
    user.role, user.brand, user.provider = role, brand, provider
    user.scopes.clear()
    session.flush()  # the old scopes go before the new ones come
    user.scopes.extend(scopes)
    session.flush()
    after = describe(session, user)
    record(session, actor, "user.role", f"user:{username}", reason, before=before, after=after)
    return user


def change_areas(
    session: Session, username: str, scope_codes: list[str], *, reason: str, actor
) -> User:
    """Replace the areas and villages of a monitor, officer or supervisor; audited as
    ``user.areas`` with the before and the after."""
    user = _user(session, username)
    reason = _require_reason(reason)
    if user.role not in SCOPED_ROLES:
        raise _refuse(
            "areas",
            Msg(
                "{username} is a {role}, which has no area scope.",
                username=username,
                role=Msg(user.role),
            ),
        )
    if not scope_codes:
        raise _refuse(
            "areas", Msg("A {role} needs at least one area or village.", role=Msg(user.role))
        )
    scopes = [_scope_for(session, code) for code in dict.fromkeys(scope_codes)]
    before = describe(session, user)
    user.scopes.clear()
    session.flush()
    user.scopes.extend(scopes)
    session.flush()
    after = describe(session, user)
    record(session, actor, "user.areas", f"user:{username}", reason, before=before, after=after)
    return user


def change_password(
    session: Session,
    username: str,
    password: str,
    *,
    realm: str,
    actor,
    reason: str = "",
    min_length: int | None = None,
    revoke_devices: bool = False,
) -> int:
    """Set a new password (checked with ``min_length``, the ``PASSWORD_MIN_LENGTH`` setting;
    None: the least); ends the person's web sessions and revokes their API tokens (a reset is
    what one does when a password leaked). Device tokens stay unless ``revoke_devices``: they
    belong to phones, not to the password. Returns how many API tokens were revoked; audited as
    ``user.password`` (with how many API and device tokens were revoked)."""
    user = _user(session, username)
    reason = _optional_reason(reason)
    _set_password(user, password, realm, min_length)
    end_sessions(session, user)
    revoked = revoke_tokens(session, user, "api")
    devices = revoke_tokens(session, user, "device") if revoke_devices else 0
    record(
        session,
        actor,
        "user.password",
        f"user:{username}",
        reason,
        api_tokens_revoked=revoked,
        **({"device_tokens_revoked": devices} if revoke_devices else {}),
    )
    return revoked


def deactivate_user(session: Session, username: str, *, reason: str, actor) -> int:
    """Deactivate ``username``: no sign-in any more, their web sessions end at their next
    request and all their tokens are revoked. Returns how many tokens were revoked. Nobody
    deactivates themselves (``actor`` is the user), nor the last active administrator."""
    user = _user(session, username)
    reason = _require_reason(reason)
    _not_self(
        user, actor, "state", Msg("You cannot deactivate yourself: ask another administrator.")
    )
    if not user.active:
        raise _refuse("state", Msg("{username} is already inactive.", username=username))
    if user.role == "admin":
        _keep_an_admin(session, user, "state")
    user.active = False
    end_sessions(session, user)
    revoked = revoke_tokens(session, user)
    record(session, actor, "user.deactivate", f"user:{username}", reason, tokens_revoked=revoked)
    return revoked


def activate_user(session: Session, username: str, *, reason: str, actor) -> User:
    """Let a deactivated user sign in again (their old tokens stay revoked)."""
    user = _user(session, username)
    reason = _require_reason(reason)
    if user.active:
        raise _refuse("state", Msg("{username} is already active.", username=username))
    user.active = True
    record(session, actor, "user.activate", f"user:{username}", reason)
    return user


def unlock_user(session: Session, username: str, *, actor, reason: str = "") -> dict:
    """Clear the sign-in lock and failure count of ``username`` (audited as ``user.unlock``)."""
    reason = _optional_reason(reason)
    state = unlock(session, username)
    if state is None:
        if session.scalar(select(User.id).where(User.username == username)) is None:
            raise _refuse(
                "username",
                Msg(
                    "There is no user called {username!r} and no lock on that name.",
                    username=username,
                ),
            )
        state = {"failures": 0, "locked": False}
    record(session, actor, "user.unlock", f"user:{username}", reason, **state)
    return state


def revoke_user_tokens(
    session: Session, username: str, *, actor, kind: str | None = None, reason: str = ""
) -> int:
    """Revoke the live tokens of ``username`` (of ``kind``, or all); audited as
    ``user.tokens_revoked``. Returns how many."""
    user = _user(session, username)
    reason = _optional_reason(reason)
    if kind is not None and kind not in TOKEN_KINDS:
        raise _refuse(
            "kind",
            Msg(
                "Token kind {kind!r} is not one of {kinds}.",
                kind=kind,
                kinds=", ".join(TOKEN_KINDS),
            ),
        )
    count = revoke_tokens(session, user, kind)
    record(
        session, actor, "user.tokens_revoked", f"user:{username}", reason,
        kind=kind or "all", count=count,
    )  # fmt: skip
    return count


#: how long a device token lasts when the setting does not say (DEVICE_TOKEN_DAYS)
DEVICE_TOKEN_DAYS = 180
#: the longest a token may be given (ten years: longer is no expiry at all)
MAX_TOKEN_DAYS = 3650
#: the most live device tokens a monitor may set up for themselves (``/profile/phone``): one
#: phone and a spare or two; past that an administrator revokes one (a stolen session must not
#: mint phone access without end)
MAX_OWN_DEVICE_TOKENS = 3


def issue_device_token(
    session: Session,
    username: str,
    *,
    actor,
    label: str = "",
    hours: int | None = None,
    days: int = DEVICE_TOKEN_DAYS,
    most_live: int | None = None,
) -> tuple[str, ApiToken]:
    """A device token for a phone of ``username`` (OpenRosa URL ``/key/<token>/``); the token is
    returned once and never stored. It lasts ``hours``, else ``days`` (the setting
    ``DEVICE_TOKEN_DAYS``, 180 by default): a token written on a lost phone stops working by
    itself; :func:`renew_device_token` extends one that is still in use. With ``most_live``, refused
    when the person already has that many live device tokens. Audited as ``user.token_issued``."""
    user = _user(session, username)
    if not user.active:
        raise _refuse("state", Msg("{username} is inactive.", username=username))
    if user.role not in SCOPED_ROLES:  # the roles that use phones (clms.openrosa.views)
        raise _refuse(
            "role",
            Msg("Device tokens are for phones; a {role} does not use one.", role=Msg(user.role)),
        )
    if hours is not None and not 0 < hours <= 24 * MAX_TOKEN_DAYS:
        raise _refuse(
            "hours", Msg("The hours must be a number from 1 to {most}.", most=24 * MAX_TOKEN_DAYS)
        )
    _check_days(days)
    if most_live is not None:
        live = sum(
            1
            for t in list_tokens(session, username)
            if t.kind == "device" and token_state(t) == "live"
        )
        if live >= most_live:
            raise _refuse(
                "token",
                Msg("{username} already has {count} phones set up (at most {most}): ask an "
                    "administrator to revoke the token of one you no longer use.",
                    username=username, count=live, most=most_live),
            )  # fmt: skip
    token, row = issue_token(
        session, user, "device", hours=hours if hours is not None else 24 * days,
        label=label[:200],
    )  # fmt: skip
    record(
        session, actor, "user.token_issued", f"user:{username}",
        kind="device", token_id=row.id, label=row.label,
        expires_at=row.expires_at.isoformat(timespec="minutes"),
    )  # fmt: skip
    return token, row


def renew_device_token(
    session: Session, username: str, token_id: int, *, actor, days: int = DEVICE_TOKEN_DAYS
) -> ApiToken:
    """Extend device token ``token_id`` of ``username`` to ``days`` days from now, so the phone
    holding it keeps working with nothing to change on it. A revoked token stays revoked; an
    expired one may be renewed (the phone was only idle). Audited as ``user.token_renewed``."""
    user = _user(session, username)
    row = session.get(ApiToken, token_id)
    if row is None or row.user_id != user.id or row.kind != "device":
        raise _refuse(
            "token",
            Msg("{username} has no device token {token_id}.", username=username, token_id=token_id),
        )
    if row.revoked_at is not None:
        raise _refuse(
            "token",
            Msg("Device token {token_id} was revoked; issue a new one instead.", token_id=token_id),
        )
    if not user.active:
        raise _refuse("state", Msg("{username} is inactive.", username=username))
    _check_days(days)
    before = row.expires_at
    row.expires_at = utcnow() + dt.timedelta(days=days)
    record(
        session, actor, "user.token_renewed", f"user:{username}", kind="device",
        token_id=row.id, expires_at=row.expires_at.isoformat(timespec="minutes"),
        was=before.isoformat(timespec="minutes") if before else None,
    )  # fmt: skip
    return row


def list_tokens(session: Session, username: str) -> list[ApiToken]:
    """The tokens of ``username``, newest first (their rows: the tokens themselves are not kept)."""
    user = _user(session, username)
    return list(
        session.scalars(
            select(ApiToken)
            .where(ApiToken.user_id == user.id)
            .order_by(ApiToken.created_at.desc(), ApiToken.id.desc())
        )
    )


def token_state(token: ApiToken) -> str:
    """``live``, ``expired`` or ``revoked``."""
    if token.revoked_at is not None:
        return "revoked"
    if token.expires_at is not None and token.expires_at <= utcnow():
        return "expired"
    return "live"


def describe(session: Session, user: User) -> dict:
    """What ``user`` may do, as plain data for an audit entry: role, areas, brand, provider."""
    codes = []
    for scope in user.scopes:
        if scope.area_id is not None:
            codes.append(session.get(Area, scope.area_id).code)
        else:
            codes.append(session.get(Village, scope.village_id).code)
    return {
        "role": user.role,
        "areas": sorted(codes),
        "brand": user.brand.code if user.brand is not None else None,
        "provider": user.provider.code if user.provider is not None else None,
        "active": bool(user.active) if user.active is not None else True,
    }


def _user(session: Session, username: str) -> User:
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise _refuse("username", Msg("There is no user called {username!r}.", username=username))
    return user


def _set_password(user: User, password: str, realm: str, min_length: int | None) -> None:
    refusal = password_refusal(
        password, user.username or "", password_min_length({"PASSWORD_MIN_LENGTH": min_length})
    )
    if refusal is not None:
        raise UserError(refusal, field="password")
    set_password(user, password, realm, min_length=min_length)


def _check_days(days: int) -> None:
    if not 0 < days <= MAX_TOKEN_DAYS:
        raise _refuse(
            "days", Msg("The days must be a number from 1 to {most}.", most=MAX_TOKEN_DAYS)
        )


def _require_reason(reason: str) -> str:
    """The reason of a change of permissions, without blanks and invisible characters at its
    ends; refused when nothing is left or when it is longer than :data:`MAX_REASON`."""
    text = _optional_reason(reason)
    if text is None:
        raise _refuse(
            "reason", Msg("Say why (the reason): changes of permissions are audited with it.")
        )
    return text


def _optional_reason(reason: str | None) -> str | None:
    """A reason that may be left out (None when only blanks), at most :data:`MAX_REASON`."""
    text = _EDGES.sub("", reason or "")
    if len(text) > MAX_REASON:
        raise _refuse(
            "reason",
            Msg("The reason is too long ({length} characters; at most {most}).",
                length=len(text), most=MAX_REASON),
        )  # fmt: skip
    return text or None


def _check_name(full_name: str | None) -> str:
    text = (full_name or "").strip()
    if len(text) > MAX_NAME:
        raise _refuse(
            "full_name",
            Msg("The full name is too long ({length} characters; at most {most}).",
                length=len(text), most=MAX_NAME),
        )  # fmt: skip
    if any(_control(c) for c in text):
        raise _refuse("full_name", Msg("The full name must not hold control characters."))
    return text


def _check_email(email: str | None) -> str | None:
    text = (email or "").strip()
    if not text:
        return None
    if len(text) > MAX_EMAIL or any(_control(c) for c in text) or not _EMAIL.fullmatch(text):
        raise _refuse(
            "email",
            Msg("{email!r} is not an e-mail address (name@example.org, at most {most} "
                "characters, no spaces).", email=text[:100], most=MAX_EMAIL),
        )  # fmt: skip
    return text


def _control(char: str) -> bool:
    """A control, format (bidirectional, zero-width) or line-breaking character."""
    return unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp")


def _not_self(user: User, actor, field: str, message: Msg) -> None:
    if isinstance(actor, User) and actor.id == user.id:
        raise _refuse(field, message)


def _keep_an_admin(session: Session, user: User, field: str) -> None:
    """Refuse a change that would leave no active administrator."""
    others = session.scalar(
        select(func.count(User.id)).where(
            User.role == "admin", User.active.is_(True), User.id != user.id
        )
    )
    if not others:
        raise _refuse(
            field,
            Msg("{username} is the last active administrator: make someone else an "
                "administrator first.", username=user.username),
        )  # fmt: skip


def _permissions(
    session: Session,
    role: str,
    scope_codes: list[str],
    brand_code: str | None,
    provider_code: str | None,
) -> tuple[Brand | None, ServiceProvider | None, list[UserScope]]:
    """Check that ``role`` comes with what it needs (areas, a brand, a provider) and nothing
    else; returns the brand, the provider and the scopes to give."""
    if role not in ROLES:
        raise _refuse(
            "role", Msg("Unknown role {role!r}; one of {roles}.", role=role, roles=", ".join(ROLES))
        )
    if role in SCOPED_ROLES and not scope_codes:
        raise _refuse("areas", Msg("A {role} needs at least one area or village.", role=Msg(role)))
    if role not in SCOPED_ROLES and scope_codes:
        raise _refuse("areas", Msg("A {role} has no area scope; give no areas.", role=Msg(role)))
    brand = None
    if role == "brand":
        if not brand_code:
            raise _refuse("brand", Msg("A brand user needs a brand."))
        brand = session.scalar(select(Brand).where(Brand.code == brand_code))
        if brand is None:
            raise _refuse("brand", Msg("Unknown brand code {code!r}.", code=brand_code))
    elif brand_code:
        raise _refuse("brand", Msg("Only brand users belong to a brand."))
    provider = None
    if role == "provider":
        if not provider_code:
            raise _refuse("provider", Msg("A provider user needs a service provider."))
        provider = session.scalar(
            select(ServiceProvider).where(ServiceProvider.code == provider_code)
        )
        if provider is None:
            raise _refuse("provider", Msg("Unknown provider code {code!r}.", code=provider_code))
    elif provider_code:
        raise _refuse("provider", Msg("Only provider users belong to a provider."))
    scopes = [_scope_for(session, code) for code in dict.fromkeys(scope_codes)]  # each code once
    return brand, provider, scopes


def _scope_for(session: Session, code: str) -> UserScope:
    area = session.scalar(select(Area).where(Area.code == code))
    if area is not None:
        return UserScope(area_id=area.id)
    village = session.scalar(select(Village).where(Village.code == code))
    if village is not None:
        return UserScope(village_id=village.id)
    raise _refuse("areas", Msg("Unknown area or village code {code!r}.", code=code))
