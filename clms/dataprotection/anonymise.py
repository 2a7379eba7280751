"""Anonymising children: what is removed and what is kept (see :mod:`clms.dataprotection`), in
the caller's transaction, set-based and idempotent; used by the retention run and by erasure.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence
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

from clms.dataprotection.subject import related
from clms.models import (
    ActionPlan,
    Alert,
    AlertEvent,
    Assessment,
    Case,
    CaseEntityVersion,
    CaseEvent,
    CaseTransfer,
    CaseWithdrawal,
    Child,
    ChildMerge,
    ChildVisit,
    Consent,
    Household,
    Notification,
    PlannedService,
    Referral,
    Report,
    Submission,
    SubmissionAttachment,
    SubmissionReview,
    Visit,
)

#: what replaces a removed free text (NOT NULL columns) and a removed name
REMOVED = "[removed]"
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
    Consent, Referral, CaseTransfer, ChildMerge, Notification, CaseEntityVersion,
)  # fmt: skip


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

    Long on purpose: every table and column anonymising changes is named here, in one place, so
    that it can be read against the list of what is removed and what is kept
    (:mod:`clms.dataprotection`).
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
            "case_withdrawals",
            update(CaseWithdrawal)
            .where(CaseWithdrawal.case_id.in_(chunk))
            .values(note=removed(CaseWithdrawal.note)),
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
        # a reviewer's correction of them kept the answer before and after, and said why
        session.execute(
            update(SubmissionReview)
            .where(
                or_(
                    SubmissionReview.submission_id.in_(chunk),
                    SubmissionReview.new_submission_id.in_(chunk),
                )
            )
            .values(old_value=None, new_value=None, reason=REMOVED)
        )
    return changed
