"""The home page of each role: the work waiting for the person, most urgent first.

:func:`home_of` gives a :class:`Home`: sections (overdue alerts, cases due, referrals to answer,
plans to approve, submissions held for review, ...), each with how many items wait and the first
few of them, most urgent first. Everything is read within the person's scope, as their lists
read it (:func:`clms.scope.village_scope_condition`; a provider: its organisation's referrals);
nothing is changed. The views turn each section into a title, its count, its lines and a link to
the list that holds all of it.

What a section holds (``now``: the time of the request):

* officer: ``alerts_overdue`` (active alerts of the officer's villages past a deadline),
  ``alerts_new`` (every new one, overdue or not, as the alert list counts them),
  ``cases_overdue`` (the officer's open cases past
  their step's deadline or their follow-up date), ``cases_withdrawn`` (their open cases flagged
  because a submission behind them was withdrawn by its server, the flag not yet acknowledged:
  :mod:`clms.cases.withdrawn`), ``cases_conflict`` (their open cases that phones updated from
  the same version, the conflict not yet resolved: :mod:`clms.cases.entities`), ``cases_due``
  (step due within :data:`DUE_SOON`), ``plans_returned`` (their cases whose plan a supervisor
  returned, to revise), ``followups_due`` (follow-up visit due within :data:`FOLLOWUP_SOON`),
  ``referrals_overdue`` (referrals of the officer's cases not answered by their deadline, or
  accepted and not done by their completion date), ``referrals_answered`` (accepted or rejected
  within :data:`ANSWERED_RECENTLY`), ``notes_for_you`` (case notes addressed to the person that
  they have not opened, newest first: :func:`clms.notices.reading.unread_notes`);
* supervisor: ``plans_to_approve``, ``closures_to_approve``, ``escalations`` (escalated alerts
  still active, escalated case steps still open, escalated referrals still unanswered or not
  done), ``notes_for_you``, ``alerts_overdue``, and the team's workload
  (:attr:`Home.team`: open and overdue cases per officer);
* provider: ``referrals_overdue``, ``referrals_to_answer`` (with the answer's deadline),
  ``services_to_record`` (accepted, the service not yet recorded);
* monitor: ``followups_due`` in the monitor's villages;
* admin: ``submissions_held``, ``sources_failing``, ``jobs_failed``, ``mail_failed``,
  ``accounts_locked``, ``keys_missing`` (encrypted submissions waiting for their form's key).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import case, func, or_, select
from sqlalchemy.orm import Session

from alerts.escalate import overdue_referral_condition
from alerts.queue import overdue_condition
from clms.audit import record_read
from clms.cases import workflow as wf
from clms.cases.queries import overdue_case_condition
from clms.i18n import Msg
from clms.models import (
    ActionPlan,
    Alert,
    Case,
    CaseEntity,
    CaseWithdrawal,
    Child,
    EncryptedSubmission,
    Form,
    JobRun,
    LoginThrottle,
    Notification,
    PullSource,
    Referral,
    ServiceProvider,
    User,
    Village,
    utcnow,
)
from clms.notices.reading import unread_notes
from clms.scope import parts_condition, scope_parts, village_ids_in_scope
from forms.reasons import summary
from forms.review import any_held, review_queue

#: how many lines a section shows (its count says how many there are)
SHOWN = 5
#: a step due within this is "due soon"
DUE_SOON = dt.timedelta(days=3)
#: a follow-up visit due within this is on the list
FOLLOWUP_SOON = dt.timedelta(days=7)
#: a referral answered within this is news to its officer
ANSWERED_RECENTLY = dt.timedelta(days=7)

_ACTIVE = ("new", "acknowledged")
#: referrals by their next deadline: those waiting for an answer by its deadline, then the
#: accepted ones by their completion date (a CASE of one type, so both databases sort alike)
_NEXT_DEADLINE = (
    Referral.status != "pending",
    case((Referral.status == "pending", Referral.respond_by)),
    Referral.complete_by,
    Referral.id,
)


@dataclass
class Line:
    """One item of work: what it is (``kind``: alert, case, referral, submission, source, job,
    mail, account, form), its id, what identifies it to a person (``title``: a case number, a
    child's pseudonymous id, a username), a word of state (``what``: a severity, a case step, a
    referral status, a reason code), its deadline and whether that has passed."""

    kind: str
    id: int | str
    title: str
    what: str = ""
    due: dt.datetime | dt.date | None = None
    overdue: bool = False
    more: str | Msg = ""  # a Msg is shown in the reader's language
    #: a case's version, for a decision taken from the home page (a plan to approve)
    version: int | None = None


@dataclass
class Section:
    """Work of one kind: how many items wait, and the first :data:`SHOWN` of them."""

    key: str
    count: int
    lines: list[Line]
    urgent: bool = False


@dataclass
class Workload:
    """An officer's open and overdue cases (a supervisor's team)."""

    officer_id: int | None
    officer: str | None
    open: int
    overdue: int


@dataclass
class Home:
    """A person's home page: sections of work (empty sections left out), most urgent first."""

    role: str
    now: dt.datetime
    sections: list[Section] = field(default_factory=list)
    team: list[Workload] = field(default_factory=list)

    @property
    def waiting(self) -> int:
        """How many items the sections count in all (an item in two sections counts twice)."""
        return sum(s.count for s in self.sections)


def home_of(session: Session, user: User, *, now: dt.datetime | None = None) -> Home:
    """The work waiting for ``user`` at ``now``, by their role (a brand has none here: its work
    is its map)."""
    now = now or utcnow()
    home = Home(user.role, now)
    build = {
        "officer": _officer,
        "supervisor": _supervisor,
        "provider": _provider,
        "monitor": _monitor,
        "admin": _admin,
    }.get(user.role)
    if build is not None:
        sections = build(session, user, now, home)
        home.sections = [s for s in sections if s.count]
        _record_read(session, user, home)
    return home


def _record_read(session: Session, user: User, home: Home) -> None:
    """Audit what the page shows of children's records (alerts and cases by their pseudonymous
    ids and numbers, referrals), as the lists it links to do."""
    shown: dict[str, list] = {"alert": [], "case": [], "referral": []}
    for section in home.sections:
        for line in section.lines:
            # a case by its number (a note's line is its case's)
            value = line.title if line.kind in ("case", "note") else line.id
            kind = "case" if line.kind == "note" else line.kind
            if kind in shown and value not in shown[kind]:
                shown[kind].append(value)
    if any(shown.values()):
        record_read(session, user, "home.read", "home", alerts=shown["alert"],
                    cases=shown["case"], referrals=shown["referral"])  # fmt: skip


# --- officers and supervisors --------------------------------------------------------------------


def _officer(session: Session, user: User, now: dt.datetime, home: Home) -> list[Section]:
    mine = Case.officer_id == user.id
    parts = scope_parts(session, user)  # the scope's areas read once for every section
    villages = parts_condition(parts, Case.village_id)
    # a submission behind the case was withdrawn by its server: the officer reads the flag
    unread = select(CaseWithdrawal.case_id).where(
        CaseWithdrawal.acknowledged_at.is_(None), CaseWithdrawal.restored_at.is_(None)
    )
    flagged = Case.id.in_(unread)
    # phones updated the case from the same version: the officer resolves the conflict
    disagreeing = Case.id.in_(
        select(CaseEntity.case_id).where(CaseEntity.conflict.is_not(None))
    )
    return [
        _alerts(session, parts, now, "alerts_overdue", overdue_condition(now)),
        _alerts(session, parts, now, "alerts_new", Alert.status == "new"),
        _cases(session, parts, now, "cases_overdue", mine, overdue_case_condition(now)),
        _cases(session, parts, now, "cases_withdrawn", mine, flagged),
        _cases(session, parts, now, "cases_conflict", mine, disagreeing),
        _cases(
            session,
            parts,
            now,
            "cases_due",
            mine,
            ~overdue_case_condition(now),
            Case.step_due_at.is_not(None),
            Case.step_due_at <= now + DUE_SOON,
        ),  # fmt: skip
        # a plan the supervisor returned with a note: the officer revises and submits it again
        _cases(session, parts, now, "plans_returned", mine, Case.state == "action_plan",
               Case.id.in_(select(ActionPlan.case_id).where(ActionPlan.status == "returned"))),
        _followups(session, villages, now, mine),
        _referrals_of_cases(
            session, villages, now, "referrals_overdue", mine, overdue_referral_condition(now)
        ),
        _referrals_of_cases(
            session,
            villages,
            now,
            "referrals_answered",
            mine,
            Referral.status.in_(("accepted", "rejected")),
            Referral.responded_at >= now - ANSWERED_RECENTLY,
        ),  # fmt: skip
        _notes(session, user),
        _held_for_review(session, user),
    ]


def _supervisor(session: Session, user: User, now: dt.datetime, home: Home) -> list[Section]:
    parts = scope_parts(session, user)  # the scope's areas read once for every section
    home.team = _team(session, parts, now)
    return [
        _plans_to_approve(session, parts, now),
        _cases(session, parts, now, "closures_to_approve", Case.state == "closure_review"),
        _escalations(session, parts, now),
        _notes(session, user),
        _alerts(session, parts, now, "alerts_overdue", overdue_condition(now)),
        _held_for_review(session, user),
    ]


def _held_for_review(session: Session, user: User, *, urgent: bool = False) -> Section:
    """The submissions held for review that ``user`` sees (a reviewer: those of their villages;
    an administrator: all), the oldest first: exactly the review queue's first page
    (:func:`forms.review.review_queue`)."""
    if not any_held(session):  # most of the time none is: the scope is not worth reading then
        return Section("submissions_held", 0, [])
    page = review_queue(session, user, state="held", page=1)
    lines = [
        Line("submission", s.id, f"#{s.id}", "", s.received_at, more=summary(s.review_reasons))
        for s in page.rows[:SHOWN]
    ]
    return Section("submissions_held", page.total, lines, urgent=urgent)


def _alerts(session: Session, parts, now: dt.datetime, key: str, *where) -> Section:
    """Alerts of ``user``'s villages: the most severe first, then the oldest."""
    scope = parts_condition(parts, Alert.village_id)
    if scope is None:
        return Section(key, 0, [])
    where = (scope, Alert.status.in_(_ACTIVE), *where)
    count = session.scalar(select(func.count()).select_from(Alert).where(*where)) or 0
    rows = session.execute(
        select(Alert.id, Child.child_uid, Alert.severity, Alert.category, Alert.ack_due_at,
               Alert.acknowledged_at, Alert.visit_due_at, Village.name)
        .outerjoin(Child, Child.id == Alert.child_id)
        .outerjoin(Village, Village.id == Alert.village_id)
        .where(*where)
        .order_by(Alert.severity_rank.desc(), Alert.created_at, Alert.id)
        .limit(SHOWN)
    ).all()  # fmt: skip
    lines = []
    for r in rows:
        due = r.ack_due_at if r.acknowledged_at is None else r.visit_due_at
        lines.append(Line("alert", r.id, r.child_uid or f"#{r.id}", r.severity, due,
                          due is not None and due < now, r.name or ""))  # fmt: skip
    return Section(key, count, lines, urgent=key == "alerts_overdue")


def _cases(session: Session, parts, now: dt.datetime, key: str, *where) -> Section:
    """Open cases of ``user``'s villages: the soonest deadline first."""
    scope = parts_condition(parts, Case.village_id)
    if scope is None:
        return Section(key, 0, [])
    where = (scope, Case.state.in_(wf.OPEN_STATES), *where)
    count = session.scalar(select(func.count()).select_from(Case).where(*where)) or 0
    late = overdue_case_condition(now)
    rows = session.execute(
        select(Case.id, Case.case_number, Case.state, Case.step_due_at,
               Case.next_followup_due_at, late.label("late"), Village.name)
        .outerjoin(Village, Village.id == Case.village_id)
        .where(*where)
        .order_by(Case.step_due_at.is_(None), Case.step_due_at, Case.id)
        .limit(SHOWN)
    ).all()  # fmt: skip
    lines = [
        Line(
            "case",
            r.id,
            r.case_number,
            r.state,
            _soonest(r.step_due_at, r.next_followup_due_at),
            bool(r.late),
            r.name or "",
        )  # fmt: skip
        for r in rows
    ]
    return Section(key, count, lines, urgent=key == "cases_overdue")


def _followups(session: Session, scope, now: dt.datetime, *where) -> Section:
    """Open cases within ``scope`` (SQL, None: nothing) whose follow-up visit is due soon or
    past."""
    if scope is None:
        return Section("followups_due", 0, [])
    where = (scope, Case.state.in_(wf.OPEN_STATES), Case.next_followup_due_at.is_not(None),
             Case.next_followup_due_at <= now + FOLLOWUP_SOON, *where)  # fmt: skip
    count = session.scalar(select(func.count()).select_from(Case).where(*where)) or 0
    rows = session.execute(
        select(Case.id, Case.case_number, Case.next_followup_due_at, Village.name)
        .outerjoin(Village, Village.id == Case.village_id)
        .where(*where)
        .order_by(Case.next_followup_due_at, Case.id)
        .limit(SHOWN)
    ).all()
    lines = [
        Line(
            "case",
            r.id,
            r.case_number,
            "followup",
            r.next_followup_due_at,
            r.next_followup_due_at < now,
            r.name or "",
        )  # fmt: skip
        for r in rows
    ]
    return Section("followups_due", count, lines)


def _referrals_of_cases(session: Session, scope, now: dt.datetime, key: str, *where) -> Section:
    """Referrals of the open cases within ``scope`` (SQL on the case's village; None: nothing)
    that ``where`` picks (by their cases' columns and their own)."""
    if scope is None:
        return Section(key, 0, [])
    where = (scope, Case.state.in_(wf.OPEN_STATES), *where)
    base = select(Referral).join(Case, Case.id == Referral.case_id).where(*where)
    count = session.scalar(select(func.count()).select_from(base.subquery())) or 0
    if key == "referrals_answered":  # news: the latest answer first
        order = (Referral.responded_at.desc(), Referral.id)
    else:  # work: the soonest deadline first, each by its next deadline
        order = _NEXT_DEADLINE
    rows = session.execute(
        select(Referral.id, Referral.case_id, Case.case_number, Referral.status,
               Referral.respond_by, Referral.complete_by, ServiceProvider.name)
        .join(Case, Case.id == Referral.case_id)
        .join(ServiceProvider, ServiceProvider.id == Referral.provider_id)
        .where(*where)
        .order_by(*order)
        .limit(SHOWN)
    ).all()  # fmt: skip
    lines = [
        Line("case", r.case_id, r.case_number, r.status, _referral_due(r), _is_late(r, now), r.name)
        for r in rows
    ]
    return Section(key, count, lines, urgent=key == "referrals_overdue")


def _plans_to_approve(session: Session, parts, now: dt.datetime) -> Section:
    """Plans submitted for a supervisor's approval, in ``user``'s villages, the oldest first."""
    scope = parts_condition(parts, Case.village_id)
    if scope is None:
        return Section("plans_to_approve", 0, [])
    where = (scope, ActionPlan.status == "submitted", Case.state.in_(wf.OPEN_STATES))
    joined = select(ActionPlan.id).join(Case, Case.id == ActionPlan.case_id).where(*where)
    count = session.scalar(select(func.count()).select_from(joined.subquery())) or 0
    rows = session.execute(
        select(
            Case.id,
            Case.case_number,
            Case.risk_level,
            Case.step_due_at,
            Village.name,
            Case.version,
        )  # fmt: skip
        .select_from(ActionPlan)
        .join(Case, Case.id == ActionPlan.case_id)
        .outerjoin(Village, Village.id == Case.village_id)
        .where(*where)
        .order_by(ActionPlan.submitted_at, ActionPlan.id)
        .limit(SHOWN)
    ).all()
    lines = [Line("case", r.id, r.case_number, r.risk_level or "", r.step_due_at,
                  r.step_due_at is not None and r.step_due_at < now, r.name or "", r.version)
             for r in rows]  # fmt: skip
    return Section("plans_to_approve", count, lines, urgent=True)


def _escalations(session: Session, parts, now: dt.datetime) -> Section:
    """Escalated alerts still active and escalated case steps still open, in ``user``'s
    villages: one section, alerts first."""
    alerts = _alerts(session, parts, now, "escalations", Alert.escalated_at.is_not(None))
    cases = _cases(session, parts, now, "escalations", Case.step_escalated_at.is_not(None))
    # a referral escalated by the job stays escalated until the provider answers or records it
    referrals = _referrals_of_cases(
        session, parts_condition(parts, Case.village_id), now, "escalations",
        Referral.escalated_at.is_not(None), Referral.status.in_(("pending", "accepted")),
    )  # fmt: skip
    lines = (alerts.lines + cases.lines + referrals.lines)[:SHOWN]
    count = alerts.count + cases.count + referrals.count
    return Section("escalations", count, lines, urgent=True)


def _notes(session: Session, user: User) -> Section:
    """Case notes addressed to ``user`` that they have not opened, newest first: a line is the
    case's number, who wrote the note and when; it opens the notice (marked read) and the case's
    timeline. Only the person's own notices, so only cases they may open."""
    count, notices = unread_notes(session, user, limit=SHOWN)
    authors = dict(
        session.execute(
            select(User.id, User.username).where(
                User.id.in_({n.actor_id for n in notices if n.actor_id is not None})
            )
        ).all()
    )
    lines = [Line("note", n.id, n.code, "", n.created_at, False, authors.get(n.actor_id, ""))
             for n in notices]  # fmt: skip
    return Section("notes_for_you", count, lines)


def _team(session: Session, parts, now: dt.datetime) -> list[Workload]:
    """Open and overdue cases of each officer in ``user``'s villages (unassigned ones too)."""
    scope = parts_condition(parts, Case.village_id)
    if scope is None:
        return []
    late = overdue_case_condition(now)
    rows = session.execute(
        select(Case.officer_id, User.username, func.count(), func.sum(case((late, 1), else_=0)))
        .outerjoin(User, User.id == Case.officer_id)
        .where(scope, Case.state.in_(wf.OPEN_STATES))
        .group_by(Case.officer_id, User.username)
        .order_by(User.username)
    ).all()  # fmt: skip
    return [Workload(r[0], r[1], r[2], int(r[3] or 0)) for r in rows]


# --- providers and monitors ----------------------------------------------------------------------


def _provider(session: Session, user: User, now: dt.datetime, home: Home) -> list[Section]:
    """The referrals of the provider's organisation, as its referral list counts them."""
    if user.provider_id is None:
        return []
    ours = Referral.provider_id == user.provider_id
    return [
        _referrals(session, now, "referrals_overdue", ours, overdue_referral_condition(now)),
        _referrals(session, now, "referrals_to_answer", ours, Referral.status == "pending"),
        _referrals(session, now, "services_to_record", ours, Referral.status == "accepted"),
    ]


def _referrals(session: Session, now: dt.datetime, key: str, *where) -> Section:
    """A provider's referrals: the soonest deadline first (a line opens the referral)."""
    count = session.scalar(select(func.count()).select_from(Referral).where(*where)) or 0
    rows = session.execute(
        select(Referral.id, Referral.service_code, Referral.status, Referral.respond_by,
               Referral.complete_by, Referral.urgent)
        .where(*where)
        .order_by(Referral.urgent.desc(), *_NEXT_DEADLINE)
        .limit(SHOWN)
    ).all()  # fmt: skip
    lines = [
        Line(
            "referral",
            r.id,
            f"#{r.id}",
            r.status,
            _referral_due(r),
            _is_late(r, now),
            r.service_code,
        )  # fmt: skip
        for r in rows
    ]
    return Section(key, count, lines, urgent=key == "referrals_overdue")


def _monitor(session: Session, user: User, now: dt.datetime, home: Home) -> list[Section]:
    """The follow-up visits of the monitor's villages that are theirs, or nobody's yet: the cases
    their phone lists (:func:`clms.openrosa.media.build_csv`)."""
    villages = village_ids_in_scope(session, user)
    if not villages:
        return []
    theirs = or_(Case.monitor_id == user.id, Case.monitor_id.is_(None))
    return [_followups(session, Case.village_id.in_(sorted(villages)), now, theirs)]


def _is_late(row, now: dt.datetime) -> bool:
    """Whether a referral is past its deadline, for one row (the rule of
    :func:`alerts.escalate.overdue_referral_condition`)."""
    return wf.referral_overdue(row.status, row.respond_by, row.complete_by, now)


def _referral_due(row) -> dt.datetime | dt.date | None:
    """A referral's next deadline: the answer's while it waits, then the service's."""
    return row.respond_by if row.status == "pending" else row.complete_by


def _soonest(*moments: dt.datetime | None) -> dt.datetime | None:
    present = [m for m in moments if m is not None]
    return min(present) if present else None


# --- administrators ------------------------------------------------------------------------------


def _admin(session: Session, user: User, now: dt.datetime, home: Home) -> list[Section]:
    return [
        _held_for_review(session, user, urgent=True),  # every one, for an administrator
        _failing_sources(session),
        _failed_jobs(session),
        _failed_mail(session),
        _locked_accounts(session, now),
        _missing_keys(session),
    ]


def _failing_sources(session: Session) -> Section:
    rows = session.execute(
        select(PullSource.id, PullSource.name, PullSource.last_pull_at, PullSource.last_error)
        .where(PullSource.enabled.is_(True), PullSource.last_error.is_not(None))
        .order_by(PullSource.name)
    ).all()
    lines = [Line("source", r.id, r.name, "", r.last_pull_at, True, r.last_error) for r in rows]
    return Section("sources_failing", len(lines), lines[:SHOWN], urgent=True)


def _failed_jobs(session: Session) -> Section:
    """Jobs whose latest run failed."""
    latest = select(JobRun.job, func.max(JobRun.id).label("id")).group_by(JobRun.job).subquery()
    rows = session.execute(
        select(JobRun.id, JobRun.job, JobRun.started_at, JobRun.error)
        .join(latest, latest.c.id == JobRun.id)
        .where(JobRun.ok.is_(False))
        .order_by(JobRun.job)
    ).all()
    lines = [Line("job", r.id, r.job, "", r.started_at, True, r.error or "") for r in rows]
    return Section("jobs_failed", len(lines), lines[:SHOWN], urgent=True)


def _failed_mail(session: Session) -> Section:
    """Mail that could not be sent (given up after its retries)."""
    where = Notification.status == "failed"
    count = session.scalar(select(func.count()).select_from(Notification).where(where)) or 0
    rows = session.execute(
        select(Notification.id, Notification.kind, Notification.created_at,
               Notification.last_error, User.username)
        .outerjoin(User, User.id == Notification.user_id)
        .where(where)
        .order_by(Notification.created_at.desc(), Notification.id.desc())
        .limit(SHOWN)
    ).all()  # fmt: skip
    lines = [Line("mail", r.id, r.username or "", r.kind, r.created_at, False, r.last_error or "")
             for r in rows]  # fmt: skip
    return Section("mail_failed", count, lines)


def _locked_accounts(session: Session, now: dt.datetime) -> Section:
    """Accounts locked after failed sign-ins, until when."""
    where = (LoginThrottle.scope == "user", LoginThrottle.locked_until > now)
    # the key is the username as typed: only those of real accounts are shown (never what
    # someone typed into the name field)
    joined = select(User.id, LoginThrottle.key, LoginThrottle.locked_until).join(
        User, User.username == LoginThrottle.key
    )
    count = session.scalar(select(func.count()).select_from(joined.where(*where).subquery()))
    rows = session.execute(
        joined.where(*where).order_by(LoginThrottle.locked_until).limit(SHOWN)
    ).all()
    lines = [Line("account", r.id, r.key, "", r.locked_until) for r in rows]  # opens the person
    return Section("accounts_locked", count or 0, lines)


def _missing_keys(session: Session) -> Section:
    """Forms with encrypted submissions waiting for their key, the most waiting first."""
    rows = session.execute(
        select(Form.id, Form.xml_form_id, func.count())
        .join(EncryptedSubmission, EncryptedSubmission.form_id == Form.id)
        .where(EncryptedSubmission.state == "waiting")
        .group_by(Form.id, Form.xml_form_id)
        .order_by(func.count().desc(), Form.xml_form_id)
    ).all()
    lines = [Line("form", r[0], r[1], str(r[2])) for r in rows]
    return Section("keys_missing", sum(r[2] for r in rows), lines[:SHOWN], urgent=True)
