"""People as administrators see them on the web, and what a person changes of their own account.

The list of users (:func:`list_users`: search, role and state, a page at a time) and one user
(:func:`user_facts`: state, lock, last sign-in, last submission, tokens), for the users pages;
the web's operations that the command line does not have: a scope change of whatever kind the
role has (:func:`change_scope`), a generated password (:func:`generate_password`), and a person's
own password and language (:func:`change_own_password`, :func:`set_language`). Every change is
audited as :mod:`clms.auth.users` audits the same change from the command line.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass, field

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash

from clms.audit import record
from clms.auth.limits import Limits, attempt_sign_in, lock_state
from clms.auth.passwords import password_problems
from clms.auth.users import (
    MAX_OWN_DEVICE_TOKENS,
    SCOPED_ROLES,
    UserError,
    change_areas,
    change_password,
    change_role,
    describe,
    issue_device_token,
    list_tokens,
)
from clms.i18n import Msg, available_locales
from clms.models import (
    ROLES,
    ApiToken,
    Area,
    Brand,
    LoginThrottle,
    ServiceProvider,
    Submission,
    User,
    Village,
    utcnow,
)
from clms.paging import Page, Paging

STATES = ("active", "locked", "inactive")
USER_PAGING = Paging(per_page=50, clamp=True)


@dataclass
class UserLine:
    """One person on the users page: who, what they may see (``scope``: area and village codes,
    or the brand or provider code), their ``state`` (``active``, ``locked``, ``inactive``), when
    they last signed in and (monitors, officers, supervisors) when their last submission came."""

    user: User
    scope: list[str]
    state: str
    locked_until: dt.datetime | None = None
    last_submission: dt.datetime | None = None
    tokens: list[ApiToken] = field(default_factory=list)


def list_users(
    session: Session,
    *,
    search: str = "",
    role: str | None = None,
    state: str | None = None,
    page: int = 1,
) -> Page[UserLine]:
    """One page of the users, by username: those whose username, name or email holds ``search``
    (any case), of ``role``, in ``state``."""
    now = utcnow()
    locked = select(LoginThrottle.key).where(
        LoginThrottle.scope == "user", LoginThrottle.locked_until > now
    )
    query = select(User)
    text = search.strip().lower()
    if text:
        like = f"%{text.replace('%', '').replace('_', '')}%"
        query = query.where(
            or_(
                func.lower(User.username).like(like),
                func.lower(User.full_name).like(like),
                func.lower(func.coalesce(User.email, "")).like(like),
            )
        )
    if role in ROLES:
        query = query.where(User.role == role)
    if state == "inactive":
        query = query.where(User.active.is_(False))
    elif state == "locked":
        query = query.where(User.active.is_(True), User.username.in_(locked))
    elif state == "active":
        query = query.where(User.active.is_(True), User.username.not_in(locked))
    total = session.scalar(select(func.count()).select_from(query.subquery()))
    window = USER_PAGING.check(page, total=total)
    users = list(
        session.scalars(query.order_by(User.username).limit(window.limit).offset(window.offset))
    )
    lines = _lines(session, users)
    return Page(lines, total, window.page, window.pages(total), window.per_page)


def get_user(session: Session, user_id: int) -> User | None:
    return session.get(User, user_id)


def user_facts(session: Session, user: User) -> UserLine:
    """Everything the page of one user shows of them, with their tokens newest first."""
    line = _lines(session, [user])[0]
    line.tokens = list_tokens(session, user.username)
    return line


def _lines(session: Session, users: list[User]) -> list[UserLine]:
    names = [u.username for u in users]
    locks = lock_state(session, names) if names else {}
    phones = [u.id for u in users if u.role in SCOPED_ROLES]
    last = {}
    if phones:
        last = dict(
            session.execute(
                select(Submission.submitter_id, func.max(Submission.received_at))
                .where(Submission.submitter_id.in_(phones))
                .group_by(Submission.submitter_id)
            ).all()
        )
    lines = []
    for user in users:
        facts = describe(session, user)
        scope = facts["areas"] or [c for c in (facts["brand"], facts["provider"]) if c]
        if not user.active:
            state = "inactive"
        elif user.username in locks:
            state = "locked"
        else:
            state = "active"
        lines.append(UserLine(user, scope, state, locks.get(user.username), last.get(user.id)))
    return lines


def change_scope(
    session: Session,
    username: str,
    *,
    reason: str,
    actor,
    scope_codes: list[str] | None = None,
    brand_code: str | None = None,
    provider_code: str | None = None,
) -> User:
    """Change what ``username`` may see within their role: the areas and villages of a monitor,
    officer or supervisor (audited as ``user.areas``), the brand of a brand user or the
    organisation of a provider (a change of what the role comes with: ``user.role``, the role
    itself unchanged). Admins have no scope."""
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise UserError(Msg("There is no user called {username!r}.", username=username),
                        field="username")  # fmt: skip
    if user.role in SCOPED_ROLES:
        return change_areas(session, username, scope_codes or [], reason=reason, actor=actor)
    if user.role == "admin":
        raise UserError(Msg("An administrator has no scope to change."), field="areas")
    return change_role(
        session, username, user.role, reason=reason, actor=actor,
        brand_code=brand_code if user.role == "brand" else None,
        provider_code=provider_code if user.role == "provider" else None,
    )  # fmt: skip


#: the words a generated password is made of: short, common, unambiguous in English and French
_WORDS = (
    "acacia", "argile", "baobab", "bateau", "bijou", "bouton", "cactus", "canard", "carton",
    "cerise", "citron", "colline", "copain", "crayon", "domino", "etoile", "fenetre", "fleuve",
    "fourmi", "girafe", "guitare", "hibou", "jardin", "koala", "lagune", "lapin", "lumiere",
    "mangue", "marche", "melon", "miroir", "montagne", "mouton", "nuage", "olive", "orange",
    "palmier", "panier", "papaye", "piment", "pirogue", "planete", "poisson", "radio", "rivage",
    "robot", "sable", "safari", "savane", "signal", "soleil", "tambour", "tomate", "tortue",
    "trompette", "tulipe", "valise", "violon", "volcan", "zebre",
)  # fmt: skip


def generate_password(username: str = "") -> str:
    """A password to give ``username``, easy to read out and type on a phone: four random words
    and a two-digit number (about 23.6 bits from the words with 60 of them, 6.5 from the number;
    the sign-in lock makes guessing online hopeless, and the person changes it on their profile
    page). Drawn again in the rare case the policy refuses it (a word that is the username).

    >>> password = generate_password("sable")
    >>> len(password.split("-")), "sable" in password, password_problems(password, "sable")
    (5, False, [])
    """
    while True:
        words = [secrets.choice(_WORDS) for _ in range(4)]
        password = "-".join([*words, f"{secrets.randbelow(90) + 10}"])
        if not password_problems(password, username):
            return password


class WrongPassword(UserError):
    """The password a signed-in person typed to confirm a change is not theirs (or their username
    is locked). The failure is counted and audited in the session, as a failed sign-in is: the
    caller commits before answering (its other changes were not made)."""


def confirm_password(
    session: Session, user: User, password: str, *, address: str, limits: Limits, surface: str
) -> None:
    """Check that ``password`` is ``user``'s, in the same throttle as the sign-in page
    (:mod:`clms.auth.limits`): a wrong one counts as a failed sign-in of the username (audited
    as ``auth.login_failed`` with ``surface``) and locks it after as many; while it is locked,
    even the right password is refused. Raises :class:`WrongPassword` naming the ``current``
    field."""
    attempt = attempt_sign_in(
        session, user.username,
        lambda: user if password and check_password_hash(user.password_hash, password) else None,
        address=address, limits=limits, surface=surface, count_every_attempt=False,
    )  # fmt: skip
    refusal = attempt.refusal
    if refusal is None:
        return
    if refusal.key == "auth.failed":
        raise WrongPassword(Msg("The current password is not right."), field="current")
    # locked, or too many attempts from this address: the sign-in's own message
    raise WrongPassword(refusal.msg, field="current", headers=refusal.headers)


def change_own_password(
    session: Session,
    user: User,
    current: str,
    new: str,
    *,
    realm: str,
    address: str,
    limits: Limits,
    min_length: int | None = None,
) -> None:
    """``user`` changes their own password: the current one must be right
    (:func:`confirm_password`: a wrong one counts towards the sign-in lock). As a reset does, it
    ends their web sessions everywhere (the caller keeps the one the change came from) and
    revokes their API tokens; audited as ``user.password`` by the person."""
    confirm_password(session, user, current, address=address, limits=limits, surface="profile")
    if new == current:
        raise UserError(Msg("The new password is the same as the current one."), field="password")
    change_password(
        session, user.username, new, realm=realm, actor=user, reason="changed on the profile page",
        min_length=min_length,
    )  # fmt: skip


def set_up_own_phone(
    session: Session,
    user: User,
    password: str,
    *,
    address: str,
    limits: Limits,
    label: str,
    days: int,
):
    """A monitor sets up a phone of their own: their password first (:func:`confirm_password`,
    so that a stolen session alone does not become phone access), and at most
    :data:`~clms.auth.users.MAX_OWN_DEVICE_TOKENS` live device tokens (past that an
    administrator revokes one). Returns the token and its row (:func:`issue_device_token`)."""
    confirm_password(session, user, password, address=address, limits=limits, surface="phone")
    return issue_device_token(
        session, user.username, actor=user, label=label, days=days,
        most_live=MAX_OWN_DEVICE_TOKENS,
    )  # fmt: skip


def set_language(session: Session, user: User, locale: str, *, actor,
                 languages: tuple[str, ...] | None = None) -> None:  # fmt: skip
    """The language ``user`` reads the pages in (one of ``languages``, those offered; default:
    any with a catalogue); audited as
    ``user.language``."""
    if locale not in (languages or available_locales()):
        raise UserError(Msg("Unknown language {locale!r}.", locale=locale), field="locale")
    before, user.locale = user.locale, locale
    record(session, actor, "user.language", f"user:{user.username}", before=before, after=locale)


@dataclass
class ScopeChoices:
    """What a user may be given: the brands and the service providers (each as code and
    "name (code)"), and the area and village codes with their names (the form's suggestions)."""

    brands: list[tuple[str, str]]
    providers: list[tuple[str, str]]
    places: list[tuple[str, str]]


#: the most area and village codes a form suggests (a country can have thousands of villages;
#: any code can still be typed)
MAX_SUGGESTED_PLACES = 3000


def scope_choices(session: Session) -> ScopeChoices:
    """The brands, providers and places the users forms offer."""
    brands = session.execute(select(Brand.code, Brand.name).order_by(Brand.code)).all()
    providers = session.execute(
        select(ServiceProvider.code, ServiceProvider.name).order_by(ServiceProvider.code)
    ).all()
    areas = session.execute(
        select(Area.code, Area.name).order_by(Area.code).limit(MAX_SUGGESTED_PLACES)
    ).all()
    villages = session.execute(
        select(Village.code, Village.name)
        .order_by(Village.code)
        .limit(max(0, MAX_SUGGESTED_PLACES - len(areas)))
    ).all()
    return ScopeChoices(
        [(code, f"{name} ({code})") for code, name in brands],
        [(code, f"{name} ({code})") for code, name in providers],
        [(code, name) for code, name in [*areas, *villages]],
    )
