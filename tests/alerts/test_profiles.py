"""Country profiles: seeding from the US DOL ILAB file, versions in the database, the
``clms profiles`` commands and the web pages (who may read, who may change).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from alerts.profiles.cli import profiles_group
from alerts.profiles.model import (
    SEEDED_CODES,
    changed_fields,
    parse_changes,
    profile_code_for,
    profile_for,
)
from alerts.profiles.seeds import read_dol_figures, seed_profiles
from alerts.profiles.store import (
    add_profile,
    current_profiles,
    ensure_profiles,
    profile_history,
    update_profile,
)
from alerts.rules import HAZARD_CODES, ILO_DEFAULT, RULE_FIELDS, Profile, ProfileError
from clms.db import session_scope
from clms.models import CountryProfile, User
from tests.conftest import PASSWORD, SHARED

DOL_FILE = SHARED / "reference" / "dol_ilab_countries_2021.xml"


# --- seeding (pure) ------------------------------------------------------------------------------


def by_code(rows):
    return {r["code"]: r for r in rows}


def test_seed_from_the_dol_file():
    rows = by_code(seed_profiles(DOL_FILE))
    assert tuple(rows) == SEEDED_CODES and len(rows) == 10
    assert rows["CIV"]["min_age"] == 16 and rows["CIV"]["light_work_age"] == 13
    assert rows["CIV"]["compulsory_school_age"] == 16
    assert rows["GHA"]["min_age"] == 15 and rows["GHA"]["compulsory_school_age"] == 15
    assert rows["IND"]["min_age"] == 14 and rows["IND"]["light_work_age"] == 12
    assert rows["MMR"]["compulsory_school_age"] == 10 and rows["MMR"]["min_age"] == 14
    assert rows["PHL"]["compulsory_school_age"] == 18 and rows["THA"]["compulsory_school_age"] == 16
    assert rows["KHM"]["compulsory_school_age"] is None
    for row in rows.values():
        assert row["min_age_hazardous"] == 18 and row["version"] == 1 and row["current"] is True
        assert row["hazardous_list"] == sorted(HAZARD_CODES)
        assert set(row["sources"]) >= set(RULE_FIELDS) | {"national_hazardous_list"}
        assert all(row["sources"].values())
        Profile.from_mapping(row)  # the rules accept every seed
    # DOL's hazardous-work list flags: Myanmar has none; the ILO default is no country
    assert {c: r["national_hazardous_list"] for c, r in rows.items()} == {
        "ILO": False, "CIV": True, "GHA": True, "IND": True, "BGD": True, "MMR": False,
        "KHM": True, "IDN": True, "PHL": True, "THA": True,
    }  # fmt: skip
    assert rows["GHA"]["sources"]["min_age"] == "US DOL ILAB 2021, Legal_Standards/Minimum_Work"
    assert "C138 art. 7(4)" in rows["IND"]["sources"]["light_work_age"]
    assert "ILO default" in rows["GHA"]["sources"]["light_work_age"]
    assert "light work for ages 13-16" in rows["CIV"]["sources"]["light_work_age"]


def test_bangladesh_impossible_dol_figure_is_replaced_with_the_reason():
    figures = read_dol_figures(DOL_FILE)
    assert figures["Bangladesh"]["min_work"] == "19"  # what the file says
    bgd = by_code(seed_profiles(DOL_FILE))["BGD"]
    assert bgd["min_age"] == 14 and bgd["light_work_age"] == 12
    source = bgd["sources"]["min_age"]
    assert source.startswith("domain.md section 3: 14") and "reads 19" in source
    assert "impossible" in source and "hazardous work (18)" in source
    assert "no figure" in bgd["sources"]["compulsory_school_age"]  # N/A in the file
    assert figures["Burma"]["compulsory_education"] == "10"


@pytest.mark.parametrize("reference", [None, Path("/nonexistent/dol.xml")])
def test_seed_without_the_file_uses_domain_figures(reference):
    with_file = by_code(seed_profiles(DOL_FILE))
    rows = by_code(seed_profiles(reference))
    values = [f for f in (*RULE_FIELDS, "national_hazardous_list", "name")]
    for code in SEEDED_CODES:
        assert {f: rows[code][f] for f in values} == {f: with_file[code][f] for f in values}
    assert "reference file not available" in rows["CIV"]["sources"]["min_age"]
    assert "not" in rows["CIV"]["change_note"]


def test_area_country_to_profile():
    assert profile_code_for("CIV", SEEDED_CODES) == "CIV"
    assert profile_code_for("gha", SEEDED_CODES) == "GHA"
    assert profile_code_for("FRA", SEEDED_CODES) == "ILO"
    assert profile_code_for(None, SEEDED_CODES) == "ILO"
    profiles = {"ILO": ILO_DEFAULT}
    assert profile_for(profiles, "CIV") is ILO_DEFAULT
    assert profile_for({}, "CIV") is ILO_DEFAULT


def test_parse_changes():
    assert parse_changes({"compulsory_school_age": "none", "national_hazardous_list": "yes",
                          "hazardous_list": ""}) == {
        "compulsory_school_age": None, "national_hazardous_list": True, "hazardous_list": []
    }  # fmt: skip
    with pytest.raises(ProfileError) as refused:
        parse_changes({"min_age": "fifteen", "colour": "red", "national_hazardous_list": "maybe"})
    assert set(refused.value.errors) == {"min_age", "colour", "national_hazardous_list"}
    assert "whole number" in refused.value.errors["min_age"]


def test_changed_fields():
    before = {**ILO_DEFAULT.values(), "name": "x", "national_hazardous_list": False}
    after = {
        **before,
        "chores_hours": 28,
        "hazardous_list": list(reversed(before["hazardous_list"])),
    }
    assert changed_fields(before, after) == ["chores_hours"]


# --- in the database -----------------------------------------------------------------------------


def count(app, code=None) -> int:
    with session_scope(app) as s:
        query = select(func.count(CountryProfile.id))
        if code:
            query = query.where(CountryProfile.code == code)
        return s.scalar(query)


def seed(app):
    with session_scope(app) as s:
        return [p.code for p in ensure_profiles(s, DOL_FILE)]


def admin(app, make_user, name="ada") -> int:
    return make_user(name, "admin")


def test_ensure_profiles_is_idempotent(app):
    assert seed(app) == list(SEEDED_CODES)
    assert seed(app) == []
    assert count(app) == 10
    with session_scope(app) as s:
        profiles = current_profiles(s)
        assert set(profiles) == set(SEEDED_CODES)
        civ = profiles["CIV"]
        row = s.get(CountryProfile, civ.row_id)
        assert (row.code, row.version, civ.min_age, civ.light_work_age) == ("CIV", 1, 16, 13)
        assert civ.hazardous_list == HAZARD_CODES
        assert profiles["ILO"] == ILO_DEFAULT


def test_update_adds_a_version_and_keeps_the_old_one(app, make_user):
    seed(app)
    uid = admin(app, make_user)
    with session_scope(app) as s:
        user = s.get(User, uid)
        row = update_profile(
            s, "GHA",
            {"light_work_age": 13, "hazardous_list": ["agrochemicals", "land_clearing"],
             "min_age": 15},
            user, "  Children's Act 1998 s. 90  ",
        )  # fmt: skip
        assert row.version == 2 and row.current and row.created_by_id == uid
    with session_scope(app) as s:
        v2, v1 = profile_history(s, "GHA")
        assert (v2.version, v2.current, v1.version, v1.current) == (2, True, 1, False)
        assert v1.light_work_age == 12 and v2.light_work_age == 13
        assert v2.hazardous_list == ["agrochemicals", "land_clearing"]
        assert len(v1.hazardous_list) == len(HAZARD_CODES)
        assert v2.change_note == "Children's Act 1998 s. 90"
        assert v2.sources["light_work_age"] == "changed by ada: Children's Act 1998 s. 90"
        assert v2.sources["min_age"] == v1.sources["min_age"]  # unchanged: same source
        gha = current_profiles(s)["GHA"]
        assert (gha.version, gha.row_id, gha.light_work_age) == (2, v2.id, 13)
    assert seed(app) == []  # a changed profile is never re-seeded


@pytest.mark.parametrize(
    "changes, note, field, words",
    [
        ({"light_work_age": 16}, "law", "light_work_age", "below min_age (16)"),
        ({"min_age": 12}, "law", "min_age", "above light_work_age (13)"),
        ({"min_age_hazardous": 15}, "law", "min_age_hazardous", "not be below min_age (16)"),
        ({"min_age": 20}, "law", "min_age", "from 5 to 18"),
        ({"hazardous_hours": 169}, "law", "hazardous_hours", "from 1 to 168"),
        ({"chores_hours": 0}, "law", "chores_hours", "from 1 to 168"),
        ({"light_work_max_hours": 1.5}, "law", "light_work_max_hours", "whole number"),
        ({"hazardous_list": ["agrochemicals", "volcanoes"]}, "law", "hazardous_list", "volcanoes"),
        ({"compulsory_school_age": 2}, "law", "compulsory_school_age", "from 5 to 18"),
        ({"min_age": 15}, "  ", "note", "say why"),
        ({"min_age": 16}, "law", "changes", "nothing differs from version 1"),
        ({"colour": "red"}, "law", "colour", "not a profile field"),
        ({"name": ""}, "law", "name", "required"),
    ],
)
def test_invalid_updates_are_refused_and_nothing_is_written(
    app, make_user, changes, note, field, words
):
    seed(app)
    uid = admin(app, make_user)
    with session_scope(app) as s, pytest.raises(ProfileError) as refused:
        update_profile(s, "CIV", changes, s.get(User, uid), note)
    assert field in refused.value.errors and words in refused.value.errors[field]
    assert isinstance(refused.value, ValueError) and field in str(refused.value)
    assert count(app, "CIV") == 1
    with session_scope(app) as s:
        assert current_profiles(s)["CIV"].min_age == 16


def test_unknown_profile_is_refused(app):
    seed(app)
    with session_scope(app) as s, pytest.raises(ProfileError, match="no profile 'XYZ'"):
        update_profile(s, "XYZ", {"min_age": 15}, None, "law")


def test_add_profile(app, make_user):
    seed(app)
    uid = admin(app, make_user)
    with session_scope(app) as s:
        row = add_profile(s, "NGA", "Nigeria", {"compulsory_school_age": 15}, s.get(User, uid),
                          "national figures checked")  # fmt: skip
        assert (row.version, row.current, row.min_age, row.compulsory_school_age) == (
            1,
            True,
            15,
            15,
        )
        assert row.sources["compulsory_school_age"] == "changed by ada: national figures checked"
        assert row.sources["min_age"] == "copied from the ILO profile version 1"
    with session_scope(app) as s:
        for code, values, field in [
            ("NGA", {}, "code"),
            ("nga2", {}, "code"),
            ("SEN", {"min_age": 11}, "min_age"),
            ("SEN", {"flavour": 1}, "flavour"),
        ]:
            with pytest.raises(ProfileError) as refused:
                add_profile(s, code, "X", values, None, "note")
            assert field in refused.value.errors
        with pytest.raises(ProfileError) as refused:
            add_profile(s, "SEN", "Senegal", {}, None, "")
        assert set(refused.value.errors) == {"note"}
    assert count(app) == 11


# --- the command line ----------------------------------------------------------------------------


def cli(runner, *args):
    return runner.invoke(profiles_group, list(args))


def test_cli_seed_list_show(app, runner):
    result = cli(runner, "list")
    assert result.exit_code == 0 and "No profiles yet" in result.output
    result = cli(runner, "seed", "--reference", str(DOL_FILE))
    assert result.exit_code == 0 and "Seeded ILO, CIV" in result.output
    assert "already there" in cli(runner, "seed", "--reference", str(DOL_FILE)).output
    listing = cli(runner, "list").output
    assert all(code in listing for code in SEEDED_CODES) and "Côte d'Ivoire" in listing
    shown = cli(runner, "show", "bgd")
    assert shown.exit_code == 0
    assert "min_age                14" in shown.output and "reads 19" in shown.output
    missing = cli(runner, "show", "XYZ")
    assert missing.exit_code != 0 and "There is no profile XYZ" in missing.output


def test_cli_set_and_history(app, runner, make_user):
    seed(app)
    admin(app, make_user)
    result = cli(runner, "set", "CIV", "light_work_age=14", "compulsory_school_age=none",
                 "hazardous_list=agrochemicals,heavy_loads", "--note", "Arrêté 2017 revised",
                 "--by", "ada")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "CIV is now at version 2." in result.output
    with session_scope(app) as s:
        civ = current_profiles(s)["CIV"]
        assert (civ.light_work_age, civ.compulsory_school_age) == (14, None)
        assert civ.hazardous_list == {"agrochemicals", "heavy_loads"}
    history = cli(runner, "show", "CIV", "--history").output
    assert "version 2 (current)" in history and "by ada: Arrêté 2017 revised" in history
    assert "version 1 " in history and "by the command line / seed" in history

    both = cli(runner, "set", "CIV", "min_age=x", "chores_hours=0", "--note", "oops")
    assert both.exit_code != 0
    assert "min_age: must be a whole number" in both.output and "chores_hours: must be from 1" in (
        both.output
    )
    refused = cli(runner, "set", "CIV", "min_age=13", "--note", "oops")
    assert refused.exit_code != 0
    assert "Nothing changed" in refused.output and "min_age: must be above light_work_age (14)" in (
        refused.output
    )
    assert cli(runner, "set", "CIV", "min_age=17").exit_code == 2  # --note is required
    assert cli(runner, "set", "CIV", "min_age", "--note", "x").exit_code == 2  # not FIELD=VALUE
    unknown_user = cli(runner, "set", "CIV", "min_age=17", "--note", "x", "--by", "nobody")
    assert unknown_user.exit_code != 0 and "no user 'nobody'" in unknown_user.output
    assert count(app, "CIV") == 2


def test_cli_add(app, runner):
    seed(app)
    result = cli(runner, "add", "nga", "Nigeria", "min_age=15", "--note", "ILO values")
    assert result.exit_code == 0, result.output
    assert "Added NGA Nigeria (version 1)." in result.output
    again = cli(runner, "add", "NGA", "Nigeria", "--note", "again")
    assert again.exit_code != 0 and "already a profile NGA" in again.output


# --- the web pages -------------------------------------------------------------------------------


def login(client, username):
    response = client.post("/login", data={"username": username, "password": PASSWORD})
    assert response.status_code == 302, response.data


def form_for(values: dict, note: str) -> dict:
    data = {k: ("" if v is None else str(v)) for k, v in values.items() if k != "hazardous_list"}
    data["hazardous_list"] = list(values["hazardous_list"])
    data["national_hazardous_list"] = "yes" if values.get("national_hazardous_list") else ""
    data["note"] = note
    return data


def civ_form(app) -> dict:
    from alerts.profiles.store import current_profile, profile_values

    with session_scope(app) as s:
        return profile_values(current_profile(s, "CIV"))


def test_admin_reads_and_changes_a_profile(app, client, make_user):
    seed(app)
    admin(app, make_user)
    login(client, "ada")
    listing = client.get("/profiles")
    assert listing.status_code == 200
    html = listing.get_data(as_text=True)
    assert 'href="/profiles/CIV"' in html and "Côte d&#39;Ivoire" in html

    page = client.get("/profiles/CIV").get_data(as_text=True)
    assert 'action="/profiles/CIV"' in page and '<label for="min_age">' in page
    assert '<label for="note">' in page and "<legend>" in page and "Save as version 2" in page
    assert "Legal_Standards/Minimum_Work" in page  # sources are shown

    values = civ_form(app)
    values.update(light_work_age=14, hazardous_list=["agrochemicals", "sharp_tools"])
    response = client.post("/profiles/CIV", data=form_for(values, "Decree 2026-1"))
    assert response.status_code == 302 and response.headers["Location"] == "/profiles/CIV"
    page = client.get("/profiles/CIV").get_data(as_text=True)
    assert "Saved CIV version 2." in page and "Decree 2026-1" in page
    assert "Light work allowed from age, Hazards that count" in page  # what changed, in words
    with session_scope(app) as s:
        civ = current_profiles(s)["CIV"]
        assert civ.version == 2 and civ.light_work_age == 14
        assert civ.hazardous_list == {"agrochemicals", "sharp_tools"}
        assert civ.compulsory_school_age == 16  # unchanged fields carried over
        assert (
            s.scalar(select(CountryProfile).where(CountryProfile.version == 2)).created_by.username
            == "ada"
        )  # noqa: E501


def test_admin_errors_are_shown_next_to_the_field(app, client, make_user):
    seed(app)
    admin(app, make_user)
    login(client, "ada")
    values = civ_form(app)
    values.update(min_age="sixteen", hazardous_hours=500, light_work_age=17)
    response = client.post("/profiles/CIV", data=form_for(values, ""))
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    # every problem at once, each next to its field
    assert 'id="min_age-error"' in page and "must be a whole number (got &#39;sixteen&#39;)" in page
    assert 'aria-describedby="min_age-error" aria-invalid="true"' in page
    assert 'value="sixteen"' in page  # what was typed stays in the form
    assert 'id="hazardous_hours-error"' in page and "from 1 to 168 (got 500)" in page
    assert 'id="note-error"' in page and "Nothing was saved" in page
    assert 'id="light_work_age-error"' not in page  # not compared with a min_age nobody gave
    assert count(app, "CIV") == 1

    values = civ_form(app)
    values.update(light_work_age=17)
    page = client.post("/profiles/CIV", data=form_for(values, "law")).get_data(as_text=True)
    assert 'id="light_work_age-error"' in page and "must be below min_age (16)" in page
    assert count(app, "CIV") == 1
    assert client.post("/profiles/XYZ", data=form_for(civ_form(app), "x")).status_code == 404


@pytest.mark.parametrize("role", ["officer", "supervisor"])
def test_officers_read_but_cannot_change(app, client, make_user, places, role):
    seed(app)
    make_user("olu", role, areas=["CI-D1"])
    login(client, "olu")
    assert client.get("/profiles").status_code == 200
    page = client.get("/profiles/CIV")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Minimum age for work" in html and '<form method="post" action="/profiles' not in html
    response = client.post("/profiles/CIV", data=form_for(civ_form(app), "try"))
    assert response.status_code == 403
    assert count(app, "CIV") == 1
    assert client.get("/profiles/XYZ").status_code == 404


@pytest.mark.parametrize("role, extra", [("brand", {"brand": "BRAND-A"}),
                                         ("monitor", {"areas": ["CI-D1"]}),
                                         ("provider", {})])  # fmt: skip
def test_other_roles_are_refused(app, client, make_user, places, role, extra):
    seed(app)
    make_user("someone", role, **extra)
    login(client, "someone")
    assert client.get("/profiles").status_code == 403
    assert client.get("/profiles/CIV").status_code == 403
    assert client.post("/profiles/CIV", data={"note": "x"}).status_code == 403


def test_anonymous_is_sent_to_login(client):
    for path in ("/profiles", "/profiles/CIV"):
        response = client.get(path)
        assert response.status_code == 302
        assert response.headers["Location"].startswith(f"/login?next={path}")
    assert client.post("/profiles/CIV", data={}).status_code == 302
