"""Subject access (:func:`export_child`, ``clms child export``): everything held about one child,
from every table, as one JSON document whose ``about`` part says what each part is.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from clms.audit import record
from clms.dataprotection.subject import DataProtectionError, Related, find_subject, related
from clms.models import (
    ActionPlan,
    Alert,
    AlertEvent,
    Assessment,
    AuditEvent,
    Case,
    CaseEvent,
    CaseTransfer,
    CaseWithdrawal,
    Child,
    ChildMerge,
    ChildVisit,
    Classification,
    Consent,
    DuplicateDismissal,
    Household,
    Notification,
    PlannedService,
    Referral,
    Report,
    Submission,
    Supplier,
    Village,
    Visit,
)

# --- subject access export ------------------------------------------------------------------------

ABOUT = {
    "what": "Everything this child-labour monitoring system (CLMS) holds about one child, "
    "exported on a subject access request.",
    "identity": "Children are known across the system by a pseudonymous id (child_uid); the "
    "name, date of birth, household and GPS points are personal data.",
    "parts": {
        "child": "The child's record (and merged_records: other records found to be the same "
        "child and merged into this one).",
        "household": "The household the child belongs to, as it concerns the child (the "
        "village, the supplier it sells to, the head's name); other children are left out.",
        "visits": "Each household visit that named the child and each follow-up visit of the "
        "child's cases; answers_about_this_child holds what the monitor recorded about this "
        "child (answers about other children are left out) and its classifications.",
        "alerts": "Alerts raised for the child (found in work or reported), with their events.",
        "reports": "Concerns reported about the child through the grievance channel.",
        "cases": "Remediation cases with their events, best-interest assessments, action "
        "plans, planned services, consents, referrals and transfers.",
        "merges": "Records merged because they were the same child.",
        "duplicate_decisions": "Decisions that another record is a different child.",
        "submissions": "The raw submissions (form XML as received) that mention the child; a "
        "household visit's XML also holds what was said about the rest of the household. "
        "Attachments are listed (name, type, size, SHA-256), not included.",
        "notifications": "Emails about the child's alerts sent to staff (they carry no names).",
        "access_log": "Entries of the audit log about the child and its cases: who read, "
        "exported or changed them, when and why.",
    },
    "format": "JSON; times are ISO 8601 in UTC; ids are the database's own.",
}


def export_child(
    session: Session, actor, child_uid: str, *, reason: str, now: dt.datetime
) -> dict[str, Any]:
    """Everything held about the child ``child_uid`` (see :data:`ABOUT`), and a ``child.export``
    audit entry with ``reason`` (required) in ``session``'s transaction (the caller commits)."""
    reason = (reason or "").strip()
    if not reason:
        raise DataProtectionError(key="dataprotection.export_reason_missing")
    subject = find_subject(session, child_uid)
    ids = subject.ids
    rel = related(session, ids)
    child = subject.child
    household = session.get(Household, child.household_id)
    village = session.get(Village, household.village_id) if household.village_id else None
    supplier = session.get(Supplier, household.supplier_id) if household.supplier_id else None

    visits = _export_visits(session, rel, ids)
    alerts = [
        _row(a) | {"events": _rows(session, AlertEvent, AlertEvent.alert_id == a.id)}
        for a in session.scalars(select(Alert).where(Alert.id.in_(rel.alerts)).order_by(Alert.id))
    ]
    cases = _export_cases(session, rel)
    submissions = _export_submissions(session, rel)
    case_numbers = [c["case_number"] for c in cases]
    targets = [f"child:{u}" for u in subject.uids] + [f"case:{n}" for n in case_numbers]
    targets += [f"alert:{a}" for a in rel.alerts]
    access = _rows(session, AuditEvent, AuditEvent.target.in_(targets), order=AuditEvent.seq)
    document = {
        "about": ABOUT
        | {
            "child_uid": child.child_uid,
            "exported_at": _plain(now),
            "reason": reason,
        },
        "child": _row(child)
        | {
            "merged_records": [
                _row(m)
                for m in session.scalars(
                    select(Child).where(Child.id.in_(ids), Child.id != child.id).order_by(Child.id)
                )
            ]
        },
        "household": _row(household)
        | {
            "village": {"code": village.code, "name": village.name} if village else None,
            "supplier": {"code": supplier.code, "name": supplier.name} if supplier else None,
        },
        "visits": visits,
        "alerts": alerts,
        "reports": _rows(session, Report, Report.id.in_(rel.reports)),
        "cases": cases,
        "merges": _rows(
            session,
            ChildMerge,
            or_(ChildMerge.kept_child_id.in_(ids), ChildMerge.merged_child_id.in_(ids)),
        ),
        "duplicate_decisions": [
            _row(d)
            for d in session.scalars(
                select(DuplicateDismissal).where(
                    or_(
                        DuplicateDismissal.child_a_id.in_(ids),
                        DuplicateDismissal.child_b_id.in_(ids),
                    )
                )
            )
        ],
        "submissions": submissions,
        "notifications": _rows(session, Notification, Notification.alert_id.in_(rel.alerts)),
        "access_log": access,
    }
    counts = {
        "visits": len(visits),
        "alerts": len(alerts),
        "cases": len(cases),
        "submissions": len(submissions),
    }
    record(session, actor, "child.export", f"child:{child.child_uid}", reason, **counts)
    return document


def _export_visits(session: Session, rel: Related, ids: list[int]) -> list[dict[str, Any]]:
    """The export's ``visits``: each visit, with the answers about this child and their
    classifications."""
    visits = []
    for visit in session.scalars(
        select(Visit).where(Visit.id.in_(rel.visits)).order_by(Visit.visited_at, Visit.id)
    ):
        answers = []
        for cv in session.scalars(
            select(ChildVisit)
            .where(ChildVisit.visit_id == visit.id, ChildVisit.child_id.in_(ids))
            .order_by(ChildVisit.position)
        ):
            answers.append(
                _row(cv)
                | {
                    "classifications": [
                        _row(c)
                        for c in session.scalars(
                            select(Classification)
                            .where(Classification.child_visit_id == cv.id)
                            .order_by(Classification.id)
                        )
                    ]
                }
            )
        visits.append(_row(visit) | {"answers_about_this_child": answers})
    return visits


def _export_cases(session: Session, rel: Related) -> list[dict[str, Any]]:
    """The export's ``cases``: each case with its events, flags of withdrawn submissions,
    assessments, plans, services, consents, referrals and transfers."""
    cases = []
    for c in session.scalars(select(Case).where(Case.id.in_(rel.cases)).order_by(Case.id)):
        cases.append(
            _row(c)
            | {
                "events": _rows(session, CaseEvent, CaseEvent.case_id == c.id),
                "withdrawals": _rows(session, CaseWithdrawal, CaseWithdrawal.case_id == c.id),
                "assessments": _rows(session, Assessment, Assessment.case_id == c.id),
                "action_plans": _rows(session, ActionPlan, ActionPlan.case_id == c.id),
                "planned_services": _rows(session, PlannedService, PlannedService.case_id == c.id),
                "consents": _rows(session, Consent, Consent.case_id == c.id),
                "referrals": _rows(session, Referral, Referral.case_id == c.id),
                "transfers": _rows(session, CaseTransfer, CaseTransfer.case_id == c.id),
            }
        )
    return cases


def _export_submissions(session: Session, rel: Related) -> list[dict[str, Any]]:
    """The export's ``submissions``: the raw XML of each, its attachments listed."""
    submissions = []
    for sub in session.scalars(
        select(Submission).where(Submission.id.in_(rel.submissions)).order_by(Submission.id)
    ):
        entry = _row(sub, skip={"xml"})
        entry["xml"] = bytes(sub.xml).decode("utf-8", "replace")
        entry["attachments"] = [
            {
                "name": a.name,
                "content_type": a.content_type,
                "size": a.size,
                "sha256": a.sha256,
                "received_at": _plain(a.received_at),
            }
            for a in sub.attachments
        ]
        submissions.append(entry)
    return submissions


def export_json(document: dict[str, Any]) -> str:
    """The export as indented UTF-8 JSON text."""
    return json.dumps(document, ensure_ascii=False, indent=2, sort_keys=False)


def _rows(session: Session, model, where, order=None) -> list[dict[str, Any]]:
    pk = order if order is not None else model.__table__.primary_key.columns.values()[0]
    return [_row(r) for r in session.scalars(select(model).where(where).order_by(pk))]


def _row(obj, skip: Iterable[str] = ()) -> dict[str, Any]:
    """A model row as plain JSON values, column by column."""
    skip = set(skip)
    return {
        c.key: _plain(getattr(obj, c.key))
        for c in obj.__mapper__.column_attrs
        if c.key not in skip and not c.deferred
    }


def _plain(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, bytes | memoryview):
        import base64

        return base64.b64encode(bytes(value)).decode("ascii")
    return value
