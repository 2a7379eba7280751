"""Server-rendered pages for people: sign-in, home, forms, submissions."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("web", __name__)

from clms.web import views  # noqa: E402,F401  (routes register on import)
from clms.web import forms_views  # noqa: E402,F401
from clms.web import submissions_views  # noqa: E402,F401
