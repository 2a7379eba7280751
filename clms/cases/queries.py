"""Reading cases: the case list, everything a case page shows, and a provider's referrals.

Who sees what (domain.md section 1): officers and supervisors see the cases of the villages in
their scope (an administrator only with such a scope); a provider sees only the referrals sent
to its organisation, and of each child only what the consent covers (``Referral.shared``).
Out of scope is the same as missing: None. Reading a case page is written to the audit log.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import Session, joinedload

from clms.audit import record_read
from clms.cases import ages
from clms.cases import workflow as wf
from clms.cases.entities import Conflict, conflict_of
from clms.cases.inputs import fits_age, offers
from clms.cases.records import current_plan, facts_of, get_case
from clms.cases.signs import digest, signs_of
from clms.cases.transfer import TRANSFER_SHAREABLE
from clms.cases.withdrawn import flags_of
from clms.errors import problem
from clms.keyset import read_page
from clms.models import (
    ActionPlan,
    Alert,
    Area,
    Assessment,
    Case,
    CaseEvent,
    CaseTransfer,
    Child,
    Consent,
    Household,
    PlannedService,
    Referral,
    ServiceProvider,
    ServiceType,
    User,
    UserScope,
    Village,
    utcnow,
)
from clms.paging import Cursors, Key, Page, Paging
from clms.scope import village_scope_condition

PER_PAGE = 50
MAX_PER_PAGE = 200
#: the case list's pages; a refusal's detail stays English on the web page, as it was
CASE_PAGING = Paging(PER_PAGE, MAX_PER_PAGE, plain=True)
#: a provider's referrals, 50 a page
REFERRAL_PAGING = Paging(PER_PAGE, plain=True)
#: the case list's keys (``?after=``, ``?before=``): (overdue last, no step deadline, the step
#: deadline, opened, id)
CASE_CURSORS = Cursors("cases", {"due": ("int", "int", "datetime?", "datetime", "int")})
#: a provider's referrals' keys: (waiting first, the answer's deadline, id)
REFERRAL_CURSORS = Cursors("referrals", {"waiting": ("int", "datetime", "int")})
#: ``state`` filter values: the open ones (default), all, or one state
STATE_FILTERS = ("open", "all", *wf.STATES)


@dataclass
class CaseRow:
    """One line of the case list."""

    id: int
    case_number: str
    child_uid: str
    first_name: str
    village_code: str | None
    village_name: str | None
    state: str
    category: str | None
    risk_level: str | None
    officer: str | None
    opened_at: dt.datetime
    step_due_at: dt.datetime | None
    next_followup_due_at: dt.datetime | None
    overdue: bool


@dataclass
class CasePage(Page[CaseRow]):
    """One page of the case list."""

    per_page: int = PER_PAGE
    now: dt.datetime | None = None


def _invalid(parameter: str, detail: str):
    return problem("request.invalid_parameter", parameter=parameter, detail=detail)


def overdue_case_condition(now: dt.datetime):
    """SQL: an open case past its step deadline or its follow-up date."""
    return and_(
        Case.state.in_(wf.OPEN_STATES),
        or_(
            and_(Case.step_due_at.is_not(None), Case.step_due_at < now),
            and_(Case.next_followup_due_at.is_not(None), Case.next_followup_due_at < now),
        ),
    )


def case_list_conditions(
    session: Session,
    user: User,
    *,
    state: str | None = None,
    village: str | None = None,
    mine: bool = False,
    overdue: bool | None = None,
    q: str | None = None,
    now: dt.datetime,
) -> list | None:
    """The SQL conditions of the case list's filters (:func:`list_cases`) and of ``user``'s
    scope, on ``Case``; None for a user with no scope. A filter naming nothing known is a
    ``request.invalid_parameter``."""
    state = state or "open"
    if state not in STATE_FILTERS:
        raise _invalid("state", f"must be one of {', '.join(STATE_FILTERS)}")
    scope = village_scope_condition(session, user, Case.village_id)
    if scope is None:
        return None
    where = [scope]
    if state == "open":
        where.append(Case.state.in_(wf.OPEN_STATES))
    elif state != "all":
        where.append(Case.state == state)
    if village:
        village_id = session.scalar(select(Village.id).where(Village.code == village))
        if village_id is None:
            raise _invalid("village", f"names no known village ({village!r})")
        where.append(Case.village_id == village_id)
    if mine:
        where.append(Case.officer_id == user.id)
    late = overdue_case_condition(now)
    if overdue is True:
        where.append(late)
    elif overdue is False:
        where.append(~late)
    text = (q or "").strip()
    if text:
        where.append(
            or_(
                Case.case_number == text.upper(),
                Case.child_id.in_(select(Child.id).where(Child.child_uid == text.upper())),
            )
        )
    return where


def list_cases(
    session: Session,
    user: User,
    *,
    state: str | None = None,
    village: str | None = None,
    mine: bool = False,
    overdue: bool | None = None,
    q: str | None = None,
    page: int = 1,
    per_page: int = PER_PAGE,
    key: Key | None = None,
    now: dt.datetime | None = None,
) -> CasePage:
    """One page of the cases ``user`` may see: overdue first, then by the step deadline (the
    soonest first), then the newest. ``state`` is one of :data:`STATE_FILTERS` (default open);
    ``q`` finds a case number or a child's pseudonymous id; ``mine``: the user's own cases.

    Two queries: the count, and the page with what its rows show (the child's first name, no
    more, as on a monitor's phone). ``key`` (:data:`CASE_CURSORS`, from ``?after=`` or
    ``?before=``) reads the page after (before) a row by its sort values, however deep.
    """
    now = now or utcnow()
    window = CASE_PAGING.check(page if key is None else 1, per_page)
    where = case_list_conditions(
        session, user, state=state, village=village, mine=mine, overdue=overdue, q=q, now=now
    )
    if where is None:
        return CasePage(rows=[], total=0, page=1, pages=1, per_page=per_page, now=now)
    late = overdue_case_condition(now)
    total = session.scalar(select(func.count()).select_from(Case).where(*where)) or 0
    late_first = case((late, 0), else_=1)
    no_deadline = case((Case.step_due_at.is_(None), 1), else_=0)
    order = [(late_first, False), (no_deadline, False), (Case.step_due_at, False),
             (Case.opened_at, True), (Case.id, True)]  # fmt: skip
    statement = (
        select(
            Case.id, Case.case_number, Child.child_uid, Child.name, Village.code, Village.name,
            Case.state, Case.category, Case.risk_level, User.username, Case.opened_at,
            Case.step_due_at, Case.next_followup_due_at, late.label("late"),
        )
        .join(Child, Child.id == Case.child_id)
        .outerjoin(Village, Village.id == Case.village_id)
        .outerjoin(User, User.id == Case.officer_id)
        .where(*where)
    )  # fmt: skip
    found = read_page(session, statement, order, cursors=CASE_CURSORS, name="due", key=key,
                      window=window, total=total)  # fmt: skip
    page, rows = found.page, found.rows
    if rows:  # children's first names: a read of child-level data
        record_read(session, user, "cases.list", "cases", page=page, cases=[r[1] for r in rows])
    return CasePage(
        rows=[
            CaseRow(
                id=r[0],
                case_number=r[1],
                child_uid=r[2],
                first_name=_first_name(r[3]),
                village_code=r[4],
                village_name=r[5],
                state=r[6],
                category=r[7],
                risk_level=r[8],
                officer=r[9],
                opened_at=r[10],
                step_due_at=r[11],
                next_followup_due_at=r[12],
                overdue=bool(r[13]),
            )  # fmt: skip
            for r in rows
        ],
        total=total,
        page=page,
        pages=window.pages(total),
        per_page=per_page,
        now=now,
        next_key=found.next_key,
        previous_key=found.previous_key,
    )


def _first_name(name: str | None) -> str:
    return (name or "").split()[0] if (name or "").split() else ""


@dataclass(frozen=True)
class CaseVisit:
    """One visit of a case as its page lists it: a monitor's (``household`` or ``followup``,
    with the category it was classified) or the officer's ``verification`` (``confirmed``)."""

    visited_at: dt.datetime
    kind: str
    category: str | None
    child_present: bool | None
    confirmed: bool | None = None


@dataclass
class CaseView:
    """Everything the case page shows, and what the person may do on it."""

    case: Case
    child: Child
    household: Household | None
    village: Village | None
    area: Area | None
    age: ages.ChildAge  # at the latest visit that recorded it, and now
    alert: Alert | None
    facts: wf.CaseFacts
    moves: dict[str, object]  # move -> None (allowed) or why not (Msg)
    closure_holds: bool
    closure_unmet: list
    assessments: list[Assessment]
    plan: ActionPlan | None
    plans: list[ActionPlan]
    services: list[PlannedService]
    referrals: list[Referral]
    consents: list[Consent]
    transfers: list[CaseTransfer]
    events: list[CaseEvent]
    catalogue: dict[str, ServiceType]
    providers: list[ServiceProvider]
    officers: list[User]
    monitors: list[User]
    now: dt.datetime
    people: dict[int, str] = field(default_factory=dict)  # user id -> username, for the timeline
    # signs of a worst form or of trafficking anywhere in the child's record (clms.cases.signs)
    signs: list = field(default_factory=list)
    # submissions behind the case that their server withdrew (clms.cases.withdrawn.FlagView)
    withdrawals: list = field(default_factory=list)
    # phones that updated the case from the same version (clms.cases.entities), until resolved
    entity_conflict: Conflict | None = None

    @property
    def open_withdrawals(self) -> list:
        return [w for w in self.withdrawals if w.open]

    @property
    def signs_digest(self) -> str:
        """The fingerprint of the signs shown, sent back with their acknowledgement."""
        return digest(self.signs)

    @property
    def step(self) -> int:
        return wf.STEP_NUMBER[self.case.state]

    @property
    def overdue(self) -> bool:
        c = self.case
        if c.state not in wf.OPEN_STATES:
            return False
        late = c.step_due_at is not None and c.step_due_at < self.now
        return late or (c.next_followup_due_at is not None and c.next_followup_due_at < self.now)

    @property
    def visits(self) -> list[CaseVisit]:
        """The visits of the case, oldest first: the officer's verification visit (once
        recorded) and the monitors' visits that saw the child since the case opened."""
        found = [
            CaseVisit(o.visited_at, "followup" if o.followup else "household", o.category,
                      o.child_present if o.followup else True)
            for o in self.facts.observations
        ]  # fmt: skip
        c = self.case
        if c.verified_at is not None:
            found.append(CaseVisit(c.verified_at, "verification", None, True,
                                   confirmed=c.verification == "confirmed"))  # fmt: skip
        return sorted(found, key=lambda v: v.visited_at)

    @property
    def latest_assessment(self) -> Assessment | None:
        return self.assessments[0] if self.assessments else None

    @property
    def urgent(self) -> bool:
        """Whether the page leads with urgent protection: a worst form, or a child in danger."""
        latest = self.latest_assessment
        in_danger = latest is not None and latest.immediate_safety == "in_danger"
        return self.case.state in wf.OPEN_STATES and (
            self.case.category == "worst_form" or in_danger
        )

    @property
    def urgent_services(self) -> list[ServiceType]:
        """The urgent services for this child (its age), in the catalogue's order."""
        return [s for s in self.services_for_child if s.urgent]

    @property
    def services_for_child(self) -> list[ServiceType]:
        """The active services of the catalogue whose age range takes this child."""
        return [s for s in self.catalogue.values() if s.active and fits_age(s, self.age.now)]

    @property
    def services_not_for_child(self) -> list[ServiceType]:
        """The active services this child is too young or too old for (said on the forms)."""
        return [s for s in self.catalogue.values() if s.active and not fits_age(s, self.age.now)]

    def providers_for(self, service_code: str | None) -> list[ServiceProvider]:
        """The providers serving the case's area that deliver ``service_code``."""
        if not service_code:
            return []
        return [p for p in self.providers if offers(p, service_code)]

    def may(self, move: str) -> bool:
        return move in self.moves and self.moves[move] is None

    def active_consent(self, provider_id: int) -> Consent | None:
        for c in self.consents:
            if c.provider_id == provider_id and c.withdrawn_at is None:
                return c
        return None

    def open_referral(self, planned_service_id: int) -> Referral | None:
        for r in self.referrals:
            if r.planned_service_id == planned_service_id and r.status in ("pending", "accepted"):
                return r
        return None


def case_view(
    session: Session,
    user: User,
    case_id: int,
    *,
    now: dt.datetime | None = None,
    policy: wf.Policy | None = None,
) -> CaseView | None:
    """The case page of ``case_id`` for ``user`` (its moves and closure criteria by the
    workflow's settings ``policy``; None: the defaults); None when out of scope."""
    now = now or utcnow()
    case_row = get_case(session, user, case_id)
    if case_row is None:
        return None
    record_read(session, user, "case.read", f"case:{case_row.case_number}")
    child = case_row.child
    household = session.get(Household, child.household_id)
    village = case_row.village
    area = session.get(Area, village.area_id) if village else None
    facts = facts_of(session, case_row)
    moves = wf.allowed_moves(facts, wf.Actor(user.role, user.id), policy=policy)
    holds, unmet = wf.closure_criteria(
        facts.observations, facts.services, facts.open_referrals, policy
    )
    plans = _of_case(session, ActionPlan, case_row.id, ActionPlan.version.desc())
    plan = current_plan(session, case_row.id)
    services = _of_case(session, PlannedService, case_row.id, PlannedService.id,
                        load=PlannedService.provider)  # fmt: skip
    referrals = _of_case(session, Referral, case_row.id, Referral.created_at.desc(),
                         Referral.id.desc(), load=Referral.provider)  # fmt: skip
    consents = _of_case(session, Consent, case_row.id, Consent.recorded_at.desc(),
                        Consent.id.desc(), load=Consent.provider)  # fmt: skip
    transfers = _of_case(session, CaseTransfer, case_row.id, CaseTransfer.transferred_at)
    events = _of_case(session, CaseEvent, case_row.id, CaseEvent.at, CaseEvent.id)
    assessments = _of_case(session, Assessment, case_row.id, Assessment.assessed_at.desc(),
                           Assessment.id.desc())  # fmt: skip
    people = _usernames(
        session,
        {e.user_id for e in events if e.user_id}
        | {a.assessed_by_id for a in assessments if a.assessed_by_id},
    )
    catalogue = {s.code: s for s in session.scalars(
        select(ServiceType).order_by(ServiceType.sort_order, ServiceType.code))}  # fmt: skip
    providers = _providers_for(session, area)
    officers, monitors = _people_of_village(session, village)
    return CaseView(
        case=case_row, child=child, household=household, village=village, area=area,
        age=ages.child_age(session, case_row.child_id, now.date()),
        alert=session.get(Alert, case_row.alert_id) if case_row.alert_id else None,
        facts=facts, moves=moves, closure_holds=holds, closure_unmet=unmet,
        assessments=assessments, plan=plan, plans=plans, services=services,
        referrals=referrals, consents=consents, transfers=transfers, events=events,
        catalogue=catalogue, providers=providers, officers=officers, monitors=monitors,
        now=now, people=people, signs=signs_of(session, case_row),
        withdrawals=flags_of(session, case_row.id),
        entity_conflict=conflict_of(session, case_row.id),
    )  # fmt: skip


def _of_case(session: Session, model, case_id: int, *order, load=None) -> list:
    """The rows of ``model`` that belong to case ``case_id``, in ``order`` (``load``: a
    relationship read with them)."""
    query = select(model).where(model.case_id == case_id).order_by(*order)
    if load is not None:
        query = query.options(joinedload(load))
    return list(session.scalars(query))


def _usernames(session: Session, user_ids: set[int]) -> dict[int, str]:
    """The username of each of ``user_ids``."""
    if not user_ids:
        return {}
    return dict(session.execute(select(User.id, User.username).where(User.id.in_(user_ids))).all())


def _providers_for(session: Session, area: Area | None) -> list[ServiceProvider]:
    """The active providers that serve ``area``: those of no area, of it or of an area above."""
    return list(
        session.scalars(
            select(ServiceProvider)
            .where(
                ServiceProvider.active.is_(True),
                or_(
                    ServiceProvider.area_id.is_(None),
                    ServiceProvider.area_id.in_(_area_and_ancestors(session, area)),
                ),
            )
            .order_by(ServiceProvider.name)
        )
    )


def _area_and_ancestors(session: Session, area: Area | None) -> list[int]:
    if area is None:
        return []
    parents = dict(session.execute(select(Area.id, Area.parent_id)).all())
    found, current = [], area.id
    while current is not None and current not in found:
        found.append(current)
        current = parents.get(current)
    return found


def _people_of_village(session: Session, village: Village | None) -> tuple[list[User], list[User]]:
    """Active officers/supervisors and monitors who work in the village."""
    if village is None:
        return [], []
    areas = _area_and_ancestors(session, session.get(Area, village.area_id))
    covering = select(UserScope.user_id).where(
        or_(UserScope.village_id == village.id, UserScope.area_id.in_(areas))
    )
    users = list(
        session.scalars(
            select(User).where(User.active.is_(True), User.id.in_(covering)).order_by(User.username)
        )
    )
    return (
        [u for u in users if u.role in ("officer", "supervisor")],
        [u for u in users if u.role == "monitor"],
    )


# --- the provider's referrals ------------------------------------------------------------------


@dataclass
class ProviderReferral:
    """A referral as its provider sees it: the service, the deadlines and only the items of the
    child that the consent covers (``child``: item -> value)."""

    referral: Referral
    case_number: str
    child_uid: str
    service: ServiceType | None
    child: dict[str, object]
    assessment_summary: dict | None = None
    overdue: bool = False  # past the answer's deadline, or accepted and past the service's


REFERRAL_FILTERS = ("open", "all", "pending", "accepted", "rejected", "done", "revoked")


def provider_referrals(
    session: Session,
    user: User,
    *,
    status: str | None = None,
    page: int = 1,
    key: Key | None = None,
    per_page: int = PER_PAGE,
) -> Page[ProviderReferral]:
    """One page of the referrals sent to ``user``'s organisation, waiting ones first (the
    soonest answer due first); a page past the last is the last. ``key``
    (:data:`REFERRAL_CURSORS`) reads the page after (before) a row by its sort values."""
    status = status or "open"
    if status not in REFERRAL_FILTERS:
        raise _invalid("status", f"must be one of {', '.join(REFERRAL_FILTERS)}")
    window = REFERRAL_PAGING.check(page if key is None else 1, per_page)
    if user.role != "provider" or user.provider_id is None:
        return Page([], 0, 1, 1, window.per_page)
    where = [Referral.provider_id == user.provider_id]
    if status == "open":
        where.append(Referral.status.in_(("pending", "accepted")))
    elif status != "all":
        where.append(Referral.status == status)
    total = session.scalar(select(func.count()).select_from(Referral).where(*where)) or 0
    waiting = case((Referral.status == "pending", 0), (Referral.status == "accepted", 1), else_=2)
    order = [(waiting, False), (Referral.respond_by, False), (Referral.id, False)]
    found = read_page(session, select(Referral).where(*where), order, cursors=REFERRAL_CURSORS,
                      name="waiting", key=key, window=window, total=total)  # fmt: skip
    referrals = [row[0] for row in found.rows]
    if referrals:
        record_read(session, user, "referrals.list", "referrals", ids=[r.id for r in referrals])
    return Page([provider_view(session, r) for r in referrals], total, found.page,
                window.pages(total), window.per_page, next_key=found.next_key,
                previous_key=found.previous_key)


def provider_referral(session: Session, user: User, referral_id: int) -> ProviderReferral | None:
    """One referral sent to ``user``'s organisation, else None."""
    if user.role != "provider" or user.provider_id is None:
        return None
    referral = session.get(Referral, referral_id)
    if referral is None or referral.provider_id != user.provider_id:
        return None
    record_read(session, user, "referral.read", f"referral:{referral.id}")
    return provider_view(session, referral)


def provider_view(
    session: Session, referral: Referral, now: dt.datetime | None = None
) -> ProviderReferral:
    """What the provider may see of the referral's child (the items in ``referral.shared``),
    and whether the referral is overdue at ``now``."""
    case_row = session.get(Case, referral.case_id)
    child = session.get(Child, case_row.child_id)
    shared = set(referral.shared or [])
    items: dict[str, object] = {}
    if "full_name" in shared:
        items["full_name"] = child.name
    elif "first_name" in shared:
        items["first_name"] = _first_name(child.name)
    if "age" in shared:
        # the age today only: not the date of a monitoring visit, nor whether a date of birth
        # is on file (the consent shares an age, not the record's dates)
        age = ages.child_age(session, case_row.child_id, (now or utcnow()).date())
        items["age"] = ages.ChildAge(seen=None, seen_on=None, now=age.now)
    if "sex" in shared:
        items["sex"] = child.sex
    if "village" in shared and case_row.village_id:
        village = session.get(Village, case_row.village_id)
        items["village"] = f"{village.name} ({village.code})"
    if "household_head" in shared:
        household = session.get(Household, child.household_id)
        items["household_head"] = household.head_name if household else None
    summary = None
    if "assessment_summary" in shared:
        latest = session.scalar(
            select(Assessment)
            .where(Assessment.case_id == case_row.id)
            .order_by(Assessment.assessed_at.desc(), Assessment.id.desc())
            .limit(1)
        )
        if latest is not None:
            summary = {
                "risk_level": latest.risk_level,
                "schooling": latest.schooling,
                "immediate_safety": latest.immediate_safety,
                "response_level": latest.response_level,
            }
    service = session.scalar(select(ServiceType).where(ServiceType.code == referral.service_code))
    return ProviderReferral(
        referral=referral,
        case_number=case_row.case_number,
        child_uid=child.child_uid,
        service=service,
        child=items,
        assessment_summary=summary,
        overdue=wf.referral_overdue(referral.status, referral.respond_by, referral.complete_by,
                                    now or utcnow()),
    )


def child_cases_by_uid(session: Session, child_uid: str) -> list[Case]:
    """Every case of the child with this pseudonymous id, newest first (for the child's page,
    whose scope is already checked)."""
    return list(
        session.scalars(
            select(Case)
            .join(Child, Child.id == Case.child_id)
            .where(Child.child_uid == child_uid)
            .order_by(Case.opened_at.desc())
        )
    )


__all__ = [
    "STATE_FILTERS",
    "TRANSFER_SHAREABLE",
    "CasePage",
    "CaseView",
    "case_view",
    "child_cases_by_uid",
    "list_cases",
    "provider_referral",
    "provider_referrals",
]
