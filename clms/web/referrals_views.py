"""The provider's pages: the referrals sent to its organisation, and answering them.

A provider sees only its own organisation's referrals, and of each child only what the consent
covers (or, under an override, the minimum the service needs). Anything else is 404.
"""

from __future__ import annotations

from flask import abort, current_app, flash, g, redirect, render_template, request, url_for
from markupsafe import Markup

from clms.auth import allow
from clms.cases import workflow as wf
from clms.cases.queries import (
    REFERRAL_CURSORS,
    REFERRAL_FILTERS,
    REFERRAL_PAGING,
    provider_referral,
    provider_referrals,
)
from clms.cases.referrals import accept_referral, complete_referral, reject_referral
from clms.db import db
from clms.errors import Problem
from clms.i18n import Msg
from clms.locale import localize
from clms.models import Referral, utcnow
from clms.paging import Page
from clms.web import bp, flash_problem


@bp.route("/referrals")
@allow("provider")
def referrals_index():
    """The referrals sent to the provider's organisation: waiting ones first."""
    status = request.args.get("status") or None
    asked = REFERRAL_PAGING.read(request.args)
    code = 200
    try:
        key = REFERRAL_CURSORS.read(request.args, "waiting")  # after (before) a row, by its key
        found = provider_referrals(db(), g.user, status=status, page=asked.page, key=key)
    except Problem as p:
        flash_problem(p)
        found, code = Page([], 0, 1, 1, asked.per_page), 400
    return render_template(
        "referrals_index.html",
        rows=found.rows,
        total=found.total,
        pages=found.pages,
        page=found.page,
        next_key=found.next_key,
        previous_key=found.previous_key,
        status=status or "open",
        statuses=REFERRAL_FILTERS,
    ), code


@bp.route("/referrals/<int:referral_id>", methods=["GET", "POST"])
@allow("provider")
def referral_detail(referral_id: int):
    """One referral; POST answers it (``action``: accept, reject or complete)."""
    session = db()
    errors: dict[str, str] = {}
    status = 200
    if request.method == "POST":
        referral = session.get(Referral, referral_id)
        if referral is None or g.user.provider_id is None:
            abort(404)
        if referral.provider_id != g.user.provider_id:
            abort(404)  # another organisation's referral: not found, whatever the form says
        action = request.form.get("action", "")
        form = request.form
        operations = {
            "accept": (accept_referral, {}, Msg("Referral accepted.")),
            "reject": (
                reject_referral,
                {"reason": form.get("reason"), "outcome": form.get("outcome") or None},
                Msg("Referral rejected; the case officer is told why."),
            ),
            "complete": (
                complete_referral,
                {"outcome": form.get("outcome"), "service_date": form.get("service_date"),
                 "note": form.get("note")},
                Msg("Thank you: the outcome is recorded."),
            ),
        }  # fmt: skip
        if action not in operations:
            abort(400)
        operation, kwargs, done = operations[action]
        try:
            policy = wf.Policy.from_config(current_app.config)  # the workflow's settings
            operation(session, g.user, referral_id, policy=policy, **kwargs)
        except Problem as p:
            if p.status == 404:
                raise
            session.rollback()
            if p.fields:
                errors, status = {k: localize(m) for k, m in p.fields.items()}, 400
            else:
                status = flash_problem(p)
        else:
            session.commit()
            flash(localize(done), "success")
            return redirect(url_for("web.referral_detail", referral_id=referral_id), code=303)
    view = provider_referral(session, g.user, referral_id)
    if view is None:
        abort(404)
    return render_template(
        "referral_detail.html",
        r=view,
        errors=errors,
        values=request.form,
        action=request.form.get("action"),
        outcomes=wf.REFERRAL_DONE_OUTCOMES,
        # a service date cannot be later than today (the attribute, escaped as any value)
        date_limit=Markup('max="{}"').format(utcnow().date().isoformat()),
    ), status
