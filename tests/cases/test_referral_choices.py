"""The service and provider choices of the plan and referral forms (issue 17): a child is offered
only the services of its age, a service only the providers that deliver it; the page shows it
(service first, then its providers, without JavaScript) and the operations enforce it."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlalchemy import select

from clms.cases.plan import add_planned_service
from clms.cases.referrals import refer
from clms.db import session_scope
from clms.errors import Problem
from clms.models import Case, Child, ServiceType
from tests.cases import test_cases
from tests.cases.test_cases import T0, new_case, problem_fields, to_plan, who
from tests.conftest import PASSWORD

# services, providers and people of every role (tests/cases/test_cases.py): olga, officer of
# CI-D1; SCH-GN delivers school services; SOC-NAWA protection, psychosocial, birth certificates
world = test_cases.world


def aged(app, case_id: int, age: int) -> None:
    """The case's child is ``age`` years old (at T0 and today)."""
    with session_scope(app) as s:
        child = s.get(Child, s.get(Case, case_id).child_id)
        child.dob = dt.date(dt.date.today().year - age, 1, 1)
        child.birth_year = child.dob.year


def options(html: str, select_id: str) -> list[str]:
    """The values offered by the select ``select_id`` of the page (the blank one left out)."""
    found = re.search(rf'<select id="{select_id}"[^>]*>(.*?)</select>', html, re.S)
    assert found, f"no select {select_id}"
    return [v for v in re.findall(r'<option value="([^"]*)"', found.group(1)) if v]


def login(client, username: str) -> None:
    assert (
        client.post("/login", data={"username": username, "password": PASSWORD}).status_code == 302
    )


# --- the operations ------------------------------------------------------------------------------


def test_a_service_the_child_is_too_young_for_cannot_be_planned(app, world):
    case_id = new_case(app, now=T0)
    to_plan(app, case_id, now=T0)
    aged(app, case_id, 11)
    with session_scope(app) as s, pytest.raises(Problem) as e:
        add_planned_service(s, who(s, "olga"), case_id, service_code="vocational_training",
                            provider_code="SOC-NAWA", due_on=(T0 + dt.timedelta(days=9)).date(),
                            now=T0)  # fmt: skip
    assert str(problem_fields(e)["service"]) == "is for children aged 15 to 17; this child is 11"


def test_a_provider_that_does_not_deliver_the_service_is_refused(app, world):
    case_id = new_case(app, now=T0)
    to_plan(app, case_id, now=T0)
    with session_scope(app) as s, pytest.raises(Problem) as e:
        add_planned_service(s, who(s, "olga"), case_id, service_code="school_enrolment",
                            provider_code="SOC-NAWA", due_on=(T0 + dt.timedelta(days=9)).date(),
                            now=T0)  # fmt: skip
    assert (
        str(problem_fields(e)["provider"]) == "Centre social de Soubré does not offer this service"
    )


def test_an_urgent_referral_checks_the_provider_and_the_childs_age(app, world):
    case_id = new_case(app, category="worst_form", now=T0)
    aged(app, case_id, 11)
    with session_scope(app) as s:
        olga = who(s, "olga")
        with pytest.raises(Problem) as e:  # the school does not shelter children
            refer(s, olga, case_id, service_code="emergency_protection", provider_code="SCH-GN",
                  override_reason="In danger tonight.", now=T0)  # fmt: skip
        assert "does not offer this service" in str(problem_fields(e)["provider"])
        # an urgent service an administrator kept for the under-sixes
        s.scalar(select(ServiceType).where(ServiceType.code == "emergency_protection")).max_age = 5
        s.flush()
        with pytest.raises(Problem) as e:
            refer(s, olga, case_id, service_code="emergency_protection", provider_code="SOC-NAWA",
                  override_reason="In danger tonight.", now=T0)  # fmt: skip
        assert str(problem_fields(e)["service"]) == "is for children aged 0 to 5; this child is 11"


# --- the pages -----------------------------------------------------------------------------------


def test_the_plan_form_offers_the_childs_services_then_their_providers(client, app, world):
    case_id = new_case(app, now=T0)
    to_plan(app, case_id, now=T0)
    aged(app, case_id, 11)
    login(client, "olga")
    html = client.get(f"/cases/{case_id}/plan").get_data(as_text=True)
    services = options(html, "f-service")
    assert "school_enrolment" in services and "vocational_training" not in services
    assert "Not offered for a child of 11: Vocational training" in html
    assert 'id="f-provider"' not in html  # the providers come once the service is chosen
    assert "data-autosubmit" in html and "Show the providers of this service" in html

    html = client.get(f"/cases/{case_id}/plan?service=school_enrolment").get_data(as_text=True)
    assert options(html, "f-provider") == ["SCH-GN"]  # not the social centre
    assert '<input type="hidden" name="service" value="school_enrolment">' in html
    html = client.get(f"/cases/{case_id}/plan?service=birth_certificate").get_data(as_text=True)
    assert options(html, "f-provider") == ["SOC-NAWA"]

    # a forged POST is refused all the same, naming the field
    r = client.post(f"/cases/{case_id}/plan", data={
        "service": "vocational_training", "provider": "SOC-NAWA",
        "due_on": (dt.date.today() + dt.timedelta(days=9)).isoformat()})  # fmt: skip
    page = r.get_data(as_text=True)
    assert r.status_code == 400 and "is for children aged 15 to 17; this child is 11" in page
    r = client.post(f"/cases/{case_id}/plan", data={
        "service": "school_enrolment", "provider": "SOC-NAWA",
        "due_on": (dt.date.today() + dt.timedelta(days=9)).isoformat()})  # fmt: skip
    assert r.status_code == 400 and "does not offer this service" in r.get_data(as_text=True)
    assert options(r.get_data(as_text=True), "f-provider") == ["SCH-GN"]  # still the service's


def test_the_urgent_referral_form_offers_the_providers_of_the_service(client, app, world):
    case_id = new_case(app, category="worst_form", now=T0)
    login(client, "olga")
    html = client.get(f"/cases/{case_id}/refer").get_data(as_text=True)
    urgent = {"health_care", "emergency_protection", "law_enforcement_referral"}
    assert set(options(html, "f-service")) == urgent  # the urgent ones only
    assert 'id="f-provider"' not in html
    html = client.get(f"/cases/{case_id}/refer?service=emergency_protection").get_data(as_text=True)
    assert options(html, "f-provider") == ["SOC-NAWA"]
    html = client.get(f"/cases/{case_id}/refer?service=law_enforcement_referral").get_data(
        as_text=True
    )
    assert "No provider serving this area delivers this service" in html
    assert 'id="f-provider"' not in html
    r = client.post(f"/cases/{case_id}/refer", data={
        "service": "emergency_protection", "provider": "SCH-GN",
        "override_reason": "In danger tonight."})  # fmt: skip
    assert r.status_code == 400 and "does not offer this service" in r.get_data(as_text=True)


def test_the_forms_in_french(client, app, world):
    case_id = new_case(app, now=T0)
    to_plan(app, case_id, now=T0)
    aged(app, case_id, 11)
    login(client, "olga")
    client.post("/language", data={"locale": "fr"})
    html = client.get(f"/cases/{case_id}/plan").get_data(as_text=True)
    assert "Non proposé pour un enfant de 11 ans : Formation professionnelle" in html
    assert "Afficher les prestataires de ce service" in html
