"""The application factory: :func:`create_app` builds the Flask application (settings, database,
blueprints, error handlers, commands); gunicorn loads ``wsgi:app``, the command line
``clms`` builds one per command. :func:`render_problem` turns a catalogue problem into the answer
the asking client understands (OpenRosa XML, API JSON or a page).
"""

from __future__ import annotations

import contextlib

from flask import Flask, Response, g, jsonify, render_template, request
from sqlalchemy.exc import (
    DBAPIError,
    InterfaceError,
    OperationalError,
    PendingRollbackError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.exceptions import HTTPException, MethodNotAllowed, RequestEntityTooLarge
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import IntegerConverter

from clms import db as database
from clms.config import load_config
from clms.errors import Problem, problem


class DatabaseId(IntegerConverter):
    """``<int:...>`` in every route: a whole number a database integer column holds (PostgreSQL's
    ``integer``, at most 2**31 - 1); a longer one matches no route, so the answer is 404."""

    def __init__(self, url_map, *args, **kwargs):
        kwargs.setdefault("max", 2**31 - 1)
        super().__init__(url_map, *args, **kwargs)


def create_app(test_config: dict | None = None) -> Flask:
    """Create the application.

    Parameters
    ----------
    test_config:
        Settings that override the environment (tests pass ``DATABASE_URL`` and friends).
    """
    from clms import logs

    logs.install()  # no device token in any log line this process writes (access, errors, ...)
    app = Flask(__name__, instance_relative_config=True)
    # an id in a URL is a database integer: a larger number is no page (404), not an overflow
    app.url_map.converters["int"] = DatabaseId
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
    from clms import locale

    locale.init_app(app)
    from clms import audit_hooks

    audit_hooks.init_app(app)  # each entry's address; a request's reads written before it answers
    from clms import security

    security.init_app(app)  # CSRF tokens on every form, security headers on every response
    app.before_request(_refuse_nul_characters)  # no text column can hold one (PostgreSQL)

    from clms.api import bp as api_bp
    from clms.openrosa import register as register_openrosa
    from clms.web import bp as web_bp

    app.register_blueprint(web_bp)
    from clms.web.notifications_views import bp as notifications_bp

    app.register_blueprint(notifications_bp)
    app.register_blueprint(api_bp)
    register_openrosa(app)
    # the navigation links only to the pages this application has
    app.jinja_env.globals["has_endpoint"] = lambda name: name in app.view_functions
    from clms.web.field_labels import field_label

    app.jinja_env.globals["field_label"] = field_label
    app.jinja_env.globals["endpoints"] = app.view_functions

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
    if not bp and request.routing_exception is not None:
        # an address matched with another method (405): the blueprint of the route it names
        from flask import current_app

        with contextlib.suppress(Exception):
            endpoint, _args = current_app.create_url_adapter(request).match(method="POST")
            bp = endpoint.rpartition(".")[0]
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
        resp = Response(render_template("error.html", problem=p, ways_back=ways_back()),
                        status=p.status)
    for key, value in p.headers.items():
        resp.headers[key] = value
    return resp


def ways_back() -> list[tuple[str, str]]:
    """Where a person refused a page (403, 404, 405...) can go from it, as (English label, address):
    the page they came from (when it is one of ours), the list the address belongs to (``/cases``
    for ``/cases/12/plan``, when their role may open it), and their home page (the sign-in page
    when signed out). Asks the database nothing: the error may be the database failing."""
    from flask import current_app, url_for
    from werkzeug.exceptions import HTTPException as _Refused

    from clms.i18n import N_

    here = request.path
    user = g.get("user")
    ways: list[tuple[str, str]] = []
    came_from = request.referrer or ""
    if came_from.startswith(request.host_url) and came_from.split("?")[0] != request.base_url:
        ways.append((N_("Back to the previous page"), came_from))
    first = "/" + here.strip("/").split("/")[0]
    if user is not None and first not in ("/", here.rstrip("/")):
        try:
            endpoint, _args = current_app.url_map.bind("").match(first, method="GET")
        except (_Refused, LookupError):
            endpoint = None
        view = current_app.view_functions.get(endpoint) if endpoint else None
        roles = getattr(view, "allowed_roles", frozenset())
        if view is not None and user.role in roles:
            ways.append((N_("Back to the list"), first))
    if user is not None:
        ways.append((N_("Home"), url_for("web.home")))
    else:
        ways.append((N_("Sign in"), url_for("web.login")))
    return ways


def _rollback_quietly(keep_user: bool = False) -> None:
    """Roll the request's session back, if it has one; on a connection the database dropped the
    rollback itself may fail, and the answer (503 or the problem) matters more than it.

    ``keep_user``: the database is failing, so the signed-in person (``g.user``, whom the page's
    header names) is detached first with what was read of them; a rollback would expire them,
    and the page would go back to the database for their role and fail again (a 500)."""
    session = g.get("db_session")
    if session is None:
        return
    user = g.get("user")
    if keep_user and user is not None and user in session:
        session.expunge(user)
    with contextlib.suppress(Exception):  # the connection is gone; the pool discards it
        session.rollback()


def database_failed(error: BaseException) -> bool:
    """Whether ``error``, or an error it was raised in handling, is the database failing (down,
    a dropped connection, no connection to be had), as opposed to a bug."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, OperationalError | InterfaceError | PoolTimeout):
            return True
        if isinstance(error, DBAPIError) and error.connection_invalidated:
            return True
        error = error.__cause__ or error.__context__
    return False


def _register_error_handlers(app: Flask) -> None:
    @app.errorhandler(Problem)
    def _problem(p: Problem):
        _rollback_quietly()
        if p.status == 401 and _surface() == "openrosa":
            from clms.openrosa.auth import challenge_headers

            p.headers.setdefault("WWW-Authenticate", challenge_headers()["WWW-Authenticate"])
        return render_problem(p)

    @app.errorhandler(RequestEntityTooLarge)
    def _too_large(_e):
        return render_problem(problem("request.too_large", limit=app.config["MAX_CONTENT_LENGTH"]))

    def _db_down(e):
        # The database is unreachable, dropped the connection or refused the write: never claim
        # success. OpenRosa clients keep the submission and retry on 503; the API and the pages
        # answer in their own format.
        app.logger.error("database unavailable: %s", getattr(e, "orig", None) or e)
        _rollback_quietly(keep_user=True)
        return render_problem(problem("service.unavailable", headers={"Retry-After": "60"}))

    for failure in (OperationalError, InterfaceError, PoolTimeout):
        app.register_error_handler(failure, _db_down)

    @app.errorhandler(PendingRollbackError)
    def _after_db_failure(e: PendingRollbackError):
        # the session is unusable because an earlier statement failed: when that was the
        # database going away (a commit after a lost connection), it is the same 503; any other
        # earlier failure is a bug, and stays a 500
        if database_failed(e):
            return _db_down(e)
        raise e

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
        _rollback_quietly()
        return render_problem(problem("service.unavailable", headers={"Retry-After": "60"}))

    def _know_the_person() -> None:
        # an address no route matches runs no blueprint's hooks, so the person is not known yet:
        # the page names them and offers their home (a route refusal is no database failure)
        if "user" not in g and _surface() == "web":
            from clms.web.views import load_web_user

            with contextlib.suppress(Exception):
                load_web_user()

    @app.errorhandler(404)
    def _not_found(e: HTTPException):
        _know_the_person()
        return render_problem(problem("not_found"))

    @app.errorhandler(MethodNotAllowed)
    def _wrong_method(e: MethodNotAllowed):
        # a GET on an address only a form's button sends to: a page saying so, in the person's
        # language, with the way back, not Werkzeug's bare "Method Not Allowed"
        _know_the_person()
        p = problem("request.method_not_allowed")
        if e.valid_methods:
            p.headers["Allow"] = ", ".join(sorted(e.valid_methods))
        return render_problem(p)

    @app.errorhandler(HTTPException)
    def _refused(e: HTTPException):
        # any other refusal of the router or of Werkzeug (400, 429, 500...) as our own page
        if e.code is None or e.code < 400:
            return e
        if e.code == 400:
            p = problem("request.bad")
        elif e.code >= 500:
            _rollback_quietly()
            p = problem("server.error")
        else:
            p = problem("request.refused", status=e.code)
        p.status = e.code
        if e.code == 429 and getattr(e, "retry_after", None):
            p.headers["Retry-After"] = str(e.retry_after)
        return render_problem(p)
