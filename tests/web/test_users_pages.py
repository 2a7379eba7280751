"""The users pages (admins only) and the profile page (everyone signed in): each action on a
person, what it writes in the audit log (the same entries as the command line), the secrets shown
once, the errors shown on the form with what was typed kept, and who may open what."""

from __future__ import annotations

import json
import re
from html import unescape
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select

from clms.db import session_scope
from clms.locale import day
from clms.models import ROLES, ApiToken, AuditEvent, LoginThrottle, User, utcnow
from tests.builders import submission
from tests.conftest import PASSWORD

NEW = "a river of green mangoes"


def login(client, username, password=PASSWORD):
    answer = client.post("/login", data={"username": username, "password": password})
    assert answer.status_code == 302, answer.data[:400]
    return answer


@pytest.fixture
def admin(client, places, make_user):
    make_user("ada", "admin")
    make_user("awa", "monitor", areas=["CI-D1"])
    login(client, "ada")
    return client


def user_id(app, username) -> int:
    with session_scope(app) as s:
        return s.scalar(select(User.id).where(User.username == username))


def audit(app, action, target=None) -> list[SimpleNamespace]:
    """The audit entries of ``action``, oldest first (actor, target, reason, details)."""
    with session_scope(app) as s:
        rows = s.scalars(
            select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.seq)
        ).all()
        return [
            SimpleNamespace(
                actor_name=r.actor, target=r.target, reason=r.reason, details=json.loads(r.details)
            )
            for r in rows
            if target is None or r.target == target
        ]


def errors_of(answer) -> str:
    """The error messages of a page: next to the fields, and in the summary at the top."""
    page = answer.get_data(as_text=True)
    found = re.findall(r'class="field-error"[^>]*>(.*?)</p>', page)
    found += re.findall(r'<li><a href="#f-[\w-]+">(.*?)</a></li>', page)
    return unescape(" ".join(found))


# --- who may open the pages ----------------------------------------------------------------------


ADMIN_ONLY = [
    ("get", "/users"),
    ("get", "/users/new"),
    ("post", "/users/new"),
    ("get", "/users/{id}"),
    ("post", "/users/{id}/role"),
    ("post", "/users/{id}/scope"),
    ("post", "/users/{id}/password"),
    ("post", "/users/{id}/unlock"),
    ("post", "/users/{id}/state"),
    ("post", "/users/{id}/tokens"),
    ("post", "/users/{id}/tokens/revoke"),
    ("post", "/users/{id}/tokens/1/renew"),
]


@pytest.mark.parametrize("role", [r for r in ROLES if r != "admin"])
def test_only_admins_reach_the_users_pages(app, client, places, make_user, role):
    make_user("awa", "monitor", areas=["CI-D1"])
    make_user(
        "someone",
        role,
        areas=["CI-D1"] if role in ("monitor", "officer", "supervisor") else (),
        brand="BRAND-A" if role == "brand" else None,
    )
    target = user_id(app, "awa")
    login(client, "someone")
    for method, path in ADMIN_ONLY:
        answer = getattr(client, method)(path.format(id=target), data={"role_role": "admin"})
        assert answer.status_code == 403, (role, method, path)
    with session_scope(app) as s:
        awa = s.scalar(select(User).where(User.username == "awa"))
        assert awa.role == "monitor" and awa.active
        assert s.scalar(select(ApiToken.id)) is None
    assert audit(app, "user.role") == []
    # the header offers no Users link, and the person's name leads to their own profile
    html = client.get("/profile").get_data(as_text=True)
    assert 'href="/users"' not in html and 'href="/profile"' in html


def test_signed_out_people_are_sent_to_sign_in(app, client, places, make_user):
    make_user("awa", "monitor", areas=["CI-D1"])
    for path in ("/users", "/users/new", f"/users/{user_id(app, 'awa')}", "/profile"):
        answer = client.get(path)
        assert answer.status_code in (302, 401), path
        assert "/login" in answer.headers.get("Location", "/login")


def test_an_unknown_user_is_404(admin):
    assert admin.get("/users/999999").status_code == 404
    assert admin.post("/users/999999/state", data={"state_reason": "x"}).status_code == 404


# --- the list ------------------------------------------------------------------------------------


def test_the_list_shows_role_scope_state_and_last_use(app, admin, make_user):
    make_user("kone", "officer", areas=["CI-D2", "V1"])
    make_user("brandy", "brand", brand="BRAND-A")
    make_user("gone", "monitor", areas=["V2"])
    with session_scope(app) as s:
        gone = s.scalar(select(User).where(User.username == "gone"))
        gone.active = False
        awa_id = s.scalar(select(User.id).where(User.username == "awa"))
        submission(
            s,
            submitter_id=awa_id,
            received_at=utcnow().replace(year=2026, month=11, day=30, hour=7, minute=5),
        )
        s.add(
            LoginThrottle(
                scope="user",
                key="kone",
                count=5,
                window_start=utcnow(),
                locked_until=utcnow().replace(year=2099),
                updated_at=utcnow(),
            )
        )
    html = admin.get("/users").get_data(as_text=True)
    rows = {m.group(1): m.group(0) for m in re.finditer(r"<code>(\w+)</code>.*?</tr>", html, re.S)}
    assert set(rows) == {"ada", "awa", "kone", "brandy", "gone"}
    assert "CI-D2, V1" in rows["kone"] and "locked" in rows["kone"]
    assert "BRAND-A" in rows["brandy"] and "no phone" in rows["brandy"]
    assert "inactive" in rows["gone"]
    assert "Nov 30, 2026, 07:05 UTC" in rows["awa"] and ">active<" in rows["awa"]
    # ada signed in just now: the list says when
    assert day(utcnow(), "en") in rows["ada"]

    def names(query):
        page = admin.get("/users" + query).get_data(as_text=True)
        return set(re.findall(r"<code>(\w+)</code>", page))

    assert names("?role=monitor") == {"awa", "gone"}
    assert names("?state=locked") == {"kone"}
    assert names("?state=inactive") == {"gone"}
    assert names("?state=active") == {"ada", "awa", "brandy"}
    assert names("?q=BRAN") == {"brandy"}
    assert names("?q=%25") == {"ada", "awa", "kone", "brandy", "gone"}  # a % matches nothing odd


def test_the_list_is_paged(app, admin, make_user):
    with session_scope(app) as s:
        for n in range(55):
            s.add(User(username=f"u{n:02}", role="admin", password_hash="x"))
    first = admin.get("/users").get_data(as_text=True)
    assert "Page 1" in first and "page=2" in first
    second = admin.get("/users?page=2").get_data(as_text=True)
    assert len(re.findall(r"<code>\w+</code>", second)) == 57 - 50
    assert admin.get("/users?page=99").status_code == 200  # the last page, not an error


# --- adding a user -------------------------------------------------------------------------------


def test_adding_a_monitor_with_a_generated_password_shows_it_once(app, admin):
    answer = admin.post(
        "/users/new",
        data={
            "username": "fatou",
            "full_name": "Fatou Koné",
            "email": "fatou@example.org",
            "role": "monitor",
            "locale": "fr",
            "areas": "CI-D2, V1",
            "password_mode": "generate",
        },
    )
    assert answer.status_code == 200
    assert answer.headers["Cache-Control"] == "no-store"
    password = re.search(r'<code id="secret">([^<]+)</code>', answer.get_data(as_text=True))[1]
    with session_scope(app) as s:
        fatou = s.scalar(select(User).where(User.username == "fatou"))
        assert (fatou.role, fatou.locale, fatou.full_name) == ("monitor", "fr", "Fatou Koné")
        assert password not in (fatou.password_hash or "")
    [entry] = audit(app, "user.add", "user:fatou")
    assert entry.actor_name == "ada" and entry.target == "user:fatou"
    assert entry.details["after"]["areas"] == ["CI-D2", "V1"]
    assert password not in str(entry.details)
    # the page of the user shows no password; the new person signs in with the one shown
    assert password not in admin.get(f"/users/{user_id(app, 'fatou')}").get_data(as_text=True)
    other = app.test_client()
    login(other, "fatou", password)


@pytest.mark.parametrize(
    "form, field, words",
    [
        ({"username": "awa", "role": "admin"}, "username", "There is already a user called 'awa'"),
        (
            {"username": "new1", "role": "monitor", "areas": "CI-D1 NOPE"},
            "areas",
            "Unknown area or village code 'NOPE'",
        ),
        ({"username": "new2", "role": "monitor"}, "areas", "needs at least one area or village"),
        ({"username": "new3", "role": "brand"}, "brand", "A brand user needs a brand"),
        (
            {"username": "new4", "role": "provider", "provider": "NOPE"},
            "provider",
            "Unknown provider code 'NOPE'",
        ),
        (
            {
                "username": "new5",
                "role": "admin",
                "password_mode": "typed",
                "password": "azerty123",
                "password_again": "azerty123",
            },
            "password",
            "one of the most common passwords",
        ),
        (
            {
                "username": "new6",
                "role": "admin",
                "password_mode": "typed",
                "password": NEW,
                "password_again": NEW + "x",
            },
            "password_again",
            "The two passwords differ",
        ),
        ({"username": "a b", "role": "admin"}, "username", "must be 2 to 80 characters"),
    ],
)
def test_a_refused_user_is_explained_on_the_form_with_what_was_typed(
    app, admin, form, field, words
):
    data = {"full_name": "Kept Name", "email": "kept@example.org", "locale": "en", **form}
    answer = admin.post("/users/new", data=data)
    assert answer.status_code == 400
    html = answer.get_data(as_text=True)
    assert f'id="f-{field}-error"' in html and words in errors_of(answer)
    assert 'value="Kept Name"' in html and 'value="kept@example.org"' in html
    assert "azerty123" not in html  # a typed password is never sent back
    # nothing was added by ada (awa was there before, added by the test's set-up)
    assert [e for e in audit(app, "user.add") if e.actor_name == "ada"] == []
    with session_scope(app) as s:
        assert s.scalar(select(func.count(User.id))) == 2


def test_errors_are_in_french_for_a_french_reader(app, admin):
    admin.post("/language", data={"locale": "fr", "next": "/users/new"})
    answer = admin.post("/users/new", data={"username": "x1", "role": "brand"})
    assert "Un utilisateur de marque a besoin d'une marque" in errors_of(answer)


# --- one user's actions --------------------------------------------------------------------------


def test_changing_the_role_and_the_scope_needs_a_reason_and_is_audited(app, admin):
    awa = user_id(app, "awa")
    no_reason = admin.post(f"/users/{awa}/scope", data={"scope_areas": "V3"})
    assert no_reason.status_code == 400 and 'id="f-scope_reason-error"' in no_reason.data.decode()
    assert (
        admin.post(
            f"/users/{awa}/scope", data={"scope_areas": "V3, V4", "scope_reason": "moved to Méagui"}
        ).status_code
        == 302
    )
    [areas] = audit(app, "user.areas")
    assert areas.reason == "moved to Méagui" and areas.details["before"]["areas"] == ["CI-D1"]
    assert areas.details["after"]["areas"] == ["V3", "V4"]
    answer = admin.post(
        f"/users/{awa}/role",
        data={"role_role": "officer", "role_areas": "CI-D2", "role_reason": "promoted"},
    )
    assert answer.status_code == 302
    [role] = audit(app, "user.role")
    assert (role.details["before"]["role"], role.details["after"]["role"]) == ("monitor", "officer")
    # a brand without a brand code is refused, and nothing changes
    refused = admin.post(f"/users/{awa}/role", data={"role_role": "brand", "role_reason": "x"})
    assert refused.status_code == 400 and 'id="f-role_brand-error"' in refused.data.decode()
    with session_scope(app) as s:
        assert s.get(User, awa).role == "officer"


def test_the_brand_of_a_brand_user_changes_as_a_role_change(app, admin, make_user):
    with session_scope(app) as s:
        from clms.models import Brand

        s.add(Brand(code="BRAND-B", name="Brand B"))
    make_user("brandy", "brand", brand="BRAND-A")
    target = user_id(app, "brandy")
    assert (
        admin.post(
            f"/users/{target}/scope",
            data={"scope_brand": "BRAND-B", "scope_reason": "contract moved"},
        ).status_code
        == 302
    )
    [entry] = audit(app, "user.role")
    assert (entry.details["before"]["brand"], entry.details["after"]["brand"]) == (
        "BRAND-A",
        "BRAND-B",
    )


def test_a_generated_password_reset_is_shown_once_and_ends_sessions(app, admin):
    awa = user_id(app, "awa")
    phone = app.test_client()
    login(phone, "awa")
    answer = admin.post(
        f"/users/{awa}/password", data={"password_mode": "generate", "password_reason": "forgotten"}
    )
    assert answer.status_code == 200 and answer.headers["Cache-Control"] == "no-store"
    password = re.search(r'<code id="secret">([^<]+)</code>', answer.get_data(as_text=True))[1]
    [entry] = audit(app, "user.password")
    assert entry.reason == "forgotten" and entry.actor_name == "ada"
    assert phone.get("/").status_code == 302  # awa's session ended
    login(app.test_client(), "awa", password)
    # reloading the user's page shows no password
    assert password not in admin.get(f"/users/{awa}").get_data(as_text=True)


def test_a_typed_password_reset_is_checked(app, admin):
    awa = user_id(app, "awa")
    weak = admin.post(
        f"/users/{awa}/password",
        data={
            "password_mode": "typed",
            "password_password": "awa1234567",
            "password_again": "awa1234567",
        },
    )
    assert weak.status_code == 400 and "contains the username" in errors_of(weak)
    ok = admin.post(
        f"/users/{awa}/password",
        data={"password_mode": "typed", "password_password": NEW, "password_again": NEW},
    )
    assert ok.status_code == 302
    login(app.test_client(), "awa", NEW)


def test_unlock(app, admin):
    with session_scope(app) as s:
        s.add(
            LoginThrottle(
                scope="user",
                key="awa",
                count=5,
                window_start=utcnow(),
                locked_until=utcnow().replace(year=2099),
                updated_at=utcnow(),
            )
        )
    awa = user_id(app, "awa")
    assert "Unlock now" in admin.get(f"/users/{awa}").get_data(as_text=True)
    assert admin.post(f"/users/{awa}/unlock").status_code == 302
    [entry] = audit(app, "user.unlock")
    assert entry.details["locked"] is True
    login(app.test_client(), "awa")


def test_deactivation_is_confirmed_and_reactivation_works(app, admin):
    awa = user_id(app, "awa")
    admin.post(f"/users/{awa}/tokens", data={"token_label": "Tecno"})
    unconfirmed = admin.post(f"/users/{awa}/state", data={"state_reason": "left"})
    assert unconfirmed.status_code == 400 and 'id="f-state_confirm"' in unconfirmed.data.decode()
    assert audit(app, "user.deactivate") == []
    no_reason = admin.post(f"/users/{awa}/state", data={"state_confirm": "yes"})
    assert no_reason.status_code == 400
    done = admin.post(f"/users/{awa}/state", data={"state_reason": "left", "state_confirm": "yes"})
    assert done.status_code == 302
    [entry] = audit(app, "user.deactivate")
    assert entry.reason == "left" and entry.details["tokens_revoked"] == 1
    with session_scope(app) as s:
        assert s.get(User, awa).active is False
        assert s.scalar(select(ApiToken.revoked_at)) is not None
    assert admin.post(f"/users/{awa}/state", data={"state_reason": "back"}).status_code == 302
    [back] = audit(app, "user.activate")
    assert back.reason == "back"


def test_a_device_token_comes_once_with_its_collect_qr_code(app, admin):
    awa = user_id(app, "awa")
    answer = admin.post(f"/users/{awa}/tokens", data={"token_label": "Tecno", "token_days": "30"})
    assert answer.status_code == 200 and answer.headers["Cache-Control"] == "no-store"
    html = answer.get_data(as_text=True)
    url = re.search(r"<code>(http[^<]+)</code>", html)[1]
    token = url.rsplit("/key/", 1)[1]
    assert url == f"http://localhost/key/{token}"
    assert '<svg viewBox="' in html and 'class="segno"' in html
    with session_scope(app) as s:
        row = s.scalar(select(ApiToken))
        assert row.kind == "device" and row.label == "Tecno"
        assert token not in row.token_sha256
        assert 29 <= (row.expires_at - utcnow()).days <= 30
    [entry] = audit(app, "user.token_issued")
    assert token not in str(entry.details) and entry.actor_name == "ada"
    # the page of the user lists the token, never the token itself nor its code
    page = admin.get(f"/users/{awa}").get_data(as_text=True)
    assert token not in page and "Tecno" in page and "segno" not in page
    # the token works for OpenRosa at the URL the code configures
    listed = app.test_client().get(f"/key/{token}/formList", headers={"X-OpenRosa-Version": "1.0"})
    assert listed.status_code == 200


def test_the_qr_code_uses_the_base_url_setting(app, admin):
    app.config["BASE_URL"] = "https://clms.example.org/"
    answer = admin.post(f"/users/{user_id(app, 'awa')}/tokens", data={})
    url = re.search(r"<code>(http[^<]+)</code>", answer.get_data(as_text=True))[1]
    assert url.startswith("https://clms.example.org/key/") and "//key" not in url


def test_token_refusals_renewal_and_revocation(app, admin, make_user):
    make_user("boss", "admin")
    boss = user_id(app, "boss")
    refused = admin.post(f"/users/{boss}/tokens", data={})
    assert refused.status_code == 400 and "Device tokens are for phones" in errors_of(refused)
    awa = user_id(app, "awa")
    too_long = admin.post(f"/users/{awa}/tokens", data={"token_days": "99999"})
    assert too_long.status_code == 400 and 'id="f-token_days-error"' in too_long.data.decode()
    admin.post(f"/users/{awa}/tokens", data={})
    with session_scope(app) as s:
        token_id = s.scalar(select(ApiToken.id))
    assert admin.post(f"/users/{awa}/tokens/{token_id}/renew").status_code == 302
    assert len(audit(app, "user.token_renewed")) == 1
    unconfirmed = admin.post(f"/users/{awa}/tokens/revoke", data={"revoke_kind": "device"})
    assert unconfirmed.status_code == 400 and audit(app, "user.tokens_revoked") == []
    done = admin.post(
        f"/users/{awa}/tokens/revoke",
        data={"revoke_kind": "device", "revoke_reason": "phone lost", "revoke_confirm": "yes"},
    )
    assert done.status_code == 302
    [entry] = audit(app, "user.tokens_revoked")
    assert entry.details["count"] == 1 and entry.reason == "phone lost"
    assert "revoked" in admin.get(f"/users/{awa}").get_data(as_text=True)
    renew_revoked = admin.post(f"/users/{awa}/tokens/{token_id}/renew")
    assert renew_revoked.status_code == 400 and "was revoked" in errors_of(renew_revoked)


def test_every_users_page_is_in_french(app, admin):
    admin.post("/language", data={"locale": "fr", "next": "/users"})
    awa = user_id(app, "awa")
    assert "<h1>Utilisateurs</h1>" in admin.get("/users").get_data(as_text=True)
    assert "Ajouter un utilisateur" in admin.get("/users/new").get_data(as_text=True)
    page = admin.get(f"/users/{awa}").get_data(as_text=True)
    assert "Réinitialiser le mot de passe" in page
    token = admin.post(f"/users/{awa}/tokens", data={}).get_data(as_text=True)
    assert "Ajouter un projet" in token


# --- the profile page ----------------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_everyone_changes_their_own_password_and_other_sessions_end(
    app, client, places, make_user, role
):
    make_user(
        "me",
        role,
        areas=["CI-D1"] if role in ("monitor", "officer", "supervisor") else (),
        brand="BRAND-A" if role == "brand" else None,
    )
    elsewhere = app.test_client()
    login(elsewhere, "me")
    login(client, "me")
    page = client.get("/profile")
    assert page.status_code == 200 and "<code>me</code>" in page.get_data(as_text=True)
    wrong = client.post(
        "/profile/password", data={"current": "not it", "password": NEW, "password_again": NEW}
    )
    assert wrong.status_code == 400 and "current password is not right" in errors_of(wrong)
    done = client.post(
        "/profile/password", data={"current": PASSWORD, "password": NEW, "password_again": NEW}
    )
    assert done.status_code == 302
    assert client.get("/profile").status_code == 200  # this session goes on
    assert elsewhere.get("/profile").status_code in (302, 401)  # the other one ended
    [entry] = audit(app, "user.password")
    assert entry.actor_name == "me" and entry.target == "user:me"
    login(app.test_client(), "me", NEW)


def test_a_weak_new_password_is_refused_on_the_profile(app, client, places, make_user):
    make_user("kone", "officer", areas=["CI-D1"])
    login(client, "kone")
    answer = client.post(
        "/profile/password",
        data={"current": PASSWORD, "password": "kone2024!", "password_again": "kone2024!"},
    )
    assert answer.status_code == 400 and "This password is refused" in errors_of(answer)
    assert audit(app, "user.password") == []


def test_the_language_chosen_on_the_profile_switches_the_pages(app, client, places, make_user):
    make_user("kone", "officer", areas=["CI-D1"])
    login(client, "kone")
    answer = client.post("/profile/language", data={"locale": "fr"}, follow_redirects=True)
    html = answer.get_data(as_text=True)
    assert '<html lang="fr">' in html and "Mon profil" in html
    with session_scope(app) as s:
        assert s.scalar(select(User.locale).where(User.username == "kone")) == "fr"
    [entry] = audit(app, "user.language")
    assert entry.details["after"] == "fr"
    assert client.post("/profile/language", data={"locale": "xx"}).status_code == 400
    # the next sign-in, on another browser, is in French too
    other = app.test_client()
    login(other, "kone")
    assert '<html lang="fr">' in other.get("/profile").get_data(as_text=True)


@pytest.mark.parametrize("role", ROLES)
def test_the_profile_links_notification_settings_for_those_who_get_notices(
    app, client, places, make_user, role
):
    make_user(
        "kone",
        role,
        areas=["CI-D1"] if role in ("monitor", "officer", "supervisor") else (),
        brand="BRAND-A" if role == "brand" else None,
    )
    login(client, "kone")
    html = client.get("/profile").get_data(as_text=True)
    linked = 'href="/notifications/settings"' in html
    assert 'id="h-notifications"' in html
    assert linked == (role in ("officer", "supervisor", "provider"))
    # the link leads to a page the person may open
    if linked:
        assert client.get("/notifications/settings").status_code == 200


def test_the_changes_are_in_the_audit_log_page(app, admin):
    awa = user_id(app, "awa")
    admin.post(f"/users/{awa}/scope", data={"scope_areas": "V3", "scope_reason": "moved"})
    admin.post(f"/users/{awa}/tokens", data={"token_label": "Itel"})
    page = admin.get(f"/users/{awa}").get_data(as_text=True)
    assert "/audit?target=user%3Aawa" in page or "/audit?target=user:awa" in page
    log = admin.get("/audit?target=user:awa").get_data(as_text=True)
    assert "user.areas" in log and "user.token_issued" in log and "moved" in log


def test_a_monitor_sets_up_their_own_phone_from_home_with_a_qr_code(app, client, places, make_user):
    make_user("awa", "monitor", areas=["CI-D1"])
    login(client, "awa")
    home = client.get("/").get_data(as_text=True)
    assert 'action="/profile/phone"' in home and "Scan QR code" in home
    answer = client.post("/profile/phone", data={"password": PASSWORD})
    assert answer.status_code == 200 and answer.headers["Cache-Control"] == "no-store"
    html = answer.get_data(as_text=True)
    token = re.search(r"<code>(http[^<]+)</code>", html)[1].rsplit("/key/", 1)[1]
    assert 'class="segno"' in html and 'href="/"' in html and "back to my work" in html
    [entry] = audit(app, "user.token_issued", "user:awa")
    assert entry.actor_name == "awa" and token not in str(entry.details)
    listed = app.test_client().get(f"/key/{token}/formList", headers={"X-OpenRosa-Version": "1.0"})
    assert listed.status_code == 200
    # shown once: going home again does not show it
    assert token not in client.get("/").get_data(as_text=True)


@pytest.mark.parametrize("role", [r for r in ROLES if r != "monitor"])
def test_only_a_monitor_issues_a_token_for_themselves(app, client, places, make_user, role):
    make_user(
        "someone",
        role,
        areas=["CI-D1"] if role in ("officer", "supervisor") else (),
        brand="BRAND-A" if role == "brand" else None,
    )
    login(client, "someone")
    assert client.post("/profile/phone", data={"password": PASSWORD}).status_code == 403
    assert 'action="/profile/phone"' not in client.get("/", follow_redirects=True).get_data(
        as_text=True
    )
    with session_scope(app) as s:
        assert s.scalar(select(func.count()).select_from(ApiToken)) == 0


# --- what an attacker holding a session, or a careless administrator, cannot do ------------------


def test_guessing_the_current_password_on_the_profile_locks_as_sign_in_does(
    app, client, places, make_user
):
    make_user("kone", "officer", areas=["CI-D1"])
    login(client, "kone")
    guess = {"current": "a wrong guess", "password": NEW, "password_again": NEW}
    for _ in range(4):
        wrong = client.post("/profile/password", data=guess)
        assert wrong.status_code == 400 and "current password is not right" in errors_of(wrong)
    fifth = client.post("/profile/password", data=guess)
    assert 'id="f-current-error"' in fifth.get_data(as_text=True)
    assert "locked for 15 more minute(s)" in errors_of(fifth)
    right = client.post(
        "/profile/password", data={"current": PASSWORD, "password": NEW, "password_again": NEW}
    )
    assert right.status_code == 400 and "locked" in errors_of(right)
    assert audit(app, "user.password") == []
    failed = audit(app, "auth.login_failed", "user:kone")
    assert len(failed) == 6 and {e.details["surface"] for e in failed} == {"profile"}
    assert len(audit(app, "auth.locked", "user:kone")) == 1
    # the same lock as the sign-in page's
    assert app.test_client().post(
        "/login", data={"username": "kone", "password": PASSWORD}
    ).status_code == 429  # fmt: skip
    with session_scope(app) as s:
        row = s.scalar(select(LoginThrottle).where(LoginThrottle.key == "kone"))
        assert row.count == 5 and row.locked_until > utcnow()


def test_a_phone_needs_the_password_and_a_monitor_has_only_a_few(app, client, places, make_user):
    make_user("awa", "monitor", areas=["CI-D1"])
    login(client, "awa")
    home = client.get("/").get_data(as_text=True)
    assert 'name="password" type="password"' in home and 'autocomplete="current-password"' in home
    for password in ("", "not my password"):
        refused = client.post("/profile/phone", data={"password": password}, follow_redirects=True)
        assert "current password is not right" in refused.get_data(as_text=True)
    assert [e.details["surface"] for e in audit(app, "auth.login_failed")] == ["phone", "phone"]
    for _ in range(3):
        assert client.post("/profile/phone", data={"password": PASSWORD}).status_code == 200
    fourth = client.post("/profile/phone", data={"password": PASSWORD}, follow_redirects=True)
    html = unescape(fourth.get_data(as_text=True))
    assert "already has 3 phones set up" in html and "ask an administrator to revoke" in html
    with session_scope(app) as s:
        assert s.scalar(select(func.count()).select_from(ApiToken)) == 3


def test_a_password_reset_revokes_the_phones_only_when_asked(app, admin):
    awa = user_id(app, "awa")
    admin.post(f"/users/{awa}/tokens", data={"token_label": "Tecno"})
    page = admin.get(f"/users/{awa}").get_data(as_text=True)
    assert 'name="password_revoke_devices"' in page
    assert not re.search(r'name="password_revoke_devices" value="yes"[^>]* checked', page)
    reset = {"password_mode": "generate", "password_reason": "forgotten"}
    assert admin.post(f"/users/{awa}/password", data=reset).status_code == 200
    with session_scope(app) as s:
        assert s.scalar(select(ApiToken.revoked_at)) is None
    stolen = {**reset, "password_reason": "phone stolen", "password_revoke_devices": "yes"}
    assert admin.post(f"/users/{awa}/password", data=stolen).status_code == 200
    with session_scope(app) as s:
        assert s.scalar(select(ApiToken.revoked_at)) is not None
    first, second = audit(app, "user.password")
    assert "device_tokens_revoked" not in first.details
    assert second.details["device_tokens_revoked"] == 1 and second.reason == "phone stolen"


def test_an_admin_neither_demotes_nor_deactivates_themselves(app, admin, make_user):
    make_user("adam", "admin")
    ada = user_id(app, "ada")
    demote = admin.post(
        f"/users/{ada}/role",
        data={"role_role": "officer", "role_areas": "CI-D1", "role_reason": "oops"},
    )
    assert demote.status_code == 400 and "cannot change your own role" in errors_of(demote)
    leave = admin.post(f"/users/{ada}/state", data={"state_reason": "r", "state_confirm": "yes"})
    assert leave.status_code == 400 and "cannot deactivate yourself" in errors_of(leave)
    assert audit(app, "user.role") == [] and audit(app, "user.deactivate") == []
    with session_scope(app) as s:
        assert s.scalar(select(User.role).where(User.id == ada)) == "admin"
    # another administrator is changed as anyone else
    adam = user_id(app, "adam")
    done = admin.post(f"/users/{adam}/state", data={"state_reason": "left", "state_confirm": "yes"})
    assert done.status_code == 302


@pytest.mark.parametrize(
    "fields, field, words",
    [
        ({"username": "Awa2"}, "username", "must be 2 to 80 characters"),
        ({"username": "AWA"}, "username", "must be 2 to 80 characters"),
        ({"email": "victim@example.org\r\nBcc: attacker@example.net"}, "email", "not an e-mail"),
        ({"email": "not an email"}, "email", "not an e-mail"),
        ({"full_name": "N" * 5000}, "full_name", "too long (5000 characters; at most 200)"),
    ],
)
def test_a_new_user_with_a_bad_field_is_refused_next_to_it(app, admin, fields, field, words):
    data = {"username": "newbie", "role": "admin", "locale": "en", **fields}
    answer = admin.post("/users/new", data=data)
    assert answer.status_code == 400
    assert f'id="f-{field}-error"' in answer.get_data(as_text=True) and words in errors_of(answer)
    with session_scope(app) as s:
        assert s.scalar(select(func.count(User.id))) == 2


def test_a_reason_of_blanks_or_of_a_megabyte_is_refused(app, admin):
    awa = user_id(app, "awa")
    for reason in (" \u200b ", "x" * 1_000_000):
        answer = admin.post(
            f"/users/{awa}/scope", data={"scope_areas": "V3", "scope_reason": reason}
        )
        assert answer.status_code == 400 and 'id="f-scope_reason-error"' in answer.get_data(
            as_text=True
        )
    big = admin.post(f"/users/{awa}/unlock", data={"reason": "x" * 100_000})
    assert big.status_code == 400 and "at most 2000" in errors_of(big)
    assert audit(app, "user.areas") == [] and audit(app, "user.unlock") == []


def test_reloading_the_page_that_showed_a_token_issues_no_second_one(app, admin):
    awa = user_id(app, "awa")
    page = admin.get(f"/users/{awa}").get_data(as_text=True)
    once = re.search(r'name="once" value="([^"]+)"', page)[1]
    form = {"token_label": "Tecno", "token_days": "30", "once": once}
    assert admin.post(f"/users/{awa}/tokens", data=form).status_code == 200
    again = admin.post(f"/users/{awa}/tokens", data=form, follow_redirects=True)
    assert "already issued and shown once" in again.get_data(as_text=True)
    assert 'class="segno"' not in again.get_data(as_text=True)
    with session_scope(app) as s:
        assert s.scalar(select(func.count()).select_from(ApiToken)) == 1
    # a new page gives a new key: issuing another on purpose still works
    page = admin.get(f"/users/{awa}").get_data(as_text=True)
    form["once"] = re.search(r'name="once" value="([^"]+)"', page)[1]
    assert admin.post(f"/users/{awa}/tokens", data=form).status_code == 200
    with session_scope(app) as s:
        assert s.scalar(select(func.count()).select_from(ApiToken)) == 2


def test_reloading_a_monitors_qr_code_issues_no_second_token(app, client, places, make_user):
    make_user("awa", "monitor", areas=["CI-D1"])
    login(client, "awa")
    once = re.search(r'name="once" value="([^"]+)"', client.get("/").get_data(as_text=True))[1]
    form = {"password": PASSWORD, "once": once}
    assert client.post("/profile/phone", data=form).status_code == 200
    again = client.post("/profile/phone", data=form, follow_redirects=True)
    assert "already issued and shown once" in again.get_data(as_text=True)
    with session_scope(app) as s:
        assert s.scalar(select(func.count()).select_from(ApiToken)) == 1
