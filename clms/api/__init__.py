"""The JSON API (``/api/v1``), authenticated with bearer tokens."""

from __future__ import annotations

from flask import Blueprint, current_app, g, jsonify, request

from clms.audit import record
from clms.auth import (
    PUBLIC,
    allow,
    authenticate,
    issue_token,
    note_sign_in,
    revoke_token,
    user_for_token,
)
from clms.auth.limits import Limits
from clms.db import db
from clms.errors import problem
from clms.security import guard_sign_in

bp = Blueprint("api", __name__, url_prefix="/api/v1")


@bp.before_request
def load_api_user() -> None:
    """Identify the caller from ``Authorization: Bearer <token>``."""
    g.user = None
    g.bearer = None
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        g.bearer = header[7:].strip()
        g.user = user_for_token(db(), g.bearer, kinds=("api",))
        if g.user is None:  # unknown, expired or revoked
            raise problem("auth.required")


@bp.route("/sessions", methods=["POST"])
@allow(PUBLIC)
def create_session():
    """Exchange a username and password for a bearer token.

    Body ``{"username": ..., "password": ...}``; answer ``{"token", "expires_at", "role"}``.
    The token lasts ``TOKEN_HOURS``; ``DELETE /api/v1/sessions`` with it revokes it. Failed
    attempts count towards the username's lock and the address limit (:mod:`clms.auth.limits`).
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
    username, password = body["username"], body["password"]
    user = guard_sign_in(
        session,
        username,
        lambda: authenticate(session, username, password),
        address=request.remote_addr or "",
        limits=Limits.from_config(current_app.config),
        surface="api",
    )
    token, row = issue_token(session, user, "api", hours=int(current_app.config["TOKEN_HOURS"]))
    note_sign_in(user)
    record(session, user, "auth.login", f"user:{user.username}", surface="api", token_id=row.id)
    session.commit()
    return jsonify(
        token=token, expires_at=row.expires_at.isoformat(), role=user.role, username=user.username
    ), 201


@bp.route("/sessions", methods=["DELETE"])
@bp.route("/token", methods=["DELETE"])
@allow("monitor", "officer", "supervisor", "provider", "brand", "admin")
def end_session():
    """Revoke the bearer token this request came with (signing out of the API); 204."""
    session = db()
    row = revoke_token(session, g.bearer)
    record(
        session, g.user, "auth.logout", f"user:{g.user.username}", surface="api", token_id=row.id
    )
    session.commit()
    return "", 204


@bp.route("/me")
@allow("monitor", "officer", "supervisor", "provider", "brand", "admin")
def me():
    """Who the token belongs to."""
    user = g.user
    return jsonify(username=user.username, role=user.role, full_name=user.full_name)


# routes register on import, so these come after bp exists
from clms.api import alerts, hotspots, kpis  # noqa: E402,F401
