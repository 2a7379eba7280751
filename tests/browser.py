"""A real browser for the end-to-end tests: the application served on a localhost port, and
Debian's chromium driven by Playwright.

Playwright's own browser downloads are not used (``playwright install`` is never run): the tests
launch ``/usr/bin/chromium`` (``./dev test`` installs Debian's ``chromium`` package). The flags keep
chromium from calling home: on a closed network its background requests would fail, and without
``--disable-background-networking`` it refuses connections.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path

import pytest
from playwright.sync_api import expect
from werkzeug.serving import WSGIRequestHandler, make_server

from tests.conftest import PASSWORD

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[1] / "docs" / "screenshots"

#: how long an ``expect(...)`` waits for the page to come true before it fails (Playwright's own
#: default is 5 s): the suite runs on every core at once (./dev test), so a page may take a few
#: seconds more to arrive than on an idle machine. Only a failing assertion waits this long.
expect.set_options(timeout=15_000)
DESKTOP = {"width": 1280, "height": 800}

#: the marks of a browser test module: ``pytestmark = BROWSER_MARKS``
BROWSER_MARKS = [
    pytest.mark.browser,
    pytest.mark.committing,  # the live server answers in threads of its own
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason=f"{CHROMIUM} is missing: install Debian's chromium package (./dev test does)",
    ),
]


TABLET = {"width": 800, "height": 1100}
PHONE = {"width": 390, "height": 844}  # a common phone (iPhone 12-15) in CSS pixels


class _QuietHandler(WSGIRequestHandler):
    """No access log on the test output (errors are still logged)."""

    def log_request(self, code="-", size="-") -> None:
        return


class LiveServer:
    """``app`` served for real on ``127.0.0.1`` at a free port, in a thread, until closed.

    The server is threaded like a production one: chromium asks for the stylesheet while the
    page is still arriving.
    """

    def __init__(self, app):
        self._server = make_server(
            "127.0.0.1", 0, app, threaded=True, request_handler=_QuietHandler
        )
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="clms-live-server", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


def sign_in(page, base_url: str, username: str, password: str = PASSWORD) -> None:
    """Sign in on the login page as a person does: type the name and password, press the button."""
    page.goto(f"{base_url}/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page).not_to_have_url(re.compile(r"/login"))


def screenshot(page, name: str) -> Path:
    """A full-page screenshot into ``docs/screenshots/<name>.png``, replacing the last run's."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True, animations="disabled", caret="hide")
    return path


def overflows_horizontally(page) -> bool:
    """Whether the page is wider than the window (a horizontal scroll bar)."""
    return page.evaluate("document.documentElement.scrollWidth > window.innerWidth")


def expect_flash(page, text: str) -> None:
    """Wait for the page after an action to say ``text`` in its messages at the top."""
    expect(page.locator("p.flash", has_text=text).first).to_be_visible()
