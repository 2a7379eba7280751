"""The operations under the users pages and the profile page (clms.auth.accounts), the fields
that a refusal names (the pages show it there), and the last sign-in."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from clms.auth import issue_token
from clms.auth.accounts import (
    change_own_password,
    change_scope,
    generate_password,
    list_users,
    set_language,
    set_up_own_phone,
    user_facts,
)
from clms.auth.limits import Limits
from clms.auth.passwords import password_problems
from clms.auth.users import (
    MAX_OWN_DEVICE_TOKENS,
    UserError,
    activate_user,
    add_user,
    change_areas,
    change_password,
    change_role,
    deactivate_user,
    issue_device_token,
    revoke_user_tokens,
    unlock_user,
)
from clms.db import session_scope
from clms.models import ApiToken, AuditEvent, LoginThrottle, User, UserScope, utcnow
from tests.conftest import PASSWORD

NEW = "a river of green mangoes"
#: where a person's own change comes from, and the sign-in limits it counts in
OWN = {"realm": "CLMS", "address": "10.0.0.1", "limits": Limits()}


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
        ({"username": "xena", "role": "chief"}, "role"),
        ({"username": "xena", "role": "monitor", "scope_codes": ["NOPE"]}, "areas"),
        ({"username": "xena", "role": "monitor"}, "areas"),
        ({"username": "xena", "role": "admin", "scope_codes": ["CI-D1"]}, "areas"),
        ({"username": "xena", "role": "brand"}, "brand"),
        ({"username": "xena", "role": "brand", "brand_code": "NOPE"}, "brand"),
        ({"username": "xena", "role": "admin", "brand_code": "BRAND-A"}, "brand"),
        ({"username": "xena", "role": "provider", "provider_code": "NOPE"}, "provider"),
        ({"username": "xena", "role": "admin", "password": "x"}, "password"),
        ({"username": "xena", "role": "admin", "locale": "de"}, "locale"),
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
                change_own_password(s, kone, current, new, **OWN)
            assert refused.value.field == field
        assert actions(s, "user.password") == []
        change_own_password(s, kone, PASSWORD, NEW, **OWN)
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


# --- what a username, a name, an e-mail address and a reason may be ------------------------------


@pytest.mark.parametrize(
    "username",
    [
        "ADMIN",
        "Admin",
        "admin\u200b",
        "\u0430dmin",  # a Cyrillic a
        "rv\nfake",
        "rv\u202efake",
        "a" * 81,
        "a" * 300,
        "a",
        ".admin",
        "-admin",
        "_admin",
        "ad min",
        "ad:min",
        "ad/min",
        "adé",
        "",
    ],
)
def test_a_username_is_plain_lowercase_ascii(app, places, make_user, username):
    make_user("admin", "admin")
    with session_scope(app) as s:
        with pytest.raises(UserError) as refused:
            add_user(s, username=username, role="admin", password=PASSWORD, realm="CLMS")
        assert refused.value.field == "username"
        assert "must be 2 to 80 characters" in str(refused.value)
        s.rollback()
        assert s.scalars(select(User.username)).all() == ["admin"]


@pytest.mark.parametrize("username", ["kone.awa", "m_d2_v1", "officer-nawa", "a1", "7up", "a" * 80])
def test_usernames_that_are_fine(app, places, username):
    with session_scope(app) as s:
        assert add_user(s, username=username, role="admin", password=PASSWORD, realm="CLMS")


def test_a_username_is_unique_whatever_its_case(app, places, make_user):
    """Names made before the rule (upper case) still block their lower-case twin."""
    make_user("admin", "admin")
    with session_scope(app) as s:
        s.add(User(username="Olga", role="admin", password_hash="x"))
        s.flush()
        for name in ("admin", "olga"):
            with pytest.raises(UserError) as refused:
                add_user(s, username=name, role="admin", password=PASSWORD, realm="CLMS")
            assert refused.value.field == "username" and "already a user" in str(refused.value)


@pytest.mark.parametrize(
    "kwargs, field, words",
    [
        ({"email": "victim@example.org\r\nBcc: attacker@example.net"}, "email", "not an e-mail"),
        ({"email": "not an email"}, "email", "not an e-mail"),
        ({"email": "two@at@example.org"}, "email", "not an e-mail"),
        ({"email": "nobody@localhost"}, "email", "not an e-mail"),
        ({"email": "x" * 190 + "@example.org"}, "email", "not an e-mail"),
        ({"full_name": "A" * 201}, "full_name", "too long (201 characters; at most 200)"),
        ({"full_name": "Awa\nKone"}, "full_name", "control characters"),
        ({"full_name": "Awa \u202eKone"}, "full_name", "control characters"),
    ],
)
def test_names_and_email_addresses_are_checked(app, places, kwargs, field, words):
    with session_scope(app) as s:
        with pytest.raises(UserError) as refused:
            add_user(s, username="awa", role="admin", password=PASSWORD, realm="CLMS", **kwargs)
        assert refused.value.field == field and words in str(refused.value)
        s.rollback()
        assert s.scalars(select(User)).all() == []


def test_a_plausible_email_and_a_name_with_accents_are_kept(app, places):
    with session_scope(app) as s:
        user = add_user(
            s, username="awa", role="admin", password=PASSWORD, realm="CLMS",
            full_name=" Awa Koné-N'Guessan ", email=" awa.kone+clms@example.org ",
        )  # fmt: skip
        assert (user.full_name, user.email) == ("Awa Koné-N'Guessan", "awa.kone+clms@example.org")


def test_the_same_area_twice_is_one_scope(app, places, make_user):
    make_user("ada", "admin")
    with session_scope(app) as s:
        awa = add_user(
            s, username="awa", role="monitor", password=PASSWORD, realm="CLMS",
            scope_codes=["CI-D1", "CI-D1", "V3", "V3"],
        )  # fmt: skip
        assert len(awa.scopes) == 2
        change_areas(s, "awa", ["V1", "V1"], reason="moved", actor="cli")
        assert len(awa.scopes) == 1
        change_role(s, "awa", "officer", reason="promoted", actor="cli", scope_codes=["V4", "V4"])
        assert len(awa.scopes) == 1
        assert s.scalar(select(func.count()).select_from(UserScope)) == 1


BLANK = " \u200b\t\u200c\n\u200d\ufeff "


def test_a_reason_must_say_something_and_not_too_much(app, places, make_user):
    make_user("ada", "admin")
    make_user("awa", "monitor", areas=["CI-D1"])
    changes = [
        lambda reason: change_role(
            s, "awa", "officer", reason=reason, actor="cli", scope_codes=["CI-D1"]
        ),  # fmt: skip
        lambda reason: change_areas(s, "awa", ["V1"], reason=reason, actor="cli"),
        lambda reason: deactivate_user(s, "awa", reason=reason, actor="cli"),
    ]
    with session_scope(app) as s:
        for change in changes:
            for reason in ("", BLANK, "x" * 2001, "x" * 100_000):
                with pytest.raises(UserError) as refused:
                    change(reason)
                assert refused.value.field == "reason"
        for optional in (
            lambda reason: unlock_user(s, "awa", actor="cli", reason=reason),
            lambda reason: revoke_user_tokens(s, "awa", actor="cli", reason=reason),
            lambda reason: change_password(
                s, "awa", NEW, realm="CLMS", actor="cli", reason=reason
            ),  # fmt: skip
        ):
            with pytest.raises(UserError) as refused:
                optional("x" * 2001)
            assert refused.value.field == "reason" and "at most 2000" in str(refused.value)
        assert s.scalars(select(AuditEvent.action).where(AuditEvent.actor == "cli")).all() == []
        change_areas(s, "awa", ["V1"], reason=f"{BLANK}moved to V1{BLANK}", actor="cli")
        change_password(s, "awa", NEW, realm="CLMS", actor="cli", reason=BLANK)
        assert [r for _a, _t, r, _d in actions(s, "user.areas")] == ["moved to V1"]
        assert [r or "" for _a, _t, r, _d in actions(s, "user.password")] == [""]
        change_areas(s, "awa", ["V3"], reason="y" * 2000, actor="cli")  # the most is allowed


# --- administrators ------------------------------------------------------------------------------


def test_an_admin_changes_neither_their_own_role_nor_deactivates_themselves(app, places, make_user):
    make_user("ada", "admin")
    make_user("adam", "admin")
    with session_scope(app) as s:
        ada = who(s, "ada")
        with pytest.raises(UserError) as refused:
            change_role(s, "ada", "officer", reason="r", actor=ada, scope_codes=["CI-D1"])
        assert refused.value.field == "role" and "your own role" in str(refused.value)
        with pytest.raises(UserError) as refused:
            deactivate_user(s, "ada", reason="r", actor=ada)
        assert refused.value.field == "state" and "deactivate yourself" in str(refused.value)
        assert (ada.role, ada.active) == ("admin", True)
        # another administrator may
        change_role(s, "ada", "officer", reason="moved", actor=who(s, "adam"),
                    scope_codes=["CI-D1"])  # fmt: skip
        assert ada.role == "officer"


def test_the_last_active_admin_stays(app, places, make_user):
    make_user("ada", "admin")
    make_user("adam", "admin")
    with session_scope(app) as s:
        deactivate_user(s, "adam", reason="left", actor="cli")
        for change, field in [
            (
                lambda: change_role(
                    s, "ada", "brand", reason="r", actor="cli", brand_code="BRAND-A"
                ),
                "role",
            ),  # fmt: skip
            (lambda: deactivate_user(s, "ada", reason="r", actor="cli"), "state"),
        ]:
            with pytest.raises(UserError) as refused:
                change()
            assert refused.value.field == field
            assert "last active administrator" in str(refused.value)
        assert (who(s, "ada").role, who(s, "ada").active) == ("admin", True)
        # with another active administrator, the change is made
        activate_user(s, "adam", reason="back", actor="cli")
        deactivate_user(s, "ada", reason="left", actor="cli")
        assert who(s, "ada").active is False


# --- the current password: throttled as a sign-in ------------------------------------------------


def test_a_wrong_current_password_counts_as_a_failed_sign_in(app, places, make_user):
    make_user("kone", "officer", areas=["CI-D1"])
    with session_scope(app) as s:
        kone = who(s, "kone")
        for _ in range(4):
            with pytest.raises(UserError) as refused:
                change_own_password(s, kone, "a wrong guess", NEW, **OWN)
            assert "current password is not right" in str(refused.value)
        fifth = pytest.raises(UserError, change_own_password, s, kone, "a wrong guess", NEW, **OWN)
        assert fifth.value.field == "current" and "locked for 15 more minute" in str(fifth.value)
        # locked: the right password is refused too, as at sign-in
        right = pytest.raises(UserError, change_own_password, s, kone, PASSWORD, NEW, **OWN)
        assert right.value.field == "current" and "locked" in str(right.value)
        row = s.scalar(select(LoginThrottle).where(LoginThrottle.key == "kone"))
        assert row.count == 5 and row.locked_until > utcnow()
        failed = actions(s, "auth.login_failed")
        assert len(failed) == 6 and {d["surface"] for *_, d in failed} == {"profile"}
        assert len(actions(s, "auth.locked")) == 1
        assert actions(s, "user.password") == []
        unlock_user(s, "kone", actor="cli")
        change_own_password(s, kone, PASSWORD, NEW, **OWN)
        assert len(actions(s, "user.password")) == 1


def test_a_right_current_password_clears_the_failures(app, places, make_user):
    make_user("kone", "officer", areas=["CI-D1"])
    with session_scope(app) as s:
        kone = who(s, "kone")
        for _ in range(3):
            pytest.raises(UserError, change_own_password, s, kone, "a wrong guess", NEW, **OWN)
        change_own_password(s, kone, PASSWORD, NEW, **OWN)
        assert s.scalar(select(LoginThrottle).where(LoginThrottle.scope == "user")) is None


def test_a_monitor_sets_up_at_most_a_few_phones_with_their_password(app, places, make_user):
    make_user("awa", "monitor", areas=["CI-D1"])
    phone = {"address": "10.0.0.1", "limits": Limits(), "label": "Tecno", "days": 30}
    with session_scope(app) as s:
        awa = who(s, "awa")
        wrong = pytest.raises(UserError, set_up_own_phone, s, awa, "not it", **phone)
        assert wrong.value.field == "current"
        assert [d["surface"] for *_, d in actions(s, "auth.login_failed")] == ["phone"]
        for _ in range(MAX_OWN_DEVICE_TOKENS):
            set_up_own_phone(s, awa, PASSWORD, **phone)
        too_many = pytest.raises(UserError, set_up_own_phone, s, awa, PASSWORD, **phone)
        assert too_many.value.field == "token"
        assert "ask an administrator to revoke" in str(too_many.value)
        assert len(actions(s, "user.token_issued")) == MAX_OWN_DEVICE_TOKENS
        # a revoked or expired token leaves room for a new phone
        first = s.scalar(select(ApiToken).order_by(ApiToken.id))
        first.revoked_at = utcnow()
        s.flush()
        set_up_own_phone(s, awa, PASSWORD, **phone)
        # an administrator is not held to the number
        issue_device_token(s, "awa", actor="cli")


def test_a_password_reset_may_also_revoke_the_phones(app, places, make_user):
    make_user("awa", "monitor", areas=["CI-D1"])
    with session_scope(app) as s:
        issue_device_token(s, "awa", actor="cli")
        change_password(s, "awa", NEW, realm="CLMS", actor="cli", reason="forgotten")
        assert s.scalar(select(ApiToken.revoked_at)) is None  # phones keep working by default
        change_password(s, "awa", NEW + "!", realm="CLMS", actor="cli", reason="phone stolen",
                        revoke_devices=True)  # fmt: skip
        assert s.scalar(select(ApiToken.revoked_at)) is not None
        details = [d for *_, d in actions(s, "user.password")]
        assert "device_tokens_revoked" not in details[0]
        assert details[1]["device_tokens_revoked"] == 1
