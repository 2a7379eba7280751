"""The remediation case as a state machine: states, moves, who may make them, what each needs.

Pure: plain values in, plain values out; no Flask, no database. The operation of each step
(:mod:`clms.cases.opening`, :mod:`clms.cases.plan`, ...) reads a case into a :class:`CaseFacts`
(:func:`clms.cases.records.facts_of`), asks :func:`check` whether a move is allowed, and only then
writes. A refused move raises :class:`Refused`, whose message says why in words an officer
understands; the same rules therefore hold on the web, in the API and in the jobs.

The steps follow the six-step operational remediation process of domain.md section 5 (IOM
guidelines and the inter-agency child-protection case-management steps):

================== ======================================================================
state              what must be recorded to leave it
================== ======================================================================
``verification``   the officer's visit: confirmed, or not confirmed with a reason (closes)
``assessment``     the best-interest assessment (risk, the child's views, family, school,
                   immediate safety, type and level of response)
``action_plan``    planned services, each with a provider and a due date; a supervisor's
                   approval when the risk is high or the category is ``worst_form``
``implementation`` closure criteria met (the system proposes closure), or a transfer
``closure_review`` a supervisor's approval with outcome, lessons learned and root causes
``closed``         nothing: final, unless the child is found in child labour again within
                   the reopening window (the system reopens it)
``reopened``       a new best-interest assessment (back to ``action_plan``)
``transferred``    nothing: another agency or jurisdiction carries it on
================== ======================================================================

Decisions taken here where domain.md is silent (each is tested):

- **Urgent protection never waits.** A referral for an urgent service (emergency protection,
  law enforcement, health care: ``ServiceType.urgent``) may be sent at every open step, before any
  assessment or plan; other referrals need an approved plan (``implementation``).
- **Four eyes.** A supervisor cannot approve a plan or a closure they submitted or proposed
  themselves; another supervisor must.
- **Who may override consent.** Supervisors, for any referral; officers only for an urgent one
  (a child in danger must be protected even when consent cannot be obtained in time). Every
  override carries a reason and is recorded.
- **Closure criteria** (cocoa-sector CLMRS practice, domain.md section 5): the latest two follow-up
  visits at which the child was seen found no child labour and are at least
  ``closure_gap_days`` apart; no visit since the earlier of the two found child labour; every
  planned service is delivered or closed with a reason; no referral is still waiting or under way.
  A follow-up at which the child was not seen proves nothing and is skipped.
- **Reopening.** A closed case reopens when a visit within ``reopen_days`` of its closure finds
  the child in child labour (``worst_form``, ``hazardous`` or ``child_labour``; ``at_risk`` is not
  child labour). A case closed as not confirmed reopens the same way: the allegation now holds.

>>> facts = CaseFacts(state="verification", category="hazardous")
>>> check(facts, "verify_confirmed", Actor("officer", 7)).to_state
'assessment'
>>> check(facts, "approve_plan", Actor("supervisor", 8))
Traceback (most recent call last):
...
clms.cases.workflow.Refused: A case in verification has no plan waiting for approval; ...
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from clms.i18n import N_, Coded, Msg, NMsg

STATES = (
    "verification",
    "assessment",
    "action_plan",
    "implementation",
    "closure_review",
    "closed",
    "reopened",
    "transferred",
)
ENDED_STATES = ("closed", "transferred")
OPEN_STATES = tuple(s for s in STATES if s not in ENDED_STATES)
CHILD_LABOUR = ("worst_form", "hazardous", "child_labour")

MOVE_WORDS = {
    "verify_confirmed": N_("recording the verification"),
    "verify_not_confirmed": N_("recording the verification"),
    "assess": N_("the best-interest assessment"),
    "reassess": N_("a new assessment"),
    "edit_plan": N_("changing the plan"),
    "submit_plan": N_("submitting the plan"),
    "approve_plan": N_("approving the plan"),
    "return_plan": N_("returning the plan"),
    "refer": N_("a referral from the plan"),
    "refer_urgent": N_("an urgent referral"),
    "propose_closure": N_("proposing closure"),
    "approve_closure": N_("approving closure"),
    "return_closure": N_("returning the closure"),
    "transfer": N_("a transfer"),
    "move_village": N_("moving the case"),
    "reopen": N_("reopening"),
    "found_in_work": N_("recording a finding"),
    "assign": N_("assigning"),
    "note": N_("a note"),
}
STATE_WORDS = {
    "verification": "verification",
    "assessment": "best-interest assessment",
    "action_plan": "action plan",
    "implementation": "implementation and monitoring",
    "closure_review": "closure review",
    "closed": "closed",
    "reopened": "reopened",
    "transferred": "transferred",
}
#: the step number of each state in the six-step process (reopened goes back to step 2)
STEP_NUMBER = {
    "verification": 1,
    "assessment": 2,
    "reopened": 2,
    "action_plan": 3,
    "implementation": 4,
    "closure_review": 5,
    "closed": 6,
    "transferred": 6,
}

RISK_LEVELS = ("high", "medium", "low")
SCHOOLING = ("attending", "irregular", "dropped_out", "never_enrolled", "not_applicable")
SAFETY = ("safe", "at_risk", "in_danger")
RESPONSE_LEVELS = ("prevention", "remediation", "protection")
RESPONSE_TYPES = (
    "education",
    "economic_strengthening",
    "health",
    "psychosocial",
    "legal_protection",
    "family_tracing",
    "awareness",
    "decent_work",
)
CLOSURE_OUTCOMES = (
    "remediated",
    "not_confirmed",
    "aged_out",
    "moved_or_lost_contact",
    "other",
)
ROOT_CAUSES = (
    "household_income",
    "school_access",
    "school_costs",
    "labour_shortage",
    "recruiter_or_intermediary",
    "debt",
    "family_separation",
    "no_birth_registration",
    "social_norms",
    "other",
)
CONSENT_GIVERS = ("child", "guardian", "child_and_guardian")
CONSENT_METHODS = ("verbal", "written", "thumbprint")
#: what a provider may be shown of a child, when the consent covers it; the referral always
#: carries the pseudonymous child id, the service and the case number
SHAREABLE = (
    "first_name",
    "full_name",
    "age",
    "sex",
    "village",
    "household_head",
    "assessment_summary",
)
#: what a referral made under an override shares: only what the service cannot do without
OVERRIDE_SHARES = ("first_name", "age", "sex", "village")
TRANSFER_KINDS = ("internal", "external")
TRANSFER_BASES = ("consent", "best_interests")

# who may act on cases: staff with child data in their areas (an admin only with such a scope)
CASE_ROLES = ("officer", "supervisor", "admin")
SUPERVISORS = ("supervisor",)


class Refused(Exception):
    """A move the rules do not allow; ``msg`` says why, for the person who tried it, in their
    language (``str()`` is the English)."""

    def __init__(self, msg: Msg | str):
        self.msg = msg if isinstance(msg, Msg) else Msg(msg)
        super().__init__(str(self.msg))


@dataclass(frozen=True)
class Actor:
    """Who asks: their role and user id (None: the system, which acts on visits it receives)."""

    role: str
    user_id: int | None

    @property
    def is_system(self) -> bool:
        return self.role == "system"


SYSTEM = Actor("system", None)


@dataclass(frozen=True)
class Observation:
    """One visit that saw (or looked for) the child while the case was open: when, whether it was
    a follow-up of this case, whether the child was seen, and the category it was classified."""

    visited_at: dt.datetime
    followup: bool
    child_present: bool | None
    category: str


@dataclass(frozen=True)
class ServiceState:
    """A planned service as the closure criteria see it."""

    service_code: str
    status: str  # planned, referred, delivered, closed


@dataclass
class CaseFacts:
    """What the rules need to know about a case, read from the database by the operations."""

    state: str
    category: str | None = None
    risk_level: str | None = None
    has_assessment: bool = False
    plan_status: str | None = None  # of the current plan: draft, submitted, approved, returned
    plan_services: int = 0  # planned services in the current plan
    plan_submitted_by: int | None = None
    closure_proposed_by: int | None = None  # None also when the system proposed it
    closed_at: dt.datetime | None = None
    outcome: str | None = None
    observations: list[Observation] = field(default_factory=list)
    services: list[ServiceState] = field(default_factory=list)
    open_referrals: int = 0  # pending or accepted


@dataclass(frozen=True)
class Policy:
    """The settings of the workflow (domain.md's defaults; administrators may change them)."""

    closure_followups: int = 2
    closure_gap_days: int = 30
    reopen_days: int = 365
    followup_interval_days: int = 30
    referral_response_days: int = 5
    urgent_referral_response_hours: int = 24
    # how long each step may take before it escalates to a supervisor
    step_days: Mapping[str, int] = field(
        default_factory=lambda: {
            "verification": 7,
            "assessment": 7,
            "reopened": 3,
            "action_plan": 14,
            "plan_approval": 3,
            "closure_review": 7,
        }
    )

    @classmethod
    def from_config(cls, config: Mapping) -> Policy:
        """The policy with the ``CASE_*`` and ``REFERRAL_*`` settings of the configuration."""
        names = {
            "CASE_CLOSURE_FOLLOWUPS": "closure_followups",
            "CASE_CLOSURE_GAP_DAYS": "closure_gap_days",
            "CASE_REOPEN_DAYS": "reopen_days",
            "CASE_FOLLOWUP_DAYS": "followup_interval_days",
            "REFERRAL_RESPONSE_DAYS": "referral_response_days",
        }
        values = {attr: int(config[key]) for key, attr in names.items() if key in config}
        return cls(**values)


@dataclass(frozen=True)
class Move:
    """A move of the state machine: its name, where it may start, where it leads, who may make
    it, and what it needs (in words, for the page that offers it)."""

    name: str
    from_states: tuple[str, ...]
    to_state: str | None  # None: the state does not change
    roles: tuple[str, ...]
    needs: str


MOVES: dict[str, Move] = {
    m.name: m
    for m in (
        Move(
            "verify_confirmed",
            ("verification",),
            "assessment",
            CASE_ROLES,
            "the date of the verification visit and what was found",
        ),
        Move(
            "verify_not_confirmed",
            ("verification",),
            "closed",
            CASE_ROLES,
            "the date of the verification visit and the reason it is not confirmed",
        ),
        Move(
            "assess",
            ("assessment", "reopened"),
            "action_plan",
            CASE_ROLES,
            "a complete best-interest assessment",
        ),
        Move(
            "reassess",
            ("action_plan", "implementation", "closure_review"),
            None,
            CASE_ROLES,
            "a complete best-interest assessment",
        ),
        Move(
            "edit_plan",
            ("action_plan", "implementation"),
            None,
            CASE_ROLES,
            "a service from the catalogue, a provider and a due date",
        ),
        Move(
            "submit_plan",
            ("action_plan",),
            "implementation",  # or stays in action_plan until a supervisor approves
            CASE_ROLES,
            "at least one planned service, each with a provider and a due date",
        ),
        Move(
            "approve_plan",
            ("action_plan",),
            "implementation",
            SUPERVISORS,
            "a plan submitted by someone else",
        ),
        Move(
            "return_plan",
            ("action_plan",),
            None,
            SUPERVISORS,
            "a note saying what to change",
        ),
        Move(
            "refer",
            ("implementation",),
            None,
            CASE_ROLES,
            "an approved plan, and the consent of the child or guardian (or an override)",
        ),
        Move(
            "refer_urgent",
            OPEN_STATES,
            None,
            CASE_ROLES,
            "an urgent service, and consent or an override with a reason",
        ),
        Move(
            "propose_closure",
            ("implementation",),
            "closure_review",
            (*CASE_ROLES, "system"),
            "the closure criteria met",
        ),
        Move(
            "approve_closure",
            ("closure_review",),
            "closed",
            SUPERVISORS,
            "the outcome, lessons learned and root causes",
        ),
        Move(
            "return_closure",
            ("closure_review",),
            "implementation",
            SUPERVISORS,
            "a note saying why the case is not ready to close",
        ),
        Move(
            "transfer",
            OPEN_STATES,
            "transferred",
            CASE_ROLES,
            "the receiving agency, the reason and what is shared",
        ),
        Move(
            "move_village",
            OPEN_STATES,
            None,
            CASE_ROLES,
            "the village the child now lives in, the reason and what is shared",
        ),
        Move(
            "reopen",
            ("closed",),
            "reopened",
            ("system",),
            "the child found in child labour again within the reopening window",
        ),
        Move(
            "found_in_work",
            OPEN_STATES,
            None,
            ("system",),
            "a visit that found the child in child labour",
        ),
        Move("assign", OPEN_STATES, None, CASE_ROLES, "an officer (and a monitor) of the village"),
        Move("note", STATES, None, CASE_ROLES, "the note"),
    )
}


def check(facts: CaseFacts, move: str, actor: Actor, *, policy: Policy | None = None) -> Move:
    """The :class:`Move` ``move`` if ``actor`` may make it on a case in this state, else
    :class:`Refused` saying why.

    Checks what the state machine knows: the state, the role, four eyes, the plan, the closure
    criteria. What a form must contain (a reason, a date) is checked by the operations.
    """
    policy = policy or Policy()
    if move not in MOVES:
        raise ValueError(f"unknown move {move!r}")
    m = MOVES[move]
    if actor.role not in m.roles:
        raise Refused(_role_words(m))
    state_words = state_msg(facts.state)
    no_plan = Msg(
        "A case in {state} has no plan waiting for approval; "
        "only a submitted plan can be approved or returned.",
        state=state_words,
    )
    if facts.state not in m.from_states:
        if move in ("approve_plan", "return_plan"):
            raise Refused(no_plan)
        raise Refused(
            Msg(
                "This case is at the step '{state}'; {move} can only be done at: {states}.",
                state=state_words,
                move=Msg(MOVE_WORDS.get(move, move)),
                states=_or([state_msg(s) for s in m.from_states]),
            )
        )
    if move in ("approve_plan", "return_plan"):
        if facts.plan_status != "submitted":
            raise Refused(no_plan)
        if actor.user_id is not None and actor.user_id == facts.plan_submitted_by:
            raise Refused(
                Msg("You submitted this plan: another supervisor must approve or return it.")
            )
    elif move == "submit_plan":
        if facts.plan_status == "submitted":
            raise Refused(Msg("The plan is already waiting for a supervisor's approval."))
        if facts.plan_services < 1:
            raise Refused(
                Msg(
                    "The plan has no services yet: add at least one, with a provider and a "
                    "due date."
                )
            )
    elif move == "edit_plan":
        if facts.plan_status == "submitted":
            raise Refused(
                Msg(
                    "The plan is waiting for a supervisor's approval; it can be changed once it is "
                    "approved or returned."
                )
            )
    elif move == "propose_closure":
        holds, unmet = closure_criteria(facts.observations, facts.services,
                                        facts.open_referrals, policy)  # fmt: skip
        if not holds:
            raise Refused(Msg("The closure criteria are not met: {unmet}.", unmet=_and(unmet)))
    elif move in ("approve_closure", "return_closure"):
        if actor.user_id is not None and actor.user_id == facts.closure_proposed_by:
            raise Refused(
                Msg("You proposed this closure: another supervisor must approve or return it.")
            )
    elif move == "reopen" and facts.closed_at is None:
        raise Refused(Msg("This case was never closed."))
    return m


def allowed_moves(
    facts: CaseFacts, actor: Actor, *, policy: Policy | None = None
) -> dict[str, Msg | None]:
    """Every move of the case for ``actor``: None when allowed, else why not (for the page)."""
    out: dict[str, Msg | None] = {}
    for name, m in MOVES.items():
        if actor.role not in m.roles or facts.state not in m.from_states:
            continue
        try:
            check(facts, name, actor, policy=policy)
        except Refused as e:
            out[name] = e.msg
        else:
            out[name] = None
    return out


def needs_plan_approval(risk_level: str | None, category: str | None) -> bool:
    """Whether a plan needs a supervisor's approval: high risk, or a worst form of child labour.

    >>> needs_plan_approval("high", "child_labour"), needs_plan_approval("low", "worst_form")
    (True, True)
    >>> needs_plan_approval("medium", "hazardous")
    False
    """
    return risk_level == "high" or category == "worst_form"


def closure_criteria(
    observations: Sequence[Observation],
    services: Sequence[ServiceState],
    open_referrals: int = 0,
    policy: Policy | None = None,
) -> tuple[bool, list[str]]:
    """Whether the closure criteria hold, and what is missing when they do not (in words).

    ``observations`` are the visits since the case opened, in any order.

    >>> day = dt.timedelta(days=1)
    >>> t0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    >>> seen = [Observation(t0, True, True, "none"),
    ...         Observation(t0 + 31 * day, True, True, "at_risk")]
    >>> closure_criteria(seen, [ServiceState("school_kit_costs", "delivered")])
    (True, [])
    """
    policy = policy or Policy()
    unmet: list[Msg] = []
    ordered = sorted(observations, key=lambda o: o.visited_at)
    seen = [o for o in ordered if o.followup and o.child_present]
    need = policy.closure_followups
    latest = seen[-need:] if len(seen) >= need else []
    if len(latest) < need:
        unmet.append(
            Msg(
                "{need} follow-up visits at which the child was seen are needed ({seen} so far)",
                need=need,
                seen=len(seen),
            )
        )
    else:
        working = [o for o in latest if o.category in CHILD_LABOUR]
        if working:
            unmet.append(
                Msg(
                    "the child was found in child labour at a follow-up on {day}",
                    day=working[-1].visited_at.date(),
                )
            )
        gap = latest[-1].visited_at - latest[0].visited_at
        if gap < dt.timedelta(days=policy.closure_gap_days) * (need - 1):
            unmet.append(
                Msg(
                    "the last {need} follow-ups must be at least {days} days apart "
                    "(they are {gap})",
                    need=need,
                    days=policy.closure_gap_days,
                    gap=gap.days,
                )
            )
        since = [
            o
            for o in ordered
            if o.visited_at >= latest[0].visited_at and o.category in CHILD_LABOUR
        ]
        if since and not working:
            unmet.append(
                Msg(
                    "a visit on {day} found the child in child labour",
                    day=since[-1].visited_at.date(),
                )
            )
    open_services = [s for s in services if s.status not in ("delivered", "closed")]
    if not services:
        unmet.append(Msg("the plan has no services"))
    elif open_services:
        codes = Coded("service", [s.service_code for s in open_services])
        unmet.append(Msg("planned services not yet delivered or closed: {codes}", codes=codes))
    if open_referrals:
        unmet.append(
            NMsg(
                "{n} referral still waiting for an answer or under way",
                "{n} referrals still waiting for an answer or under way",
                n=open_referrals,
            )
        )
    return (not unmet, unmet)


def should_reopen(
    state: str, closed_at: dt.datetime | None, found_at: dt.datetime, category: str,
    policy: Policy | None = None,
) -> bool:  # fmt: skip
    """Whether a visit at ``found_at`` classified ``category`` reopens a case closed at
    ``closed_at``.

    >>> t = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    >>> should_reopen("closed", t, t + dt.timedelta(days=200), "hazardous")
    True
    >>> should_reopen("closed", t, t + dt.timedelta(days=400), "hazardous")
    False
    """
    policy = policy or Policy()
    if state != "closed" or closed_at is None or category not in CHILD_LABOUR:
        return False
    return closed_at <= found_at <= closed_at + dt.timedelta(days=policy.reopen_days)


def step_due(
    state: str,
    now: dt.datetime,
    policy: Policy | None = None,
    *,
    visit_within: dt.timedelta | None = None,
    plan_submitted: bool = False,
) -> dt.datetime | None:
    """The deadline of the step a case enters at ``now`` (None: the step has no deadline),
    always counted from ``now``: a step's time starts when the step starts, so a case opened
    from an alert whose own deadline has passed is not overdue the moment it opens (the alert
    keeps its own lateness, and was escalated for it).

    Verification takes the alert category's time for the first officer visit when it has one
    (``visit_within``: 72 hours for a worst form, domain.md section 4), else ``verification``
    days. A plan waiting for approval gives the supervisor ``plan_approval`` days.
    Implementation has none of its own: its follow-ups and referrals do.
    """
    policy = policy or Policy()
    if state == "verification" and visit_within is not None:
        return now + visit_within
    key = "plan_approval" if state == "action_plan" and plan_submitted else state
    days = policy.step_days.get(key)
    return now + dt.timedelta(days=days) if days is not None else None


def referral_overdue(
    status: str, respond_by: dt.datetime, complete_by: dt.date | None, now: dt.datetime
) -> bool:
    """Whether a referral is past its deadline at ``now``: waiting for an answer after
    ``respond_by``, or accepted and not done after the day ``complete_by`` (the rule the
    escalation job's query writes in SQL, :func:`alerts.escalate.overdue_referral_condition`).

    >>> t = dt.datetime(2026, 7, 19, 9, tzinfo=dt.UTC)
    >>> referral_overdue("accepted", t, dt.date(2026, 7, 18), t)
    True
    >>> referral_overdue("accepted", t, dt.date(2026, 7, 19), t)
    False
    >>> referral_overdue("done", t, None, t)
    False
    >>> referral_overdue("pending", t - dt.timedelta(hours=1), None, t)
    True
    """
    if status == "pending":
        return respond_by < now
    return status == "accepted" and complete_by is not None and complete_by < now.date()


def referral_respond_by(
    urgent: bool, now: dt.datetime, policy: Policy | None = None
) -> dt.datetime:
    """When a provider must answer a referral sent at ``now``."""
    policy = policy or Policy()
    if urgent:
        return now + dt.timedelta(hours=policy.urgent_referral_response_hours)
    return now + dt.timedelta(days=policy.referral_response_days)


# --- referrals -------------------------------------------------------------------------------

REFERRAL_MOVES: dict[str, tuple[tuple[str, ...], str, str]] = {
    # move: (from statuses, to status, who)
    "accept": (("pending",), "accepted", "provider"),
    "reject": (("pending",), "rejected", "provider"),
    "complete": (("accepted",), "done", "provider"),
    "revoke": (("pending", "accepted"), "revoked", "case"),
}
REFERRAL_DONE_OUTCOMES = (
    "service_provided",
    "already_received_elsewhere",
    "not_applicable",
    "declined_by_child_or_family",
    "service_unavailable",
)
#: outcomes of a referral that count as the service delivered
DELIVERED_OUTCOMES = ("service_provided", "already_received_elsewhere")


# what a referral's move refused once the referral has moved on says (a table, so that the
# extraction of messages finds the sentences and not the moves' names)
NO_LONGER = {
    "accept": N_("This referral is {status}; it can no longer be accepted."),
    "reject": N_("This referral is {status}; it can no longer be rejected."),
    "complete": N_("This referral is {status}; it can no longer be marked done."),
    "revoke": N_("This referral is {status}; it can no longer be revoked."),
}


def check_referral(status: str, move: str) -> str:
    """The status a referral in ``status`` takes after ``move``, else :class:`Refused`.

    >>> check_referral("pending", "accept")
    'accepted'
    >>> check_referral("done", "revoke")
    Traceback (most recent call last):
    ...
    clms.cases.workflow.Refused: This referral is done; it can no longer be revoked.
    """
    from_statuses, to_status, _who = REFERRAL_MOVES[move]
    if status not in from_statuses:
        if move == "complete" and status == "pending":
            raise Refused(Msg("Accept the referral before recording the service."))
        raise Refused(
            Msg(
                NO_LONGER[move],
                status=Msg(status),
            )
        )  # fmt: skip
    return to_status


def may_override_consent(role: str, urgent: bool) -> bool:
    """Supervisors may override missing consent for any referral; officers (and scoped admins)
    only for an urgent one."""
    return role in SUPERVISORS or (urgent and role in CASE_ROLES)


def shared_items(consent_shares: Iterable[str] | None, *, override: bool) -> list[str]:
    """What a referral shows the provider: what the consent covers, or under an override only
    :data:`OVERRIDE_SHARES`; always in the order of :data:`SHAREABLE`."""
    allowed = set(OVERRIDE_SHARES if override else (consent_shares or ()))
    return [item for item in SHAREABLE if item in allowed]


# --- words -----------------------------------------------------------------------------------


def _role_words(m: Move) -> Msg:
    if m.roles == SUPERVISORS:
        return Msg("Only a supervisor may do this.")
    if m.roles == ("system",):
        return Msg("Only the system does this, when a visit shows it is needed.")
    return Msg("Your role may not act on cases.")


def state_msg(state: str) -> Msg:
    """The name of a state, for people."""
    return Msg(STATE_WORDS.get(state, state))


def _or(items: list) -> Msg:
    if len(items) == 1:
        return Msg("{a}", a=items[0])
    return Msg("{items} or {last}", items=_join(items[:-1]), last=items[-1])


def _and(items: list) -> Msg:
    return _join(items, "; ")


def _join(items: list, sep: str = ", ") -> Msg:
    """The items joined, each translated when shown."""
    names = {f"i{n}": item for n, item in enumerate(items)}
    return Msg(sep.join("{" + name + "}" for name in names), **names)
