"""The languages of the web application: gettext catalogues read with Babel.

Every message of the templates and the code has its French translation (in every plural form),
the placeholders survive translation, no catalogue keeps a message no longer used, the plural
rules are CLDR's, a third language's skeleton loads and falls back to English, dates and numbers
follow the reader's language, and the pages follow the language the person chose."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.plurals import get_plural
from babel.messages.pofile import read_po
from sqlalchemy import select

from clms.db import session_scope
from clms.i18n import (
    DEFAULT_LOCALE,
    TRANSLATIONS,
    NMsg,
    available_locales,
    catalogue_path,
    offered_locales,
    read_catalogue,
    translations,
    translator,
)
from clms.models import User
from tests.conftest import PASSWORD

ROOT = Path(__file__).resolve().parents[2]
PLACEHOLDER = re.compile(r"%\(\w+\)[sd]|\{\w+(?:!r)?\}")
NNBSP = "\u202f"  # CLDR's French group separator, a narrow no-break space


def extracted() -> dict[str | tuple[str, str], str]:
    """Every message of the templates and the code as ``pybabel extract -F babel.cfg`` finds it
    (a plural message as its (singular, plural) pair), with where it is."""
    with (ROOT / "babel.cfg").open(encoding="utf-8") as f:
        method_map, options_map = parse_mapping_cfg(f)
    found: dict[str | tuple[str, str], str] = {}
    for filename, line, message, _comments, _context in extract_from_dir(
        str(ROOT), method_map, options_map
    ):
        if isinstance(message, tuple):
            message = tuple(message[:2])
        found.setdefault(message, f"{filename}:{line}")
    return found


@pytest.fixture(scope="module")
def messages():
    return extracted()


def _entries(locale_or_path) -> dict:
    path = locale_or_path if isinstance(locale_or_path, Path) else catalogue_path(locale_or_path)
    with path.open("rb") as f:
        catalog = read_po(f)
    return {m.id: m for m in catalog if m.id}


def test_the_extraction_finds_the_messages(messages):
    """The extraction itself works: it finds messages of every kind that we know are there."""
    assert "Next step" in messages  # a template's _()
    assert "closure review" in messages  # a state name, N_ in the vocabulary
    assert "Unknown language {locale!r}." in messages  # Msg in the code
    assert ("%(num)s case", "%(num)s cases") in messages  # a template's ngettext
    assert (  # NMsg in the code
        "{n} referral still waiting for an answer or under way",
        "{n} referrals still waiting for an answer or under way",
    ) in messages
    assert len(messages) > 1500


def test_the_template_is_up_to_date(messages):
    """``messages.pot`` holds exactly the messages of the code and templates (translators and
    Weblate start from it): rebuild it with ``pybabel extract`` (README) when this fails."""
    template = set(_entries(TRANSLATIONS / "messages.pot"))
    assert sorted(map(str, set(messages) - template)) == []
    assert sorted(map(str, template - set(messages))) == []


def test_every_message_has_french(messages):
    french = _entries("fr")
    missing = []
    for text, where in messages.items():
        entry = french.get(text)
        forms = entry.string if entry and isinstance(entry.string, tuple) else (
            (entry.string,) if entry else ("",))  # fmt: skip
        if not all(forms) or (entry and entry.fuzzy):
            missing.append(f"{where}: {text!r}")
    assert missing == [], f"{len(missing)} messages have no French:\n" + "\n".join(sorted(missing))


def test_placeholders_survive_translation():
    for locale in available_locales()[1:]:
        for text, entry in _entries(locale).items():
            if isinstance(text, tuple):
                pairs = [(text[0] if i == 0 else text[1], form)
                         for i, form in enumerate(entry.string)]  # fmt: skip
            else:
                pairs = [(text, entry.string)]
            for english, translated in pairs:
                if translated:
                    where = f"{locale}: {english!r} -> {translated!r}"
                    assert sorted(PLACEHOLDER.findall(english)) == sorted(
                        PLACEHOLDER.findall(translated)), where  # fmt: skip


def test_the_catalogues_hold_only_used_messages(messages):
    """Translations of messages no longer used are removed (``pybabel update`` keeps them as
    obsolete ``#~`` entries: none here), so the catalogue stays honest; no guess left fuzzy."""
    for locale in available_locales()[1:]:
        text = catalogue_path(locale).read_text("utf-8")
        assert "\n#~ " not in text, locale
        entries = _entries(locale)
        assert sorted(map(str, set(entries) - set(messages))) == [], locale
        assert [t for t, e in entries.items() if e.fuzzy] == [], locale


def test_each_catalogue_states_the_cldr_plural_rule():
    """The header's Plural-Forms is CLDR's for the language, as Babel writes it."""
    assert set(available_locales()) >= {"en", "fr", "th"}
    for locale in available_locales()[1:]:
        catalog = read_catalogue(locale)
        assert catalog.plural_forms == get_plural(locale).plural_forms, locale
        header = catalogue_path(locale).read_text("utf-8").split("\n\n")[0]
        assert f'"Plural-Forms: {get_plural(locale).plural_forms}\\n"' in header, locale


def test_french_plurals_follow_cldr_zero_and_one_are_singular():
    french = translator("fr")
    forms = [french.ngettext("%(num)s case", "%(num)s cases", n) % {"num": n} for n in (0, 1, 2)]
    assert forms == ["0 cas", "1 cas", "2 cas"]
    alerts = [french.ngettext("%(num)s alert", "%(num)s alerts", n) for n in (0, 1, 2, 5)]
    assert alerts == ["%(num)s alerte", "%(num)s alerte", "%(num)s alertes", "%(num)s alertes"]
    # English, the source: only 1 is singular
    english = translator("en")
    assert [english.ngettext("%(num)s alert", "%(num)s alerts", n) for n in (0, 1, 2)] == [
        "%(num)s alerts", "%(num)s alert", "%(num)s alerts"]  # fmt: skip


def test_a_message_of_the_code_with_a_count_follows_the_language_rule():
    waiting = [
        NMsg("{n} referral still waiting for an answer or under way",
             "{n} referrals still waiting for an answer or under way", n=n)
        for n in (0, 1, 2)
    ]  # fmt: skip
    assert [m.render(translator("fr")) for m in waiting] == [
        "0 orientation encore en attente de réponse ou en cours",
        "1 orientation encore en attente de réponse ou en cours",
        "2 orientations encore en attente de réponse ou en cours",
    ]
    assert str(waiting[0]) == "0 referrals still waiting for an answer or under way"
    assert str(waiting[1]) == "1 referral still waiting for an answer or under way"
    # a plain function of English text (no plural rule) gets English's
    table = {"{n} referrals still waiting for an answer or under way": "{n} pending"}
    assert waiting[2].render(lambda s: table.get(s, s)) == "2 pending"
    assert waiting[1].render(lambda s: table.get(s, s)) == str(waiting[1])


def test_the_thai_skeleton_loads_with_one_form_and_falls_back_to_english(messages):
    """Thai, which the supply chains need next, has no plural (CLDR: one form). Its catalogue is
    ``pybabel init``'s: every message, none translated yet, so each shows in English."""
    entries = _entries("th")
    assert set(entries) == set(messages)
    assert all(not any(e.string) if isinstance(e.string, tuple) else not e.string
               for e in entries.values())  # fmt: skip
    thai = translations("th")
    assert thai.plural(0) == thai.plural(1) == thai.plural(2) == thai.plural(1000000) == 0
    assert read_catalogue("th").num_plurals == 1
    assert translator("th")("Next step") == "Next step"
    assert translator("th").ngettext("%(num)s case", "%(num)s cases", 2) == "%(num)s cases"
    assert translator("th").ngettext("%(num)s case", "%(num)s cases", 1) == "%(num)s case"


def test_languages_are_offered_from_the_catalogues_and_the_setting():
    assert DEFAULT_LOCALE == "en"
    assert offered_locales() == ("en", "fr")  # the default setting
    assert offered_locales("en,fr,th") == ("en", "fr", "th")
    assert offered_locales("fr,xx") == ("fr", "en")  # no catalogue, not offered; English always


def test_a_language_is_offered_only_when_enabled(make_user, client, app):
    make_user("ada", role="admin")
    _login(client, "ada")
    thai = {"Accept-Language": "th-TH,th;q=0.9"}
    html = client.get("/cases", headers=thai).get_data(as_text=True)
    assert '<html lang="en">' in html and 'value="th"' not in html
    assert client.post("/language", data={"locale": "th", "next": "/cases"}).status_code == 303
    assert '<html lang="en">' in client.get("/cases").get_data(as_text=True)
    refused = client.post("/profile/language", data={"locale": "th"})
    assert refused.status_code == 400 and "Unknown language" in refused.get_data(as_text=True)

    app.config["LANGUAGES"] = "en,fr,th"
    html = client.get("/cases", headers=thai).get_data(as_text=True)
    assert '<html lang="th">' in html
    assert 'value="th" lang="th"' in html and "ไทย" in html  # the switch names it in Thai
    assert "Cases" in html  # untranslated yet: English
    assert client.post("/profile/language", data={"locale": "th"}).status_code == 302
    with session_scope(app) as session:
        assert session.scalar(select(User.locale).where(User.username == "ada")) == "th"


# dates and numbers


def test_the_filters_write_dates_and_numbers_in_the_readers_language(app):
    from clms.locale import day, number, when

    june = dt.datetime(2026, 6, 8, 14, 5, 9)
    assert day(june.date(), "fr") == "8 juin 2026"
    assert day(june.date(), "en") == "Jun 8, 2026"
    assert when(june, "fr") == "8 juin 2026, 14:05 UTC"
    assert when(june, "en") == "Jun 8, 2026, 14:05 UTC"
    assert when(june.replace(tzinfo=dt.UTC), "fr", seconds=True) == "8 juin 2026, 14:05:09 UTC"
    assert number(12345, "fr") == f"12{NNBSP}345"
    assert number(12345, "en") == "12,345"
    assert day(None, "fr") == when(None, "fr") == "—"
    with app.test_request_context(headers={"Accept-Language": "fr"}):
        assert day(june) == "8 juin 2026"  # the request's language


def test_a_message_of_the_code_shows_its_date_in_the_readers_language(app):
    from clms.i18n import Msg
    from clms.locale import localize

    message = Msg("a visit on {day} found the child in child labour", day=dt.date(2026, 6, 8))
    with app.test_request_context(headers={"Accept-Language": "fr"}):
        assert "8 juin 2026" in localize(message)
    with app.test_request_context(headers={"Accept-Language": "en"}):
        assert localize(message) == "a visit on Jun 8, 2026 found the child in child labour"


def test_the_templates_write_dates_only_through_the_filters():
    """A date a person reads goes through ``|day``/``|when``: no ``strftime`` in a template, and
    ISO dates only in machine attributes (``<time datetime>``, ``<input type=date value>``)."""
    wrong = []
    for path in sorted((ROOT / "clms" / "templates").rglob("*.html")):
        for number, line in enumerate(path.read_text("utf-8").splitlines(), 1):
            if "strftime(" in line:
                wrong.append(f"{path.name}:{number}: strftime")
            # what is left once the machine attributes are taken out
            shown = re.sub(r'(?:datetime|value)="[^"]*"', "", line)
            if ".isoformat()" in shown:
                wrong.append(f"{path.name}:{number}: isoformat shown")
    assert wrong == []


def test_a_count_in_a_template_is_written_in_the_readers_language(app):
    template = app.jinja_env.from_string(
        '{{ ngettext("%(num)s submission", "%(num)s submissions", n) }}'
    )
    with app.test_request_context(headers={"Accept-Language": "fr"}):
        assert template.render(n=12345) == f"12{NNBSP}345 soumissions"
        assert template.render(n=0) == "0 soumission"
    with app.test_request_context(headers={"Accept-Language": "en"}):
        assert template.render(n=12345) == "12,345 submissions"
        # a message written with Jinja's usual %(num)d (a template merged later) still renders
        usual = app.jinja_env.from_string('{{ ngettext("%(num)d goat", "%(num)d goats", n) }}')
        assert usual.render(n=12345) == "12,345 goats"


def test_a_french_page_shows_french_dates(make_user, client):
    """The audit log, in French: each entry's time as "7 déc. 2026, 12:58:03 UTC"."""
    from clms.locale import day
    from clms.models.base import utcnow

    make_user("ada", role="admin")
    _login(client, "ada")
    html = client.get("/audit", headers={"Accept-Language": "fr"}).get_data(as_text=True)
    today = day(utcnow().date(), "fr")
    assert re.search(re.escape(today) + r", \d\d:\d\d:\d\d UTC", html), today
    assert utcnow().date().isoformat() not in re.sub(r'(?:datetime|value)="[^"]*"', "", html)


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


def test_a_french_page_counts_zero_in_the_singular(make_user, client):
    """CLDR's French rule on a real page: no alert is "0 alerte", as 1 is (English: "0 alerts")."""
    make_user("ada", role="admin")
    _login(client, "ada")
    english = client.get("/alerts", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert re.search(r">\s*0 alerts\b", english)
    french = client.get("/alerts", headers={"Accept-Language": "fr"}).get_data(as_text=True)
    assert re.search(r">\s*0 alerte\b", french) and "0 alertes" not in french


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


#: the names the XLSX downloads give their sheets (clms/web/kpis_views.py, cases_views.py,
#: hotspots_views.py)
SHEET_NAMES = ("Indicators", "Monitor quality", "Child visits", "Cases", "Hotspots")


def test_every_sheet_name_fits_a_workbook_in_every_language():
    """Excel takes at most 31 characters for a sheet's name, none of ``[]:*?/\\``: a longer one
    would be cut (the French "Qualité du travail des moniteurs" lost its last letter:
    it is now "Qualité des moniteurs")."""
    sources = "\n".join(
        (ROOT / path).read_text(encoding="utf-8")
        for path in ("clms/web/kpis_views.py", "clms/web/cases_views.py",
                     "clms/web/hotspots_views.py")
    )  # fmt: skip
    beside = re.findall(r'gettext\("([^"]+)"\),\s*(?:header|\["monitor")', sources)
    last = re.findall(r'gettext\("([^"]+)"\)\)', sources)  # the last argument of a call
    named = set(beside) | set(last)
    assert named <= set(SHEET_NAMES), named - set(SHEET_NAMES)
    for locale in available_locales():
        say = translator(locale)
        for name in SHEET_NAMES:
            shown = say(name)
            assert len(shown) <= 31 and not re.search(r"[\[\]:*?/\\]", shown), (locale, shown)
