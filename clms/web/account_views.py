"""A person's own account: their password and the language of the pages (``/profile``)."""

from __future__ import annotations

from flask import current_app, flash, g, redirect, render_template, request, session, url_for

from clms.auth import allow, password_min_length
from clms.auth.accounts import WrongPassword, change_own_password, set_language, set_up_own_phone
from clms.auth.limits import Limits
from clms.auth.users import DEVICE_TOKEN_DAYS, UserError
from clms.db import db
from clms.i18n import Msg, locale_name
from clms.locale import languages, localize
from clms.models import ROLES
from clms.security import use_once
from clms.web import bp
from clms.web.notifications_views import NOTICE_ROLES
from clms.web.users_views import ALREADY_SHOWN, phone_page


def _profile(errors: dict | None = None, status: int = 200):
    return render_template(
        "profile.html", errors=errors or {}, locales=[(c, locale_name(c)) for c in languages()],
        min_length=password_min_length(current_app.config),
        notifications="notifications.settings" if g.user.role in NOTICE_ROLES else None,
    ), status  # fmt: skip


@bp.route("/profile")
@allow(*ROLES)
def own_profile():
    """Who I am, my password, my language (and, when the application has it, which events also
    come to me by e-mail)."""
    return _profile()


@bp.route("/profile/password", methods=["POST"])
@allow(*ROLES)
def own_password():
    """Change my password (the current one first). My other sessions end, on every device; this
    one goes on."""
    form = request.form
    new = form.get("password", "")
    if new != form.get("password_again", ""):
        return _profile({"password_again": localize(Msg("The two passwords differ."))}, 400)
    try:
        change_own_password(
            db(), g.user, form.get("current", ""), new, realm=current_app.config["DIGEST_REALM"],
            address=request.remote_addr or "", limits=Limits.from_config(current_app.config),
            min_length=password_min_length(current_app.config),
        )  # fmt: skip
    except UserError as p:
        _answered(p)
        return _profile({p.field or "password": localize(p)}, p.status)
    epoch = g.user.session_epoch
    db().commit()
    session["epoch"] = epoch  # this session carries on; every other one ended
    flash(localize(Msg("Your password is changed. You are signed out everywhere else.")),
          "success")  # fmt: skip
    return redirect(url_for("web.own_profile"))


@bp.route("/profile/language", methods=["POST"])
@allow(*ROLES)
def own_language():
    """The language I read the pages in."""
    locale = request.form.get("locale", "")
    try:
        set_language(db(), g.user, locale, actor=g.user, languages=languages())
    except UserError as p:
        db().rollback()
        return _profile({"locale": localize(p)}, p.status)
    db().commit()
    session["locale"] = locale
    g.pop("locale", None)  # the message below, in the language just chosen
    flash(localize(Msg("Your language is saved.")), "success")
    return redirect(url_for("web.own_profile"))


@bp.route("/profile/phone", methods=["POST"])
@allow("monitor")
def own_phone():
    """A monitor sets up a phone of their own, with their password: a device token for it, shown
    once with the QR code that configures ODK Collect (as an administrator would issue it from
    the person's page); at most a few live ones (then an administrator revokes one)."""
    if not use_once(request.form):  # a reload of the page that showed the code
        flash(localize(ALREADY_SHOWN), "error")
        return redirect(url_for("web.home"), 303)
    try:
        token, row = set_up_own_phone(
            db(), g.user, request.form.get("password", ""), address=request.remote_addr or "",
            limits=Limits.from_config(current_app.config),
            label=localize(Msg("set up by its monitor")),
            days=int(current_app.config.get("DEVICE_TOKEN_DAYS") or DEVICE_TOKEN_DAYS),
        )  # fmt: skip
    except UserError as p:
        _answered(p)
        flash(localize(p), "error")
        return redirect(url_for("web.home"))
    return phone_page(g.user, token, row, back=url_for("web.home"))


def _answered(p: UserError) -> None:
    """End the request's transaction after a refusal: a wrong password's count and audit entry
    are kept (as the sign-in page keeps them), anything else is undone."""
    if isinstance(p, WrongPassword):
        db().commit()
    else:
        db().rollback()
