"""Erasure (:func:`erase_child`, ``clms child erase``): on a lawful request, the anonymisation
now, whatever the retention cut, and also the child's name wherever else it was written; refused
for a child with an open case unless forced with a reason.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from clms.audit import record
from clms.dataprotection.anonymise import REMOVED, anonymise_children
from clms.dataprotection.subject import DataProtectionError, find_subject
from clms.facts import refresh_children
from clms.models import OPEN_CASE_STATES, Case, Child

# --- erasure --------------------------------------------------------------------------------------


@dataclass
class ErasureResult:
    """What an erasure removed: the child's pseudonymous id and rows changed per table."""

    child_uid: str
    records: int
    rows: dict[str, int]
    open_cases: list[str]


def erase_child(
    session: Session,
    actor,
    child_uid: str,
    *,
    reason: str,
    request_ref: str | None = None,
    force: bool = False,
    force_reason: str | None = None,
    now: dt.datetime,
) -> ErasureResult:
    """Erase the personal data of the child ``child_uid`` on a lawful request, in ``session``'s
    transaction (the caller commits), and record ``child.erase`` (who, why, the request's
    reference; the log keeps only the pseudonymous id).

    Refused while the child has an open case unless ``force`` with ``force_reason``: the case
    is how the child is being protected, and its record may be what keeps the child safe.
    """
    reason = (reason or "").strip()
    if not reason:
        raise DataProtectionError(key="dataprotection.erasure_reason_missing")
    subject = find_subject(session, child_uid)
    open_cases = list(
        session.scalars(
            select(Case.case_number)
            .where(Case.child_id.in_(subject.ids), Case.state.in_(OPEN_CASE_STATES))
            .order_by(Case.case_number)
        )
    )
    force_reason = (force_reason or "").strip()
    if open_cases and not force:
        raise DataProtectionError(
            key="dataprotection.open_case",
            uid=subject.child.child_uid,
            cases=", ".join(open_cases),
        )
    if open_cases and not force_reason:
        raise DataProtectionError(key="dataprotection.force_reason_missing")
    names = list(session.scalars(select(Child.name).where(Child.id.in_(subject.ids))))
    names = [n for n in names if n and n != REMOVED]
    rows = anonymise_children(session, subject.ids, now=now, why="erasure", names=names)
    session.execute(update(Child).where(Child.id.in_(subject.ids)).values(anonymised_why="erasure"))
    refresh_children(session, subject.ids)  # nothing counted changes; kept in step all the same
    details: dict[str, Any] = {"records": len(subject.ids), "rows": rows}
    if request_ref:
        details["request_ref"] = request_ref.strip()
    if open_cases:
        details.update(forced=True, force_reason=force_reason, open_cases=open_cases)
    record(session, actor, "child.erase", f"child:{subject.child.child_uid}", reason, **details)
    return ErasureResult(subject.child.child_uid, len(subject.ids), rows, open_cases)
