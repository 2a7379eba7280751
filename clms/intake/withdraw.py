"""Withdrawing a submission its server took back, and restoring it.

ODK Central deletes a submission (and can restore it), a Central reviewer may mark it ``rejected``,
and a KoboToolbox reviewer may set it "not approved". A pull (:mod:`clms.intake.pull`) that learns
of it calls :func:`withdraw_submission`; nothing is erased: every version of the logical
submission is marked withdrawn with the reason, its visits and reports stop counting (their
``current`` is cleared), and the change is audited. :func:`restore_submission` undoes it when the
server restores or approves it again. Both flush, never commit, and are idempotent: a pull that
sees the same state again changes nothing and records nothing.
"""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from clms import audit
from clms.models import Report, Submission, Visit, utcnow

REASONS = ("deleted", "rejected", "not_approved")


def _chain(session: Session, submission_id: int) -> list[Submission]:
    first = session.get(Submission, submission_id)
    if first is None:
        raise LookupError(f"There is no submission with id {submission_id}.")
    return list(
        session.scalars(
            select(Submission)
            .where(Submission.form_id == first.form_id, Submission.logical_id == first.logical_id)
            .order_by(Submission.id)
        )
    )


def _set_counting(session: Session, submission_id: int, counting: bool) -> None:
    for model in (Visit, Report):
        table = model.__table__
        session.execute(
            update(table).where(table.c.submission_id == submission_id).values(current=counting)
        )


def withdraw_submission(
    session: Session, submission_id: int, reason: str, *, actor=None, detail: str = ""
) -> bool:
    """Withdraw the logical submission of ``submission_id`` for ``reason`` (one of
    :data:`REASONS`); False when it was already withdrawn for that reason."""
    if reason not in REASONS:
        raise ValueError(f"unknown reason for a withdrawal: {reason!r}")
    chain = _chain(session, submission_id)
    if all(s.withdrawn_reason == reason for s in chain):
        return False
    now = utcnow()
    for sub in chain:
        sub.withdrawn_at, sub.withdrawn_reason = sub.withdrawn_at or now, reason
        if sub.current:
            _set_counting(session, sub.id, False)
    head = chain[-1]
    audit.record(
        session, actor, "submission.withdrawn", f"submission:{head.instance_id}",
        reason=detail or None, withdrawn_reason=reason, logical_id=head.logical_id,
    )  # fmt: skip
    session.flush()
    return True


def restore_submission(
    session: Session, submission_id: int, *, actor=None, detail: str = ""
) -> bool:
    """Count the logical submission of ``submission_id`` again; False when it was not withdrawn."""
    chain = _chain(session, submission_id)
    if not any(s.withdrawn_at for s in chain):
        return False
    for sub in chain:
        sub.withdrawn_at, sub.withdrawn_reason = None, None
        if sub.current:
            _set_counting(session, sub.id, True)
    head = chain[-1]
    audit.record(
        session, actor, "submission.restored", f"submission:{head.instance_id}",
        reason=detail or None, logical_id=head.logical_id,
    )  # fmt: skip
    session.flush()
    return True
