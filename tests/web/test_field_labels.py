"""Errors that help: the summary at the top of a form names each wrong answer by its label
("Due date: cannot be in the past"), in the reader's language, never by the raw field name."""

from __future__ import annotations

import re
from html import unescape
from pathlib import Path

from clms.web.field_labels import FIELD_LABELS
from tests.conftest import PASSWORD

ROOT = Path(__file__).resolve().parents[2]
FIELD_MACRO = re.compile(r"f\.(?:input|select|textarea|radios|checkboxes)\(\s*'(\w+)'")
# the fields an operation names when it refuses an answer
RAISED = re.compile(r"""errors\[["'](\w+)["']\]\s*=|field=["'](\w+)["']""")


def test_every_field_has_a_label():
    names = set()
    for path in (ROOT / "clms" / "templates").glob("*.html"):
        names |= set(FIELD_MACRO.findall(path.read_text(encoding="utf-8")))
    for path in (ROOT / "clms").rglob("*.py"):
        for a, b in RAISED.findall(path.read_text(encoding="utf-8")):
            names.add(a or b)
    assert len(names) > 50
    assert sorted(names - set(FIELD_LABELS)) == []


def summary(page: str) -> list[str]:
    box = re.search(r'<div class="error-summary".*?</div>', page, re.S)
    assert box, "no error summary on the page"
    return [unescape(re.sub(r"<[^>]+>", "", li)).strip()
            for li in re.findall(r"<li>(.*?)</li>", box.group(0), re.S)]


def test_the_summary_names_the_field_by_its_label(app):
    with app.test_request_context("/"):
        macro = app.jinja_env.get_template("_forms.html").module.error_summary
        html = str(macro({"due_on": "cannot be in the past", "to_country": "is unknown"}))
    assert summary(html) == ["Due date: cannot be in the past", "Country: is unknown"]
    assert 'href="#f-due_on"' in html  # the link still leads to the field


def test_a_refused_form_names_its_fields_in_english_and_french(client, places, make_user):
    make_user("ada", "admin")
    client.post("/login", data={"username": "ada", "password": PASSWORD})
    page = client.post("/users/new", data={"username": "", "role": "", "email": "x"})
    items = summary(page.get_data(as_text=True))
    assert items and all(":" in item for item in items)
    assert any(item.startswith("Username: ") for item in items), items
    assert not any(re.search(r"\b[a-z]+_[a-z]+\b", item.split(":")[0]) for item in items)
    client.post("/language", data={"locale": "fr", "next": "/users/new"})
    page = client.post("/users/new", data={"username": "", "role": "", "email": "x"})
    items = summary(page.get_data(as_text=True))
    assert any(item.startswith("Nom d'utilisateur") for item in items), items
