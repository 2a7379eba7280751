"""Steps 5 and 6 of a case: closure proposed (by the system when the criteria hold, or by an
officer) and a supervisor's decision."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from clms.cases import workflow as wf
from clms.cases.inputs import _choice, _text
from clms.cases.notices import notify, supervisors_of, tell_officers
from clms.cases.records import case_in_scope, change_case, check_move, facts_of
from clms.cases.signs import acknowledge
from clms.errors import field_errors
from clms.i18n import Msg
from clms.models import Case, User, utcnow
from clms.notices.tell import settle


def propose_closure_if_met(
    session: Session, case: Case, now: dt.datetime, policy: wf.Policy | None = None
) -> bool:
    """The system proposes closure when a case in implementation meets the closure criteria
    (of the workflow's settings ``policy``; None: the defaults); returns whether it did."""
    if case.state != "implementation":
        return False
    facts = facts_of(session, case)
    holds, _unmet = wf.closure_criteria(
        facts.observations, facts.services, facts.open_referrals, policy
    )
    if not holds:
        return False
    _propose(session, case, None, now, None, policy)
    return True


def propose_closure(
    session: Session,
    user: User,
    case_id: int,
    *,
    expected_version: int | None = None,
    now: dt.datetime | None = None,
    policy: wf.Policy | None = None,
) -> Case:
    """An officer proposes closure (the criteria must hold)."""
    now = now or utcnow()
    case = case_in_scope(session, user, case_id)
    check_move(session, case, "propose_closure", user, policy=policy)
    _propose(session, case, user, now, expected_version, policy)
    return case


def _propose(session, case, user, now, expected_version, policy: wf.Policy | None) -> None:
    change_case(
        session, case, user, now=now, policy=policy, expected_version=expected_version,
        to_state="closure_review", action="closure_proposed",
        detail={"by": "system" if user is None else "officer"},
        closure_proposed_at=now, next_followup_due_at=None,
    )  # fmt: skip
    notify(
        session, supervisors_of(session, case), kind="case",
        subject=f"[CLMS] Closure to approve: case {case.case_number}",
        lines=["A remediation case meets the closure criteria and waits for your approval."],
        case=case, now=now, notice="approval_requested", detail={"step": "closure"}, actor=user,
    )  # fmt: skip


def decide_closure(
    session: Session,
    user: User,
    case_id: int,
    *,
    approve: bool,
    outcome: str | None = None,
    lessons_learned: str | None = None,
    root_causes: list[str] | None = None,
    note: str | None = None,
    signs_seen: bool = False,
    signs_reason: str | None = None,
    signs_shown: str | None = None,
    expected_version: int | None = None,
    now: dt.datetime | None = None,
    policy: wf.Policy | None = None,
) -> Case:
    """A supervisor approves the closure, recording the outcome, the lessons learned and the
    root causes; or returns the case to implementation with a note.

    When the child's record holds signs of a worst form or of trafficking
    (:func:`clms.cases.signs.signs_of`), approving needs ``signs_seen`` (the supervisor read
    them) and ``signs_reason`` (why the case may close all the same); the signs and the reason
    go into the case's timeline, the kinds of sign acknowledged into the audit log."""
    now = now or utcnow()
    case = case_in_scope(session, user, case_id)
    move = "approve_closure" if approve else "return_closure"
    check_move(session, case, move, user, policy=policy)
    settle(session, "approval_requested", "case", case.id, now=now)  # it waits no more
    errors: dict = {}
    if approve:
        outcome = _choice(errors, "outcome", outcome,
                          [o for o in wf.CLOSURE_OUTCOMES if o != "not_confirmed"])  # fmt: skip
        lessons = _text(errors, "lessons_learned", lessons_learned, required=True)
        causes = [c for c in dict.fromkeys(root_causes or []) if c]
        if not causes:
            errors["root_causes"] = Msg("needs at least one root cause")
        elif any(c not in wf.ROOT_CAUSES for c in causes):
            errors["root_causes"] = Msg("must be among: {choices}",
                                        choices=", ".join(wf.ROOT_CAUSES))  # fmt: skip
        note = _text(errors, "note", note, required=False)
        _signs, acknowledged = acknowledge(
            session, case, errors, signs_seen, signs_reason, signs_shown
        )
    else:
        note = _text(errors, "note", note, required=True)
    if errors:
        raise field_errors(errors)
    if approve:
        change_case(
            session, case, user, now=now, policy=policy, expected_version=expected_version,
            to_state="closed", action="closed",
            detail={"outcome": outcome, "root_causes": causes, "lessons_learned": lessons,
                    "note": note,
                    # the kinds (codes) reach the audit log; the signs with their words and
                    # the reason stay in the case's timeline (records._codes_only)
                    **acknowledged},
            closed_at=now, closed_by_id=user.id, outcome=outcome, lessons_learned=lessons,
            root_causes=causes, step_due_at=None, next_followup_due_at=None,
        )  # fmt: skip
        decision = "approved"
    else:
        interval = dt.timedelta(days=(policy or wf.Policy()).followup_interval_days)
        change_case(
            session, case, user, now=now, policy=policy, expected_version=expected_version,
            to_state="implementation", action="closure_returned", detail={"note": note},
            closure_proposed_at=None, step_due_at=None, next_followup_due_at=now + interval,
            followup_reminded_at=None,
        )  # fmt: skip
        decision = "returned"
    tell_officers(session, case, "approval_decided", {"step": "closure", "decision": decision},
                  actor=user, now=now)  # fmt: skip
    return case
