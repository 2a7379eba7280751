"""Country profiles' seeds: version 1 of the ILO default and of nine countries, and where each
value comes from.

Reads the US DOL ILAB reference file when given, never the database. The rows
:func:`seed_profiles` returns are version 1 of each profile; :mod:`alerts.profiles.store` stores
them and every later version.

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

from pathlib import Path

from alerts.profiles.model import PROFILE_NAMES
from alerts.rules import (
    HAZARD_CODES,
    ILO_DEFAULT,
    RULE_FIELDS,
    Profile,
)

DEFAULT_REFERENCE = Path("reference") / "dol_ilab_countries_2021.xml"  # under SHARED_DATA

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
