"""Saving parsed records: households, visits, children, follow-ups and reports, a batch at a time.

Codes are resolved against the database here (villages, suppliers, cases); an unknown code is an
issue for review, never replaced by a guess. The same child across visits keeps one pseudonymous id:
same household, same folded name, birth year within a year (an age in completed years moves the
estimated birth year by one around a birthday).

Saving is one step of the intake pipeline (:mod:`clms.intake.pipeline`): the step before it placed
each household visit's GPS point (the :class:`Placement` handed in), and :func:`save_batch`
returns what it wrote (:class:`Saved`) for the steps after it, which classify the children and
raise alerts. This module knows nothing of them.

This is the hot path of every submission, so a batch is saved in three steps with a fixed number
of statements, whatever its size: :meth:`Batch.load` reads every village, supplier, household,
child and case the batch names with one query per table; :meth:`Batch.plan` decides, submission
by submission and in order, what each one adds or changes (in memory, so the second visit of a
household in a batch sees the children the first one added); :meth:`Batch.write` writes it all
with one statement per table (SQLAlchemy Core: the ORM's unit of work costs more than the
database does here).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.orm import Session

from clms.config import gps_far_km, max_children_per_submission
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

# built once (building a statement costs more than running it on SQLite); only parameters change
_VILLAGES = select(Village.code, Village.id, Village.area_id).where(
    Village.code.in_(bindparam("codes", expanding=True))
)
_SUPPLIERS = select(Supplier.code, Supplier.id).where(
    Supplier.code.in_(bindparam("codes", expanding=True))
)
_HOUSEHOLD_FIELDS = ("village_id", "supplier_id", "head_name", "first_visit_at", "last_visit_at")
_HOUSEHOLDS = select(
    HOUSEHOLDS.c.code, HOUSEHOLDS.c.id, *(HOUSEHOLDS.c[f] for f in _HOUSEHOLD_FIELDS)
).where(HOUSEHOLDS.c.code.in_(bindparam("codes", expanding=True)))
_CHILD_FIELDS = ("name_key", "sex", "birth_year", "birth_year_exact", "dob")
_CHILDREN = select(
    CHILDREN.c.household_id,
    CHILDREN.c.id,
    CHILDREN.c.merged_into_id,
    *(CHILDREN.c[f] for f in _CHILD_FIELDS),
).where(CHILDREN.c.household_id.in_(bindparam("ids", expanding=True)))
_CASES = (
    select(
        Case.case_number,
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
    .where(Case.case_number.in_(bindparam("numbers", expanding=True)))
)
_LAST_AGE = (
    select(ChildVisit.age, Visit.visited_at)
    .join(Visit, Visit.id == ChildVisit.visit_id)
    # a visit replaced by an edit, or withdrawn by its server, says nothing any more
    .where(
        ChildVisit.child_id == bindparam("child_id"),
        ChildVisit.age.is_not(None),
        Visit.current.is_(True),
    )
    .order_by(Visit.visited_at.desc())
    .limit(1)
)
_INSERT_HOUSEHOLDS = insert(HOUSEHOLDS).returning(HOUSEHOLDS.c.code, HOUSEHOLDS.c.id)
_UPDATE_HOUSEHOLDS = update(HOUSEHOLDS).where(HOUSEHOLDS.c.id == bindparam("row_id"))
_INSERT_VISITS = insert(VISITS).returning(VISITS.c.submission_id, VISITS.c.id)
_INSERT_CHILDREN = insert(CHILDREN).returning(CHILDREN.c.child_uid, CHILDREN.c.id)
_UPDATE_CHILDREN = update(CHILDREN).where(CHILDREN.c.id == bindparam("row_id"))
_INSERT_CHILD_VISITS = insert(CHILD_VISITS).returning(
    CHILD_VISITS.c.id, sort_by_parameter_order=True
)
_INSERT_REPORTS = insert(REPORTS).returning(REPORTS.c.id, sort_by_parameter_order=True)


@dataclass
class Item:
    """One submission of a batch: its id, what was parsed from it, who sent it, and when."""

    submission_id: int
    record: Record
    submitter: User | None
    received_at: dt.datetime
    current: bool = True  # False: replaced by an edit before it was processed
    # the codes of the reasons a reviewer accepted (forms.reasons): the submission is not held
    # for them again (and an accepted "too many children" lifts the limit for it)
    accepted: frozenset[str] = frozenset()


class Placement(Protocol):
    """Where a household visit's GPS point is, as the pipeline's placing step found it
    (``geo.join.Placement``): why it cannot be used, or the village whose cell holds it (id and
    area; None when no cell does) and its distance to the village chosen in the form."""

    problem: str | None
    village_id: int | None
    area_id: int | None
    distance_km: float | None


@dataclass
class SavedChildVisit:
    """A child visit just written, with where and when the child was seen: what the steps after
    saving (classification, alerts, cases) need, as plain data."""

    child_visit_id: int
    child_id: int
    household_id: int | None
    village_id: int | None
    supplier_id: int | None
    seen_at: dt.datetime  # when the visit took place
    answers: dict  # the child_visits row as written (without its id)
    current: bool  # False for a version already replaced by an edit
    kind: str  # household or followup
    case_id: int | None  # the case a follow-up visit follows
    child_present: bool | None  # follow-ups: whether the monitor saw the child
    services_received: list | None  # follow-ups: services reported received


@dataclass
class SavedReport:
    """A report (the grievance channel) just written, of a submission not replaced by an edit."""

    report_id: int
    village_id: int | None
    concern: list[str]
    reporter_type: str | None
    child_age_estimate: int | None
    reported_at: dt.datetime


@dataclass
class Saved:
    """What :func:`save_batch` did: each submission's issues for review (by submission id), and
    the child visits (in visit order) and current reports it wrote."""

    issues: dict[int, list[Issue]]
    child_visits: list[SavedChildVisit]
    reports: list[SavedReport]


@dataclass(eq=False)  # identity: two children may hold equal values
class _Household:
    code: str
    id: int | None  # None until written
    values: dict  # the _HOUSEHOLD_FIELDS as they stand after the batch's visits so far
    changed: bool = False
    children: list[_Child] = field(default_factory=list)


@dataclass(eq=False)  # identity: two children may hold equal values
class _Child:
    household: _Household
    id: int | None  # None until written
    values: dict  # the _CHILD_FIELDS
    uid: str | None = None  # new children: the pseudonymous id chosen here
    name: str = ""
    changed: bool = False
    # an officer merged this record into another child: its visits go to that child
    merged_into: int | None = None

    @property
    def target_id(self) -> int | None:
        """The child a visit of this record belongs to."""
        return self.merged_into or self.id


@dataclass(eq=False)  # identity: two children may hold equal values
class _Visit:
    item: Item
    row: dict  # the visits row, without submission_id and household_id
    household: _Household | None = None
    child_visits: list[tuple[_Child | int, dict]] = field(default_factory=list)  # child, row


class Batch:
    """Saving a batch of parsed submissions; see the module documentation.

    Use :func:`save_batch`; the steps are separate so each is simple to read.
    """

    def __init__(
        self,
        session: Session,
        items: list[Item],
        placements: Mapping[int, Placement] | None = None,
        *,
        far_km: float | None = None,
        max_children: int | None = None,
    ):
        self.session = session
        self.items = items
        # the settings GPS_FAR_METRES (in km) and MAX_CHILDREN_PER_SUBMISSION, or their defaults
        self.far_km = gps_far_km() if far_km is None else far_km
        self.max_children = max_children_per_submission() if max_children is None else max_children
        self.issues: dict[int, list[Issue]] = {}
        self.villages: dict[str, tuple[int, int]] = {}  # code -> (id, area id)
        # submission id -> where its GPS point is (household visits with a point)
        self.gps: Mapping[int, Placement] = placements or {}
        self.suppliers: dict[str, int] = {}
        self.households: dict[str, _Household] = {}
        self.cases: dict[str, object] = {}
        self._in_scope: dict[tuple[int, int], bool] = {}
        self.visits: list[_Visit] = []
        self.reports: list[tuple[Item, dict]] = []
        # filled by write(): what was stored, for the steps after saving
        self.child_visits: list[SavedChildVisit] = []
        self.new_reports: list[SavedReport] = []

    # --- 1. read what the batch names ---------------------------------------------------------

    def load(self) -> None:
        records = [item.record for item in self.items]
        village_codes = {r.village for r in records if getattr(r, "village", None)}
        supplier_codes = {
            r.supplier for r in records if getattr(r, "supplier", None) not in (None, "none")
        }
        household_codes = {
            r.household_code for r in records if getattr(r, "household_code", None) is not None
        }
        case_numbers = {r.case_number for r in records if getattr(r, "case_number", None)}
        s = self.session
        if village_codes:
            for code, vid, area_id in s.execute(_VILLAGES, {"codes": sorted(village_codes)}):
                self.villages[code] = (vid, area_id)
        if supplier_codes:
            self.suppliers = dict(s.execute(_SUPPLIERS, {"codes": sorted(supplier_codes)}).all())
        if household_codes:
            for row in s.execute(_HOUSEHOLDS, {"codes": sorted(household_codes)}):
                values = {f: getattr(row, f) for f in _HOUSEHOLD_FIELDS}
                self.households[row.code] = _Household(row.code, row.id, values)
            by_id = {h.id: h for h in self.households.values()}
            if by_id:
                for row in s.execute(_CHILDREN, {"ids": sorted(by_id)}):
                    household = by_id[row.household_id]
                    values = {f: getattr(row, f) for f in _CHILD_FIELDS}
                    household.children.append(
                        _Child(household, row.id, values, merged_into=row.merged_into_id)
                    )
        if case_numbers:
            self.cases = {row.case_number: row for row in s.execute(
                _CASES, {"numbers": sorted(case_numbers)})}  # fmt: skip

    # --- 2. decide, submission by submission ----------------------------------------------------

    def plan(self, item: Item) -> list[Issue]:
        """What ``item`` adds and changes (kept in memory); returns its issues for review."""
        record = item.record
        issues = list(record.issues)
        when = record.meta.end or record.meta.start or item.received_at
        if isinstance(record, HouseholdVisitRecord):
            self._plan_household_visit(item, record, when, issues)
        elif isinstance(record, FollowupRecord):
            self._plan_followup(item, record, when, issues)
        elif isinstance(record, ReportRecord):
            self._plan_report(item, record, when, issues)
        else:  # pragma: no cover - parse_submission returns only these
            raise TypeError(f"not a record: {record!r}")
        if item.accepted:
            issues = [i for i in issues if i.code not in item.accepted]
        self.issues[item.submission_id] = issues
        return issues

    def _scoped(self, submitter: User | None, village_id: int, area_id: int) -> bool:
        if submitter is None or submitter.role not in SCOPED_SUBMITTERS:
            return True
        key = (submitter.id, village_id)
        if key not in self._in_scope:
            self._in_scope[key] = village_in_scope(self.session, submitter, village_id, area_id)
        return self._in_scope[key]

    def _village(self, code: str | None, submitter: User | None, issues: list[Issue]) -> int | None:
        """The id of the village with ``code``; an unknown code, or one outside the submitter's
        villages, is an issue (a report, ``submitter=None``, may come from anywhere)."""
        if code is None:
            return None
        if code not in self.villages:
            issues.append(Issue("village", code, "unknown village code", "unknown_village"))
            return None
        village_id, area_id = self.villages[code]
        if not self._scoped(submitter, village_id, area_id):
            issues.append(
                Issue("village", code, f"not one of the villages assigned to {submitter.username}",
                      "village_out_of_scope", {"monitor": submitter.username})
            )
        return village_id

    def _gps_village(
        self, item: Item, record: HouseholdVisitRecord, chosen: int | None, issues: list[Issue]
    ) -> tuple[int | None, str | None, float | None]:
        """The visit's village, how it was found ("gps" or "form") and the GPS point's distance
        to the village chosen in the form (``chosen``), with the GPS issues for review.

        The village whose cell holds the point wins over the chosen one, unless it is not one of
        the submitter's villages: a point never moves a visit out of its monitor's scope, so the
        chosen village is kept ("form"). That alone is no issue (a household at the edge of a
        village often has its point in the next village's cell, another monitor's); the distance
        to the chosen village is, beyond ``GPS_FAR_METRES``, as for every visit. An unusable
        point (null island, absurd accuracy) is an issue, and the chosen village is kept.
        """
        gps = self.gps.get(item.submission_id)
        if gps is None or record.gps is None:
            return chosen, "form" if chosen is not None else None, None
        lat, lon = record.gps[0], record.gps[1]
        text = f"{lat:g} {lon:g}"
        if gps.problem is not None:
            issues.append(
                Issue("gps", text, f"{gps.problem}; the village chosen in the form is kept",
                      "gps_unusable", {"problem": gps.problem})
            )
            return chosen, "form" if chosen is not None else None, None
        village_id, source = chosen, "form" if chosen is not None else None
        if gps.village_id is not None and (
            gps.village_id == chosen or self._scoped(item.submitter, gps.village_id, gps.area_id)
        ):
            village_id, source = gps.village_id, "gps"
        far_km = self.far_km
        if gps.distance_km is not None and gps.distance_km > far_km:
            issues.append(
                Issue(
                    "gps",
                    text,
                    f"{gps.distance_km:.1f} km from village {record.village}, the village chosen "
                    f"in the form (more than {far_km:g} km)",
                    "far_gps",
                    {"km": round(gps.distance_km, 1), "limit": far_km, "village": record.village},
                )
            )
        return village_id, source, gps.distance_km

    def _plan_household_visit(
        self, item: Item, record: HouseholdVisitRecord, when: dt.datetime, issues: list[Issue]
    ) -> None:
        limit = self.max_children
        if len(record.children) > limit and "too_many_children" not in item.accepted:
            # no household has that many children: an error or an attack. Nothing of the visit
            # is saved (matching thousands of children is the slow part, and a person must look);
            # the submission stays stored as received, held for review with the reason.
            issues.append(
                Issue(
                    "child",
                    str(len(record.children)),
                    f"{len(record.children)} children in one household visit, more than the "
                    f"limit of {limit} (CLMS_MAX_CHILDREN_PER_SUBMISSION): nothing of this visit "
                    "was saved; the submission is kept as received",
                    "too_many_children",
                    {"count": len(record.children), "limit": limit},
                )
            )
            return
        form_village_id = self._village(record.village, item.submitter, issues)
        village_id, village_source, distance = self._gps_village(
            item, record, form_village_id, issues
        )
        supplier_id = None
        if record.supplier not in (None, "none"):
            supplier_id = self.suppliers.get(record.supplier)
            if supplier_id is None:
                issues.append(
                    Issue("supplier", record.supplier, "unknown supplier code", "unknown_supplier")
                )
        lat, lon, alt, acc = record.gps or (None, None, None, None)
        visit = _Visit(
            item,
            {
                "kind": "household",
                "village_id": village_id,
                "form_village_id": form_village_id,
                "village_source": village_source,
                "gps_distance_km": distance,
                "supplier_id": supplier_id,
                "monitor_id": item.submitter.id if item.submitter else None,
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
            },
        )
        self.visits.append(visit)
        if record.household_code is None:
            if record.children:
                issues.append(Issue("child", None, "children not linked: the household is unknown",
                                    "household_unknown"))
            return

        household = self.households.get(record.household_code)
        if household is None:
            household = _Household(record.household_code, None, dict.fromkeys(_HOUSEHOLD_FIELDS))
            self.households[household.code] = household
        elif (
            household.values["village_id"]
            and village_id
            # neither the form nor the GPS point says the village recorded before: a point that
            # wanders over the edge of a cell while the form names the same village is not news
            and household.values["village_id"] not in (village_id, form_village_id)
        ):
            issues.append(
                Issue(
                    "village",
                    record.village,
                    f"household {record.household_code} was recorded before in another village",
                    "household_moved",
                    {"household": record.household_code},
                )
            )
        visit.household = household
        # the latest visit says where the household is and whom it sells to now
        values = dict(household.values)
        if values["last_visit_at"] is None or when >= values["last_visit_at"]:
            values["last_visit_at"] = when
            if village_id is not None:
                values["village_id"] = village_id
            if record.supplier == "none":
                values["supplier_id"] = None
            elif supplier_id is not None:
                values["supplier_id"] = supplier_id
            if record.household_head:
                values["head_name"] = record.household_head
        values["first_visit_at"] = min(values["first_visit_at"] or when, when)
        if values != household.values:
            household.values, household.changed = values, True

        available = list(household.children)  # two repeats of one visit are never the same child
        for rec in record.children:
            kid = _recognise_child(household, available, rec, when)
            visit.child_visits.append((kid, _child_visit_row(rec)))

    def _plan_followup(
        self, item: Item, record: FollowupRecord, when: dt.datetime, issues: list[Issue]
    ) -> None:
        case = None
        if record.case_number is not None:
            case = self.cases.get(record.case_number)
            if case is None:
                issues.append(
                    Issue("case", record.case_number, "unknown case number", "unknown_case")
                )
        submitter = item.submitter
        scoped = submitter is not None and submitter.role in SCOPED_SUBMITTERS
        if (
            case is not None
            and scoped
            and (case.village_id is None or not self._scoped(submitter, case.village_id,
                                                             case.area_id))
        ):  # fmt: skip
            issues.append(
                Issue("case", record.case_number, f"not a case in {submitter.username}'s villages",
                      "case_out_of_scope", {"monitor": submitter.username})
            )
        visit = _Visit(
            item,
            {
                "kind": "followup",
                "case_id": case.id if case else None,
                "village_id": case.village_id if case else None,
                "monitor_id": submitter.id if submitter else None,
                "visited_at": when,
                "started_at": record.meta.start,
                "ended_at": record.meta.end,
                "device_id": record.meta.device_id,
                "child_present": record.child_present,
                "services_received": record.services_received,
                "notes": record.notes,
            },
        )
        self.visits.append(visit)
        if case is None:
            return
        visit.row["household_id"] = case.household_id
        row = _child_visit_row(None)
        row.update(
            position=1,
            age=self._age_now(case.child_id, case.dob, when),
            sex=case.sex,
            attends_school=record.attends_school,
            work_hours_7d=record.work_hours_7d,
            chore_hours_7d=record.chore_hours_7d,
            hazards=record.hazards,
            night_work=record.night_work,
            worst_form_signs=record.worst_form_signs,
        )
        visit.child_visits.append((case.child_id, row))

    def _age_now(self, child_id: int, dob: dt.date | None, when: dt.datetime) -> int | None:
        """The child's age at ``when``: from the date of birth, else the last recorded age moved
        on by the time since."""
        if dob is not None:
            on = when.date()
            return on.year - dob.year - ((on.month, on.day) < (dob.month, dob.day))
        last = self.session.execute(_LAST_AGE, {"child_id": child_id}).first()
        if last is None:
            return None
        age, seen = last
        return age + max(0, int((when - seen).days // 365.25))

    def _plan_report(
        self, item: Item, record: ReportRecord, when: dt.datetime, issues: list[Issue]
    ) -> None:
        # a report may come from anyone, anywhere: the village is checked to exist, not scoped
        village_id = self._village(record.village, None, issues)
        self.reports.append(
            (
                item,
                {
                    "reporter_type": record.reporter_type,
                    "village_id": village_id,
                    "concern": record.concern,
                    "child_age_estimate": record.child_age_estimate,
                    "description": record.description,
                    "contact": record.contact,
                    "reported_at": when,
                    "current": item.current,
                },
            )
        )

    # --- 3. write it all, one statement per table -------------------------------------------------

    def write(self) -> None:
        s = self.session
        new = [h for h in self.households.values() if h.id is None]
        changed = [h for h in self.households.values() if h.changed and h.id is not None]
        if new:
            rows = [{"code": h.code, **h.values} for h in new]
            ids = dict(s.execute(_INSERT_HOUSEHOLDS, rows).all())
            for h in new:
                h.id = ids[h.code]
        if changed:
            s.execute(_UPDATE_HOUSEHOLDS, [{"row_id": h.id, **h.values} for h in changed])

        new_children = [c for h in self.households.values() for c in h.children if c.id is None]
        if new_children:
            rows = [
                {"child_uid": c.uid, "household_id": c.household.id, "name": c.name, **c.values}
                for c in new_children
            ]
            ids = dict(s.execute(_INSERT_CHILDREN, rows).all())
            for c in new_children:
                c.id = ids[c.uid]
        changed_children = [
            c for h in self.households.values() for c in h.children if c.changed and c.uid is None
        ]
        if changed_children:
            s.execute(
                _UPDATE_CHILDREN,
                [{"row_id": c.id, **{f: c.values[f] for f in _CHILD_FIELDS if f != "name_key"}}
                 for c in changed_children],
            )  # fmt: skip

        if self.visits:
            rows = []
            for v in self.visits:
                row = {**_VISIT_DEFAULTS, **v.row, "submission_id": v.item.submission_id,
                       "current": v.item.current}  # fmt: skip
                if v.household is not None:
                    row["household_id"] = v.household.id
                rows.append(row)
            ids = dict(s.execute(_INSERT_VISITS, rows).all())
            visit_rows = {}
            for row in rows:
                row["id"] = ids[row["submission_id"]]
                visit_rows[row["submission_id"]] = row
            child_visit_rows = [
                {**row, "visit_id": ids[v.item.submission_id],
                 "child_id": kid if isinstance(kid, int) else kid.target_id}
                for v in self.visits
                for kid, row in v.child_visits
            ]  # fmt: skip
            if child_visit_rows:
                cv_ids = s.execute(_INSERT_CHILD_VISITS, child_visit_rows).scalars().all()
                self._keep_saved(visit_rows, child_visit_rows, cv_ids)
        if self.reports:
            report_ids = (
                s.execute(
                    _INSERT_REPORTS,
                    [{**row, "submission_id": item.submission_id} for item, row in self.reports],
                )
                .scalars()
                .all()
            )
            self.new_reports = [
                SavedReport(rid, row["village_id"], row["concern"], row["reporter_type"],
                            row["child_age_estimate"], row["reported_at"])
                for (item, row), rid in zip(self.reports, report_ids, strict=True)
                if item.current
            ]  # fmt: skip

    def _keep_saved(self, visit_rows: dict, child_visit_rows: list[dict], ids: list[int]) -> None:
        """Keep the child visits just written, with where they were seen, in visit order."""
        households = {h.id: h for h in self.households.values()}
        currents = {v.item.submission_id: v.item.current for v in self.visits}
        by_visit_id = {row["id"]: (sid, row) for sid, row in visit_rows.items()}
        for cv_row, cv_id in zip(child_visit_rows, ids, strict=True):
            submission_id, row = by_visit_id[cv_row["visit_id"]]
            village_id, supplier_id = row["village_id"], row["supplier_id"]
            household = households.get(row["household_id"])
            if household is not None:  # a follow-up names no supplier: the household's applies
                village_id = village_id or household.values["village_id"]
                supplier_id = supplier_id or household.values["supplier_id"]
            self.child_visits.append(
                SavedChildVisit(
                    child_visit_id=cv_id,
                    child_id=cv_row["child_id"],
                    household_id=row["household_id"],
                    village_id=village_id,
                    supplier_id=supplier_id,
                    seen_at=row["visited_at"],
                    answers=cv_row,
                    current=currents[submission_id],
                    kind=row["kind"],
                    case_id=row["case_id"],
                    child_present=row["child_present"],
                    services_received=row["services_received"],
                )
            )


# every visits row carries every column, so that one executemany INSERT takes them all
_VISIT_DEFAULTS = {
    "household_id": None, "case_id": None, "village_id": None, "supplier_id": None,
    "monitor_id": None, "started_at": None, "ended_at": None, "device_id": None, "consent": None,
    "child_present": None, "lat": None, "lon": None, "altitude": None, "accuracy": None,
    "services_received": [], "notes": None, "form_village_id": None, "village_source": None,
    "gps_distance_km": None,
}  # fmt: skip


def save_batch(
    session: Session,
    items: list[Item],
    placements: Mapping[int, Placement] | None = None,
    *,
    far_km: float | None = None,
    max_children: int | None = None,
) -> Saved:
    """Save ``items`` (in order), their household visits' GPS points placed as ``placements``
    says (by submission id; a visit without one keeps the village chosen in the form); returns
    what was saved. Flushes, never commits.

    The settings are passed in: ``far_km`` (``GPS_FAR_METRES`` in km: a point further from the
    village chosen in the form is held for review) and ``max_children``
    (``MAX_CHILDREN_PER_SUBMISSION``); None: their defaults (:mod:`clms.config`)."""
    batch = Batch(session, items, placements, far_km=far_km, max_children=max_children)
    batch.load()
    for item in items:
        batch.plan(item)
    batch.write()
    return Saved(batch.issues, batch.child_visits, batch.new_reports)


def _recognise_child(
    household: _Household, available: list[_Child], rec: ChildRecord, when: dt.datetime
) -> _Child:
    """The child among ``available`` this repeat describes (removed from it), or a new child with
    a new pseudonymous id (added to the household)."""
    exact = rec.dob is not None
    birth_year = rec.dob.year if exact else (when.year - rec.age if rec.age is not None else None)
    key = name_key(rec.name) if rec.name else ""
    if key and birth_year is not None:
        best = None
        for c in available:
            known = c.values["birth_year"]
            if c.values["name_key"] != key or known is None:
                continue
            tolerance = 0 if (exact and c.values["birth_year_exact"]) else 1
            gap = abs(known - birth_year)
            if gap <= tolerance and (
                best is None or gap < abs(best.values["birth_year"] - birth_year)
            ):
                best = c
        if best is not None:
            available.remove(best)
            if exact and not best.values["birth_year_exact"]:  # a date of birth beats an age
                best.values.update(birth_year=birth_year, birth_year_exact=True, dob=rec.dob)
                best.changed = True
            if best.values["sex"] is None and rec.sex is not None:
                best.values["sex"] = rec.sex
                best.changed = True
            return best
    child = _Child(
        household,
        None,
        {"name_key": key, "sex": rec.sex, "birth_year": birth_year, "birth_year_exact": exact,
         "dob": rec.dob},
        uid=new_child_uid(),
        name=rec.name or "",
    )  # fmt: skip
    household.children.append(child)
    return child


def _child_visit_row(rec: ChildRecord | None) -> dict:
    """A child_visits row (without visit and child ids) with every column, from ``rec`` if given."""
    if rec is None:
        return {
            "position": 1, "age": None, "sex": None, "relationship_to_head": None,
            "attends_school": None, "work_activities": [], "work_hours_7d": None,
            "chore_hours_7d": None, "hazards": [], "night_work": None, "injured_12m": None,
            "worst_form_signs": [], "nationality": None, "migrant_status": None,
            "lives_with_parent": None,
        }  # fmt: skip
    return {
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
