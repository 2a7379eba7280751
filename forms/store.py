"""Saving parsed records: households, visits, children, follow-ups and reports.

Codes are resolved against the database here (villages, suppliers, cases); an unknown code is an
issue for review, never replaced by a guess. The same child across visits keeps one pseudonymous id:
same household, same folded name, birth year within a year (an age in completed years moves the
estimated birth year by one around a birthday).

Saving runs in two steps so that a submission's status is known before anything is written:
:func:`prepare` reads what it needs and collects every issue; :meth:`Prepared.write` then writes
the rows with a handful of SQL statements (this is the hot path of every submission, so it uses
SQLAlchemy Core rather than the ORM's unit of work). Two first visits of the same household arriving
at once both try to create it; the second INSERT violates the unique code, and the caller retries
the whole transaction (:func:`forms.ingest.ingest_and_commit`), which then finds the household.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.orm import Session

from clms.models import (
    Case,
    Child,
    ChildVisit,
    Household,
    Report,
    Supplier,
    User,
    Village,
    Visit,
    new_child_uid,
)
from clms.scope import village_in_scope
from forms.parse import (
    ChildRecord,
    FollowupRecord,
    HouseholdVisitRecord,
    Issue,
    Record,
    ReportRecord,
    name_key,
)

SCOPED_SUBMITTERS = {"monitor", "officer", "supervisor"}

HOUSEHOLDS = Household.__table__
VISITS = Visit.__table__
CHILDREN = Child.__table__
CHILD_VISITS = ChildVisit.__table__
REPORTS = Report.__table__

# Every submission runs these, so they are built once (building a statement costs more than
# running it on SQLite); only the parameters change.
_VILLAGE_BY_CODE = select(Village.id, Village.area_id).where(Village.code == bindparam("code"))
_SUPPLIER_BY_CODE = select(Supplier.id).where(Supplier.code == bindparam("code"))
_HOUSEHOLD_COLUMNS = ("id", "village_id", "supplier_id", "head_name", "first_visit_at",
                      "last_visit_at")  # fmt: skip
_HOUSEHOLD_BY_CODE = select(*(HOUSEHOLDS.c[n] for n in _HOUSEHOLD_COLUMNS)).where(
    HOUSEHOLDS.c.code == bindparam("code")
)
_CHILDREN_OF = select(
    CHILDREN.c.id, CHILDREN.c.name_key, CHILDREN.c.birth_year, CHILDREN.c.birth_year_exact,
    CHILDREN.c.sex,
).where(CHILDREN.c.household_id == bindparam("household_id"))  # fmt: skip
_INSERT_HOUSEHOLD = insert(HOUSEHOLDS).returning(HOUSEHOLDS.c.id)
_UPDATE_HOUSEHOLD = update(HOUSEHOLDS).where(HOUSEHOLDS.c.id == bindparam("row_id"))
_INSERT_VISIT = insert(VISITS).returning(VISITS.c.id)
_INSERT_CHILDREN = insert(CHILDREN).returning(CHILDREN.c.child_uid, CHILDREN.c.id)
_UPDATE_CHILD = update(CHILDREN).where(CHILDREN.c.id == bindparam("row_id"))
_INSERT_CHILD_VISITS = insert(CHILD_VISITS)
_INSERT_REPORT = insert(REPORTS)


@dataclass
class Prepared:
    """A record resolved against the database: its issues, and how to write it."""

    issues: list[Issue]
    write: Callable[[Session, int], None]  # (session, submission id)


@dataclass
class _Village:
    id: int
    area_id: int


def prepare(
    session: Session, record: Record, submitter: User | None, received_at: dt.datetime
) -> Prepared:
    """Resolve ``record`` (parsed from a submission received at ``received_at``); writes nothing."""
    issues = list(record.issues)
    when = record.meta.end or record.meta.start or received_at
    if isinstance(record, HouseholdVisitRecord):
        write = _prepare_household_visit(session, record, submitter, when, issues)
    elif isinstance(record, FollowupRecord):
        write = _prepare_followup(session, record, submitter, when, issues)
    elif isinstance(record, ReportRecord):
        write = _prepare_report(session, record, when, issues)
    else:  # pragma: no cover - parse_submission returns only these
        raise TypeError(f"not a record: {record!r}")
    return Prepared(issues=issues, write=write)


def _village(
    session: Session, code: str | None, submitter: User | None, issues: list[Issue]
) -> _Village | None:
    """The village with ``code``; an unknown code, or one outside the submitter's villages, is an
    issue (a report, ``submitter=None``, may come from anywhere)."""
    if code is None:
        return None
    row = session.execute(_VILLAGE_BY_CODE, {"code": code}).first()
    if row is None:
        issues.append(Issue("village", code, "unknown village code"))
        return None
    village = _Village(*row)
    if submitter is not None and submitter.role in SCOPED_SUBMITTERS:
        if not village_in_scope(session, submitter, village.id, village.area_id):
            issues.append(
                Issue("village", code, f"not one of the villages assigned to {submitter.username}")
            )
    return village


# --- household visits ---------------------------------------------------------------------------


@dataclass
class _ChildPlan:
    """One repeat: the existing child it is (``child_id``) or the new child to create."""

    rec: ChildRecord
    child_id: int | None = None
    new: dict | None = None  # the children row to insert
    update: dict = field(default_factory=dict)  # what this visit tells us about a known child


def _prepare_household_visit(
    session: Session,
    record: HouseholdVisitRecord,
    submitter: User | None,
    when: dt.datetime,
    issues: list[Issue],
) -> Callable[[Session, int], None]:
    village = _village(session, record.village, submitter, issues)
    supplier_id = None
    if record.supplier not in (None, "none"):
        supplier_id = session.scalar(_SUPPLIER_BY_CODE, {"code": record.supplier})
        if supplier_id is None:
            issues.append(Issue("supplier", record.supplier, "unknown supplier code"))

    household = None  # the existing row, if any
    household_values: dict = {}  # what to insert (new) or update (existing)
    known: list = []
    if record.household_code is not None:
        household = session.execute(
            _HOUSEHOLD_BY_CODE, {"code": record.household_code}
        ).first()
        current = household._asdict() if household else dict.fromkeys(_HOUSEHOLD_COLUMNS)
        if household and household.village_id and village and household.village_id != village.id:
            issues.append(
                Issue(
                    "village",
                    record.village,
                    f"household {record.household_code} was recorded before in another village",
                )
            )
        # the latest visit says where the household is and whom it sells to now
        if current["last_visit_at"] is None or when >= current["last_visit_at"]:
            household_values["last_visit_at"] = when
            if village is not None:
                household_values["village_id"] = village.id
            if record.supplier == "none":
                household_values["supplier_id"] = None
            elif supplier_id is not None:
                household_values["supplier_id"] = supplier_id
            if record.household_head:
                household_values["head_name"] = record.household_head
        first = min(current["first_visit_at"] or when, when)
        if first != current["first_visit_at"]:
            household_values["first_visit_at"] = first
        if household is not None:
            household_values = {k: v for k, v in household_values.items() if current[k] != v}
            known = list(session.execute(_CHILDREN_OF, {"household_id": household.id}))
    elif record.children:
        issues.append(Issue("child", None, "children not linked: the household is unknown"))
    plans = []
    if record.household_code is not None:
        plans = [_recognise_child(known, rec, when) for rec in record.children]

    lat, lon, alt, acc = record.gps or (None, None, None, None)
    visit_values = {
        "kind": "household",
        "village_id": village.id if village else None,
        "supplier_id": supplier_id,
        "monitor_id": submitter.id if submitter else None,
        "visited_at": when,
        "started_at": record.meta.start,
        "ended_at": record.meta.end,
        "device_id": record.meta.device_id,
        "consent": record.consent,
        "lat": lat,
        "lon": lon,
        "altitude": alt,
        "accuracy": acc,
        "services_received": [],
    }

    def write(session: Session, submission_id: int) -> None:
        household_id = None
        if household is not None:
            household_id = household.id
            if household_values:
                session.execute(_UPDATE_HOUSEHOLD, {"row_id": household_id, **household_values})
        elif record.household_code is not None:
            household_id = session.execute(
                _INSERT_HOUSEHOLD, {"code": record.household_code, **household_values}
            ).scalar_one()
        visit_id = session.execute(
            _INSERT_VISIT, {"submission_id": submission_id, "household_id": household_id,
                            **visit_values}  # fmt: skip
        ).scalar_one()
        if household_id is None or not plans:
            return
        _write_children(session, household_id, visit_id, plans)

    return write


def _recognise_child(known: list, rec: ChildRecord, when: dt.datetime) -> _ChildPlan:
    """The known child this repeat describes (removed from ``known``: two repeats of one visit
    are never the same child), or a new child with a new pseudonymous id."""
    exact = rec.dob is not None
    birth_year = rec.dob.year if exact else (when.year - rec.age if rec.age is not None else None)
    key = name_key(rec.name) if rec.name else ""
    if key and birth_year is not None:
        best = None
        for c in known:
            if c.name_key != key or c.birth_year is None:
                continue
            tolerance = 0 if (exact and c.birth_year_exact) else 1
            gap = abs(c.birth_year - birth_year)
            if gap <= tolerance and (best is None or gap < abs(best.birth_year - birth_year)):
                best = c
        if best is not None:
            known.remove(best)
            plan = _ChildPlan(rec, child_id=best.id)
            if exact and not best.birth_year_exact:  # a date of birth beats an age estimate
                plan.update.update(birth_year=birth_year, birth_year_exact=True, dob=rec.dob)
            if best.sex is None and rec.sex is not None:
                plan.update["sex"] = rec.sex
            return plan
    return _ChildPlan(
        rec,
        new={
            "name": rec.name or "",
            "name_key": key,
            "sex": rec.sex,
            "birth_year": birth_year,
            "birth_year_exact": exact,
            "dob": rec.dob,
        },
    )


def _write_children(session: Session, household_id: int, visit_id: int, plans: list) -> None:
    new = [p for p in plans if p.new is not None]
    if new:
        # RETURNING with child_uid: each new row's id is matched to its repeat by the uid we chose,
        # whatever order the database returns the rows in
        rows = [{**p.new, "household_id": household_id, "child_uid": new_child_uid()} for p in new]
        ids = dict(session.execute(_INSERT_CHILDREN, rows).all())
        for p, row in zip(new, rows, strict=True):
            p.child_id = ids[row["child_uid"]]
    for p in plans:
        if p.update:
            session.execute(_UPDATE_CHILD, {"row_id": p.child_id, **p.update})
    session.execute(
        _INSERT_CHILD_VISITS, [_child_visit_row(visit_id, p.child_id, p.rec) for p in plans]
    )


def _child_visit_row(visit_id: int, child_id: int, rec: ChildRecord) -> dict:
    return {
        "visit_id": visit_id,
        "child_id": child_id,
        "position": rec.position,
        "age": rec.age,
        "sex": rec.sex,
        "relationship_to_head": rec.relationship,
        "attends_school": rec.attends_school,
        "work_activities": rec.work_activities,
        "work_hours_7d": rec.work_hours_7d,
        "chore_hours_7d": rec.chore_hours_7d,
        "hazards": rec.hazards,
        "night_work": rec.night_work,
        "injured_12m": rec.injured_12m,
        "worst_form_signs": rec.worst_form_signs,
        "nationality": rec.nationality,
        "migrant_status": rec.migrant_status,
        "lives_with_parent": rec.lives_with_parent,
    }


# --- follow-ups ---------------------------------------------------------------------------------


def _prepare_followup(
    session: Session,
    record: FollowupRecord,
    submitter: User | None,
    when: dt.datetime,
    issues: list[Issue],
) -> Callable[[Session, int], None]:
    case = None
    if record.case_number is not None:
        case = session.execute(
            select(
                Case.id,
                Case.child_id,
                Case.village_id,
                Village.area_id,
                Child.household_id,
                Child.dob,
                Child.sex,
            )
            .join(Child, Child.id == Case.child_id)
            .outerjoin(Village, Village.id == Case.village_id)
            .where(Case.case_number == record.case_number)
        ).first()
        if case is None:
            issues.append(Issue("case", record.case_number, "unknown case number"))
    if case is not None and submitter is not None and submitter.role in SCOPED_SUBMITTERS:
        if case.village_id is None or not village_in_scope(
            session, submitter, case.village_id, case.area_id
        ):
            issues.append(
                Issue("case", record.case_number, f"not a case in {submitter.username}'s villages")
            )
    age = _age_now(session, case.child_id, case.dob, when) if case is not None else None
    visit_values = {
        "kind": "followup",
        "case_id": case.id if case else None,
        "household_id": case.household_id if case else None,
        "village_id": case.village_id if case else None,
        "monitor_id": submitter.id if submitter else None,
        "visited_at": when,
        "started_at": record.meta.start,
        "ended_at": record.meta.end,
        "device_id": record.meta.device_id,
        "child_present": record.child_present,
        "services_received": record.services_received,
        "notes": record.notes,
    }

    def write(session: Session, submission_id: int) -> None:
        visit_id = session.execute(
            _INSERT_VISIT, {"submission_id": submission_id, **visit_values}
        ).scalar_one()
        if case is None:
            return
        session.execute(
            _INSERT_CHILD_VISITS,
            {
                "visit_id": visit_id,
                "child_id": case.child_id,
                "position": 1,
                "age": age,
                "sex": case.sex,
                "attends_school": record.attends_school,
                "work_activities": [],
                "work_hours_7d": record.work_hours_7d,
                "chore_hours_7d": record.chore_hours_7d,
                "hazards": record.hazards,
                "night_work": record.night_work,
                "worst_form_signs": record.worst_form_signs,
            },
        )

    return write


def _age_now(
    session: Session, child_id: int, dob: dt.date | None, when: dt.datetime
) -> int | None:
    """The child's age at ``when``: from the date of birth, else the last recorded age moved on."""
    if dob is not None:
        on = when.date()
        return on.year - dob.year - ((on.month, on.day) < (dob.month, dob.day))
    last = session.execute(
        select(ChildVisit.age, Visit.visited_at)
        .join(Visit, Visit.id == ChildVisit.visit_id)
        .where(ChildVisit.child_id == child_id, ChildVisit.age.is_not(None))
        .order_by(Visit.visited_at.desc())
        .limit(1)
    ).first()
    if last is None:
        return None
    age, seen = last
    return age + max(0, int((when - seen).days // 365.25))


# --- reports ------------------------------------------------------------------------------------


def _prepare_report(
    session: Session, record: ReportRecord, when: dt.datetime, issues: list[Issue]
) -> Callable[[Session, int], None]:
    # a report may come from anyone, anywhere: the village is checked to exist, not scoped
    village = _village(session, record.village, None, issues)
    values = {
        "reporter_type": record.reporter_type,
        "village_id": village.id if village else None,
        "concern": record.concern,
        "child_age_estimate": record.child_age_estimate,
        "description": record.description,
        "contact": record.contact,
        "reported_at": when,
    }

    def write(session: Session, submission_id: int) -> None:
        session.execute(_INSERT_REPORT, {"submission_id": submission_id, **values})

    return write
