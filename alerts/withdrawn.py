"""What a withdrawn submission does to the alerts: the system's side of a withdrawal.

A submission its server took back (deleted, rejected, not approved: :mod:`clms.intake.withdraw`)
stops counting: its visits' ``current`` is already cleared when these run. Then:

- an open alert (new or acknowledged) that only withdrawn visits support is closed by the system
  with the status ``withdrawn`` and the reason in words ("source withdrawn: deleted on ODK
  Central"), an event and an audit record; it counts nowhere any more, as if never raised;
- an open alert that other, still-counting visits support stays open, recomputed from them
  (category, severity, reasons, classification and ``last_seen_at`` of the remaining visits, as
  :mod:`alerts.classify` would have made them); its status and deadlines stay as they were;
- an alert already turned into a case is left as it is (the case is flagged, by the cases).

An alert's support is every child visit whose classification it took (the ``classification_id``
of its ``raised``, ``updated`` and ``severity_raised`` events, and its own). A restore reverses
it: an alert the withdrawal closed is reopened with the status it had (or, when the child has
another open alert meanwhile, that one is recomputed with the restored visits' support), and an
alert recomputed down is recomputed up again. Flushes, never commits.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from alerts import rules
from clms.audit import record
from clms.models import (
    ACTIVE_ALERT_STATUSES,
    Alert,
    AlertEvent,
    ChildVisit,
    Classification,
    Visit,
)

#: the events whose classification an alert took
_SUPPORT_ACTIONS = ("raised", "updated", "severity_raised", "source_withdrawn", "restored")


@dataclass
class Withdrawal:
    """Which submission was withdrawn (or restored), as the alerts' events and reasons name it."""

    logical_id: str
    form_id: int
    instance_id: str
    reason: str | None  # deleted, rejected, not_approved; None for a restore
    server: str  # the pull source's name, or the server's kind
    actor: object = None

    @property
    def why(self) -> str:
        """The reason written on an alert closed for it."""
        said = {"deleted": "deleted", "rejected": "rejected", "not_approved": "not approved"}
        return f"source withdrawn: {said.get(self.reason, self.reason)} on {self.server}"

    def detail(self, **more) -> dict:
        return {"logical_id": self.logical_id, "form_id": self.form_id,
                "submission": self.instance_id, "reason": self.reason, "server": self.server,
                **more}  # fmt: skip


@dataclass
class AlertsOutcome:
    """What a withdrawal or a restore did to the alerts (ids)."""

    closed: list[int] = field(default_factory=list)
    recomputed: list[int] = field(default_factory=list)
    reopened: list[int] = field(default_factory=list)
    # every alert the submission's visits supported, whatever its status (the cases read it)
    touched: list[int] = field(default_factory=list)


def support(session: Session, alert_ids: Iterable[int]) -> dict[int, set[int]]:
    """The child visits behind each of ``alert_ids``: those whose classification it took."""
    ids = sorted(set(alert_ids))
    if not ids:
        return {}
    by_alert: dict[int, set[int]] = {i: set() for i in ids}
    class_ids: dict[int, set[int]] = {i: set() for i in ids}
    for alert_id, classification_id in session.execute(
        select(Alert.id, Alert.classification_id).where(Alert.id.in_(ids))
    ):
        if classification_id:
            class_ids[alert_id].add(classification_id)
    for alert_id, detail in session.execute(
        select(AlertEvent.alert_id, AlertEvent.detail).where(
            AlertEvent.alert_id.in_(ids), AlertEvent.action.in_(_SUPPORT_ACTIONS)
        )
    ):
        d = detail or {}
        if d.get("classification_id"):
            class_ids[alert_id].add(int(d["classification_id"]))
        by_alert[alert_id].update(int(cv) for cv in d.get("child_visits") or ())
    every = sorted({c for cs in class_ids.values() for c in cs})
    if every:
        cv_of = dict(session.execute(
            select(Classification.id, Classification.child_visit_id)
            .where(Classification.id.in_(every))
        ).all())  # fmt: skip
        for alert_id, cs in class_ids.items():
            by_alert[alert_id].update(cv_of[c] for c in cs if c in cv_of)
    return by_alert


def _counting(session: Session, child_visit_ids: set[int]) -> list:
    """The child visits of ``child_visit_ids`` that still count (their visit is current), with
    their current classification, oldest first; those classified ``none`` left out."""
    if not child_visit_ids:
        return []
    return session.execute(
        select(ChildVisit.id.label("child_visit_id"), Visit.visited_at, Visit.id.label("visit_id"),
               Classification.id.label("classification_id"), Classification.category,
               Classification.reasons)
        .join(Visit, Visit.id == ChildVisit.visit_id)
        .join(Classification, (Classification.child_visit_id == ChildVisit.id)
              & Classification.current.is_(True))
        .where(ChildVisit.id.in_(sorted(child_visit_ids)), Visit.current.is_(True),
               Classification.category != "none")
        .order_by(Visit.visited_at, Visit.id, ChildVisit.id)
    ).all()  # fmt: skip


def _recompute(alert: Alert, rows: list) -> dict:
    """Set ``alert``'s findings from the counting visits ``rows`` (oldest first, not empty), as
    :mod:`alerts.classify` makes them: the gravest category, the latest visit's reasons."""
    gravest = max(rows, key=lambda r: rules.SEVERITY_RANK[rules.SEVERITY[r.category]])
    latest = rows[-1]
    severity = rules.SEVERITY[gravest.category]
    before = {"category": alert.category, "severity": alert.severity}
    alert.category, alert.severity = gravest.category, severity
    alert.severity_rank = rules.SEVERITY_RANK[severity]
    alert.reasons, alert.classification_id = latest.reasons, latest.classification_id
    alert.last_seen_at = max(r.visited_at for r in rows)
    return {"from": before, "category": alert.category, "severity": severity,
            "child_visits": sorted(r.child_visit_id for r in rows)}  # fmt: skip


def _event(session, alert: Alert, action: str, detail: dict, who: Withdrawal, now) -> None:
    """An event on ``alert`` (its audit record is the caller's, the action written there)."""
    session.add(AlertEvent(alert_id=alert.id, at=now, user_id=getattr(who.actor, "id", None),
                           action=action, detail=detail))  # fmt: skip


def _alerts_of(session: Session, child_visit_ids: set[int], report_ids: set[int]) -> list[Alert]:
    child_ids = select(ChildVisit.child_id).where(ChildVisit.id.in_(sorted(child_visit_ids)))
    where = Alert.child_id.in_(child_ids)
    if report_ids:
        where = where | Alert.report_id.in_(sorted(report_ids))
    return list(session.scalars(select(Alert).where(where).order_by(Alert.id)))


def withdraw_alerts(
    session: Session, child_visit_ids: set[int], report_ids: set[int], who: Withdrawal,
    now: dt.datetime,
) -> AlertsOutcome:  # fmt: skip
    """Close or recompute the alerts the withdrawn ``child_visit_ids`` and ``report_ids``
    supported (their visits no longer current)."""
    out = AlertsOutcome()
    alerts = _alerts_of(session, child_visit_ids, report_ids)
    backing = support(session, (a.id for a in alerts))
    for alert in alerts:
        by_report = alert.report_id is not None and alert.report_id in report_ids
        if not by_report and not (backing[alert.id] & child_visit_ids):
            continue
        out.touched.append(alert.id)
        if alert.status not in ACTIVE_ALERT_STATUSES:
            continue
        rows = [] if by_report else _counting(session, backing[alert.id] - child_visit_ids)
        if rows:
            detail = who.detail(**_recompute(alert, rows))
            alert.updated_at = now
            _event(session, alert, "source_withdrawn", detail, who, now)
            record(session, who.actor, "alert.source_withdrawn", f"alert:{alert.id}", **detail)
            out.recomputed.append(alert.id)
            continue
        previous = alert.status
        alert.status, alert.dismissed_reason = "withdrawn", who.why
        alert.closed_at = alert.updated_at = now
        detail = who.detail(previous_status=previous)
        _event(session, alert, "withdrawn", detail, who, now)
        record(session, who.actor, "alert.withdrawn", f"alert:{alert.id}", **detail)
        out.closed.append(alert.id)
    session.flush()
    return out


def _closed_by(session: Session, alert_ids: list[int], who: Withdrawal) -> dict[int, dict]:
    """The ``withdrawn`` event of each of ``alert_ids`` that the submission of ``who`` closed
    (the latest one), by alert id."""
    found: dict[int, dict] = {}
    for alert_id, detail in session.execute(
        select(AlertEvent.alert_id, AlertEvent.detail)
        .where(AlertEvent.alert_id.in_(alert_ids), AlertEvent.action == "withdrawn")
        .order_by(AlertEvent.at, AlertEvent.id)
    ):  # fmt: skip
        d = detail or {}
        if d.get("logical_id") == who.logical_id and d.get("form_id") == who.form_id:
            found[alert_id] = d
    return found


def restore_alerts(
    session: Session, child_visit_ids: set[int], report_ids: set[int], who: Withdrawal,
    now: dt.datetime,
) -> AlertsOutcome:  # fmt: skip
    """Undo :func:`withdraw_alerts` for the restored ``child_visit_ids`` and ``report_ids``
    (their visits current again): reopen what it closed, recompute what it lowered."""
    out = AlertsOutcome()
    alerts = _alerts_of(session, child_visit_ids, report_ids)
    backing = support(session, (a.id for a in alerts))
    closed = _closed_by(session, [a.id for a in alerts if a.status == "withdrawn"], who)
    active = {a.child_id: a for a in alerts if a.status in ACTIVE_ALERT_STATUSES and a.child_id}
    for alert in alerts:
        mine = (alert.report_id is not None and alert.report_id in report_ids) or bool(
            backing[alert.id] & child_visit_ids
        )
        if not mine:
            continue
        out.touched.append(alert.id)
        if alert.status == "withdrawn" and alert.id in closed:
            other = active.get(alert.child_id) if alert.child_id else None
            if other is not None and other.id != alert.id:
                # the child has another open alert now: it takes the restored visits' support
                backing[other.id] |= backing[alert.id]
                _recount(session, other, backing[other.id], who, now, out)
                continue
            alert.status = closed[alert.id].get("previous_status") or "new"
            alert.dismissed_reason = alert.closed_at = None
            alert.updated_at = now
            rows = [] if alert.report_id else _counting(session, backing[alert.id])
            more = _recompute(alert, rows) if rows else {}
            _event(session, alert, "restored", who.detail(**more), who, now)
            record(session, who.actor, "alert.restored", f"alert:{alert.id}", **who.detail(**more))
            if alert.child_id:
                active[alert.child_id] = alert
            out.reopened.append(alert.id)
        elif alert.status in ACTIVE_ALERT_STATUSES and alert.child_id:
            _recount(session, alert, backing[alert.id], who, now, out)
    session.flush()
    return out


def _recount(session, alert: Alert, cvs: set[int], who: Withdrawal, now, out) -> None:
    rows = _counting(session, cvs)
    if not rows:
        return
    old_rank = alert.severity_rank
    detail = _recompute(alert, rows)
    alert.updated_at = now
    if alert.severity_rank > old_rank and alert.status == "acknowledged":
        # a graver danger than the one acknowledged: acknowledged again (as alerts.classify does)
        alert.status, alert.acknowledged_at = "new", None
    _event(session, alert, "restored", who.detail(**detail), who, now)
    record(session, who.actor, "alert.restored", f"alert:{alert.id}", **who.detail(**detail))
    out.recomputed.append(alert.id)
