"""English and French: the locale of a request, the translations, and messages that wait to be
translated.

The source language is English and the English text is the key: the JSON files of
``clms/translations/fr/`` (one per part of the application) map each English message to its
French translation. A test extracts every message of the
templates (``_()`` and ``{% trans %}``) and of the code (:class:`Msg`) and fails for one that has
no French, so a page never shows half a language.

Two kinds of message:

- in templates, Jinja's i18n extension: ``{{ _("Open cases") }}``,
  ``{{ _("Case %(number)s", number=c.case_number) }}`` (placeholders ``%(name)s``);
- in code, :class:`Msg`, a message kept with its parameters and translated when it is shown,
  in the locale of whoever sees it (``{name}`` placeholders). ``str(msg)`` is the English text,
  which the JSON API and the logs use.

>>> m = Msg("This case is in {state}.", state=Msg("closure review"))
>>> str(m)
'This case is in closure review.'
>>> m.render(lambda s: {"This case is in {state}.": "Ce cas est en {state}.",
...                     "closure review": "revue de clôture"}.get(s, s))
'Ce cas est en revue de clôture.'

The locale of a request: the one chosen with the language switch (kept in the session), else the
signed-in person's saved choice, else the browser's ``Accept-Language``, else English
(:func:`choose_locale`; :mod:`clms.locale` applies it to the current request).

Pure: nothing here knows of Flask or of a request; code translates a :class:`Msg` with the
``translate`` function its caller hands it.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

LOCALES = ("en", "fr")
DEFAULT_LOCALE = "en"
LOCALE_NAMES = {"en": "English", "fr": "Français"}
TRANSLATIONS = Path(__file__).parent / "translations"


class Msg:
    """A message and its parameters, translated when shown (see the module documentation)."""

    __slots__ = ("template", "params")

    def __init__(self, template: str, **params):
        self.template = template
        self.params = params

    def render(self, translate=None) -> str:
        """The message in the language of ``translate`` (a function of English text), with each
        parameter that is itself a :class:`Msg` translated the same way."""
        translate = translate or (lambda s: s)
        params = {
            k: (v.render(translate) if isinstance(v, Msg) else v) for k, v in self.params.items()
        }
        return translate(self.template).format(**params)

    def __str__(self) -> str:
        return self.render()

    def __repr__(self) -> str:
        return f"Msg({self.template!r}, **{self.params!r})"

    def __eq__(self, other) -> bool:
        return str(self) == str(other)

    def __hash__(self) -> int:
        return hash(str(self))


@cache
def N_(text: str) -> str:
    """Mark ``text`` for translation where it is translated later, by a lookup (a state, a role,
    a category shown through ``_(value)``): the extraction test then finds it."""
    return text


def catalogue(locale: str) -> dict[str, str]:
    """The translations of ``locale`` (English needs none)."""
    if locale == DEFAULT_LOCALE:
        return {}
    table: dict[str, str] = {}
    for path in sorted((TRANSLATIONS / locale).glob("*.json")):
        table.update(json.loads(path.read_text(encoding="utf-8")))
    return table


def translator(locale: str):
    """A function giving the translation of an English message in ``locale`` (itself if none)."""
    table = catalogue(locale)
    return lambda text: table.get(text) or text


def choose_locale(session_locale: str | None, user_locale: str | None, accept) -> str:
    """The locale of a request (see the module documentation); ``accept`` is Werkzeug's
    ``request.accept_languages``.

    >>> from werkzeug.datastructures import LanguageAccept
    >>> choose_locale(None, None, LanguageAccept([("fr-CI", 1), ("en", 0.5)]))
    'fr'
    >>> choose_locale("en", "fr", LanguageAccept([("fr", 1)]))
    'en'
    """
    for chosen in (session_locale, user_locale):
        if chosen in LOCALES:
            return chosen
    # in the browser's order of preference, the first language we have ("fr-CI" is French)
    for value, _quality in accept or ():
        base = value.split("-")[0].split("_")[0].lower()
        if base in LOCALES:
            return base
    return DEFAULT_LOCALE
