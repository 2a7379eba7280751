"""Slips that cannot be undone, in a real browser: a destructive button asks first, with a
question naming the thing affected; answering no changes nothing, answering yes does it. It is
styled apart from the main action. English and French, desktop and phone."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect
from sqlalchemy import func, select

from clms.db import session_scope
from clms.models import SupplierLink
from clms.supply.operations import SupplierInput, link, save_supplier
from tests.browser import BROWSER_MARKS, DESKTOP, PHONE, LiveServer, expect_flash, sign_in

pytestmark = BROWSER_MARKS


@pytest.fixture
def live(app, places, make_user):
    make_user("ada", "admin")
    with session_scope(app) as s:
        save_supplier(s, SupplierInput(code="EXP-1", name="Exporter One", tier=1), new=True)
        save_supplier(s, SupplierInput(code="COOP-7", name="Coop Seven", tier=2), new=True)
        link(s, "EXP-1", "COOP-7")
    server = LiveServer(app)
    yield server
    server.close()


def links(app) -> int:
    with session_scope(app) as s:
        return s.scalar(select(func.count()).select_from(SupplierLink))


@pytest.mark.parametrize(
    ("locale", "viewport", "button", "words", "done"),
    [
        ("en-GB", DESKTOP, "Remove link", "no longer buys from", "no longer buys from"),
        ("fr-FR", PHONE, "Retirer le lien", "n'achète plus à", "n'achète plus"),
    ],
)
def test_removing_a_supplier_link_asks_first_and_no_changes_nothing(
    browser, live, app, locale, viewport, button, words, done
):
    context = browser.new_context(viewport=viewport, locale="en-GB")
    context.set_default_timeout(10_000)
    page = context.new_page()
    sign_in(page, live.url, "ada")
    if locale.startswith("fr"):
        page.locator("#locale").select_option("fr")  # the person's language, from the header
        page.locator("form.language button").click()
        expect(page.locator("html")).to_have_attribute("lang", "fr")
    page.goto(f"{live.url}/supply")
    remove = page.get_by_role("button", name="Remove the link EXP-1 -> COOP-7") \
        if locale == "en-GB" else page.locator("button.danger", has_text=button)
    expect(remove).to_have_text(button)

    # styled as dangerous, unlike the main action of the page
    style = "b => [getComputedStyle(b).backgroundColor, getComputedStyle(b).color]"
    main = page.locator("form[action$='/supply/links'] button[type=submit]")
    assert remove.evaluate(style) != main.evaluate(style)

    # the question names both ends of the link; "no" sends nothing
    asked = []
    page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.dismiss()))
    remove.click()
    page.wait_for_timeout(300)
    assert asked and "EXP-1" in asked[0] and "COOP-7" in asked[0] and words in asked[0]
    assert links(app) == 1
    expect(remove).to_be_visible()

    # "yes" removes it
    page.once("dialog", lambda dialog: dialog.accept())
    remove.click()
    expect_flash(page, done)
    assert links(app) == 0
    context.close()
