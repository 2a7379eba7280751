"""English and French: every message of the web application has its French translation, the
placeholders survive translation, and the pages follow the language the person chose."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest
from jinja2 import Environment
from sqlalchemy import select

from clms.db import session_scope
from clms.i18n import DEFAULT_LOCALE, LOCALES, TRANSLATIONS, catalogue
from clms.models import User
from tests.conftest import PASSWORD

ROOT = Path(__file__).resolve().parents[2]
CODE = ("clms", "alerts", "forms", "geo")
MARKERS = ("N_", "Msg", "gettext", "_")
PLACEHOLDER = re.compile(r"%\(\w+\)s|\{\w+(?:!r)?\}")


def template_messages() -> dict[str, str]:
    """Every English message of the templates (Jinja's own extractor), with where it is."""
    env = Environment(extensions=["jinja2.ext.i18n"], autoescape=True)
    found: dict[str, str] = {}
    for path in sorted((ROOT / "clms" / "templates").glob("*.html")):
        for line, _func, message in env.extract_translations(path.read_text("utf-8")):
            texts = message if isinstance(message, tuple) else (message,)
            for text in texts:
                if isinstance(text, str):
                    found.setdefault(text, f"{path.relative_to(ROOT)}:{line}")
    return found


def code_messages() -> dict[str, str]:
    """Every English message of the code: the first argument of ``N_``, ``Msg``, ``gettext`` and
    ``_`` when it is a literal, with where it is."""
    found: dict[str, str] = {}
    for package in CODE:
        for path in sorted((ROOT / package).rglob("*.py")):
            tree = ast.parse(path.read_text("utf-8"))
            for node in ast.walk(tree):
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Name)
                    and node.func.id in MARKERS
                    and node.args
                    and isinstance(node.args[0], ast.Constant)
                    and isinstance(node.args[0].value, str)
                ):
                    found.setdefault(node.args[0].value, f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def all_messages() -> dict[str, str]:
    return {**code_messages(), **template_messages()}


def test_the_extraction_finds_the_messages():
    """The extraction itself works: it finds messages of both kinds that we know are there."""
    messages = all_messages()
    assert "Next step" in messages  # a template's _()
    assert "closure review" in messages  # a state name, N_ in the vocabulary
    assert len(messages) > 500


def test_every_message_has_french():
    french = catalogue("fr")
    missing = sorted(
        f"{where}: {text!r}" for text, where in all_messages().items() if not french.get(text)
    )
    assert missing == [], f"{len(missing)} messages have no French:\n" + "\n".join(missing)


def test_placeholders_survive_translation():
    for path in sorted((TRANSLATIONS / "fr").glob("*.json")):
        for english, french in json.loads(path.read_text("utf-8")).items():
            assert sorted(PLACEHOLDER.findall(english)) == sorted(PLACEHOLDER.findall(french)), (
                f"{path.name}: {english!r} -> {french!r}"
            )


def test_no_message_is_translated_twice_differently():
    """A message in two files of ``fr/`` must say the same in both (the later would win)."""
    seen: dict[str, tuple[str, str]] = {}
    clashes = []
    for path in sorted((TRANSLATIONS / "fr").glob("*.json")):
        for english, french in json.loads(path.read_text("utf-8")).items():
            if english in seen and seen[english][1] != french:
                clashes.append(f"{english!r}: {seen[english][0]} and {path.name} differ")
            seen.setdefault(english, (path.name, french))
    assert clashes == []


def test_the_files_hold_only_used_messages():
    """Translations of messages no longer used are removed, so the catalogue stays honest."""
    used = set(all_messages())
    stale = sorted(english for english in catalogue("fr") if english not in used)
    assert stale == []


def test_locales():
    assert DEFAULT_LOCALE == "en" and set(LOCALES) == {"en", "fr"}


# pages, as people see them

STAFF_PAGES = ["/", "/alerts", "/cases", "/submissions", "/profiles", "/duplicates", "/kpis"]
ADMIN_PAGES = ["/forms", "/sources", "/services", "/users", "/users/new", "/profile"]


@pytest.mark.parametrize("path", STAFF_PAGES + ADMIN_PAGES)
def test_pages_in_french_show_no_english_heading(make_user, client, path):
    make_user("ada", role="admin")
    _login(client, "ada")
    english = client.get(path)
    assert english.status_code == 200, path
    french = client.get(path, headers={"Accept-Language": "fr-CI,fr;q=0.9"})
    html = french.get_data(as_text=True)
    assert '<html lang="fr">' in html
    # the navigation and the page's own first heading are in French
    assert ">Alertes<" in html and ">Cas<" in html
    heading = re.search(r"<h1[^>]*>(.*?)</h1>", html, re.S)
    english_heading = re.search(r"<h1[^>]*>(.*?)</h1>", english.get_data(as_text=True), re.S)
    assert heading and english_heading
    assert heading.group(1).strip() != english_heading.group(1).strip(), path


def test_the_language_switch_is_kept_for_the_person(make_user, client, app):
    make_user("ada", role="admin")
    _login(client, "ada")
    answer = client.post("/language", data={"locale": "fr", "next": "/cases"})
    assert answer.status_code == 303 and answer.headers["Location"].endswith("/cases")
    assert '<html lang="fr">' in client.get("/cases").get_data(as_text=True)
    with session_scope(app) as session:
        assert session.scalar(select(User.locale).where(User.username == "ada")) == "fr"
    # an unknown language changes nothing, and the next address must stay on this site
    client.post("/language", data={"locale": "xx", "next": "/cases"})
    assert '<html lang="fr">' in client.get("/cases").get_data(as_text=True)
    away = client.post("/language", data={"locale": "en", "next": "https://evil.example/"})
    assert "evil.example" not in away.headers["Location"]
    assert '<html lang="en">' in client.get("/cases").get_data(as_text=True)


def _login(client, username):
    answer = client.post("/login", data={"username": username, "password": PASSWORD})
    assert answer.status_code == 302, answer.get_data(as_text=True)
