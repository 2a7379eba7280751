"""CLMS: a child-labour monitoring and remediation system.

``create_app`` is the application factory; gunicorn loads ``wsgi:app``.
"""

from __future__ import annotations

from flask import Flask, Response, g, jsonify, render_template, request
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge
from werkzeug.middleware.proxy_fix import ProxyFix

from clms import db as database
from clms.config import load_config
from clms.errors import Problem, problem


def create_app(test_config: dict | None = None) -> Flask:
    """Create the application.

    Parameters
    ----------
    test_config:
        Settings that override the environment (tests pass ``DATABASE_URL`` and friends).
    """
    app = Flask(__name__, instance_relative_config=True)
    cfg = load_config(app.instance_path, test_config)
    app.config.update(cfg)
    app.config["MAX_CONTENT_LENGTH"] = cfg["MAX_SUBMISSION_BYTES"]
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    from clms.auth import init_app as init_auth

    init_auth(app)  # the session cookie: Secure on https (SESSION_COOKIE_SECURE), HttpOnly, Lax
    if cfg["TRUST_PROXY"]:
        n = int(cfg["TRUST_PROXY"])
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n, x_prefix=n)

    database.init_app(app)
    from clms import i18n

    i18n.init_app(app)
    from clms import audit

    audit.init_app(app)  # the reads of child-level data a request made, written before it answers
    from clms import security

    security.init_app(app)  # CSRF tokens on every form, security headers on every response
    app.before_request(_refuse_nul_characters)  # no text column can hold one (PostgreSQL)

    from clms.api import bp as api_bp
    from clms.openrosa import register as register_openrosa
    from clms.web import bp as web_bp

    app.register_blueprint(web_bp)
    app.register_blueprint(api_bp)
    register_openrosa(app)
    # the navigation links only to the pages this application has
    app.jinja_env.globals["has_endpoint"] = lambda name: name in app.view_functions

    _register_error_handlers(app)

    from clms.cli import register_commands

    register_commands(app)
    return app


def _refuse_nul_characters() -> None:
    """Refuse, before any view runs, a query parameter or form field holding a NUL character:
    no text column can store one (PostgreSQL refuses it mid-transaction), and no person types
    one. The error names the field."""
    from clms.i18n import Msg

    what = Msg("contains a NUL character, which text cannot hold")
    for name, value in request.args.items(multi=True):
        if "\x00" in name or "\x00" in value:
            raise problem("request.invalid_parameter", parameter=name.replace("\x00", "?"),
                          detail=what)  # fmt: skip
    if request.method in ("POST", "PUT", "PATCH") and request.mimetype in (
        "application/x-www-form-urlencoded", "multipart/form-data",
    ):  # fmt: skip
        for name, value in request.form.items(multi=True):
            if "\x00" in name or "\x00" in value:
                raise problem("request.invalid_field", field=name.replace("\x00", "?"),
                              detail=what)  # fmt: skip


def _surface() -> str:
    """Which kind of client the current request comes from: openrosa, api or web."""
    bp = request.blueprint or ""
    if bp.startswith("openrosa"):
        return "openrosa"
    if bp == "api" or request.path.startswith("/api/"):
        return "api"
    return "web"


def render_problem(p: Problem) -> Response:
    """Render a catalogue problem the way the asking client understands."""
    surface = _surface()
    if surface == "openrosa":
        from clms.openrosa.responses import openrosa_response

        resp = openrosa_response(p.to_openrosa(), p.status)
    elif surface == "api":
        resp = jsonify(p.to_json())
        resp.status_code = p.status
    else:
        if p.status == 401:
            from flask import redirect, url_for

            return redirect(url_for("web.login", next=request.full_path))
        resp = Response(render_template("error.html", problem=p), status=p.status)
    for key, value in p.headers.items():
        resp.headers[key] = value
    return resp


def _register_error_handlers(app: Flask) -> None:
    @app.errorhandler(Problem)
    def _problem(p: Problem):
        session = g.get("db_session")
        if session is not None:
            session.rollback()
        if p.status == 401 and _surface() == "openrosa":
            from clms.openrosa.auth import challenge_headers

            p.headers.setdefault("WWW-Authenticate", challenge_headers()["WWW-Authenticate"])
        return render_problem(p)

    @app.errorhandler(RequestEntityTooLarge)
    def _too_large(_e):
        return render_problem(problem("request.too_large", limit=app.config["MAX_CONTENT_LENGTH"]))

    @app.errorhandler(OperationalError)
    def _db_down(e):
        # The database is unreachable or refused the write: never claim success. OpenRosa clients
        # keep the submission and retry on 503.
        app.logger.error("database unavailable: %s", e.orig if hasattr(e, "orig") else e)
        session = g.get("db_session")
        if session is not None:
            session.rollback()
        return render_problem(problem("service.unavailable", headers={"Retry-After": "60"}))

    @app.errorhandler(OSError)
    def _disk_full(e: OSError):
        # No space for a file the request needs (werkzeug spools large uploads to the temporary
        # folder): as with the database away, nothing was kept and the phone sends it again.
        # Any other OSError is a bug: the usual 500.
        import errno
        import traceback

        if e.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            raise e
        app.logger.error("no space left on a disk: %s", e)
        # the half-written temporary file is held by the traceback's frames: free it now
        traceback.clear_frames(e.__traceback__)
        session = g.get("db_session")
        if session is not None:
            session.rollback()
        return render_problem(problem("service.unavailable", headers={"Retry-After": "60"}))

    @app.errorhandler(404)
    def _not_found(e: HTTPException):
        return render_problem(problem("not_found"))
