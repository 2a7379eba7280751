"""Keeping a KoboToolbox source in step after its submissions arrived: edits, validation
statuses, deletions and late arrivals.

kpi (kobotoolbox/kpi) changes a submission in place and says nothing of it in the listing a pull
reads by ``_submission_time``:

* An edit (Enketo, or a phone's re-submission with ``meta/deprecatedID``) updates the same row:
  the same ``_id`` and ``_submission_time``, a new ``meta/instanceID`` and ``_uuid``, the old XML
  moved to the row's history (``logger_tools.create_instance``). There is no modified time.
* A reviewer's validation status is an object on the row, ``_validation_status``
  (``{"uid", "label", "by_whom", "timestamp"}``, or ``{}``); ``validation_status_not_approved``
  means the project's reviewer refused it.
* A deleted row is simply gone.
* kpi writes its MongoDB copy after PostgreSQL, and back-dates ``_submission_time`` to the XML
  root's ``submissionDate``: a row can appear after newer ones were pulled.

So each pull re-lists, over a window of days (``PULL_KOBO_RECHECK_DAYS``, :data:`RECHECK_DAYS`),
each row's ``_id``, instanceID and validation status, and compares them with what CLMS holds for
the source (:func:`compare`, pure): an ``_id`` whose instanceID changed is fetched again (the
edit, with its ``deprecatedID``), an ``_id`` CLMS never stored is fetched (a late arrival), an
``_id`` CLMS holds but never linked to the source (a phone pushed it here too) is linked, a
validation status that changed is followed, and an ``_id`` CLMS received within the window that
the server lists no more, asked for by its ``_id``, is deleted there. The intake
(:mod:`clms.intake.kobo_recheck`) runs the plan, one transaction per change, and withdraws or
restores through :mod:`clms.intake.withdraw`.

The functions here that write flush and never commit.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from clms.models import Submission
from forms.ingest import IncomingSubmission, stop_counting
from forms.pull.clients import Entry, PullError
from forms.pull.run import ingest_pulled

#: days re-listed at each pull (``PULL_KOBO_RECHECK_DAYS``): an edit, a validation status or a
#: deletion made later than this after the submission arrived is not seen
RECHECK_DAYS = 30
NOT_APPROVED = "validation_status_not_approved"
#: a pull withdraws as deleted at most this share of the source's submissions of the window (when
#: more than :data:`BRAKE_MIN` would go): more looks like a wrong asset or a server that lost its
#: data, and a submission wrongly withdrawn stops protecting a child
BRAKE_SHARE = 0.5
BRAKE_MIN = 20
CHUNK = 500  # ids per IN (...) or $in query


@dataclass(frozen=True)
class Listed:
    """A row as KoboToolbox lists it now."""

    remote_id: str  # the integer _id, as text
    instance_id: str
    validation: str | None  # the validation status's uid; None: none
    entry: Entry  # enough to fetch it again


@dataclass(frozen=True)
class Held:
    """A version of a submission CLMS holds for the source."""

    submission_id: int
    remote_id: str
    instance_id: str
    current: bool
    withdrawn_reason: str | None
    review_state: str | None


@dataclass
class Plan:
    """What a re-listing found to do, in order: link, fetch, then follow states and deletions."""

    link: list[tuple[int, str]] = field(default_factory=list)  # (submission id, remote id)
    fetch: list[tuple[Listed, str]] = field(default_factory=list)  # (row, "edited" | "late")
    states: list[tuple[str, str | None]] = field(default_factory=list)  # (remote id, uid)
    deleted: list[str] = field(default_factory=list)  # remote ids

    def __bool__(self) -> bool:
        return bool(self.link or self.fetch or self.states or self.deleted)


def window_start(now: dt.datetime, days: int) -> str:
    """The oldest ``_submission_time`` re-listed, written as kpi writes it (UTC, to the second):
    Mongo compares it as a string."""
    return (now - dt.timedelta(days=days)).astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")


def listed_row(row: dict) -> Listed:
    """A row of :meth:`forms.pull.clients.KoboClient.rows` as :class:`Listed`."""
    remote_id = row["_id"]
    instance_id = row.get("meta/instanceID") or f"uuid:{row.get('_uuid', '')}"
    status = row.get("_validation_status")
    uid = status.get("uid") if isinstance(status, dict) else None
    submitted = row.get("_submission_time")
    if not submitted or instance_id == "uuid:":
        raise PullError(
            f"KoboToolbox listed submission {remote_id} without _submission_time or instanceID"
        )
    attachments = [a for a in row.get("_attachments") or [] if isinstance(a, dict)]
    entry = Entry(instance_id, submitted, remote_id, attachments=attachments)
    return Listed(str(remote_id), instance_id, uid or None, entry)


def compare(
    listed: Iterable[Listed],
    held: dict[str, list[Held]],
    known: dict[str, tuple[int, int | None]],
    recent: set[str],
) -> Plan:
    """What to do so that CLMS says what the server says (pure).

    ``held``: the versions CLMS holds for the source, by remote id; ``known``: for instanceIDs
    listed that no held version has, the submission CLMS holds with it (pushed by a phone, or
    stored by this pull's listing and not linked yet), as (id, its source id or None);
    ``recent``: the remote ids CLMS received within the window, current and not withdrawn as
    deleted (and :func:`in_reach`), whose absence from ``listed`` means deleted there.
    """
    plan = Plan()
    seen: set[str] = set()
    for row in listed:
        seen.add(row.remote_id)
        versions = held.get(row.remote_id, [])
        if not versions:
            have = known.get(row.instance_id)
            if have is None:
                plan.fetch.append((row, "late"))
            elif have[1] is None:
                plan.link.append((have[0], row.remote_id))
            else:
                continue  # another source's submission (the same form pulled twice): not ours
            plan.states.append((row.remote_id, row.validation))
            continue
        if row.instance_id not in {v.instance_id for v in versions}:
            have = known.get(row.instance_id)
            if have is not None and have[1] is None:
                plan.link.append((have[0], row.remote_id))  # this pull's listing stored it
            elif have is None:
                plan.fetch.append((row, "edited"))
            plan.states.append((row.remote_id, row.validation))  # the new version follows too
            continue
        head = next((v for v in reversed(versions) if v.current), versions[-1])
        not_approved = row.validation == NOT_APPROVED
        differs = (
            head.review_state != row.validation
            or (not_approved and head.withdrawn_reason != "not_approved")
            or (not not_approved and head.withdrawn_reason in ("not_approved", "deleted"))
        )
        if differs:
            plan.states.append((row.remote_id, row.validation))
    plan.deleted = sorted(recent - seen, key=as_number)
    return plan


def in_reach(recent: set[str], listed_ids: Iterable[str]) -> set[str]:
    """The remote ids of ``recent`` the server must still list, asked for by id when the window
    does not list them: those kpi inserted after the window's oldest row (its ``_id`` is a
    sequence). A smaller ``_id`` is a row older than the window, out of reach like any other.
    With nothing in the window, every recent one is asked for."""
    numbers = [int(x) for x in listed_ids if x.isdigit()]
    if not numbers:
        return set(recent)
    floor = min(numbers)
    return {x for x in recent if not x.isdigit() or int(x) >= floor}


def brake(plan: Plan, recent: set[str]) -> str | None:
    """Why the plan's deletions must not be applied (None: they may): too many at once."""
    gone = len(plan.deleted)
    if gone > BRAKE_MIN and gone > BRAKE_SHARE * len(recent):
        return (
            f"KoboToolbox no longer lists {gone} of the {len(recent)} submissions of the last "
            "days that were pulled from this source; none was withdrawn. If they were deleted "
            "there on purpose, withdraw them here by hand; otherwise check the source's asset uid "
            "and the server"
        )
    return None


def as_number(remote_id: str) -> tuple[int, str]:
    return (int(remote_id), "") if remote_id.isdigit() else (0, remote_id)


# --- what CLMS holds ---------------------------------------------------------------------------

_HELD = select(
    Submission.id, Submission.remote_id, Submission.instance_id, Submission.current,
    Submission.withdrawn_reason, Submission.remote_review_state, Submission.received_at,
).order_by(Submission.id)  # fmt: skip


def held_rows(
    session: Session, source_id: int, remote_ids: Iterable[str], since: dt.datetime
) -> tuple[dict[str, list[Held]], set[str]]:
    """The versions CLMS holds for the source with one of ``remote_ids`` or received since
    ``since``, by remote id, oldest first; and the remote ids received since ``since`` that are
    current and not withdrawn as deleted (those the server must still list)."""
    mine = Submission.pull_source_id == source_id
    found: dict[int, tuple] = {}
    for row in session.execute(_HELD.where(mine, Submission.received_at >= since)):
        found[row.id] = row
    ids = sorted(set(remote_ids))
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        for row in session.execute(_HELD.where(mine, Submission.remote_id.in_(chunk))):
            found[row.id] = row
    held: dict[str, list[Held]] = {}
    recent: set[str] = set()
    for row in sorted(found.values(), key=lambda r: r.id):
        version = Held(
            row.id, row.remote_id, row.instance_id, row.current, row.withdrawn_reason,
            row.remote_review_state,
        )  # fmt: skip
        held.setdefault(row.remote_id, []).append(version)
        if row.received_at >= since and row.current and row.withdrawn_reason != "deleted":
            recent.add(row.remote_id)
    return held, recent


def known_instances(session: Session, instance_ids: Iterable[str]) -> dict[str, tuple]:
    """For each of ``instance_ids`` CLMS holds: (submission id, its pull source id or None)."""
    ids = sorted(set(instance_ids))
    found: dict[str, tuple[int, int | None]] = {}
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        query = select(Submission.instance_id, Submission.id, Submission.pull_source_id).where(
            Submission.instance_id.in_(chunk)
        )
        for instance_id, submission_id, source_id in session.execute(query):
            found[instance_id] = (submission_id, source_id)
    return found


# --- what a re-listing changes -----------------------------------------------------------------


def link_remote(session: Session, submission_id: int, source_id: int, remote_id: str) -> bool:
    """Record where the submission lives on the source (a phone pushed it here as well, or it
    was stored before the link was kept); True if it was not linked yet. Flushes."""
    linked = session.execute(
        update(Submission)
        .where(
            Submission.id == submission_id,
            or_(Submission.pull_source_id.is_(None), Submission.pull_source_id == source_id),
        )
        .values(pull_source_id=source_id, remote_id=remote_id)
    ).rowcount
    session.flush()
    return bool(linked)


def store_refetched(
    session: Session, source_id: int, row: Listed, incoming: IncomingSubmission
) -> tuple[int, bool]:
    """Ingest a row fetched again (an edit or a late arrival) without moving the source's cursor,
    link it to its ``_id``, and retire any older version of that ``_id`` still current (an edit
    whose previous version CLMS never saw). Returns (submission id, created). A refusal of the
    ingest (a :class:`~clms.errors.Problem`) is raised. Flushes, never commits."""
    ingested = ingest_pulled(session, "kobo", incoming)
    link_remote(session, ingested.submission_id, source_id, row.remote_id)
    _retire_older(session, source_id, row.remote_id, ingested.submission_id)
    session.flush()
    return ingested.submission_id, ingested.created


def _retire_older(session: Session, source_id: int, remote_id: str, keep: int) -> None:
    older = session.scalars(
        select(Submission.id).where(
            Submission.pull_source_id == source_id,
            Submission.remote_id == remote_id,
            Submission.current.is_(True),
            Submission.id != keep,
        )
    ).all()
    if not older:
        return
    session.execute(update(Submission).where(Submission.id.in_(older)).values(current=False))
    stop_counting(session, older)
