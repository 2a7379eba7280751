"""Running pulls from ODK Central and KoboToolbox: the transactions of a pull.

The scheduler's ``pull_sources`` job, ``clms sources pull`` and the sources page call
:func:`pull_source` or :func:`pull_all`. A pull (:mod:`forms.pull.run`) fetches the submissions
since the source's cursor; each one is stored with the cursor that covers it in a transaction of
its own (the boundary is here), so a pull killed midway resumes where it stopped, with no gap and
no duplicate. What is stored waits, ``received``, for the processing job
(:mod:`clms.intake.process`), as a pushed submission does.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Mapping

import requests
from sqlalchemy import select
from sqlalchemy.orm import Session

from clms.db import commit_retrying, read_only
from clms.errors import Problem
from clms.intake.kobo_recheck import recheck_kobo
from clms.intake.withdraw import WITHDRAWING, apply_remote_state
from clms.models import PullSource, Submission, utcnow
from forms.credentials import CredentialsError
from forms.pull.clients import PullError, Target, _instant
from forms.pull.run import (
    Pulled,
    PullResult,
    PullRun,
    finish,
    forget_retry,
    move_changes_cursor,
    move_cursor,
    read_target,
    record_problem,
    remember_retry,
    retries_of,
    store_pulled,
)

log = logging.getLogger(__name__)


def pull_source(
    sessions: Callable[[], Session],
    source_id: int,
    config: Mapping,
    *,
    http: requests.Session | None = None,
    sleep: Callable[[float], object] = time.sleep,
    progress: Callable[[PullResult], object] | None = None,
    page_size: int | None = None,
    attempts: int | None = None,
) -> PullResult:
    """Pull what is new and what changed on one source, store it, and record how it went.

    In order: the submissions received since the source's cursor (read again from
    ``PULL_LOOKBACK_MINUTES`` before it), those of its retry list, then (ODK Central) the
    submissions edited, reviewed, deleted or restored since its changes cursor: the versions we
    lack are stored and the logical submission withdrawn or restored as the server says
    (:func:`apply_remote_state`). One Central session serves the whole run and is deleted at its
    end, failed or not.

    Parameters
    ----------
    sessions:
        Makes a new SQLAlchemy session (``app.extensions["clms_sessionmaker"]``). No session is held
        open while waiting on the remote server.
    source_id:
        The :class:`~clms.models.PullSource` to pull (disabled or not: the caller chooses).
    config:
        The application's settings: ``CREDENTIALS_KEY``, optionally ``PULL_PAGE_SIZE``,
        ``PULL_ATTEMPTS``, ``PULL_LOOKBACK_MINUTES``.
    http:
        The ``requests.Session`` to use (default: a new one, closed afterwards).
    sleep:
        Called with the seconds to wait between tries (tests record instead of sleeping).
    progress:
        Called with the running result once the count is known and after each submission.

    Returns the :class:`~forms.pull.run.PullResult`. A remote failure (unreachable, refused
    credentials, retries used up) ends the pull early with ``result.error`` set, and is not
    raised; anything else (the database, a bug) is recorded on the source and raised.

    Examples
    --------
    >>> result = pull_source(app.extensions["clms_sessionmaker"], 1, app.config)  # doctest: +SKIP
    >>> result.summary()  # doctest: +SKIP
    "source 'nawa-central': 3 fetched, 3 new, 0 already stored, 0 edits, 0 withdrawn, ..."
    """
    started = utcnow()
    with sessions() as session:
        read_only(session)
        target, sealed = read_target(session, source_id)
        waiting = [
            (r.remote_id, r.instance_id, r.submitted_at) for r in retries_of(session, source_id)
        ]
        changes_cursor = session.scalar(
            select(PullSource.changes_cursor).where(PullSource.id == source_id)
        )
        deleted_here = _withdrawn_as_deleted(session, source_id, started)
    result = PullResult(source=target.name, kind=target.kind, cursor=target.cursor)
    run = PullRun(
        target, sealed, config, http=http, sleep=sleep, page_size=page_size, attempts=attempts,
        known=lambda ids: _known(sessions, ids),
    )  # fmt: skip
    try:
        for pulled in run.submissions(result, progress):
            _store(sessions, target, pulled, result)
        for pulled in run.retries(waiting, result, progress):
            _store(sessions, target, pulled, result)
        for pulled in run.changes(changes_cursor, deleted_here, result, progress):
            _store(sessions, target, pulled, result)
        if target.kind == "kobo":
            # kpi has no modified time: edits, validation statuses, deletions and late arrivals
            # are found by re-listing a window (clms.intake.kobo_recheck)
            recheck_kobo(sessions, target, run.client, config, result)
    except (PullError, CredentialsError) as exc:
        result.error = run.redact(str(exc))
        log.warning("pull of source %r stopped: %s", target.name, result.error)
    except Exception as exc:
        result.error = run.redact(f"unexpected error: {type(exc).__name__}: {exc}")[:1000]
        try:
            _finish(sessions, source_id, result, started)
        except Exception:  # the database may be what failed: the first error is the one to see
            log.exception("pull of source %r: could not record the failure", target.name)
        raise
    finally:
        run.close()
    _finish(sessions, source_id, result, started)
    log.info("pulled %s", result.summary())
    return result


def pull_all(sessions: Callable[[], Session], config: Mapping, **kw) -> dict[str, PullResult]:
    """Pull every enabled source in turn; one that fails never stops the others.

    Takes the keywords of :func:`pull_source`; returns the results by source name.
    """
    with sessions() as session:
        read_only(session)
        rows = session.execute(
            select(PullSource.id, PullSource.name)
            .where(PullSource.enabled.is_(True))
            .order_by(PullSource.name)
        ).all()
    results: dict[str, PullResult] = {}
    for source_id, name in rows:
        try:
            results[name] = pull_source(sessions, source_id, config, **kw)
        except Exception as exc:
            # already recorded on the source by pull_source; the next source still runs
            log.exception("pull of source %r failed", name)
            results[name] = PullResult(source=name, error=f"unexpected error: {type(exc).__name__}")
    return results


# Central purges a deleted submission after 30 days (lib/model/query/submissions.js,
# PURGE_DAY_RANGE): one withdrawn longer ago can no longer come back
RESTORABLE_DAYS = 30


def _withdrawn_as_deleted(session: Session, source_id: int, now: dt.datetime) -> list[str]:
    """The remote ids of the source's submissions withdrawn here as deleted there, that the
    server may still restore."""
    return list(
        session.scalars(
            select(Submission.remote_id)
            .where(
                Submission.pull_source_id == source_id,
                Submission.withdrawn_reason == "deleted",
                Submission.withdrawn_at >= now - dt.timedelta(days=RESTORABLE_DAYS),
                Submission.remote_id.is_not(None),
            )
            .distinct()
        )
    )


def _known(sessions, instance_ids: list[str]) -> set[str]:
    """Which of ``instance_ids`` are stored here (a version a pull need not fetch again)."""
    if not instance_ids:
        return set()
    with sessions() as session:
        read_only(session)
        return set(
            session.scalars(
                select(Submission.instance_id).where(Submission.instance_id.in_(instance_ids))
            )
        )


def _held(session: Session, source_id: int, remote_id) -> bool:
    """Whether a version of the source's submission ``remote_id`` is stored here."""
    return (
        session.scalar(
            select(Submission.id)
            .where(Submission.pull_source_id == source_id, Submission.remote_id == str(remote_id))
            .limit(1)
        )
        is not None
    )


def _store(sessions, target: Target, pulled: Pulled, result: PullResult) -> None:
    """Store one fetched submission with the cursor that covers it, in its own transaction, and
    make it follow what its server says of it. One the ingest refuses, or the server no longer
    has, waits on the retry list with its reason, and the cursor moves past it: every pull tries
    it again until it is stored."""
    entry = pulled.entry
    if pulled.missing is not None:
        _cannot_take(sessions, target, pulled, result, "pull.remote_not_found", pulled.missing)
        return
    try:
        with sessions() as session:
            done = commit_retrying(session, lambda: _take(session, target, pulled))
    except Problem as p:
        _cannot_take(sessions, target, pulled, result, p.code, p.message)
        return
    created, edits, changed, retried = done
    if created:
        result.stored += 1
    elif pulled.incoming is not None and not edits:
        result.duplicates += 1
    result.edits += edits
    result.retried += int(retried)
    if changed:
        if pulled.state in WITHDRAWING:
            result.withdrawn += 1
        else:
            result.restored += 1
    if pulled.cursor:
        result.cursor = _later(result.cursor, entry.submitted_at)


def _take(session: Session, target: Target, pulled: Pulled) -> tuple[bool, int, bool, bool]:
    """The transaction of one pulled submission: its versions, the cursors, the retry list, its
    remote state. Returns (a new logical submission, versions of an edit stored, its state
    changed here, taken off the retry list)."""
    entry, created, edits = pulled.entry, False, 0
    for incoming in [*pulled.earlier, pulled.incoming]:
        if incoming is None:
            continue
        new = store_pulled(session, target, incoming, None)
        if new and _is_edit(incoming):
            edits += 1
        elif new:
            created = True
    if pulled.cursor:
        move_cursor(session, target.id, entry.submitted_at, False)
    if pulled.changed_at:
        move_changes_cursor(session, target.id, pulled.changed_at)
    # off the retry list only once it is here: a pull that brought only its state (a review
    # decision on a submission the ingest refused) leaves it waiting
    retried = _held(session, target.id, entry.remote_id) and forget_retry(
        session, target.id, entry.remote_id
    )
    changed = False
    if pulled.state is not None:
        changed = bool(
            apply_remote_state(
                session, target.id, entry.remote_id, pulled.state,
                review_state=pulled.review_state, detail=_detail(target, pulled),
            )
        )  # fmt: skip
    return created, edits, changed, retried


def _is_edit(incoming) -> bool:
    """A version that replaces another (its meta names a deprecatedID)."""
    return b"deprecatedID>" in incoming.xml


def _detail(target: Target, pulled: Pulled) -> str:
    what = {"deleted": "deleted", "rejected": "rejected by a reviewer"}.get(pulled.state or "")
    if what:
        return f"{what} on {target.kind} source '{target.name}'"
    return f"live again on {target.kind} source '{target.name}'"


def _later(a: str | None, b: str) -> str:
    if a is None or not b:
        return a or b
    return b if _instant(b) > _instant(a) else a


def _cannot_take(sessions, target: Target, pulled: Pulled, result: PullResult, code, message):
    """A submission that could not be taken: on the retry list, and the cursors move past it."""
    entry = pulled.entry
    record_problem(result, entry.instance_id, str(code), message)

    def remember():
        remember_retry(session, target.id, entry, str(code), message)
        if pulled.cursor:
            move_cursor(session, target.id, entry.submitted_at, created=False)
        if pulled.changed_at:
            move_changes_cursor(session, target.id, pulled.changed_at)

    with sessions() as session:
        commit_retrying(session, remember)
    if pulled.cursor:
        result.cursor = _later(result.cursor, entry.submitted_at)


def _finish(sessions, source_id: int, result: PullResult, started: dt.datetime) -> None:
    with sessions() as session:
        finish(session, source_id, result, started)
        session.commit()
