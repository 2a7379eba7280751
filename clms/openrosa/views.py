"""OpenRosa endpoints: form list, form and media download, manifest, submission.

Quirks of ODK Collect that these handle (shared/design/protocols.md):
- ``HEAD /submission`` must answer 204; Collect treats any other 2xx as a failure.
- A submission is accepted with 201 only (200 means failure to Collect).
- The ``hash`` in the form list is the md5 of the exact bytes served at ``downloadUrl``.
- Large submissions arrive in several POSTs with the same XML, all but the last carrying
  ``*isIncomplete*=yes``; each adds its attachments to the one stored submission.
"""

from __future__ import annotations

import re
from xml.sax.saxutils import escape

from flask import current_app, g, request, url_for
from sqlalchemy import Row

from clms.audit import record_read
from clms.auth import allow
from clms.cases.entities import DATASET, entity_states
from clms.db import commit_retrying, db
from clms.errors import openrosa_message, problem
from clms.models import Form
from clms.openrosa import bp
from clms.openrosa.media import form_usable, media_for, usable_forms
from clms.openrosa.responses import openrosa_response
from forms.ingest import Attachment, IncomingSubmission, ingest_submission
from forms.publish import form_version

PHONE_ROLES = ("monitor", "officer", "supervisor")


def _external(endpoint: str, **values) -> str:
    """An absolute URL, on CLMS_BASE_URL when the server sits behind a proxy that hides it."""
    base = current_app.config.get("BASE_URL")
    if base:
        return base.rstrip("/") + url_for(endpoint, **values)
    return url_for(endpoint, _external=True, **values)


def _usable_form(xml_form_id: str) -> Form:
    for form in usable_forms(db(), g.user):
        if form.xml_form_id == xml_form_id:
            return form
    raise problem("form.not_found", form_id=xml_form_id)


@bp.route("/formList")
@allow(*PHONE_ROLES)
def form_list():
    """The forms this person may use, each with the md5 of its XForm and its manifest URL."""
    session = db()
    wanted = request.args.get("formID")
    items = []
    for form in usable_forms(session, g.user):
        if wanted and form.xml_form_id != wanted:
            continue
        version = form.live_version
        download = _external(".form_xml", xml_form_id=form.xml_form_id, version=version.version)
        item = (
            f"<xform><formID>{escape(form.xml_form_id)}</formID><name>{escape(form.title)}</name>"
            f"<version>{escape(version.version)}</version><hash>md5:{version.md5}</hash>"
            f"<downloadUrl>{escape(download)}</downloadUrl>"
        )
        if version.media_files:
            manifest = _external(".manifest", xml_form_id=form.xml_form_id)
            item += f"<manifestUrl>{escape(manifest)}</manifestUrl>"
        items.append(item + "</xform>")
    body = '<xforms xmlns="http://openrosa.org/xforms/xformsList">' + "".join(items) + "</xforms>"
    return openrosa_response(body)


@bp.route("/forms/<xml_form_id>/form.xml")
@allow(*PHONE_ROLES)
def form_xml(xml_form_id: str):
    """The XForm exactly as published (its md5 is the hash in the form list).

    ``?version=`` pins the version the form list announced (versions may be empty strings, so
    they travel in the query, not the path); without it, the live version.
    """
    form = _usable_form(xml_form_id)
    version = request.args.get("version", form.live_version.version)
    row = form_version(db(), form, version)
    if row is None:
        raise problem(
            "submission.form_version_unknown",
            form_id=xml_form_id,
            version=version,
            known=repr(form.live_version.version),
        )
    return openrosa_response(row.xml)


@bp.route("/forms/<xml_form_id>/manifest")
@allow(*PHONE_ROLES)
def manifest(xml_form_id: str):
    """The media files of the live version, with hashes of the content built for this person.

    An entity list (cases.csv of a follow-up form with entities) is marked ``type="entityList"``
    with its ``integrityUrl``, as ODK Central's manifest (lib/formats/openrosa.js) has them.
    """
    form = _usable_form(xml_form_id)
    session = db()
    # a case listed for the first time gets its entity here: kept, so the download that follows
    # serves the same ids (and md5)
    files = commit_retrying(session, lambda: media_for(session, g.user, form.live_version))
    entries = "".join(
        ('<mediaFile type="entityList">' if f.entity_list else "<mediaFile>")
        + f"<filename>{escape(f.name)}</filename><hash>md5:{f.md5}</hash>"
        f"<downloadUrl>{escape(_external('.media', xml_form_id=xml_form_id, filename=f.name))}"
        "</downloadUrl>"
        + (
            f"<integrityUrl>{escape(_external('.entity_integrity', dataset=f.entity_list))}"
            "</integrityUrl>"
            if f.entity_list
            else ""
        )
        + "</mediaFile>"
        for f in files
    )
    body = f'<manifest xmlns="http://openrosa.org/xforms/xformsManifest">{entries}</manifest>'
    return openrosa_response(body)


@bp.route("/forms/<xml_form_id>/media/<filename>")
@allow(*PHONE_ROLES)
def media(xml_form_id: str, filename: str):
    """One media file of the live version."""
    form = _usable_form(xml_form_id)
    session = db()

    def find():
        return next((f for f in media_for(session, g.user, form.live_version)
                     if f.name == filename), None)  # fmt: skip

    found = commit_retrying(session, find)  # kept: entities a case list gave (see the manifest)
    if found is None:
        raise problem("not_found")
    if found.name == "cases.csv":  # the monitor's cases, with first names
        record_read(session, g.user, "cases.csv.read", f"form:{xml_form_id}")
    return openrosa_response(found.data, content_type=found.content_type)


@bp.route("/datasets/<dataset>/integrity")
@allow(*PHONE_ROLES)
def entity_integrity(dataset: str):
    """Which of the entities a phone holds were deleted from this person's list (a case closed,
    merged, moved out of their villages or given to another monitor), as ODK Central's
    ``GET /projects/:id/datasets/:name/integrity`` answers: ``?id=`` a comma-separated list of
    entity ids (without it, every entity of the person's list). Collect then removes them.
    """
    if dataset != DATASET:
        raise problem("not_found")
    ids = None
    if "id" in request.args:
        ids = [i.strip() for i in ",".join(request.args.getlist("id")).split(",") if i.strip()]
        for i in ids:
            if not _ENTITY_ID.fullmatch(i):
                raise problem(
                    "request.invalid_parameter",
                    parameter="id",
                    detail=f"has '{i[:40]}', which is not an entity id (a UUID)",
                )
    states = entity_states(db(), g.user, ids)
    entities = "".join(
        f'<entity id="{escape(uuid)}"><deleted>{"true" if deleted else "false"}</deleted></entity>'
        for uuid, deleted in states
    )
    body = f'<?xml version="1.0" encoding="UTF-8"?><data><entities>{entities}</entities></data>'
    return openrosa_response(body)


_ENTITY_ID = re.compile(r"[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}", re.IGNORECASE)


@bp.route("/submission", methods=["HEAD"])
@allow(*PHONE_ROLES)
def submission_probe():
    """Collect's pre-flight: 204 means "send it here, you are signed in"."""
    return openrosa_response(b"", 204)


@bp.route("/submission", methods=["POST"])
@allow(*PHONE_ROLES)
def submission():
    """Receive a submission (or one part of a split one) and answer 201 once it is stored."""
    xml_part = request.files.get("xml_submission_file")
    if xml_part is None:
        raise problem("submission.file_missing")
    attachments = [
        Attachment(name=f.filename or key, content_type=f.mimetype, data=f.read())
        for key, files in request.files.lists()
        if key != "xml_submission_file"
        for f in files
    ]
    session = db()
    user = g.user

    def check_form(form: Row) -> None:
        if not form_usable(session, user, form, for_submission=True):
            raise problem("form.not_assigned", form_id=form.xml_form_id)

    incoming = IncomingSubmission(
        xml=xml_part.read(),
        source="openrosa",
        attachments=attachments,
        submitter=user,
        device_id=_device_id(request.args.get("deviceID")),
    )
    # the request's transaction, run again should a concurrent request win a race
    result = commit_retrying(session, lambda: ingest_submission(session, incoming, check_form))
    text = "Form received successfully." if result.created else "Full submission already received."
    return openrosa_response(openrosa_message(text), 201)


def _device_id(value: str | None) -> str | None:
    """Collect's ``deviceID`` query parameter as stored: control characters (a NUL no text column
    can hold) dropped and cut to the column's 200 characters; it only tells devices apart."""
    if value is None:
        return None
    cleaned = "".join(c for c in value if c.isprintable())[:200]
    return cleaned or None
