"""Server-rendered pages for people: sign-in, alerts, cases, referrals, forms, submissions,
indicators and administration.

A problem of the catalogue (:mod:`clms.errors`) that a view does not catch is the application's
error page (:func:`clms.app.render_problem`); one the view answers itself, on the same page or
the next, is shown by :func:`flash_problem`.
"""

from __future__ import annotations

from flask import Blueprint, flash

from clms.errors import Problem
from clms.i18n import Msg
from clms.locale import localize

bp = Blueprint("web", __name__)


def flash_problem(told: Problem | Msg | str, session=None) -> int:
    """Tell the person what was refused, on the page they see next: the one way the pages show
    a refusal they answer themselves. ``told`` is the problem, or the page's own words for it
    (a :class:`Msg`, or text already in the reader's language); it is flashed as an error in
    the reader's language. ``session``: the request's transaction, rolled back first (the
    refused change may have written). Returns the problem's status (400 for words)."""
    if session is not None:
        session.rollback()
    flash(told if isinstance(told, str) else localize(told), "error")
    return told.status if isinstance(told, Problem) else 400


# routes register on import, so these come after bp exists
from clms.web import (  # noqa: E402,F401
    account_views,
    alerts_views,
    audit_views,
    cases_views,
    catalogue_views,
    dataprotection_views,
    duplicates_views,
    forms_views,
    hotspots_views,
    kpis_views,
    maps_views,
    places_views,
    profiles_views,
    referrals_views,
    sources_views,
    submissions_views,
    supply_views,
    users_views,
    views,
)
