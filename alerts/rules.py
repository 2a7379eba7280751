"""Classifying a child at one visit: ILO categories, the SDG 8.7.1 flag, severity and deadlines.

Pure: plain values in, plain values out; no Flask, no database. The same functions serve the
submission processor (a batch of 50-1000 child visits per transaction) and ``clms reclassify``
(millions of rows): :func:`classify_rows` is the one they call.

The rules (shared/design/domain.md section 3), evaluated in order, the first match wins:

``worst_form``
    any sign of forced or bonded labour, trafficking, commercial sexual exploitation or illicit
    activities (ILO C182 art. 3 (a)-(c)), at any age.
``hazardous``
    age < ``min_age_hazardous`` and any of: a task or condition on the profile's hazardous list
    (ILO C182 art. 3 (d) and 4; Recommendation 190 para. 3), night work (R190 para. 3 (e)), work
    hours >= ``hazardous_hours`` (long hours, R190 para. 3 (e); 43 h in the ILO global estimates).
``child_labour``
    age < ``light_work_age`` and work hours >= 1; or ``light_work_age`` <= age < ``min_age`` and
    work hours >= ``light_work_max_hours`` (employment below the minimum age, ILO C138 art. 2 and
    7; 18th ICLS resolution 2008, paras 33-35, revised by the 20th ICLS 2018).
``at_risk``
    none of the above, but any of: permitted light work (``light_work_age`` <= age < ``min_age``
    and 1 <= hours < ``light_work_max_hours``), not attending school while younger than the
    ``compulsory_school_age``, household chores >= ``chores_hours`` (20th ICLS 2018 on unpaid
    household services; MICS6 uses 21 h).
``none``
    otherwise.

With the ILO defaults (light work from 12, minimum age 15, hazardous 18) these are the ILO/SIMPOC
global-estimate rules: 5-11 any work >= 1 h; 12-14 >= 14 h; 15-17 hazardous or >= 43 h.

Decisions this module takes where the rules above are silent (each is tested):

- **"none" in a multi-select means nothing.** ``["none"]``, ``[]`` and a missing answer are the
  same; a stray "none" next to real answers is ignored, the real answers count.
- **Out-of-scope ages.** The statistical definition covers children 5-17 (18th ICLS 2008, para. 15).
  A recorded age below 5 or of 18 and over gives ``none`` with reason ``OUT_OF_SCOPE_AGE``, except
  that a worst-form sign always gives ``worst_form``: a person reported in forced labour,
  trafficking or sexual exploitation must reach an officer whatever age was written down.
- **Worst-form signs are not filtered by code.** Any answer other than "none" counts, even a code
  this version does not know (a newer form may add one): a false alarm costs an officer's visit, a
  missed trafficking case costs far more.
- **Unknown age (None).** The household roster lists only children under 18, so ``worst_form`` and
  ``hazardous`` still apply, with the fact ``"age": None`` in their reasons. The age-dependent
  ``child_labour`` rules cannot be decided, so a child of unknown age working >= 1 h is
  ``at_risk`` with reason ``AGE_UNKNOWN_WORKING`` (needs verification, never silently ``none``).
  Rules that need the age (light work, compulsory schooling) do not fire; chores do.
- **Unknown hours (None) count as 0** for every threshold. A child reported doing an economic
  activity (``work_activities``) whose hours are unknown is ``at_risk`` with reason
  ``HOURS_UNKNOWN_WORKING``: the hours must be verified before the age rules can be applied.
- **Unknown yes/no answers (None)** for night work and school attendance count as "no".
- **Hazards count only when on the profile's list.** An administrator narrows the list to the
  national one (C182 art. 4: hazardous work is determined by national law); other answers remain
  in the visit's record. Hazards count whatever the hours: the form asks about them while working.
- **Injury at work in the last 12 months is a risk factor** (``RISK_INJURED_12M``); it never
  changes the category.
- **Reasons.** Every rule of the winning category that fired is reported (for ``at_risk``, every
  at-risk reason), each with the facts that triggered it: always the ``age`` (None when unknown),
  the value that crossed a line and, for an hours or chores rule, the ``threshold`` it crossed;
  the hazards and signs that counted, in the order given, without duplicates.
- **The SDG 8.7.1 flag** (:func:`sdg_871`) is computed separately, with the fixed statistical ages
  of MICS6 (2020): 5-11 work >= 1 h or chores >= 21 h; 12-14 work >= 14 h or chores >= 21 h;
  15-17 work >= 43 h; hazardous conditions excluded; out of 5-17 or unknown age gives False.
  National figures are comparable through this flag, never through the category.

Severity and response times are domain.md section 4's defaults (:data:`SEVERITY`,
:data:`RESPONSE_TIMES`, :func:`deadlines`).

Examples
--------
>>> r = classify(ILO_DEFAULT, age=13, attends_school=True, work_hours_7d=20, chore_hours_7d=5,
...              hazards=["none"], night_work=False, worst_form_signs=["none"])
>>> r.category, r.sdg_871, [x.rule for x in r.reasons]
('child_labour', True, ['CL_OVER_LIGHT_HOURS'])
>>> classify(ILO_DEFAULT, 16, True, 10, 0, ["agrochemicals"], False, []).reasons[0].facts
{'age': 16, 'hazards': ['agrochemicals']}
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any, NamedTuple

from clms.codes import HAZARDS
from clms.errors import DomainProblem
from clms.i18n import N_

RULE_SET_VERSION = "ilo-icls20-2018.1"

CATEGORIES = ("worst_form", "hazardous", "child_labour", "at_risk", "none")
MIN_CHILD_AGE, MAX_CHILD_AGE = 5, 17  # 18th ICLS 2008 para. 15: children 5-17
HAZARD_CODES = frozenset(HAZARDS - {"none"})

# MICS6 (2020) SDG 8.7.1: fixed ages and hours, whatever the country's law
SDG_CHORES_HOURS = 21
SDG_LIGHT_WORK_HOURS = 14
SDG_LONG_HOURS = 43

# rule ids, as stored in classifications.reasons
WF_SIGNS = "WF_SIGNS"
HAZ_TASK = "HAZ_TASK"
HAZ_NIGHT = "HAZ_NIGHT"
HAZ_HOURS = "HAZ_HOURS"
CL_UNDER_LIGHT_AGE = "CL_UNDER_LIGHT_AGE"
CL_OVER_LIGHT_HOURS = "CL_OVER_LIGHT_HOURS"
AR_LIGHT_WORK = "AR_LIGHT_WORK"
AR_NOT_IN_SCHOOL = "AR_NOT_IN_SCHOOL"
AR_CHORES = "AR_CHORES"
AGE_UNKNOWN_WORKING = "AGE_UNKNOWN_WORKING"
HOURS_UNKNOWN_WORKING = "HOURS_UNKNOWN_WORKING"
OUT_OF_SCOPE_AGE = "OUT_OF_SCOPE_AGE"
RISK_INJURED_12M = "RISK_INJURED_12M"

#: rule id -> (the category it leads to, what it means in words)
RULES: dict[str, tuple[str, str]] = {
    WF_SIGNS: ("worst_form", N_("signs of a worst form of child labour (C182 art. 3 a-c)")),
    HAZ_TASK: ("hazardous", N_("a task or condition on the country's hazardous list")),
    HAZ_NIGHT: ("hazardous", N_("night work (18:00-06:00)")),
    HAZ_HOURS: ("hazardous", N_("long working hours")),
    CL_UNDER_LIGHT_AGE: ("child_labour", N_("work below the minimum age for light work")),
    CL_OVER_LIGHT_HOURS: ("child_labour", N_("work beyond the hours allowed for light work")),
    AR_LIGHT_WORK: ("at_risk", N_("permitted light work")),
    AR_NOT_IN_SCHOOL: ("at_risk", N_("not attending school below the compulsory school age")),
    AR_CHORES: ("at_risk", N_("long hours of household chores")),
    AGE_UNKNOWN_WORKING: ("at_risk", N_("working, age unknown: verify the age")),
    HOURS_UNKNOWN_WORKING: ("at_risk", N_("working, hours unknown: verify the hours")),
    OUT_OF_SCOPE_AGE: ("none", N_("age outside 5-17, the scope of child-labour statistics")),
}

SEVERITY = {
    "worst_form": "critical",
    "hazardous": "high",
    "child_labour": "medium",
    "at_risk": "low",
}
SEVERITY_RANK = {"critical": 4, "high": 3, "medium": 2, "low": 1}
#: category -> (acknowledge within, first officer visit within or None); domain.md section 4
RESPONSE_TIMES: dict[str, tuple[dt.timedelta, dt.timedelta | None]] = {
    "worst_form": (dt.timedelta(hours=24), dt.timedelta(hours=72)),
    "hazardous": (dt.timedelta(days=3), dt.timedelta(days=7)),
    "child_labour": (dt.timedelta(days=7), dt.timedelta(days=14)),
    "at_risk": (dt.timedelta(days=30), None),
}

#: the child_visits columns (data-dictionary names) the rules read
FACT_FIELDS = (
    "age", "attends_school", "work_activities", "work_hours_7d", "chore_hours_7d", "hazards",
    "night_work", "injured_12m", "worst_form_signs",
)  # fmt: skip

AGE_FIELDS = ("light_work_age", "min_age", "min_age_hazardous")
HOUR_FIELDS = ("light_work_max_hours", "hazardous_hours", "chores_hours")
#: the values of a profile the rules read (what an administrator may change, with ``name``)
RULE_FIELDS = AGE_FIELDS + HOUR_FIELDS + ("compulsory_school_age", "hazardous_list")
AGE_RANGE = (MIN_CHILD_AGE, 18)
HOURS_RANGE = (1, 168)


# --- results ---------------------------------------------------------------------------------


class Reason(NamedTuple):
    """One rule that fired, with the facts that made it fire (JSON-ready values).

    >>> Reason("HAZ_NIGHT", {"age": 15, "night_work": True}).as_dict()
    {'rule': 'HAZ_NIGHT', 'facts': {'age': 15, 'night_work': True}}
    """

    rule: str
    facts: dict[str, Any]

    def as_dict(self) -> dict:
        """``{"rule": ..., "facts": {...}}`` for JSON storage (a copy: safe to change)."""
        return {"rule": self.rule, "facts": {k: _json_value(v) for k, v in self.facts.items()}}

    def describe(self) -> str:
        """The rule id with its facts, e.g. ``HAZ_HOURS (work_hours_7d 45, threshold 43)``."""
        facts = ", ".join(f"{k} {_fact_text(v)}" for k, v in self.facts.items())
        return f"{self.rule} ({facts})" if facts else self.rule


class Result(NamedTuple):
    """What the rules say about one child at one visit.

    A tuple: immutable and cheap to build, so the batch path can hand the same ``none`` result to
    every child with nothing to report. ``reasons`` and ``risk_factors`` are tuples.
    """

    category: str
    sdg_871: bool
    reasons: tuple[Reason, ...]
    risk_factors: tuple[str, ...]
    rule_set_version: str
    profile_code: str | None
    profile_version: int | None

    @property
    def severity(self) -> str | None:
        """The alert severity of the category, None for ``none`` (no alert)."""
        return SEVERITY.get(self.category)

    @property
    def rules(self) -> tuple[str, ...]:
        """The rule ids of the reasons, in order."""
        return tuple(r.rule for r in self.reasons)

    def as_dict(self) -> dict:
        """A JSON-ready dict; ``reasons`` as ``[{"rule": ..., "facts": {...}}]``.

        >>> d = classify(ILO_DEFAULT, 9, True, 3, 0, [], False, []).as_dict()
        >>> d["category"], d["reasons"]
        ('child_labour', [{'rule': 'CL_UNDER_LIGHT_AGE', 'facts': {'age': 9, 'work_hours_7d': 3}}])
        """
        return {
            "category": self.category,
            "sdg_871": self.sdg_871,
            "reasons": [r.as_dict() for r in self.reasons],
            "risk_factors": list(self.risk_factors),
            "rule_set_version": self.rule_set_version,
            "profile_code": self.profile_code,
            "profile_version": self.profile_version,
        }

    @classmethod
    def from_dict(cls, data: Mapping) -> Result:
        """Rebuild a result from :meth:`as_dict` (or a stored classification's columns).

        Missing keys become None or empty, so an older stored row can be compared.
        """
        return cls(
            category=data.get("category", "none"),
            sdg_871=bool(data.get("sdg_871", False)),
            reasons=tuple(
                r if isinstance(r, Reason) else Reason(r["rule"], dict(r.get("facts") or {}))
                for r in data.get("reasons") or ()
            ),
            risk_factors=tuple(data.get("risk_factors") or ()),
            rule_set_version=data.get("rule_set_version"),
            profile_code=data.get("profile_code"),
            profile_version=data.get("profile_version"),
        )


# --- profiles --------------------------------------------------------------------------------


class ProfileError(DomainProblem, ValueError):
    """Profile values the rules cannot use (``profiles.invalid``); ``errors`` maps each field to
    its problem.

    >>> str(ProfileError({"min_age": "must be a whole number (got 'x')"}))
    "min_age: must be a whole number (got 'x')"
    """

    KEY = "profiles.invalid"

    def __init__(self, errors: Mapping[str, str]):
        self.errors = dict(errors)
        super().__init__("; ".join(f"{f}: {p}" for f, p in self.errors.items()), fields=self.errors)


@dataclass(frozen=True)
class Profile:
    """One version of a country's law as the rules read it.

    ``hazardous_list`` holds the hazard codes that count in this country. ``row_id`` is the id of
    the ``country_profiles`` row it came from (None for a profile built in code); it takes no part
    in equality. Values are checked once, here, never per child.
    """

    code: str
    name: str
    min_age: int
    light_work_age: int
    light_work_max_hours: int
    min_age_hazardous: int
    hazardous_hours: int
    chores_hours: int
    compulsory_school_age: int | None
    hazardous_list: frozenset[str]
    version: int = 1
    row_id: int | None = field(default=None, compare=False)
    # built once per profile: the classifier with this profile's thresholds bound in
    _classify: Callable[..., Result] = field(init=False, repr=False, compare=False)
    _none: Result = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        if not isinstance(self.hazardous_list, frozenset):
            object.__setattr__(self, "hazardous_list", frozenset(self.hazardous_list))
        values = {f: getattr(self, f) for f in RULE_FIELDS}
        errors = profile_problems({"code": self.code, "name": self.name, **values})
        if not isinstance(self.version, int) or isinstance(self.version, bool) or self.version < 1:
            errors["version"] = f"must be a whole number from 1 (got {self.version!r})"
        if errors:
            raise ProfileError(errors)
        object.__setattr__(self, "_none", _make_result("none", False, (), (), self))
        object.__setattr__(self, "_classify", _compile(self))

    def __reduce__(self):
        # rebuilt from its values: the bound classifier is a closure, which pickle cannot carry
        args = (
            self.code, self.name, self.min_age, self.light_work_age, self.light_work_max_hours,
            self.min_age_hazardous, self.hazardous_hours, self.chores_hours,
            self.compulsory_school_age, self.hazardous_list, self.version, self.row_id,
        )  # fmt: skip
        return (self.__class__, args)

    def values(self) -> dict:
        """The rule values (:data:`RULE_FIELDS`), ``hazardous_list`` as a sorted list."""
        values = {f: getattr(self, f) for f in RULE_FIELDS}
        values["hazardous_list"] = sorted(self.hazardous_list)
        return values

    @classmethod
    def from_mapping(cls, data: Mapping, row_id: int | None = None) -> Profile:
        """Build from a mapping holding the fields (e.g. a ``country_profiles`` row's values)."""
        return cls(
            code=data["code"],
            name=data["name"],
            version=data.get("version", 1),
            row_id=row_id,
            **{f: data[f] for f in RULE_FIELDS},
        )


def profile_problems(values: Mapping, changed: Iterable[str] | None = None) -> dict[str, str]:
    """What is wrong with a set of profile values, as ``{field: problem}`` (empty when fine).

    Ages are whole numbers from 5 to 18 with ``light_work_age < min_age <= min_age_hazardous``;
    ``compulsory_school_age`` is empty (no schooling rule) or 5-18; hours are 1-168 (a threshold
    of 0 would flag every child); hazard codes must be known. ``code`` and ``name`` are checked
    when present. An ordering problem is reported on a field in ``changed`` when one is, so the
    person who moved a value sees the message next to it.

    >>> profile_problems({**ILO_DEFAULT.values(), "light_work_age": 15}, changed=["light_work_age"])
    {'light_work_age': 'must be below min_age (15)'}
    """
    errors: dict[str, str] = {}
    changed = set(changed) if changed is not None else None
    if "code" in values:
        code = values["code"]
        if not (isinstance(code, str) and 2 <= len(code) <= 8 and code.isalnum()):
            errors["code"] = "must be 2-8 letters or digits (ISO 3166 alpha-3, or ILO)"
        elif code != code.upper():
            errors["code"] = "must be in capitals (ISO 3166 alpha-3, e.g. CIV)"
    if "name" in values and not (isinstance(values["name"], str) and values["name"].strip()):
        errors["name"] = "is required"
    for name in AGE_FIELDS:
        problem = _int_problem(values.get(name), *AGE_RANGE)
        if problem:
            errors[name] = problem
    school = values.get("compulsory_school_age")
    if school is not None:
        problem = _int_problem(school, *AGE_RANGE)
        if problem:
            errors["compulsory_school_age"] = problem + " or empty (no schooling rule)"
    for name in HOUR_FIELDS:
        problem = _int_problem(values.get(name), *HOURS_RANGE)
        if problem:
            errors[name] = problem
    hazards = values.get("hazardous_list")
    if isinstance(hazards, str) or not isinstance(hazards, Iterable):
        errors["hazardous_list"] = "must be a list of hazard codes"
    else:
        unknown = sorted(str(h) for h in hazards if h not in HAZARD_CODES)
        if unknown:
            known = ", ".join(sorted(HAZARD_CODES))
            errors["hazardous_list"] = (
                f"unknown hazard code(s) {', '.join(unknown)}; known: {known}"
            )

    def blame(first: str, second: str) -> str:
        if changed is not None and first not in changed and second in changed:
            return second
        return first

    if not any(f in errors for f in AGE_FIELDS):
        lwa, min_age, haz = (values[f] for f in ("light_work_age", "min_age", "min_age_hazardous"))
        if lwa >= min_age:
            where = blame("light_work_age", "min_age")
            errors[where] = (
                f"must be below min_age ({min_age})"
                if where == "light_work_age"
                else f"must be above light_work_age ({lwa})"
            )
        if min_age > haz:
            where = blame("min_age", "min_age_hazardous")
            errors.setdefault(
                where,
                f"must not be above min_age_hazardous ({haz})"
                if where == "min_age"
                else f"must not be below min_age ({min_age})",
            )
    return errors


def _int_problem(value: Any, low: int, high: int) -> str | None:
    if not isinstance(value, int) or isinstance(value, bool):
        return f"must be a whole number (got {value!r})"
    if not low <= value <= high:
        return f"must be from {low} to {high} (got {value})"
    return None


# --- classifying -----------------------------------------------------------------------------


def classify(
    profile: Profile,
    age: int | None,
    attends_school: bool | None,
    work_hours_7d: int | None,
    chore_hours_7d: int | None,
    hazards: Iterable[str] | None,
    night_work: bool | None,
    worst_form_signs: Iterable[str] | None,
    injured_12m: bool | None = None,
    work_activities: Iterable[str] | None = (),
) -> Result:
    """Classify one child at one visit under ``profile``.

    Parameters
    ----------
    profile
        The country profile (thresholds and hazardous list).
    age
        Completed years, or None when unknown.
    attends_school, night_work, injured_12m
        Yes/no answers; None (unknown) counts as no.
    work_hours_7d, chore_hours_7d
        Hours in the last 7 days; None counts as 0.
    hazards, worst_form_signs, work_activities
        Codes of the multi-selects; "none" entries mean nothing.

    Returns
    -------
    Result
        Category, SDG 8.7.1 flag, reasons, risk factors, rule-set and profile versions.

    Examples
    --------
    >>> classify(ILO_DEFAULT, 9, True, 3, 0, [], False, []).category
    'child_labour'
    >>> classify(ILO_DEFAULT, 9, True, 0, 0, [], False, [], injured_12m=True).risk_factors
    ('RISK_INJURED_12M',)
    """
    return profile._classify(
        age, attends_school, work_hours_7d, chore_hours_7d, hazards, night_work,
        worst_form_signs, injured_12m, work_activities,
    )  # fmt: skip


def classify_facts(profile: Profile, facts: Mapping[str, Any]) -> Result:
    """Classify a mapping with the data-dictionary names (:data:`FACT_FIELDS`).

    A missing key counts as unknown (None) or empty, e.g. a follow-up has no ``injured_12m``.

    >>> classify_facts(ILO_DEFAULT, {"age": 16, "work_hours_7d": 45}).rules
    ('HAZ_HOURS',)
    """
    get = facts.get
    return profile._classify(
        get("age"), get("attends_school"), get("work_hours_7d"), get("chore_hours_7d"),
        get("hazards"), get("night_work"), get("worst_form_signs"), get("injured_12m"),
        get("work_activities"),
    )  # fmt: skip


_facts_of = itemgetter(*FACT_FIELDS)
_NONE_ANSWER = ["none"]  # compared with ==, never changed


def classify_rows(profile: Profile, rows: Iterable[Mapping[str, Any]]) -> list[Result]:
    """Classify many child visits under one profile; the path the product uses for batches.

    ``rows`` are mappings with the :data:`FACT_FIELDS` keys (``child_visits`` columns, e.g.
    SQLAlchemy ``.mappings()`` rows or plain dicts). The result list is in the order of ``rows``.

    Most children have nothing to report, so the loop first checks, without building anything,
    whether a row is certainly ``none`` with a False SDG flag and no risk factor; such rows all
    share one immutable result. Every other row goes through the full rules (:func:`classify`),
    so both paths give equal results (tested property by property).

    >>> rows = [{"age": 10, "attends_school": True, "work_activities": ["none"],
    ...          "work_hours_7d": None, "chore_hours_7d": 4, "hazards": [], "night_work": None,
    ...          "injured_12m": None, "worst_form_signs": ["none"]}]
    >>> [r.category for r in classify_rows(ILO_DEFAULT, rows)]
    ['none']
    """
    full = profile._classify
    nothing = profile._none
    # below both the profile's chores threshold and the SDG's 21 h nothing depends on chores
    chores_below = min(profile.chores_hours, SDG_CHORES_HOURS)
    school_age = profile.compulsory_school_age or 0
    none_answer = _NONE_ANSWER
    facts_of = _facts_of
    out: list[Result] = []
    append = out.append
    for row in rows:
        try:
            age, school, activities, work, chores, hazards, night, injured, signs = facts_of(row)
        except KeyError:
            append(classify_facts(profile, row))
            continue
        if (
            (not signs or signs == none_answer)
            and (not hazards or hazards == none_answer)
            and night is not True
            and injured is not True
            and (work == 0 or (work is None and (not activities or activities == none_answer)))
            and (chores is None or chores < chores_below)
            and (age is None or MIN_CHILD_AGE <= age <= MAX_CHILD_AGE)
            and (school is not False or age is None or age >= school_age)
        ):
            append(nothing)
        else:
            append(full(age, school, work, chores, hazards, night, signs, injured, activities))
    return out


def sdg_871(age: int | None, work_hours_7d: int | None, chore_hours_7d: int | None) -> bool:
    """The SDG 8.7.1 child-labour flag (MICS6, 2020): fixed ages, no hazardous conditions.

    >>> sdg_871(10, 1, 0), sdg_871(13, 13, 20), sdg_871(13, 0, 21), sdg_871(16, 42, 30)
    (True, False, True, False)
    """
    if age is None or age < MIN_CHILD_AGE or age > MAX_CHILD_AGE:
        return False
    work = work_hours_7d or 0
    if age <= 11:
        return work >= 1 or (chore_hours_7d or 0) >= SDG_CHORES_HOURS
    if age <= 14:
        return work >= SDG_LIGHT_WORK_HOURS or (chore_hours_7d or 0) >= SDG_CHORES_HOURS
    return work >= SDG_LONG_HOURS


_RISK_INJURED = (RISK_INJURED_12M,)
_new = tuple.__new__


def _make_result(category, sdg, reasons, risk, profile: Profile) -> Result:
    return Result(category, sdg, reasons, risk, RULE_SET_VERSION, profile.code, profile.version)


def _present(codes: Iterable[str] | None) -> list[str] | tuple[()]:
    """The answers other than "none", first occurrence kept, order kept (a new list)."""
    if not codes or codes == _NONE_ANSWER:
        return ()
    return list(dict.fromkeys(c for c in codes if c != "none"))


def _compile(profile: Profile) -> Callable[..., Result]:
    """The full rules, ``profile``'s thresholds bound as local names (read once, not per row)."""
    light_age = profile.light_work_age
    min_age = profile.min_age
    light_hours = profile.light_work_max_hours
    haz_age = profile.min_age_hazardous
    haz_hours = profile.hazardous_hours
    chores_hours = profile.chores_hours
    school_age = profile.compulsory_school_age
    on_list = profile.hazardous_list
    tail = (RULE_SET_VERSION, profile.code, profile.version)
    nothing = profile._none
    sdg_flag = sdg_871

    def result(category: str, sdg: bool, reasons: list[Reason] | tuple, risk: tuple) -> Result:
        # tuple.__new__ skips NamedTuple's keyword handling: this runs for every flagged child
        return _new(Result, (category, sdg, tuple(reasons), risk) + tail)

    def reason(rule: str, facts: dict) -> Reason:
        return _new(Reason, (rule, facts))

    def classify_one(
        age, attends_school, work_hours, chore_hours, hazards, night_work, signs,
        injured=None, activities=(),
    ) -> Result:  # fmt: skip
        work = work_hours or 0
        chores = chore_hours or 0
        risk = _RISK_INJURED if injured is True else ()
        sdg = sdg_flag(age, work, chores)

        present = _present(signs)
        if present:
            return result(
                "worst_form", sdg, (reason(WF_SIGNS, {"age": age, "signs": present}),), risk
            )

        if age is not None and not MIN_CHILD_AGE <= age <= MAX_CHILD_AGE:
            return result("none", sdg, (reason(OUT_OF_SCOPE_AGE, {"age": age}),), risk)

        if age is None or age < haz_age:
            reasons = []
            counted = [h for h in _present(hazards) if h in on_list]
            if counted:
                reasons.append(reason(HAZ_TASK, {"age": age, "hazards": counted}))
            if night_work is True:
                reasons.append(reason(HAZ_NIGHT, {"age": age, "night_work": True}))
            if work >= haz_hours:
                facts = {"age": age, "work_hours_7d": work, "threshold": haz_hours}
                reasons.append(reason(HAZ_HOURS, facts))
            if reasons:
                return result("hazardous", sdg, reasons, risk)

        if age is not None:
            if age < light_age:
                if work >= 1:
                    facts = {"age": age, "work_hours_7d": work}
                    return result("child_labour", sdg, (reason(CL_UNDER_LIGHT_AGE, facts),), risk)
            elif age < min_age and work >= light_hours:
                facts = {"age": age, "work_hours_7d": work, "threshold": light_hours}
                return result("child_labour", sdg, (reason(CL_OVER_LIGHT_HOURS, facts),), risk)

        reasons = []
        if work_hours is None and _present(activities):
            facts = {"age": age, "work_hours_7d": None, "work_activities": _present(activities)}
            reasons.append(reason(HOURS_UNKNOWN_WORKING, facts))
        if age is None:
            if work >= 1:
                reasons.append(reason(AGE_UNKNOWN_WORKING, {"age": None, "work_hours_7d": work}))
        else:
            if light_age <= age < min_age and work >= 1:  # and < light_hours: else child_labour
                facts = {"age": age, "work_hours_7d": work, "threshold": light_hours}
                reasons.append(reason(AR_LIGHT_WORK, facts))
            if school_age is not None and age < school_age and attends_school is False:
                facts = {"age": age, "attends_school": False, "compulsory_school_age": school_age}
                reasons.append(reason(AR_NOT_IN_SCHOOL, facts))
        if chores >= chores_hours:
            facts = {"age": age, "chore_hours_7d": chores, "threshold": chores_hours}
            reasons.append(reason(AR_CHORES, facts))
        if reasons:
            return result("at_risk", sdg, reasons, risk)
        if sdg or risk:
            return result("none", sdg, (), risk)
        return nothing

    return classify_one


#: the ILO statistical defaults (18th ICLS 2008, C138), every hazard code counting
ILO_DEFAULT = Profile(
    code="ILO",
    name="ILO statistical default",
    min_age=15,
    light_work_age=12,
    light_work_max_hours=14,
    min_age_hazardous=18,
    hazardous_hours=43,
    chores_hours=21,
    compulsory_school_age=None,
    hazardous_list=HAZARD_CODES,
    version=1,
)


# --- severity and deadlines ------------------------------------------------------------------


def deadlines(category: str, raised_at: dt.datetime) -> tuple[dt.datetime, dt.datetime | None]:
    """When an alert of ``category`` raised at ``raised_at`` must be acknowledged and visited.

    >>> t = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    >>> [d.isoformat() if d else None for d in deadlines("worst_form", t)]
    ['2026-01-02T00:00:00+00:00', '2026-01-04T00:00:00+00:00']
    >>> deadlines("at_risk", t)[1] is None
    True
    """
    if category not in RESPONSE_TIMES:
        raise ValueError(f"category {category!r} raises no alert (alerts: {', '.join(SEVERITY)})")
    acknowledge, visit = RESPONSE_TIMES[category]
    return raised_at + acknowledge, (raised_at + visit if visit is not None else None)


# --- explaining a change ---------------------------------------------------------------------


def explain_change(old: Result | Mapping, new: Result | Mapping) -> str | None:
    """Say what changed between two classifications of the same visit, and why; None if nothing.

    ``old`` (and ``new``) may be a :class:`Result` or its :meth:`~Result.as_dict` form, e.g. what
    ``clms reclassify`` read from the stored row. The sentence names the category, the SDG flag,
    the reasons added, removed or with other facts, the risk factors, and the rule-set or profile
    version that changed (the cause, when the child's facts are the same).

    >>> import dataclasses
    >>> civ = dataclasses.replace(ILO_DEFAULT, code="CIV", min_age=16, light_work_age=13)
    >>> old = classify(ILO_DEFAULT, 15, True, 20, 0, [], False, [])
    >>> print(explain_change(old, classify(civ, 15, True, 20, 0, [], False, [])))
    Profile ILO version 1 -> CIV version 1; category none -> child_labour; reason added: \
CL_OVER_LIGHT_HOURS (age 15, work_hours_7d 20, threshold 14).
    >>> explain_change(old, old) is None
    True
    """
    old = old if isinstance(old, Result) else Result.from_dict(old)
    new = new if isinstance(new, Result) else Result.from_dict(new)
    causes: list[str] = []
    if old.rule_set_version != new.rule_set_version:
        causes.append(f"rule set {old.rule_set_version} -> {new.rule_set_version}")
    if (old.profile_code, old.profile_version) != (new.profile_code, new.profile_version):
        if old.profile_code == new.profile_code:
            causes.append(
                f"profile {new.profile_code} version {old.profile_version} -> {new.profile_version}"
            )
        else:
            causes.append(
                f"profile {old.profile_code} version {old.profile_version} -> "
                f"{new.profile_code} version {new.profile_version}"
            )

    changes: list[str] = []
    if old.category != new.category:
        changes.append(f"category {old.category} -> {new.category}")
    if old.sdg_871 != new.sdg_871:
        changes.append(f"SDG 8.7.1 flag {_yes_no(old.sdg_871)} -> {_yes_no(new.sdg_871)}")
    before = {r.rule: r for r in old.reasons}
    after = {r.rule: r for r in new.reasons}
    added = [after[r].describe() for r in after if r not in before]
    removed = [before[r].describe() for r in before if r not in after]
    if added:
        changes.append("reason added: " + "; ".join(added))
    if removed:
        changes.append("reason removed: " + "; ".join(removed))
    for rule in after:
        if rule in before and _json_facts(before[rule]) != _json_facts(after[rule]):
            changes.append(f"reason {rule} facts changed: {_facts_diff(before[rule], after[rule])}")
    risk_added = [f for f in new.risk_factors if f not in old.risk_factors]
    risk_removed = [f for f in old.risk_factors if f not in new.risk_factors]
    if risk_added:
        changes.append("risk factor added: " + ", ".join(risk_added))
    if risk_removed:
        changes.append("risk factor removed: " + ", ".join(risk_removed))

    if not causes and not changes:
        return None
    if not changes:
        return f"{_capital('; '.join(causes))}; same result ({new.category})."
    because = f"{_capital('; '.join(causes))}; " if causes else "The facts changed; "
    return because + "; ".join(changes) + "."


def _facts_diff(before: Reason, after: Reason) -> str:
    old, new = _json_facts(before), _json_facts(after)
    parts = []
    for key in dict.fromkeys([*old, *new]):
        if old.get(key) != new.get(key):
            parts.append(f"{key} {_fact_text(old.get(key))} -> {_fact_text(new.get(key))}")
    return ", ".join(parts)


def _json_facts(reason: Reason) -> dict:
    # a stored reason's lists and a fresh one's lists compare equal once both are JSON values
    return reason.as_dict()["facts"]


def _json_value(value: Any) -> Any:
    return list(value) if isinstance(value, tuple | list | frozenset | set) else value


def _fact_text(value: Any) -> str:
    if isinstance(value, list | tuple):
        return "[" + ", ".join(str(v) for v in value) + "]"
    if value is None:
        return "unknown"
    return str(value)


def _yes_no(flag: bool) -> str:
    return "yes" if flag else "no"


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]
