"""The operations under the users pages and the profile page (clms.auth.accounts), the fields
that a refusal names (the pages show it there), and the last sign-in."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from clms.auth import issue_token
from clms.auth.accounts import (
    change_own_password,
    change_scope,
    generate_password,
    list_users,
    set_language,
    user_facts,
)
from clms.auth.passwords import password_problems
from clms.auth.users import UserError, add_user, change_role, issue_device_token
from clms.db import session_scope
from clms.models import ApiToken, AuditEvent, User, utcnow
from tests.conftest import PASSWORD

NEW = "a river of green mangoes"


def who(s, username) -> User:
    return s.scalar(select(User).where(User.username == username))


def actions(s, action):
    rows = s.scalars(select(AuditEvent).where(AuditEvent.action == action)).all()
    return [(r.actor, r.target, r.reason, json.loads(r.details)) for r in rows]


@pytest.mark.parametrize("username", ["", "awa", "sable", "lapin", "soleil-1"])
def test_a_generated_password_always_passes_the_policy(username):
    for _ in range(200):
        password = generate_password(username)
        assert password_problems(password, username) == []
        assert len(password) >= 20


def test_generated_passwords_differ():
    assert len({generate_password() for _ in range(50)}) == 50


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"username": "a/b", "role": "admin"}, "username"),
        ({"username": "ada", "role": "admin"}, "username"),
        ({"username": "x", "role": "chief"}, "role"),
        ({"username": "x", "role": "monitor", "scope_codes": ["NOPE"]}, "areas"),
        ({"username": "x", "role": "monitor"}, "areas"),
        ({"username": "x", "role": "admin", "scope_codes": ["CI-D1"]}, "areas"),
        ({"username": "x", "role": "brand"}, "brand"),
        ({"username": "x", "role": "brand", "brand_code": "NOPE"}, "brand"),
        ({"username": "x", "role": "admin", "brand_code": "BRAND-A"}, "brand"),
        ({"username": "x", "role": "provider", "provider_code": "NOPE"}, "provider"),
        ({"username": "x", "role": "admin", "password": "x"}, "password"),
        ({"username": "x", "role": "admin", "locale": "de"}, "locale"),
    ],
)
def test_each_refusal_names_its_field(app, places, make_user, kwargs, field):
    make_user("ada", "admin")
    with session_scope(app) as s:
        with pytest.raises(UserError) as refused:
            add_user(s, **{"password": PASSWORD, "realm": "CLMS", **kwargs})
        assert refused.value.field == field and refused.value.status == 400
        s.rollback()


def test_change_scope_follows_the_role(app, places, make_user):
    make_user("ada", "admin")
    make_user("awa", "monitor", areas=["CI-D1"])
    make_user("bea", "brand", brand="BRAND-A")
    with session_scope(app) as s:
        from clms.models import Brand

        s.add(Brand(code="BRAND-B", name="Brand B"))
        ada = who(s, "ada")
        change_scope(s, "awa", reason="moved", actor=ada, scope_codes=["V3"])
        change_scope(s, "bea", reason="contract", actor=ada, brand_code="BRAND-B")
        with pytest.raises(UserError) as admin_scope:
            change_scope(s, "ada", reason="x", actor=ada, scope_codes=["V1"])
        assert admin_scope.value.field == "areas"
        with pytest.raises(UserError) as no_reason:
            change_scope(s, "awa", reason=" ", actor=ada, scope_codes=["V1"])
        assert no_reason.value.field == "reason"
        [areas] = actions(s, "user.areas")
        assert areas[:3] == ("ada", "user:awa", "moved") and areas[3]["after"]["areas"] == ["V3"]
        [role] = actions(s, "user.role")
        assert role[3]["before"]["brand"] == "BRAND-A" and role[3]["after"]["brand"] == "BRAND-B"
        assert role[3]["after"]["role"] == "brand"


def test_changing_ones_own_password(app, places, make_user):
    make_user("kone", "officer", areas=["CI-D1"])
    with session_scope(app) as s:
        kone = who(s, "kone")
        issue_token(s, kone, "api", hours=1)
        issue_device_token(s, "kone", actor="cli")
        epoch = kone.session_epoch
        for current, new, field in [
            ("wrong password", NEW, "current"),
            ("", NEW, "current"),
            (PASSWORD, PASSWORD, "password"),
            (PASSWORD, "kone123456", "password"),
        ]:
            with pytest.raises(UserError) as refused:
                change_own_password(s, kone, current, new, realm="CLMS")
            assert refused.value.field == field
        assert actions(s, "user.password") == []
        change_own_password(s, kone, PASSWORD, NEW, realm="CLMS")
        assert kone.session_epoch == epoch + 1  # every session ends; the page keeps its own
        states = {t.kind: t.revoked_at is not None for t in s.scalars(select(ApiToken))}
        assert states == {"api": True, "device": False}  # the phone keeps working
        [entry] = actions(s, "user.password")
        assert entry[0] == "kone" and entry[3]["api_tokens_revoked"] == 1


def test_set_language(app, places, make_user):
    make_user("kone", "officer", areas=["CI-D1"])
    with session_scope(app) as s:
        kone = who(s, "kone")
        set_language(s, kone, "fr", actor=kone)
        assert kone.locale == "fr"
        with pytest.raises(UserError):
            set_language(s, kone, "de", actor=kone)
        [entry] = actions(s, "user.language")
        assert entry[3] == {"before": None, "after": "fr"}


def test_the_list_and_the_facts(app, places, make_user):
    make_user("ada", "admin")
    make_user("awa", "monitor", areas=["CI-D1", "V3"])
    make_user("pat", "provider")
    with session_scope(app) as s:
        change_role(s, "pat", "provider", reason="x", actor="cli", provider_code="TEST-PROVIDER")
        page = list_users(s, role="monitor")
        assert [line.user.username for line in page.rows] == ["awa"]
        assert page.rows[0].scope == ["CI-D1", "V3"] and page.rows[0].state == "active"
        assert list_users(s, search="PA").rows[0].scope == ["TEST-PROVIDER"]
        assert list_users(s, state="locked").total == 0
        facts = user_facts(s, who(s, "awa"))
        assert facts.tokens == [] and facts.last_submission is None


def test_signing_in_on_the_web_and_the_api_is_remembered(app, client, places, make_user):
    make_user("kone", "officer", areas=["CI-D1"])
    make_user("ada", "admin")
    before = utcnow()
    assert client.post("/login", data={"username": "kone", "password": PASSWORD}).status_code == 302
    api = app.test_client().post("/api/v1/sessions", json={"username": "ada", "password": PASSWORD})
    assert api.status_code == 201
    failed = app.test_client().post("/login", data={"username": "awa", "password": "nope"})
    assert failed.status_code != 302
    with session_scope(app) as s:
        assert who(s, "kone").last_sign_in_at >= before
        assert who(s, "ada").last_sign_in_at >= before
