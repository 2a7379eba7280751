"""Adding and changing users."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from clms.auth import set_password
from clms.models import Area, Brand, ServiceProvider, User, UserScope, Village

SCOPED_ROLES = {"monitor", "officer", "supervisor"}


class UserError(ValueError):
    """A user cannot be added or changed as asked; the message says why."""


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
) -> User:
    """Add a user; monitors, officers and supervisors need at least one area or village code.

    Raises :class:`UserError` naming what is wrong (unknown code, duplicate username, ...).
    """
    scope_codes = scope_codes or []
    username = username.strip()
    if not username or any(c in username for c in ":/ \t"):
        raise UserError(f"Username {username!r} must be non-empty, without spaces, ':' or '/'.")
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise UserError(f"There is already a user called {username!r}.")
    if role in SCOPED_ROLES and not scope_codes:
        raise UserError(f"A {role} needs at least one --area (see `clms areas`).")
    if role not in SCOPED_ROLES and scope_codes:
        raise UserError(f"A {role} has no area scope; leave out --area.")
    brand = None
    if role == "brand":
        if not brand_code:
            raise UserError("A brand user needs --brand CODE.")
        brand = session.scalar(select(Brand).where(Brand.code == brand_code))
        if brand is None:
            raise UserError(f"Unknown brand code {brand_code!r}.")
    elif brand_code:
        raise UserError("Only brand users belong to a brand.")
    provider = None
    if role == "provider":
        if not provider_code:
            raise UserError("A provider user needs --provider CODE (see the Services page).")
        provider = session.scalar(
            select(ServiceProvider).where(ServiceProvider.code == provider_code)
        )
        if provider is None:
            raise UserError(f"Unknown provider code {provider_code!r}.")
    elif provider_code:
        raise UserError("Only provider users belong to a provider.")

    user = User(
        username=username, role=role, full_name=full_name, email=email, brand=brand,
        provider=provider,
    )  # fmt: skip
    try:
        set_password(user, password, realm)
    except ValueError as e:
        raise UserError(str(e)) from e
    for code in scope_codes:
        user.scopes.append(_scope_for(session, code))
    session.add(user)
    session.flush()
    return user


def _scope_for(session: Session, code: str) -> UserScope:
    area = session.scalar(select(Area).where(Area.code == code))
    if area is not None:
        return UserScope(area_id=area.id)
    village = session.scalar(select(Village).where(Village.code == code))
    if village is not None:
        return UserScope(village_id=village.id)
    raise UserError(f"Unknown area or village code {code!r} (see `clms areas`).")
