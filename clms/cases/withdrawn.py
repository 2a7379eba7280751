"""Flags on cases whose source was withdrawn: a case is never closed because a submission behind
it was deleted or rejected on its server; its officer is told and decides.

A case is behind a submission when it was opened from an alert the submission's visits supported
(:func:`alerts.withdrawn.support`), when one of its follow-up visits came in it, or when the case
took one of its visits (a ``classification_id`` of its timeline). :func:`flag_cases` adds a
:class:`~clms.models.CaseWithdrawal` to each (once per withdrawal), a line on the timeline, an
audit record and a notice to the case officer; :func:`acknowledge_flag` is the officer's answer
(a note, required); :func:`clear_flags` marks them restored when the server restores the
submission. Flushes, never commits.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from clms.cases.notices import officers_of
from clms.cases.records import get_case, record_event
from clms.errors import problem
from clms.models import (
    Case,
    CaseEvent,
    CaseWithdrawal,
    ChildVisit,
    Submission,
    User,
    Visit,
    utcnow,
)
from clms.notices.tell import About, tell

MAX_NOTE_LENGTH = 2000


def cases_behind(
    session: Session, *, alert_ids: Iterable[int], child_visit_ids: set[int],
    classification_ids: set[int], visit_ids: set[int],
) -> list[Case]:  # fmt: skip
    """The cases a withdrawn submission is behind (see the module's docstring), by id."""
    found: dict[int, Case] = {}
    alert_ids = sorted(set(alert_ids))
    if alert_ids:
        for case in session.scalars(select(Case).where(Case.alert_id.in_(alert_ids))):
            found[case.id] = case
    if visit_ids:
        in_case = select(Visit.case_id).where(Visit.id.in_(sorted(visit_ids)))
        for case in session.scalars(select(Case).where(Case.id.in_(in_case))):
            found[case.id] = case
    if child_visit_ids and classification_ids:
        children = select(ChildVisit.child_id).where(ChildVisit.id.in_(sorted(child_visit_ids)))
        for case, detail in session.execute(
            select(Case, CaseEvent.detail)
            .join(CaseEvent, CaseEvent.case_id == Case.id)
            .where(Case.child_id.in_(children))
        ):  # fmt: skip
            if (detail or {}).get("classification_id") in classification_ids:
                found[case.id] = case
    return [found[i] for i in sorted(found)]


def flag_cases(
    session: Session, cases: list[Case], *, submission_id: int, chain_ids: list[int], reason: str,
    server: str, withdrawn_at: dt.datetime, actor: User | None = None,
    now: dt.datetime | None = None,
) -> list[CaseWithdrawal]:  # fmt: skip
    """Flag each of ``cases`` for the withdrawal of the submission ``submission_id`` (the current
    version; ``chain_ids`` every version of it); a case already flagged for it (not restored)
    is flagged again only when the reason changed."""
    now = now or utcnow()
    flags = []
    for case in cases:
        open_flag = _open_flag(session, case.id, chain_ids)
        if open_flag is not None and open_flag.reason == reason:
            continue
        if open_flag is not None:  # a new reason: the old flag gives way to the new one
            open_flag.restored_at = now
        flag = CaseWithdrawal(
            case_id=case.id, submission_id=submission_id, reason=reason, server=server[:200],
            withdrawn_at=withdrawn_at, flagged_at=now,
        )  # fmt: skip
        session.add(flag)
        session.flush()
        detail = {"flag": flag.id, "submission_id": submission_id, "withdrawn_reason": reason,
                  "server": server}  # fmt: skip
        record_event(session, case, actor, "source_withdrawn", detail, now=now)
        tell(session, officers_of(session, case), "source_withdrawn",
             About("case", case.id, case.case_number, {"reason": reason}), actor=actor,
             now=now)  # fmt: skip
        flags.append(flag)
    session.flush()
    return flags


def _open_flag(session: Session, case_id: int, chain_ids: list[int]) -> CaseWithdrawal | None:
    return session.scalar(
        select(CaseWithdrawal)
        .where(CaseWithdrawal.case_id == case_id, CaseWithdrawal.submission_id.in_(chain_ids),
               CaseWithdrawal.restored_at.is_(None))
        .order_by(CaseWithdrawal.id.desc()).limit(1)
    )  # fmt: skip


def clear_flags(
    session: Session, chain_ids: list[int], *, actor: User | None = None,
    now: dt.datetime | None = None,
) -> list[CaseWithdrawal]:  # fmt: skip
    """Mark restored the open flags of the submission whose versions are ``chain_ids``, with a
    line on each case's timeline and a notice to its officer."""
    now = now or utcnow()
    flags = list(session.scalars(
        select(CaseWithdrawal)
        .where(CaseWithdrawal.submission_id.in_(chain_ids), CaseWithdrawal.restored_at.is_(None))
        .order_by(CaseWithdrawal.id)
    ))  # fmt: skip
    for flag in flags:
        flag.restored_at = now
        case = session.get(Case, flag.case_id)
        detail = {"flag": flag.id, "submission_id": flag.submission_id, "server": flag.server}
        record_event(session, case, actor, "source_restored", detail, now=now)
        tell(session, officers_of(session, case), "source_withdrawn",
             About("case", case.id, case.case_number, {"restored": True}), actor=actor,
             now=now)  # fmt: skip
    session.flush()
    return flags


@dataclass
class FlagView:
    """A flag as the case page shows it: the flag, the withdrawn submission's instanceID."""

    flag: CaseWithdrawal
    instance_id: str

    @property
    def open(self) -> bool:
        return self.flag.acknowledged_at is None and self.flag.restored_at is None


def flags_of(session: Session, case_id: int) -> list[FlagView]:
    """Every flag of a case, the newest first, with the submission each names."""
    rows = session.execute(
        select(CaseWithdrawal, Submission.instance_id)
        .join(Submission, Submission.id == CaseWithdrawal.submission_id)
        .where(CaseWithdrawal.case_id == case_id)
        .order_by(CaseWithdrawal.flagged_at.desc(), CaseWithdrawal.id.desc())
    ).all()  # fmt: skip
    return [FlagView(flag, instance_id) for flag, instance_id in rows]


def open_flags(session: Session, case_id: int) -> list[CaseWithdrawal]:
    """The flags of a case its officer has still to read: neither acknowledged nor restored."""
    return list(session.scalars(
        select(CaseWithdrawal)
        .where(CaseWithdrawal.case_id == case_id, CaseWithdrawal.acknowledged_at.is_(None),
               CaseWithdrawal.restored_at.is_(None))
        .order_by(CaseWithdrawal.flagged_at, CaseWithdrawal.id)
    ))  # fmt: skip


def acknowledge_flag(
    session: Session, user: User, case_id: int, flag_id: int, note: str, *,
    now: dt.datetime | None = None, policy=None,
) -> CaseWithdrawal:  # fmt: skip
    """``user`` (who may see the case) has read the flag and says what they make of it
    (``policy``, the workflow's settings every case action is given, changes nothing here)."""
    now = now or utcnow()
    case = get_case(session, user, case_id)
    flag = session.get(CaseWithdrawal, flag_id) if case is not None else None
    if flag is None or flag.case_id != case_id:
        raise problem("not_found")
    note = (note or "").strip()
    if not note:
        raise problem("request.invalid_field", field="note",
                      detail="is required: say what the withdrawal means for the case")  # fmt: skip
    if len(note) > MAX_NOTE_LENGTH:
        raise problem("request.invalid_field", field="note",
                      detail=f"must be at most {MAX_NOTE_LENGTH} characters")  # fmt: skip
    if flag.acknowledged_at is not None or flag.restored_at is not None:
        raise problem("request.invalid_field", field="note",
                      detail="was already given, or the submission was restored")  # fmt: skip
    flag.acknowledged_at, flag.acknowledged_by_id, flag.note = now, user.id, note
    record_event(session, case, user, "source_withdrawal_read", {"flag": flag.id, "note": note},
                 now=now)  # fmt: skip
    session.flush()
    return flag
