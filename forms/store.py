"""Saving parsed records: households, visits, children, follow-ups and reports.

Codes are resolved against the database here (villages, suppliers, cases); an unknown code is an
issue for review, never replaced by a guess. The same child across visits keeps one pseudonymous id:
same household, same folded name, birth year within a year (an age in completed years moves the
estimated birth year by one around a birthday).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from clms.models import (
    Case,
    Child,
    ChildVisit,
    Household,
    Report,
    Submission,
    Supplier,
    User,
    Village,
    Visit,
)
from clms.scope import village_ids_in_scope
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


def save_record(
    session: Session, submission: Submission, record: Record, submitter: User | None
) -> list[Issue]:
    """Save ``record`` parsed from ``submission``; returns every issue that needs review."""
    issues = list(record.issues)
    when = record.meta.end or record.meta.start or submission.received_at
    if isinstance(record, HouseholdVisitRecord):
        _save_household_visit(session, submission, record, submitter, when, issues)
    elif isinstance(record, FollowupRecord):
        _save_followup(session, submission, record, submitter, when, issues)
    elif isinstance(record, ReportRecord):
        _save_report(session, submission, record, submitter, when, issues)
    return issues


def _village(
    session: Session, code: str | None, submitter: User | None, issues: list[Issue]
) -> Village | None:
    if code is None:
        return None
    village = session.scalar(select(Village).where(Village.code == code))
    if village is None:
        issues.append(Issue("village", code, "unknown village code"))
        return None
    if submitter is not None and submitter.role in SCOPED_SUBMITTERS:
        if village.id not in village_ids_in_scope(session, submitter):
            issues.append(
                Issue("village", code, f"not one of the villages assigned to {submitter.username}")
            )
    return village


def _save_household_visit(
    session: Session,
    submission: Submission,
    record: HouseholdVisitRecord,
    submitter: User | None,
    when: dt.datetime,
    issues: list[Issue],
) -> None:
    village = _village(session, record.village, submitter, issues)
    supplier = None
    if record.supplier not in (None, "none"):
        supplier = session.scalar(select(Supplier).where(Supplier.code == record.supplier))
        if supplier is None:
            issues.append(Issue("supplier", record.supplier, "unknown supplier code"))

    household = None
    if record.household_code is not None:
        household, created = _household(session, record.household_code, when)
        if not created and household.village_id and village and household.village_id != village.id:
            issues.append(
                Issue(
                    "village",
                    record.village,
                    f"household {record.household_code} was recorded before in another village",
                )
            )
        # the latest visit says where the household is and whom it sells to now
        if household.last_visit_at is None or when >= household.last_visit_at:
            household.last_visit_at = when
            household.village_id = village.id if village else household.village_id
            if record.supplier == "none":
                household.supplier_id = None
            elif supplier is not None:
                household.supplier_id = supplier.id
            household.head_name = record.household_head or household.head_name
        household.first_visit_at = min(household.first_visit_at or when, when)
        session.flush()

    lat, lon, alt, acc = record.gps or (None, None, None, None)
    visit = Visit(
        submission_id=submission.id,
        kind="household",
        household_id=household.id if household else None,
        village_id=village.id if village else None,
        supplier_id=supplier.id if supplier else None,
        monitor_id=submitter.id if submitter else None,
        visited_at=when,
        started_at=record.meta.start,
        ended_at=record.meta.end,
        device_id=record.meta.device_id,
        consent=record.consent,
        lat=lat,
        lon=lon,
        altitude=alt,
        accuracy=acc,
        services_received=[],
    )
    session.add(visit)
    session.flush()
    if household is None:
        if record.children:
            issues.append(Issue("child", None, "children not linked: the household is unknown"))
        return
    taken: set[int] = set()
    for rec in record.children:
        child = _recognise_child(session, household, rec, when, taken)
        taken.add(child.id)
        session.add(_child_visit(visit, child, rec))
    session.flush()


def _household(session: Session, code: str, when: dt.datetime) -> tuple[Household, bool]:
    """The household with ``code``, created if new (safe when two visits of it arrive at once)."""
    household = session.scalar(select(Household).where(Household.code == code))
    if household is not None:
        return household, False
    try:
        with session.begin_nested():
            household = Household(code=code, first_visit_at=when)
            session.add(household)
            session.flush()
        return household, True
    except IntegrityError:
        return session.scalar(select(Household).where(Household.code == code)), False


def _recognise_child(
    session: Session, household: Household, rec: ChildRecord, when: dt.datetime, taken: set[int]
) -> Child:
    """The existing child this repeat describes, or a new one with a new pseudonymous id."""
    exact = rec.dob is not None
    birth_year = rec.dob.year if exact else (when.year - rec.age if rec.age is not None else None)
    key = name_key(rec.name) if rec.name else ""
    if key and birth_year is not None:
        candidates = session.scalars(
            select(Child).where(Child.household_id == household.id, Child.name_key == key)
        ).all()
        best = None
        for c in candidates:
            if c.id in taken or c.birth_year is None:
                continue
            tolerance = 0 if (exact and c.birth_year_exact) else 1
            gap = abs(c.birth_year - birth_year)
            if gap <= tolerance and (best is None or gap < abs(best.birth_year - birth_year)):
                best = c
        if best is not None:
            if exact and not best.birth_year_exact:  # a date of birth beats an age estimate
                best.birth_year, best.birth_year_exact, best.dob = birth_year, True, rec.dob
            best.sex = best.sex or rec.sex
            return best
    child = Child(
        household_id=household.id,
        name=rec.name or "",
        name_key=key,
        sex=rec.sex,
        birth_year=birth_year,
        birth_year_exact=exact,
        dob=rec.dob,
    )
    session.add(child)
    session.flush()
    return child


def _child_visit(visit: Visit, child: Child, rec: ChildRecord) -> ChildVisit:
    return ChildVisit(
        visit_id=visit.id,
        child_id=child.id,
        position=rec.position,
        age=rec.age,
        sex=rec.sex,
        relationship_to_head=rec.relationship,
        attends_school=rec.attends_school,
        work_activities=rec.work_activities,
        work_hours_7d=rec.work_hours_7d,
        chore_hours_7d=rec.chore_hours_7d,
        hazards=rec.hazards,
        night_work=rec.night_work,
        injured_12m=rec.injured_12m,
        worst_form_signs=rec.worst_form_signs,
        nationality=rec.nationality,
        migrant_status=rec.migrant_status,
        lives_with_parent=rec.lives_with_parent,
    )


def _save_followup(
    session: Session,
    submission: Submission,
    record: FollowupRecord,
    submitter: User | None,
    when: dt.datetime,
    issues: list[Issue],
) -> None:
    case = None
    if record.case_number is not None:
        case = session.scalar(select(Case).where(Case.case_number == record.case_number))
        if case is None:
            issues.append(Issue("case", record.case_number, "unknown case number"))
    household_id = case.child.household_id if case else None
    village_id = case.village_id if case else None
    if case is not None and submitter is not None and submitter.role in SCOPED_SUBMITTERS:
        if village_id not in village_ids_in_scope(session, submitter):
            issues.append(
                Issue("case", record.case_number, f"not a case in {submitter.username}'s villages")
            )
    visit = Visit(
        submission_id=submission.id,
        kind="followup",
        case_id=case.id if case else None,
        household_id=household_id,
        village_id=village_id,
        monitor_id=submitter.id if submitter else None,
        visited_at=when,
        started_at=record.meta.start,
        ended_at=record.meta.end,
        device_id=record.meta.device_id,
        child_present=record.child_present,
        services_received=record.services_received,
        notes=record.notes,
    )
    session.add(visit)
    session.flush()
    if case is None:
        return
    session.add(
        ChildVisit(
            visit_id=visit.id,
            child_id=case.child_id,
            position=1,
            age=_age_now(session, case.child, when),
            sex=case.child.sex,
            attends_school=record.attends_school,
            work_activities=[],
            work_hours_7d=record.work_hours_7d,
            chore_hours_7d=record.chore_hours_7d,
            hazards=record.hazards,
            night_work=record.night_work,
            worst_form_signs=record.worst_form_signs,
        )
    )
    session.flush()


def _age_now(session: Session, child: Child, when: dt.datetime) -> int | None:
    """The child's age at ``when``: from the date of birth, else the last recorded age moved on."""
    if child.dob is not None:
        on = when.date()
        return on.year - child.dob.year - ((on.month, on.day) < (child.dob.month, child.dob.day))
    last = session.execute(
        select(ChildVisit.age, Visit.visited_at)
        .join(Visit, Visit.id == ChildVisit.visit_id)
        .where(ChildVisit.child_id == child.id, ChildVisit.age.is_not(None))
        .order_by(Visit.visited_at.desc())
        .limit(1)
    ).first()
    if last is None:
        return None
    age, seen = last
    return age + max(0, int((when - seen).days // 365.25))


def _save_report(
    session: Session,
    submission: Submission,
    record: ReportRecord,
    submitter: User | None,
    when: dt.datetime,
    issues: list[Issue],
) -> None:
    # a report may come from anyone, anywhere: the village is checked to exist, not scoped
    village = _village(session, record.village, None, issues)
    session.add(
        Report(
            submission_id=submission.id,
            reporter_type=record.reporter_type,
            village_id=village.id if village else None,
            concern=record.concern,
            child_age_estimate=record.child_age_estimate,
            description=record.description,
            contact=record.contact,
            reported_at=when,
        )
    )
    session.flush()
