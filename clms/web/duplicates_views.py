"""Possible duplicate children: the pairs side by side, and for each a form to merge the two
records into one or to mark them as different children.

A merge or a decision commits and goes back to the list (303). A form with a wrong answer (no
record chosen, no reason) shows the list again with each message next to its field (400); a merge
the rules refuse (both records have an open case, ...) says why, at the pair (409). Anything out
of the person's scope is 404.
"""

from __future__ import annotations

from flask import flash, g, redirect, render_template, request, url_for

from clms.auth import allow
from clms.cases.duplicates import (
    DUPLICATE_PAGING,
    DuplicatePage,
    duplicate_villages,
    possible_duplicates,
)
from clms.cases.merge import mark_different, merge_children
from clms.db import db, read_only
from clms.errors import Problem
from clms.i18n import Msg
from clms.locale import localize
from clms.web import bp, flash_problem

DUPLICATE_ROLES = ("officer", "supervisor", "admin")


@bp.route("/duplicates")
@allow(*DUPLICATE_ROLES)
def duplicates_index():
    """The pairs of records in the person's villages that may be the same child, best first."""
    return _list(request.args)


@bp.route("/duplicates/merge", methods=["POST"])
@allow(*DUPLICATE_ROLES)
def duplicates_merge():
    """Merge the pair posted: ``keep`` names the record kept, the other one is merged into it."""
    form = request.form
    a, b, keep = form.get("a", ""), form.get("b", ""), form.get("keep", "")
    # the record kept must be one of the pair; anything else is "no choice made"
    kept = keep if keep in (a, b) and a != b else ""
    merged = (b if kept == a else a) if kept else ""
    session = db()
    try:
        merge_children(session, g.user, kept, merged, form.get("reason", ""))
    except Problem as p:
        if p.status == 404:
            raise
        session.rollback()
        return _list(form, failed=(f"{a}-{b}", p))
    session.commit()
    flash(localize(Msg("Records merged: {merged} is now part of {kept}; its visits, alerts and "
                       "cases moved with it.", merged=merged, kept=kept)), "success")  # fmt: skip
    return _back(form)


@bp.route("/duplicates/different", methods=["POST"])
@allow(*DUPLICATE_ROLES)
def duplicates_different():
    """Mark the pair posted as two different children: it is not shown again."""
    form = request.form
    a, b = form.get("a", ""), form.get("b", "")
    session = db()
    try:
        mark_different(session, g.user, a, b)
    except Problem as p:
        if p.status == 404:
            raise
        session.rollback()
        return _list(form, failed=(f"{a}-{b}", p))
    session.commit()
    flash(localize(Msg("{a} and {b} marked as different children; the pair is no longer "
                       "listed.", a=a, b=b)), "success")  # fmt: skip
    return _back(form)


def _list(args, *, failed: tuple[str, Problem] | None = None):
    """The list page for the filter in ``args`` (``village``, ``page``); ``failed``: the pair
    whose form was refused, and why (shown next to its fields and in the summary)."""
    session = db()
    # a read of the whole scope: on SQLite it must not hold the single write lock meanwhile
    session.commit()  # nothing written here (a refused form was rolled back)
    read_only(session)
    village = args.get("village") or None
    number = DUPLICATE_PAGING.read(args).page
    status = 200
    try:
        page = possible_duplicates(session, g.user, village=village, page=number)
    except Problem as p:
        if p.status == 404:
            raise
        status = flash_problem(p)
        page = DuplicatePage([], 0, 1, 1)
    failed_key, problem = failed if failed else (None, None)
    errors = {name: localize(msg) for name, msg in problem.fields.items()} if problem else {}
    refusal = localize(problem.msg) if problem and not problem.fields else None
    if problem is not None:
        status = problem.status
    return render_template(
        "duplicates_index.html",
        page=page,
        village=village,
        villages=duplicate_villages(session, g.user),
        failed_key=failed_key,
        errors=errors,
        refusal=refusal,
        values=args if problem else {},
    ), status


def _back(form):
    """Back to the list as it was: same village filter, same page."""
    query = {k: form.get(k) for k in ("village", "page") if form.get(k)}
    return redirect(url_for("web.duplicates_index", **query), code=303)
