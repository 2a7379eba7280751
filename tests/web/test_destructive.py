"""Actions that cannot be undone: every form that posts to one of ``clms.policy.DESTRUCTIVE``
says what it does, is styled as dangerous and asks a question naming the thing affected
(``danger_button`` of ``_forms.html``; ``clms/static/confirm.js`` asks it). The templates are
read as written, so a new destructive form is held to this the day it is added; the browser test
(tests/web/test_browser_slips.py) shows that not confirming changes nothing."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from clms.policy import DESTRUCTIVE

TEMPLATES = Path(__file__).resolve().parents[2] / "clms" / "templates"
STATIC = TEMPLATES.parent / "static"
FORM = re.compile(r"<form\b(?P<head>[^>]*)>(?P<body>.*?)</form>", re.S | re.I)
ENDPOINT = re.compile(r"""url_for\(\s*['"]([\w.]+)['"]""")


def rendered_by() -> dict[str, set[str]]:
    """template -> the web endpoints (view functions) that render it: a form without an action
    posts back to the page's own address, so to one of these."""
    found: dict[str, set[str]] = {}
    for path in (TEMPLATES.parent / "web").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef):
                for inner in ast.walk(node):
                    if isinstance(inner, ast.Constant) and str(inner.value).endswith(".html"):
                        found.setdefault(inner.value, set()).add(f"web.{node.name}")
    return found


def post_forms():
    """(template, endpoint, form source) of every form that posts; a form without an action
    once for each endpoint that renders its template."""
    renderers = rendered_by()
    for path in sorted(TEMPLATES.glob("*.html")):
        for m in FORM.finditer(path.read_text(encoding="utf-8")):
            if 'method="post"' not in m.group("head").lower():
                continue
            action = re.search(r"""action="([^"]*)""", m.group("head"))
            found = ENDPOINT.search(action.group(1)) if action else None
            if found:
                yield path.name, found.group(1), m.group(0)
            else:
                for endpoint in sorted(renderers.get(path.name, {None})):
                    yield path.name, endpoint, m.group(0)


def danger_calls(source: str) -> list[str]:
    return re.findall(r"f\.danger_button\((.*?)\)\s*}}", source, re.S)


def test_every_post_form_is_traced_to_its_endpoint():
    # a form whose endpoint is unknown could post a destructive decision unseen by this test
    unknown = [(name, src[:80]) for name, endpoint, src in post_forms() if endpoint is None]
    assert unknown == []


def test_every_destructive_form_uses_the_danger_button():
    seen = set()
    wrong = []
    for name, endpoint, source in post_forms():
        if endpoint not in DESTRUCTIVE:
            continue
        selector = DESTRUCTIVE[endpoint]
        if selector:
            field, value = selector.split("=")
            hidden = re.search(rf'type="hidden" name="{field}" value="{value}"', source)
            if not hidden and f'name="{field}"' not in source and f"name='{field}'" not in source:
                continue  # another decision of the same endpoint (accepting a referral)
            if (
                not hidden
                and not re.search(rf'name="{field}"[^>]*value="{value}"', source)
                and not any(f'name="{field}", value="{value}"' in c for c in danger_calls(source))
            ):
                continue
        seen.add(endpoint)
        calls = danger_calls(source)
        if not calls:
            wrong.append((name, endpoint, "no danger_button"))
            continue
        if (
            selector
            and not hidden
            and not any(f'name="{field}", value="{value}"' in c for c in calls)
        ):
            wrong.append((name, endpoint, f"the {selector} button is not the danger button"))
        if selector:
            plain = re.search(rf'<button[^>]*name="{field}"[^>]*value="{value}"', source)
            if plain:
                wrong.append((name, endpoint, "a plain button does it"))
        for c in calls:
            # a label and a question, each translated; the question names something (a parameter)
            if not re.match(r'\s*_\("[^"]+"\)\s*,\s*_\("[^"]*%\(\w+\)s[^"]*"', c):
                wrong.append((name, endpoint, f"question without the thing named: {c[:90]}"))
    assert wrong == []
    assert seen == set(DESTRUCTIVE), (
        f"declared but not found in a template: {set(DESTRUCTIVE) - seen}"
    )


def test_no_other_button_is_styled_dangerous_or_asks():
    """The danger style means "cannot be undone": a form posting elsewhere does not borrow it."""
    wrong = [
        (name, endpoint)
        for name, endpoint, source in post_forms()
        if endpoint not in DESTRUCTIVE and ("danger_button" in source or 'class="danger"' in source)
    ]
    assert wrong == []


@pytest.mark.parametrize("label", ["Withdrawn", "Remove", "Dismiss", "Reject", "Deactivate"])
def test_buttons_say_what_they_do(label):
    """A bare word ("Withdrawn") does not say what a click does; each names its action."""
    bare = []
    for path in sorted(TEMPLATES.glob("*.html")):
        text = path.read_text(encoding="utf-8")
        if re.search(
            rf"""<button[^>]*>\s*{{{{\s*_\(["']{label}["']\)\s*}}}}\s*</button>""", text
        ) or re.search(rf"""danger_button\(_\(["']{label}["']\)""", text):
            bare.append(path.name)
    assert bare == []


def test_the_danger_button_renders_style_and_question(app):
    with app.test_request_context("/"):
        macro = app.jinja_env.get_template("_forms.html").module.danger_button
        html = str(
            macro(
                "Withdraw consent",
                'Withdraw the consent of "Ama K." for <R-12>?',
                name="decision",
                value="approve",
            )
        )
    assert 'class="danger"' in html
    assert 'data-confirm="Withdraw the consent of &#34;Ama K.&#34; for &lt;R-12&gt;?"' in html
    assert 'name="decision" value="approve"' in html
    assert ">Withdraw consent</button>" in html


def test_the_page_loads_the_question_and_the_danger_style(app, client):
    page = client.get("/login").get_data(as_text=True)
    assert re.search(r'<script src="/static/confirm\.js(\?[^"]*)?" defer></script>', page)
    script = (STATIC / "confirm.js").read_text()
    assert "data-confirm" in script and "window.confirm" in script and "preventDefault" in script
    css = (STATIC / "clms.css").read_text()
    rule = re.search(r"button\.danger\s*{([^}]*)}", css)
    main = re.search(r"\nbutton\s*{([^}]*)}", css)
    assert rule and main and rule.group(1) != main.group(1)
    # the script comes from this origin, which the Content-Security-Policy allows
    csp = client.get("/login").headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp
