"""Errors that help: a refused page (403, 404, 405, and what else the router refuses) is our
own styled page in the person's language, saying what happened, with a way back: the page they
came from, the list the address belongs to, their home page. A GET on an address only a form's
button posts to is such a page, on every route of the application, never Werkzeug's bare
"Method Not Allowed"."""

from __future__ import annotations

import re

import pytest
from werkzeug.exceptions import MethodNotAllowed, NotFound, TooManyRequests

from tests.conftest import PASSWORD


def login(client, username):
    answer = client.post("/login", data={"username": username, "password": PASSWORD})
    assert answer.status_code == 302


def post_only_paths(app) -> list[tuple[str, str]]:
    """(endpoint, an address) of every route that answers POST but not GET."""
    found = []
    for rule in app.url_map.iter_rules():
        if "POST" not in rule.methods or "GET" in rule.methods:
            continue
        values = {
            name: 1 if isinstance(conv, type(app.url_map.converters["int"](app.url_map))) else "x"
            for name, conv in rule._converters.items()
        }
        path = rule.build(values, append_unknown=False)[1]
        try:  # the same address may also be a page (/forms/publish is the form "publish")
            app.url_map.bind("localhost").match(path, "GET")
        except MethodNotAllowed:
            found.append((rule.endpoint, path))
        except NotFound:
            found.append((rule.endpoint, path))
    return found


def ways_back(page: str) -> list[tuple[str, str]]:
    nav = re.search(r'<nav [^>]*class="ways-back".*?</nav>', page, re.S)
    return re.findall(r'<a href="([^"]*)">([^<]*)</a>', nav.group(0)) if nav else []


def test_a_get_on_every_post_only_route_is_the_styled_page(app, client, places, make_user):
    make_user("ada", "admin")
    login(client, "ada")
    paths = post_only_paths(app)
    assert len(paths) > 40
    for endpoint, path in paths:
        answer = client.get(path)
        assert answer.status_code == 405, (endpoint, path, answer.status_code)
        assert "POST" in answer.headers.get("Allow", ""), (endpoint, path)
        if path.startswith("/api/"):
            assert answer.get_json()["code"] == "405.1", path
            continue
        if endpoint.startswith("openrosa"):
            assert b"<OpenRosaResponse" in answer.data, path
            continue
        page = answer.get_data(as_text=True)
        assert "Method Not Allowed" not in page, path
        assert "405: something is not right" in page, (endpoint, path)
        assert "a form&#39;s button sends to it" in page or "a form's button sends to it" in page
        assert ("/", "Home") in ways_back(page), (endpoint, path)


def test_the_405_page_speaks_french(app, client, places, make_user):
    make_user("ada", "admin")
    login(client, "ada")
    client.post("/language", data={"locale": "fr", "next": "/"})
    page = client.get("/logout").get_data(as_text=True)
    assert "Method Not Allowed" not in page
    assert "un bouton de formulaire" in page
    assert ("/", "Accueil") in ways_back(page)


def test_a_404_offers_the_list_the_previous_page_and_home(app, client, places, make_user):
    make_user("olga", "officer", areas=["CI-D1"])
    login(client, "olga")
    answer = client.get("/cases/999999", headers={"Referer": "http://localhost/alerts"})
    assert answer.status_code == 404
    assert ways_back(answer.get_data(as_text=True)) == [
        ("http://localhost/alerts", "Back to the previous page"),
        ("/cases", "Back to the list"),
        ("/", "Home"),
    ]
    # a page elsewhere is not offered as the way back
    answer = client.get("/cases/999999", headers={"Referer": "https://evil.example/cases"})
    assert [label for _, label in ways_back(answer.get_data(as_text=True))] == [
        "Back to the list",
        "Home",
    ]


def test_a_403_does_not_offer_a_list_the_role_may_not_open(app, client, places, make_user):
    make_user("mo", "monitor", areas=["CI-D1"])
    login(client, "mo")
    answer = client.get("/users/1")
    assert answer.status_code == 403
    # the monitor may not open /users either: only their home
    assert ways_back(answer.get_data(as_text=True)) == [("/", "Home")]


def test_signed_out_the_way_back_is_the_sign_in_page(client):
    answer = client.get("/no/such/page")
    assert answer.status_code == 404
    assert ways_back(answer.get_data(as_text=True)) == [("/login", "Sign in")]


@pytest.mark.parametrize(
    ("code", "words"),
    [(400, "could not be understood"), (429, "was refused (429)"), (500, "went wrong on our side")],
)
def test_other_refusals_are_the_styled_page_too(app, code, words):
    from werkzeug.exceptions import BadRequest, InternalServerError

    raised = {400: BadRequest(), 429: TooManyRequests(retry_after=30), 500: InternalServerError()}[
        code
    ]

    def boom():
        raise raised

    app.add_url_rule(f"/boom-{code}", f"boom_{code}", boom)
    answer = app.test_client().get(f"/boom-{code}")
    assert answer.status_code == code
    page = answer.get_data(as_text=True)
    assert f"{code}: something is not right" in page and words in page
    if code == 429:
        assert answer.headers["Retry-After"] == "30"
