"""Withdrawing a submission its server took back, and restoring it.

ODK Central deletes a submission (and can restore it), a Central reviewer may mark it ``rejected``,
and a KoboToolbox reviewer may set it "not approved". A pull (:mod:`clms.intake.pull`) that learns
of it calls :func:`withdraw_submission`; nothing is erased: every version of the logical
submission is marked withdrawn with the reason, its visits and reports stop counting (their
``current`` is cleared), and the change is audited. :func:`restore_submission` undoes it when the
server restores or approves it again. Both flush, never commit, and are idempotent: a pull that
sees the same state again changes nothing and records nothing.

Downstream, in the same transaction: the alerts it alone raised are closed by the system and
those other visits support are recomputed (:mod:`alerts.withdrawn`); the cases behind it are
flagged for their officer, never closed (:mod:`clms.cases.withdrawn`). A restore reopens and
recomputes the alerts and clears the flags. An edit that arrives later for a withdrawn
submission stays withdrawn (:func:`withdrawn_among`, asked by the processing job).
"""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session, aliased

from alerts.withdrawn import Withdrawal, restore_alerts, support, withdraw_alerts
from clms import audit
from clms.cases.withdrawn import cases_behind, clear_flags, flag_cases
from clms.facts import refresh_submissions
from clms.models import (
    Alert,
    ChildVisit,
    Classification,
    Form,
    PullSource,
    Report,
    Submission,
    User,
    Visit,
    utcnow,
)

REASONS = ("deleted", "rejected", "not_approved")


def _chain(session: Session, submission_id: int) -> list[Submission]:
    """Every version of the logical submission, locked until the transaction ends and read as
    committed: of two pulls withdrawing it at once (the scheduler's and an admin's "Pull now"),
    the second waits and then finds it withdrawn, so nothing is flagged or told twice."""
    first = session.get(Submission, submission_id)
    if first is None:
        raise LookupError(f"There is no submission with id {submission_id}.")
    return list(
        session.scalars(
            select(Submission)
            .where(Submission.form_id == first.form_id, Submission.logical_id == first.logical_id)
            .order_by(Submission.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    )


def _set_counting(session: Session, submission_id: int, counting: bool) -> None:
    for model in (Visit, Report):
        table = model.__table__
        session.execute(
            update(table).where(table.c.submission_id == submission_id).values(current=counting)
        )
    refresh_submissions(session, [submission_id])


SERVERS = {"central": "ODK Central", "kobo": "KoboToolbox", "openrosa": "this server"}


def server_of(session: Session, sub: Submission) -> str:
    """The server that withdrew ``sub``, in words: its pull source's kind and name."""
    source = session.get(PullSource, sub.pull_source_id) if sub.pull_source_id else None
    if source is not None:
        return f"{SERVERS.get(source.kind, source.kind)} ({source.name})"
    return SERVERS.get(sub.source, sub.source)


def _downstream(session: Session, chain: list[Submission]) -> dict:
    """What the versions of ``chain`` wrote that counts: visit, child-visit, classification and
    report ids."""
    ids = [s.id for s in chain]
    visit_ids = set(session.scalars(select(Visit.id).where(Visit.submission_id.in_(ids))))
    cvs = set(session.scalars(select(ChildVisit.id).where(ChildVisit.visit_id.in_(visit_ids))))
    classes = set(session.scalars(
        select(Classification.id).where(Classification.child_visit_id.in_(cvs))
    )) if cvs else set()  # fmt: skip
    reports = set(session.scalars(select(Report.id).where(Report.submission_id.in_(ids))))
    return {"visits": visit_ids, "child_visits": cvs, "classifications": classes,
            "reports": reports}  # fmt: skip


def _person(actor) -> User | None:
    """The person acting, for the alerts' and cases' history; a process (a name) is the system
    there, and is named in the audit log."""
    return actor if isinstance(actor, User) else None


def _who(session: Session, head: Submission, reason: str | None, actor) -> Withdrawal:
    return Withdrawal(head.logical_id, head.form_id, head.instance_id, reason,
                      server_of(session, head), actor)  # fmt: skip


def withdrawn_among(session: Session, submission_ids: list[int]) -> set[int]:
    """Which of ``submission_ids`` belong to a withdrawn logical submission (an edit that came
    after the withdrawal, or one withdrawn before it was processed); those not yet marked are
    marked with the withdrawal of their chain. Their visits must not count."""
    if not submission_ids:
        return set()
    other = aliased(Submission)
    found = session.execute(
        select(Submission.id, other.withdrawn_at, other.withdrawn_reason)
        .join(other, (other.form_id == Submission.form_id)
              & (other.logical_id == Submission.logical_id))
        .where(Submission.id.in_(submission_ids), other.withdrawn_at.is_not(None))
        .order_by(Submission.id, other.id)
    ).all()  # fmt: skip
    marks = {row.id: (row.withdrawn_at, row.withdrawn_reason) for row in found}
    for sub_id, (at, reason) in marks.items():
        session.execute(
            update(Submission.__table__)
            .where(Submission.__table__.c.id == sub_id,
                   Submission.__table__.c.withdrawn_at.is_(None))
            .values(withdrawn_at=at, withdrawn_reason=reason)
        )  # fmt: skip
    return set(marks)


def withdraw_submission(
    session: Session, submission_id: int, reason: str, *, actor=None, detail: str = ""
) -> bool:
    """Withdraw the logical submission of ``submission_id`` for ``reason`` (one of
    :data:`REASONS`); False when it was already withdrawn for that reason. ``actor``: the
    person, or a process's name (``"pull"``) for the audit, the system on the alerts and cases."""
    if reason not in REASONS:
        raise ValueError(f"unknown reason for a withdrawal: {reason!r}")
    chain = _chain(session, submission_id)
    if all(s.withdrawn_reason == reason for s in chain):
        return False
    now = utcnow()
    already = any(s.withdrawn_at for s in chain)
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
    found = _downstream(session, chain)
    actor = _person(actor)
    who = _who(session, head, reason, actor)
    touched = []
    if not already:  # a new reason for the same withdrawal changes nothing the alerts count
        alerts = withdraw_alerts(session, found["child_visits"], found["reports"], who, now)
        touched = alerts.touched
    else:
        cvs = found["child_visits"]
        touched = [a for a, backing in support(session, _alert_ids(session, found)).items()
                   if backing & cvs]  # fmt: skip
    cases = cases_behind(
        session, alert_ids=touched, child_visit_ids=found["child_visits"],
        classification_ids=found["classifications"], visit_ids=found["visits"],
    )  # fmt: skip
    flag_cases(session, cases, submission_id=head.id, chain_ids=[s.id for s in chain],
               reason=reason, server=who.server, withdrawn_at=head.withdrawn_at, actor=actor,
               now=now)  # fmt: skip
    return True


def _alert_ids(session: Session, found: dict) -> list[int]:
    children = select(ChildVisit.child_id).where(ChildVisit.id.in_(sorted(found["child_visits"])))
    return list(session.scalars(select(Alert.id).where(Alert.child_id.in_(children))))


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
    now = utcnow()
    found = _downstream(session, chain)
    actor = _person(actor)
    restore_alerts(session, found["child_visits"], found["reports"],
                   _who(session, head, None, actor), now)  # fmt: skip
    clear_flags(session, [s.id for s in chain], actor=actor, now=now)
    return True


# what a server says of a submission it holds, and what it does here (see apply_remote_state)
WITHDRAWING = {"deleted": "deleted", "rejected": "rejected", "not_approved": "not_approved"}
RESTORING = ("restored", "approved", "live")
_UNSET = object()


def apply_remote_state(
    session: Session,
    source_id: int,
    remote_id: str | int,
    state: str,
    *,
    review_state=_UNSET,
    detail: str = "",
    actor: str = "pull",
) -> bool | None:
    """Make the submission ``remote_id`` of source ``source_id`` follow what its server says.

    ``state`` is one of ``deleted``, ``rejected``, ``not_approved`` (the logical submission is
    withdrawn for that reason, :func:`clms.intake.withdraw.withdraw_submission`) or ``restored``,
    ``approved``, ``live`` (it counts again, :func:`~clms.intake.withdraw.restore_submission`).
    ``review_state``, when given, is kept as the submission's ``remote_review_state`` (Central's
    ``reviewState``, Kobo's validation status; None: none). The submission is found by
    ``(pull_source_id, remote_id)`` (Central: the rootId; Kobo: the ``_id``, as text).

    Returns True when it was withdrawn or restored now, False when it already was so (a new
    review state alone is recorded, and False returned), None when no submission of the source
    has that id (not pulled yet: nothing to do). Flushes, never commits; audited by
    the withdraw operations; the same state twice changes nothing.
    """
    if state not in WITHDRAWING and state not in RESTORING:
        raise ValueError(f"unknown remote state {state!r}")
    rows = session.scalars(
        select(Submission)
        .where(Submission.pull_source_id == source_id, Submission.remote_id == str(remote_id))
        .order_by(Submission.id)
    ).all()
    if not rows:
        rows = _unlinked(session, source_id, str(remote_id))
    if not rows:
        return None
    if review_state is not _UNSET:
        for row in rows:
            if row.remote_review_state != review_state:
                row.remote_review_state = review_state
    head = next((r for r in reversed(rows) if r.current), rows[-1])
    if state in WITHDRAWING:
        done = withdraw_submission(session, head.id, WITHDRAWING[state], actor=actor, detail=detail)
    else:
        done = restore_submission(session, head.id, actor=actor, detail=detail)
    session.flush()
    return done


def _unlinked(session: Session, source_id: int, remote_id: str) -> list[Submission]:
    """A submission pulled from ODK Central before pulls kept where it lives (migration 0019),
    found by its rootId (the instanceID of its first version) in the source's form, and linked
    now, so its server's deletions and review decisions follow it. Kobo's ``_id`` names no
    instance: its rows are linked by the re-check (forms.pull.kobo_changes)."""
    source = session.get(PullSource, source_id)
    if source is None or source.kind != "central":
        return []
    rows = list(
        session.scalars(
            select(Submission)
            .join(Form, Form.id == Submission.form_id)
            .where(
                Form.xml_form_id == source.remote_form_id,
                Submission.pull_source_id.is_(None),
                Submission.logical_id == remote_id,
            )
            .order_by(Submission.id)
        )
    )
    for row in rows:
        row.pull_source_id, row.remote_id = source_id, remote_id
    return rows
