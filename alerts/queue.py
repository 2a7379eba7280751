"""The officers' alert queue: listing and reading alerts, and a child's record.

Who sees what (domain.md section 1): officers and supervisors see the alerts and children of the
villages in their scope (the areas they are assigned to and every area below, plus villages named
directly); an administrator sees child data only when also given such a scope, under the same rule.
Brands, monitors and providers see nothing here. Out of scope is the same as not existing: the
functions return None (or raise ``not_found``) so a caller cannot probe for ids.

This module only reads: acting on an alert (acknowledge, assign, dismiss) is
:mod:`alerts.lifecycle`'s. Every read of child-level data is written to the audit log.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import (
    ColumnElement,
    and_,
    func,
    or_,
    select,
    text,
)
from sqlalchemy.orm import Session, joinedload

from alerts.deadlines import due_at, is_overdue
from alerts.queue_keys import keys_beyond, page_keys, queue_groups, sorted_keys
from clms.audit import record_read
from clms.errors import Problem, problem
from clms.models import (
    ACTIVE_ALERT_STATUSES,
    ALERT_STATUSES,
    SEVERITIES,
    Alert,
    AlertEvent,
    Area,
    Case,
    Child,
    ChildVisit,
    Classification,
    CountryProfile,
    Household,
    Supplier,
    SupplierVillage,
    User,
    UserScope,
    Village,
    Visit,
    utcnow,
)
from clms.paging import Cursors, Key, Page, Paging
from clms.scope import SCOPED_ROLES, scope_parts, village_in_scope, village_scope_condition

PER_PAGE = 50
SEVERITY_RANKS = dict(zip(SEVERITIES, range(len(SEVERITIES), 0, -1), strict=True))  # critical: 4
MAX_PER_PAGE = 200
#: the queue's pages (web and API); a refusal's detail stays English on the web page, as it was
ALERT_PAGING = Paging(PER_PAGE, MAX_PER_PAGE, plain=True)
ASSIGNABLE_ROLES = ("officer", "supervisor")
# ``status`` filter values: one status, every active one (the default) or all of them
STATUS_FILTERS = ("active", "all", *ALERT_STATUSES)
#: the orders the queue can be read in: "urgency" (the default: overdue first, then severity,
#: then deadline) or one column, each in its natural order (most severe, soonest deadline,
#: village A-Z, youngest child, newest raised first); a leading "-" reverses it
SORT_KEYS = ("urgency", "severity", "deadline", "village", "age", "raised")
SORTS = (*SORT_KEYS, *(f"-{k}" for k in SORT_KEYS[1:]))
#: the kind of each column the queue can be sorted by, as its cursors hold it (None: missing)
_SORT_KINDS = {"severity": "int?", "deadline": "datetime?", "village": "str?", "age": "int?",
               "raised": "datetime?"}  # fmt: skip
#: the queue's keys (web and API: ``?after=``, ``?before=``): urgency is (overdue, severity rank,
#: acknowledgement deadline, id); a column's order is (value missing, value, deadline, id)
ALERT_CURSORS = Cursors(
    "alerts",
    {
        "urgency": ("bool", "int", "datetime", "int"),
        **{s: ("int", _SORT_KINDS[s.lstrip("-")], "datetime", "int") for s in SORTS[1:]},
    },
    plain=True,
)


# literal, not bound: the planners see the values whatever the plan caching (and a partial index on
# the same condition, should one come, is provably usable)
_ACTIVE = text("alerts.status IN ('new', 'acknowledged')")


@dataclass
class AlertPage(Page[Alert]):
    """One page of the queue. ``rows`` come with what a queue shows of their ``child`` (the
    pseudonymous id only), ``household``, ``village``, ``supplier`` and ``assigned_to``;
    ``overdue`` holds the ids of the overdue ones, judged at ``now``."""

    per_page: int = PER_PAGE
    now: dt.datetime | None = None
    overdue: set[int] = field(default_factory=set)
    sort: str = "urgency"
    ages: dict[int, int] = field(default_factory=dict)  # alert id -> the child's age at the visit


@dataclass
class AlertDetail:
    """An alert with what its page shows: the event history and who it may be assigned to."""

    alert: Alert
    events: list[AlertEvent]
    assignees: list[User]
    now: dt.datetime
    case: Case | None = None  # the case the alert became, if any
    #: the visit that raised it: when it happened and the child's age it recorded (None: a
    #: reported concern, or an alert from before classifications were kept)
    found_at: dt.datetime | None = None
    found_age: int | None = None

    @property
    def overdue(self) -> bool:
        return is_overdue(self.alert, self.now)

    @property
    def seen_again_at(self) -> dt.datetime | None:
        """When a visit after the one that raised the alert last saw the child, else None.

        The alert is raised when its visit reaches the server (``created_at``, the moment its
        history's first line says), which may be hours after the visit itself: the page says
        both, and shows "last seen" only for a later visit, so it never reads as if the child
        were last seen before the alert was raised.
        """
        first = self.found_at or self.alert.created_at
        seen = self.alert.last_seen_at
        return seen if seen is not None and seen > first else None


# --- deadlines in SQL ---------------------------------------------------------------------------


def overdue_condition(now: dt.datetime) -> ColumnElement[bool]:
    """SQL for :func:`alerts.deadlines.is_overdue` (the same rule, evaluated by the database)."""
    return and_(_ACTIVE, _late(now))


def _late(now: dt.datetime) -> ColumnElement[bool]:
    """Past a deadline not met, whatever the status (never NULL, so ``~`` is its complement)."""
    return or_(
        and_(Alert.acknowledged_at.is_(None), Alert.ack_due_at < now),
        and_(
            Alert.visit_due_at.is_not(None),
            Alert.first_visit_at.is_(None),
            Alert.visit_due_at < now,
        ),
    )


# --- reading the queue ---------------------------------------------------------------------------


def list_alerts(
    session: Session,
    user: User,
    *,
    severity: str | None = None,
    village: str | None = None,
    supplier: str | None = None,
    overdue: bool | None = None,
    status: str | None = None,
    sort: str | None = None,
    page: int = 1,
    per_page: int = PER_PAGE,
    key: Key | None = None,
    now: dt.datetime | None = None,
    keep_past_last: bool = False,
) -> AlertPage:
    """One page of the alerts ``user`` may see, most urgent first.

    Order: overdue first, then severity (critical first), then the acknowledgement deadline
    (soonest first), then id. ``status`` is one of :data:`STATUS_FILTERS` (default: the active
    ones, new and acknowledged); ``village`` and ``supplier`` are codes. A page past the last one
    is the last (``keep_past_last``, for the API: empty, with the number asked). Raises the
    ``request.invalid_parameter`` problem, naming the parameter, for a value that is not allowed
    (unknown severity, status or code, page < 1, per_page outside 1-200).

    Three or four queries once the user's scope is known: the size of each (overdue, severity)
    group, which also gives the total; the ids of the page from the group or two it falls in (the
    database sorts and skips within that group only, reading only the columns of the order); and
    the alerts of the page.

    ``sort`` (one of :data:`SORTS`) reads the queue by one column instead (ties: the
    acknowledgement deadline, then id), for the same filters and pages: one count, one query
    for the ids of the page, and the alerts of the page.

    ``key`` (read by :data:`ALERT_CURSORS` from ``?after=`` or ``?before=``, for the order
    ``sort``) reads the page after (or before) a row by its sort values instead of counting
    ``page`` rows from the start: a deep page costs what the first does. Every page says the
    cursors of the next and previous pages (``next_key``, ``previous_key``), numbered pages
    too; the page number a cursor carries is what "Page N of M" shows.

    >>> page = list_alerts(session, officer, severity="critical", overdue=True)  # doctest: +SKIP
    """
    now = now or utcnow()
    sort = sort or "urgency"
    if sort not in SORTS:
        raise _invalid("sort", f"must be one of {', '.join(SORTS)}")
    if severity is not None and severity not in SEVERITIES:
        raise _invalid("severity", f"must be one of {', '.join(SEVERITIES)}")
    status = status or "active"
    if status not in STATUS_FILTERS:
        raise _invalid("status", f"must be one of {', '.join(STATUS_FILTERS)}")
    window = ALERT_PAGING.check(page if key is None else 1, per_page)
    if key is not None and key.order != sort:
        raise _invalid("before" if key.backward else "after", "belongs to another order")

    scope = _scope_condition(session, user)
    if scope is None:
        return AlertPage(rows=[], total=0, page=1, pages=1, per_page=per_page, now=now, sort=sort)
    where = [scope]
    if status == "active":
        where.append(_ACTIVE)
    elif status != "all":
        where.append(Alert.status == status)
    # overdue and severity, the order's first keys, make at most 8 groups: the page is read from
    # the group or two it falls in, each sorted alone (see _queue_groups)
    ranks = [SEVERITY_RANKS[severity]] if severity is not None else list(SEVERITY_RANKS.values())
    if village is not None:
        village_id = session.scalar(select(Village.id).where(Village.code == village))
        if village_id is None:
            raise _invalid("village", f"names no known village ({village!r})")
        where.append(Alert.village_id == village_id)
    if supplier is not None:
        supplier_id = session.scalar(select(Supplier.id).where(Supplier.code == supplier))
        if supplier_id is None:
            raise _invalid("supplier", f"names no known supplier ({supplier!r})")
        where.append(Alert.supplier_id == supplier_id)
    # evaluated for every row in scope: leave out the status test when the filter already has it
    late = _late(now) if status in ("active", *ACTIVE_ALERT_STATUSES) else overdue_condition(now)
    if overdue is True:
        where.append(late)
    elif overdue is False:
        where.append(~late)

    if sort == "urgency":
        groups = queue_groups(session, where, late, ranks)
        total = sum(size for _late, _rank, size in groups)
    else:
        if severity is not None:
            where.append(Alert.severity_rank == SEVERITY_RANKS[severity])
        total = session.scalar(select(func.count()).select_from(Alert).where(*where)) or 0
    pages = window.pages(total)
    if key is not None:  # after or before a row: read from its key, never skipping rows
        if sort == "urgency":
            found = keys_beyond(session, where, late, groups, key, per_page + 1)
        else:
            found = sorted_keys(session, where, sort, 0, per_page + 1, key=key)
        if key.backward and len(found) <= per_page:  # the first page (or rows went): read it
            key, window = None, window.within(total)
        else:
            more_after = key.backward or len(found) > per_page
            keyed = found[:per_page]
            if key.backward:
                keyed.reverse()
            page = max(1, key.page if keep_past_last else min(key.page, pages))
    if key is None:
        if not keep_past_last:
            window = window.within(total)
        page = window.page
        if sort == "urgency":
            found = page_keys(session, where, late, groups, window.offset, window.limit + 1)
        else:
            found = sorted_keys(session, where, sort, window.offset, window.limit + 1)
        more_after, keyed = len(found) > per_page, found[:per_page]
    more_before = key is not None or page > 1  # a key read backward to the start is dropped
    ids = [values[-1] for values in keyed]
    rows = _queue_rows(session, ids)
    if rows:  # the queue names children and households: a read of child-level data
        record_read(session, user, "alerts.list", "alerts", page=page,
                    alerts=[a.id for a in rows])  # fmt: skip
    return AlertPage(
        rows=rows,
        total=total,
        page=page,
        pages=pages,
        per_page=per_page,
        now=now,
        overdue={a.id for a in rows if is_overdue(a, now)},
        sort=sort,
        ages=_ages_at_visit(session, ids),
        next_key=(ALERT_CURSORS.cursor(sort, keyed[-1], page=page + 1)
                  if more_after and keyed else None),
        previous_key=(ALERT_CURSORS.cursor(sort, keyed[0], page=max(1, page - 1))
                      if more_before and keyed else None),
    )  # fmt: skip


def _ages_at_visit(session: Session, ids: list[int]) -> dict[int, int]:
    """The child's age at the visit, by alert id, for the alerts ``ids`` (one query)."""
    if not ids:
        return {}
    return {
        alert_id: age
        for alert_id, age in session.execute(
            select(Alert.id, ChildVisit.age)
            .join(Classification, Classification.id == Alert.classification_id)
            .join(ChildVisit, ChildVisit.id == Classification.child_visit_id)
            .where(Alert.id.in_(ids))
        )
        if age is not None
    }


def _queue_rows(session: Session, ids: list[int]) -> list[Alert]:
    """The alerts ``ids``, in that order, with what a queue shows of them."""
    rows: list[Alert] = []
    if ids:
        loaded = {
            a.id: a
            for a in session.scalars(
                select(Alert)
                .where(Alert.id.in_(ids))
                .options(
                    # what a queue shows of them: the child's pseudonymous id, never the name
                    joinedload(Alert.child).load_only(Child.child_uid, Child.sex),
                    joinedload(Alert.household).load_only(Household.code),
                    joinedload(Alert.village).load_only(Village.code, Village.name),
                    joinedload(Alert.supplier).load_only(Supplier.code, Supplier.name),
                    joinedload(Alert.assigned_to).load_only(User.username, User.full_name),
                )
            )
        }
        rows = [loaded[i] for i in ids if i in loaded]
    return rows


def queue_choices(session: Session, user: User) -> tuple[list[Village], list[Supplier]]:
    """The villages in ``user``'s scope and the suppliers buying there: the queue's filters."""
    scope = _village_scope_condition(session, user)
    if scope is None:
        return [], []
    villages = list(session.scalars(select(Village).where(scope).order_by(Village.code)))
    suppliers = list(
        session.scalars(
            select(Supplier)
            .where(
                Supplier.id.in_(
                    select(SupplierVillage.supplier_id).where(
                        SupplierVillage.village_id.in_([v.id for v in villages])
                    )
                )
            )
            .order_by(Supplier.code)
        )
    )
    return villages, suppliers


def get_alert(session: Session, user: User, alert_id: int) -> Alert | None:
    """The alert if ``user`` may see it, else None (whether or not it exists)."""
    if user.role not in SCOPED_ROLES:
        return None
    alert = session.scalar(
        select(Alert)
        .where(Alert.id == alert_id)
        .options(
            joinedload(Alert.village),
            joinedload(Alert.household),
            joinedload(Alert.child),
            joinedload(Alert.supplier),
            joinedload(Alert.assigned_to),
        )
    )
    if alert is None or alert.village is None:
        return None
    if not village_in_scope(session, user, alert.village_id, alert.village.area_id):
        return None
    return alert


def alert_details(
    session: Session, user: User, alert_id: int, *, now: dt.datetime | None = None
) -> AlertDetail | None:
    """The alert, its history (oldest first) and the people it may be assigned to; None when out
    of scope."""
    alert = get_alert(session, user, alert_id)
    if alert is None:
        return None
    events = list(
        session.scalars(
            select(AlertEvent)
            .where(AlertEvent.alert_id == alert.id)
            .options(joinedload(AlertEvent.user))
            .order_by(AlertEvent.at, AlertEvent.id)
        )
    )
    record_read(session, user, "alert.read", f"alert:{alert.id}")
    assignees = eligible_assignees(session, alert)
    case_row = None
    if alert.status == "case_opened":
        case_row = session.scalar(
            select(Case).where(Case.alert_id == alert.id).order_by(Case.id.desc()).limit(1)
        )
        if case_row is None:  # the alert joined a case opened from another alert
            case_id = session.scalar(
                select(AlertEvent.detail)
                .where(AlertEvent.alert_id == alert.id, AlertEvent.action == "case_opened")
                .order_by(AlertEvent.id.desc())
                .limit(1)
            )
            if isinstance(case_id, dict) and case_id.get("case_id"):
                case_row = session.get(Case, case_id["case_id"])
    found_at, found_age = _raising_visit(session, alert, events)
    return AlertDetail(
        alert=alert, events=events, assignees=assignees, now=now or utcnow(), case=case_row,
        found_at=found_at, found_age=found_age,
    )  # fmt: skip


def _raising_visit(
    session: Session, alert: Alert, events: list[AlertEvent]
) -> tuple[dt.datetime | None, int | None]:
    """When the visit that raised ``alert`` happened, and the age it recorded: the visit of the
    classification its ``raised`` event names."""
    raised = next((e for e in events if e.action == "raised"), None)
    classification_id = (raised.detail or {}).get("classification_id") if raised else None
    if classification_id is None:
        return None, None
    row = session.execute(
        select(Visit.visited_at, ChildVisit.age)
        .join(ChildVisit, ChildVisit.visit_id == Visit.id)
        .join(Classification, Classification.child_visit_id == ChildVisit.id)
        .where(Classification.id == classification_id)
    ).first()
    return (row.visited_at, row.age) if row is not None else (None, None)


def eligible_assignees(session: Session, alert: Alert) -> list[User]:
    """Active officers and supervisors whose scope covers the alert's village, by username."""
    if alert.village_id is None:
        return []
    area_id = session.scalar(select(Village.area_id).where(Village.id == alert.village_id))
    areas = _ancestor_area_ids(session, area_id)
    covering = select(UserScope.user_id).where(
        or_(UserScope.village_id == alert.village_id, UserScope.area_id.in_(areas))
    )
    return _assignable_among(session, covering)


def bulk_assignees(session: Session, user: User) -> list[User]:
    """Who the alerts of ``user``'s queue may be assigned to, for the bulk form: the active
    officers and supervisors whose scope meets ``user``'s (an area of it, an area above one, or
    a village in it), by username. Each alert is still checked against its village on assigning.
    """
    parts = scope_parts(session, user)
    if parts is None:
        return []
    area_ids, village_ids = parts
    above: set[int] = set()
    own_areas = {s.area_id for s in user.scopes if s.area_id is not None}
    if village_ids:
        own_areas.update(
            session.scalars(select(Village.area_id).where(Village.id.in_(village_ids)))
        )
    for area_id in own_areas:
        above.update(_ancestor_area_ids(session, area_id))
    villages_of_areas = select(Village.id).where(Village.area_id.in_(sorted(area_ids)))
    meets = or_(
        UserScope.area_id.in_(sorted(area_ids | above)),
        UserScope.village_id.in_(sorted(village_ids)),
        UserScope.village_id.in_(villages_of_areas),
    )
    return _assignable_among(session, select(UserScope.user_id).where(meets))


def _assignable_among(session: Session, user_ids) -> list[User]:
    """The active officers and supervisors among ``user_ids`` (a select of ids), by username."""
    return list(
        session.scalars(
            select(User)
            .where(
                User.active.is_(True),
                User.role.in_(ASSIGNABLE_ROLES),
                User.id.in_(user_ids),
            )
            .order_by(User.username)
        )
    )


# --- a child's record ----------------------------------------------------------------------------


def child_record(
    session: Session, user: User, child_uid: str, *, include_name: bool = False
) -> dict | None:
    """What the visits found about a child, how each was classified, and the child's alerts.

    None unless ``user`` is an officer or supervisor (or an admin with a scope) whose scope
    covers the village of the child's household. Visits come newest first, each with its
    classifications (the current one first, then the history); the name is left out unless
    ``include_name`` (the web page for the officer; the API gives the pseudonymous id only).
    Every read is written to the ``clms.audit`` log. The id of a record merged into another
    (:mod:`clms.cases.duplicates`) gives the record of the child it was merged into: its
    ``child_id`` differs from the one asked, and ``merged_ids`` lists the records merged into it.
    """
    if user.role not in SCOPED_ROLES:
        return None
    row = _child_row(session, child_uid)
    if row is None:
        return None
    child, household, village = row
    if not village_in_scope(session, user, village.id, village.area_id):
        return None
    record_read(session, user, "child.read", f"child:{child.child_uid}")

    visits = session.execute(
        select(ChildVisit, Visit, Village.code)
        .join(Visit, Visit.id == ChildVisit.visit_id)
        .outerjoin(Village, Village.id == Visit.village_id)
        .where(ChildVisit.child_id == child.id)
        .order_by(Visit.visited_at.desc(), Visit.id.desc())
    ).all()
    by_child_visit = _classifications_by_child_visit(session, child)
    alerts = session.scalars(
        select(Alert).where(Alert.child_id == child.id).order_by(Alert.created_at.desc(), Alert.id)
    ).all()
    now = utcnow()
    record = {
        "child": {
            "child_id": child.child_uid,
            "sex": child.sex,
            "birth_year": child.birth_year,
            "household_code": household.code,
            "village": village.code,
            "village_name": village.name,
            "merged_ids": list(
                session.scalars(
                    select(Child.child_uid)
                    .where(Child.merged_into_id == child.id)
                    .order_by(Child.child_uid)
                )
            ),
        },
        "visits": [
            {
                "visited_at": visit.visited_at,
                "kind": visit.kind,
                "current": visit.current,
                "village": village_code,
                "age": cv.age,
                "attends_school": cv.attends_school,
                "work_activities": cv.work_activities,
                "work_hours_7d": cv.work_hours_7d,
                "chore_hours_7d": cv.chore_hours_7d,
                "hazards": cv.hazards,
                "night_work": cv.night_work,
                "injured_12m": cv.injured_12m,
                "worst_form_signs": cv.worst_form_signs,
                "classifications": by_child_visit.get(cv.id, []),
            }
            for cv, visit, village_code in visits
        ],
        "alerts": [
            {
                "id": a.id,
                "status": a.status,
                "category": a.category,
                "severity": a.severity,
                "created_at": a.created_at,
                "due_at": due_at(a),
                "overdue": is_overdue(a, now),
            }
            for a in alerts
        ],
    }
    if include_name:
        record["child"]["name"] = child.name
    return record


def _child_row(session: Session, child_uid: str):
    """``(child, household, village)`` of ``child_uid``, or of the child it was merged into;
    None when there is none."""
    found = (
        select(Child, Household, Village)
        .join(Household, Household.id == Child.household_id)
        .join(Village, Village.id == Household.village_id)
    )
    row = session.execute(found.where(Child.child_uid == child_uid)).first()
    for _hop in range(5):  # a merge re-points earlier merges: one hop, the rest is a guard
        if row is None or row[0].merged_into_id is None:
            break
        row = session.execute(found.where(Child.id == row[0].merged_into_id)).first()
    return row


def _classifications_by_child_visit(session: Session, child: Child) -> dict[int, list[dict]]:
    """Every classification of ``child``, by child visit: the current one first, then the
    history."""
    by_child_visit: dict[int, list[dict]] = {}
    classified = session.execute(
        select(Classification, CountryProfile.code, CountryProfile.version)
        .join(CountryProfile, CountryProfile.id == Classification.profile_id)
        .where(Classification.child_id == child.id)
        .order_by(
            Classification.current.desc(), Classification.classified_at.desc(), Classification.id
        )
    )
    for c, profile_code, profile_version in classified:
        by_child_visit.setdefault(c.child_visit_id, []).append(
            {
                "id": c.id,
                "current": c.current,
                "category": c.category,
                "sdg_871": c.sdg_871,
                "reasons": c.reasons,
                "risk_factors": c.risk_factors,
                "rule_set_version": c.rule_set_version,
                "profile": {"code": profile_code, "version": profile_version},
                "classified_at": c.classified_at,
                "change_reason": c.change_reason,
            }
        )
    return by_child_visit


# --- helpers -------------------------------------------------------------------------------------


def _invalid(parameter: str, detail: str) -> Problem:
    return problem("request.invalid_parameter", parameter=parameter, detail=detail)


def _scope_condition(session: Session, user: User) -> ColumnElement[bool] | None:
    """SQL: the alert's village is in ``user``'s scope; None when the scope is empty.

    Even a national scope keeps the condition: it gives the village index column an equality
    (IN), so the severity after it in ``ix_alerts_scope_queue`` still narrows the range.
    """
    return village_scope_condition(session, user, Alert.village_id)


def _village_scope_condition(session: Session, user: User) -> ColumnElement[bool] | None:
    parts = scope_parts(session, user)
    if parts is None:
        return None
    area_ids, village_ids = parts
    return or_(Village.area_id.in_(sorted(area_ids)), Village.id.in_(sorted(village_ids)))


def _ancestor_area_ids(session: Session, area_id: int | None) -> list[int]:
    parents = dict(session.execute(select(Area.id, Area.parent_id)).all())
    found = []
    while area_id is not None and area_id not in found:
        found.append(area_id)
        area_id = parents.get(area_id)
    return found
