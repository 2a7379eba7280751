"""Deciding on a pair of possible duplicate children (:mod:`clms.cases.duplicates`): merging
the two records found to be the same child, or marking them different children.

**Merging** (:func:`merge_children`) moves every visit, classification, alert and case of the
merged record to the kept one, in the caller's transaction: conflicts are settled first (two
active alerts: the graver stays; two open cases: refused; an open case and an active alert: the
alert joins the case), the merged record keeps its row and points to the kept one
(``merged_into_id``), so its pseudonymous id still leads to the child and a later visit that
names it lands on the kept child (:mod:`forms.store`).
"""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from clms.audit import record as audit
from clms.cases.opening import link_alert
from clms.cases.records import record_event
from clms.errors import field_errors, problem
from clms.facts import refresh_children
from clms.i18n import Msg
from clms.models import (
    ACTIVE_ALERT_STATUSES,
    OPEN_CASE_STATES,
    Alert,
    AlertEvent,
    Case,
    Child,
    ChildMerge,
    ChildVisit,
    Classification,
    DuplicateDismissal,
    User,
    utcnow,
)
from clms.scope import SCOPED_ROLES, village_in_scope

log = logging.getLogger(__name__)

MAX_REASON = 2000
# the tables whose rows follow the child, in the order they are moved
MOVED_TABLES = (
    ("child_visits", ChildVisit),
    ("classifications", Classification),
    ("alerts", Alert),
    ("cases", Case),
)


# --- deciding on a pair --------------------------------------------------------------------------


def merge_children(
    session: Session,
    user: User,
    kept_uid: str,
    merged_uid: str,
    reason: str,
    *,
    now: dt.datetime | None = None,
) -> ChildMerge:
    """Merge the record ``merged_uid`` into ``kept_uid``: the two are the same child.

    Both records must be in ``user``'s scope (else ``not_found``) and in the same village, two
    different records, neither merged already; ``reason`` is required. Every visit,
    classification, alert and case of the merged record moves to the kept one; the kept record
    takes the facts it lacks (date of birth, sex, birth year) from the merged one; the merged
    record points to the kept one from now on. Conflicts:

    - two active alerts (a child has at most one): the graver stays (higher severity; the older
      when equal) and the other is dismissed as a duplicate of it;
    - two open cases: refused (``case.transition_refused``, naming both), since one must be
      closed or transferred first;
    - an open case on one record and an active alert on the other: the alert joins the case.

    The ``ChildMerge`` row says how many rows each table moved; the kept child's cases get a
    ``child_merged`` event and every moved alert an alert event. Flushes, never commits.

    >>> merge_children(session, officer, "CH-7QK2M9XW4B", "CH-N3RT8PZK5A",
    ...                "Same child: the monitor swapped the names")  # doctest: +SKIP
    """
    now = now or utcnow()
    kept_uid, merged_uid, reason = _merge_form(kept_uid, merged_uid, reason)

    kept, merged = _pair_in_scope(session, user, kept_uid, merged_uid, lock=True)
    kept_village, merged_village = kept.household.village, merged.household.village
    if kept_village.id != merged_village.id:
        raise _refused(
            Msg("Records {kept} and {merged} are of different villages ({kept_village} and "
                "{merged_village}); only records of the same village can be merged.",
                kept=kept.child_uid, merged=merged.child_uid, kept_village=kept_village.code,
                merged_village=merged_village.code)
        )  # fmt: skip
    cases = {c.child_id: c for c in _open_cases(session, (kept.id, merged.id))}
    if len(cases) == 2:
        raise _refused(
            Msg("Both records have an open case ({kept_case} for {kept}, {merged_case} for "
                "{merged}); close or transfer one of them before merging.",
                kept_case=cases[kept.id].case_number, kept=kept.child_uid,
                merged_case=cases[merged.id].case_number, merged=merged.child_uid)
        )  # fmt: skip

    # one active alert a child (uq_alerts_active_child): settle two before any row moves
    alerts = {a.child_id: a for a in _active_alerts(session, (kept.id, merged.id))}
    if len(alerts) == 2:
        stays, goes = sorted(alerts.values(), key=lambda a: (-a.severity_rank, a.created_at, a.id))
        _dismiss_as_duplicate(session, user, goes, stays, now)
        alerts = {stays.child_id: stays}

    # whose each was before the rows move (the objects go stale with the bulk updates below)
    case = cases.get(kept.id) or cases.get(merged.id)
    alert = next(iter(alerts.values()), None)
    link = case is not None and alert is not None and case.child_id != alert.child_id
    for stale in (*cases.values(), *alerts.values()):
        session.expire(stale)
    moved_alert_ids = list(session.scalars(select(Alert.id).where(Alert.child_id == merged.id)))
    moved_case_ids = set(session.scalars(select(Case.id).where(Case.child_id == merged.id)))
    moved = _move_rows(session, kept, merged, now)

    facts = _facts_taken(kept, merged)
    _point_to_kept(session, kept, merged, facts)
    refresh_children(session, [kept.id, merged.id])  # the kept facts follow the child visits
    moved["duplicate_dismissals"] = _carry_dismissals(session, user, kept, merged, now)

    record = ChildMerge(kept_child_id=kept.id, merged_child_id=merged.id,
                        merged_uid=merged.child_uid, reason=reason, moved=moved, merged_at=now,
                        merged_by_id=user.id)  # fmt: skip
    session.add(record)
    session.flush()
    session.refresh(kept)
    session.refresh(merged)

    detail = {"merged_record": merged.child_uid, "kept_record": kept.child_uid, "reason": reason}
    for alert_id in moved_alert_ids:
        session.add(AlertEvent(alert_id=alert_id, at=now, user_id=user.id, action="child_merged",
                               detail=dict(detail)))  # fmt: skip
    kept_cases = session.scalars(
        select(Case).where(Case.child_id == kept.id).order_by(Case.opened_at, Case.id)
    ).all()
    for each in kept_cases:  # not ``case``: that is the open case the alert may join below
        record_event(session, each, user, "child_merged",
                     {**detail, "case_moved": each.id in moved_case_ids, "facts_taken":
                      sorted(facts)}, now=now)  # fmt: skip

    if link:  # an open case on one record and an active alert on the other
        link_alert(session, alert, case, user, now, by_merge=True)

    session.flush()
    log.info("children merged: %s into %s by %s", merged.child_uid, kept.child_uid, user.username)
    audit(session, user, "child.merge", f"child:{kept.child_uid}", reason=reason,
           merged=merged.child_uid, village=kept_village.code, moved=moved,
           facts=sorted(facts))  # fmt: skip
    return record


def mark_different(
    session: Session, user: User, uid_a: str, uid_b: str, *, now: dt.datetime | None = None
) -> DuplicateDismissal:
    """Record that two similar records are different children: the pair is not shown again.

    Both must be in ``user``'s scope (else ``not_found``), two different records not merged.
    Marking a pair twice changes nothing (the first decision stays).
    """
    now = now or utcnow()
    uid_a, uid_b = (uid_a or "").strip(), (uid_b or "").strip()
    if not uid_a or not uid_b:
        raise field_errors({"pair": Msg("is required: name both records")})
    if uid_a == uid_b:
        raise field_errors({"pair": Msg("must name two different records")})
    a, b = _pair_in_scope(session, user, uid_a, uid_b)
    low, high = sorted((a.id, b.id))
    existing = session.get(DuplicateDismissal, (low, high))
    if existing is not None:
        return existing
    decision = DuplicateDismissal(child_a_id=low, child_b_id=high, decided_at=now,
                                  decided_by_id=user.id)  # fmt: skip
    try:
        with session.begin_nested():
            session.add(decision)
            session.flush()
    except IntegrityError:
        # another officer decided the same a moment ago: that decision stands
        return session.get(DuplicateDismissal, (low, high))
    log.info("different children: %s and %s, by %s", a.child_uid, b.child_uid, user.username)
    return decision


# --- helpers -------------------------------------------------------------------------------------


def _merge_form(kept_uid: str, merged_uid: str, reason: str) -> tuple[str, str, str]:
    """The merge form's answers, stripped; every wrong answer at once (``field_errors``)."""
    kept_uid, merged_uid = (kept_uid or "").strip(), (merged_uid or "").strip()
    reason = (reason or "").strip()
    errors: dict[str, Msg] = {}
    if not kept_uid or not merged_uid:
        errors["keep"] = Msg("is required: choose the record to keep")
    elif kept_uid == merged_uid:
        errors["keep"] = Msg("must name two different records")
    if not reason:
        errors["reason"] = Msg("is required")
    elif len(reason) > MAX_REASON:
        errors["reason"] = Msg("must be at most {n} characters", n=MAX_REASON)
    if errors:
        raise field_errors(errors)
    return kept_uid, merged_uid, reason


def _move_rows(session: Session, kept: Child, merged: Child, now: dt.datetime) -> dict[str, int]:
    """Move the rows of :data:`MOVED_TABLES` from the merged record to the kept one; returns how
    many rows each table moved."""
    moved: dict[str, int] = {}
    for table, model in MOVED_TABLES:
        values = {"child_id": kept.id}
        if model is Case:  # a page of a moved case is stale: its child changed
            values.update(version=Case.version + 1, updated_at=now)
        moved[table] = session.execute(
            update(model)
            .where(model.child_id == merged.id)
            .values(**values)
            .execution_options(synchronize_session=False)
        ).rowcount
    return moved


def _point_to_kept(session: Session, kept: Child, merged: Child, facts: dict) -> None:
    """The merged record, and the records merged into it earlier, now point to the kept one,
    which takes ``facts``; refused when either record was merged meanwhile."""
    done = session.execute(
        update(Child)
        .where(Child.id == merged.id, Child.merged_into_id.is_(None))
        .values(merged_into_id=kept.id)
        .execution_options(synchronize_session=False)
    ).rowcount
    kept_done = session.execute(
        update(Child)
        .where(Child.id == kept.id, Child.merged_into_id.is_(None))
        .values(merged_into_id=None, **facts)  # never empty: the guard is the point
        .execution_options(synchronize_session=False)
    ).rowcount
    if done != 1 or kept_done != 1:
        raise _refused(Msg("One of these records was merged a moment ago; reload the list."))
    # records merged earlier into the merged one now lead to the kept child as well
    session.execute(
        update(Child)
        .where(Child.merged_into_id == merged.id)
        .values(merged_into_id=kept.id)
        .execution_options(synchronize_session=False)
    )


def _refused(msg: Msg):
    return problem("case.transition_refused", detail=msg)


def _pair_in_scope(
    session: Session, user: User, uid_a: str, uid_b: str, *, lock: bool = False
) -> tuple[Child, Child]:
    """The two records, in the order asked; ``not_found`` unless both are in ``user``'s scope,
    refused when one was merged already. ``lock``: hold both rows (in id order, so two merges
    of the same records never wait on each other in a circle) until the transaction ends."""
    if user.role not in SCOPED_ROLES:
        raise problem("not_found")
    statement = (
        select(Child)
        .where(Child.child_uid.in_([uid_a, uid_b]))
        .order_by(Child.id)
        .execution_options(populate_existing=True)
    )
    if lock:
        statement = statement.with_for_update(of=Child)
    children = {c.child_uid: c for c in session.scalars(statement)}
    for uid in (uid_a, uid_b):
        child = children.get(uid)
        village = child.household.village if child is not None else None
        if village is None or not village_in_scope(session, user, village.id, village.area_id):
            raise problem("not_found")
    for uid in (uid_a, uid_b):
        if children[uid].merged_into_id is not None:
            into = session.get(Child, children[uid].merged_into_id)
            raise _refused(
                Msg("Record {uid} was already merged into {into}; reload the list.", uid=uid,
                    into=into.child_uid if into else "?")
            )  # fmt: skip
    return children[uid_a], children[uid_b]


def _open_cases(session: Session, child_ids) -> list[Case]:
    return list(
        session.scalars(
            select(Case).where(Case.child_id.in_(child_ids), Case.state.in_(OPEN_CASE_STATES))
        )
    )


def _active_alerts(session: Session, child_ids) -> list[Alert]:
    return list(
        session.scalars(
            select(Alert).where(
                Alert.child_id.in_(child_ids), Alert.status.in_(ACTIVE_ALERT_STATUSES)
            )
        )
    )


def _dismiss_as_duplicate(
    session: Session, user: User, alert: Alert, stays: Alert, now: dt.datetime
) -> None:
    reason = f"merged duplicate of alert {stays.id}"
    done = session.execute(
        update(Alert)
        .where(Alert.id == alert.id, Alert.status.in_(ACTIVE_ALERT_STATUSES))
        .values(status="dismissed", dismissed_at=now, dismissed_reason=reason, closed_at=now,
                updated_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount  # fmt: skip
    if done != 1:
        raise problem("alert.transition_refused",
                      detail=Msg("Alert {id} changed meanwhile; reload the list and try again.",
                                 id=alert.id))  # fmt: skip
    session.add(AlertEvent(alert_id=alert.id, at=now, user_id=user.id, action="dismissed",
                           detail={"reason": reason, "kept_alert": stays.id}))  # fmt: skip
    session.flush()
    session.refresh(alert)


def _facts_taken(kept: Child, merged: Child) -> dict:
    """What the kept record lacks and the merged one knows: its date of birth (which also fixes
    the birth year, as a date beats an age), sex and birth year."""
    facts: dict = {}
    if kept.dob is None and merged.dob is not None:
        facts["dob"] = merged.dob
        if not kept.birth_year_exact:
            facts.update(birth_year=merged.dob.year, birth_year_exact=True)
    elif kept.birth_year is None and merged.birth_year is not None:
        facts.update(birth_year=merged.birth_year, birth_year_exact=merged.birth_year_exact)
    if kept.sex is None and merged.sex is not None:
        facts["sex"] = merged.sex
    return facts


def _carry_dismissals(
    session: Session, user: User, kept: Child, merged: Child, now: dt.datetime
) -> int:
    """A record found different from the merged one is different from the kept one too: copy
    those decisions to the kept record; returns how many were copied."""
    others = {
        a if b == merged.id else b
        for a, b in session.execute(
            select(DuplicateDismissal.child_a_id, DuplicateDismissal.child_b_id).where(
                or_(
                    DuplicateDismissal.child_a_id == merged.id,
                    DuplicateDismissal.child_b_id == merged.id,
                )
            )
        )
    } - {kept.id}
    copied = 0
    for other in sorted(others):
        low, high = sorted((kept.id, other))
        if session.get(DuplicateDismissal, (low, high)) is None:
            session.add(DuplicateDismissal(child_a_id=low, child_b_id=high, decided_at=now,
                                           decided_by_id=user.id))  # fmt: skip
            copied += 1
    return copied
