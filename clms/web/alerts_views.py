"""The officer's alert queue, one alert with its history and actions, and a child's record."""

from __future__ import annotations

from flask import abort, flash, g, redirect, render_template, request, url_for

from alerts.deadlines import deadline_msg
from alerts.lifecycle import (
    BulkResult,
    acknowledge_alert,
    act_on_alerts,
    assign_alert,
    dismiss_alert,
)
from alerts.queue import (
    ALERT_CURSORS,
    ALERT_PAGING,
    SORTS,
    STATUS_FILTERS,
    AlertPage,
    alert_details,
    bulk_assignees,
    child_record,
    list_alerts,
    queue_choices,
)
from alerts.reasons import explain_reason as explain_reason_in
from clms.auth import allow
from clms.cases.ages import child_age, child_age_by_uid
from clms.db import db
from clms.errors import Problem
from clms.i18n import N_, Msg
from clms.lexicon import FAMILY_OF_FIELD
from clms.locale import gettext, localize
from clms.models import SEVERITIES, utcnow
from clms.vocabulary import say
from clms.web import bp, flash_problem

QUEUE_ROLES = ("officer", "supervisor", "admin")
STATUS_WORDS = {
    "active": N_("Open (new or acknowledged)"),
    "all": N_("All"),
    "new": N_("New"),
    "acknowledged": N_("Acknowledged"),
    "dismissed": N_("Dismissed"),
    "case_opened": N_("Case opened"),
    "withdrawn": N_("Withdrawn at the source"),
}
EVENT_WORDS = {
    "raised": N_("Raised"),
    "updated": N_("Updated by a later visit"),
    "severity_raised": N_("Severity raised"),
    "acknowledged": N_("Acknowledged"),
    "assigned": N_("Assigned"),
    "dismissed": N_("Dismissed"),
    "escalated": N_("Escalated to the supervisor"),
    "case_opened": N_("Case opened"),
    "verified": N_("Verified at the case's visit"),
    "child_merged": N_("Duplicate record of the child merged"),
    "withdrawn": N_("Closed: every visit behind it was withdrawn by its server"),
    "source_withdrawn": N_("Recomputed without a visit its server withdrew"),
    "restored": N_("Reopened or recomputed: its server restored a visit"),
}
#: what a visit found, as the alert pages name it (``worst_form`` is "worst form")
FINDING_WORDS = {
    "worst_form": N_("worst form"),
    "hazardous": N_("hazardous"),
    "child_labour": N_("child labour"),
    "at_risk": N_("at risk"),
    "none": N_("none"),
}
#: the keys of an alert event's detail, as its history shows them
ALERT_DETAIL_WORDS = {
    "assignee": N_("assignee"),
    "previous": N_("previous"),
    "reason": N_("reason"),
    "note": N_("note"),
    "why": N_("why"),
    "supervisors": N_("supervisors"),
    "category": N_("category"),
    "severity": N_("severity"),
    "source": N_("source"),
    "classification_id": N_("classification id"),
    "case_id": N_("case id"),
    "case_number": N_("case number"),
    "by_merge": N_("by merge"),
    "kept_alert": N_("kept alert"),
    "kept_record": N_("kept record"),
    "merged_record": N_("merged record"),
    "confirmed": N_("allegation confirmed"),
    "visited_on": N_("visited on"),
    # a withdrawal or a restore by the submission's server (alerts.withdrawn)
    "logical_id": N_("submission (its first version)"),
    "form_id": N_("form id"),
    "submission": N_("submission"),
    "server": N_("server"),
    "previous_status": N_("status before"),
    "from": N_("before"),
    "child_visits": N_("child visits still behind it"),
}


def finding_word(category: str | None) -> str:
    """What a visit found (a category code), in the reader's language."""
    if category is None:
        return "—"
    return gettext(FINDING_WORDS.get(category, category.replace("_", " ")))


def alert_detail_label(key: str) -> str:
    """The label of one key of an alert event's detail, in the reader's language."""
    return gettext(ALERT_DETAIL_WORDS.get(key, key.replace("_", " ")))


def describe_deadline(alert, now) -> str:
    """An alert's deadline in words, in the reader's language."""
    return localize(deadline_msg(alert, now))


def explain_reason(reason) -> str:
    """A reason of a classification or an alert in words, in the reader's language."""
    return explain_reason_in(reason, gettext)


def alert_detail_value(key: str, value) -> str:
    """One value of an alert event's detail: a severity or a finding in words, the rest as
    stored."""
    if key == "severity" and isinstance(value, str):
        return say(value)
    if key in ("category", "category_raised_from") and isinstance(value, str):
        return finding_word(value)
    if isinstance(value, bool):
        return gettext("yes") if value else gettext("no")
    if key in ("reason", "previous_status") and value in ("deleted", "rejected", "not_approved",
                                                          "new", "acknowledged"):  # fmt: skip
        return say(value)
    if key == "from" and isinstance(value, dict):
        return ", ".join(alert_detail_value(k, v) for k, v in value.items())
    if key == "child_visits" and isinstance(value, list):
        return str(len(value))
    return str(value)


_HELPERS = {
    "describe_deadline": describe_deadline,
    "explain_reason": explain_reason,
    "status_words": STATUS_WORDS,
    "event_words": EVENT_WORDS,
    "finding_word": finding_word,
    "alert_detail_label": alert_detail_label,
    "alert_detail_value": alert_detail_value,
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
        "sort": args.get("sort") or None,
    }
    session = db()
    status_code = 200
    try:
        sort = filters["sort"] if filters["sort"] in SORTS else "urgency"
        key = ALERT_CURSORS.read(args, sort)  # deep pages: after (or before) a row, by its key
        page = list_alerts(session, g.user, page=ALERT_PAGING.read(args).page, key=key, **filters)
    except Problem as p:
        flash_problem(p)
        page, status_code = AlertPage(rows=[], total=0, page=1, pages=1), 400
    villages, suppliers = queue_choices(session, g.user)
    # the filters as given, for the pagination links (and, without the order, the sort links)
    query = {k: v for k, v in args.items() if k in filters and v}
    return render_template(
        "alerts_index.html",
        page=page,
        filters=filters,
        query=query,
        unsorted={k: v for k, v in query.items() if k != "sort"},
        villages=villages,
        suppliers=suppliers,
        severities=SEVERITIES,
        statuses=STATUS_FILTERS,
        sorts=SORTS,
        assignees=bulk_assignees(session, g.user),
        main_reason=main_reason,
        **_HELPERS,
    ), status_code


#: the largest id a database integer holds
MAX_ID = 2**31 - 1


@bp.route("/alerts/bulk", methods=["POST"])
@allow(*QUEUE_ROLES)
def alerts_bulk():
    """Acknowledge, or assign, the alerts ticked in the queue; back to the queue as it was, with
    what was done and what was refused and why."""
    form = request.form
    # ids as the database holds them: ASCII digits, within its integer (else not an alert)
    chosen = [i.strip() for i in form.getlist("alert")]
    ids = [int(i) for i in chosen if i.isascii() and i.isdigit() and int(i) <= MAX_ID]
    action = form.get("action", "")
    session = db()
    try:
        result = act_on_alerts(session, g.user, ids, action, assignee=form.get("assignee"))
    except Problem as p:
        flash_problem(p, session)
    else:
        session.commit()
        _flash_bulk(result)
    back = {k: v for k, v in form.items() if k in _BACK_KEYS and v}
    return redirect(url_for("web.alerts_index", **back), code=303)


_BACK_KEYS = ("severity", "village", "supplier", "overdue", "status", "sort", "page", "after",
              "before")  # fmt: skip


def _flash_bulk(result: BulkResult) -> None:
    """The summary of a bulk action: how many were done (which), and each refusal with why."""
    n, ids = len(result.done), ", ".join(f"#{i}" for i in result.done)
    if result.done and result.action == "acknowledge":
        done = (Msg("{n} alert acknowledged: {ids}.", n=n, ids=ids) if n == 1
                else Msg("{n} alerts acknowledged: {ids}.", n=n, ids=ids))  # fmt: skip
        flash(localize(done), "success")
    elif result.done:
        who = result.assignee
        if n == 1:
            done = Msg("{n} alert assigned to {who}: {ids}.", n=n, who=who, ids=ids)
        else:
            done = Msg("{n} alerts assigned to {who}: {ids}.", n=n, who=who, ids=ids)
        flash(localize(done), "success")
    if result.refused:
        n = len(result.refused)
        why = "; ".join(f"#{i}: {localize(msg)}" for i, msg in result.refused)
        refused = (Msg("{n} alert refused: {why}.", n=n, why=why) if n == 1
                   else Msg("{n} alerts refused: {why}.", n=n, why=why))  # fmt: skip
        flash(localize(refused), "error")


#: the facts of a reason that say what was found (codes of a family of the vocabulary)
FOUND_FIELDS = ("worst_form_signs", "signs", "hazards", "work_activities")


def main_reason(alert) -> str:
    """What was found, in a few words: the tasks, hazards or signs the first reason names, in
    the reader's words ("Carrying heavy loads..."); else the hours against their limit; else the
    first reason's rule without its facts (the whole sentence is on the alert's page)."""
    reasons = alert.reasons or []
    if not reasons:
        return ""
    first = reasons[0]
    facts = first.get("facts") if isinstance(first, dict) else None
    if isinstance(facts, dict):
        for field in FOUND_FIELDS:
            codes = facts.get(field)
            if isinstance(codes, list) and codes:
                return "; ".join(say(str(c), FAMILY_OF_FIELD[field]) for c in codes)
        hours, limit = facts.get("work_hours_7d"), facts.get("threshold")
        if isinstance(hours, int | float) and isinstance(limit, int | float):
            return localize(Msg("{hours} h of work in 7 days (limit {limit})",
                                hours=hours, limit=limit))  # fmt: skip
    rule = {"rule": first.get("rule")} if isinstance(first, dict) else first
    return explain_reason(rule)


@bp.route("/alerts/<int:alert_id>")
@allow(*QUEUE_ROLES)
def alert_detail(alert_id: int):
    """One alert: why it was raised, its deadlines, its history and the actions on it."""
    detail = alert_details(db(), g.user, alert_id)
    if detail is None:
        abort(404)
    age = None
    if detail.alert.child_id is not None:  # the age the raising visit recorded, and now
        age = child_age(db(), detail.alert.child_id, detail.now.date(),
                        at_visit=(detail.found_age, detail.found_at))  # fmt: skip
    return render_template("alert_detail.html", d=detail, a=detail.alert, age=age, **_HELPERS)


@bp.route("/alerts/<int:alert_id>/acknowledge", methods=["POST"])
@allow(*QUEUE_ROLES)
def alert_acknowledge(alert_id: int):
    """Acknowledge the alert, then back to its page."""
    return _act(alert_id, Msg("Alert acknowledged."), acknowledge_alert)


@bp.route("/alerts/<int:alert_id>/assign", methods=["POST"])
@allow(*QUEUE_ROLES)
def alert_assign(alert_id: int):
    """Assign the alert to the officer chosen in the form, then back to its page."""
    assignee = request.form.get("assignee", "")
    done = Msg("Alert assigned to {assignee}.", assignee=assignee)
    return _act(alert_id, done, assign_alert, assignee)


@bp.route("/alerts/<int:alert_id>/dismiss", methods=["POST"])
@allow(*QUEUE_ROLES)
def alert_dismiss(alert_id: int):
    """Dismiss the alert with the reason typed in the form, then back to its page."""
    reason = request.form.get("reason", "")
    return _act(alert_id, Msg("Alert dismissed."), dismiss_alert, reason)


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
    age = child_age_by_uid(db(), record["child"]["child_id"], utcnow().date())
    return render_template("child_detail.html", r=record, cases=cases, age=age, **_HELPERS)


def _act(alert_id: int, done: Msg, operation, *args):
    """Run one action on the alert: commit and say so, or say why not; back to the alert."""
    session = db()
    try:
        operation(session, g.user, alert_id, *args)
    except Problem as p:
        if p.status == 404:
            raise
        flash_problem(p, session)
    else:
        session.commit()
        flash(localize(done), "success")
    return redirect(url_for("web.alert_detail", alert_id=alert_id), code=303)
