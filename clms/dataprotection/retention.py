"""Retention (:func:`run_retention`, the ``retention`` job and ``clms retention run``): a child
whose every case was closed (or transferred) more than ``CLMS_RETENTION_YEARS`` years ago
(default 5; 0 turns retention off), with no open case, no active alert and no visit since that
cut, is anonymised (:func:`clms.dataprotection.anonymise.anonymise_children`).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import exists, func, or_, select
from sqlalchemy.orm import Session

from clms.audit import record
from clms.dataprotection.anonymise import anonymise_children
from clms.db import session_scope
from clms.models import (
    ACTIVE_ALERT_STATUSES,
    OPEN_CASE_STATES,
    Alert,
    Case,
    Child,
    ChildVisit,
    Visit,
)

#: the default retention, in years after the last case of a child closed
DEFAULT_RETENTION_YEARS = 5
#: children anonymised per transaction by the retention run
CHUNK = 200


# --- retention ------------------------------------------------------------------------------------


def retention_years(config) -> int:
    """``RETENTION_YEARS`` of the settings, else ``CLMS_RETENTION_YEARS``, else the default (5);
    0 or empty: retention is off."""
    value = config.get("RETENTION_YEARS") if config is not None else None
    if value is None:
        value = os.environ.get("CLMS_RETENTION_YEARS")
        if value is None:
            return DEFAULT_RETENTION_YEARS
    if isinstance(value, str):
        value = value.strip()
        if value == "":
            return 0
    try:
        years = int(value)
    except (TypeError, ValueError) as e:
        raise ValueError(
            f"CLMS_RETENTION_YEARS must be a whole number of years, not {value!r}"
        ) from e
    if years < 0:
        raise ValueError(f"CLMS_RETENTION_YEARS must be 0 (off) or more, not {years}")
    return years


def retention_cut(now: dt.datetime, years: int) -> dt.datetime:
    """``now`` moved back ``years`` calendar years (29 February becomes the 28th)."""
    try:
        return now.replace(year=now.year - years)
    except ValueError:
        return now.replace(year=now.year - years, day=28)


def due_for_retention(session: Session, cut: dt.datetime, among: Sequence[int] | None = None):
    """Ids of the children (kept records) to anonymise at ``cut``: every case closed before
    it, none open, no active alert, no visit since, not yet anonymised."""
    case_done = func.coalesce(Case.closed_at, Case.state_changed_at)
    stmt = select(Child.id).where(
        Child.merged_into_id.is_(None),
        Child.anonymised_at.is_(None),
        exists().where(Case.child_id == Child.id),
        ~exists().where(
            Case.child_id == Child.id,
            or_(Case.state.in_(OPEN_CASE_STATES), case_done >= cut),
        ),
        ~exists().where(Alert.child_id == Child.id, Alert.status.in_(ACTIVE_ALERT_STATUSES)),
        ~exists().where(
            ChildVisit.child_id == Child.id,
            ChildVisit.visit_id == Visit.id,
            Visit.visited_at >= cut,
        ),
        ~exists().where(
            Visit.case_id == Case.id, Case.child_id == Child.id, Visit.visited_at >= cut
        ),
    )
    if among is not None:
        stmt = stmt.where(Child.id.in_(list(among)))
    return list(session.scalars(stmt.order_by(Child.id)))


@dataclass
class RetentionResult:
    """What a retention run did (or, dry, would do)."""

    years: int
    cut: str | None
    children: int = 0
    records: int = 0
    rows: dict[str, int] = field(default_factory=dict)
    dry_run: bool = False
    disabled: bool = False


def run_retention(
    sessions: Callable[[], Session],
    config,
    *,
    now: dt.datetime,
    actor="scheduler",
    dry_run: bool = False,
    progress: Callable[[int, int], None] | None = None,
    chunk: int = CHUNK,
) -> RetentionResult:
    """Anonymise every child due under the retention policy, ``chunk`` children a transaction
    (each checked again inside it, so a case reopened meanwhile keeps its child); records
    ``child.anonymise`` per child and one ``retention.run`` with the counts.

    The transaction boundary of the ``retention`` job and of ``clms retention run``: one
    transaction per chunk (and one for the count before, one for the ``retention.run`` entry
    after), each opened from ``sessions`` with :func:`clms.db.session_scope`.

    ``progress(done, total)`` after each transaction. ``dry_run``: count only (still audited).
    """
    years = retention_years(config)
    if years == 0:
        return RetentionResult(0, None, disabled=True, dry_run=dry_run)
    cut = retention_cut(now, years)
    result = RetentionResult(years, cut.isoformat(), dry_run=dry_run)
    with session_scope(sessions) as session:
        due = due_for_retention(session, cut)
    total = len(due)
    if progress:
        progress(0, total)
    if not dry_run:
        for start in range(0, total, chunk):
            with session_scope(sessions) as session:
                ids = due_for_retention(session, cut, among=due[start : start + chunk])
                if not ids:
                    continue
                records = _with_merged(session, ids)
                rows = anonymise_children(session, records, now=now, why="retention")
                for table, n in rows.items():
                    result.rows[table] = result.rows.get(table, 0) + n
                uids = session.scalars(
                    select(Child.child_uid).where(Child.id.in_(ids)).order_by(Child.id)
                )
                for uid in uids:
                    record(
                        session, actor, "child.anonymise", f"child:{uid}", "retention",
                        years=years, cut=cut.date().isoformat(),
                    )  # fmt: skip
                result.children += len(ids)
                result.records += len(records)
            if progress:
                progress(min(start + chunk, total), total)
    else:
        result.children = total
    with session_scope(sessions) as session:
        record(
            session, actor, "retention.run", None, None, years=years,
            cut=cut.date().isoformat(), dry_run=dry_run, children=result.children,
            records=result.records, rows=result.rows,
        )  # fmt: skip
    return result


def _with_merged(session: Session, ids: list[int]) -> list[int]:
    out, frontier = list(ids), list(ids)
    while frontier:
        frontier = list(
            session.scalars(
                select(Child.id).where(Child.merged_into_id.in_(frontier), Child.id.not_in(out))
            )
        )
        out += frontier
    return out
