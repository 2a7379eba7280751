"""Processing received submissions: parse our forms into households, visits, children and reports.

A submission is accepted in two steps. The OpenRosa request (or a pull) stores the raw XML and
answers 201 as soon as it is safely in the database, with status ``received``
(:mod:`forms.ingest`). This module then parses what was received, in order of arrival and in
batches, and moves each submission to ``parsed`` or ``review`` (with the reasons). Phones are never
kept waiting on the parsing, a bug in it can never make a phone's submission fail, and a batch costs
far fewer statements and commits than the same submissions one by one.

Run it with ``clms process --follow`` (in production; the scheduler of issue 3 will run it), or call
:func:`process_received` (tests, the demo). Processors never interleave: each claims its batch with
``SELECT ... FOR UPDATE`` of the oldest received submissions, so a second one waits for the first
one's batch (PostgreSQL row locks; SQLite has a single writer anyway), and the same household is
never saved by two at once. A batch is one transaction: the status changes with the rows, so a
processor killed mid-batch leaves the batch ``received`` and it is processed again, never twice. A
batch that fails is rolled back and its submissions processed one per transaction, so one
submission that cannot be processed is marked for review with the error and never holds up the
others.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from clms.db import read_only
from clms.models import Submission, User
from forms import store
from forms.parse import Issue, parse_submission
from forms.xmlsafe import parse_xml

log = logging.getLogger(__name__)

BATCH = 50
SUBMISSIONS = Submission.__table__

# the oldest received submissions, read without a lock (parsed outside any transaction) ...
_PEEK = (
    select(
        SUBMISSIONS.c.id, SUBMISSIONS.c.xml, SUBMISSIONS.c.received_at, SUBMISSIONS.c.submitter_id
    )  # fmt: skip
    .where(SUBMISSIONS.c.status == "received")
    .order_by(SUBMISSIONS.c.id)
    .limit(bindparam("batch"))
)
# ... then claimed: those still received, locked until the batch commits
_CLAIM = (
    select(SUBMISSIONS.c.id, SUBMISSIONS.c.current)
    .where(
        SUBMISSIONS.c.id.in_(bindparam("ids", expanding=True)),
        SUBMISSIONS.c.status == "received",
    )
    .order_by(SUBMISSIONS.c.id)
    .with_for_update()
)
_SET_STATUS = update(SUBMISSIONS).where(SUBMISSIONS.c.id == bindparam("row_id"))


@dataclass
class _Parsed:
    id: int
    received_at: object
    submitter_id: int | None
    record: object  # a forms.parse record, or None for a form that is not ours
    error: str | None = None  # the XML could not be parsed


def _parse(row) -> _Parsed:
    try:
        record = parse_submission(parse_xml(row.xml))
    except Exception as exc:  # stored XML passed the same parser on arrival: a bug, not input
        log.exception("submission %d could not be parsed", row.id)
        return _Parsed(row.id, row.received_at, row.submitter_id, None, _failure(exc))
    return _Parsed(row.id, row.received_at, row.submitter_id, record)


def _failure(exc: Exception) -> str:
    return f"could not be processed: {type(exc).__name__}: {exc}"[:500]


@dataclass
class ProcessResult:
    """What one call did: submissions processed, by outcome."""

    parsed: int = 0
    review: int = 0
    failed: int = 0  # could not be processed at all: marked for review with the error

    @property
    def processed(self) -> int:
        return self.parsed + self.review + self.failed

    def add(self, other: ProcessResult) -> None:
        self.parsed += other.parsed
        self.review += other.review
        self.failed += other.failed


def process_received(
    sessions: Callable[[], Session],
    *,
    batch: int = BATCH,
    limit: int | None = None,
    progress: Callable[[ProcessResult], None] | None = None,
    full_batches_only: bool = False,
) -> ProcessResult:
    """Process received submissions, oldest first, until none is left (or ``limit`` are done).

    ``sessions`` makes a new session (the app's sessionmaker); each batch is one transaction.
    ``progress`` is called after every batch with the running totals. With
    ``full_batches_only``, stop after the first batch that was not full (what arrives meanwhile
    waits for the next call): :func:`follow` then processes fewer, larger batches.
    """
    total = ProcessResult()
    while limit is None or total.processed < limit:
        size = batch if limit is None else min(batch, limit - total.processed)
        done = _process_batch(sessions, size)
        if done is None:
            break
        peeked, result = done
        total.add(result)
        if progress is not None:
            progress(total)
        if full_batches_only and peeked < size:
            break
    return total


def follow(
    sessions: Callable[[], Session],
    *,
    interval: float = 1.0,
    batch: int = BATCH,
    stop: Callable[[], bool] = lambda: False,
    progress: Callable[[ProcessResult], None] | None = None,
) -> ProcessResult:
    """Keep processing: drain what is received, then look again every ``interval`` seconds."""
    total = ProcessResult()
    while not stop():
        try:
            total.add(
                process_received(sessions, batch=batch, progress=progress, full_batches_only=True)
            )
        except OperationalError:  # the database is away: what was received waits for it
            log.exception("cannot reach the database; trying again in %s s", interval)
        if stop():
            break
        time.sleep(interval)
    return total


def _process_batch(sessions: Callable[[], Session], size: int) -> tuple[int, ProcessResult] | None:
    """Process up to ``size`` of the oldest received submissions; None when there were none,
    else how many there were and what became of them.

    The XML is read and parsed outside the write transaction (on SQLite the write lock is then
    held only for the lookups and the writes). The claim re-checks the status under a lock: what
    another processor took meanwhile is left to it.
    """
    with sessions() as session:
        read_only(session)
        rows = session.execute(_PEEK, {"batch": size}).all()
        session.rollback()
    if not rows:
        return None
    parsed = [_parse(row) for row in rows]
    with sessions() as session:
        try:
            result = _save(session, parsed)
            session.commit()
            return len(rows), result
        except OperationalError:
            raise  # the database, not a submission: leave the batch received
        except Exception:
            session.rollback()
            log.exception("batch of %d submissions failed; processing them one by one", len(rows))
    result = ProcessResult()
    for one in parsed:
        result.add(_process_alone(sessions, one))
    return len(rows), result


def _process_alone(sessions: Callable[[], Session], one: _Parsed) -> ProcessResult:
    """One submission in its own transaction; one that fails is marked for review with the error."""
    with sessions() as session:
        try:
            result = _save(session, [one])
            session.commit()
            return result
        except OperationalError:
            raise
        except Exception as exc:
            session.rollback()
            log.exception("submission %d could not be processed", one.id)
            session.execute(_SET_STATUS, [_failed_status(one.id, _failure(exc))])
            session.commit()
            return ProcessResult(failed=1)


def _save(session: Session, parsed: list[_Parsed]) -> ProcessResult:
    """Claim, save (in order) and set the status of parsed submissions; does not commit."""
    claimed = dict(session.execute(_CLAIM, {"ids": [p.id for p in parsed]}).all())  # id -> current
    users: dict[int, User | None] = {}
    items, statuses = [], []
    result = ProcessResult()
    for p in parsed:
        if p.id not in claimed:  # processed meanwhile by another processor
            continue
        if p.error is not None:
            statuses.append(_failed_status(p.id, p.error))
            result.failed += 1
            continue
        if p.record is None:  # pragma: no cover - only our forms are stored as "received"
            statuses.append({"row_id": p.id, "status": "raw", "review_reasons": []})
            continue
        if p.submitter_id is not None and p.submitter_id not in users:
            users[p.submitter_id] = session.get(User, p.submitter_id)
        submitter = users.get(p.submitter_id) if p.submitter_id is not None else None
        items.append(store.Item(p.id, p.record, submitter, p.received_at, claimed[p.id]))
    if items:
        issues = store.save_batch(session, items)
        for item in items:
            found = issues[item.submission_id]
            status = "review" if found else "parsed"
            statuses.append({"row_id": item.submission_id, "status": status,
                             "review_reasons": [i.as_dict() for i in found]})  # fmt: skip
            if found:
                result.review += 1
            else:
                result.parsed += 1
    if statuses:
        session.execute(_SET_STATUS, statuses)
    return result


def _failed_status(submission_id: int, problem: str) -> dict:
    reasons = [Issue("submission", None, problem).as_dict()]
    return {"row_id": submission_id, "status": "review", "review_reasons": reasons}


def waiting(session: Session) -> tuple[int, object]:
    """How many submissions wait to be processed, and when the oldest arrived (None if none)."""
    count, oldest = session.execute(
        select(func.count(), func.min(SUBMISSIONS.c.received_at)).where(
            SUBMISSIONS.c.status == "received"
        )
    ).one()
    return count, oldest
