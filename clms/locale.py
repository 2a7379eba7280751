"""The language of the current request, and the translation helpers of the web pages.

The request-bound half of :mod:`clms.i18n` (which is pure), wired to Flask-Babel:
:func:`current_locale` decides the locale once per request (:func:`clms.i18n.choose_locale`,
among the languages the ``LANGUAGES`` setting offers) and is Flask-Babel's locale selector;
Flask-Babel's domain reads our catalogues (compiled in memory by :func:`clms.i18n.translations`).
:func:`gettext`, :func:`ngettext` and :func:`localize` translate into the request's locale, and
:func:`init_app` gives the templates ``_()``, ``ngettext()``, ``say()``, and the filters of
dates and numbers in the reader's language:

- ``{{ d|day }}``: a date ("8 juin 2026", "Jun 8, 2026": CLDR's medium format);
- ``{{ t|when }}``: a date and time, with its zone ("8 juin 2026, 14:05 UTC"); the times
  stored are UTC and are shown in UTC, so a reader in any country compares them with the
  deadlines the server counts;
- ``{{ n|number }}``: a number with the language's grouping ("12 345" in French, with CLDR's
  narrow no-break space; "12,345" in English); ``ngettext``'s ``%(num)s`` is written so.

The same formats serve a :class:`~clms.i18n.Msg` whose parameter is a date or a date-time: it is
shown in the reader's language (:func:`localize`).
"""

from __future__ import annotations

import datetime as dt

from babel import Locale
from babel.dates import format_date, format_datetime
from babel.numbers import format_decimal, format_percent
from jinja2 import pass_context
from markupsafe import Markup

from clms.errors import Problem
from clms.i18n import DEFAULT_LOCALE, Msg, choose_locale, locale_name, offered_locales, translator

ZONE = "UTC"  # the zone of every time stored and shown


def languages() -> tuple[str, ...]:
    """The languages the pages are offered in (the ``LANGUAGES`` setting, see
    :func:`clms.i18n.offered_locales`)."""
    from flask import current_app, has_app_context

    setting = current_app.config.get("LANGUAGES") if has_app_context() else None
    return offered_locales(setting)


def current_locale() -> str:
    """The locale of the current request (English outside one)."""
    from flask import g, has_request_context, request, session

    if not has_request_context():
        return DEFAULT_LOCALE
    if "locale" not in g:
        # decided on first use, after the blueprint has identified the person
        user = g.get("user")
        g.locale = choose_locale(
            session.get("locale"),
            getattr(user, "locale", None),
            request.accept_languages,
            languages(),
        )
    return g.locale


def gettext(text: str) -> str:
    """``text`` translated into the current request's locale."""
    return _translate(text) if text else text


def ngettext(singular: str, plural: str, n: int) -> str:
    """The form of a message for the count ``n``, by the plural rule of the request's language
    (CLDR's: French treats 0 and 1 alike; Thai has one form)."""
    return translator(current_locale()).ngettext(singular, plural, n)


def _translate(text: str) -> str:
    return translator(current_locale())(text)


class _Reader:
    """A :class:`~clms.i18n.Translator` for a :class:`Msg` that also shows its dates in the
    reader's language."""

    def __init__(self, locale: str):
        self._translator = translator(locale)
        self.locale = locale

    def __call__(self, text: str) -> str:
        return self._translator(text) if text else text

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        return self._translator.ngettext(singular, plural, n)

    def day(self, value) -> str:
        return day(value, self.locale)

    def when(self, value) -> str:
        return when(value, self.locale)

    def say(self, code: str, family: str | None = None) -> str:
        from clms.vocabulary import say  # the vocabulary uses this module's gettext

        return say(code, family)


def localize(message) -> str:
    """A :class:`Msg`, a catalogue :class:`~clms.errors.Problem` (its message), or plain English
    text, in the current request's locale. The API and phones get a problem's
    :attr:`~clms.errors.Problem.message`, in English."""
    if isinstance(message, Problem):
        message = message.msg if message.msg is not None else message.message
    if isinstance(message, Msg):
        locale = current_locale()
        return message.render(_Reader(locale))
    return gettext(str(message))


def day(value, locale: str | None = None) -> str:
    """A date (or a date-time's day) in the reader's language: "8 juin 2026"."""
    if value is None:
        return "—"
    if isinstance(value, dt.datetime):
        value = value.date()
    return format_date(value, format="medium", locale=locale or current_locale())


def when(value, locale: str | None = None, seconds: bool = False) -> str:
    """A date-time stored in UTC, in the reader's language and with its zone:
    "8 juin 2026, 14:05 UTC"."""
    if value is None:
        return "—"
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    locale = locale or current_locale()
    time = format_datetime(value, "HH:mm:ss" if seconds else "HH:mm", locale=locale)
    return f"{format_date(value.date(), format='medium', locale=locale)}, {time} {ZONE}"


def number(value, locale: str | None = None, decimals: int | None = None) -> str:
    """A number with the reader's grouping and decimal sign: "12 345" in French; with
    ``decimals``, exactly so many ("1 234,5")."""
    if value is None:
        return "—"
    pattern = None if decimals is None else "#,##0" + ("." + "0" * decimals if decimals else "")
    return format_decimal(value, pattern, locale=locale or current_locale())


def percent(value, locale: str | None = None, decimals: int = 1) -> str:
    """A share (0-1) as a percentage in the reader's language, CLDR's pattern with ``decimals``
    decimals: "57,1 %" in French, "57.1%" in English."""
    if value is None:
        return "—"
    locale = locale or current_locale()
    pattern = Locale.parse(locale).percent_formats[None].pattern
    if decimals:
        pattern = pattern.replace("0", "0." + "0" * decimals, 1)
    return format_percent(value, pattern, locale=locale)


@pass_context
def _template_ngettext(context, singular: str, plural: str, n, **variables) -> str:
    """The templates' ``ngettext``: Jinja's, but the count ``%(num)s`` is written in the
    reader's language ("12 345 soumissions")."""
    variables.setdefault("num", number(n))
    # the count is text now; a message written with Jinja's usual %(num)d still works
    text = ngettext(singular, plural, n).replace("%(num)d", "%(num)s")
    if context.eval_ctx.autoescape:
        # the catalogue's own text, trusted as Jinja's ngettext trusts it; % escapes the values
        text = Markup(text)  # noqa: S704
    return text % variables


def init_app(app) -> None:
    """Flask-Babel, with our locale selector and catalogues; the i18n extension in Jinja."""
    from flask_babel import Babel, Domain

    class Catalogues(Domain):
        """Flask-Babel's translations are ours (compiled in memory from the ``.po``)."""

        def get_translations(self):
            from clms.i18n import translations

            return translations(current_locale())

    babel = Babel(configure_jinja=False)  # our own gettext, filters below
    babel.init_app(app, locale_selector=current_locale, timezone_selector=lambda: ZONE)
    babel.domain_instance = Catalogues()
    app.jinja_env.add_extension("jinja2.ext.i18n")
    app.jinja_env.install_gettext_callables(gettext, ngettext, newstyle=True)
    app.jinja_env.globals["ngettext"] = _template_ngettext
    from clms.vocabulary import (
        HIDDEN_DETAIL,
        detail_label,
        detail_words,
        event_words,
        said_or_typed,
        say,
    )

    app.jinja_env.filters.update(day=day, when=when, number=number, percent=percent)
    app.jinja_env.globals.update(
        event_words=event_words,
        detail_words=detail_words,
        detail_label=detail_label,
        HIDDEN_DETAIL=HIDDEN_DETAIL,
        localize=localize,
        LOCALES=languages,
        locale_name=locale_name,
        current_locale=current_locale,
        say=say,
        said_or_typed=said_or_typed,
        choices=lambda codes: [(code, say(code)) for code in codes],
    )
