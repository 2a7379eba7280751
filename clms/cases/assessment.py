"""Step 2 of a case: the best-interest assessment (and later re-assessments)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from clms.cases import workflow as wf
from clms.cases.inputs import _choice, _text
from clms.cases.notices import notify, supervisors_of
from clms.cases.records import case_in_scope, change_case, check_move, current_plan
from clms.errors import field_errors
from clms.i18n import Msg
from clms.models import ActionPlan, Assessment, User, utcnow


@dataclass
class AssessmentInput:
    """The best-interest assessment form."""

    risk_level: str | None = None
    child_views: str | None = None
    family_situation: str | None = None
    schooling: str | None = None
    schooling_notes: str | None = None
    immediate_safety: str | None = None
    safety_notes: str | None = None
    response_types: list[str] = field(default_factory=list)
    response_level: str | None = None


def record_assessment(
    session: Session,
    user: User,
    case_id: int,
    data: AssessmentInput,
    *,
    expected_version: int | None = None,
    now: dt.datetime | None = None,
    policy: wf.Policy | None = None,
) -> Assessment:
    """Record a best-interest assessment. From assessment (or reopened) the case moves to its
    action plan; later, it is a re-assessment and the case stays where it is."""
    now = now or utcnow()
    case = case_in_scope(session, user, case_id)
    move = "assess" if case.state in ("assessment", "reopened") else "reassess"
    check_move(session, case, move, user, policy=policy)
    errors: dict = {}
    risk = _choice(errors, "risk_level", data.risk_level, wf.RISK_LEVELS)
    views = _text(errors, "child_views", data.child_views, required=True)
    family = _text(errors, "family_situation", data.family_situation, required=True)
    schooling = _choice(errors, "schooling", data.schooling, wf.SCHOOLING)
    schooling_notes = _text(errors, "schooling_notes", data.schooling_notes, required=False)
    safety = _choice(errors, "immediate_safety", data.immediate_safety, wf.SAFETY)
    safety_notes = _text(
        errors, "safety_notes", data.safety_notes, required=safety in ("at_risk", "in_danger")
    )
    types = [t for t in dict.fromkeys(data.response_types or []) if t]
    unknown = [t for t in types if t not in wf.RESPONSE_TYPES]
    if not types:
        errors["response_types"] = Msg("needs at least one type of response")
    elif unknown:
        errors["response_types"] = Msg(
            "must be among: {choices}", choices=", ".join(wf.RESPONSE_TYPES)
        )
    level = _choice(errors, "response_level", data.response_level, wf.RESPONSE_LEVELS)
    if errors:
        raise field_errors(errors)
    assessment = Assessment(
        case_id=case.id, assessed_at=now, assessed_by_id=user.id, risk_level=risk,
        child_views=views, family_situation=family, schooling=schooling,
        schooling_notes=schooling_notes, immediate_safety=safety, safety_notes=safety_notes,
        response_types=types, response_level=level,
    )  # fmt: skip
    session.add(assessment)
    session.flush()
    detail = {"assessment_id": assessment.id, "risk_level": risk, "immediate_safety": safety,
              "response_level": level}  # fmt: skip
    if move == "assess":
        plan = current_plan(session, case.id)
        if plan is None or plan.status in ("approved", "auto"):
            if plan is not None:
                plan.status = "superseded"
            session.add(
                ActionPlan(
                    case_id=case.id,
                    version=(plan.version + 1) if plan else 1,
                    status="draft",
                    created_at=now,
                    created_by_id=user.id,
                )
            )
        change_case(session, case, user, now=now, policy=policy, expected_version=expected_version,
                    to_state="action_plan", action="assessed", detail=detail,
                    risk_level=risk)  # fmt: skip
    else:
        plan = current_plan(session, case.id)
        if (
            plan is not None
            and plan.status == "auto"
            and wf.needs_plan_approval(risk, case.category)
        ):
            detail["plan_needs_approval"] = True
            notify(
                session, supervisors_of(session, case), kind="case",
                subject=f"[CLMS] Case {case.case_number}: risk now high, plan not approved",
                lines=["A re-assessment found a high risk for a child whose plan was not",
                       "approved by a supervisor. Please review the plan."],
                case=case, now=now, notice="approval_requested", detail={"step": "risk"},
                actor=user,
            )  # fmt: skip
        change_case(session, case, user, now=now, policy=policy, expected_version=expected_version,
                    action="reassessed", detail=detail, risk_level=risk)  # fmt: skip
    return assessment
