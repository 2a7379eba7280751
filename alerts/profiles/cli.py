"""`clms profiles ...`: list, show, change and add the country profiles the classifier applies.

Every change adds a new version (the old one stays, naming who changed what and why); see
:mod:`alerts.profiles.store`.
"""

from __future__ import annotations

from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import select

from alerts.profiles.model import EDITABLE_FIELDS, parse_changes, read_changes
from alerts.profiles.seeds import DEFAULT_REFERENCE
from alerts.rules import RULE_FIELDS, ProfileError
from clms.cli import refusals
from clms.db import session_scope
from clms.models import CountryProfile, User


@click.group("profiles")
def profiles_group() -> None:
    """Country profiles: the ages, hours and hazardous list each country's law sets."""


@profiles_group.command("list")
@with_appcontext
def profiles_list() -> None:
    """List the current version of every profile."""
    with session_scope() as session:
        rows = session.scalars(
            select(CountryProfile)
            .where(CountryProfile.current.is_(True))
            .order_by(CountryProfile.code)
        ).all()
        if not rows:
            click.echo("No profiles yet: run `clms init` (or `clms profiles seed`).")
            return
        click.echo(
            f"{'code':6} {'ver':>3}  {'light':>5} {'min':>3} {'haz':>3} {'school':>6} "
            f"{'light h':>7} {'haz h':>5} {'chores h':>8} {'hazards':>7}  name"
        )
        for p in rows:
            school = "-" if p.compulsory_school_age is None else str(p.compulsory_school_age)
            click.echo(
                f"{p.code:6} {p.version:>3}  {p.light_work_age:>5} {p.min_age:>3} "
                f"{p.min_age_hazardous:>3} {school:>6} {p.light_work_max_hours:>7} "
                f"{p.hazardous_hours:>5} {p.chores_hours:>8} {len(p.hazardous_list or []):>7}  "
                f"{p.name}"
            )


@profiles_group.command("show")
@click.argument("code")
@click.option("--history", is_flag=True, help="Also list every version: when, who, why.")
@with_appcontext
def profiles_show(code: str, history: bool) -> None:
    """Show the current values of profile CODE and where each comes from."""
    from alerts.profiles.store import profile_history

    code = code.upper()
    with session_scope() as session:
        versions = profile_history(session, code)
        current = next((v for v in versions if v.current), None)
        if current is None:
            raise click.ClickException(f"There is no profile {code}; see `clms profiles list`.")
        click.echo(f"{current.code} {current.name} (version {current.version})")
        sources = current.sources or {}
        for name in (*RULE_FIELDS, "national_hazardous_list"):
            value = getattr(current, name)
            if name == "hazardous_list":
                value = ",".join(sorted(value or [])) or "(none)"
            elif value is None:
                value = "-"
            click.echo(f"  {name:22} {value}")
            if sources.get(name):
                click.echo(f"  {'':22} source: {sources[name]}")
        if history:
            click.echo("History:")
            for v in versions:
                by = _username(session, v.created_by_id)
                mark = " (current)" if v.current else ""
                click.echo(
                    f"  version {v.version}{mark}  {v.created_at:%Y-%m-%d %H:%M} UTC  by {by}: "
                    f"{v.change_note}"
                )


@profiles_group.command("set")
@click.argument("code")
@click.argument("assignments", nargs=-1, required=True, metavar="FIELD=VALUE...")
@click.option("--note", required=True, help="Why the profile changes (kept with the version).")
@click.option("--by", "username", default=None, help="Username to record as the author.")
@with_appcontext
def profiles_set(code: str, assignments: tuple[str, ...], note: str, username: str | None) -> None:
    """Change profile CODE: adds a new version with FIELD=VALUE applied.

    \b
    Fields: name, light_work_age, min_age, min_age_hazardous, light_work_max_hours,
    hazardous_hours, chores_hours, compulsory_school_age (a number, or none),
    hazardous_list (comma-separated hazard codes), national_hazardous_list (yes/no).
    Example:
        clms profiles set GHA light_work_age=13 --note "Children's Act 1998 s. 90"
    """
    from alerts.profiles.store import update_profile

    raw = _assignments(assignments)
    with refusals(ProfileError, say=_refusal), session_scope() as session:
        user = _user(session, username)
        changes, unreadable = read_changes(raw)
        row = update_profile(session, code.upper(), changes, user, note, unreadable)
        click.echo(f"{row.code} is now at version {row.version}.")


@profiles_group.command("add")
@click.argument("code")
@click.argument("name")
@click.argument("assignments", nargs=-1, metavar="[FIELD=VALUE]...")
@click.option("--note", required=True, help="Where the values come from.")
@click.option("--by", "username", default=None, help="Username to record as the author.")
@with_appcontext
def profiles_add(
    code: str, name: str, assignments: tuple[str, ...], note: str, username: str | None
) -> None:
    """Add a profile for country CODE (ISO 3166 alpha-3): the ILO values unless FIELD=VALUE.

    \b
    Example:
        clms profiles add NGA Nigeria --note "ILO values until the national law is checked"
    """
    from alerts.profiles.store import add_profile

    raw = _assignments(assignments)
    with refusals(ProfileError, say=_refusal):
        values = parse_changes(raw)
        if "name" in values:
            raise ProfileError({"name": "give the name as the second argument"})
        with session_scope() as session:
            user = _user(session, username)
            row = add_profile(session, code.upper(), name, values, user, note)
            click.echo(f"Added {row.code} {row.name} (version 1).")


@profiles_group.command("seed")
@click.option(
    "--reference",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="US DOL ILAB countries XML (default: SHARED_DATA/reference/...).",
)
@with_appcontext
def profiles_seed(reference: Path | None) -> None:
    """Add version 1 of every seeded profile that is missing (safe to run again)."""
    from alerts.profiles.store import ensure_profiles

    if reference is None:
        reference = Path(current_app.config["SHARED_DATA"]) / DEFAULT_REFERENCE
    with session_scope() as session:
        added = ensure_profiles(session, reference if reference.is_file() else None)
        codes = ", ".join(p.code for p in added)
        click.echo(f"Seeded {codes}." if added else "Every seeded profile is already there.")


def _assignments(assignments: tuple[str, ...]) -> dict[str, str]:
    raw: dict[str, str] = {}
    for item in assignments:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise click.UsageError(
                f"{item!r} is not FIELD=VALUE (fields: {', '.join(EDITABLE_FIELDS)})"
            )
        raw[name.strip()] = value
    return raw


def _user(session, username: str | None) -> User | None:
    if username is None:
        return None
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise click.ClickException(f"There is no user {username!r}.")
    return user


def _username(session, user_id: int | None) -> str:
    if user_id is None:
        return "the command line / seed"
    user = session.get(User, user_id)
    return user.username if user is not None else f"user {user_id}"


def _refusal(error: ProfileError) -> str:
    lines = [f"  {field}: {problem}" for field, problem in error.errors.items()]
    return "Nothing changed:\n" + "\n".join(lines)
