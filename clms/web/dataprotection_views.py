"""Data protection for administrators: one child's subject access export and erasure.

``/data-protection`` finds a child by pseudonymous id and shows only what the two actions need
(the id, whether its data was already removed, its open cases: no name). The export downloads
the JSON of :func:`clms.dataprotection.export_child`; the erasure asks for the reason, the
request's reference and the child's id typed again, and for a reason of its own to go ahead
while a case is open. Both are recorded in the audit log before the answer leaves.
"""

from __future__ import annotations

from flask import Response, flash, g, redirect, render_template, request, url_for

from clms.auth import allow
from clms.dataprotection import (
    DataProtectionError,
    erase_child,
    export_child,
    export_json,
    find_subject,
    open_case_numbers,
    visit_count,
)
from clms.db import db
from clms.i18n import Msg
from clms.locale import localize
from clms.models import utcnow
from clms.web import bp


@bp.route("/data-protection")
@allow("admin")
def data_protection():
    """Find a child by its pseudonymous id; the export and erasure forms for it."""
    uid = (request.args.get("child") or "").strip()
    return _page(uid, {}, {})


@bp.route("/data-protection/<child_uid>/export", methods=["POST"])
@allow("admin")
def data_protection_export(child_uid: str):
    """Download everything held about the child as JSON (the reason is required)."""
    session = db()
    try:
        document = export_child(
            session, g.user, child_uid, reason=request.form.get("reason", ""), now=utcnow()
        )
    except DataProtectionError as e:
        session.rollback()
        return _page(child_uid, {"reason": localize(e.msg)}, {}, status=e.status)
    session.commit()  # the child.export entry is kept before the data leaves
    uid = document["child"]["child_uid"]
    return Response(
        export_json(document),
        mimetype="application/json",
        headers={
            "Content-Disposition": f'attachment; filename="child-{uid}.json"',
            "Cache-Control": "no-store",
        },
    )


@bp.route("/data-protection/<child_uid>/erase", methods=["POST"])
@allow("admin")
def data_protection_erase(child_uid: str):
    """Erase the child's personal data for good, on a lawful request."""
    form = request.form
    errors: dict[str, str] = {}
    if (form.get("confirm") or "").strip().upper() != child_uid.strip().upper():
        errors["confirm"] = localize(Msg("Type the child's id, {uid}, to confirm.", uid=child_uid))
    if not (form.get("reason") or "").strip():
        errors["reason"] = localize(
            Msg("Give the reason for the erasure (the lawful request it answers).")
        )
    if errors:
        return _page(child_uid, {}, errors, status=400)
    session = db()
    force_reason = (form.get("force_reason") or "").strip()
    try:
        result = erase_child(
            session, g.user, child_uid, reason=form.get("reason", ""),
            request_ref=form.get("request_ref") or None, force=bool(force_reason),
            force_reason=force_reason, now=utcnow(),
        )  # fmt: skip
    except DataProtectionError as e:
        session.rollback()
        field = "force_reason" if e.status == 409 else "reason"
        return _page(child_uid, {}, {field: localize(e.msg)}, status=e.status)
    session.commit()
    flash(localize(Msg("The personal data of child {uid} was erased; the erasure is in the audit "
                       "log.", uid=result.child_uid)), "success")  # fmt: skip
    return redirect(url_for("web.data_protection", child=result.child_uid), code=303)


def _page(uid: str, export_errors: dict, erase_errors: dict, status: int = 200):
    """The page for ``uid`` (empty: only the search), with the errors of a refused form."""
    session = db()
    subject, not_found, open_cases, visits = None, None, [], 0
    if uid:
        try:
            subject = find_subject(session, uid)
        except DataProtectionError as e:
            not_found = localize(e.msg)
            status = status if status != 200 else 404
        else:
            open_cases = open_case_numbers(session, subject)
            visits = visit_count(session, subject)
    return render_template(
        "data_protection.html",
        uid=uid,
        subject=subject,
        not_found=not_found,
        open_cases=open_cases,
        visits=visits,
        export_errors=export_errors,
        erase_errors=erase_errors,
        values=request.form,
    ), status
