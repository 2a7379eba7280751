"""The alert queue and children's records in the JSON API (officers and supervisors).

``GET /api/v1/alerts`` lists the caller's queue, most urgent first; ``GET /api/v1/alerts/<id>``
gives one alert with its history; ``POST /api/v1/alerts/<id>/acknowledge``, ``/assign``
(``{"assignee": username}``) and ``/dismiss`` (``{"reason": text}``) act on it; and
``GET /api/v1/children/<child_id>`` gives a child's visits, classifications and alerts by the
pseudonymous id. An alert or a child outside the caller's areas answers 404, as one that does not
exist would. Datetimes are ISO 8601 in UTC.
"""

from __future__ import annotations

import datetime as dt

from flask import g, jsonify, request, url_for

from alerts.deadlines import due_at, is_overdue
from alerts.lifecycle import acknowledge_alert, assign_alert, dismiss_alert
from alerts.queue import (
    ALERT_CURSORS,
    ALERT_PAGING,
    SORTS,
    alert_details,
    child_record,
    get_alert,
    list_alerts,
)
from clms.api import bp
from clms.auth import allow
from clms.db import db
from clms.errors import problem
from clms.models import Alert

QUEUE_ROLES = ("officer", "supervisor", "admin")
_BOOLEANS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


@bp.route("/alerts")
@allow(*QUEUE_ROLES)
def alerts_list():
    """The caller's alert queue.

    Query parameters (all optional): ``severity`` (critical, high, medium, low), ``village`` and
    ``supplier`` (codes), ``overdue`` (true/false), ``status`` (active: the default, all, new,
    acknowledged, dismissed, case_opened), ``sort`` (urgency: the default; severity, deadline,
    village, age or raised, "-" first to reverse), ``per_page`` (1-200, default 50), and where
    to start: ``after`` (the cursor ``next`` of the page before) or ``before`` (the cursor
    ``previous`` of the page after), or ``page`` (from 1, counted from the start: kept for the
    clients that use it; a deep numbered page costs what it skips, a cursor does not).
    Answer: ``{"alerts": [...], "page", "per_page", "total", "pages", "next", "previous"}``
    (``next``/``previous``: the cursor of the next/previous page, null where there is none),
    and a ``Link`` header with the same pages as URLs (``rel="next"``, ``rel="prev"``).
    """
    args = request.args
    overdue = _boolean(args, "overdue")  # refused before a page that is not a number, as ever
    asked = ALERT_PAGING.read(args, strict=True)
    sort = _text(args, "sort")
    key = ALERT_CURSORS.read(args, sort or "urgency") if sort in (None, *SORTS) else None
    if key is not None and _text(args, "page"):
        given = "before" if key.backward else "after"
        raise problem(
            "request.invalid_parameter",
            parameter="page",
            detail=f"cannot be given with a cursor ('{given}')",
        )
    page = list_alerts(
        db(),
        g.user,
        severity=_text(args, "severity"),
        village=_text(args, "village"),
        supplier=_text(args, "supplier"),
        overdue=overdue,
        status=_text(args, "status"),
        sort=sort,
        page=asked.page,
        per_page=asked.per_page,
        key=key,
        keep_past_last=True,  # a client reads pages until one is empty
    )
    answer = jsonify(
        alerts=[alert_json(a, page.now) for a in page.rows],
        page=page.page,
        per_page=page.per_page,
        total=page.total,
        pages=page.pages,
        next=page.next_key,
        previous=page.previous_key,
    )
    links = [
        f'<{_page_url(args, name, cursor)}>; rel="{rel}"'
        for name, cursor, rel in (("after", page.next_key, "next"),
                                  ("before", page.previous_key, "prev"))
        if cursor is not None
    ]  # fmt: skip
    if links:
        answer.headers["Link"] = ", ".join(links)
    return answer


def _page_url(args, name: str, cursor: str) -> str:
    """This request's URL for the page at ``cursor`` (``after`` or ``before``), its other
    parameters kept."""
    kept = {k: v for k, v in args.items() if k not in ("page", "after", "before")}
    return url_for("api.alerts_list", _external=True, **kept, **{name: cursor})


@bp.route("/alerts/<int:alert_id>")
@allow(*QUEUE_ROLES)
def alert_get(alert_id: int):
    """One alert, with who it is assigned to and its history (oldest first)."""
    detail = alert_details(db(), g.user, alert_id)
    if detail is None:
        raise problem("not_found")
    a = detail.alert
    body = alert_json(a, detail.now) | {
        "source": a.source,
        "needs_verification": a.needs_verification,
        "ack_due_at": _iso(a.ack_due_at),
        "visit_due_at": _iso(a.visit_due_at),
        "acknowledged_at": _iso(a.acknowledged_at),
        "first_visit_at": _iso(a.first_visit_at),
        "assigned_to": a.assigned_to.username if a.assigned_to else None,
        "dismissed_at": _iso(a.dismissed_at),
        "dismissed_reason": a.dismissed_reason,
        "events": [
            {
                "at": _iso(e.at),
                "user": e.user.username if e.user else None,
                "action": e.action,
                "detail": e.detail,
            }
            for e in detail.events
        ],
    }
    return jsonify(body)


@bp.route("/alerts/<int:alert_id>/acknowledge", methods=["POST"])
@allow(*QUEUE_ROLES)
def alert_acknowledge(alert_id: int):
    """Acknowledge a new alert; 409 when it is already acknowledged or closed."""
    session = db()
    alert = acknowledge_alert(session, g.user, alert_id)
    session.commit()
    return jsonify(alert_json(alert))


@bp.route("/alerts/<int:alert_id>/assign", methods=["POST"])
@allow(*QUEUE_ROLES)
def alert_assign(alert_id: int):
    """Assign an active alert: body ``{"assignee": "<username>"}``, an officer or supervisor of
    the alert's village."""
    session = db()
    _visible_or_404(session, alert_id)  # out of scope is not found, whatever the body says
    body = _json_object("assignee")
    alert = assign_alert(session, g.user, alert_id, _string_field(body, "assignee"))
    session.commit()
    return jsonify(alert_json(alert))


@bp.route("/alerts/<int:alert_id>/dismiss", methods=["POST"])
@allow(*QUEUE_ROLES)
def alert_dismiss(alert_id: int):
    """Dismiss an active alert: body ``{"reason": "<why>"}`` (required, not blank)."""
    session = db()
    _visible_or_404(session, alert_id)  # out of scope is not found, whatever the body says
    body = _json_object("reason")
    alert = dismiss_alert(session, g.user, alert_id, _string_field(body, "reason"))
    session.commit()
    return jsonify(alert_json(alert))


@bp.route("/children/<child_id>")
@allow(*QUEUE_ROLES)
def child_get(child_id: str):
    """A child's visits (newest first) with their classifications, and the child's alerts.

    The id of a record merged into another answers with the child it was merged into (its
    ``child.child_id``; ``child.merged_ids`` lists the records merged into it)."""
    session = db()
    record = child_record(session, g.user, child_id)
    if record is None:
        raise problem("not_found")
    return jsonify(_jsonable(record))


# --- representation ------------------------------------------------------------------------------


def alert_json(alert: Alert, now: dt.datetime | None = None) -> dict:
    """An alert as the queue lists it: exactly these fields, datetimes in ISO 8601 UTC."""
    now = now or dt.datetime.now(dt.UTC)
    return {
        "id": alert.id,
        "child_id": alert.child.child_uid if alert.child else None,
        "household_code": alert.household.code if alert.household else None,
        "category": alert.category,
        "severity": alert.severity,
        "reasons": alert.reasons,
        "village": alert.village.code if alert.village else None,
        "supplier": alert.supplier.code if alert.supplier else None,
        "status": alert.status,
        "created_at": _iso(alert.created_at),
        "due_at": _iso(due_at(alert)),
        "overdue": is_overdue(alert, now),
    }


def _iso(value: dt.datetime | dt.date | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat()
    return value.isoformat()


def _jsonable(value):
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dt.date):
        return _iso(value)
    return value


# --- request parsing -----------------------------------------------------------------------------


def _text(args, name: str) -> str | None:
    value = args.get(name, "").strip()
    return value or None


def _boolean(args, name: str) -> bool | None:
    raw = args.get(name, "").strip().lower()
    if not raw:
        return None
    if raw not in _BOOLEANS:
        raise problem(
            "request.invalid_parameter",
            parameter=name,
            detail=f"must be true or false, not {raw!r}",
        )
    return _BOOLEANS[raw]


def _visible_or_404(session, alert_id: int) -> None:
    if get_alert(session, g.user, alert_id) is None:
        raise problem("not_found")


def _json_object(expected: str) -> dict:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise problem(
            "request.invalid_json", detail=f'expected an object like {{"{expected}": ...}}'
        )
    return body


def _string_field(body: dict, name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value.strip():
        raise problem("request.missing_field", field=name)
    return value
