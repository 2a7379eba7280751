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
from clms.models import PullSource, utcnow
from forms.credentials import CredentialsError
from forms.pull.clients import PullError, Target
from forms.pull.run import (
    Pulled,
    PullResult,
    PullRun,
    finish,
    move_cursor,
    read_target,
    record_problem,
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
    """Pull what is new on one source, store it, and record how it went on the source.

    Parameters
    ----------
    sessions:
        Makes a new SQLAlchemy session (``app.extensions["clms_sessionmaker"]``). No session is held
        open while waiting on the remote server.
    source_id:
        The :class:`~clms.models.PullSource` to pull (disabled or not: the caller chooses).
    config:
        The application's settings: ``CREDENTIALS_KEY``, optionally ``PULL_PAGE_SIZE``.
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
    "source 'nawa-central': 3 fetched, 3 new, 0 already stored, 0 not stored (1 page); ..."
    """
    started = utcnow()
    with sessions() as session:
        read_only(session)
        target, sealed = read_target(session, source_id)
    result = PullResult(source=target.name, kind=target.kind, cursor=target.cursor)
    run = PullRun(
        target, sealed, config, http=http, sleep=sleep, page_size=page_size, attempts=attempts
    )
    try:
        for pulled in run.submissions(result, progress):
            _store(sessions, target, pulled, result)
        if target.kind == "kobo":
            # kpi has no modified time: edits, validation statuses, deletions and late arrivals
            # are found by re-listing a window (clms.intake.kobo_recheck)
            from clms.intake.kobo_recheck import recheck_kobo

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


def _store(sessions, target: Target, pulled: Pulled, result: PullResult) -> None:
    """Store one fetched submission with the cursor that covers it, in its own transaction; a
    submission the ingest refuses, or the server deleted meanwhile, is reported and the cursor
    moves past it all the same (``clms sources pull --from-start`` reads it again)."""
    entry = pulled.entry
    if pulled.missing is not None:
        record_problem(result, entry.instance_id, "404", pulled.missing)
        _advance(sessions, target.id, entry.submitted_at)
        result.cursor = entry.submitted_at
        return
    try:
        with sessions() as session:
            created = commit_retrying(
                session, lambda: store_pulled(session, target, pulled.incoming, entry.submitted_at)
            )
    except Problem as p:
        record_problem(result, entry.instance_id, p.code, p.message)
        _advance(sessions, target.id, entry.submitted_at)
    else:
        if created:
            result.stored += 1
        else:
            result.duplicates += 1
        if target.kind == "kobo":  # where it lives there (clms.intake.kobo_recheck)
            from forms.pull.kobo_changes import link_by_instance

            with sessions() as session:
                link_by_instance(session, target.id, str(entry.remote_id), entry.instance_id)
                session.commit()
    result.cursor = entry.submitted_at


def _advance(sessions, source_id: int, submitted_at: str) -> None:
    """Move the cursor past a submission that was not stored, in a transaction of its own."""
    with sessions() as session:
        move_cursor(session, source_id, submitted_at, created=False)
        session.commit()


def _finish(sessions, source_id: int, result: PullResult, started: dt.datetime) -> None:
    with sessions() as session:
        finish(session, source_id, result, started)
        session.commit()
