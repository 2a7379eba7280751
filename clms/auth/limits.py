"""Slowing down password guessing: a lock per username and a limit per client address.

Both are counters in the ``login_throttles`` table, not in process memory, so that every gunicorn
worker (and every server behind one database) counts the same attempts. Each counter changes in
one ``UPDATE ... SET count = count + 1`` statement: concurrent attempts cannot lose a count (on
PostgreSQL the row stays locked until the attempt's transaction ends).

The username lock
    After ``LOGIN_MAX_FAILURES`` failed sign-ins in a row for a username, that username is locked
    for ``LOGIN_LOCK_MINUTES``: while locked, even the right password is refused. A username that
    does not exist is counted and locked exactly like one that does, so neither the answers nor
    their timing tell an attacker which usernames exist. A successful sign-in clears the count;
    ``clms users unlock NAME`` clears a lock early. Counts left untouched for a day are dropped.
The address limit
    One client address may try ``LOGIN_RATE_PER_MINUTE`` sign-ins in a minute; more are answered
    429 with ``Retry-After``. On the web sign-in page and the API's token endpoint every attempt
    counts. On OpenRosa only failed ones do: ODK Collect authenticates every request it makes,
    and a whole village's phones often reach the server through one mobile gateway address.

Known limit: the lock lets anyone who knows a username keep it locked by failing on purpose;
the address limit makes that slower, and an administrator can unlock. Phones with a device token
URL are not affected by a password lock.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import and_, case, delete, insert, literal, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from clms.db import writable
from clms.errors import Problem, problem
from clms.models import LoginThrottle, User, UTCDateTime, utcnow

WINDOW = dt.timedelta(minutes=1)
FORGET_AFTER = dt.timedelta(days=1)
_T = LoginThrottle
_NO_SYNC = {"synchronize_session": False}  # counters are never loaded as objects


@dataclass(frozen=True)
class Limits:
    """The three settings of the module documentation."""

    max_failures: int = 5
    lock_minutes: int = 15
    rate_per_minute: int = 20

    @classmethod
    def from_config(cls, config) -> Limits:
        return cls(
            max_failures=int(config["LOGIN_MAX_FAILURES"]),
            lock_minutes=int(config["LOGIN_LOCK_MINUTES"]),
            rate_per_minute=int(config["LOGIN_RATE_PER_MINUTE"]),
        )


@dataclass(frozen=True)
class SignIn:
    """What :func:`attempt_sign_in` decided: the ``user`` it signed in, or the ``refusal`` (the
    problem to answer), whose counts and audit entries are flushed and must be committed before
    it is raised."""

    user: User | None = None
    refusal: Problem | None = None


def attempt_sign_in(
    session: Session,
    username: str,
    verify: Callable[[], User | None],
    *,
    address: str,
    limits: Limits,
    surface: str,
    count_every_attempt: bool = True,
) -> SignIn:
    """Check the address limit and the username lock, then ``verify()`` the credentials.

    Returns the user ``verify`` found, or the refusal to answer (``auth.rate_limited`` 429,
    ``auth.locked`` 429, ``auth.failed`` 401) with the counts and the audit entries
    (``auth.login_failed``, ``auth.locked``) written in ``session``. Flushes, never commits: the
    sign-in's boundary (:func:`clms.security.guard_sign_in`) commits a refusal before raising it,
    because the error handler rolls the request's transaction back and a refused attempt must
    still count; a success is committed by the caller with its own work (its ``auth.login``
    entry).
    """
    from clms.audit import record

    now = utcnow()
    key = username[:200]
    target = f"user:{username[:150]}"
    wait = address_wait(session, address, limits, count=count_every_attempt, now=now)
    if wait:
        session.flush()
        return SignIn(
            refusal=problem("auth.rate_limited", headers={"Retry-After": str(wait)}, seconds=wait)
        )
    wait = lock_wait(session, key, now=now)
    if wait:
        writable(session)
        record(session, None, "auth.login_failed", target, surface=surface, locked=True)
        session.flush()
        return SignIn(refusal=_locked(limits, wait))
    user = verify()
    if user is not None:
        note_success(session, key)
        return SignIn(user=user)
    writable(session)
    if not count_every_attempt:
        address_wait(session, address, limits, count=True, now=now)
    # the counter's row before the audit's head row, in this order on every path (a success
    # clears the counter, then its caller records): two requests never wait for each other
    locked_now = note_failure(session, key, limits, now=now)
    record(session, None, "auth.login_failed", target, surface=surface)
    if locked_now:
        record(
            session, None, "auth.locked", target, surface=surface,
            failures=limits.max_failures, minutes=limits.lock_minutes,
        )  # fmt: skip
    session.flush()
    if locked_now:
        return SignIn(refusal=_locked(limits, limits.lock_minutes * 60))
    return SignIn(refusal=problem("auth.failed"))


def _locked(limits: Limits, wait: int):
    return problem(
        "auth.locked",
        headers={"Retry-After": str(wait)},
        minutes=math.ceil(wait / 60),
        failures=limits.max_failures,
    )


def address_wait(
    session: Session, address: str, limits: Limits, *, count: bool = True, now=None
) -> int:
    """Seconds ``address`` must wait before its next attempt (0: it may try now).

    With ``count`` this attempt is counted first (one atomic update), and refused when it goes
    over the limit; without, the count is only read (refused when the limit is already reached).
    """
    now = now or utcnow()
    cutoff = now - WINDOW
    key = (address or "unknown")[:200]
    if count:
        stale = _T.window_start <= cutoff
        _upsert(
            session,
            "address",
            key,
            {
                _T.count: case((stale, 1), else_=_T.count + 1),
                _T.window_start: case((stale, _at(now)), else_=_T.window_start),
                _T.updated_at: now,
            },
            {"count": 1, "window_start": now, "updated_at": now},
            now,
        )
    row = session.execute(
        select(_T.count, _T.window_start).where(_T.scope == "address", _T.key == key)
    ).first()
    if row is None or row.window_start <= cutoff:
        return 0
    over = row.count > limits.rate_per_minute if count else row.count >= limits.rate_per_minute
    if not over:
        return 0
    return max(1, math.ceil((row.window_start + WINDOW - now).total_seconds()))


def lock_wait(session: Session, username: str, now=None) -> int:
    """Seconds until ``username``'s lock ends (0: not locked)."""
    now = now or utcnow()
    until = session.scalar(
        select(_T.locked_until).where(_T.scope == "user", _T.key == username[:200])
    )
    if until is None or until <= now:
        return 0
    return max(1, math.ceil((until - now).total_seconds()))


def note_failure(session: Session, username: str, limits: Limits, now=None) -> bool:
    """Count a failed sign-in for ``username``; True when this failure locked it."""
    now = now or utcnow()
    lock_end = now + dt.timedelta(minutes=limits.lock_minutes)
    expired = _T.locked_until <= now  # a lock that ended: counting starts again
    new_count = case((expired, 1), else_=_T.count + 1)
    _upsert(
        session,
        "user",
        username[:200],
        {
            _T.count: new_count,
            _T.locked_until: case(
                (_T.locked_until > now, _T.locked_until),  # locked meanwhile by another worker
                (new_count >= limits.max_failures, _at(lock_end)),
                else_=None,
            ),
            _T.updated_at: now,
        },
        {
            "count": 1,
            "window_start": now,
            "updated_at": now,
            "locked_until": lock_end if limits.max_failures <= 1 else None,
        },
        now,
    )
    row = session.execute(
        select(_T.count, _T.locked_until).where(_T.scope == "user", _T.key == username[:200])
    ).one()
    return row.locked_until is not None and row.count == limits.max_failures


def note_success(session: Session, username: str) -> None:
    """Forget ``username``'s failures (written only when there are some: phones sign in with
    every request)."""
    key = username[:200]
    if session.scalar(select(_T.id).where(_T.scope == "user", _T.key == key)) is not None:
        writable(session)  # OpenRosa authenticates in a read-only transaction
        session.execute(delete(_T).where(_T.scope == "user", _T.key == key))


def unlock(session: Session, username: str) -> dict | None:
    """Clear ``username``'s failures and lock; returns what there was (None: nothing)."""
    key = username[:200]
    row = session.execute(
        select(_T.count, _T.locked_until).where(_T.scope == "user", _T.key == key)
    ).first()
    if row is None:
        return None
    session.execute(delete(_T).where(_T.scope == "user", _T.key == key))
    locked = row.locked_until is not None and row.locked_until > utcnow()
    return {"failures": row.count, "locked": locked}


def lock_state(session: Session, usernames: list[str]) -> dict[str, dt.datetime]:
    """The usernames among ``usernames`` that are locked now, with when their lock ends."""
    now = utcnow()
    rows = session.execute(
        select(_T.key, _T.locked_until).where(
            _T.scope == "user", _T.key.in_(usernames), _T.locked_until > now
        )
    )
    return {key: until for key, until in rows}


def _at(moment: dt.datetime):
    """A moment as a value inside an SQL expression, stored as the columns store it."""
    return literal(moment, UTCDateTime())


def _upsert(session: Session, scope: str, key: str, changes: dict, fresh: dict, now) -> None:
    """Apply ``changes`` to the counter (scope, key), or create it with ``fresh``.

    Portable (SQLite and PostgreSQL): an UPDATE first; when no row exists, an INSERT in a
    savepoint, and should another worker have inserted the same counter meanwhile, the UPDATE
    again. A new counter is also the moment to drop the ones nobody touched for a day.
    """
    where = and_(_T.scope == scope, _T.key == key)
    if session.execute(
        update(_T).where(where).values(changes), execution_options=_NO_SYNC
    ).rowcount:
        return
    try:
        with session.begin_nested():
            session.execute(insert(_T).values(scope=scope, key=key, **fresh))
    except IntegrityError:
        session.execute(update(_T).where(where).values(changes), execution_options=_NO_SYNC)
        return
    session.execute(
        delete(_T).where(
            _T.updated_at < now - FORGET_AFTER,
            or_(_T.locked_until.is_(None), _T.locked_until < now),
        )
    )
