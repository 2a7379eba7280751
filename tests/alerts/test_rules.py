"""The classification rules (alerts.rules): exact boundaries for every profile, the decisions the
module documents, and properties over the whole input space checked against an independent oracle.

Pure: no database, no application.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alerts import rules
from alerts.profiles.seeds import seed_profiles
from alerts.rules import (
    HAZARD_CODES,
    ILO_DEFAULT,
    Profile,
    ProfileError,
    Result,
    classify,
    classify_facts,
    classify_rows,
    explain_change,
    sdg_871,
)
from clms.codes import HAZARDS, WORK_ACTIVITIES, WORST_FORM_SIGNS
from tests.conftest import SHARED

DOL_FILE = SHARED / "reference" / "dol_ilab_countries_2021.xml"
SEEDED = {row["code"]: Profile.from_mapping(row) for row in seed_profiles(DOL_FILE)}
ALL_PROFILES = [ILO_DEFAULT, *(p for code, p in SEEDED.items() if code != "ILO")]
PROFILE_IDS = [p.code for p in ALL_PROFILES]


def child(**facts) -> dict:
    """A child with nothing to report, changed by ``facts`` (data-dictionary names)."""
    base = {
        "age": 10, "attends_school": True, "work_activities": ["none"], "work_hours_7d": None,
        "chore_hours_7d": 0, "hazards": [], "night_work": None, "injured_12m": None,
        "worst_form_signs": ["none"],
    }  # fmt: skip
    base.update(facts)
    if base["work_hours_7d"] and base["work_activities"] == ["none"]:
        base["work_activities"] = ["own_farm"]
    return base


def run(profile: Profile, **facts) -> Result:
    """Classify through the batch path (what the product calls) and check the scalar path agrees."""
    row = child(**facts)
    (batch,) = classify_rows(profile, [row])
    assert batch == classify_facts(profile, row)
    return batch


def outcome(result: Result) -> tuple[str, list[str]]:
    return result.category, [r.rule for r in result.reasons]


# --- the seeded profiles are what the tests below walk ------------------------------------------


def test_ilo_default_values():
    p = ILO_DEFAULT
    assert (p.light_work_age, p.min_age, p.min_age_hazardous) == (12, 15, 18)
    assert (p.light_work_max_hours, p.hazardous_hours, p.chores_hours) == (14, 43, 21)
    assert p.compulsory_school_age is None
    assert p.hazardous_list == frozenset(HAZARDS - {"none"}) and "none" not in p.hazardous_list
    assert rules.RULE_SET_VERSION == "ilo-icls20-2018.1"


def test_every_seeded_profile_is_walked():
    assert sorted(PROFILE_IDS) == sorted(["ILO", "CIV", "GHA", "IND", "BGD", "MMR", "KHM", "IDN",
                                          "PHL", "THA"])  # fmt: skip


# --- exact boundaries, per profile ---------------------------------------------------------------


@pytest.mark.parametrize("p", ALL_PROFILES, ids=PROFILE_IDS)
def test_light_work_age_boundary(p):
    # one hour of work: child labour just below the light-work age, permitted light work at it
    below = p.light_work_age - 1
    if below >= rules.MIN_CHILD_AGE:
        assert outcome(run(p, age=below, work_hours_7d=1)) == ("child_labour",
                                                               ["CL_UNDER_LIGHT_AGE"])  # fmt: skip
    assert outcome(run(p, age=p.light_work_age, work_hours_7d=1)) == ("at_risk", ["AR_LIGHT_WORK"])
    assert outcome(run(p, age=p.light_work_age, work_hours_7d=0)) == ("none", [])


@pytest.mark.parametrize("p", ALL_PROFILES, ids=PROFILE_IDS)
def test_min_age_boundary(p):
    hours = p.light_work_max_hours  # too much for light work, not hazardous
    assert hours < p.hazardous_hours
    over = run(p, age=p.min_age - 1, work_hours_7d=hours)
    assert outcome(over) == ("child_labour", ["CL_OVER_LIGHT_HOURS"])
    assert outcome(run(p, age=p.min_age, work_hours_7d=hours)) == ("none", [])
    # below the minimum age a little work is light work, from it on it is simply allowed
    assert outcome(run(p, age=p.min_age - 1, work_hours_7d=1)) == ("at_risk", ["AR_LIGHT_WORK"])
    assert outcome(run(p, age=p.min_age, work_hours_7d=1)) == ("none", [])


@pytest.mark.parametrize("p", ALL_PROFILES, ids=PROFILE_IDS)
def test_hazardous_age_boundary(p):
    below, at = p.min_age_hazardous - 1, p.min_age_hazardous
    for facts, rule in (
        ({"hazards": ["agrochemicals"]}, "HAZ_TASK"),
        ({"night_work": True}, "HAZ_NIGHT"),
        ({"work_hours_7d": p.hazardous_hours}, "HAZ_HOURS"),
    ):
        facts = {"work_hours_7d": 2, **facts}
        assert outcome(run(p, age=below, **facts)) == ("hazardous", [rule])
        at_result = run(p, age=at, **facts)
        if at > rules.MAX_CHILD_AGE:  # 18: an adult, out of scope
            assert outcome(at_result) == ("none", ["OUT_OF_SCOPE_AGE"])
        else:
            assert at_result.category != "hazardous"


@pytest.mark.parametrize("p", ALL_PROFILES, ids=PROFILE_IDS)
def test_light_work_hours_boundary(p):
    age = p.light_work_age
    h = p.light_work_max_hours
    assert outcome(run(p, age=age, work_hours_7d=h - 1)) == ("at_risk", ["AR_LIGHT_WORK"])
    assert outcome(run(p, age=age, work_hours_7d=h)) == ("child_labour", ["CL_OVER_LIGHT_HOURS"])
    facts = run(p, age=age, work_hours_7d=h).reasons[0].facts
    assert facts == {"age": age, "work_hours_7d": h, "threshold": h}


@pytest.mark.parametrize("p", ALL_PROFILES, ids=PROFILE_IDS)
def test_hazardous_hours_boundary(p):
    age, h = p.min_age, p.hazardous_hours  # old enough to work: only the hours matter
    assert outcome(run(p, age=age, work_hours_7d=h - 1)) == ("none", [])
    result = run(p, age=age, work_hours_7d=h)
    assert outcome(result) == ("hazardous", ["HAZ_HOURS"])
    assert result.reasons[0].facts == {"age": age, "work_hours_7d": h, "threshold": h}


@pytest.mark.parametrize("p", ALL_PROFILES, ids=PROFILE_IDS)
def test_chores_boundary(p):
    age, h = p.min_age, p.chores_hours
    assert outcome(run(p, age=age, chore_hours_7d=h - 1)) == ("none", [])
    result = run(p, age=age, chore_hours_7d=h)
    assert outcome(result) == ("at_risk", ["AR_CHORES"])
    assert result.reasons[0].facts == {"age": age, "chore_hours_7d": h, "threshold": h}


@pytest.mark.parametrize("p", ALL_PROFILES, ids=PROFILE_IDS)
def test_compulsory_school_boundary(p):
    school = p.compulsory_school_age
    age = p.min_age  # no work: only school matters
    if school is None:
        assert outcome(run(p, age=age, attends_school=False)) == ("none", [])
        return
    if school - 1 >= rules.MIN_CHILD_AGE:
        result = run(p, age=school - 1, attends_school=False)
        assert outcome(result) == ("at_risk", ["AR_NOT_IN_SCHOOL"])
        assert result.reasons[0].facts["compulsory_school_age"] == school
        assert outcome(run(p, age=school - 1, attends_school=None)) == ("none", [])
    if school <= rules.MAX_CHILD_AGE:
        assert outcome(run(p, age=school, attends_school=False)) == ("none", [])


def test_ilo_boundaries_in_numbers():
    p = ILO_DEFAULT
    assert run(p, age=11, work_hours_7d=1).category == "child_labour"
    assert run(p, age=12, work_hours_7d=1).category == "at_risk"
    assert run(p, age=14, work_hours_7d=14).category == "child_labour"
    assert run(p, age=15, work_hours_7d=14).category == "none"
    assert run(p, age=17, hazards=["sharp_tools"], work_hours_7d=2).category == "hazardous"
    assert run(p, age=18, hazards=["sharp_tools"], work_hours_7d=2).category == "none"
    assert run(p, age=12, work_hours_7d=13).category == "at_risk"
    assert run(p, age=12, work_hours_7d=14).category == "child_labour"
    assert run(p, age=16, work_hours_7d=42).category == "none"
    assert run(p, age=16, work_hours_7d=43).category == "hazardous"
    assert run(p, age=16, chore_hours_7d=20).category == "none"
    assert run(p, age=16, chore_hours_7d=21).category == "at_risk"


# --- the SDG 8.7.1 flag: fixed ages, whatever the profile ----------------------------------------


@pytest.mark.parametrize(
    "age, work, chores, expected",
    [
        (4, 5, 30, False), (5, 1, 0, True), (5, 0, 20, False), (5, 0, 21, True),
        (11, 1, 0, True), (11, 0, 0, False), (11, None, 21, True),
        (12, 13, 0, False), (12, 14, 0, True), (12, 0, 20, False), (12, 0, 21, True),
        (14, 13, 20, False), (14, 14, 0, True), (14, 0, 21, True),
        (15, 42, 0, False), (15, 43, 0, True), (15, 0, 168, False), (15, 14, 0, False),
        (17, 43, 0, True), (18, 43, 0, False), (None, 60, 60, False), (0, 10, 30, False),
    ],
)  # fmt: skip
def test_sdg_871_boundaries(age, work, chores, expected):
    assert sdg_871(age, work, chores) is expected
    for p in ALL_PROFILES:  # the same flag under every profile, hazards or not
        assert run(p, age=age, work_hours_7d=work, chore_hours_7d=chores).sdg_871 is expected
        hazardous = run(p, age=age, work_hours_7d=work, chore_hours_7d=chores,
                        hazards=["underground"], night_work=True)  # fmt: skip
        assert hazardous.sdg_871 is expected


def test_sdg_flag_differs_from_national_category():
    # India's law allows work from 14; the statistics still count a 14-year-old working 20 h
    result = run(SEEDED["IND"], age=14, work_hours_7d=20)
    assert result.category == "none" and result.sdg_871 is True
    assert run(ILO_DEFAULT, age=14, work_hours_7d=20).category == "child_labour"


# --- the documented decisions --------------------------------------------------------------------


@pytest.mark.parametrize("age", [None, 2, 5, 12, 17, 18, 25])
def test_worst_form_signs_at_any_age(age):
    result = run(ILO_DEFAULT, age=age, worst_form_signs=["none", "debt", "cannot_leave", "debt"])
    assert outcome(result) == ("worst_form", ["WF_SIGNS"])
    assert result.reasons[0].facts == {"age": age, "signs": ["debt", "cannot_leave"]}
    assert result.severity == "critical"


def test_unknown_worst_form_code_still_counts_and_none_means_nothing():
    assert run(ILO_DEFAULT, worst_form_signs=["forced_recruitment"]).category == "worst_form"
    assert run(ILO_DEFAULT, worst_form_signs=["none"]).category == "none"
    assert run(ILO_DEFAULT, worst_form_signs=("none",)).category == "none"
    assert run(ILO_DEFAULT, worst_form_signs=None).category == "none"
    assert run(ILO_DEFAULT, hazards=["none"], work_hours_7d=2, age=13).category == "at_risk"


@pytest.mark.parametrize("age", [0, 4, 18, 25])
def test_out_of_scope_ages(age):
    result = run(ILO_DEFAULT, age=age, work_hours_7d=60, hazards=["underground"], night_work=True)
    assert outcome(result) == ("none", ["OUT_OF_SCOPE_AGE"])
    assert result.reasons[0].facts == {"age": age} and result.sdg_871 is False
    assert result.severity is None


def test_unknown_age():
    hazardous = run(ILO_DEFAULT, age=None, hazards=["agrochemicals", "loud_noise_vibration"])
    assert outcome(hazardous) == ("hazardous", ["HAZ_TASK"])
    hazards = ["agrochemicals", "loud_noise_vibration"]
    assert hazardous.reasons[0].facts == {"age": None, "hazards": hazards}
    working = run(ILO_DEFAULT, age=None, work_hours_7d=5)
    assert outcome(working) == ("at_risk", ["AGE_UNKNOWN_WORKING"])
    assert working.reasons[0].facts == {"age": None, "work_hours_7d": 5}
    assert run(ILO_DEFAULT, age=None, work_hours_7d=50).category == "hazardous"
    assert outcome(run(ILO_DEFAULT, age=None)) == ("none", [])
    # school needs an age to decide; chores do not
    assert outcome(run(SEEDED["CIV"], age=None, attends_school=False)) == ("none", [])
    assert outcome(run(ILO_DEFAULT, age=None, chore_hours_7d=30)) == ("at_risk", ["AR_CHORES"])


def test_unknown_hours():
    # reported working, hours not known: verify, never silently "none"
    result = run(ILO_DEFAULT, age=9, work_activities=["own_farm", "none"], work_hours_7d=None)
    assert outcome(result) == ("at_risk", ["HOURS_UNKNOWN_WORKING"])
    assert result.reasons[0].facts == {"age": 9, "work_hours_7d": None,
                                       "work_activities": ["own_farm"]}  # fmt: skip
    # no activity and no hours: nothing; hours None count as 0 for every threshold
    assert outcome(run(ILO_DEFAULT, age=9, work_activities=["none"])) == ("none", [])
    assert outcome(run(ILO_DEFAULT, age=9, work_activities=[], chore_hours_7d=None)) == ("none", [])
    assert run(ILO_DEFAULT, age=9, work_activities=["own_farm"], work_hours_7d=0).category == "none"


def test_hazards_count_only_on_the_profiles_list():
    narrow = dataclasses.replace(ILO_DEFAULT, code="XXX", hazardous_list=frozenset({"underground"}))
    assert run(narrow, age=14, hazards=["agrochemicals"], work_hours_7d=2).category == "at_risk"
    result = run(narrow, age=14, hazards=["agrochemicals", "underground"], work_hours_7d=2)
    assert result.reasons[0].facts["hazards"] == ["underground"]


def test_all_rules_of_the_winning_category_are_reported():
    result = run(ILO_DEFAULT, age=16, hazards=["heavy_loads"], night_work=True, work_hours_7d=50,
                 chore_hours_7d=30)  # fmt: skip
    assert outcome(result) == ("hazardous", ["HAZ_TASK", "HAZ_NIGHT", "HAZ_HOURS"])
    civ = SEEDED["CIV"]
    result = run(civ, age=13, work_hours_7d=5, attends_school=False, chore_hours_7d=25)
    assert outcome(result) == ("at_risk", ["AR_LIGHT_WORK", "AR_NOT_IN_SCHOOL", "AR_CHORES"])


def test_injury_is_a_risk_factor_only():
    result = run(ILO_DEFAULT, age=16, work_hours_7d=10, injured_12m=True)
    assert outcome(result) == ("none", []) and result.risk_factors == ("RISK_INJURED_12M",)
    assert run(ILO_DEFAULT, age=9, work_hours_7d=3, injured_12m=True).category == "child_labour"
    assert run(ILO_DEFAULT, age=9, injured_12m=None).risk_factors == ()


def test_result_as_dict_is_json_and_round_trips():
    result = run(ILO_DEFAULT, age=16, hazards=("agrochemicals",), night_work=True, injured_12m=True)
    data = json.loads(json.dumps(result.as_dict()))
    assert data == {
        "category": "hazardous",
        "sdg_871": False,
        "reasons": [
            {"rule": "HAZ_TASK", "facts": {"age": 16, "hazards": ["agrochemicals"]}},
            {"rule": "HAZ_NIGHT", "facts": {"age": 16, "night_work": True}},
        ],
        "risk_factors": ["RISK_INJURED_12M"],
        "rule_set_version": "ilo-icls20-2018.1",
        "profile_code": "ILO",
        "profile_version": 1,
    }
    assert Result.from_dict(data) == result
    assert explain_change(data, result) is None


def test_classify_keywords_and_facts_with_missing_keys():
    result = classify(ILO_DEFAULT, age=9, attends_school=True, work_hours_7d=3, chore_hours_7d=0,
                      hazards=[], night_work=False, worst_form_signs=[])  # fmt: skip
    assert result.reasons[0] == ("CL_UNDER_LIGHT_AGE",
                                 {"age": 9, "work_hours_7d": 3})  # fmt: skip
    assert classify_facts(ILO_DEFAULT, {"age": 16, "night_work": True}).category == "hazardous"
    # rows without a key still classify (a follow-up carries no injured_12m)
    rows = [{"age": 9, "work_hours_7d": 3}, child(age=9)]
    assert [r.category for r in classify_rows(ILO_DEFAULT, rows)] == ["child_labour", "none"]


def test_nothing_to_report_shares_one_result():
    a, b = classify_rows(ILO_DEFAULT, [child(age=7), child(age=16, chore_hours_7d=3)])
    assert a is b and a == (("none", False, (), (), rules.RULE_SET_VERSION, "ILO", 1))


# --- severity and deadlines ----------------------------------------------------------------------


def test_severity_and_deadlines():
    t = dt.datetime(2026, 3, 1, 8, 0, tzinfo=dt.UTC)
    expected = {
        "worst_form": ("critical", dt.timedelta(hours=24), dt.timedelta(hours=72)),
        "hazardous": ("high", dt.timedelta(days=3), dt.timedelta(days=7)),
        "child_labour": ("medium", dt.timedelta(days=7), dt.timedelta(days=14)),
        "at_risk": ("low", dt.timedelta(days=30), None),
    }
    for category, (severity, ack, visit) in expected.items():
        assert rules.SEVERITY[category] == severity
        assert rules.deadlines(category, t) == (t + ack, t + visit if visit else None)
    assert [rules.SEVERITY_RANK[rules.SEVERITY[c]] for c in expected] == [4, 3, 2, 1]
    with pytest.raises(ValueError, match="raises no alert"):
        rules.deadlines("none", t)


# --- profiles are checked once -------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"light_work_age": 15}, "light_work_age"),
        ({"min_age": 19}, "min_age"),
        ({"min_age_hazardous": 14}, "min_age"),
        ({"hazardous_hours": 0}, "hazardous_hours"),
        ({"chores_hours": 169}, "chores_hours"),
        ({"light_work_max_hours": "14"}, "light_work_max_hours"),
        ({"compulsory_school_age": 3}, "compulsory_school_age"),
        ({"hazardous_list": frozenset({"agrochemicals", "lava"})}, "hazardous_list"),
        ({"code": "civ"}, "code"),
        ({"name": " "}, "name"),
        ({"version": 0}, "version"),
    ],
)
def test_invalid_profiles_are_refused_naming_the_field(changes, field):
    with pytest.raises(ProfileError) as refused:
        dataclasses.replace(ILO_DEFAULT, **changes)
    assert field in refused.value.errors
    assert str(refused.value).startswith(field) or f"; {field}:" in str(refused.value)


def test_profiles_pickle_and_copy_with_their_row_id():
    import copy
    import pickle

    civ = dataclasses.replace(SEEDED["CIV"], row_id=7)
    # our own bytes, just written: nothing untrusted is unpickled
    clones = (pickle.loads(pickle.dumps(civ)), copy.deepcopy(civ), copy.copy(civ))  # noqa: S301
    for clone in clones:
        assert clone == civ and clone.row_id == 7
        assert classify_facts(clone, child(age=13, work_hours_7d=20)).profile_code == "CIV"


def test_ordering_problem_is_reported_on_the_changed_field():
    values = {**ILO_DEFAULT.values(), "min_age": 12}
    assert set(rules.profile_problems(values, changed=["min_age"])) == {"min_age"}
    assert set(rules.profile_problems(values)) == {"light_work_age"}


# --- explaining a change -------------------------------------------------------------------------


def test_explain_change():
    ilo = ILO_DEFAULT
    civ2 = dataclasses.replace(SEEDED["CIV"], version=2, light_work_age=15)
    facts = child(age=14, work_hours_7d=5)
    before = classify_facts(SEEDED["CIV"], facts)
    after = classify_facts(civ2, facts)
    assert outcome(before) == ("at_risk", ["AR_LIGHT_WORK"])
    assert outcome(after) == ("child_labour", ["CL_UNDER_LIGHT_AGE"])
    text = explain_change(before, after)
    assert text.startswith("Profile CIV version 1 -> 2;")
    assert "category at_risk -> child_labour" in text
    assert "reason added: CL_UNDER_LIGHT_AGE (age 14, work_hours_7d 5)" in text
    assert "reason removed: AR_LIGHT_WORK" in text
    assert "SDG" not in text  # the flag did not move

    assert explain_change(before, before) is None
    assert explain_change(before.as_dict(), before) is None

    # same outcome under a new version: still said, with the cause
    same = classify_facts(dataclasses.replace(SEEDED["CIV"], version=3), facts)
    assert explain_change(before, same) == "Profile CIV version 1 -> 3; same result (at_risk)."

    # a rule-set change, a threshold change, the SDG flag and a risk factor
    old = classify_facts(ilo, child(age=16, work_hours_7d=45)).as_dict()
    old["rule_set_version"] = "ilo-icls20-2018.0"
    lower = dataclasses.replace(ilo, hazardous_hours=40, version=2)
    new = classify_facts(lower, child(age=16, work_hours_7d=45, injured_12m=True))
    text = explain_change(old, new)
    assert text.startswith(
        "Rule set ilo-icls20-2018.0 -> ilo-icls20-2018.1; profile ILO version 1 -> 2;"
    )
    assert "reason HAZ_HOURS facts changed: threshold 43 -> 40" in text
    assert "risk factor added: RISK_INJURED_12M" in text
    text = explain_change(classify_facts(ilo, child(age=13, work_hours_7d=10)),
                          classify_facts(ilo, child(age=13, work_hours_7d=14)))  # fmt: skip
    assert text.startswith("The facts changed;") and "SDG 8.7.1 flag no -> yes" in text


# --- properties: the whole input space against an independent oracle ----------------------------


def oracle(p: Profile, f: dict) -> tuple[str, list[str], bool]:
    """Category, rule ids and SDG flag, from a table of (rule, category, condition) in order.

    Written apart from the module on purpose: sets instead of loops, a table instead of branches.
    """
    age = f["age"]
    work, chores = f["work_hours_7d"] or 0, f["chore_hours_7d"] or 0
    signs = set(f["worst_form_signs"] or ()) - {"none"}
    hazards = (set(f["hazards"] or ()) - {"none"}) & p.hazardous_list
    activities = set(f["work_activities"] or ()) - {"none"}
    known = age is not None
    adult_or_infant = known and not (5 <= age <= 17)
    young_enough = not known or age < p.min_age_hazardous
    light_band = known and p.light_work_age <= age < p.min_age
    school_rule = known and p.compulsory_school_age is not None and age < p.compulsory_school_age
    table = [
        ("WF_SIGNS", "worst_form", bool(signs)),
        ("OUT_OF_SCOPE_AGE", "none", adult_or_infant),
        ("HAZ_TASK", "hazardous", young_enough and bool(hazards)),
        ("HAZ_NIGHT", "hazardous", young_enough and f["night_work"] is True),
        ("HAZ_HOURS", "hazardous", young_enough and work >= p.hazardous_hours),
        ("CL_UNDER_LIGHT_AGE", "child_labour", known and age < p.light_work_age and work >= 1),
        ("CL_OVER_LIGHT_HOURS", "child_labour", light_band and work >= p.light_work_max_hours),
        ("HOURS_UNKNOWN_WORKING", "at_risk", f["work_hours_7d"] is None and bool(activities)),
        ("AGE_UNKNOWN_WORKING", "at_risk", not known and work >= 1),
        ("AR_LIGHT_WORK", "at_risk", light_band and 1 <= work < p.light_work_max_hours),
        ("AR_NOT_IN_SCHOOL", "at_risk", school_rule and f["attends_school"] is False),
        ("AR_CHORES", "at_risk", chores >= p.chores_hours),
    ]
    category = next((cat for _rule, cat, fired in table if fired), "none")
    fired = [rule for rule, cat, hit in table if hit and cat == category]

    sdg_bands = [  # (lowest age, highest age, work hours from, chore hours from)
        (5, 11, 1, 21),
        (12, 14, 14, 21),
        (15, 17, 43, None),
    ]
    sdg = any(
        known and low <= age <= high and (work >= w or (c is not None and chores >= c))
        for low, high, w, c in sdg_bands
    )
    return category, fired, sdg


@st.composite
def profiles(draw) -> Profile:
    light = draw(st.integers(5, 16))
    minimum = draw(st.integers(light + 1, 18))
    hazardous = draw(st.integers(minimum, 18))
    return Profile(
        code=draw(st.sampled_from(["ILO", "CIV", "ZZZ"])),
        name="random",
        light_work_age=light,
        min_age=minimum,
        min_age_hazardous=hazardous,
        light_work_max_hours=draw(st.integers(1, 168)),
        hazardous_hours=draw(st.integers(1, 168)),
        chores_hours=draw(st.integers(1, 168)),
        compulsory_school_age=draw(st.none() | st.integers(5, 18)),
        hazardous_list=draw(st.frozensets(st.sampled_from(sorted(HAZARD_CODES)))),
        version=draw(st.integers(1, 9)),
    )


HOURS = st.none() | st.integers(0, 168) | st.sampled_from([0, 1, 13, 14, 20, 21, 42, 43])
YES_NO = st.none() | st.booleans()


def codes(allowed: set[str]):
    listed = st.lists(st.sampled_from(sorted(allowed)), max_size=4)
    return st.none() | listed | listed.map(tuple)


FACTS = st.fixed_dictionaries(
    {
        "age": st.none() | st.integers(0, 25),
        "attends_school": YES_NO,
        "work_activities": codes(WORK_ACTIVITIES),
        "work_hours_7d": HOURS,
        "chore_hours_7d": HOURS,
        "hazards": codes(HAZARDS),
        "night_work": YES_NO,
        "injured_12m": YES_NO,
        "worst_form_signs": codes(WORST_FORM_SIGNS),
    }
)
PROFILES = st.one_of(st.sampled_from(ALL_PROFILES), profiles())


@settings(max_examples=400, deadline=None)
@given(p=PROFILES, f=FACTS)
def test_rules_agree_with_the_oracle(p, f):
    result = classify_facts(p, f)
    category, fired, sdg = oracle(p, f)
    assert result.category == category
    assert [r.rule for r in result.reasons] == fired
    assert result.sdg_871 is sdg
    assert result.risk_factors == (("RISK_INJURED_12M",) if f["injured_12m"] is True else ())
    assert (result.rule_set_version, result.profile_code, result.profile_version) == (
        rules.RULE_SET_VERSION, p.code, p.version,
    )  # fmt: skip
    work = f["work_hours_7d"] or 0
    for reason in result.reasons:
        # every reason belongs to the category and carries the facts that made it fire
        assert rules.RULES[reason.rule][0] == result.category
        assert reason.facts["age"] == f["age"]
        json.dumps(reason.as_dict())
        if reason.rule == "HAZ_HOURS":
            assert reason.facts["work_hours_7d"] == work >= reason.facts["threshold"]
            assert reason.facts["threshold"] == p.hazardous_hours
        if reason.rule == "HAZ_TASK":
            assert reason.facts["hazards"]
            assert set(reason.facts["hazards"]) <= p.hazardous_list & set(f["hazards"])
        if reason.rule == "WF_SIGNS":
            assert reason.facts["signs"] and "none" not in reason.facts["signs"]
        if reason.rule in ("CL_OVER_LIGHT_HOURS", "AR_LIGHT_WORK"):
            assert reason.facts["threshold"] == p.light_work_max_hours
        if reason.rule == "AR_CHORES":
            assert reason.facts["chore_hours_7d"] >= reason.facts["threshold"] == p.chores_hours
    assert result.severity == rules.SEVERITY.get(category)
    assert Result.from_dict(json.loads(json.dumps(result.as_dict()))) == result


@settings(max_examples=200, deadline=None)
@given(p=PROFILES, rows=st.lists(FACTS, max_size=20))
def test_batch_path_equals_one_by_one(p, rows):
    """The fast path of classify_rows gives exactly what the full rules give, row by row."""
    assert classify_rows(p, rows) == [classify_facts(p, f) for f in rows]
    assert classify_rows(p, iter(rows)) == [
        classify(p, f["age"], f["attends_school"], f["work_hours_7d"], f["chore_hours_7d"],
                 f["hazards"], f["night_work"], f["worst_form_signs"], f["injured_12m"],
                 f["work_activities"])
        for f in rows
    ]  # fmt: skip


@settings(max_examples=100, deadline=None)
@given(p=PROFILES, f=FACTS, g=FACTS)
def test_explain_change_is_none_exactly_when_nothing_differs(p, f, g):
    a, b = classify_facts(p, f), classify_facts(p, g)
    text = explain_change(a, b)
    assert (text is None) == (a == b)
    if a.category != b.category:
        assert f"category {a.category} -> {b.category}" in text
