"""The processing job: received submissions through the intake pipeline, a batch at a time.

A submission is accepted in two steps. The OpenRosa request (or a pull) stores the raw XML and
answers 201 as soon as it is safely in the database, with status ``received``
(:mod:`forms.ingest`). This module then runs what was received through the intake pipeline
(:mod:`clms.intake.pipeline`: parse, place, save, classify, cases, alerts), in order of arrival
and in batches, and moves each submission to ``parsed`` or ``review`` (with the reasons). Phones
are never kept waiting on the parsing, a bug in it can never make a phone's submission fail, and
a batch costs far fewer statements and commits than the same submissions one by one.

Run it with ``clms process --follow``, or the scheduler's ``process_submissions`` job
(:mod:`clms.jobs.registry`), or call :func:`process_received` (tests, the demo). Processors never
interleave: each claims its batch with ``SELECT ... FOR UPDATE`` of the oldest received
submissions (:mod:`forms.received`), so a second one waits for the first one's batch
(PostgreSQL row locks; SQLite has a single writer anyway), and the same household is never saved
by two at once. A batch is one transaction: the status changes with the rows, so a
processor killed mid-batch leaves the batch ``received`` and it is processed again, never twice. A
batch that fails is rolled back and its submissions processed one per transaction, so one
submission that cannot be processed is marked for review with the error and never holds up the
others. This module is the transaction boundary of the pipeline: the steps flush, it commits.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from clms.db import read_only
from clms.intake import pipeline, withdraw
from clms.intake.held import tell_reviewers
from clms.intake.pipeline import Parsed, Settings
from clms.models import utcnow
from forms import received, store

log = logging.getLogger(__name__)

BATCH = 50


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
    config: Mapping | None = None,
) -> ProcessResult:
    """Process received submissions, oldest first, until none is left (or ``limit`` are done).

    ``sessions`` makes a new session (the app's sessionmaker); each batch is one transaction.
    ``config`` is the configuration the pipeline's steps are given (the application's, a job's
    ``ctx.config``; None: the defaults), see :class:`~clms.intake.pipeline.Settings`.
    ``progress`` is called after every batch with the running totals. With
    ``full_batches_only``, stop after the first batch that was not full (what arrives meanwhile
    waits for the next call): :func:`follow` then processes fewer, larger batches.
    """
    settings = Settings.from_config(config)
    total = ProcessResult()
    while limit is None or total.processed < limit:
        size = batch if limit is None else min(batch, limit - total.processed)
        done = _process_batch(sessions, size, settings)
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
    config: Mapping | None = None,
) -> ProcessResult:
    """Keep processing: drain what is received, then look again every ``interval`` seconds
    (with the pipeline's ``config``, as :func:`process_received`)."""
    total = ProcessResult()
    while not stop():
        try:
            total.add(
                process_received(
                    sessions, batch=batch, progress=progress, full_batches_only=True, config=config
                )
            )
        except OperationalError:  # the database is away: what was received waits for it
            log.exception("cannot reach the database; trying again in %s s", interval)
        if stop():
            break
        time.sleep(interval)
    return total


def _process_batch(
    sessions: Callable[[], Session], size: int, settings: Settings
) -> tuple[int, ProcessResult] | None:
    """Process up to ``size`` of the oldest received submissions; None when there were none,
    else how many there were and what became of them.

    The XML is read and parsed outside the write transaction (on SQLite the write lock is then
    held only for the lookups and the writes). The claim re-checks the status under a lock: what
    another processor took meanwhile is left to it.
    """
    with sessions() as session:
        read_only(session)
        rows = received.oldest(session, size)
        session.rollback()
    if not rows:
        return None
    parsed = [pipeline.parse(row) for row in rows]
    with sessions() as session:
        try:
            result = _save(session, parsed, settings)
            session.commit()
            return len(rows), result
        except OperationalError:
            raise  # the database, not a submission: leave the batch received
        except Exception:
            session.rollback()
            log.exception("batch of %d submissions failed; processing them one by one", len(rows))
    result = ProcessResult()
    for one in parsed:
        result.add(_process_alone(sessions, one, settings))
    return len(rows), result


def _process_alone(
    sessions: Callable[[], Session], one: Parsed, settings: Settings
) -> ProcessResult:
    """One submission in its own transaction; one that fails is marked for review with the error."""
    with sessions() as session:
        try:
            result = _save(session, [one], settings)
            session.commit()
            return result
        except OperationalError:
            raise
        except Exception as exc:
            session.rollback()
            log.exception("submission %d could not be processed", one.id)
            received.set_statuses(session, [received.failed_status(one.id, pipeline.failure(exc))])
            tell_reviewers(session, [one.id], utcnow())
            session.commit()
            return ProcessResult(failed=1)


def _save(session: Session, parsed: list[Parsed], settings: Settings) -> ProcessResult:
    """Claim, run through the pipeline (in order) and set the status of parsed submissions; does
    not commit."""
    claimed = received.claim(session, [p.id for p in parsed])  # id -> current
    # an edit of a submission its server withdrew (or one withdrawn before it was processed)
    # is kept, but its visits do not count
    for withdrawn_id in withdraw.withdrawn_among(session, list(claimed)):
        claimed[withdrawn_id] = False
    users = received.submitters(
        session,
        {p.submitter_id for p in parsed
         if p.id in claimed and p.error is None and p.record is not None
         and p.submitter_id is not None},
    )  # fmt: skip
    items, statuses = [], []
    result = ProcessResult()
    for p in parsed:
        if p.id not in claimed:  # processed meanwhile by another processor
            continue
        if p.error is not None:
            statuses.append(received.failed_status(p.id, p.error))
            result.failed += 1
            continue
        if p.record is None:  # pragma: no cover - only our forms are stored as "received"
            statuses.append(received.raw_status(p.id))
            continue
        submitter = users.get(p.submitter_id) if p.submitter_id is not None else None
        items.append(
            store.Item(p.id, p.record, submitter, p.received_at, claimed[p.id], p.accepted)
        )
    if items:
        saved, _alerts = pipeline.run(session, items, settings=settings)
        for item in items:
            found = saved.issues[item.submission_id]
            statuses.append(received.status(item.submission_id, found))
            if found:
                result.review += 1
            else:
                result.parsed += 1
    received.set_statuses(session, statuses)
    held = [s["row_id"] for s in statuses if s["status"] == "review"]
    if held:
        tell_reviewers(session, held, utcnow())
    return result
