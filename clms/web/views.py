"""Web views: each parses the request, calls one operation, renders."""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlsplit

from flask import current_app, flash, g, redirect, render_template, request, session, url_for

from clms.auth import PUBLIC, allow, authenticate
from clms.db import db
from clms.i18n import LOCALES, gettext
from clms.models import User, utcnow
from clms.web import bp

HOME_BY_ROLE = {
    "admin": "web.forms_index",
    "officer": "web.alerts_index",
    "supervisor": "web.alerts_index",
    "provider": "web.referrals_index",
}


@bp.before_request
def load_web_user() -> None:
    """Identify the person from the session cookie; sessions end after inactivity."""
    g.user = None
    uid = session.get("uid")
    if uid is None:
        return
    seen = session.get("seen")
    limit = dt.timedelta(minutes=int(current_app.config["SESSION_MINUTES"]))
    now = utcnow()
    if seen is None or now - dt.datetime.fromisoformat(seen) > limit:
        session.clear()
        return
    user = db().get(User, uid)
    if user is None or not user.active:
        session.clear()
        return
    g.user = user
    session["seen"] = now.isoformat()


@bp.route("/")
@allow(PUBLIC)
def home():
    """Send a signed-in person to their work, anyone else to sign in."""
    if g.user is None:
        return redirect(url_for("web.login"))
    if g.user.role == "brand":  # a brand's work is its hotspot map
        return redirect(url_for("web.map_index"))
    return render_template("home.html")


@bp.route("/login", methods=["GET", "POST"])
@allow(PUBLIC)
def login():
    """Sign in with username and password."""
    if request.method == "POST":
        user = authenticate(
            db(), request.form.get("username", ""), request.form.get("password", "")
        )
        if user is None:
            flash(gettext("Wrong username or password."), "error")
            return render_template("login.html"), 401
        session.clear()
        session["uid"] = user.id
        session["seen"] = utcnow().isoformat()
        target = request.args.get("next", "")
        # only local paths: an open redirect would let a phishing link borrow our login page
        if not target.startswith("/") or urlsplit(target).netloc or target.startswith("//"):
            target = url_for("web.home")
        return redirect(target)
    return render_template("login.html")


@bp.route("/logout", methods=["POST"])
@allow(PUBLIC)
def logout():
    """Sign out."""
    session.clear()
    return redirect(url_for("web.login"))


@bp.route("/language", methods=["POST"])
@allow(PUBLIC)
def set_language():
    """Switch the interface between English and French; a signed-in person keeps the choice."""
    locale = request.form.get("locale", "")
    if locale in LOCALES:
        session["locale"] = locale
        if g.user is not None:
            g.user.locale = locale
            db().commit()
    target = request.form.get("next", "")
    if not target.startswith("/") or urlsplit(target).netloc or target.startswith("//"):
        target = url_for("web.home")
    return redirect(target, code=303)
