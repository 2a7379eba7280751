"""A reviewer's decisions on a submission held for review: correct an answer, accept it as it is,
or reject it; and the submission's history.

Like ODK Central's review states, with CLMS's rules (README, "Reviewing held submissions"):

correct
    A NEW version of the submission, as ODK Collect makes for an edit: the XML with the one answer
    changed (:func:`forms.questions.corrected`), a new ``instanceID`` and a ``deprecatedID``
    naming the version it replaces, stored through the same path as an edit that arrives from a
    phone (:func:`forms.ingest.ingest_submission`): the old version keeps its bytes, stops being
    current (its visit and report too) and gets the status ``corrected``; the new one is
    ``received``, so the processing job takes it, saves its visit (the current one, the old one
    stays as history) and classifies it, or holds it again for what is still wrong.
accept
    Only for reasons where the data saved is right and a doubt remains (:data:`forms.reasons.
    ACCEPTABLE`): the submission's reasons are kept as accepted (``accepted_reasons``) and it
    becomes ``parsed``, its visit already saved; a visit with too many children was not saved,
    so it goes back to ``received`` and the processing saves it, the limit lifted for it.
    Anything else is refused, saying why.
reject
    Final: ``rejected``, kept as received, never processed again; its visit and report (if any
    were saved) stop counting (not current).

One decision per version: the row is locked (``SELECT ... FOR UPDATE``), its status checked, and
``submission_reviews`` takes one row per version (a unique constraint), so of two reviewers at
once, or a form posted twice, exactly one decides and the other is told it was decided. The
processing job never takes a held submission (it takes ``received`` ones only). Every decision
is audited (``submission.correct``, ``submission.accept``, ``submission.reject``) without the
answers themselves: those stay in ``submission_reviews``, read by who may read the submission.
Flushes, never commits.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from clms.audit import record
from clms.errors import DomainProblem
from clms.facts import refresh_submissions
from clms.i18n import Msg
from clms.models import (
    Case,
    Report,
    Submission,
    SubmissionReview,
    Supplier,
    User,
    Village,
    Visit,
    utcnow,
)
from forms import questions, reasons
from forms.ingest import Attachment, IncomingSubmission, ingest_submission
from forms.review import may_decide, versions, village_choices
from forms.xmlsafe import local, parse_xml

MAX_REASON = 2000
MAX_VALUE = 2000


class ReviewError(DomainProblem):
    """A decision refused (``review.*``: not held any more, not allowed, reason missing, not
    acceptable, an answer that cannot be)."""

    KEY = "review.not_held"


@dataclass
class Event:
    """One line of a submission's history."""

    at: dt.datetime
    kind: str  # received, held, correct, version (made by a correction), accept, reject
    actor: str | None = None
    reason: str = ""
    field: str | None = None
    old_value: str | None = None
    new_value: str | None = None
    submission_id: int | None = None
    instance_id: str | None = None
    accepted: list | None = None
    reasons: list | None = None


def _locked(session: Session, submission_id: int) -> Submission:
    """The submission, locked until the transaction ends and read afresh."""
    found = session.scalar(
        select(Submission)
        .where(Submission.id == submission_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if found is None:
        raise ReviewError()
    return found


def _check(session: Session, user: User, submission_id: int) -> Submission:
    submission = _locked(session, submission_id)
    if not may_decide(session, user, submission):
        raise ReviewError(key="review.not_allowed")
    if submission.status != "review" or not submission.current:
        raise ReviewError()
    return submission


def _reason(text: str | None, action: Msg, required: bool) -> str:
    text = (text or "").strip()[:MAX_REASON]
    if required and not text:
        raise ReviewError(key="review.reason_required", action=action)
    return text


def _keep(session: Session, submission: Submission, user: User, action: str, reason: str,
          **fields) -> SubmissionReview:  # fmt: skip
    row = SubmissionReview(
        logical_id=submission.logical_id,
        form_id=submission.form_id,
        submission_id=submission.id,
        action=action,
        reason=reason,
        actor_id=user.id,
        at=fields.pop("at", None) or utcnow(),
        accepted=fields.pop("accepted", []),
        **fields,
    )
    try:
        with session.begin_nested():  # the unique version: a second decision on it fails here
            session.add(row)
    except IntegrityError as exc:  # another reviewer decided first (SQLite takes no row lock)
        raise ReviewError() from exc
    return row


def correct(
    session: Session, user: User, submission_id: int, path: str, value: str, why: str
) -> Submission:
    """Make a new version of held submission ``submission_id`` with the answer at ``path`` set to
    ``value``, for reason ``why``; returns the new version (``received``)."""
    why = _reason(why, Msg("a correction"), required=True)
    submission = _check(session, user, submission_id)
    path = (path or "").strip()
    value = (value or "").strip()
    layout = questions.read_form(submission.form_version.xml)
    root = parse_xml(submission.xml)
    question = questions.question_at(layout, local(root.tag), path)
    element = questions.find_answer(root, path)
    if not _correctable(path) or question is None or question.kind in ("group", "repeat"):
        raise ReviewError(key="review.unknown_answer", path=path[:100])
    old = None if element is None else (element.text or "").strip()
    value = _checked_value(session, question, path, value)
    if question.choice_file == "villages" and value not in dict(village_choices(session, user)):
        # a reviewer places a visit only in a village of their own scope
        raise ReviewError(key="review.invalid_value", value=value[:100],
                          question=question.label("")[:200],
                          detail=Msg("not one of your villages"))  # fmt: skip
    if (old or "") == value:
        raise ReviewError(key="review.same_value")
    new_instance, decided_at = f"uuid:{uuid.uuid4()}", utcnow()
    try:
        xml = questions.corrected(submission.xml, path, value, new_instance, submission.instance_id)
    except questions.PathNotFound as exc:
        raise ReviewError(key="review.unknown_answer", path=path[:100]) from exc
    result = ingest_submission(
        session,
        IncomingSubmission(
            xml=xml,
            source="review",
            attachments=[
                Attachment(a.name, a.content_type, a.data) for a in submission.attachments
            ],
            submitter=submission.submitter,
            device_id=submission.device_id,
        ),
    )
    session.execute(
        update(Submission).where(Submission.id == submission.id).values(status="corrected")
    )
    _keep(session, submission, user, "correct", why, field=path, old_value=old, new_value=value,
          new_submission_id=result.submission_id, at=decided_at)  # fmt: skip
    record(session, user, "submission.correct", target=f"submission:{submission.logical_id}",
           reason=why, field=path, version=submission.instance_id,
           new_version=new_instance)  # fmt: skip
    session.expire(submission)
    return session.get(Submission, result.submission_id)


#: what a phone records by itself (ODK's metadata): never an answer a reviewer corrects
METADATA = frozenset({
    "meta", "instanceID", "deprecatedID", "instanceName", "start", "end", "today", "deviceid",
    "subscriberid", "simserial", "phonenumber", "username", "email", "audit",
})  # fmt: skip
#: characters XML 1.0 cannot hold (controls other than tab and line ends, non-characters)
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _correctable(path: str) -> bool:
    """A path of an answer (not ODK's metadata)."""
    if not re.match(r"^([\w.-]+\[\d+\]/)?[\w.-]+$", path or ""):
        return False
    return path.rsplit("/", 1)[-1] not in METADATA


def accept(session: Session, user: User, submission_id: int, why: str = "") -> Submission:
    """Accept held submission ``submission_id`` as it is (see the module documentation)."""
    why = _reason(why, Msg("accepting"), required=False)
    submission = _check(session, user, submission_id)
    ok, blocking = reasons.acceptable(submission.review_reasons)
    if not ok:
        names = [reasons.CODE_NAMES.get(reasons.code_of(r) or "", "") for r in blocking]
        raise ReviewError(key="review.not_acceptable", reasons=_joined(names))
    codes = reasons.codes_of(submission.review_reasons)
    again = bool(set(codes) & reasons.REPROCESS_ON_ACCEPT)
    session.execute(
        update(Submission)
        .where(Submission.id == submission.id)
        .values(status="received" if again else "parsed", accepted_reasons=codes)
    )
    _keep(session, submission, user, "accept", why, accepted=codes)
    record(session, user, "submission.accept", target=f"submission:{submission.logical_id}",
           reason=why or None, version=submission.instance_id, accepted=codes,
           processed_again=again)  # fmt: skip
    session.expire(submission)
    return submission


def reject(session: Session, user: User, submission_id: int, why: str) -> Submission:
    """Reject held submission ``submission_id`` for reason ``why`` (final)."""
    why = _reason(why, Msg("rejecting"), required=True)
    submission = _check(session, user, submission_id)
    session.execute(
        update(Submission).where(Submission.id == submission.id).values(status="rejected")
    )
    for model in (Visit, Report):
        table = model.__table__
        session.execute(
            update(table).where(table.c.submission_id == submission.id).values(current=False)
        )
    refresh_submissions(session, [submission.id])
    _keep(session, submission, user, "reject", why)
    record(session, user, "submission.reject", target=f"submission:{submission.logical_id}",
           reason=why, version=submission.instance_id)  # fmt: skip
    session.expire(submission)
    return submission


def _joined(names: list[str]) -> Msg | str:
    """Names of codes (English, translated when shown), joined with commas."""
    names = [n for n in dict.fromkeys(names) if n] or ["?"]
    joined: Msg | str = Msg(names[-1])
    for name in reversed(names[:-1]):
        joined = Msg("{first}, {rest}", first=Msg(name), rest=joined)
    return joined


# --- checking a corrected answer ------------------------------------------------------------------


def _checked_value(
    session: Session, question: questions.Question | None, path: str, value: str
) -> str:
    """``value`` as the answer to ``question`` (normalised), or a refusal saying what is wrong."""
    label = question.label("") if question is not None else path

    def refuse(detail: Msg):
        raise ReviewError(key="review.invalid_value", value=value[:100], question=label[:200],
                          detail=detail)  # fmt: skip

    if len(value) > MAX_VALUE:
        refuse(Msg("longer than {n} characters", n=MAX_VALUE))
    if _NOT_XML.search(value):
        refuse(Msg("holds a control character, which a form's answer cannot"))
    if value == "" or question is None:
        return value
    if question.choices is not None:
        chosen = value.split() if question.kind == "select" else [value]
        unknown = [c for c in chosen if c not in question.choices]
        if unknown:
            refuse(Msg("not one of the form's choices ({choices})",
                       choices=", ".join(question.choices)))  # fmt: skip
        if question.kind == "select1" and len(value.split()) != 1:
            refuse(Msg("choose one answer only"))
        if question.kind == "select" and "none" in chosen and len(chosen) > 1:
            refuse(Msg("“none” cannot be chosen with other answers"))
        return " ".join(chosen)
    if question.choice_file is not None:
        _check_listed(session, question.choice_file, value, refuse)
        return value
    kind = question.type
    if kind in ("int", "integer"):
        if not re.fullmatch(r"-?\d{1,9}", value):
            refuse(Msg("not a whole number"))
    elif kind == "decimal":
        try:
            float(value)
        except ValueError:
            refuse(Msg("not a number"))
    elif kind == "date":
        try:
            dt.date.fromisoformat(value)
        except ValueError:
            refuse(Msg("not a date (YYYY-MM-DD)"))
    elif kind == "geopoint":
        try:
            parts = [float(p) for p in value.split()]
        except ValueError:
            parts = []
        if not (2 <= len(parts) <= 4 and -90 <= parts[0] <= 90 and -180 <= parts[1] <= 180):
            refuse(Msg("not a GPS point (latitude longitude [altitude accuracy])"))
    return value


def _check_listed(session: Session, listed: str, value: str, refuse) -> None:
    """A code of a list the phone gets as a file: a village, a supplier, a case."""
    if listed == "villages":
        if session.scalar(select(Village.id).where(Village.code == value)) is None:
            refuse(Msg("not the code of a known village"))
    elif listed == "suppliers":
        if value != "none" and session.scalar(
            select(Supplier.id).where(Supplier.code == value)
        ) is None:  # fmt: skip
            refuse(Msg("not the code of a known supplier"))
    elif (
        listed == "cases"
        and session.scalar(select(Case.id).where(Case.case_number == value)) is None
    ):
        refuse(Msg("not a known case number"))


# --- history --------------------------------------------------------------------------------------


def history(session: Session, submission: Submission) -> list[Event]:
    """What happened to ``submission`` and its other versions: each version received (and held,
    with its reasons), each decision (who, when, why, what changed), the oldest first."""
    events: list[Event] = []
    for version in versions(session, submission):
        who = version.submitter.username if version.submitter else version.source
        kind = "version" if version.source == "review" else "received"
        events.append(Event(version.received_at, kind, who,
                            submission_id=version.id, instance_id=version.instance_id))  # fmt: skip
        if version.review_reasons:
            events.append(Event(version.received_at, "held", None, submission_id=version.id,
                                instance_id=version.instance_id,
                                reasons=list(version.review_reasons)))  # fmt: skip
    decisions = session.scalars(
        select(SubmissionReview)
        .where(
            SubmissionReview.form_id == submission.form_id,
            SubmissionReview.logical_id == submission.logical_id,
        )
        .order_by(SubmissionReview.at, SubmissionReview.id)
    )
    for d in decisions:
        events.append(
            Event(d.at, d.action, d.actor.username if d.actor else None, d.reason, d.field,
                  d.old_value, d.new_value, d.submission_id, accepted=list(d.accepted or []))
        )  # fmt: skip
    order = {"received": 0, "held": 1, "correct": 2, "accept": 2, "reject": 2, "version": 3}
    events.sort(key=lambda e: (e.at, order.get(e.kind, 3)))
    return events
