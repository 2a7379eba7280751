"""The JSON API (``/api/v1``), authenticated with bearer tokens."""

from __future__ import annotations

from flask import Blueprint, current_app, g, jsonify, request

from clms.auth import PUBLIC, allow, authenticate, issue_token, user_for_token
from clms.db import db
from clms.errors import problem

bp = Blueprint("api", __name__, url_prefix="/api/v1")


@bp.before_request
def load_api_user() -> None:
    """Identify the caller from ``Authorization: Bearer <token>``."""
    g.user = None
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        g.user = user_for_token(db(), header[7:].strip(), kinds=("api",))
        if g.user is None:
            raise problem("auth.required")


@bp.route("/sessions", methods=["POST"])
@allow(PUBLIC)
def create_session():
    """Exchange a username and password for a bearer token.

    Body ``{"username": ..., "password": ...}``; answer ``{"token", "expires_at", "role"}``.
    """
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise problem(
            "request.invalid_json", detail="expected an object with username and password"
        )
    for name in ("username", "password"):
        if not isinstance(body.get(name), str) or not body[name]:
            raise problem("request.missing_field", field=name)
    session = db()
    user = authenticate(session, body["username"], body["password"])
    if user is None:
        raise problem("auth.failed")
    token, row = issue_token(session, user, "api", hours=int(current_app.config["TOKEN_HOURS"]))
    session.commit()
    return jsonify(
        token=token, expires_at=row.expires_at.isoformat(), role=user.role, username=user.username
    ), 201


@bp.route("/me")
@allow("monitor", "officer", "supervisor", "provider", "brand", "admin")
def me():
    """Who the token belongs to."""
    user = g.user
    return jsonify(username=user.username, role=user.role, full_name=user.full_name)


# routes register on import, so these come after bp exists
from clms.api import alerts, hotspots, kpis  # noqa: E402,F401
