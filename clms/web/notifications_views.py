"""A person's notifications: the count in the header, the list, opening one (marked read, then
the item), marking all read, and which kinds also come by email (``/notifications/settings``,
linked from the person's profile).

Each person sees only their own: another person's notification is the same as one that does not
exist (404). The words of a notification are written here, in the reader's language, from the
codes it keeps (:mod:`clms.notices.words`).
"""

from __future__ import annotations

from flask import Blueprint, flash, g, redirect, render_template, request, url_for

from clms.auth import allow
from clms.db import db
from clms.errors import Problem
from clms.i18n import Msg
from clms.locale import localize
from clms.notices.kinds import KINDS, kinds_for
from clms.notices.preferences import email_choices, save_email_choices
from clms.notices.reading import NOTICE_PAGING, list_notices, mark_all_read, open_notice
from clms.notices.reading import unread_count as _unread_count
from clms.notices.words import path_of, sentence
from clms.web.views import load_web_user

bp = Blueprint("notifications", __name__)
# the same person as on every other page: the session cookie's, checked the same way
bp.before_request(load_web_user)

#: the roles that receive notifications (a monitor works on the phone, a brand on its map, an
#: administrator is told of failures on the home page)
NOTICE_ROLES = ("officer", "supervisor", "provider")


@bp.app_context_processor
def _header():
    """``unread_notices()`` for the header: counted only when a page shows it, once a page."""
    counted: dict = {}

    def unread_notices() -> int | None:
        user = g.get("user")
        if user is None or user.role not in NOTICE_ROLES:
            return None
        if "n" not in counted:
            counted["n"] = _unread_count(db(), user)
        return counted["n"]

    return {"unread_notices": unread_notices}


def words(notice) -> str:
    """What a notification says, in the reader's language."""
    return localize(sentence(notice.kind, notice.code, notice.detail))


@bp.route("/notifications")
@allow(*NOTICE_ROLES)
def index():
    """The person's notifications, newest first, the unread marked."""
    page = list_notices(db(), g.user, page=NOTICE_PAGING.read(request.args).page)
    return render_template("notifications.html", page=page, words=words)


@bp.route("/notifications/<int:notice_id>")
@allow(*NOTICE_ROLES)
def open(notice_id: int):  # the endpoint notifications.open
    """Open a notification: marked read, then its item (a note: the case's timeline)."""
    notice = open_notice(db(), g.user, notice_id)
    db().commit()
    return redirect(request.script_root + path_of(notice.kind, notice.subject, notice.subject_id),
                    code=303)  # fmt: skip


@bp.route("/notifications/read-all", methods=["POST"])
@allow(*NOTICE_ROLES)
def read_all():
    """Mark every notification of the person read."""
    done = mark_all_read(db(), g.user)
    db().commit()
    flash(localize(Msg("Notifications marked read: {n}.", n=done)), "success")
    return redirect(url_for("notifications.index"), code=303)


@bp.route("/notifications/settings", methods=["GET", "POST"])
@allow(*NOTICE_ROLES)
def settings():
    """Which kinds of notification also come by email (each: in the application only, or also
    by email)."""
    session = db()
    errors: dict[str, str] = {}
    status = 200
    if request.method == "POST":
        answers = {k: request.form[k] for k in kinds_for(g.user.role) if k in request.form}
        try:
            save_email_choices(session, g.user, answers)
        except Problem as p:
            session.rollback()
            errors = {name: localize(m) for name, m in p.fields.items()}
            status = 400
        else:
            session.commit()
            flash(localize(Msg("Your email settings are saved.")), "success")
            return redirect(url_for("notifications.settings"), code=303)
    choices = email_choices(session, g.user)
    return (
        render_template("notification_settings.html", choices=choices, kinds=KINDS,
                        errors=errors),
        status,
    )  # fmt: skip
