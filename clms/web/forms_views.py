"""Web pages for administrators: the forms, their versions, and publishing a new version."""

from __future__ import annotations

from flask import current_app, flash, g, redirect, render_template, request, url_for

from clms.audit import _Actor
from clms.auth import allow
from clms.db import db
from clms.errors import Problem
from clms.i18n import N_, Msg, NMsg
from clms.intake.decrypt import decrypt_pending
from clms.locale import gettext, localize
from clms.web import bp, flash_problem
from forms import crypto
from forms.encryption import FormKeyError, active_key, generate_form_key, waiting_count
from forms.publish import form_summaries, form_with_versions, publish_form, validate_setting

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
        result = publish_form(
            session, upload.filename, upload.read(), published_by=g.user,
            validate=validate_setting(current_app.config),
        )  # fmt: skip
    except Problem as p:
        return _publish_failed(p, session)
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
    session = db()
    form, versions = form_with_versions(session, xml_form_id)
    return render_template(
        "forms_detail.html",
        form=form,
        versions=versions,
        form_state=form_state,
        key=active_key(session, form.id),
        waiting=waiting_count(session, form.id),
        min_passphrase=crypto.MIN_PASSPHRASE_LENGTH,
    )


@bp.route("/forms/<xml_form_id>/key", methods=["POST"])
@allow("admin")
def form_keygen(xml_form_id: str):
    """Encrypt the form: a key pair whose private key the typed passphrase protects (never
    stored), and a new version carrying the public key."""
    session = db()
    form, _versions = form_with_versions(session, xml_form_id)
    passphrase = request.form.get("passphrase", "")
    if passphrase != request.form.get("passphrase_again", ""):
        return _encryption_failed(xml_form_id, Msg("The two passphrases differ."))
    if len(passphrase) < crypto.MIN_PASSPHRASE_LENGTH:
        return _encryption_failed(
            xml_form_id,
            Msg("The passphrase needs at least {n} characters.", n=crypto.MIN_PASSPHRASE_LENGTH),
        )
    try:
        key = generate_form_key(session, form, passphrase, actor=g.user)
    except Problem as p:
        # this page words a refused key its own way: it shows which form
        said = Msg("This form already has a key.") if isinstance(p, FormKeyError) else p
        return _encryption_failed(xml_form_id, said, session)
    version = form.live_version.version
    session.commit()
    done = Msg(
        "The form is encrypted (key {fingerprint}); phones get version {version}. Keep the "
        "passphrase safe: without it nothing sent with this key can be read.",
        fingerprint=key.fingerprint[:16],
        version=version,
    )
    flash(localize(done), "success")
    return redirect(url_for("web.form_detail", xml_form_id=xml_form_id))


@bp.route("/forms/<xml_form_id>/decrypt", methods=["POST"])
@allow("admin")
def form_decrypt(xml_form_id: str):
    """Decrypt the submissions waiting for the form's key with the typed passphrase (used for
    this request only), then process them like any other submission."""
    session = db()
    form_with_versions(session, xml_form_id)  # 404 for an unknown form
    passphrase = request.form.get("passphrase", "")
    actor = _Actor(g.user.id, g.user.username, g.user.role)
    # the work runs in sessions of its own, one transaction per submission: end the request's
    # (on SQLite it holds the write lock they need)
    session.rollback()
    try:
        result = decrypt_pending(
            current_app.extensions["clms_sessionmaker"], passphrase, xml_form_id, actor=actor
        )
    except crypto.WrongPassphrase:  # worded for this page, as above
        return _encryption_failed(
            xml_form_id, Msg("The passphrase does not unlock this form's key; nothing changed.")
        )
    except FormKeyError:
        return _encryption_failed(xml_form_id, Msg("This form has no key."))
    done = NMsg(
        "Decrypted {n} submission: {parsed} parsed, {review} for review.",
        "Decrypted {n} submissions: {parsed} parsed, {review} for review.",
        n=result.decrypted,
        parsed=result.parsed,
        review=result.review,
    )
    flash(localize(done), "success")
    if result.failed:
        failed = NMsg(
            "{n} submission could not be decrypted and still waits: {detail}",
            "{n} submissions could not be decrypted and still wait: {detail}",
            n=len(result.failed),
            detail="; ".join(f"{instance_id}: {why}" for instance_id, why in result.failed),
        )
        flash(localize(failed), "error")
    return redirect(url_for("web.form_detail", xml_form_id=xml_form_id))


def _encryption_failed(xml_form_id: str, told: Problem | Msg, session=None):
    """The form's page again (HTTP 400) with what was wrong; nothing was changed (``session``
    is rolled back)."""
    flash_problem(told, session)
    response = form_detail(xml_form_id)
    return response, 400


def _publish_failed(told: Problem | str, session=None):
    """The forms page again (HTTP 400) with what was wrong; nothing was published."""
    flash_problem(told, session)
    return render_template(
        "forms_index.html", forms=form_summaries(db()), form_state=form_state
    ), 400
