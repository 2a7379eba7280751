"""The transactions that keep a KoboToolbox source in step after each pull (the logic is
:mod:`forms.pull.kobo_changes`): edits and late arrivals fetched and stored, submissions pushed by
phones linked to their ``_id``, validation statuses followed (``not approved`` withdraws the
submission, any other status after it restores it), and deletions there withdrawn here (restored
should the row come back). Nothing is erased: :mod:`clms.intake.withdraw` marks and audits.

Each change is a transaction of its own, so a pull stopped midway keeps what it did; the same
state seen again changes nothing.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping

from sqlalchemy.orm import Session

from clms.db import commit_retrying, read_only
from clms.errors import Problem
from clms.intake.withdraw import apply_remote_state
from clms.models import utcnow
from forms.pull import kobo_changes as kc
from forms.pull.clients import KoboClient, RemoteNotFound, Target
from forms.pull.run import PullResult, record_problem, remember_retry

log = logging.getLogger(__name__)

RECHECK_PAGE_SIZE = 1000  # kpi's largest page; the rows carry a few fields only
ACTOR = "pull"  # who the audit says withdrew or restored


def recheck_kobo(
    sessions: Callable[[], Session],
    target: Target,
    client: KoboClient,
    config: Mapping,
    result: PullResult,
    *,
    page_size: int | None = None,
) -> None:
    """Re-list the source's window (``PULL_KOBO_RECHECK_DAYS``, 0: never) and apply what changed
    there; counts go to ``result.changes`` (``edited``, ``late``, ``withdrawn``, ``restored``).
    A remote failure raises :class:`forms.pull.clients.PullError` (the pull reports it); a
    submission the ingest refuses is reported and the others go on."""
    days = int(config.get("PULL_KOBO_RECHECK_DAYS", kc.RECHECK_DAYS))
    if days <= 0:
        return
    now = utcnow()
    since = now - dt.timedelta(days=days)
    size = page_size or RECHECK_PAGE_SIZE
    query = {"_submission_time": {"$gte": kc.window_start(now, days)}}
    listed = [kc.listed_row(r) for r in client.rows(query, size)]
    with sessions() as session:
        read_only(session)
        held, recent = kc.held_rows(session, target.id, [r.remote_id for r in listed], since)
    # what CLMS received in the window and the window does not list may be older there
    # (back-dated) rather than deleted: ask for it by _id (no transaction open meanwhile)
    listed_ids = {r.remote_id for r in listed}
    recent = kc.in_reach(recent, listed_ids)
    absent = sorted(recent - listed_ids, key=kc.as_number)
    for start in range(0, len(absent), kc.CHUNK):
        ids = [int(x) if x.isdigit() else x for x in absent[start : start + kc.CHUNK]]
        listed.extend(kc.listed_row(r) for r in client.rows({"_id": {"$in": ids}}, size))
    with sessions() as session:
        read_only(session)
        if len(listed) > len(listed_ids):  # the rows asked for again may be held too
            held, _all = kc.held_rows(session, target.id, [r.remote_id for r in listed], since)
        have = {v.instance_id for versions in held.values() for v in versions}
        known = kc.known_instances(
            session, [r.instance_id for r in listed if r.instance_id not in have]
        )
    plan = kc.compare(listed, held, known, recent)
    if not plan:
        return
    for submission_id, remote_id in plan.link:
        with sessions() as session:
            kc.link_remote(session, submission_id, target.id, remote_id)
            session.commit()
    for row, why in plan.fetch:
        _refetch(sessions, target, client, row, why, result)
    for remote_id, uid in plan.states:
        with sessions() as session:
            done = follow_validation(session, target.id, remote_id, uid)
            session.commit()
        if done:
            _count(result, done)
    stop = kc.brake(plan, recent)
    if stop:
        record_problem(result, f"{len(plan.deleted)} submissions", "deleted_held", stop)
        return
    for remote_id in plan.deleted:
        with sessions() as session:
            done = withdraw_deleted(session, target.id, remote_id)
            session.commit()
        if done:
            _count(result, "withdrawn")


def follow_validation(session: Session, source_id: int, remote_id: str, uid: str | None):
    """Make the source's ``remote_id`` follow its validation status ``uid`` there: keep it as the
    remote review state, withdraw it when not approved, restore it when it was withdrawn and is
    listed with any other status (:func:`clms.intake.withdraw.apply_remote_state`). Returns
    ``"withdrawn"``, ``"restored"`` or None (nothing to do, or not held). Flushes, never
    commits."""
    if uid == kc.NOT_APPROVED:
        done = apply_remote_state(
            session, source_id, remote_id, "not_approved", review_state=uid, actor=ACTOR,
            detail=f"KoboToolbox: validation status not approved (_id {remote_id})",
        )  # fmt: skip
        return "withdrawn" if done else None
    said = f"validation status {uid}" if uid else "no validation status"
    done = apply_remote_state(
        session, source_id, remote_id, "approved", review_state=uid, actor=ACTOR,
        detail=f"KoboToolbox lists it again, {said} (_id {remote_id})",
    )  # fmt: skip
    return "restored" if done else None


def withdraw_deleted(session: Session, source_id: int, remote_id: str) -> bool:
    """Withdraw the source's ``remote_id``: KoboToolbox no longer has it. Flushes."""
    return bool(
        apply_remote_state(
            session,
            source_id,
            remote_id,
            "deleted",
            actor=ACTOR,
            detail=f"KoboToolbox no longer has it (_id {remote_id})",
        )  # fmt: skip
    )


def _refetch(sessions, target: Target, client: KoboClient, row, why: str, result) -> None:
    result.fetched += 1
    try:
        incoming = client.fetch(row.entry)
    except RemoteNotFound:
        return  # deleted since it was listed: the next pull sees it gone
    try:
        with sessions() as session:
            _id, created = commit_retrying(
                session, lambda: kc.store_refetched(session, target.id, row, incoming)
            )
    except Problem as p:
        # it waits on the retry list, tried again at every pull, even once out of the window
        code, message = str(p.code), p.message
        record_problem(result, row.instance_id, code, message)
        with sessions() as session:
            commit_retrying(
                session, lambda: remember_retry(session, target.id, row.entry, code, message)
            )
        return
    if created:
        result.stored += 1
        _count(result, why)
    else:
        result.duplicates += 1


def _count(result: PullResult, what: str) -> None:
    result.changes[what] = result.changes.get(what, 0) + 1
