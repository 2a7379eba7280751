"""User and phone administration in a real browser: an administrator adds a monitor, issues a
device token, and the QR code on the screen, read by a real QR decoder from a screenshot,
configures a working OpenRosa server URL; the monitor changes their language on their profile.
At desktop width and on a phone, in English and French. The screenshots go to a temporary folder
(``CLMS_SCREENSHOTS`` to keep them elsewhere), not into the repository."""

from __future__ import annotations

import io
import os
import re
import tempfile
from pathlib import Path

import pytest
import requests
import zxingcpp
from PIL import Image
from playwright.sync_api import expect

from clms.auth.collect import settings_of_payload
from tests.browser import (
    BROWSER_MARKS,
    DESKTOP,
    PHONE,
    LiveServer,
    expect_flash,
    overflows_horizontally,
    sign_in,
)

pytestmark = BROWSER_MARKS

SHOTS = Path(os.environ.get("CLMS_SCREENSHOTS") or tempfile.mkdtemp(prefix="clms-users-"))


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True, animations="disabled")


@pytest.fixture
def live(app, places, make_user):
    make_user("ada", "admin")
    server = LiveServer(app)
    yield server
    server.close()


def _page(browser, base_url, username, viewport, password=None):
    context = browser.new_context(viewport=viewport, locale="en-GB")
    context.set_default_timeout(10_000)
    page = context.new_page()
    if password:
        sign_in(page, base_url, username, password)
    else:
        sign_in(page, base_url, username)
    return context, page


def test_an_admin_sets_up_a_monitor_and_her_phone_by_qr_code(browser, live):
    context, page = _page(browser, live.url, "ada", DESKTOP)
    page.locator("header summary", has_text="Administration").click()  # its drop-down
    page.get_by_role("link", name="Users").click()
    page.get_by_role("link", name="Add a user").click()
    page.get_by_label("Username").fill("fatou")
    page.get_by_label("Full name").fill("Fatou Koné")
    page.get_by_label("Role").select_option("monitor")
    page.get_by_label("Language").last.select_option("en")
    page.get_by_label("Areas and villages").fill("CI-D1, NOPE")
    page.get_by_role("button", name="Add the user").click()
    # the refusal is next to the field, and what was typed is still there
    expect(page.locator("#f-areas-error")).to_contain_text("Unknown area or village code 'NOPE'")
    expect(page.get_by_label("Full name")).to_have_value("Fatou Koné")
    page.get_by_label("Areas and villages").fill("CI-D1, V3")
    page.get_by_role("button", name="Add the user").click()
    password = page.locator("#secret").inner_text()
    assert len(password) >= 10
    shot(page, "user-new-password")
    page.get_by_role("link", name="Done: back to fatou").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Fatou Koné")
    assert password not in page.content()

    page.get_by_label("Which phone").fill("Itel A70")
    page.get_by_role("button", name="Issue a device token").click()
    figure = page.locator(".collect-qr figure")
    expect(figure).to_be_visible()
    shot(page, "user-token-desktop")
    # the code on the screen, as a phone's camera would read it
    image = Image.open(io.BytesIO(figure.screenshot())).convert("L")
    [code] = zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)
    settings = settings_of_payload(code.text)
    url = settings["general"]["server_url"]
    assert re.fullmatch(re.escape(live.url) + r"/key/[\w-]{43}", url)
    assert settings["project"]["name"] == "CLMS · Fatou Koné"
    # ... and Collect, configured with it, gets its forms list
    listed = requests.get(f"{url}/formList", headers={"X-OpenRosa-Version": "1.0"}, timeout=10)
    assert listed.status_code == 200 and "<xforms" in listed.text
    token = url.rsplit("/", 1)[1]

    # back on the user's page: the token is listed, never shown again
    page.get_by_role("link", name="Done: back to fatou").click()
    expect(page.get_by_role("cell", name="Itel A70")).to_be_visible()
    assert token not in page.content() and "segno" not in page.content()
    page.reload()
    assert token not in page.content()
    shot(page, "user-detail-desktop")

    # revoking the phone's tokens is confirmed first, and then the phone is refused
    page.get_by_text("Revoke tokens").click()
    page.on("dialog", lambda dialog: dialog.accept())  # "Revoke these tokens of fatou for good?"
    page.locator("#f-revoke_reason").fill("phone lost")
    page.get_by_role("button", name="Revoke the tokens").click()
    expect(page.locator("#f-revoke_confirm")).to_contain_text("Tick the box")
    page.get_by_label(re.compile("I understand: a revoked token")).check()
    page.get_by_role("button", name="Revoke the tokens").click()
    expect_flash(page, "Revoked 1 token of fatou.")
    refused = requests.get(f"{url}/formList", headers={"X-OpenRosa-Version": "1.0"}, timeout=10)
    assert refused.status_code in (401, 403)
    context.close()

    # the monitor signs in with the password she was given and switches to French
    context, page = _page(browser, live.url, "fatou", PHONE, password)
    # on a phone: the menu, then her own (her name: her profile, signing out)
    page.locator("header details.menu > summary").click()
    page.locator("header summary", has_text="Fatou Koné").click()
    page.get_by_role("link", name="My profile").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("My profile")
    page.get_by_label("The pages are in").select_option("fr")
    page.get_by_role("button", name="Save the language").click()
    expect_flash(page, "Votre langue est enregistrée.")
    expect(page.get_by_role("heading", level=1)).to_have_text("Mon profil")
    assert not overflows_horizontally(page)
    shot(page, "profile-fr-phone")
    context.close()


@pytest.mark.parametrize("viewport, name", [(DESKTOP, "desktop"), (PHONE, "phone")])
@pytest.mark.parametrize("locale", ["en", "fr"])
def test_the_users_pages_fit_the_screen_in_both_languages(
    browser, live, make_user, viewport, name, locale
):
    make_user("awa", "monitor", areas=["CI-D1"])
    make_user("brandy", "brand", brand="BRAND-A")
    context, page = _page(browser, live.url, "ada", viewport)
    if locale == "fr":
        page.select_option("#locale", "fr")
        page.locator("form.language button").click()
    heading = {"en": "Users", "fr": "Utilisateurs"}[locale]
    page.goto(f"{live.url}/users")
    expect(page.get_by_role("heading", level=1)).to_have_text(heading)
    shot(page, f"users-{locale}-{name}")
    assert not overflows_horizontally(page)
    page.locator("a", has_text="awa").first.click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("awa")
    assert not overflows_horizontally(page)
    shot(page, f"user-{locale}-{name}")
    page.locator("form[action$='/tokens'] button").click()
    expect(page.locator(".collect-qr svg")).to_be_visible()
    assert not overflows_horizontally(page)
    box = page.locator(".collect-qr svg").bounding_box()
    assert box["width"] >= 250  # big enough to scan from another phone's camera
    shot(page, f"user-token-{locale}-{name}")
    page.goto(f"{live.url}/users/new")
    assert not overflows_horizontally(page)
    shot(page, f"user-new-{locale}-{name}")
    page.goto(f"{live.url}/profile")
    assert not overflows_horizontally(page)
    shot(page, f"profile-{locale}-{name}")
    context.close()
