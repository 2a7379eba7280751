"""Country profiles (pure): the profiles' codes and names, the labels people read, and reading
an administrator's changes (which fields may change, from text to values, what differs).

The seeds (version 1 of each profile) are :mod:`alerts.profiles.seeds`; the versions in the
database, :mod:`alerts.profiles.store`. Validating a whole profile is the rules' own
(:func:`alerts.rules.profile_problems`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from alerts.rules import (
    ILO_DEFAULT,
    RULE_FIELDS,
    Profile,
    ProfileError,
)
from clms.i18n import N_
from clms.lexicon import HAZARD

#: profile code -> name shown to people
PROFILE_NAMES = {
    "ILO": "ILO statistical default",
    "CIV": "Côte d'Ivoire",
    "GHA": "Ghana",
    "IND": "India",
    "BGD": "Bangladesh",
    "MMR": "Myanmar",
    "KHM": "Cambodia",
    "IDN": "Indonesia",
    "PHL": "Philippines",
    "THA": "Thailand",
}
SEEDED_CODES = tuple(PROFILE_NAMES)


def profile_code_for(country_code: str | None, known: Iterable[str]) -> str:
    """The profile an area's country uses: its ISO 3166 alpha-3 code if profiled, else ``ILO``.

    >>> profile_code_for("civ", SEEDED_CODES), profile_code_for("FRA", SEEDED_CODES)
    ('CIV', 'ILO')
    """
    code = (country_code or "").strip().upper()
    return code if code and code in set(known) else "ILO"


def profile_for(profiles: Mapping[str, Profile], country_code: str | None) -> Profile:
    """The profile of ``profiles`` (code -> profile) for an area's country; ``ILO`` by default.

    Falls back to the built-in :data:`alerts.rules.ILO_DEFAULT` when even ``ILO`` is missing.
    """
    return profiles.get(profile_code_for(country_code, profiles)) or profiles.get(
        "ILO", ILO_DEFAULT
    )


#: hazard code -> the form's English label (clms_household_visit choices): the vocabulary's
HAZARD_LABELS = {code: label for code, label in HAZARD.items() if code != "none"}

#: field -> what it means, for people reading or editing a profile
FIELD_LABELS = {
    "name": N_("Name"),
    "light_work_age": N_("Light work allowed from age"),
    "min_age": N_("Minimum age for work"),
    "min_age_hazardous": N_("Minimum age for hazardous work"),
    "light_work_max_hours": N_("Light work: hours a week below"),
    "hazardous_hours": N_("Hazardous from hours a week"),
    "chores_hours": N_("Household chores: at risk from hours a week"),
    "compulsory_school_age": N_("School compulsory below age"),
    "hazardous_list": N_("Hazards that count"),
    "national_hazardous_list": N_("National hazardous-work list exists"),
}

#: fields an administrator may change (a new version each time)
EDITABLE_FIELDS = ("name",) + RULE_FIELDS + ("national_hazardous_list",)
_INT_FIELDS = frozenset(RULE_FIELDS) - {"compulsory_school_age", "hazardous_list"}
_EMPTY = {"", "none", "-", "null"}
_WHOLE_NUMBER = re.compile(r"-?[0-9]+")
_TRUE, _FALSE = {"yes", "true", "1", "on", "y"}, {"no", "false", "0", "off", "n", ""}


def parse_changes(raw: Mapping[str, str | list[str] | None]) -> dict:
    """Turn text from a command line or a web form into profile values, or refuse.

    Whole numbers for ages and hours; ``compulsory_school_age`` empty or "none" for no schooling
    rule; ``hazardous_list`` as comma-separated codes (or a list, from check boxes; empty for
    none); ``national_hazardous_list`` yes/no. Raises :class:`~alerts.rules.ProfileError` naming
    every field that cannot be read; ranges and order are checked later, on the whole profile.

    >>> parse_changes({"min_age": "16", "hazardous_list": "agrochemicals, heavy_loads"})
    {'min_age': 16, 'hazardous_list': ['agrochemicals', 'heavy_loads']}
    """
    values, errors = read_changes(raw)
    if errors:
        raise ProfileError(errors)
    return values


def read_changes(raw: Mapping[str, str | list[str] | None]) -> tuple[dict, dict[str, str]]:
    """Like :func:`parse_changes`, but returns ``(values read, {field: problem})``.

    A form can then report the fields it could not read together with every other problem
    (:func:`alerts.profiles.store.update_profile` takes them as ``unreadable``).

    >>> read_changes({"min_age": "sixteen", "chores_hours": "28"})
    ({'chores_hours': 28}, {'min_age': "must be a whole number (got 'sixteen')"})
    """
    values: dict = {}
    errors: dict[str, str] = {}
    for name, value in raw.items():
        if name not in EDITABLE_FIELDS:
            errors[name] = f"not a profile field (fields: {', '.join(EDITABLE_FIELDS)})"
        elif name == "hazardous_list":
            items = value.split(",") if isinstance(value, str) else list(value or ())
            values[name] = list(dict.fromkeys(i.strip() for i in items if i and i.strip()))
        elif name == "national_hazardous_list":
            text = str(value or "").strip().lower()
            if text in _TRUE or text in _FALSE:
                values[name] = text in _TRUE
            else:
                errors[name] = f"must be yes or no (got {value!r})"
        elif name == "name":
            values[name] = str(value or "").strip()
        else:
            text = str(value if value is not None else "").strip()
            if name == "compulsory_school_age" and text.lower() in _EMPTY:
                values[name] = None
            elif _WHOLE_NUMBER.fullmatch(text):
                values[name] = int(text)
            else:
                errors[name] = f"must be a whole number (got {text!r})"
    return values, errors


def changed_fields(before: Mapping, after: Mapping) -> list[str]:
    """The editable fields whose values differ (hazard lists compared as sets).

    >>> changed_fields({"min_age": 15, "hazardous_list": ["a", "b"]},
    ...                {"min_age": 16, "hazardous_list": ["b", "a"]})
    ['min_age']
    """
    out = []
    for name in EDITABLE_FIELDS:
        old, new = before.get(name), after.get(name)
        if name == "hazardous_list":
            old, new = set(old or ()), set(new or ())
        if old != new:
            out.append(name)
    return out


def new_sources(sources: Mapping[str, str], changed: Iterable[str], by: str, note: str) -> dict:
    """``sources`` with each changed field's source replaced by who changed it and why."""
    out = dict(sources)
    for name in changed:
        out[name] = f"changed by {by}: {note}"
    return out
