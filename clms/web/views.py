"""Web views: each parses the request, calls one operation, renders."""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlsplit

from flask import current_app, flash, g, redirect, render_template, request, session, url_for

from clms.audit import record
from clms.auth import PUBLIC, allow, authenticate, end_sessions, note_sign_in
from clms.auth.limits import Limits
from clms.db import db, ping
from clms.errors import Problem
from clms.locale import gettext, languages
from clms.models import User, utcnow
from clms.security import guard_sign_in
from clms.web import bp, flash_problem
from clms.web.home_sections import LINE_TARGETS, REPLICA_WORDS, SECTIONS
from clms.workday.home import home_of

HOME_BY_ROLE = {
    "admin": "web.forms_index",
    "officer": "web.alerts_index",
    "supervisor": "web.alerts_index",
    "provider": "web.referrals_index",
}


@bp.before_request
def load_web_user() -> None:
    """Identify the person from the session cookie.

    A session ends after ``SESSION_MINUTES`` without a request, ``SESSION_MAX_HOURS`` after
    sign-in however active, when the account is deactivated, and when the person's session epoch
    moved on (they signed out somewhere, got a new password or were deactivated).

    The session is Flask's signed cookie: the server keeps no list of sessions, so a copy of the
    cookie works like the original until one of these ends it. The epoch is what makes signing
    out end the copies too (on every device of that person, which is the price of no list).
    """
    g.user = None
    uid = session.get("uid")
    if uid is None:
        return
    now = utcnow()
    idle = dt.timedelta(minutes=int(current_app.config["SESSION_MINUTES"]))
    lifetime = dt.timedelta(hours=int(current_app.config["SESSION_MAX_HOURS"]))
    seen, born = _moment(session.get("seen")), _moment(session.get("born"))
    if seen is None or born is None or now - seen > idle or now - born > lifetime:
        _end_session()
        return
    user = db().get(User, uid)
    if user is None or not user.active or session.get("epoch") != user.session_epoch:
        _end_session()
        return
    g.user = user
    session["seen"] = now.isoformat()


def _moment(value) -> dt.datetime | None:
    try:
        moment = dt.datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None
    return moment if moment is not None and moment.tzinfo is not None else None


def _end_session() -> None:
    session.clear()
    flash(gettext("Your session has ended; please sign in again."), "info")


@bp.route("/")
@allow(PUBLIC)
def home():
    """A signed-in person's work, most urgent first (:mod:`clms.workday.home`); a brand's is its
    map; anyone else is sent to sign in."""
    if g.user is None:
        return redirect(url_for("web.login"))
    if g.user.role == "brand":  # a brand's work is its hotspot map
        return redirect(url_for("web.map_index"))
    work = home_of(db(), g.user)
    # a monitor's cases are on their phone, not on the web: their lines link nowhere
    targets = {} if g.user.role == "monitor" else LINE_TARGETS
    # an administrator sees whether the read replica is read, and how far behind it is
    replica = current_app.extensions.get("clms_replica") if g.user.role == "admin" else None
    return render_template(
        "home.html",
        work=work,
        sections=SECTIONS,
        targets=targets,
        replica=replica.state() if replica is not None else None,
        replica_words=REPLICA_WORDS,
    )


@bp.route("/health")
@allow(PUBLIC)
def health():
    """For a load balancer in front of several web hosts: 200 ``ok`` when this worker answers and
    reaches the primary database, 503 (the failing database's answer, :mod:`clms.app`) when not.
    Public, so it says nothing more; the read replica's state is on an administrator's home page
    (a replica down does not make a host unhealthy: the primary answers its reads)."""
    ping(db())
    response = current_app.response_class("ok\n", mimetype="text/plain")
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/login", methods=["GET", "POST"])
@allow(PUBLIC)
def login():
    """Sign in with username and password."""
    if request.method == "POST":
        username = request.form.get("username", "")
        password = request.form.get("password", "")
        try:
            user = guard_sign_in(
                db(),
                username,
                lambda: authenticate(db(), username, password),
                address=request.remote_addr or "",
                limits=Limits.from_config(current_app.config),
                surface="web",
            )
        except Problem as p:
            status = flash_problem(p)
            return render_template("login.html"), status, p.headers
        note_sign_in(user)
        record(db(), user, "auth.login", f"user:{user.username}", surface="web")
        db().commit()
        # a new session, not the one the browser came with: nothing set before sign-in survives
        session.clear()
        now = utcnow().isoformat()
        session.update(uid=user.id, epoch=user.session_epoch, born=now, seen=now)
        target = request.args.get("next", "")
        # only local paths: an open redirect would let a phishing link borrow our login page
        if not target.startswith("/") or urlsplit(target).netloc or target.startswith("//"):
            target = url_for("web.home")
        return redirect(target)
    return render_template("login.html")


@bp.route("/logout", methods=["POST"])
@allow(PUBLIC)
def logout():
    """Sign out: this session and every other of this person (copies of the cookie too)."""
    if g.user is not None:
        end_sessions(db(), g.user)
        record(db(), g.user, "auth.logout", f"user:{g.user.username}")
        db().commit()
    session.clear()
    return redirect(url_for("web.login"))


@bp.route("/language", methods=["POST"])
@allow(PUBLIC)
def set_language():
    """Switch the interface to one of the languages offered; a signed-in person keeps the
    choice."""
    locale = request.form.get("locale", "")
    if locale in languages():
        session["locale"] = locale
        if g.user is not None:
            g.user.locale = locale
            db().commit()
    target = request.form.get("next", "")
    if not target.startswith("/") or urlsplit(target).netloc or target.startswith("//"):
        target = url_for("web.home")
    return redirect(target, code=303)
