"""Country profiles: the seeds (ILO default and nine countries), their sources, and plain helpers.

Pure: reads the US DOL ILAB reference file when given, never the database. The rows
:func:`seed_profiles` returns are version 1 of each profile; :mod:`clms.operations.profiles`
stores them and every later version.

Where each value comes from (every value gets an entry in the row's ``sources``):

- ``min_age``, ``min_age_hazardous``, ``compulsory_school_age``, ``national_hazardous_list``:
  US DOL ILAB "Findings on the Worst Forms of Child Labor" 2021 data
  (shared/data/reference/dol_ilab_countries_2021.xml: ``Legal_Standards/Minimum_Work/Age``,
  ``Minimum_Hazardous_Work/Age``, ``Compulsory_Education/Age``, ``Types_Hazardous_Work/Standard``),
  cross-checked against domain.md section 3's table. When the DOL figure is missing ("N/A") or
  impossible (Bangladesh's minimum working age reads 19, above its hazardous-work age of 18, which
  cannot be; the table says 14), the table's value is used and the
  source says why. The file names Myanmar "Burma".
- ``light_work_age``: Côte d'Ivoire 13 (its separate list of light work for ages 13-16, domain.md);
  countries with a minimum age of 14 take 12 (ILO C138 art. 7(4): a country that declared 14 may
  allow light work from 12); every other profile keeps the ILO statistical default 12 (18th ICLS
  2008), since the seed data gives no national light-work age.
- ``light_work_max_hours`` 14, ``hazardous_hours`` 43, ``chores_hours`` 21: the ILO statistical
  defaults (18th ICLS 2008 and ILO/SIMPOC global estimates; MICS6 for chores), in every profile.
- ``hazardous_list``: every hazard code of the forms, in every profile; an administrator narrows
  it to the national list (``clms profiles set CODE hazardous_list=...``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from alerts.rules import (
    HAZARD_CODES,
    ILO_DEFAULT,
    RULE_FIELDS,
    Profile,
    ProfileError,
)
from clms.i18n import N_

DEFAULT_REFERENCE = Path("reference") / "dol_ilab_countries_2021.xml"  # under SHARED_DATA

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

#: the country's name in the DOL ILAB file
DOL_NAMES = {
    "CIV": "Côte d'Ivoire",
    "GHA": "Ghana",
    "IND": "India",
    "BGD": "Bangladesh",
    "MMR": "Burma",
    "KHM": "Cambodia",
    "IDN": "Indonesia",
    "PHL": "Philippines",
    "THA": "Thailand",
}

#: domain.md section 3's table: (min_age, min_age_hazardous, compulsory school to, national list)
DOMAIN_TABLE: dict[str, tuple[int, int, int | None, bool]] = {
    "CIV": (16, 18, 16, True),
    "GHA": (15, 18, 15, True),
    "IND": (14, 18, 14, True),
    "BGD": (14, 18, None, True),
    "MMR": (14, 18, 10, False),
    "KHM": (15, 18, None, True),
    "IDN": (15, 18, 15, True),
    "PHL": (15, 18, 18, True),
    "THA": (15, 18, 16, True),
}

DOL = "US DOL ILAB 2021"
DOMAIN = "domain.md section 3"
_ILO_SOURCES = {
    "min_age": "ILO C138 art. 2(3): 15 (14 declared by some developing countries, art. 2(4))",
    "light_work_age": "ILO default (18th ICLS 2008; C138 art. 7(4))",
    "light_work_max_hours": "ILO default (18th ICLS 2008; ILO/SIMPOC global estimates: 14 h)",
    "min_age_hazardous": "ILO C138 art. 3(1) and C182 art. 2: 18",
    "hazardous_hours": "ILO default (18th ICLS 2008; ILO/SIMPOC global estimates: 43 h)",
    "chores_hours": "ILO default (20th ICLS 2018; MICS6: 21 h of household chores)",
    "compulsory_school_age": "none: the ILO statistical definition has no schooling rule",
    "hazardous_list": "every hazard code of the forms (domain.md section 3)",
    "national_hazardous_list": "not a country",
}
_DOL_PATHS = {
    "min_age": "Legal_Standards/Minimum_Work",
    "min_age_hazardous": "Legal_Standards/Minimum_Hazardous_Work",
    "compulsory_school_age": "Legal_Standards/Compulsory_Education",
    "national_hazardous_list": "Legal_Standards/Types_Hazardous_Work/Standard",
}


def seed_profiles(reference_xml: Path | None) -> list[dict]:
    """Version 1 of the ILO default and of every seeded country, as ``country_profiles`` rows.

    Parameters
    ----------
    reference_xml
        The US DOL ILAB countries file; None or a missing file falls back to domain.md's table
        (the sources then say so).

    Returns
    -------
    list of dict
        One dict per profile with the :class:`clms.models.CountryProfile` columns (``code``,
        ``version`` 1, ``current`` True, ``name``, the rule values, ``national_hazardous_list``,
        ``sources``, ``change_note``); ``hazardous_list`` is a sorted list.

    Examples
    --------
    >>> rows = {r["code"]: r for r in seed_profiles(None)}
    >>> rows["CIV"]["min_age"], rows["CIV"]["light_work_age"], rows["MMR"]["compulsory_school_age"]
    (16, 13, 10)
    """
    found = reference_xml is not None and Path(reference_xml).is_file()
    figures = read_dol_figures(Path(reference_xml)) if found else {}
    if found:
        note = f"Seeded from {DOL} ({Path(reference_xml).name}) and {DOMAIN}"
    else:
        why = "not given" if reference_xml is None else "not found"
        note = f"Seeded from {DOMAIN} (reference file {why})"
    rows = [_ilo_row(note)]
    for code in DOMAIN_TABLE:
        rows.append(_country_row(code, figures.get(DOL_NAMES[code]), found, note))
    for row in rows:  # a seed the rules refuse is a bug here, not a surprise later
        Profile.from_mapping(row)
    return rows


def read_dol_figures(path: Path) -> dict[str, dict[str, str | None]]:
    """The legal-standard figures of the DOL ILAB file, by country name.

    Each country maps ``min_work``, ``min_hazardous``, ``compulsory_education`` (ages, as text)
    and ``hazardous_list`` (``Types_Hazardous_Work/Standard``: "Yes" or "No") to its text, None
    where the file says "N/A" or has nothing.
    """
    from lxml import etree

    # a file we ship, but parsed as any other: no DTDs, no entities, no network
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    root = etree.parse(str(path), parser).getroot()
    figures = {}
    for country in root.iter("Country"):
        name = (country.findtext("Name") or "").strip()
        standards = country.find("Legal_Standards")
        if not name or standards is None:
            continue
        figures[name] = {
            "min_work": _text(standards, "Minimum_Work/Age"),
            "min_hazardous": _text(standards, "Minimum_Hazardous_Work/Age"),
            "compulsory_education": _text(standards, "Compulsory_Education/Age"),
            "hazardous_list": _text(standards, "Types_Hazardous_Work/Standard"),
        }
    return figures


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


#: hazard code -> the form's English label (clms_household_visit choices)
HAZARD_LABELS = {
    "land_clearing": N_("Land clearing: felling trees, clearing with a machete"),
    "bush_burning": N_("Bush burning"),
    "agrochemicals": N_(
        "Spraying or applying agrochemicals, carrying the sprayer, or present during spraying"
    ),
    "heavy_loads": N_("Carrying heavy loads, or loads carried far"),
    "sharp_tools": N_("Using a machete or cutlass to harvest or break pods"),
    "climbing_heights": N_("Climbing trees or structures higher than 3 m"),
    "motorised_tools": N_("Using a chainsaw or other motorised equipment"),
    "working_alone_remote": N_("Working alone in a remote place"),
    "dust_fumes_gas": N_("Dust, fumes or gas"),
    "extreme_temperature": N_("Extreme cold or heat"),
    "loud_noise_vibration": N_("Loud noise or vibration"),
    "chemicals_explosives": N_("Dangerous chemicals or explosives"),
    "underwater_or_at_sea": N_("Working under water or at sea"),
    "underground": N_("Working underground"),
    "heavy_machinery": N_("Operating heavy machinery"),
    "abuse_at_work": N_("Shouted at, beaten or otherwise abused at work"),
}

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
    (:func:`clms.operations.profiles.update_profile` takes them as ``unreadable``).

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


def _ilo_row(note: str) -> dict:
    return {
        "code": "ILO",
        "version": 1,
        "current": True,
        "name": PROFILE_NAMES["ILO"],
        **ILO_DEFAULT.values(),
        "national_hazardous_list": False,
        "sources": dict(_ILO_SOURCES),
        "change_note": note,
    }


def _country_row(code: str, dol: dict | None, found: bool, note: str) -> dict:
    table_min, table_haz, table_school, table_list = DOMAIN_TABLE[code]
    sources: dict[str, str] = {}
    missing = "no figure" if found else "reference file not available"

    def pick(field: str, key: str, table_value, plausible) -> int | None:
        text = dol.get(key) if dol else None
        where = f"{DOL}, {_DOL_PATHS[field]}"
        if text is None:
            if table_value is None:
                sources[field] = f"{DOMAIN}: none ({where}: {missing})"
            else:
                sources[field] = f"{DOMAIN}: {table_value} ({where}: {missing})"
            return table_value
        value = int(text) if text.isdigit() else None
        problem = plausible(value) if value is not None else f"not a number ({text!r})"
        if problem:
            sources[field] = f"{DOMAIN}: {table_value} ({where} reads {text}: {problem})"
            return table_value
        if value != table_value:
            sources[field] = f"{where} ({value}; {DOMAIN} says {table_value})"
        else:
            sources[field] = where
        return value

    def age_ok(value: int) -> str | None:
        return None if 5 <= value <= 18 else "outside 5-18"

    min_haz = pick("min_age_hazardous", "min_hazardous", table_haz, age_ok)

    def min_age_ok(value: int) -> str | None:
        if value > min_haz:
            return f"impossible: above the minimum age for hazardous work ({min_haz})"
        return age_ok(value)

    min_age = pick("min_age", "min_work", table_min, min_age_ok)
    school = pick("compulsory_school_age", "compulsory_education", table_school, age_ok)

    flag_text = (dol or {}).get("hazardous_list")
    where = f"{DOL}, {_DOL_PATHS['national_hazardous_list']}"
    if flag_text in ("Yes", "No"):
        national = flag_text == "Yes"
        sources["national_hazardous_list"] = (
            where if national == table_list else f"{where} ({flag_text}; {DOMAIN} disagrees)"
        )
    else:
        national = table_list
        sources["national_hazardous_list"] = f"{DOMAIN} ({where}: {missing})"

    if code == "CIV":
        light_age = 13
        sources["light_work_age"] = (
            "Côte d'Ivoire: separate list of light work for ages 13-16 (Arrêté of 2 June 2017; "
            f"{DOMAIN})"
        )
    elif min_age == 14:
        light_age = 12
        sources["light_work_age"] = "ILO C138 art. 7(4): light work from 12 where 14 is declared"
    else:
        light_age = ILO_DEFAULT.light_work_age
        sources["light_work_age"] = (
            "ILO default (18th ICLS 2008): no national light-work age seeded"
        )
    for name in ("light_work_max_hours", "hazardous_hours", "chores_hours"):
        sources[name] = _ILO_SOURCES[name]
    sources["hazardous_list"] = (
        "every hazard code of the forms (domain.md section 3); narrow it to the national list"
    )
    return {
        "code": code,
        "version": 1,
        "current": True,
        "name": PROFILE_NAMES[code],
        "min_age": min_age,
        "light_work_age": light_age,
        "light_work_max_hours": ILO_DEFAULT.light_work_max_hours,
        "min_age_hazardous": min_haz,
        "hazardous_hours": ILO_DEFAULT.hazardous_hours,
        "chores_hours": ILO_DEFAULT.chores_hours,
        "compulsory_school_age": school,
        "hazardous_list": sorted(HAZARD_CODES),
        "national_hazardous_list": national,
        "sources": {name: sources[name] for name in (*RULE_FIELDS, "national_hazardous_list")},
        "change_note": note,
    }


def _text(element, path: str) -> str | None:
    text = (element.findtext(path) or "").strip()
    return None if not text or text.upper() == "N/A" else text
