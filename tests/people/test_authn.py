"""Who may sign in, and for how long: the password policy, the lock per username and the limit per
address (web, API and OpenRosa alike), tokens that expire and are revoked, deactivation, role and
area changes, web sessions that end, and the audit entries all of these write."""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from sqlalchemy import select, update

from clms.auth.passwords import password_problems
from clms.config import load_config
from clms.db import session_scope
from clms.models import ApiToken, AuditEvent, LoginThrottle, User, utcnow
from clms.security import FIELD as CSRF_FIELD
from clms.security import SESSION_KEY as CSRF_KEY
from tests.conftest import PASSWORD
from tests.openrosa_client import OPENROSA, Phone

NEW_PASSWORD = "a fresh passphrase for awa"


# --- helpers -------------------------------------------------------------------------------------


def csrf(client) -> str:
    """The CSRF token of the client's session (made if the session has none)."""
    with client.session_transaction() as s:
        s.setdefault(CSRF_KEY, "csrf-token-of-the-test")
        return s[CSRF_KEY]


def login(client, username: str, password: str = PASSWORD, **kw):
    data = {"username": username, "password": password, CSRF_FIELD: csrf(client)}
    return client.post("/login", data=data, **kw)


def signed_in(client, **kw) -> bool:
    """Whether the client's session cookie is a live session (home page vs redirect)."""
    status = client.get("/", **kw).status_code
    assert status in (200, 302)
    return status == 200


def flash_text(response) -> str:
    found = re.search(rb'<p class="flash error"[^>]*>(.*?)</p>', response.data, re.S)
    return found.group(1).decode() if found else ""


def api_token(client, username: str, password: str = PASSWORD) -> str:
    r = client.post("/api/v1/sessions", json={"username": username, "password": password})
    assert r.status_code == 201, r.json
    return r.json["token"]


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def events(app, action: str) -> list[tuple[str, str, str, dict]]:
    """(actor, target, reason, details) of the audit entries of ``action``, oldest first."""
    with session_scope(app) as s:
        rows = s.execute(
            select(AuditEvent.actor, AuditEvent.target, AuditEvent.reason, AuditEvent.details)
            .where(AuditEvent.action == action)
            .order_by(AuditEvent.seq)
        ).all()
    return [(a, t, r, json.loads(d)) for a, t, r, d in rows]


def cli(runner, *args, input=None):
    return runner.invoke(args=["users", *args], input=input)


# --- the password policy -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "password, problem",
    [
        ("short", "it is 5 characters long; it needs at least 10 characters"),
        ("kone.awa.2026", "it contains the username"),
        ("kone.awa", "it is the username"),
        ("zzzzzzzzzzzz", "every character is the same"),
        ("Password2024!", "it is one of the most common passwords (or a keyboard pattern)"),
        ("azertyuiop", "it is one of the most common passwords (or a keyboard pattern)"),
        ("1qaz2wsx3edc", "it is one of the most common passwords (or a keyboard pattern)"),
        ("abcdefghijklm", "it is a run of consecutive characters"),
        ("ab12ab12ab12", "it is a short pattern repeated"),
    ],
)
def test_the_password_policy_says_what_is_wrong(password, problem):
    assert problem in password_problems(password, username="kone.awa")


def test_good_passwords_pass_and_the_minimum_only_goes_up(tmp_path):
    for good in (PASSWORD, "Mangue verte sous la pluie", "k7#Lq9!vR2xw"):
        assert password_problems(good, username="kone.awa") == []
    assert password_problems("twelve chars", min_length=14) == [
        "it is 12 characters long; it needs at least 14 characters"
    ]
    with pytest.raises(ValueError, match="PASSWORD_MIN_LENGTH is 8: it may be raised"):
        load_config(str(tmp_path), {"PASSWORD_MIN_LENGTH": 8, "SECRET_KEY": "k"})


def test_users_add_and_password_apply_the_policy_and_are_audited(
    app, runner, client, make_user, places
):
    refused = cli(runner, "add", "kone", "--role", "admin", input="Password2024!\n")
    assert refused.exit_code != 0
    assert "This password is refused: it is one of the most common passwords" in refused.output
    app.config["PASSWORD_MIN_LENGTH"] = 16
    longer = cli(runner, "add", "kone", "--role", "admin", input="kone is fifteen\n")
    assert longer.exit_code != 0 and "it needs at least 16 characters" in longer.output
    assert "it contains the username" in longer.output
    app.config["PASSWORD_MIN_LENGTH"] = 10
    with session_scope(app) as s:
        assert s.scalar(select(User).where(User.username == "kone")) is None  # nothing half-made
    added = cli(
        runner, "add", "kone", "--role", "officer", "--area", "CI-D1", input=f"{PASSWORD}\n"
    )
    assert added.exit_code == 0, added.output
    [(actor, target, _, details)] = events(app, "user.add")
    assert (actor, target) == ("cli", "user:kone")
    assert details["after"]["role"] == "officer" and details["after"]["areas"] == ["CI-D1"]

    assert login(client, "kone").status_code == 302 and signed_in(client)
    token = api_token(client, "kone")
    weak = cli(runner, "password", "kone", input="qwertyuiop\n")
    assert weak.exit_code != 0 and "most common passwords" in weak.output
    assert signed_in(client)  # a refused reset changes nothing

    reset = cli(runner, "password", "kone", "--reason", "forgotten", input=f"{NEW_PASSWORD}\n")
    assert reset.exit_code == 0, reset.output
    assert "1 API token(s) revoked" in reset.output
    assert not signed_in(client)  # the session begun with the old password ended
    assert client.get("/api/v1/me", headers=bearer(token)).status_code == 401
    assert login(client, "kone").status_code == 401
    assert login(client, "kone", NEW_PASSWORD).status_code == 302
    [(actor, _, reason, details)] = events(app, "user.password")
    assert (actor, reason, details) == ("cli", "forgotten", {"api_tokens_revoked": 1})
    everything = json.dumps(events(app, "user.password") + events(app, "user.add"))
    assert NEW_PASSWORD not in everything and PASSWORD not in everything


# --- the lock per username -----------------------------------------------------------------------


def test_lockout_answers_alike_for_real_and_unknown_usernames_and_unlocks(
    app, client, runner, make_user, places
):
    app.config["LOGIN_RATE_PER_MINUTE"] = 1000  # this test is about the username lock
    make_user("ada", "admin")
    answers = {}
    for name in ("ada", "ghost"):
        for _ in range(4):
            r = login(client, name, "not the password")
            assert r.status_code == 401 and "Wrong username or password" in flash_text(r)
        fifth = login(client, name, "not the password")
        after = login(client, name, PASSWORD)  # the right password does not open a lock
        answers[name] = [(x.status_code, flash_text(x), int(x.headers["Retry-After"])) for x in
                         (fifth, after)]  # fmt: skip
    for real, unknown in zip(answers["ada"], answers["ghost"], strict=True):
        assert real[0] == unknown[0] == 429
        assert real[1] == unknown[1] and "locked for 15 more minute(s)" in real[1]
        assert abs(real[2] - unknown[2]) <= 1 and 890 <= real[2] <= 900
    assert not signed_in(client)
    locks = events(app, "auth.locked")
    assert [(a, t) for a, t, _, _ in locks] == [("system", "user:ada"), ("system", "user:ghost")]
    assert locks[0][3]["failures"] == 5
    failed = events(app, "auth.login_failed")
    assert len(failed) == 12 and failed[-1][3] == {"locked": True, "surface": "web"}

    assert re.search(r"ada\s+admin.*\(locked until ", cli(runner, "list").output)
    unlocked = cli(runner, "unlock", "ada", "--reason", "called the helpdesk")
    assert (
        unlocked.exit_code == 0 and "was locked; 5 failed sign-in(s) forgotten" in unlocked.output
    )
    assert login(client, "ada").status_code == 302 and signed_in(client)
    [(actor, target, reason, details)] = events(app, "user.unlock")
    assert (actor, target, reason) == ("cli", "user:ada", "called the helpdesk")
    assert details == {"failures": 5, "locked": True}
    assert cli(runner, "unlock", "nobody").exit_code != 0

    # a lock ends by itself after LOGIN_LOCK_MINUTES, and counting starts again
    with session_scope(app) as s:
        s.execute(update(LoginThrottle).values(locked_until=utcnow() - dt.timedelta(seconds=1)))
    again = login(client, "ghost", "still not it")
    assert again.status_code == 401
    with session_scope(app) as s:
        row = s.scalar(select(LoginThrottle).where(LoginThrottle.key == "ghost"))
        assert (row.count, row.locked_until) == (1, None)


def test_a_successful_sign_in_resets_the_count(app, client, make_user, places):
    make_user("olga", "officer", areas=["CI-D1"])
    for _round in range(2):
        for _ in range(4):
            r = client.post("/api/v1/sessions", json={"username": "olga", "password": "nope nope"})
            assert r.status_code == 401 and r.json["code"] == "401.2"
        api_token(client, "olga")
    assert [t for _, t, _, _ in events(app, "auth.login")] == ["user:olga", "user:olga"]
    assert events(app, "auth.locked") == []


@pytest.mark.committing  # sign-ins in threads, each with a connection of its own
def test_concurrent_failures_all_count_and_lock_once(app, make_user, places):
    """Workers failing at the same moment: no count is lost, one entry says the name locked."""
    app.config["LOGIN_RATE_PER_MINUTE"] = 1000
    make_user("olga", "officer", areas=["CI-D1"])
    gate = threading.Barrier(8)

    def attempt(_):
        client = app.test_client()
        gate.wait()
        body = {"username": "olga", "password": "guess number one"}
        return client.post("/api/v1/sessions", json=body).status_code

    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(attempt, range(8)))
    assert set(statuses) <= {401, 429} and statuses.count(429) >= 1
    with session_scope(app) as s:
        user_row = s.scalar(select(LoginThrottle).where(LoginThrottle.scope == "user"))
        address_row = s.scalar(select(LoginThrottle).where(LoginThrottle.scope == "address"))
    assert address_row.count == 8  # every attempt counted, none lost to a race
    # the failures that got past the lock check before the fifth locked it all count
    assert 5 <= user_row.count == statuses.count(401) + 1 and user_row.locked_until > utcnow()
    assert len(events(app, "auth.locked")) == 1


def test_web_api_and_phones_share_one_lock(app, client, phone, places):
    app.config["LOGIN_MAX_FAILURES"] = 3
    assert login(client, "awa", "wrong one here").status_code == 401
    r = client.post("/api/v1/sessions", json={"username": "awa", "password": "wrong one too"})
    assert r.status_code == 401
    wrong_phone = Phone(client, "awa", "a wrong password")
    third = wrong_phone.get("/formList")
    assert third.status_code == 429 and b"locked for 15 more minute(s)" in third.data
    assert b"<OpenRosaResponse" in third.data and "Retry-After" in third.headers
    # the right password, on every surface, now gets the same lock
    assert phone.get("/formList").status_code == 429
    api = client.post("/api/v1/sessions", json={"username": "awa", "password": PASSWORD})
    assert api.status_code == 429 and api.json["code"] == "429.1"
    assert [d["surface"] for _, _, _, d in events(app, "auth.locked")] == ["openrosa"]


# --- the limit per address -----------------------------------------------------------------------


def test_one_address_may_only_try_so_often(app, client, phone, places):
    app.config["LOGIN_RATE_PER_MINUTE"] = 3
    assert login(client, "awa", "wrong password 1").status_code == 401
    assert login(client, "awa", PASSWORD).status_code == 302  # successes count on the web too
    assert (
        client.post("/api/v1/sessions", json={"username": "x", "password": "y"}).status_code == 401
    )
    limited = login(client, "awa", PASSWORD)
    assert limited.status_code == 429
    assert "Too many sign-in attempts from your address" in flash_text(limited)
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    api = client.post("/api/v1/sessions", json={"username": "awa", "password": PASSWORD})
    assert api.status_code == 429 and api.json["code"] == "429.2" and "Retry-After" in api.headers
    elsewhere = login(client, "awa", PASSWORD, environ_base={"REMOTE_ADDR": "10.9.8.7"})
    assert elsewhere.status_code == 302
    # the next minute the address may try again
    with session_scope(app) as s:
        s.execute(
            update(LoginThrottle)
            .where(LoginThrottle.scope == "address")
            .values(window_start=utcnow() - dt.timedelta(seconds=61))
        )
    assert login(client, "awa", PASSWORD).status_code == 302

    # phones: their successful requests do not count, their failures do
    phone_env = {"environ_base": {"REMOTE_ADDR": "10.1.1.1"}}
    for _ in range(5):
        assert phone.get("/formList", **phone_env).status_code == 200
    wrong = Phone(client, "awa", "a wrong password")
    assert [wrong.get("/formList", **phone_env).status_code for _ in range(4)] == [
        401, 401, 401, 429
    ]  # fmt: skip


# --- tokens --------------------------------------------------------------------------------------


def test_api_tokens_expire_and_can_be_revoked(app, client, make_user, places):
    make_user("olga", "officer", areas=["CI-D1"])
    app.config["TOKEN_HOURS"] = 2
    token = api_token(client, "olga")
    with session_scope(app) as s:
        row = s.scalar(select(ApiToken))
        lifetime = row.expires_at - row.created_at
        assert dt.timedelta(hours=2) - lifetime < dt.timedelta(seconds=5)
    assert client.get("/api/v1/me", headers=bearer(token)).status_code == 200
    with session_scope(app) as s:  # two hours later
        s.execute(update(ApiToken).values(expires_at=utcnow() - dt.timedelta(seconds=1)))
    expired = client.get("/api/v1/me", headers=bearer(token))
    assert expired.status_code == 401 and expired.json["code"] == "401.1"

    second = api_token(client, "olga")
    assert client.delete("/api/v1/sessions", headers=bearer(second)).status_code == 204
    assert client.get("/api/v1/me", headers=bearer(second)).status_code == 401
    assert client.delete("/api/v1/token", headers=bearer(second)).status_code == 401
    third = api_token(client, "olga")
    assert client.delete("/api/v1/token", headers=bearer(third)).status_code == 204
    assert [d["surface"] for _, _, _, d in events(app, "auth.logout")] == ["api", "api"]
    with session_scope(app) as s:
        revoked = s.scalars(select(ApiToken).where(ApiToken.revoked_at.is_not(None))).all()
        assert len(revoked) == 2


def test_device_tokens_are_listed_and_revoked_from_the_command_line(
    app, client, runner, phone, places
):
    issued = cli(runner, "device-token", "awa", "--label", "tablet 3")
    assert issued.exit_code == 0, issued.output
    token = re.search(r"/key/(\S+)", issued.output).group(1)
    assert client.get(f"/key/{token}/formList", headers=OPENROSA).status_code == 200
    bearer_token = api_token(client, "awa")

    listed = cli(runner, "tokens", "awa")
    assert listed.exit_code == 0
    assert re.search(r"device\s+live\s+.*tablet 3", listed.output)
    assert re.search(r"api\s+live", listed.output)
    assert token not in listed.output and bearer_token not in listed.output

    revoked = cli(runner, "revoke-tokens", "awa", "--kind", "device", "--reason", "phone lost")
    assert revoked.exit_code == 0 and "Revoked 1 device token(s)" in revoked.output
    assert client.get(f"/key/{token}/formList", headers=OPENROSA).status_code == 403
    assert client.get("/api/v1/me", headers=bearer(bearer_token)).status_code == 200
    assert re.search(r"device\s+revoked", cli(runner, "tokens", "awa").output)
    [(actor, target, reason, details)] = events(app, "user.tokens_revoked")
    assert (actor, target, reason) == ("cli", "user:awa", "phone lost")
    assert details == {"count": 1, "kind": "device"}
    assert events(app, "user.token_issued")[0][3]["label"] == "tablet 3"
    assert cli(runner, "tokens", "nobody").exit_code != 0


# --- deactivation, roles, areas ------------------------------------------------------------------


def test_deactivation_ends_sessions_and_revokes_tokens(app, client, runner, phone, places):
    issued = cli(runner, "device-token", "awa")
    device = re.search(r"/key/(\S+)", issued.output).group(1)
    token = api_token(client, "awa")
    assert login(client, "awa").status_code == 302 and signed_in(client)

    assert cli(runner, "deactivate", "awa").exit_code != 0  # a reason is required
    done = cli(runner, "deactivate", "awa", "--reason", "left the programme")
    assert done.exit_code == 0 and "2 token(s) revoked" in done.output
    assert not signed_in(client)  # the live session ended at its next request
    assert client.get("/api/v1/me", headers=bearer(token)).status_code == 401
    assert client.get(f"/key/{device}/formList", headers=OPENROSA).status_code == 403
    assert phone.get("/formList").status_code == 401
    assert login(client, "awa").status_code == 401
    [(actor, _, reason, details)] = events(app, "user.deactivate")
    assert (actor, reason, details) == ("cli", "left the programme", {"tokens_revoked": 2})

    assert cli(runner, "activate", "awa", "--reason", "back").exit_code == 0
    assert login(client, "awa").status_code == 302
    assert client.get(f"/key/{device}/formList", headers=OPENROSA).status_code == 403


def test_role_and_area_changes_need_a_reason_and_keep_before_and_after(
    app, client, runner, make_user, places
):
    make_user("kone", "officer", areas=["CI-D1"])
    make_user("yao", "officer", areas=["CI-D2"])  # never signs in
    assert cli(runner, "set-role", "kone", "supervisor", "--area", "CI-D2").exit_code != 0
    bad = cli(runner, "set-role", "kone", "brand", "--reason", "r")
    assert bad.exit_code != 0 and "A brand user needs a brand." in bad.output
    unknown = cli(runner, "set-areas", "kone", "--area", "CI-D1", "--area", "NOPE", "--reason", "r")
    assert unknown.exit_code != 0 and "Unknown area or village code 'NOPE'" in unknown.output
    assert events(app, "user.role") == [] and events(app, "user.areas") == []

    ok = cli(runner, "set-role", "kone", "supervisor", "--area", "CI-D2", "--reason", "memo 14")
    assert ok.exit_code == 0, ok.output
    [(actor, target, reason, details)] = events(app, "user.role")
    assert (actor, target, reason) == ("cli", "user:kone", "memo 14")
    assert (details["before"]["role"], details["before"]["areas"]) == ("officer", ["CI-D1"])
    assert (details["after"]["role"], details["after"]["areas"]) == ("supervisor", ["CI-D2"])

    areas = cli(runner, "set-areas", "kone", "--area", "V1", "--area", "V3", "--reason", "rotation")
    assert areas.exit_code == 0, areas.output
    [(_, _, reason, details)] = events(app, "user.areas")
    assert reason == "rotation"
    assert (details["before"]["areas"], details["after"]["areas"]) == (["CI-D2"], ["V1", "V3"])

    brand = cli(runner, "set-role", "kone", "brand", "--brand", "BRAND-A", "--reason", "moved")
    assert brand.exit_code == 0
    assert events(app, "user.role")[-1][3]["after"] == {
        "role": "brand", "areas": [], "brand": "BRAND-A", "provider": None, "active": True
    }  # fmt: skip
    assert cli(runner, "set-areas", "kone", "--area", "V1", "--reason", "r").exit_code != 0
    # the new role applies to a live session at once (the user is read on every request)
    assert login(client, "kone").status_code == 302
    assert client.get("/").headers["Location"].endswith("/map")
    listed = runner.invoke(args=["users", "list"]).output
    assert re.search(r"kone\s+brand\s+BRAND-A .*\(last sign-in 20\d\d-\d\d-\d\d ", listed)
    assert re.search(r"yao\s+officer\s+CI-D2 \(never signed in\)", listed)


# --- web sessions --------------------------------------------------------------------------------


def _shift_session(client, **moments: dt.timedelta) -> None:
    with client.session_transaction() as s:
        for key, ago in moments.items():
            s[key] = (utcnow() - ago).isoformat()


def test_sessions_end_after_inactivity_and_after_their_lifetime(app, client, make_user, places):
    make_user("ada", "admin")
    assert login(client, "ada").status_code == 302
    _shift_session(client, seen=dt.timedelta(minutes=479))
    assert signed_in(client)  # active within SESSION_MINUTES (480)
    _shift_session(client, seen=dt.timedelta(minutes=481))
    assert not signed_in(client)
    page = client.get("/login")
    assert b"Your session has ended; please sign in again." in page.data

    assert login(client, "ada").status_code == 302
    # active all along, but signed in longer ago than SESSION_MAX_HOURS (12)
    _shift_session(client, born=dt.timedelta(hours=11, minutes=59))
    assert signed_in(client)
    _shift_session(client, born=dt.timedelta(hours=12, minutes=1))
    assert not signed_in(client)
    app.config["SESSION_MAX_HOURS"] = 24
    assert login(client, "ada").status_code == 302
    _shift_session(client, born=dt.timedelta(hours=20))
    assert signed_in(client)


def test_signing_out_ends_copies_of_the_cookie_and_sign_in_starts_a_new_session(
    app, client, make_user, places
):
    make_user("ada", "admin")
    csrf(client)
    before = client.get_cookie("session").value  # the cookie as it was before signing in
    assert login(client, "ada").status_code == 302 and signed_in(client)
    during = client.get_cookie("session").value
    assert during != before

    stale = app.test_client()
    stale.set_cookie("session", before)
    assert not signed_in(stale)  # the pre-sign-in cookie did not become the new identity

    thief = app.test_client()
    thief.set_cookie("session", during)
    assert signed_in(thief)  # a copy works while the session lives: the limit of signed cookies
    out = client.post("/logout", data={CSRF_FIELD: csrf(client)})
    assert out.status_code == 302
    assert not signed_in(thief)  # signing out raised the epoch: the copy is dead too
    assert not signed_in(client)
    [(actor, target, _, _)] = events(app, "auth.logout")
    assert (actor, target) == ("ada", "user:ada")
    [(actor, _, _, details)] = events(app, "auth.login")
    assert actor == "ada" and details == {"surface": "web"}
    with session_scope(app) as s:
        assert s.scalar(select(User.session_epoch).where(User.username == "ada")) == 1


@pytest.mark.parametrize(
    "setting, base_url, secure",
    [
        ("auto", "http://localhost", False),
        ("auto", "https://localhost", True),
        ("1", "http://localhost", True),
        ("0", "https://localhost", False),
    ],
)
def test_the_session_cookie_is_secure_on_https(
    app, client, make_user, places, setting, base_url, secure
):
    app.config["SESSION_COOKIE_SECURE"] = setting
    make_user("ada", "admin")
    r = login(client, "ada", base_url=base_url)
    assert r.status_code == 302
    cookie = next(h for h in r.headers.getlist("Set-Cookie") if h.startswith("session="))
    flags = {part.strip().split("=")[0].lower() for part in cookie.split(";")[1:]}
    assert "httponly" in flags and "samesite=lax" in cookie.lower()
    assert ("secure" in flags) is secure


# --- device tokens: a lifetime, renewal, and never in a log line ---------------------------------


def test_device_tokens_expire_by_default_and_are_renewed_without_touching_the_phone(
    app, client, runner, phone, places
):
    issued = cli(runner, "device-token", "awa", "--label", "tablet 3")
    token = re.search(r"/key/(\S+)", issued.output).group(1)
    with session_scope(app) as s:
        row = s.scalar(select(ApiToken).where(ApiToken.kind == "device"))
        token_id, expires = row.id, row.expires_at
    assert dt.timedelta(days=179) < expires - utcnow() <= dt.timedelta(days=180)
    assert f"expires {expires:%Y-%m-%d %H:%M} UTC" in issued.output
    # where tokens are listed, the date they stop working
    assert re.search(rf"device\s+live\s+\S+ \S+\s+{expires:%Y-%m-%d %H:%M}", cli(
        runner, "tokens", "awa").output)  # fmt: skip
    # the lifetime is a setting
    app.config["DEVICE_TOKEN_DAYS"] = 7
    week = cli(runner, "device-token", "awa")
    assert f"expires {utcnow() + dt.timedelta(days=7):%Y-%m-%d}" in week.output
    # six months later the phone is refused; renewing the token lets it in again, unchanged
    with session_scope(app) as s:
        s.get(ApiToken, token_id).expires_at = utcnow() - dt.timedelta(minutes=1)
    assert client.get(f"/key/{token}/formList", headers=OPENROSA).status_code == 403
    assert re.search(r"device\s+expired", cli(runner, "tokens", "awa").output)
    renewed = cli(runner, "renew-token", "awa", str(token_id), "--days", "90")
    assert renewed.exit_code == 0, renewed.output
    assert client.get(f"/key/{token}/formList", headers=OPENROSA).status_code == 200
    [(actor, target, _reason, details)] = events(app, "user.token_renewed")
    assert (actor, target, details["token_id"]) == ("cli", "user:awa", token_id)
    # a revoked token stays revoked; another person's token is not theirs to renew
    cli(runner, "revoke-tokens", "awa", "--kind", "device", "--reason", "phone lost")
    again = cli(runner, "renew-token", "awa", str(token_id))
    assert again.exit_code != 0 and "was revoked" in again.output
    assert client.get(f"/key/{token}/formList", headers=OPENROSA).status_code == 403
    assert cli(runner, "renew-token", "nobody", str(token_id)).exit_code != 0
    # a lifetime is a number of days that makes sense, never a silent default
    for days in ("0", "-3", "999999999"):
        refused = cli(runner, "device-token", "awa", "--days", days)
        assert refused.exit_code != 0 and "from 1 to 3650" in refused.output


def _corrupt_database(app, tmp_path) -> dict:
    """A CLMS whose SQLite file is damaged ("file is not a database"): every request that
    reaches the database fails with a 500 and a logged exception."""
    corrupt = tmp_path / "corrupt.sqlite3"
    corrupt.write_bytes(b"this is not a database file" * 200)
    return {"DATABASE_URL": f"sqlite:///{corrupt}"}


def test_a_failing_request_logs_no_device_token(app, tmp_path, caplog):
    from clms.app import create_app

    broken = create_app({**_corrupt_database(app, tmp_path), "SECRET_KEY": "x",
                         "ODK_VALIDATE": "0"})  # fmt: skip
    token = "Zx9-secret_TOKEN-value-43-characters-long-abc"
    with caplog.at_level(logging.INFO):
        answer = broken.test_client().get(f"/key/{token}/formList", headers=OPENROSA)
    assert answer.status_code == 500
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "Exception on /key/[token]/formList [GET]" in text
    assert token not in text


@pytest.mark.slow
def test_gunicorn_logs_no_device_token(app, tmp_path):
    """gunicorn's own access log and error log, with a request under /key/<token>/ that fails
    (a damaged database) and one that is refused (a wrong token)."""
    from tests.failure_rig import Gunicorn, server_env

    access, errors = tmp_path / "access.log", tmp_path / "error.log"
    env = server_env(app, CLMS_DATABASE_URL=_corrupt_database(app, tmp_path)["DATABASE_URL"])
    # an access log format with request headers, as behind a proxy: the redaction keeps
    # gunicorn's answer for a header the request lacks
    line = '%(h)s "%(r)s" %(s)s %({X-Forwarded-For}i)s %({User-Agent}i)s'
    server = Gunicorn(env, tmp_path / "gunicorn.log", extra=(
        "--access-logfile", str(access), "--error-logfile", str(errors),
        "--access-logformat", line))  # fmt: skip
    token = "Zx9-secret_TOKEN-value-43-characters-long-abc"
    server.start()
    try:
        for method, path in (("GET", "formList"), ("HEAD", "submission"),
                             ("GET", "forms/clms_household_visit/manifest")):  # fmt: skip
            url = f"{server.url}/key/{token}/{path}"
            assert requests.request(method, url, headers=OPENROSA, timeout=10).status_code == 500
        requests.head(f"{server.url}/key/{token}x/submission", headers=OPENROSA, timeout=10)
    finally:
        server.stop()
    logged = access.read_text() + errors.read_text() + server.tail(1000)
    assert "Exception on /key/[token]/formList [GET]" in logged
    assert "Logging error" not in logged
    # every request has its access line, with the token redacted and "-" for a missing header
    lines = [x for x in access.read_text().splitlines() if "/key/[token]" in x]
    assert len(lines) == 4 and all(" - " in x for x in lines), lines
    assert logged.count("/key/[token]/") >= 8  # the access log's lines and the exceptions
    assert token not in logged


def test_device_tokens_issued_before_lifetimes_existed_get_one_on_upgrade(tmp_path):
    """A token issued without an expiry never stopped working; the upgrade gives every live one
    the default lifetime (a revoked one stays revoked, an API token keeps its own)."""
    from sqlalchemy import create_engine, text

    from clms.migrate import upgrade

    engine = create_engine(f"sqlite:///{tmp_path / 'old.sqlite3'}")
    upgrade(engine, "0011")
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO users (id, username, role, password_hash, active, locale, session_epoch,"
            " full_name, created_at) VALUES (1, 'awa', 'monitor', 'x', 1, 'en', 0, '',"
            " '2025-01-01 00:00:00')"
        ))  # fmt: skip
        for n, (kind, revoked) in enumerate(
            [("device", None), ("device", "2026-01-01 00:00:00"), ("api", None)], start=1
        ):
            conn.execute(
                text("INSERT INTO api_tokens (id, user_id, kind, label, token_sha256, created_at,"
                     " revoked_at) VALUES (:id, 1, :kind, '', :sha, '2025-01-01 00:00:00',"
                     " :revoked)"),
                {"id": n, "kind": kind, "sha": str(n) * 64, "revoked": revoked},
            )  # fmt: skip
    upgrade(engine)
    with engine.connect() as conn:
        rows = dict(conn.execute(text("SELECT id, expires_at FROM api_tokens")).all())
    engine.dispose()
    expires = dt.datetime.fromisoformat(str(rows[1])).replace(tzinfo=dt.UTC)
    assert dt.timedelta(days=179) < expires - utcnow() <= dt.timedelta(days=180)
    assert rows[2] is None and rows[3] is None
