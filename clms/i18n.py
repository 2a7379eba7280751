"""The languages of the web application: gettext catalogues, the locale of a request, and
messages that wait to be translated.

The source language is English and the English text is the message id. Each other language has
one gettext catalogue, ``clms/translations/<locale>/LC_MESSAGES/messages.po`` (``messages.pot``
next to them is the template ``pybabel extract`` writes, see ``babel.cfg`` and the README's
*Adding a language*). A catalogue's header states its CLDR plural rule (French: ``nplurals=2;
plural=(n > 1)``, so 0 and 1 are singular; Thai: ``nplurals=1``), and plural messages are
``msgid``/``msgid_plural`` entries with one ``msgstr[i]`` per form. A message a catalogue does
not translate yet shows in English. A test extracts every message of the templates and the code
and fails for one with no French, so a French page never shows half a language.

The ``.po`` files are the only source: :func:`translations` compiles one in memory the first
time it is needed (Babel's ``write_mo``), and keeps it for the life of the process. There is no
``.mo`` to build, to commit or to forget, and a ``pip install`` only needs the ``.po`` files.

Two kinds of message:

- in templates, Jinja's i18n extension: ``{{ _("Open cases") }}``,
  ``{{ _("Case %(number)s", number=c.case_number) }}``,
  ``{{ ngettext("%(num)d case", "%(num)d cases", n) }}`` (placeholders ``%(name)s``);
- in code, :class:`Msg`, a message kept with its parameters and translated when it is shown,
  in the locale of whoever sees it (``{name}`` placeholders), and :func:`NMsg` for one whose
  wording depends on a count. ``str(msg)`` is the English text, which the JSON API and the logs
  use.

>>> m = Msg("This case is in {state}.", state=Msg("closure review"))
>>> str(m)
'This case is in closure review.'
>>> m.render(lambda s: {"This case is in {state}.": "Ce cas est en {state}.",
...                     "closure review": "revue de clôture"}.get(s, s))
'Ce cas est en revue de clôture.'
>>> waiting = NMsg("{n} referral still waiting for an answer or under way",
...                "{n} referrals still waiting for an answer or under way", n=0)
>>> str(waiting)
'0 referrals still waiting for an answer or under way'
>>> waiting.render(translator("fr"))
'0 orientation encore en attente de réponse ou en cours'

The locale of a request: the one chosen with the language switch (kept in the session), else the
signed-in person's saved choice, else the browser's ``Accept-Language``, else English
(:func:`choose_locale`; :mod:`clms.locale` applies it to the current request), among the
languages offered (:func:`offered_locales`: those with a catalogue, as the ``CLMS_LANGUAGES``
setting lists them).

Pure: nothing here knows of Flask or of a request; code translates a :class:`Msg` with the
``translate`` function its caller hands it (:func:`translator`).
"""

from __future__ import annotations

import copy
import datetime as dt
import io
from functools import cache
from pathlib import Path

from babel import Locale, UnknownLocaleError
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

DEFAULT_LOCALE = "en"  # the source language: the message ids are English
DEFAULT_LANGUAGES = "en,fr"  # the CLMS_LANGUAGES setting when it is not set
TRANSLATIONS = Path(__file__).parent / "translations"
DOMAIN = "messages"


def catalogue_path(locale: str) -> Path:
    """Where the gettext catalogue of ``locale`` is."""
    return TRANSLATIONS / locale / "LC_MESSAGES" / f"{DOMAIN}.po"


@cache
def available_locales() -> tuple[str, ...]:
    """English and every language that has a catalogue, in alphabetical order after English (read
    once per process: a new catalogue comes with a new release)."""
    found = sorted(
        p.name for p in TRANSLATIONS.iterdir() if p.is_dir() and catalogue_path(p.name).is_file()
    )
    return (DEFAULT_LOCALE, *(code for code in found if code != DEFAULT_LOCALE))


def offered_locales(setting: str | None = None) -> tuple[str, ...]:
    """The languages the pages are offered in: those of ``setting`` (``CLMS_LANGUAGES``, codes
    separated by commas, ``"en,fr"`` when empty) that have a catalogue, in the setting's order.
    English, the source language and the fallback, is always offered.

    >>> offered_locales("fr, en, xx")
    ('fr', 'en')
    >>> offered_locales("fr")
    ('fr', 'en')
    """
    available = set(available_locales())
    wanted = [c.strip() for c in (setting or DEFAULT_LANGUAGES).split(",") if c.strip()]
    offered = [c for c in dict.fromkeys(wanted) if c in available]
    if DEFAULT_LOCALE not in offered:
        offered.append(DEFAULT_LOCALE)
    return tuple(offered)


def locale_name(locale: str) -> str:
    """The name of a language in itself, as the language switch shows it ("Français")."""
    try:
        name = Locale.parse(locale).get_display_name(locale) or locale
    except (ValueError, UnknownLocaleError):
        return locale
    return name[:1].upper() + name[1:]


@cache
def read_catalogue(locale: str) -> Catalog:
    """The catalogue of ``locale`` as Babel reads it (an empty one for English)."""
    path = catalogue_path(locale)
    if locale == DEFAULT_LOCALE or not path.is_file():
        return Catalog(locale=DEFAULT_LOCALE, domain=DOMAIN)
    with path.open("rb") as f:
        return read_po(f, locale=locale, domain=DOMAIN)


@cache
def translations(locale: str) -> NullTranslations:
    """The gettext translations of ``locale``, compiled in memory from its ``.po`` (once per
    process); English and an unknown locale get none (the English text is shown)."""
    if locale == DEFAULT_LOCALE or not catalogue_path(locale).is_file():
        return NullTranslations()
    catalog = copy.deepcopy(read_catalogue(locale))
    for message in list(catalog):
        forms = message.string if isinstance(message.string, tuple) else (message.string,)
        if message.id and not all(forms):
            # not (fully) translated yet: left out, so the English shows by English's rule (Babel
            # would fill a missing plural form with the singular)
            del catalog[message.id]
    buffer = io.BytesIO()
    write_mo(buffer, catalog)  # fuzzy entries are left out, as msgfmt does
    buffer.seek(0)
    return Translations(fp=buffer, domain=DOMAIN)


def catalogue(locale: str) -> dict[str, str]:
    """The translated messages of ``locale``, English text to translation; a plural message is
    found by its singular (giving its first form) and by its plural (giving its last form, the
    general plural): tests and checks read this."""
    table: dict[str, str] = {}
    for message in read_catalogue(locale):
        if not message.id:
            continue
        if isinstance(message.id, tuple):
            forms = message.string if isinstance(message.string, tuple) else (message.string,)
            if all(forms):
                table[message.id[0]] = forms[0]
                table.setdefault(message.id[1], forms[-1])
        elif message.string:
            table[message.id] = message.string
    return table


class Translator:
    """Translation into one locale: call it with an English message, or use :meth:`ngettext`
    for a message with a count."""

    __slots__ = ("locale", "_gnu")

    def __init__(self, locale: str):
        self.locale = locale
        self._gnu = translations(locale)

    def __call__(self, text: str) -> str:
        return self._gnu.gettext(text)

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        """The form of the message for ``n`` by the language's CLDR plural rule."""
        return self._gnu.ngettext(singular, plural, n)


def translator(locale: str) -> Translator:
    """A function giving the translation of an English message in ``locale`` (itself if none)."""
    return Translator(locale)


class Msg:
    """A message and its parameters, translated when shown (see the module documentation)."""

    __slots__ = ("template", "params", "plural", "count")

    def __init__(self, template: str, **params):
        self.template = template
        self.params = params
        self.plural: str | None = None
        self.count: int | None = None

    def text(self, translate=None) -> str:
        """The message's own text in the language of ``translate``, parameters not yet filled."""
        translate = translate or (lambda s: s)
        if self.plural is None:
            return translate(self.template)
        ngettext = getattr(translate, "ngettext", None)
        if ngettext is not None:
            return ngettext(self.template, self.plural, self.count)
        # a plain function of English text: English's rule (only 1 is singular)
        return translate(self.template if self.count == 1 else self.plural)

    def render(self, translate=None) -> str:
        """The message in the language of ``translate`` (a function of English text, or a
        :class:`Translator`), with each parameter that is itself a :class:`Msg` translated the
        same way."""
        params = {k: _shown(v, translate) for k, v in self.params.items()}
        return self.text(translate).format(**params)

    def __str__(self) -> str:
        return self.render()

    def __repr__(self) -> str:
        if self.plural is not None:
            return f"NMsg({self.template!r}, {self.plural!r}, **{self.params!r})"
        return f"Msg({self.template!r}, **{self.params!r})"

    def __eq__(self, other) -> bool:
        return str(self) == str(other)

    def __hash__(self) -> int:
        return hash(str(self))


class Coded:
    """Stored codes of one family (services, hazards...) as a parameter of a :class:`Msg`: the
    reader sees each code's word in their language, said by the ``say`` of the ``translate``
    it is rendered with (the web's reader asks :func:`clms.vocabulary.say`); without one, the
    codes with spaces for underscores (the API, the logs).

    >>> str(Msg("open: {codes}", codes=Coded("service", ["cash_transfer", "school_kit"])))
    'open: cash transfer, school kit'
    """

    __slots__ = ("family", "codes")

    def __init__(self, family: str, codes):
        self.family = family
        self.codes = tuple(codes)

    def render(self, translate=None) -> str:
        say = getattr(translate, "say", None)
        if say is None:
            return ", ".join(code.replace("_", " ") for code in self.codes)
        return ", ".join(say(code, self.family) for code in self.codes)

    def __repr__(self) -> str:
        return f"Coded({self.family!r}, {list(self.codes)!r})"


def _shown(value, translate):
    """A parameter of a :class:`Msg` as the reader sees it: a message translated, codes in words
    (:class:`Coded`), a date or a date-time (UTC) written by the ``day``/``when`` of
    ``translate`` when it has them (the web's reader writes "8 juin 2026"), else in ISO form
    ("2026-06-08", "2026-06-08 14:05 UTC")."""
    if isinstance(value, Msg | Coded):
        return value.render(translate)
    if isinstance(value, dt.datetime):
        when = getattr(translate, "when", None)
        return when(value) if when else f"{value:%Y-%m-%d %H:%M} UTC"
    if isinstance(value, dt.date):
        day = getattr(translate, "day", None)
        return day(value) if day else value.isoformat()
    return value


def NMsg(singular: str, plural: str, n: int, **params) -> Msg:  # noqa: N802 (a marker, like Msg)
    """A :class:`Msg` whose wording depends on the count ``n`` (also its ``{n}`` parameter): the
    translation picks the form by the language's plural rule (French: 0 and 1 singular)."""
    message = Msg(singular, n=n, **params)
    message.plural = plural
    message.count = n
    return message


@cache
def N_(text: str) -> str:
    """Mark ``text`` for translation where it is translated later, by a lookup (a state, a role,
    a category shown through ``_(value)``): the extraction then finds it."""
    return text


def choose_locale(session_locale: str | None, user_locale: str | None, accept,
                  offered: tuple[str, ...] | None = None) -> str:  # fmt: skip
    """The locale of a request (see the module documentation) among ``offered`` (default: the
    default setting's); ``accept`` is Werkzeug's ``request.accept_languages``.

    >>> from werkzeug.datastructures import LanguageAccept
    >>> choose_locale(None, None, LanguageAccept([("fr-CI", 1), ("en", 0.5)]))
    'fr'
    >>> choose_locale("en", "fr", LanguageAccept([("fr", 1)]))
    'en'
    >>> choose_locale(None, "th", LanguageAccept([("th", 1)]))
    'en'
    """
    offered = offered or offered_locales()
    for chosen in (session_locale, user_locale):
        if chosen in offered:
            return chosen
    # in the browser's order of preference, the first language we have ("fr-CI" is French)
    for value, _quality in accept or ():
        base = value.split("-")[0].split("_")[0].lower()
        if base in offered:
            return base
    return DEFAULT_LOCALE
