"""The language of the current request, and the translation helpers of the web pages.

The request-bound half of :mod:`clms.i18n` (which is pure): :func:`current_locale` decides the
locale once per request (:func:`clms.i18n.choose_locale`), :func:`gettext` and :func:`localize`
translate into it, :func:`init_app` gives the templates ``_()``, ``say()`` and the rest.
"""

from __future__ import annotations

from clms.errors import Problem
from clms.i18n import DEFAULT_LOCALE, LOCALE_NAMES, LOCALES, Msg, choose_locale, translator


def current_locale() -> str:
    """The locale of the current request (English outside one)."""
    from flask import g, has_request_context, request, session

    if not has_request_context():
        return DEFAULT_LOCALE
    if "locale" not in g:
        # decided on first use, after the blueprint has identified the person
        user = g.get("user")
        g.locale = choose_locale(
            session.get("locale"), getattr(user, "locale", None), request.accept_languages
        )
    return g.locale


def gettext(text: str) -> str:
    """``text`` translated into the current request's locale."""
    return translator(current_locale())(text)


def ngettext(singular: str, plural: str, n: int) -> str:
    """The singular or plural of a message, translated (both languages: one form for 1)."""
    return gettext(singular if n == 1 else plural)


def localize(message) -> str:
    """A :class:`Msg`, a catalogue :class:`~clms.errors.Problem` (its message), or plain English
    text, in the current request's locale. The API and phones get a problem's
    :attr:`~clms.errors.Problem.message`, in English."""
    if isinstance(message, Problem):
        message = message.msg if message.msg is not None else message.message
    if isinstance(message, Msg):
        return message.render(translator(current_locale()))
    return gettext(str(message))


def init_app(app) -> None:
    """Install the i18n extension in the app's Jinja environment."""
    app.jinja_env.add_extension("jinja2.ext.i18n")
    app.jinja_env.install_gettext_callables(gettext, ngettext, newstyle=True)
    from clms.vocabulary import HIDDEN_DETAIL, detail_label, detail_words, event_words, say

    app.jinja_env.globals.update(
        event_words=event_words,
        detail_words=detail_words,
        detail_label=detail_label,
        HIDDEN_DETAIL=HIDDEN_DETAIL,
        localize=localize,
        LOCALES=LOCALES,
        LOCALE_NAMES=LOCALE_NAMES,
        current_locale=current_locale,
        say=say,
        choices=lambda codes: [(code, say(code)) for code in codes],
    )
