"""Pages in French show no stored code in English: an alert's hazards, a case timeline's
service, the audit log's actions, a held submission's reason and the map's credit."""

from __future__ import annotations

import datetime as dt
import html
import re

import pytest

from clms.cases.catalogue import ensure_services
from clms.cases.records import record_event
from clms.db import session_scope
from clms.i18n import translator
from clms.models import User
from geo.maps.build import OfficerMapData, build_brand_map, build_officer_map
from tests import builders
from tests.conftest import PASSWORD
from tests.submissions import child, household_xml

FRENCH = {"Accept-Language": "fr-CI,fr;q=0.9"}
NOW = dt.datetime(2026, 6, 8, 9, 0, tzinfo=dt.UTC)


def login(client, username: str) -> None:
    client.post("/logout")
    answer = client.post("/login", data={"username": username, "password": PASSWORD})
    assert answer.status_code == 302, username


def text(response) -> str:
    """A page's visible text, markup and scripts removed, entities decoded."""
    page = response.get_data(as_text=True)
    page = re.sub(r"<(script|style)\b.*?</\1>", " ", page, flags=re.S)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page)))


@pytest.fixture
def world(app, places, make_user):
    """olga, officer of CI-D1; ada, administrator; a hazardous alert of a child in V1 and a case
    of the same child whose plan holds a cash transfer."""
    make_user("olga", "officer", areas=["CI-D1"])
    make_user("ada", "admin")
    with session_scope(app) as s:
        ensure_services(s)
        home = builders.household(s, "V1")
        kid = builders.child(s, home, sex="female")
        alert = builders.alert(
            s, kid, category="hazardous", created_at=NOW,
            reasons=[{"rule": "HAZ_TASK", "facts": {"age": 14,
                                                    "hazards": ["agrochemicals", "sharp_tools"]}},
                     {"rule": "WF_SIGNS", "facts": {"signs": ["debt", "cannot_leave"]}}],
        )  # fmt: skip
        olga = s.query(User).filter_by(username="olga").one()
        case = builders.case(s, kid, officer=olga.id, state="action_plan")
        record_event(s, case, olga, "service_planned", {"service": "cash_transfer"}, now=NOW)
        seen = builders.visit(s, home, NOW - dt.timedelta(days=1))
        found = builders.child_visit(
            s, seen, kid, age=14, work_activities=["own_farm", "paid_work"],
            hazards=["agrochemicals", "sharp_tools"], worst_form_signs=["debt"],
        )  # fmt: skip
        builders.classification(s, found, "worst_form")
        return {"alert": alert.id, "case": case.id, "child": kid.child_uid}


def test_an_alerts_hazards_and_signs_are_in_french(client, world):
    login(client, "olga")
    english = text(client.get(f"/alerts/{world['alert']}"))
    assert "Spraying or applying agrochemicals" in english
    assert "debt bondage: working to pay off a debt" in english
    french = text(client.get(f"/alerts/{world['alert']}", headers=FRENCH))
    assert "Utilisation d'une machette ou d'un coutelas" in french
    assert "servitude pour dettes" in french
    for code in ("agrochemicals", "sharp tools", "sharp_tools", "cannot leave", "debt,"):
        assert code not in french, code


def test_a_childs_visits_say_what_was_found_in_french(client, world):
    login(client, "olga")
    english = text(client.get(f"/children/{world['child']}"))
    assert "Using a machete or cutlass to harvest or break pods" in english
    french = text(client.get(f"/children/{world['child']}", headers=FRENCH))
    assert "Utilisation d'une machette ou d'un coutelas" in french
    assert "sur l'exploitation du ménage; travail rémunéré" in french
    assert "servitude pour dettes" in french
    for code in ("agrochemicals", "sharp tools", "own farm", "paid work"):
        assert code not in french, code


def test_a_case_timelines_service_is_in_french(client, world):
    login(client, "olga")
    assert "Cash transfer or social protection" in text(client.get(f"/cases/{world['case']}"))
    french = text(client.get(f"/cases/{world['case']}", headers=FRENCH))
    assert "Transfert monétaire ou protection sociale" in french
    assert "cash transfer" not in french.lower()


def test_the_audit_logs_actions_are_in_french(client, world):
    login(client, "ada")
    english = text(client.get("/audit"))
    assert "Service added to the plan" in english and "signed in" in english
    french = text(client.get("/audit", headers=FRENCH))
    assert "Service ajouté au plan" in french
    assert "s'est connecté" in french
    assert "signed in" not in french and "Service added" not in french
    # the code stays, small, for the search by action
    assert "case.service_planned" in french


def test_a_held_submissions_reason_is_in_french(app, client, phone, version, process, make_user):
    make_user("olga", "officer", areas=["CI-D1"])
    working = {"work_activities": "own_farm", "work_hours_7d": 10, "night_work": "no",
               "injured_12m": "no", "hazards": "sharp_tools lava"}  # fmt: skip
    assert phone.submit(household_xml(version, children=[child(**working)])).status_code == 201
    assert process().review == 1
    login(client, "olga")
    page = client.get("/review", headers=FRENCH)
    assert page.status_code == 200
    [sub] = re.findall(r'href="/submissions/(\d+)"', page.get_data(as_text=True))[:1]
    french = text(client.get(f"/submissions/{sub}", headers=FRENCH))
    why = french.split("Pourquoi elle doit être revue", 1)[1].split("Décider", 1)[0]
    assert "« lava » n'est pas un des choix du formulaire" in why
    # only the answer that is not a choice is quoted, not the codes of the good ones
    assert "sharp_tools" not in why and "unknown choice" not in french.lower()


def test_the_maps_credit_their_sources_in_the_readers_language():
    french = translator("fr")
    officer = build_officer_map(OfficerMapData(), translate=french).get_root().render()
    assert "Limites : geoBoundaries" in officer and "Boundaries:" not in officer
    from geo.maps.build import BrandMapData

    brand = build_brand_map(BrandMapData(), translate=french).get_root().render()
    assert "Limites : geoBoundaries" in brand and "Boundaries:" not in brand
    assert "Boundaries: geoBoundaries" in build_officer_map(OfficerMapData()).get_root().render()
