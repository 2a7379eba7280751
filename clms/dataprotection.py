"""Data protection: retention, the subject access export and erasure of one child's data.

Children's data can harm them (domain.md section 8), so it is kept no longer than it serves them:

Retention (:func:`run_retention`, the ``retention`` job and ``clms retention run``)
    A child whose every case was closed (or transferred) more than ``CLMS_RETENTION_YEARS``
    years ago (default 5; 0 turns retention off), with no open case, no active alert and no
    visit since that cut, is anonymised (:func:`anonymise_children`).
Subject access (:func:`export_child`, ``clms child export``)
    Everything held about one child, from every table, as one JSON document whose ``about``
    part says what each part is.
Erasure (:func:`erase_child`, ``clms child erase``)
    On a lawful request: the same anonymisation, now, whatever the retention cut, and also the
    child's name wherever else it was written. A child with an open case is refused unless
    forced with a reason: erasing the record of a child in danger may harm the child.

What anonymising removes and what it keeps
    Removed: the name (and its matching key), the exact date of birth (the birth year stays),
    the household head's name (on retention once no child of the household keeps personal
    data; on erasure at once), free-text notes of visits, reports, alerts, cases, assessments,
    plans, consents, referrals, transfers and merges, the text of case and alert events,
    the notification texts about the child's alerts, the raw XML of every submission about the
    child (replaced by a redacted skeleton holding only its instance ids, so that a phone's
    retried upload is still recognised as a duplicate: the stored SHA-256 stays) and the
    content of its attachments (names, types and hashes stay). GPS points are rounded to two
    decimals (about 1 km) and altitudes dropped.
    Kept: the pseudonymous ``child_uid``, sex, birth year, ages and answers of each visit,
    classifications, alert and case categories, states, dates, services and outcomes, village
    and supplier: every figure of the indicators and the hotspot maps stays the same.

Everything is recorded in the audit log (:mod:`clms.audit`), which names children only by their
pseudonymous ids: ``child.anonymise`` per child, ``retention.run`` per run, ``child.export`` and
``child.erase``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from lxml import etree
from sqlalchemy import (
    Float,
    LargeBinary,
    Numeric,
    String,
    Text,
    bindparam,
    case,
    cast,
    exists,
    func,
    literal,
    null,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.orm import Session

from clms.audit import record
from clms.i18n import Msg
from clms.models import (
    ACTIVE_ALERT_STATUSES,
    OPEN_CASE_STATES,
    ActionPlan,
    Alert,
    AlertEvent,
    Assessment,
    AuditEvent,
    Case,
    CaseEvent,
    CaseTransfer,
    Child,
    ChildMerge,
    ChildVisit,
    Classification,
    Consent,
    DuplicateDismissal,
    Household,
    Notification,
    PlannedService,
    Referral,
    Report,
    Submission,
    SubmissionAttachment,
    Supplier,
    Village,
    Visit,
)

#: what replaces a removed free text (NOT NULL columns) and a removed name
REMOVED = "[removed]"
#: the default retention, in years after the last case of a child closed
DEFAULT_RETENTION_YEARS = 5
#: children anonymised per transaction by the retention run
CHUNK = 200
#: keys of case and alert event details that hold free text (removed whatever their value)
FREE_TEXT_KEYS = frozenset(
    {
        "findings", "reason", "note", "notes", "lessons_learned", "consent_override", "message",
        "outcome_note", "child_views", "family_situation", "to_contact", "closure_reason",
        "description", "contact", "name", "child_name", "head_name", "comment", "text",
    }
)  # fmt: skip
#: tables whose text columns an erasure searches for the child's name (child-level data only:
#: configuration, users and the audit log are not about children)
CHILD_LEVEL_TABLES = (
    Household, Visit, ChildVisit, Report, Alert, Case, Assessment, ActionPlan, PlannedService,
    Consent, Referral, CaseTransfer, ChildMerge, Notification,
)  # fmt: skip


class DataProtectionError(Exception):
    """A request this module refuses, with a message a person understands (a :class:`Msg`)."""

    def __init__(self, msg: Msg, status: int = 400):
        super().__init__(str(msg))
        self.msg = msg
        self.status = status


# --- finding a child and everything about it ------------------------------------------------------


@dataclass
class Subject:
    """A child as the data-protection operations see it: the record asked for (``child``, the
    kept one when the asked id was merged into another) and ``ids``, every record that is this
    child (the kept one and those merged into it)."""

    child: Child
    ids: list[int]
    uids: list[str]


def find_subject(session: Session, child_uid: str) -> Subject:
    """The child with pseudonymous id ``child_uid`` (following merges to the record kept)."""
    uid = (child_uid or "").strip().upper()
    child = session.scalar(select(Child).where(Child.child_uid == uid)) if uid else None
    if child is None:
        raise DataProtectionError(Msg("No child has the id {uid}.", uid=child_uid or "''"), 404)
    seen = {child.id}
    while child.merged_into_id is not None and child.merged_into_id not in seen:
        child = session.get(Child, child.merged_into_id)
        seen.add(child.id)
    ids, frontier = [child.id], [child.id]
    while frontier:  # records merged into this one, and into those, ...
        frontier = list(
            session.scalars(
                select(Child.id).where(Child.merged_into_id.in_(frontier), Child.id.not_in(ids))
            )
        )
        ids += frontier
    uids = list(session.scalars(select(Child.child_uid).where(Child.id.in_(ids))))
    return Subject(child, ids, sorted(uids, key=lambda u: u != child.child_uid))


@dataclass
class Related:
    """The ids of every row about a set of children, table by table."""

    children: list[int]
    households: list[int] = field(default_factory=list)
    child_visits: list[int] = field(default_factory=list)
    visits: list[int] = field(default_factory=list)
    cases: list[int] = field(default_factory=list)
    alerts: list[int] = field(default_factory=list)
    reports: list[int] = field(default_factory=list)
    submissions: list[int] = field(default_factory=list)


def related(session: Session, child_ids: Sequence[int]) -> Related:
    """Every row about the children ``child_ids``: their households, visits (household visits
    naming them and follow-ups of their cases), cases, alerts, reports and submissions (every
    version of each)."""
    out = Related(list(child_ids))
    if not child_ids:
        return out
    ids = list(child_ids)
    out.households = _ids(session, select(Child.household_id).where(Child.id.in_(ids)))
    out.child_visits = _ids(session, select(ChildVisit.id).where(ChildVisit.child_id.in_(ids)))
    out.cases = _ids(session, select(Case.id).where(Case.child_id.in_(ids)))
    visits = select(ChildVisit.visit_id).where(ChildVisit.child_id.in_(ids))
    followups = select(Visit.id).where(Visit.case_id.in_(out.cases)) if out.cases else None
    out.visits = _ids(session, visits if followups is None else visits.union(followups))
    out.alerts = _ids(session, select(Alert.id).where(Alert.child_id.in_(ids)))
    out.reports = _ids(
        session,
        select(Alert.report_id).where(Alert.child_id.in_(ids), Alert.report_id.is_not(None)),
    )
    direct = (
        select(Visit.submission_id)
        .where(Visit.id.in_(out.visits))
        .union(select(Report.submission_id).where(Report.id.in_(out.reports)))
    )
    first = _ids(session, direct)
    if first:
        # every version of each: an edit keeps its first instance's logical id
        logical = select(Submission.form_id, Submission.logical_id).where(Submission.id.in_(first))
        pairs = session.execute(logical).all()
        out.submissions = sorted(
            set(first)
            | set(
                _ids(
                    session,
                    select(Submission.id).where(
                        or_(
                            *[
                                (Submission.form_id == f) & (Submission.logical_id == lid)
                                for f, lid in pairs
                            ]
                        )
                    ),
                )
            )
        )
    return out


def _ids(session: Session, stmt) -> list[int]:
    return sorted({i for i in session.scalars(stmt) if i is not None})


# --- anonymising ----------------------------------------------------------------------------------


def anonymise_children(
    session: Session,
    child_ids: Sequence[int],
    *,
    now: dt.datetime,
    why: str = "retention",
    names: Iterable[str] = (),
) -> dict[str, int]:
    """Remove the personal data of the children ``child_ids`` (every record that is each child,
    merged ones included) in ``session``'s transaction; returns rows changed per table.

    ``why``: ``retention`` or ``erasure``. On erasure the household head's name goes at once and
    ``names`` (the child's names as they were) are also searched for in every text of the
    child-level tables and replaced. Idempotent: anonymising again changes nothing more.
    """
    rel = related(session, child_ids)
    counts: dict[str, int] = {}

    def run(name: str, stmt) -> None:
        n = session.execute(stmt).rowcount or 0
        counts[name] = counts.get(name, 0) + max(n, 0)

    def removed(column):
        """The column's value replaced by REMOVED where it had one (NOT NULL stays satisfied)."""
        return case((column.is_(None), null()), else_=literal(REMOVED))

    for chunk in _chunks(rel.children):
        run(
            "children",
            update(Child)
            .where(Child.id.in_(chunk))
            .values(
                name=REMOVED,
                name_key="",
                dob=None,
                anonymised_at=func.coalesce(
                    Child.anonymised_at, bindparam("now", now, type_=Child.anonymised_at.type)
                ),
                anonymised_why=func.coalesce(Child.anonymised_why, why),
            ),
        )
    for chunk in _chunks(rel.households):
        stmt = update(Household).where(Household.id.in_(chunk), Household.head_name.is_not(None))
        if why != "erasure":
            # a sibling still followed keeps the household's head name
            stmt = stmt.where(
                ~exists().where(
                    Child.household_id == Household.id,
                    Child.anonymised_at.is_(None),
                    Child.id.not_in(rel.children),
                )
            )
        run("households", stmt.values(head_name=None))
    for chunk in _chunks(rel.visits):
        run(
            "visits",
            update(Visit)
            .where(Visit.id.in_(chunk))
            .values(
                notes=None,
                altitude=None,
                lat=cast(func.round(cast(Visit.lat, Numeric), 2), Float),
                lon=cast(func.round(cast(Visit.lon, Numeric), 2), Float),
            ),
        )
    for chunk in _chunks(rel.reports):
        run(
            "reports",
            update(Report).where(Report.id.in_(chunk)).values(description=None, contact=None),
        )
    for chunk in _chunks(rel.alerts):
        run(
            "alerts",
            update(Alert)
            .where(Alert.id.in_(chunk))
            .values(dismissed_reason=removed(Alert.dismissed_reason)),
        )
        run(
            "notifications",
            update(Notification)
            .where(Notification.alert_id.in_(chunk))
            .values(subject=REMOVED, body=REMOVED),
        )
        counts["alert_events"] = counts.get("alert_events", 0) + _scrub_details(
            session, AlertEvent, AlertEvent.alert_id.in_(chunk), names
        )
    for chunk in _chunks(rel.cases):
        run(
            "cases",
            update(Case)
            .where(Case.id.in_(chunk))
            .values(
                closure_reason=removed(Case.closure_reason),
                lessons_learned=removed(Case.lessons_learned),
            ),
        )
        run(
            "assessments",
            update(Assessment)
            .where(Assessment.case_id.in_(chunk))
            .values(
                child_views=REMOVED,
                family_situation=REMOVED,
                schooling_notes=None,
                safety_notes=None,
            ),
        )
        run(
            "action_plans",
            update(ActionPlan)
            .where(ActionPlan.case_id.in_(chunk))
            .values(decision_note=removed(ActionPlan.decision_note)),
        )
        run(
            "planned_services",
            update(PlannedService)
            .where(PlannedService.case_id.in_(chunk))
            .values(notes=None, closed_reason=removed(PlannedService.closed_reason)),
        )
        run("consents", update(Consent).where(Consent.case_id.in_(chunk)).values(notes=None))
        run(
            "referrals",
            update(Referral)
            .where(Referral.case_id.in_(chunk))
            .values(
                message=None,
                override_reason=removed(Referral.override_reason),
                rejection_reason=removed(Referral.rejection_reason),
                outcome_note=removed(Referral.outcome_note),
                revoked_reason=removed(Referral.revoked_reason),
            ),
        )
        run(
            "case_transfers",
            update(CaseTransfer)
            .where(CaseTransfer.case_id.in_(chunk))
            .values(to_contact=None, reason=REMOVED),
        )
        counts["case_events"] = counts.get("case_events", 0) + _scrub_details(
            session, CaseEvent, CaseEvent.case_id.in_(chunk), names
        )
    for chunk in _chunks(rel.children):
        run(
            "child_merges",
            update(ChildMerge)
            .where(or_(ChildMerge.kept_child_id.in_(chunk), ChildMerge.merged_child_id.in_(chunk)))
            .values(reason=REMOVED),
        )
    subs = set(rel.submissions)
    names = [n for n in dict.fromkeys(n.strip() for n in names) if len(n) >= 2]
    if why == "erasure" and names:
        subs |= set(_submissions_naming(session, names))
        for model in CHILD_LEVEL_TABLES:
            counts[model.__tablename__] = counts.get(model.__tablename__, 0) + _replace_names(
                session, model, names
            )
    counts["submissions"] = _redact_submissions(session, sorted(subs))
    return {k: v for k, v in counts.items() if v}


def _chunks(ids: Sequence[int], size: int = 500) -> Iterable[list[int]]:
    for i in range(0, len(ids), size):
        yield list(ids[i : i + size])


def _scrub_value(value: Any, names: Sequence[str], key: str | None = None) -> Any:
    """A detail value without free text: known free-text keys and any text with a space (codes
    and dates have none) become REMOVED; a name is removed wherever it is."""
    if isinstance(value, dict):
        return {k: _scrub_value(v, names, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub_value(v, names, key) for v in value]
    if isinstance(value, str):
        if value and (key in FREE_TEXT_KEYS or any(c.isspace() for c in value.strip())):
            return REMOVED
        return _without_names(value, names)
    return value


def _scrub_details(session: Session, model, where, names: Sequence[str]) -> int:
    changed = 0
    for row_id, detail in session.execute(select(model.id, model.detail).where(where)).all():
        clean = _scrub_value(detail or {}, names)
        if clean != (detail or {}):
            session.execute(update(model).where(model.id == row_id).values(detail=clean))
            changed += 1
    return changed


def _without_names(value: str, names: Sequence[str]) -> str:
    for name in names:
        value = re.sub(re.escape(name), REMOVED, value, flags=re.IGNORECASE)
    return value


def _replace_names(session: Session, model, names: Sequence[str]) -> int:
    """Replace ``names`` in every text column of ``model``'s table (set-based search, a change
    per row found)."""
    table = model.__table__
    columns = [c for c in table.columns if isinstance(c.type, String | Text)]
    if not columns:
        return 0
    pk = table.primary_key.columns.values()[0]
    found = or_(
        *[func.lower(c).contains(name.lower(), autoescape=True) for c in columns for name in names]
    )
    changed = 0
    for row in session.execute(select(pk, *columns).where(found)).all():
        values = {}
        for c, v in zip(columns, row[1:], strict=True):
            if isinstance(v, str):
                new = _without_names(v, names)
                if new != v:
                    values[c.name] = new
        if values:
            session.execute(table.update().where(pk == row[0]).values(**values))
            changed += 1
    return changed


def _submissions_naming(session: Session, names: Sequence[str]) -> list[int]:
    """Submissions whose raw XML holds one of ``names`` (a neighbour's report naming the child,
    a sibling's visit): the bytes are searched in the database, not read out."""
    found: set[int] = set()
    dialect = session.get_bind().dialect.name
    for name in names:
        for variant in {name, name.upper(), name.lower(), name.title()}:
            needle = variant.encode("utf-8")
            if dialect == "postgresql":
                cond = text("position(:needle in submissions.xml) > 0")
            else:
                cond = text("instr(submissions.xml, :needle) > 0")
            stmt = select(Submission.id).where(
                cond.bindparams(bindparam("needle", needle, type_=LargeBinary))
            )
            found.update(session.scalars(stmt))
    return sorted(found)


def redacted_xml(xml: bytes) -> bytes:
    """The skeleton kept of a submission's XML: its root (form id and version) and its instance
    ids, nothing a person answered.

    >>> kept = redacted_xml(b'<data id="f" version="1"><name>Aya</name>'
    ...                     b'<meta><instanceID>uuid:1</instanceID></meta></data>')
    >>> b"Aya" in kept, b"<instanceID>uuid:1</instanceID>" in kept, kept.startswith(b'<data id="f"')
    (False, True, True)
    """
    try:
        parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
        root = etree.fromstring(xml, parser)
    except etree.XMLSyntaxError:
        root = None
    if root is None:
        return b"<data><!--personal data removed (clms.dataprotection)--></data>"
    skeleton = etree.Element(root.tag, {k: v for k, v in root.attrib.items()}, nsmap=root.nsmap)
    skeleton.append(etree.Comment("personal data removed (clms.dataprotection)"))
    meta_ids = ("instanceID", "deprecatedID")
    kept = [
        e for e in root.iter() if isinstance(e.tag, str) and etree.QName(e).localname in meta_ids
    ]
    if kept:
        meta = etree.SubElement(skeleton, etree.QName(kept[0].getparent()).text)
        for e in kept:
            etree.SubElement(meta, e.tag).text = (e.text or "").strip()
    return etree.tostring(skeleton, encoding="utf-8")


def _redact_submissions(session: Session, submission_ids: Sequence[int]) -> int:
    """Replace the XML of the submissions by its skeleton and empty their attachments; the
    stored SHA-256 of the XML and of each file stay, so a retried upload is still a duplicate."""
    changed = 0
    for chunk in _chunks(submission_ids, 200):
        for sub_id, xml in session.execute(
            select(Submission.id, Submission.xml).where(Submission.id.in_(chunk))
        ).all():
            skeleton = redacted_xml(bytes(xml))
            if skeleton != bytes(xml):
                session.execute(
                    update(Submission).where(Submission.id == sub_id).values(xml=skeleton)
                )
                changed += 1
        session.execute(
            update(SubmissionAttachment)
            .where(SubmissionAttachment.submission_id.in_(chunk), SubmissionAttachment.size > 0)
            .values(data=b"", size=0)
        )
    return changed


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

    ``progress(done, total)`` after each transaction. ``dry_run``: count only (still audited).
    """
    years = retention_years(config)
    if years == 0:
        return RetentionResult(0, None, disabled=True, dry_run=dry_run)
    cut = retention_cut(now, years)
    result = RetentionResult(years, cut.isoformat(), dry_run=dry_run)
    with _transaction(sessions) as session:
        due = due_for_retention(session, cut)
    total = len(due)
    if progress:
        progress(0, total)
    if not dry_run:
        for start in range(0, total, chunk):
            with _transaction(sessions) as session:
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
    with _transaction(sessions) as session:
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


class _transaction:
    """A new session whose transaction commits when the block ends (rolled back on error)."""

    def __init__(self, sessions: Callable[[], Session]):
        self.session = sessions()

    def __enter__(self) -> Session:
        return self.session

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                self.session.commit()
            else:
                self.session.rollback()
        finally:
            self.session.close()


# --- erasure --------------------------------------------------------------------------------------


@dataclass
class ErasureResult:
    """What an erasure removed: the child's pseudonymous id and rows changed per table."""

    child_uid: str
    records: int
    rows: dict[str, int]
    open_cases: list[str]


def erase_child(
    session: Session,
    actor,
    child_uid: str,
    *,
    reason: str,
    request_ref: str | None = None,
    force: bool = False,
    force_reason: str | None = None,
    now: dt.datetime,
) -> ErasureResult:
    """Erase the personal data of the child ``child_uid`` on a lawful request, in ``session``'s
    transaction (the caller commits), and record ``child.erase`` (who, why, the request's
    reference; the log keeps only the pseudonymous id).

    Refused while the child has an open case unless ``force`` with ``force_reason``: the case
    is how the child is being protected, and its record may be what keeps the child safe.
    """
    reason = (reason or "").strip()
    if not reason:
        raise DataProtectionError(
            Msg("Give the reason for the erasure (the lawful request it answers).")
        )
    subject = find_subject(session, child_uid)
    open_cases = list(
        session.scalars(
            select(Case.case_number)
            .where(Case.child_id.in_(subject.ids), Case.state.in_(OPEN_CASE_STATES))
            .order_by(Case.case_number)
        )
    )
    force_reason = (force_reason or "").strip()
    if open_cases and not force:
        raise DataProtectionError(
            Msg(
                "Child {uid} has an open case ({cases}): erasing it now may harm a child who may "
                "still be in danger, since the case record is how the child is protected. Close "
                "the case first, or force the erasure with a reason.",
                uid=subject.child.child_uid,
                cases=", ".join(open_cases),
            ),
            409,
        )
    if open_cases and not force_reason:
        raise DataProtectionError(
            Msg("Forcing the erasure of a child with an open case needs a reason of its own.")
        )
    names = list(session.scalars(select(Child.name).where(Child.id.in_(subject.ids))))
    names = [n for n in names if n and n != REMOVED]
    rows = anonymise_children(session, subject.ids, now=now, why="erasure", names=names)
    session.execute(update(Child).where(Child.id.in_(subject.ids)).values(anonymised_why="erasure"))
    details: dict[str, Any] = {"records": len(subject.ids), "rows": rows}
    if request_ref:
        details["request_ref"] = request_ref.strip()
    if open_cases:
        details.update(forced=True, force_reason=force_reason, open_cases=open_cases)
    record(session, actor, "child.erase", f"child:{subject.child.child_uid}", reason, **details)
    return ErasureResult(subject.child.child_uid, len(subject.ids), rows, open_cases)


# --- subject access export ------------------------------------------------------------------------

ABOUT = {
    "what": "Everything this child-labour monitoring system (CLMS) holds about one child, "
    "exported on a subject access request.",
    "identity": "Children are known across the system by a pseudonymous id (child_uid); the "
    "name, date of birth, household and GPS points are personal data.",
    "parts": {
        "child": "The child's record (and merged_records: other records found to be the same "
        "child and merged into this one).",
        "household": "The household the child belongs to, as it concerns the child (the "
        "village, the supplier it sells to, the head's name); other children are left out.",
        "visits": "Each household visit that named the child and each follow-up visit of the "
        "child's cases; answers_about_this_child holds what the monitor recorded about this "
        "child (answers about other children are left out) and its classifications.",
        "alerts": "Alerts raised for the child (found in work or reported), with their events.",
        "reports": "Concerns reported about the child through the grievance channel.",
        "cases": "Remediation cases with their events, best-interest assessments, action "
        "plans, planned services, consents, referrals and transfers.",
        "merges": "Records merged because they were the same child.",
        "duplicate_decisions": "Decisions that another record is a different child.",
        "submissions": "The raw submissions (form XML as received) that mention the child; a "
        "household visit's XML also holds what was said about the rest of the household. "
        "Attachments are listed (name, type, size, SHA-256), not included.",
        "notifications": "Emails about the child's alerts sent to staff (they carry no names).",
        "access_log": "Entries of the audit log about the child and its cases: who read, "
        "exported or changed them, when and why.",
    },
    "format": "JSON; times are ISO 8601 in UTC; ids are the database's own.",
}


def export_child(
    session: Session, actor, child_uid: str, *, reason: str, now: dt.datetime
) -> dict[str, Any]:
    """Everything held about the child ``child_uid`` (see :data:`ABOUT`), and a ``child.export``
    audit entry with ``reason`` (required) in ``session``'s transaction (the caller commits)."""
    reason = (reason or "").strip()
    if not reason:
        raise DataProtectionError(Msg("Give the reason for the export (the request it answers)."))
    subject = find_subject(session, child_uid)
    ids = subject.ids
    rel = related(session, ids)
    child = subject.child
    household = session.get(Household, child.household_id)
    village = session.get(Village, household.village_id) if household.village_id else None
    supplier = session.get(Supplier, household.supplier_id) if household.supplier_id else None

    visits = []
    for visit in session.scalars(
        select(Visit).where(Visit.id.in_(rel.visits)).order_by(Visit.visited_at, Visit.id)
    ):
        answers = []
        for cv in session.scalars(
            select(ChildVisit)
            .where(ChildVisit.visit_id == visit.id, ChildVisit.child_id.in_(ids))
            .order_by(ChildVisit.position)
        ):
            answers.append(
                _row(cv)
                | {
                    "classifications": [
                        _row(c)
                        for c in session.scalars(
                            select(Classification)
                            .where(Classification.child_visit_id == cv.id)
                            .order_by(Classification.id)
                        )
                    ]
                }
            )
        visits.append(_row(visit) | {"answers_about_this_child": answers})

    alerts = [
        _row(a) | {"events": _rows(session, AlertEvent, AlertEvent.alert_id == a.id)}
        for a in session.scalars(select(Alert).where(Alert.id.in_(rel.alerts)).order_by(Alert.id))
    ]
    cases = []
    for c in session.scalars(select(Case).where(Case.id.in_(rel.cases)).order_by(Case.id)):
        cases.append(
            _row(c)
            | {
                "events": _rows(session, CaseEvent, CaseEvent.case_id == c.id),
                "assessments": _rows(session, Assessment, Assessment.case_id == c.id),
                "action_plans": _rows(session, ActionPlan, ActionPlan.case_id == c.id),
                "planned_services": _rows(session, PlannedService, PlannedService.case_id == c.id),
                "consents": _rows(session, Consent, Consent.case_id == c.id),
                "referrals": _rows(session, Referral, Referral.case_id == c.id),
                "transfers": _rows(session, CaseTransfer, CaseTransfer.case_id == c.id),
            }
        )
    submissions = []
    for sub in session.scalars(
        select(Submission).where(Submission.id.in_(rel.submissions)).order_by(Submission.id)
    ):
        entry = _row(sub, skip={"xml"})
        entry["xml"] = bytes(sub.xml).decode("utf-8", "replace")
        entry["attachments"] = [
            {
                "name": a.name,
                "content_type": a.content_type,
                "size": a.size,
                "sha256": a.sha256,
                "received_at": _plain(a.received_at),
            }
            for a in sub.attachments
        ]
        submissions.append(entry)
    case_numbers = [c["case_number"] for c in cases]
    targets = [f"child:{u}" for u in subject.uids] + [f"case:{n}" for n in case_numbers]
    targets += [f"alert:{a}" for a in rel.alerts]
    access = _rows(session, AuditEvent, AuditEvent.target.in_(targets), order=AuditEvent.seq)
    document = {
        "about": ABOUT
        | {
            "child_uid": child.child_uid,
            "exported_at": _plain(now),
            "reason": reason,
        },
        "child": _row(child)
        | {
            "merged_records": [
                _row(m)
                for m in session.scalars(
                    select(Child).where(Child.id.in_(ids), Child.id != child.id).order_by(Child.id)
                )
            ]
        },
        "household": _row(household)
        | {
            "village": {"code": village.code, "name": village.name} if village else None,
            "supplier": {"code": supplier.code, "name": supplier.name} if supplier else None,
        },
        "visits": visits,
        "alerts": alerts,
        "reports": _rows(session, Report, Report.id.in_(rel.reports)),
        "cases": cases,
        "merges": _rows(
            session,
            ChildMerge,
            or_(ChildMerge.kept_child_id.in_(ids), ChildMerge.merged_child_id.in_(ids)),
        ),
        "duplicate_decisions": [
            _row(d)
            for d in session.scalars(
                select(DuplicateDismissal).where(
                    or_(
                        DuplicateDismissal.child_a_id.in_(ids),
                        DuplicateDismissal.child_b_id.in_(ids),
                    )
                )
            )
        ],
        "submissions": submissions,
        "notifications": _rows(session, Notification, Notification.alert_id.in_(rel.alerts)),
        "access_log": access,
    }
    counts = {
        "visits": len(visits),
        "alerts": len(alerts),
        "cases": len(cases),
        "submissions": len(submissions),
    }
    record(session, actor, "child.export", f"child:{child.child_uid}", reason, **counts)
    return document


def export_json(document: dict[str, Any]) -> str:
    """The export as indented UTF-8 JSON text."""
    return json.dumps(document, ensure_ascii=False, indent=2, sort_keys=False)


def _rows(session: Session, model, where, order=None) -> list[dict[str, Any]]:
    pk = order if order is not None else model.__table__.primary_key.columns.values()[0]
    return [_row(r) for r in session.scalars(select(model).where(where).order_by(pk))]


def _row(obj, skip: Iterable[str] = ()) -> dict[str, Any]:
    """A model row as plain JSON values, column by column."""
    skip = set(skip)
    return {
        c.key: _plain(getattr(obj, c.key))
        for c in obj.__mapper__.column_attrs
        if c.key not in skip and not c.deferred
    }


def _plain(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, bytes | memoryview):
        import base64

        return base64.b64encode(bytes(value)).decode("ascii")
    return value


__all__ = [
    "ABOUT",
    "DEFAULT_RETENTION_YEARS",
    "REMOVED",
    "DataProtectionError",
    "ErasureResult",
    "RetentionResult",
    "anonymise_children",
    "due_for_retention",
    "erase_child",
    "export_child",
    "export_json",
    "find_subject",
    "redacted_xml",
    "related",
    "retention_cut",
    "retention_years",
    "run_retention",
]
