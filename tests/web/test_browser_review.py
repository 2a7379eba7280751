"""Reviewing a held submission in a real browser: the queue, the questions and answers, a
correction, at desktop width and on a phone, in English and French (screenshots under
``$CLMS_REVIEW_SHOTS`` when set, else a temporary folder: not the README's)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.browser import BROWSER_MARKS, DESKTOP, PHONE, LiveServer, overflows_horizontally, sign_in
from tests.submissions import child, household_xml

pytestmark = BROWSER_MARKS


@pytest.fixture
def held(app, phone, version, process, make_user):
    make_user("olga", "officer", areas=["CI-D1"])
    phone.submit(household_xml(version, children=[
        child(work_activities="own_farm", work_hours_7d=12, hazards="sharp_tools lava"),
        child(child_name="Koffi Kouassi", sex="male", age=14),
    ]))  # fmt: skip
    process()
    live = LiveServer(app)
    yield live
    live.close()


def _shot(page, tmp_path: Path, name: str) -> None:
    folder = Path(os.environ.get("CLMS_REVIEW_SHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / f"{name}.png"), full_page=True, animations="disabled")


@pytest.mark.parametrize(("viewport", "locale"), [(DESKTOP, "en"), (PHONE, "fr")])
def test_an_officer_reviews_and_corrects_a_held_submission(
    browser, held, process, tmp_path, viewport, locale
):
    words = {
        "en": (
            "Submissions held for review",
            "Unknown choice (child 1)",
            "Child 1",
            "Correct an answer",
            "Corrected: the new version",
        ),
        "fr": (
            "Soumissions retenues pour vérification",
            "Choix inconnu (enfant 1)",
            "Enfant 1",
            "Corriger une réponse",
            "Corrigée : la nouvelle version",
        ),
    }[locale]
    context = browser.new_context(viewport=viewport, locale="en-GB")
    context.set_default_timeout(10_000)
    page = context.new_page()
    sign_in(page, held.url, "olga")
    if locale != "en":
        page.select_option("#locale", locale)
        page.get_by_role("button", name="Change").click()
    page.goto(f"{held.url}/review")
    expect(page.get_by_role("heading", level=1)).to_contain_text(words[0])
    expect(page.locator("table")).to_contain_text(words[1])
    _shot(page, tmp_path, f"review-queue-{locale}-{viewport['width']}")
    assert not overflows_horizontally(page)

    page.locator("table a").first.click()
    expect(page.locator("table.answers")).to_contain_text(words[2])
    _shot(page, tmp_path, f"review-submission-{locale}-{viewport['width']}")
    assert not overflows_horizontally(page)

    # the reason's "Correct" link opens the correction of that answer, with the form's choices
    page.locator("tr.held a").first.click()
    expect(page.locator("#correct")).to_have_attribute("open", "")
    page.locator("input[name=value_choices][value=sharp_tools]").check()
    page.locator("#c-reason").fill("Checked with the monitor")
    _shot(page, tmp_path, f"review-correct-{locale}-{viewport['width']}")
    page.locator("#correct form[method=post] button[type=submit]").click()
    expect(page.locator("p.flash").first).to_contain_text(words[4])
    assert process().parsed == 1
    page.reload()
    expect(page.locator("ol.history")).to_contain_text("olga")
    _shot(page, tmp_path, f"review-history-{locale}-{viewport['width']}")
    context.close()
