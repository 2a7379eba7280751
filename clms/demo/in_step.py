"""The demo's ODK Central: a cooperative whose monitors send to its own ODK Central, which CLMS
pulls, and what that server did to some submissions afterwards (issue 18).

The demo cannot reach a Central (there is none on the demo machine), so the source is added
switched off, and its history is made with the operations a real pull calls: one village's
household visits are recorded as pulled from it (their source, and their rootId there), one of
them was deleted there and one rejected by a Central reviewer (:func:`clms.intake.withdraw.
apply_remote_state`: the alert it alone raised is closed, the case behind the other is flagged
for its officer), and one submission waits on the retry list with the reason the ingest gave.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from clms.errors import problem
from clms.intake.withdraw import apply_remote_state
from clms.models import (
    Alert,
    Case,
    ChildVisit,
    Classification,
    Form,
    FormVersion,
    Submission,
    User,
    Visit,
    utcnow,
)
from forms.pull.clients import Entry
from forms.pull.run import remember_retry
from forms.pull.sources import add_source

SOURCE = "Coopérative Espoir de Soubré (ODK Central)"


@dataclass
class InStep:
    pulled: int = 0
    deleted: str | None = None  # the case flagged, by number
    rejected: int | None = None  # the alert closed, by id


def _visit_submission(session: Session, *where) -> Submission | None:
    """The current household-visit submission of an alert or case matching ``where``."""
    return session.scalar(
        select(Submission)
        .join(Visit, Visit.submission_id == Submission.id)
        .join(ChildVisit, ChildVisit.visit_id == Visit.id)
        .join(Classification, Classification.child_visit_id == ChildVisit.id)
        .join(Alert, Alert.classification_id == Classification.id)
        .where(Submission.current.is_(True), Submission.withdrawn_at.is_(None), *where)
        .order_by(Submission.id)
        .limit(1)
    )


def make_in_step(session: Session, key: str, officer: str | None = None) -> InStep:
    """The source, its pulled visits, a deletion, a rejection and a retry; flushes. The visits
    are those of a village of ``officer``'s first case (the officer whose password the demo
    prints; None: the first case opened), so the flag is on their pages."""
    out = InStep()
    if session.scalar(select(func.count()).where(Submission.pull_source_id.is_not(None))):
        return out  # made already
    source = add_source(
        session, SOURCE, "central", "https://central.espoir-soubre.example", "clms_household_visit",
        {"email": "clms-pull@espoir-soubre.example", "password": "demo-not-a-real-password"},
        project_id="3", enabled=False, key=key,
    )  # fmt: skip
    # the village of the first case opened: its visits came through the cooperative's Central
    cases = select(Case).where(Case.alert_id.is_not(None)).order_by(Case.id).limit(1)
    mine = cases.join(User, User.id == Case.officer_id).where(User.username == officer)
    case = session.scalar(mine) or session.scalar(cases)
    if case is None:
        return out
    visits = session.scalars(
        select(Submission)
        .join(Visit, Visit.submission_id == Submission.id)
        .where(Visit.village_id == case.village_id, Visit.kind == "household")
    ).all()
    newest = None
    for sub in visits:
        sub.source, sub.pull_source_id, sub.remote_id = "central", source.id, sub.logical_id
        newest = max(newest or sub.received_at, sub.received_at)
        out.pulled += 1
    now = utcnow()
    source.cursor = (newest or now).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    # its last pull: now, the one that found the deletion, the rejection and the refusal
    source.last_pull_at = source.last_success_at = now
    source.pulled_total = out.pulled
    # deleted on Central by the cooperative's data manager: the case is flagged, not closed
    deleted = _visit_submission(session, Alert.id == case.alert_id)
    if deleted is not None and deleted.pull_source_id == source.id:
        apply_remote_state(
            session, source.id, deleted.remote_id, "deleted",
            detail=f"deleted on central source '{SOURCE}'",
        )  # fmt: skip
        out.deleted = case.case_number
    # rejected by a Central reviewer: the open alert it alone raised is closed as withdrawn
    rejected = _visit_submission(
        session, Alert.status == "new", Alert.village_id == case.village_id
    )
    if rejected is not None and rejected.pull_source_id == source.id:
        apply_remote_state(
            session, source.id, rejected.remote_id, "rejected", review_state="rejected",
            detail=f"rejected by a reviewer on central source '{SOURCE}'",
        )  # fmt: skip
        out.rejected = rejected.id
    # a visit made on a form version this server never had: it waits, and is tried at each pull
    entry = Entry(
        "uuid:5b0c7e2a-94d1-4f0b-8c3e-2a7d9f41c6e8", source.cursor,
        "uuid:5b0c7e2a-94d1-4f0b-8c3e-2a7d9f41c6e8",
    )  # fmt: skip
    known = session.scalars(
        select(FormVersion.version)
        .join(Form, Form.id == FormVersion.form_id)
        .where(Form.xml_form_id == "clms_household_visit")
    ).all()
    refused = problem(
        "submission.form_version_unknown", form_id="clms_household_visit", version="2026010101",
        known=", ".join(repr(v) for v in known) or "none",
    )  # fmt: skip
    remember_retry(session, source.id, entry, refused.code, refused.message)
    session.flush()
    return out
