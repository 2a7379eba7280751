"""CSRF protection (clms.security): every state-changing request of the web application needs
the session's token, which every form of every page carries; a request without it, with another
one, or from another site is refused with 400 and changes nothing. The JSON API (bearer tokens)
and OpenRosa are not cookie-authenticated and need none.

The ``client`` fixture sends the session's token the way a page's form does (tests/conftest.py,
``BrowserClient``); these tests send none or a wrong one on purpose (``csrf=False`` or a
``csrf_token`` field of their own).
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from sqlalchemy import func, select

from clms.db import session_scope
from clms.models import Alert, AlertEvent, User
from clms.security import SESSION_KEY
from tests.alerts import test_alert_queue
from tests.conftest import PASSWORD

# people of every role and open alerts (tests/alerts/test_alert_queue.py): olga, officer of
# CI-D1; ada, admin; pat, provider
world = test_alert_queue.world

REFUSAL = "The form expired or did not come from this site; reload and try again."


class _Forms(HTMLParser):
    """The forms of a page: method, action, and the hidden inputs' values by name."""

    def __init__(self):
        super().__init__()
        self.forms: list[dict] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            method = (a.get("method") or "get").lower()
            self.forms.append({"method": method, "action": a.get("action"), "fields": {}})
        elif tag == "input" and self.forms and a.get("type") == "hidden":
            self.forms[-1]["fields"].setdefault(a.get("name"), a.get("value"))


def forms_of(html: str) -> list[dict]:
    parser = _Forms()
    parser.feed(html)
    return parser.forms


def session_token(client) -> str | None:
    with client.session_transaction() as session:
        return session.get(SESSION_KEY)


def page_token(client, path: str) -> str:
    """The token of the first POST form of the page at ``path``, as a browser finds it."""
    page = client.get(path)
    assert page.status_code == 200, path
    posts = [f for f in forms_of(page.get_data(as_text=True)) if f["method"] == "post"]
    return posts[0]["fields"]["csrf_token"]


def sign_in(client, username: str) -> None:
    r = client.post("/login", data={"username": username, "password": PASSWORD})
    assert r.status_code == 302, r.data[:300]


def signed_in(client) -> bool:
    return client.get("/alerts").status_code == 200


def alert_state(app, alert_id: int) -> tuple[str, int]:
    with session_scope(app) as s:
        status = s.get(Alert, alert_id).status
        events = s.scalar(select(func.count(AlertEvent.id)).where(AlertEvent.alert_id == alert_id))
        return status, events


# --- the token in the page is the token that is checked -----------------------------------------


def test_the_login_form_carries_the_session_token_and_signing_in_needs_it(app, client, world):
    page = client.get("/login")
    token = session_token(client)
    assert token and len(token) >= 32
    login_form = [f for f in forms_of(page.get_data(as_text=True)) if f["action"] is None]
    assert login_form[0]["fields"]["csrf_token"] == token

    # without it (login CSRF: another site signing this browser into an account of its choice)
    refused = client.post("/login", data={"username": "olga", "password": PASSWORD}, csrf=False)
    assert refused.status_code == 400
    assert REFUSAL in refused.get_data(as_text=True)
    assert not signed_in(client)

    # with the field exactly as the page gave it, as the browser sends it
    fields = {"csrf_token": token, "username": "olga", "password": PASSWORD}
    assert client.post("/login", data=fields).status_code == 302
    assert signed_in(client)
    # signing in starts a new session: the token of the sign-in page is gone with it
    assert session_token(client) != token


def test_every_form_of_every_page_carries_the_token(app, client, world):
    """Each page a person of each role opens: every POST form has the session's token."""
    pages = {
        "ada": ["/forms", "/places", "/supply", "/sources", "/sources/new", "/services",
                "/services/new", "/providers/new", "/profiles"],
        "olga": ["/alerts", f"/alerts/{world['v1_critical']}", "/cases", "/duplicates",
                 "/submissions", "/kpis", "/map"],
        "pat": ["/referrals"],
    }  # fmt: skip
    seen = 0
    for username, paths in pages.items():
        client.post("/logout")
        sign_in(client, username)
        for path in paths:
            page = client.get(path)
            token = session_token(client)
            assert page.status_code == 200, (username, path, page.status_code)
            posts = [f for f in forms_of(page.get_data(as_text=True)) if f["method"] == "post"]
            assert posts, (username, path)  # at least the language switch and sign-out
            for form in posts:
                assert form["fields"].get("csrf_token") == token, (username, path, form)
            seen += len(posts)
    assert seen > 40


# --- refused: no token, a wrong token, another site ---------------------------------------------


@pytest.mark.parametrize(
    "action, data, token",
    [
        ("acknowledge", {}, None),
        ("dismiss", {"reason": "duplicate of another alert"}, "wrong"),
        ("assign", {"assignee": "olga"}, "other session"),
        ("acknowledge", {}, "other session"),
    ],
)
def test_an_alert_action_without_the_right_token_is_refused_and_changes_nothing(
    app, client, world, action, data, token
):
    alert_id = world["v1_critical"]
    sign_in(client, "olga")
    mine = page_token(client, f"/alerts/{alert_id}")
    before = alert_state(app, alert_id)
    sent = dict(data)
    if token == "other session":
        other = app.test_client()
        sent["csrf_token"] = page_token(other, "/login")
        assert sent["csrf_token"] != mine
    elif token == "wrong":
        sent["csrf_token"] = mine[:-2] + ("xx" if not mine.endswith("xx") else "yy")
    r = client.post(f"/alerts/{alert_id}/{action}", data=sent, csrf=False)
    assert r.status_code == 400
    assert REFUSAL in r.get_data(as_text=True)
    assert "Error code 400.90" in r.get_data(as_text=True)
    assert alert_state(app, alert_id) == before
    # the same request with the page's token does what it says
    r = client.post(f"/alerts/{alert_id}/{action}", data={**data, "csrf_token": mine})
    assert r.status_code in (302, 303), r.get_data(as_text=True)[:500]
    assert alert_state(app, alert_id) != before


def test_sign_out_and_the_language_switch_need_the_token(app, client, world):
    sign_in(client, "olga")
    assert client.post("/logout", csrf=False).status_code == 400
    assert signed_in(client)
    r = client.post("/language", data={"locale": "fr", "next": "/alerts"}, csrf=False)
    assert r.status_code == 400
    assert "Alerts" in client.get("/alerts").get_data(as_text=True)
    with session_scope(app) as s:
        assert s.scalar(select(User.locale).where(User.username == "olga")) != "fr"
    # with it
    assert client.post("/language", data={"locale": "fr", "next": "/alerts"}).status_code == 303
    french = client.get("/alerts").get_data(as_text=True)
    # the refusal reads in the person's language too
    refused = client.post("/logout", csrf=False).get_data(as_text=True)
    assert "Le formulaire a expiré ou ne vient pas de ce site" in refused
    assert "Alertes" in french
    assert client.post("/logout").status_code == 302
    assert not signed_in(client)


def test_the_token_travels_in_a_header_for_scripts(app, client, world):
    alert_id = world["v1_critical"]
    sign_in(client, "olga")
    token = page_token(client, f"/alerts/{alert_id}")
    before = alert_state(app, alert_id)
    wrong = {"X-CSRF-Token": "not-the-token"}
    assert client.post(f"/alerts/{alert_id}/acknowledge", headers=wrong).status_code == 400
    assert alert_state(app, alert_id) == before
    right = {"X-CSRF-Token": token}
    assert client.post(f"/alerts/{alert_id}/acknowledge", headers=right).status_code == 303
    assert alert_state(app, alert_id)[0] == "acknowledged"


def test_a_request_from_another_site_is_refused_even_with_the_token(app, client, world):
    app.config["BASE_URL"] = "https://clms.example.org/"
    sign_in(client, "olga")
    alert_id = world["v1_critical"]
    token = page_token(client, f"/alerts/{alert_id}")
    before = alert_state(app, alert_id)
    for headers in (
        {"Origin": "https://evil.example"},
        {"Origin": "null"},  # a sandboxed frame or a file
        {"Origin": "http://localhost.evil.example"},
        {"Origin": "http://localhost:8080"},
        {"Referer": "https://evil.example/page"},
        {"Origin": "https://evil.example", "Referer": "http://localhost/alerts"},  # Origin wins
    ):
        r = client.post(
            f"/alerts/{alert_id}/acknowledge", headers={**headers, "X-CSRF-Token": token}
        )
        assert r.status_code == 400, headers
        assert REFUSAL in r.get_data(as_text=True)
        assert alert_state(app, alert_id) == before
    # this site, as the request reached it or as BASE_URL names it behind a proxy
    for alert_key, headers in (
        ("v1_critical", {"Origin": "http://localhost"}),
        ("v1_low", {"Referer": "http://localhost/alerts/1"}),
        ("v2_high_overdue", {"Origin": "https://clms.example.org"}),
    ):
        r = client.post(
            f"/alerts/{world[alert_key]}/acknowledge", headers={**headers, "X-CSRF-Token": token}
        )
        assert r.status_code in (302, 303), headers
        assert alert_state(app, world[alert_key])[0] == "acknowledged"


def test_a_session_without_a_token_is_refused(app, client, world):
    """A session cookie that never held a token (made before tokens existed, or forged without
    the secret key, which the signature forbids anyway) cannot post."""
    r = client.post("/login", data={"username": "olga", "password": PASSWORD, "csrf_token": ""})
    assert r.status_code == 400
    assert not signed_in(client)


# --- not checked: the API (bearer tokens) and OpenRosa -------------------------------------------


def test_the_api_with_a_bearer_token_needs_no_csrf_token(app, client, world):
    alert_id = world["v1_critical"]
    r = client.post("/api/v1/sessions", json={"username": "olga", "password": PASSWORD}, csrf=False)
    assert r.status_code == 201
    auth = {"Authorization": f"Bearer {r.json['token']}"}
    ack = client.post(f"/api/v1/alerts/{alert_id}/acknowledge", headers=auth, csrf=False)
    assert ack.status_code == 200, ack.json
    assert alert_state(app, alert_id)[0] == "acknowledged"


def test_every_post_form_in_the_templates_renders_the_token():
    """The pages above are a sample; every form of every template that posts carries it."""
    templates = sorted((Path(__file__).resolve().parents[2] / "clms" / "templates").glob("*.html"))
    posting = 0
    for path in templates:
        text = path.read_text("utf-8")
        for start in re.finditer(r"<form\b[^>]*>", text, re.S):
            if not re.search(r"method=[\"']post[\"']", start.group(0), re.I):
                continue
            posting += 1
            assert text[start.end() :].lstrip().startswith("{{ csrf_field() }}"), (
                f"{path.name}: {start.group(0)[:80]}"
            )
    assert posting >= 45


def test_openrosa_is_not_checked_it_authenticates_phones_itself(app, client):
    """A phone's POST carries no CSRF token: it reaches OpenRosa's own authentication (a
    challenge, or a refused device token), never the CSRF refusal."""
    headers = {"X-OpenRosa-Version": "1.0"}
    r = client.post("/submission", headers=headers, data={}, csrf=False)
    assert r.status_code == 401 and "WWW-Authenticate" in r.headers
    r = client.post("/key/not-a-token/submission", headers=headers, data={}, csrf=False)
    assert r.status_code == 403
    assert REFUSAL not in r.get_data(as_text=True)
