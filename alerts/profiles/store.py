"""Country profiles in the database: seeding, reading the current versions, changing them.

A change never edits a row: it adds version N+1 of the same code with ``current`` True and sets
the old row's ``current`` to False, so every classification keeps naming exactly the law it
applied. Validation is the pure :func:`alerts.rules.profile_problems`; a refusal raises
:class:`alerts.rules.ProfileError` (a ``ValueError``) naming each field and its problem, before
anything is written.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from alerts.profiles.model import EDITABLE_FIELDS, new_sources
from alerts.profiles.seeds import seed_profiles
from alerts.rules import ILO_DEFAULT, RULE_FIELDS, Profile, ProfileError, profile_problems
from clms.models import CountryProfile, User, utcnow

log = logging.getLogger(__name__)
_UNREADABLE = object()


def ensure_profiles(session: Session, reference_xml: Path | None) -> list[CountryProfile]:
    """Add version 1 of every seeded profile that has no row yet; returns the rows added.

    Idempotent: a code with any version (even one an administrator changed) is left alone.
    """
    existing = set(session.scalars(select(CountryProfile.code).distinct()))
    added = []
    for row in seed_profiles(reference_xml):
        if row["code"] in existing:
            continue
        profile = CountryProfile(**row)
        session.add(profile)
        added.append(profile)
    if added:
        session.flush()
        log.info("seeded country profiles %s", ", ".join(p.code for p in added))
    return added


def current_profiles(session: Session) -> dict[str, Profile]:
    """The current version of every profile, as rules profiles carrying their ``row_id``.

    Classifications reference ``profile.row_id`` (``classifications.profile_id``).
    """
    rows = session.scalars(select(CountryProfile).where(CountryProfile.current.is_(True)))
    return {row.code: to_rules_profile(row) for row in rows}


def to_rules_profile(row: CountryProfile) -> Profile:
    """The :class:`alerts.rules.Profile` of a ``country_profiles`` row."""
    return Profile.from_mapping(
        {"code": row.code, "name": row.name, "version": row.version, **profile_values(row)},
        row_id=row.id,
    )


def profile_values(row: CountryProfile) -> dict:
    """The editable values of a row (:data:`alerts.profiles.model.EDITABLE_FIELDS`)."""
    values = {name: getattr(row, name) for name in EDITABLE_FIELDS}
    values["hazardous_list"] = list(row.hazardous_list or [])
    return values


def current_profile(session: Session, code: str, lock: bool = False) -> CountryProfile | None:
    """The current row of ``code`` (None if there is none); ``lock`` holds it until commit."""
    query = select(CountryProfile).where(
        CountryProfile.code == code, CountryProfile.current.is_(True)
    )
    if lock:
        query = query.with_for_update()
    return session.scalar(query)


def current_profiles_rows(session: Session) -> list[CountryProfile]:
    """The current row of every profile: ``ILO`` first, then by code."""
    rows = session.scalars(
        select(CountryProfile).where(CountryProfile.current.is_(True)).order_by(CountryProfile.code)
    ).all()
    return sorted(rows, key=lambda r: (r.code != "ILO", r.code))


def profile_history(session: Session, code: str) -> list[CountryProfile]:
    """Every version of ``code``, newest first, authors loaded (empty when there is none)."""
    return list(
        session.scalars(
            select(CountryProfile)
            .where(CountryProfile.code == code)
            .options(selectinload(CountryProfile.created_by))
            .order_by(CountryProfile.version.desc())
        )
    )


def update_profile(
    session: Session,
    code: str,
    changes: Mapping,
    user: User | None,
    note: str,
    unreadable: Mapping[str, str] | None = None,
) -> CountryProfile:
    """Add the next version of ``code`` with ``changes`` applied; the new row is current.

    Parameters
    ----------
    changes
        Field -> new value (typed: see :func:`alerts.profiles.model.parse_changes` for text). Fields
        whose value equals the current one are not changes; at least one must differ.
    user
        Who changes it (None from the command line without ``--by``).
    note
        Why: required, kept on the new version.
    unreadable
        Fields the caller could not read, with the problem (see
        :func:`alerts.profiles.model.read_changes`): reported with every other problem, so a form
        shows them all at once. Any of them refuses the change.

    Raises
    ------
    ProfileError
        (a ``ValueError``) naming each field and its problem; nothing is written.
    """
    old = current_profile(session, code, lock=True)
    if old is None:
        raise ProfileError({"code": f"there is no profile {code!r}"})
    errors: dict[str, str] = {}
    unknown = [name for name in changes if name not in EDITABLE_FIELDS]
    for name in unknown:
        errors[name] = f"not a profile field (fields: {', '.join(EDITABLE_FIELDS)})"
    current = profile_values(old)
    wanted = {k: v for k, v in changes.items() if k not in unknown}
    current["hazardous_list"] = sorted(set(current["hazardous_list"]))
    if isinstance(wanted.get("hazardous_list"), list | tuple | set | frozenset):
        # a list, not a sequence: the order of the codes means nothing
        wanted["hazardous_list"] = sorted(set(wanted["hazardous_list"]))
    if "national_hazardous_list" in wanted and not isinstance(
        wanted["national_hazardous_list"], bool
    ):
        errors["national_hazardous_list"] = "must be yes or no"
        del wanted["national_hazardous_list"]
    changed = {k: v for k, v in wanted.items() if v != current[k]}
    values = {**current, **changed}
    unreadable = dict(unreadable or {})
    # an unreadable field must not be checked as its old value (a wrong "must be below" message)
    checked = {**values, **{k: _UNREADABLE for k in unreadable if k in values}}
    errors.update(profile_problems({"code": code, **checked}, changed=[*changed, *unreadable]))
    errors.update(unreadable)
    if not (note or "").strip():
        errors["note"] = "say why the profile changes (kept with the new version)"
    if not changed and not errors:
        errors["changes"] = f"nothing differs from version {old.version}"
    if errors:
        raise ProfileError(errors)

    # the partial unique index allows one current row per code: retire the old one first
    old.current = False
    session.flush()
    by = user.username if user is not None else "the command line"
    row = CountryProfile(
        code=code,
        version=old.version + 1,
        current=True,
        **values,
        sources=new_sources(old.sources or {}, changed, by, note.strip()),
        change_note=note.strip(),
        created_at=utcnow(),
        created_by_id=user.id if user is not None else None,
    )
    session.add(row)
    session.flush()
    log.info("profile %s version %d by %s: %s", code, row.version, by, ", ".join(changed))
    return row


def add_profile(
    session: Session,
    code: str,
    name: str,
    values: Mapping | None,
    user: User | None,
    note: str,
) -> CountryProfile:
    """Add version 1 of a new country's profile: the ILO values, overridden by ``values``.

    ``code`` is the ISO 3166 alpha-3 code the areas carry (capitals). Raises
    :class:`~alerts.rules.ProfileError` naming each field and its problem; nothing is written.
    """
    code = (code or "").strip()
    values = dict(values or {})
    base = current_profile(session, "ILO")
    start = profile_values(base) if base is not None else {**ILO_DEFAULT.values()}
    errors: dict[str, str] = {}
    for key in values:
        if key not in RULE_FIELDS and key != "national_hazardous_list":
            errors[key] = f"not a profile value (values: {', '.join(RULE_FIELDS)})"
    merged = {**start, **{k: v for k, v in values.items() if k not in errors}}
    merged["name"] = (name or "").strip()
    merged.setdefault("national_hazardous_list", False)
    errors.update(profile_problems({"code": code, **merged}, changed=values))
    if "code" not in errors and session.scalar(
        select(CountryProfile.id).where(CountryProfile.code == code).limit(1)
    ):
        errors["code"] = f"there is already a profile {code}; change it with a new version"
    if not (note or "").strip():
        errors["note"] = "say where the values come from (kept with the profile)"
    if errors:
        raise ProfileError(errors)

    by = user.username if user is not None else "the command line"
    origin = f"ILO profile version {base.version}" if base is not None else "ILO default"
    sources = {f: f"copied from the {origin}" for f in RULE_FIELDS}
    sources["national_hazardous_list"] = f"set by {by}: {note.strip()}"
    sources.update(new_sources({}, values, by, note.strip()))
    merged["hazardous_list"] = sorted(set(merged["hazardous_list"]))
    row = CountryProfile(
        code=code,
        version=1,
        current=True,
        **merged,
        sources=sources,
        change_note=note.strip(),
        created_at=utcnow(),
        created_by_id=user.id if user is not None else None,
    )
    session.add(row)
    session.flush()
    log.info("profile %s added by %s", code, by)
    return row
