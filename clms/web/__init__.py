"""Server-rendered pages for people: sign-in, home, forms, submissions."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("web", __name__)

from clms.web import (
    forms_views,  # noqa: E402,F401
    submissions_views,  # noqa: E402,F401
    views,  # noqa: E402,F401  (routes register on import)
)
