"""The officer's alert queue, one alert with its history and actions, and a child's record."""

from __future__ import annotations

from flask import abort, flash, g, redirect, render_template, request, url_for

from clms.auth import allow
from clms.db import db
from clms.errors import Problem
from clms.models import SEVERITIES
from clms.operations.alerts import (
    STATUS_FILTERS,
    AlertPage,
    acknowledge_alert,
    alert_details,
    assign_alert,
    child_record,
    describe_deadline,
    dismiss_alert,
    explain_reason,
    list_alerts,
    queue_choices,
)
from clms.web import bp

QUEUE_ROLES = ("officer", "supervisor", "admin")
STATUS_WORDS = {
    "active": "Open (new or acknowledged)",
    "all": "All",
    "new": "New",
    "acknowledged": "Acknowledged",
    "dismissed": "Dismissed",
    "case_opened": "Case opened",
}
EVENT_WORDS = {
    "raised": "Raised",
    "updated": "Updated by a later visit",
    "severity_raised": "Severity raised",
    "acknowledged": "Acknowledged",
    "assigned": "Assigned",
    "dismissed": "Dismissed",
    "escalated": "Escalated to the supervisor",
    "case_opened": "Case opened",
}
_HELPERS = {
    "describe_deadline": describe_deadline,
    "explain_reason": explain_reason,
    "status_words": STATUS_WORDS,
    "event_words": EVENT_WORDS,
}


@bp.route("/alerts")
@allow(*QUEUE_ROLES)
def alerts_index():
    """The queue of the alerts in the person's areas, most urgent first, with GET filters."""
    args = request.args
    filters = {
        "severity": args.get("severity") or None,
        "village": args.get("village") or None,
        "supplier": args.get("supplier") or None,
        "overdue": {"true": True, "false": False}.get(args.get("overdue", "")),
        "status": args.get("status") or None,
    }
    session = db()
    status_code = 200
    try:
        page = list_alerts(session, g.user, page=args.get("page", 1, type=int), **filters)
    except Problem as p:
        flash(p.message, "error")
        page, status_code = AlertPage(rows=[], total=0, page=1, pages=1), 400
    villages, suppliers = queue_choices(session, g.user)
    # the filters as given, for the pagination links
    query = {k: v for k, v in args.items() if k in filters and v}
    return render_template(
        "alerts_index.html",
        page=page,
        filters=filters,
        query=query,
        villages=villages,
        suppliers=suppliers,
        severities=SEVERITIES,
        statuses=STATUS_FILTERS,
        **_HELPERS,
    ), status_code


@bp.route("/alerts/<int:alert_id>")
@allow(*QUEUE_ROLES)
def alert_detail(alert_id: int):
    """One alert: why it was raised, its deadlines, its history and the actions on it."""
    detail = alert_details(db(), g.user, alert_id)
    if detail is None:
        abort(404)
    return render_template("alert_detail.html", d=detail, a=detail.alert, **_HELPERS)


@bp.route("/alerts/<int:alert_id>/acknowledge", methods=["POST"])
@allow(*QUEUE_ROLES)
def alert_acknowledge(alert_id: int):
    """Acknowledge the alert, then back to its page."""
    return _act(alert_id, "Alert acknowledged.", acknowledge_alert)


@bp.route("/alerts/<int:alert_id>/assign", methods=["POST"])
@allow(*QUEUE_ROLES)
def alert_assign(alert_id: int):
    """Assign the alert to the officer chosen in the form, then back to its page."""
    assignee = request.form.get("assignee", "")
    return _act(alert_id, f"Alert assigned to {assignee}.", assign_alert, assignee)


@bp.route("/alerts/<int:alert_id>/dismiss", methods=["POST"])
@allow(*QUEUE_ROLES)
def alert_dismiss(alert_id: int):
    """Dismiss the alert with the reason typed in the form, then back to its page."""
    return _act(alert_id, "Alert dismissed.", dismiss_alert, request.form.get("reason", ""))


@bp.route("/children/<child_uid>")
@allow(*QUEUE_ROLES)
def child_detail(child_uid: str):
    """A child's record: every visit, what it found and how it was classified; the alerts."""
    record = child_record(db(), g.user, child_uid, include_name=True)
    if record is None:
        abort(404)
    if record["child"]["child_id"] != child_uid:  # a record merged into another: that child
        return redirect(url_for("web.child_detail", child_uid=record["child"]["child_id"]), 303)
    from clms.cases.queries import child_cases_by_uid

    cases = child_cases_by_uid(db(), record["child"]["child_id"])
    return render_template("child_detail.html", r=record, cases=cases, **_HELPERS)


def _act(alert_id: int, done: str, operation, *args):
    """Run one action on the alert: commit and say so, or say why not; back to the alert."""
    session = db()
    try:
        operation(session, g.user, alert_id, *args)
    except Problem as p:
        if p.status == 404:
            raise
        session.rollback()
        flash(p.message, "error")
    else:
        session.commit()
        flash(done, "success")
    return redirect(url_for("web.alert_detail", alert_id=alert_id), code=303)
