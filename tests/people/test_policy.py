"""Every route, every identity, against the declared policy (clms/policy.py).

The world: a case in village V1 (CI-D1) with its alert, child, consent, planned service and a
referral to SCH-GN, a household submission from V1, brand A buying from T1-EXP -> T2-COOP, brand
B buying from another exporter. Each identity signs in the way its surface expects: a session
cookie (web pages), a bearer token (the API), HTTP Digest or a device token (OpenRosa). Each
route is asked with each of its methods; forms are sent empty (a page may refuse their content,
never the person). A route missing from the table fails; a 5xx anywhere fails.
"""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from clms.auth import issue_token
from clms.cases.referrals import record_consent, refer
from clms.db import session_scope
from clms.models import Brand, BrandSupplier, Case, Supplier, SupplierLink, User
from clms.policy import FORBIDDEN, HIDDEN, IDENTITIES, LOGIN, OK, POLICY, outcome
from tests.cases.test_cases import T0, implementing, who
from tests.cases.test_cases import world as cases_world
from tests.conftest import PASSWORD
from tests.openrosa_client import Phone

world = cases_world

USERS = {
    "monitor": "mo",
    "officer": "olga",
    "officer_other_area": "otto",
    "supervisor": "sam",
    "provider": "pat",
    "provider_other": "paul",
    "brand": "bea",
    "brand_other": "bob",
    "admin": "ada",
}
#: the value of a ``code`` parameter, by endpoint
CODES = {
    "web.profile_detail": "CIV",
    "web.profile_update": "CIV",
    "web.provider_edit": "SCH-GN",
    "web.service_edit": "school_kit_costs",
    "web.supply_supplier_edit": "T2-COOP",
    "web.supply_village_attach": "T2-COOP",
    "web.supply_village_detach": "T2-COOP",
}


@pytest.fixture
def everything(app, world, phone, version, make_user):
    """The world of the module documentation: the ids its routes need, and each identity's
    API and device tokens."""
    from tests.submissions import child, household_xml

    with session_scope(app) as s:
        s.add(Brand(code="BRAND-B", name="Brand B"))
        s.add(Supplier(code="T1-B", name="Other Exporter", tier=1))
        s.flush()
        ids = dict(s.execute(select(Supplier.code, Supplier.id)).all())
        brands = dict(s.execute(select(Brand.code, Brand.id)).all())
        s.add_all(
            [
                BrandSupplier(brand_id=brands["BRAND-A"], supplier_id=ids["T1-EXP"]),
                BrandSupplier(brand_id=brands["BRAND-B"], supplier_id=ids["T1-B"]),
                SupplierLink(buyer_id=ids["T1-EXP"], seller_id=ids["T2-COOP"]),
            ]
        )
    make_user("bob", "brand", brand="BRAND-B")
    xml = household_xml(version, children=[child(child_name="Akissi Policy")])
    assert phone.submit(xml).status_code == 201
    case_id, planned_id = implementing(app)
    with app.app_context(), session_scope(app) as s:
        olga = who(s, "olga")
        consent = record_consent(
            s, olga, case_id, provider_code="SCH-GN", given_by="guardian", method="verbal",
            shares=["first_name", "age"], now=T0,
        )  # fmt: skip
        referral = refer(s, olga, case_id, planned_service_id=planned_id, now=T0)
        case = s.get(Case, case_id)
        from clms.models import Child, Submission

        values = {
            "case_id": case_id,
            "planned_id": planned_id,
            "consent_id": consent.id,
            "referral_id": referral.id,
            "alert_id": case.alert_id,
            "child_uid": s.get(Child, case.child_id).child_uid,
            "submission_id": s.scalar(select(Submission.id).limit(1)),
            "xml_form_id": "clms_followup",
            "filename": "cases.csv",
            "dataset": "cases",
            "fmt": "csv",
        }
        values["child_id"] = values["child_uid"]
        from clms.models import Notice

        # the referral told the provider's people: pat's notice, nobody else's
        values["notice_id"] = s.scalar(
            select(Notice.id).where(Notice.user_id == who(s, "pat").id).limit(1)
        )
        from forms.pull.sources import add_source

        source = add_source(
            s, "Central (unreachable)", "central", "http://127.0.0.1:9", "clms_household_visit",
            {"email": "x@example.org", "password": "not used here"}, project_id="1",
            key=app.config["CREDENTIALS_KEY"],
        )  # fmt: skip
        values["source_id"] = source.id
        from clms.models import CaseWithdrawal, utcnow

        # a submission behind the case, withdrawn by its server: the flag the officer acknowledges
        flag = CaseWithdrawal(
            case_id=case_id, submission_id=values["submission_id"], reason="deleted",
            server="ODK Central (central)", withdrawn_at=utcnow(), flagged_at=utcnow(),
        )  # fmt: skip
        s.add(flag)
        s.flush()
        values["flag_id"] = flag.id
        tokens = {}
        for identity, username in USERS.items():
            user = s.scalar(select(User).where(User.username == username))
            api, _row = issue_token(s, user, "api", hours=1)
            device, row = issue_token(s, user, "device", hours=1)
            tokens[identity] = (api, device)
            if identity == "monitor":  # the person the users pages act on
                values["user_id"], values["token_id"] = user.id, row.id
    return values, tokens


def _url(app, rule, endpoint: str, values: dict, device: str, identity: str) -> str:
    args = {}
    for name in rule.arguments:
        if name == "username":  # KoboCollect's address: each identity's own name
            args[name] = USERS.get(identity, "mo")
        elif name == "code":
            args[name] = CODES[endpoint]
        elif name == "device_token":
            args[name] = device
        elif endpoint == "static" and name == "filename":
            args[name] = "clms.css"
        else:
            args[name] = values[name]
    with app.test_request_context():
        from flask import url_for

        return url_for(endpoint, **args)


def _outcome(surface: str, response) -> str:
    status = response.status_code
    if status >= 500:
        return f"error {status}"
    if status == 401:
        return LOGIN
    if (
        surface == "web"
        and status in (301, 302, 303)
        and "/login" in response.headers.get("Location", "")
    ):
        return LOGIN
    if status == 403:
        return FORBIDDEN
    if status == 404:
        return HIDDEN
    return OK


def test_every_route_is_declared(app):
    routes = {rule.endpoint for rule in app.url_map.iter_rules()}
    assert sorted(routes - POLICY.keys()) == [], "declare these routes in clms/policy.py"
    assert sorted(POLICY.keys() - routes) == [], "these declared routes no longer exist"


@pytest.mark.slow
def test_every_route_answers_every_identity_as_declared(app, everything, monkeypatch):
    values, tokens = everything
    # one address signs in a few dozen times here (tests/people/test_authn.py tests the rate limit)
    app.config["LOGIN_RATE_PER_MINUTE"] = 10_000
    monkeypatch.setattr(
        "forms.pull.clients.BACKOFF", 0.0
    )  # the unreachable source is retried at once
    clients = {}

    def web_client(identity):
        if identity not in clients:
            client = app.test_client()
            if identity != "anonymous":
                r = client.post("/login", data={"username": USERS[identity], "password": PASSWORD})
                assert r.status_code == 302, (identity, r.status_code)
            clients[identity] = client
        return clients[identity]

    wrong = []
    rules = sorted(app.url_map.iter_rules(), key=lambda r: (r.endpoint == "web.logout", r.rule))
    for rule in rules:
        endpoint = rule.endpoint
        surface = (
            "openrosa"
            if endpoint.startswith("openrosa")
            else "api"
            if endpoint.startswith("api.")
            else "web"
        )
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}) or ["HEAD"]:
            for identity in IDENTITIES:
                expected = outcome(endpoint, method, identity)
                api, device = tokens.get(identity, ("not-a-token", "not-a-token"))
                url = _url(app, rule, endpoint, values, device, identity)
                if surface == "web":
                    data = {}
                    if endpoint == "web.login":  # wrong credentials, one name each (no lock)
                        data = {"username": f"nobody-{identity}", "password": "wrong password"}
                    response = web_client(identity).open(url, method=method, data=data)
                elif surface == "api":
                    if endpoint == "api.end_session" and identity != "anonymous":
                        with session_scope(app) as s:  # it revokes the token it is given
                            user = s.scalar(select(User).where(User.username == USERS[identity]))
                            api, _row = issue_token(s, user, "api", hours=1)
                    headers = {} if identity == "anonymous" else {"Authorization": f"Bearer {api}"}
                    body = {} if method != "GET" else None
                    response = app.test_client().open(
                        url, method=method, headers=headers, json=body
                    )
                elif endpoint.startswith("openrosa_key") or identity == "anonymous":
                    response = app.test_client().open(
                        url, method=method, headers={"X-OpenRosa-Version": "1.0"}
                    )
                else:
                    phone = Phone(app.test_client(), USERS[identity], PASSWORD)
                    response = phone.request(method, url)
                got = _outcome(surface, response)
                if got != expected:
                    wrong.append(f"{method} {url} as {identity}: {got}, declared {expected}")
                response.close()
                if endpoint == "web.logout" and identity in clients:
                    del clients[identity]
    assert not wrong, "\n".join(wrong)


def test_a_brand_never_gets_child_level_pages(app, everything):
    """The brand's pages are its map and its figures: every other page is refused outright."""
    brand_ok = sorted(e for e, outcomes in POLICY.items() if outcomes["brand"] == OK)
    assert brand_ok == sorted(
        [
            "api.create_session", "api.end_session", "api.hotspots_get", "api.me", "static",
            "web.health", "web.home", "web.hotspots_export", "web.login", "web.map_export",
            "web.map_frame", "web.map_index", "web.map_layer", "web.own_language",
            "web.own_password", "web.own_profile", "web.set_language",
        ]
    )  # fmt: skip
    assert all(not re.search(r"child|case|alert|submission|referral", e) for e in brand_ok)
