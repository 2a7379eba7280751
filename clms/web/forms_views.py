"""Web pages for administrators: the forms, their versions, and publishing a new version."""

from __future__ import annotations

from flask import flash, g, redirect, render_template, request, url_for

from clms.auth import allow
from clms.db import db
from clms.errors import Problem
from clms.i18n import N_, Msg, gettext, localize
from clms.web import bp
from forms.publish import form_summaries, form_with_versions, publish_form

#: the state of a form, in words ("open": listed and accepting; "closing": accepting but not
#: listed; "closed": neither)
FORM_STATE_WORDS = {"open": N_("open"), "closing": N_("closing"), "closed": N_("closed")}


def form_state(state: str) -> str:
    """The state of a form in the reader's language."""
    return gettext(FORM_STATE_WORDS.get(state, state))


@bp.route("/forms")
@allow("admin")
def forms_index():
    """The forms with their live version and state, and the upload that publishes one."""
    return render_template("forms_index.html", forms=form_summaries(db()), form_state=form_state)


@bp.route("/forms/publish", methods=["POST"])
@allow("admin")
def forms_publish():
    """Publish the uploaded XLSForm or XForm; errors are shown on the forms page (HTTP 400)."""
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        return _publish_failed(
            gettext("Choose an XLSForm (.xlsx, .xls, .md) or XForm (.xml) to publish.")
        )
    session = db()
    try:
        result = publish_form(session, upload.filename, upload.read(), published_by=g.user)
    except Problem as p:
        session.rollback()
        return _publish_failed(p.localized())
    version = result.form_version
    form_id = version.form.xml_form_id
    session.commit()
    done = Msg("Published {form_id} version {version}.", form_id=form_id, version=version.version)
    flash(localize(done), "success")
    for warning in result.warnings:
        flash(warning, "warning")
    return redirect(url_for("web.form_detail", xml_form_id=form_id))


@bp.route("/forms/<xml_form_id>")
@allow("admin")
def form_detail(xml_form_id: str):
    """One form: its versions (live one marked), their warnings and the media they reference."""
    form, versions = form_with_versions(db(), xml_form_id)
    return render_template("forms_detail.html", form=form, versions=versions, form_state=form_state)


def _publish_failed(message: str):
    flash(message, "error")
    return render_template(
        "forms_index.html", forms=form_summaries(db()), form_state=form_state
    ), 400
