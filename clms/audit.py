"""The audit log: append-only, chained by hashes, so that tampering is detectable.

Every read of child-level data, every export, every case change, every sign-in and every change of
permissions writes one :class:`clms.models.AuditEvent` with :func:`record`: who (the user's id,
name and role as they were), what (a dotted ``action`` such as ``case.read``), to what
(``target``, e.g. ``case:C-2025-0001``), when, why (``reason``, when the person gave one) and
details (a small JSON object, never a password or a passphrase). The entry is added in the
caller's transaction: it is kept exactly when the work it records is.

The chain
    Entry ``n`` holds ``prev_hash`` (entry ``n - 1``'s hash, 64 zeros for the first) and
    ``hash = sha256(prev_hash + canonical JSON of its content)``. :func:`verify` recomputes every
    hash in order: a changed, removed or inserted entry breaks the chain at that point, and
    ``audit_head`` (the last sequence number and hash) catches removals at the end. The database
    refuses UPDATE and DELETE on the table (triggers of migration 0007).
Writers never fork the chain
    :func:`record` first updates the one ``audit_head`` row (``seq = seq + 1``), which takes a
    row lock on PostgreSQL and the write lock on SQLite, then reads it: concurrent writers wait
    for each other's commit, and a rolled-back transaction leaves neither an entry nor a gap.

Everything is also written to the ``clms.audit`` logger (one line per entry) for the operator's
log collection.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from clms.db import REQUEST_READS
from clms.models import AuditEvent, AuditHead, User, utcnow
from clms.paging import Keyset

GENESIS = "0" * 64
log = logging.getLogger("clms.audit")

#: details keys that must never be kept (a caller's mistake is dropped, not stored)
SECRET_KEYS = frozenset({"password", "passphrase", "token", "secret", "private_key"})


def record(
    session: Session,
    actor: User | str | None,
    action: str,
    target: str | None = None,
    reason: str | None = None,
    **details,
) -> AuditEvent:
    """Add one audit entry in ``session``'s transaction (the caller commits).

    ``actor``: the user acting, a name for a process (``"scheduler"``), or None (the system).

    >>> record(session, user, "case.read", "case:C-2025-0001")  # doctest: +SKIP
    """
    if isinstance(actor, User | _Actor):
        actor_id, name, role = actor.id, actor.username, actor.role
    else:
        actor_id, name, role = None, actor or "system", ""
    clean = {k: v for k, v in details.items() if k.lower() not in SECRET_KEYS}
    current = REQUEST.get()
    ip = current.ip[:64] if current is not None else ""
    now = utcnow()
    at = now.replace(microsecond=(now.microsecond // 1000) * 1000)
    seq, prev = _advance(session)
    event = AuditEvent(
        seq=seq,
        at=at,
        actor_id=actor_id,
        actor=name[:150],
        role=role or "",
        action=action[:64],
        target=(target or "")[:200],
        reason=reason or "",
        details=_canonical(clean),
        ip=ip,
        prev_hash=prev,
    )
    event.hash = entry_hash(event)
    session.add(event)
    session.execute(update(AuditHead).where(AuditHead.id == 1).values(last_hash=event.hash))
    session.flush()
    log.info(
        "%s actor=%s role=%s target=%s reason=%r details=%s",
        action,
        event.actor,
        event.role,
        event.target,
        event.reason,
        event.details,
    )
    return event


_HEAD = select(AuditHead.seq, AuditHead.last_hash).where(AuditHead.id == 1)


def record_read(
    session: Session,
    actor: User | str | None,
    action: str,
    target: str | None = None,
    reason: str | None = None,
    **details,
) -> None:
    """Record a read (a page or an export of child-level data).

    In a web request on the request's session (or its read session, :func:`clms.db.read_session`,
    which may be on a read replica), the entry is kept in :data:`REQUEST` and written on the primary
    once the response is made and before it is sent, in a transaction of its own
    (:mod:`clms.audit_hooks`): the request's session only reads and is never committed, and if
    the entry cannot be written the person gets an error instead of the data. Elsewhere (the
    command line, jobs, tests) it is added to ``session``'s transaction, which the caller
    commits."""
    current = REQUEST.get()
    if current is not None and (current.session() is session or session.info.get(REQUEST_READS)):
        if isinstance(actor, User):
            actor = _Actor(actor.id, actor.username, actor.role)
        current.reads.append((actor, action, target, reason, details))
    else:
        record(session, actor, action, target, reason, **details)


@dataclass
class RequestAudit:
    """What the audit needs of the request being served (set by :mod:`clms.audit_hooks`): the
    client's address, the request's own database session (a function: it is made on first use)
    and the reads waiting to be written."""

    ip: str
    session: Callable[[], Session | None]
    reads: list = field(default_factory=list)


#: the request being served, if any (a context variable: one per request, per thread)
REQUEST: ContextVar[RequestAudit | None] = ContextVar("clms_audit_request", default=None)


@dataclass(frozen=True)
class _Actor:
    """A user's id, name and role, detached from the request's session."""

    id: int
    username: str
    role: str


def _advance(session: Session) -> tuple[int, str]:
    """Take the chain's head (locking it until commit): the new entry's sequence number and the
    previous hash."""
    advance = update(AuditHead).where(AuditHead.id == 1).values(seq=AuditHead.seq + 1)
    if session.execute(advance).rowcount == 0:
        # a database emptied by hand: start a chain (another writer may be starting it too)
        try:
            with session.begin_nested():
                session.add(AuditHead(id=1, seq=0, last_hash=GENESIS))
        except IntegrityError:
            pass
        session.execute(advance)
    head = session.execute(_HEAD).one()
    return head.seq, head.last_hash


def _canonical(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def _iso(at: dt.datetime) -> str:
    if at.tzinfo is None:
        at = at.replace(tzinfo=dt.UTC)
    return at.astimezone(dt.UTC).isoformat(timespec="milliseconds")


def entry_hash(event: AuditEvent) -> str:
    """The hash an entry must carry: sha256 of the previous hash and its canonical content."""
    content = _canonical(
        [
            event.seq,
            _iso(event.at),
            event.actor_id,
            event.actor,
            event.role,
            event.action,
            event.target,
            event.reason,
            event.details,
            event.ip,
        ]
    )
    return hashlib.sha256((event.prev_hash + content).encode()).hexdigest()


@dataclass
class Verification:
    """What :func:`verify` found: ``ok``, the entries checked and, if broken, where and why."""

    ok: bool
    checked: int
    broken_at: int | None = None
    problem: str = ""


def verify(session: Session, progress=None, batch: int = 5000) -> Verification:
    """Recompute the chain from the first entry: the first broken link, if any.

    ``progress(done, total)`` is called after each batch (the command line's progress bar).
    """
    total = session.scalar(select(func.count(AuditEvent.id))) or 0
    head = session.execute(_HEAD).first()
    expected_prev, expected_seq, checked = GENESIS, 1, 0
    for event in _in_order(session, batch):
        if event.seq != expected_seq:
            problem = f"entry {expected_seq} is missing (found {event.seq} next)"
            return Verification(False, checked, expected_seq, problem)
        if event.prev_hash != expected_prev:
            problem = f"entry {event.seq} does not follow entry {event.seq - 1} (previous hash)"
            return Verification(False, checked, event.seq, problem)
        if entry_hash(event) != event.hash:
            problem = f"entry {event.seq} was changed after it was written (its hash)"
            return Verification(False, checked, event.seq, problem)
        expected_prev, expected_seq = event.hash, event.seq + 1
        checked += 1
        if progress and checked % batch == 0:
            progress(checked, total)
    if progress:
        progress(checked, total)
    if head is not None and (head.seq != checked or head.last_hash != expected_prev):
        if head.seq > checked:
            problem = f"entries {checked + 1} to {head.seq} were removed from the end"
        else:
            problem = "the chain's head does not match its last entry"
        return Verification(False, checked, checked + 1, problem)
    return Verification(True, checked)


_COLUMNS = (
    AuditEvent.seq,
    AuditEvent.at,
    AuditEvent.actor_id,
    AuditEvent.actor,
    AuditEvent.role,
    AuditEvent.action,
    AuditEvent.target,
    AuditEvent.reason,
    AuditEvent.details,
    AuditEvent.ip,
    AuditEvent.prev_hash,
    AuditEvent.hash,
)


def _in_order(session: Session, batch: int) -> Iterator:
    """Every entry in sequence order, as plain rows read a batch at a time."""
    last = 0
    while True:
        rows = session.execute(
            select(*_COLUMNS).where(AuditEvent.seq > last).order_by(AuditEvent.seq).limit(batch)
        ).all()
        if not rows:
            return
        yield from rows
        last = rows[-1].seq


#: the audit log's web pages, newest first: 100 entries below a sequence number (``?before=``)
SEARCH_PAGING = Keyset(per_page=100)


def search(
    session: Session,
    *,
    actor: str | None = None,
    action: str | None = None,
    target: str | None = None,
    since: dt.date | None = None,
    until: dt.date | None = None,
    before_seq: int | None = None,
    limit: int = 100,
) -> list[AuditEvent]:
    """Entries, newest first, matching every filter given: ``actor`` (exact user name),
    ``action`` (exact, or a prefix ending in ``.``, e.g. ``case.``), ``target`` (exact, or a
    prefix ending in ``:``), the days ``since``/``until`` (inclusive, UTC) and, for paging by key
    (:data:`SEARCH_PAGING`), those before sequence number ``before_seq``."""
    query = select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(limit)
    if actor:
        query = query.where(AuditEvent.actor == actor)
    if action:
        if action.endswith("."):
            query = query.where(AuditEvent.action.startswith(action, autoescape=True))
        else:
            query = query.where(AuditEvent.action == action)
    if target:
        if target.endswith(":"):
            query = query.where(AuditEvent.target.startswith(target, autoescape=True))
        else:
            query = query.where(AuditEvent.target == target)
    if since:
        query = query.where(AuditEvent.at >= dt.datetime.combine(since, dt.time(), dt.UTC))
    if until:
        end = dt.datetime.combine(until + dt.timedelta(days=1), dt.time(), dt.UTC)
        query = query.where(AuditEvent.at < end)
    if before_seq:
        query = query.where(AuditEvent.seq < before_seq)
    return list(session.scalars(query))


__all__ = [
    "GENESIS",
    "SEARCH_PAGING",
    "Verification",
    "entry_hash",
    "record",
    "record_read",
    "search",
    "verify",
]
