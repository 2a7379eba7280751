"""Every paged list of the web pages, asked for a page past its last, shows its last page with
its true number (issue 17: "Page 999 of 25" over an empty table)."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from clms.paging import Page, Paging

#: every paged list of the web pages: (path, who reads it)
PAGED_ROUTES = {
    "alerts_views": [("/alerts", "ola")],
    "cases_views": [("/cases", "ola")],
    "duplicates_views": [("/duplicates", "ola")],
    "referrals_views": [("/referrals", "pat")],
    "users_views": [("/users", "ada")],
    "notifications_views": [("/notifications", "ola")],
    "submissions_views": [("/submissions", "ada"), ("/review", "ada")],
}


def test_the_table_names_every_paged_web_list():
    """A new paged page must join :data:`PAGED_ROUTES` (counted by the pages reading a numbered
    ``?page=``)."""
    import importlib
    import inspect
    import pkgutil

    import clms.web

    reading = {}
    for info in pkgutil.iter_modules(clms.web.__path__):
        module = importlib.import_module(f"clms.web.{info.name}")
        names = re.findall(r"\b([A-Z_]+_PAGING)\.read\(", inspect.getsource(module))
        # numbered pages only: a keyset page (the audit log) has no number to be past
        count = sum(isinstance(getattr(module, name), Paging) for name in names)
        if count:
            reading[info.name] = count
    # the duplicates page reads its page once, in the helper its routes share
    assert reading == {name: len(routes) for name, routes in PAGED_ROUTES.items()}


@pytest.fixture
def one_row_each(app, places, make_user):
    """One row in every paged list, for the people who read them."""
    from clms.db import session_scope
    from clms.models import Notice, User
    from tests import builders as b

    make_user("ola", "officer", areas=["CI-D1"])
    make_user("ada", "admin")
    make_user("pat", "provider")
    with session_scope(app) as s:
        home = b.household(s, "V1")
        kid = b.child(s, home, "Aya Traoré", uid="CH-PAGED")
        b.child(s, b.household(s, "V1"), "Aya Traore", uid="CH-PAGED2")
        b.visit(s, home, b.NOW, [(kid, "hazardous")], age=11)
        b.submission(s, status="review", review_reasons=[])
        alert = b.alert(s, kid)
        case = b.case(s, kid, officer="ola")
        b.referral(s, case, "TEST-PROVIDER")
        ola = s.scalar(select(User.id).where(User.username == "ola"))
        s.add(Notice(user_id=ola, kind="alert_assigned", subject="alert", subject_id=alert.id))


@pytest.mark.parametrize(
    ("path", "username"),
    [route for routes in PAGED_ROUTES.values() for route in routes],
)
def test_a_page_past_the_last_is_the_last(app, client, one_row_each, path, username):
    """``?page=999`` of a one-page list shows that page, numbered 1 of 1: never "Page 999 of 1"
    over an empty table."""
    from flask import template_rendered

    from tests.conftest import PASSWORD

    answer = client.post("/login", data={"username": username, "password": PASSWORD})
    assert answer.status_code == 302
    seen = []

    def remember(sender, template, context, **extra):
        seen.append(context)

    with template_rendered.connected_to(remember, app):
        answer = client.get(f"{path}?page=999")
    page = answer.get_data(as_text=True)
    assert answer.status_code == 200, page[:600]
    text = re.sub(r"<[^>]*>", " ", page)  # the text read (links may keep it)
    assert not re.search(r"(?<![\w-])999(?![\w-])", text)  # a number of its own, not HH-22999
    context = seen[0]
    if isinstance(context["page"], Page):
        shown = context["page"]
    else:  # the provider's referrals
        shown = Page(context["rows"], context["total"], context["page"], context["pages"], 50)
    assert (shown.page, shown.pages, shown.total) == (1, 1, len(shown.rows))
    assert shown.rows  # the last page's rows, not an empty table
