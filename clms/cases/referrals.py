"""Consent and referrals: the consent of the child or guardian to share the case with a
provider, referring the case to a provider (or revoking it), and the provider's side: accepting,
rejecting and completing a referral."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from alerts.notify import BASE_URL_MARK
from clms.audit import record
from clms.cases import workflow as wf
from clms.cases.closure import propose_closure_if_met
from clms.cases.inputs import _at, _choice, _date, _provider, _text, check_fits_child
from clms.cases.notices import notify, officers_of, tell_officers
from clms.cases.plan import child_age
from clms.cases.records import case_in_scope, change_case, check_move
from clms.errors import field_errors, problem
from clms.i18n import Msg
from clms.models import (
    Case,
    Consent,
    PlannedService,
    Referral,
    ServiceProvider,
    ServiceType,
    User,
    utcnow,
)
from clms.notices.tell import About, settle


def record_consent(
    session: Session,
    user: User,
    case_id: int,
    *,
    provider_code: str | None,
    given_by: str | None,
    method: str | None,
    shares: list[str] | None,
    notes: str | None = None,
    now: dt.datetime | None = None,
    policy: wf.Policy | None = None,
) -> Consent:
    """Record the child's or guardian's consent to share the case with a provider, and what the
    provider may see. It replaces an earlier consent for the same provider."""
    now = now or utcnow()
    case = case_in_scope(session, user, case_id)
    if case.state not in wf.OPEN_STATES:
        raise problem(
            "case.transition_refused",
            detail=Msg("The case is {state}; consent is recorded on open cases only.",
                       state=wf.state_msg(case.state)),
        )  # fmt: skip
    errors: dict = {}
    provider = _provider(errors, session, provider_code, None)
    given_by = _choice(errors, "given_by", given_by, wf.CONSENT_GIVERS)
    method = _choice(errors, "method", method, wf.CONSENT_METHODS)
    items = [s for s in dict.fromkeys(shares or []) if s]
    if any(s not in wf.SHAREABLE for s in items):
        errors["shares"] = Msg("must be among: {choices}", choices=", ".join(wf.SHAREABLE))
    notes = _text(errors, "notes", notes, required=False)
    if errors:
        raise field_errors(errors)
    for old in session.scalars(
        select(Consent).where(
            Consent.case_id == case.id,
            Consent.provider_id == provider.id,
            Consent.withdrawn_at.is_(None),
        )
    ):
        old.withdrawn_at, old.withdrawn_by_id = now, user.id
    consent = Consent(
        case_id=case.id, provider_id=provider.id, given_by=given_by, method=method,
        shares=[s for s in wf.SHAREABLE if s in items], notes=notes, recorded_at=now,
        recorded_by_id=user.id,
    )  # fmt: skip
    session.add(consent)
    session.flush()
    change_case(
        session, case, user, now=now, policy=policy, action="consent_recorded",
        detail={"consent_id": consent.id, "provider": provider.code, "given_by": given_by,
                "shares": consent.shares},
    )  # fmt: skip
    return consent


def withdraw_consent(
    session: Session,
    user: User,
    consent_id: int,
    *,
    now: dt.datetime | None = None,
    policy: wf.Policy | None = None,
) -> Consent:
    """The child or guardian withdraws a consent: no new referral to that provider under it."""
    now = now or utcnow()
    consent = session.get(Consent, consent_id)
    if consent is None:
        raise problem("not_found")
    case = case_in_scope(session, user, consent.case_id)
    if consent.withdrawn_at is not None:
        raise problem("case.transition_refused", detail=Msg("This consent was already withdrawn."))
    consent.withdrawn_at, consent.withdrawn_by_id = now, user.id
    session.flush()
    change_case(session, case, user, now=now, policy=policy, action="consent_withdrawn",
                detail={"consent_id": consent.id})  # fmt: skip
    return consent


def active_consent(session: Session, case_id: int, provider_id: int) -> Consent | None:
    """The consent in force for sharing the case with the provider, if any."""
    return session.scalar(
        select(Consent)
        .where(
            Consent.case_id == case_id,
            Consent.provider_id == provider_id,
            Consent.withdrawn_at.is_(None),
        )
        .order_by(Consent.recorded_at.desc(), Consent.id.desc())
        .limit(1)
    )


def refer(
    session: Session,
    user: User,
    case_id: int,
    *,
    planned_service_id: int | None = None,
    service_code: str | None = None,
    provider_code: str | None = None,
    override_reason: str | None = None,
    message: str | None = None,
    now: dt.datetime | None = None,
    policy: wf.Policy | None = None,
) -> Referral:
    """Refer the case to a provider for a planned service, or, for an urgent service, directly
    at any step (urgent protection never waits for an assessment or a plan).

    Refused unless the consent of the child or guardian to share with that provider is recorded,
    or an authorised user overrides it with a reason (recorded, and written to the audit log).
    """
    now = now or utcnow()
    case = case_in_scope(session, user, case_id)
    errors: dict = {}
    planned, service, provider = _referral_target(
        errors, session, case, planned_service_id, service_code, provider_code
    )
    urgent = bool(service and service.urgent)
    if planned is None and service is not None and not urgent:
        errors["service"] = Msg("is not urgent: refer it from the plan (add it to the plan first)")
    elif planned is None and service is not None and not service.active:
        errors["service"] = Msg("is not a service of the catalogue")
    elif planned is None and service is not None:
        check_fits_child(errors, service, child_age(session, case, now))
    message = _text(errors, "message", message, required=False)
    override_reason = _text(errors, "override_reason", override_reason, required=False)
    if errors:
        raise field_errors(errors)
    check_move(session, case, "refer_urgent" if urgent else "refer", user, policy=policy)
    duplicate = session.scalar(
        select(Referral.id).where(
            Referral.case_id == case.id,
            Referral.provider_id == provider.id,
            Referral.service_code == service.code,
            Referral.status.in_(("pending", "accepted")),
        )
    )
    if duplicate is not None:
        raise problem(
            "referral.transition_refused",
            detail=Msg("This case is already referred to {provider} for this service "
                       "(referral {id}).", provider=provider.name, id=duplicate),
        )  # fmt: skip
    consent = active_consent(session, case.id, provider.id)
    if consent is None:
        if not override_reason:
            raise problem(
                "referral.consent_missing",
                provider=provider.name,
                who=Msg("a supervisor; an officer for an urgent service"),
            )
        if not wf.may_override_consent(user.role, urgent):
            raise problem(
                "referral.transition_refused",
                detail=Msg("Only a supervisor may override consent for a service that is not "
                           "urgent. Record the consent of the child or guardian first."),
            )  # fmt: skip
    shared = wf.shared_items(consent.shares if consent else None, override=consent is None)
    referral = Referral(
        case_id=case.id, planned_service_id=planned.id if planned else None,
        provider_id=provider.id, service_code=service.code, urgent=urgent, status="pending",
        outcome="referred", consent_id=consent.id if consent else None,
        override_reason=None if consent else override_reason,
        override_by_id=None if consent else user.id, shared=shared, message=message,
        created_at=now, created_by_id=user.id,
        respond_by=wf.referral_respond_by(urgent, now, policy),
        complete_by=planned.due_on if planned else None,
    )  # fmt: skip
    session.add(referral)
    if planned is not None:
        planned.status = "referred"
    session.flush()
    detail = {"referral_id": referral.id, "service": service.code, "provider": provider.code,
              "urgent": urgent, "shared": shared}  # fmt: skip
    if consent is None:
        detail["consent_override"] = override_reason
        record(session, user, "case.consent_override", f"case:{case.case_number}",
               reason=override_reason, provider=provider.code)  # fmt: skip
    change_case(session, case, user, now=now, policy=policy, action="referred", detail=detail)
    staff = session.scalars(
        select(User).where(User.provider_id == provider.id, User.active.is_(True))
    ).all()
    notify(
        session, staff, kind="referral",
        subject=f"[CLMS] {'URGENT ' if urgent else ''}referral {referral.id}: "
                f"{service.name_en}",
        lines=[f"A child is referred to {provider.name} for: {service.name_en}.",
               f"Please answer by {referral.respond_by:%Y-%m-%d %H:%M} UTC.",
               f"Open the referral: {BASE_URL_MARK}/referrals/{referral.id}"],
        case=case, now=now, notice="referral_received", actor=user,
        about=About("referral", referral.id, f"#{referral.id}", {"urgent": urgent}),
    )  # fmt: skip
    return referral


def _referral_target(
    errors: dict,
    session: Session,
    case: Case,
    planned_service_id: int | None,
    service_code: str | None,
    provider_code: str | None,
) -> tuple[PlannedService | None, ServiceType | None, ServiceProvider | None]:
    """What :func:`refer` refers: the planned service (if one is named), the service and the
    provider; a wrong answer goes into ``errors``."""
    planned = None
    if planned_service_id is not None:
        planned = session.get(PlannedService, planned_service_id)
        if planned is None or planned.case_id != case.id:
            raise problem("not_found")
        if planned.status != "planned":
            raise problem(
                "case.transition_refused",
                detail=Msg("This planned service is {status}; only a planned one can be referred.",
                           status=Msg(planned.status)),
            )  # fmt: skip
        service_code = planned.service_code
        provider = session.get(ServiceProvider, planned.provider_id)
        if provider_code and provider_code != provider.code:
            provider = _provider(errors, session, provider_code, None)
    else:
        provider = None
    service = session.scalar(select(ServiceType).where(ServiceType.code == service_code))
    if service is None:
        errors["service"] = Msg("is not a service of the catalogue")
    if provider is None and "provider" not in errors:
        provider = _provider(errors, session, provider_code, service)
    elif provider is not None and service is not None:
        _provider(errors, session, provider.code, service)
    return planned, service, provider


def revoke_referral(
    session: Session,
    user: User,
    referral_id: int,
    *,
    reason: str | None,
    now: dt.datetime | None = None,
    policy: wf.Policy | None = None,
) -> Referral:
    """The case officer withdraws a referral that is waiting or under way (with a reason); its
    planned service can be referred again."""
    now = now or utcnow()
    referral = session.get(Referral, referral_id)
    if referral is None:
        raise problem("not_found")
    case = case_in_scope(session, user, referral.case_id)
    errors: dict = {}
    reason = _text(errors, "reason", reason, required=True)
    if errors:
        raise field_errors(errors)
    _move_referral(referral, "revoke")
    referral.revoked_at, referral.revoked_reason = now, reason
    _reopen_planned(session, referral)
    session.flush()
    change_case(session, case, user, now=now, policy=policy, action="referral_revoked",
                detail={"referral_id": referral.id, "reason": reason})  # fmt: skip
    return referral


def _move_referral(referral: Referral, move: str) -> None:
    try:
        referral.status = wf.check_referral(referral.status, move)
    except wf.Refused as e:
        raise problem("referral.transition_refused", detail=e.msg) from e
    referral.escalated_at = None  # a new phase: it may escalate again if it stalls


def _reopen_planned(session: Session, referral: Referral) -> None:
    if referral.planned_service_id is not None:
        planned = session.get(PlannedService, referral.planned_service_id)
        if planned is not None and planned.status == "referred":
            planned.status = "planned"


# --- the provider's side -----------------------------------------------------------------------


def get_referral_for_provider(session: Session, user: User, referral_id: int) -> Referral | None:
    """A referral sent to the provider ``user`` works for, else None."""
    if user.role != "provider" or user.provider_id is None:
        return None
    referral = session.get(Referral, referral_id)
    if referral is None or referral.provider_id != user.provider_id:
        return None
    return referral


def _provider_referral(session: Session, user: User, referral_id: int) -> Referral:
    referral = get_referral_for_provider(session, user, referral_id)
    if referral is None:
        raise problem("not_found")
    return referral


def accept_referral(
    session: Session,
    user: User,
    referral_id: int,
    *,
    now: dt.datetime | None = None,
    policy: wf.Policy | None = None,
) -> Referral:
    """The provider accepts the referral."""
    now = now or utcnow()
    referral = _provider_referral(session, user, referral_id)
    _move_referral(referral, "accept")
    referral.responded_at, referral.responded_by_id = now, user.id
    settle(session, "referral_received", "referral", referral.id, now=now)  # answered
    session.flush()
    case = session.get(Case, referral.case_id)
    change_case(session, case, user, now=now, policy=policy, action="referral_accepted",
                detail={"referral_id": referral.id, "service": referral.service_code})  # fmt: skip
    answer = {"referral": referral.id, "answer": "accepted"}
    tell_officers(session, case, "referral_answered", answer, actor=user, now=now)
    return referral


def reject_referral(
    session: Session,
    user: User,
    referral_id: int,
    *,
    reason: str | None,
    outcome: str | None = None,
    now: dt.datetime | None = None,
    policy: wf.Policy | None = None,
) -> Referral:
    """The provider rejects the referral, saying why; the officer is told and may refer the
    service elsewhere."""
    now = now or utcnow()
    referral = _provider_referral(session, user, referral_id)
    errors: dict = {}
    reason = _text(errors, "reason", reason, required=True)
    outcome = _choice(
        errors, "outcome", outcome,
        [o for o in wf.REFERRAL_DONE_OUTCOMES if o != "service_provided"], required=False,
    )  # fmt: skip
    if errors:
        raise field_errors(errors)
    _move_referral(referral, "reject")
    referral.responded_at, referral.responded_by_id = now, user.id
    settle(session, "referral_received", "referral", referral.id, now=now)  # answered
    referral.rejection_reason = reason
    if outcome:
        referral.outcome = outcome
    _reopen_planned(session, referral)
    session.flush()
    case = session.get(Case, referral.case_id)
    change_case(
        session, case, user, now=now, policy=policy, action="referral_rejected",
        detail={"referral_id": referral.id, "service": referral.service_code, "reason": reason,
                "outcome": outcome},
    )  # fmt: skip
    notify(
        session, officers_of(session, case), kind="referral",
        subject=f"[CLMS] Referral {referral.id} rejected: case {case.case_number}",
        lines=["A provider rejected a referral; refer the service elsewhere or close it."],
        case=case, now=now, notice="referral_answered", actor=user,
        detail={"referral": referral.id, "answer": "rejected"},
    )  # fmt: skip
    return referral


def complete_referral(
    session: Session,
    user: User,
    referral_id: int,
    *,
    outcome: str | None,
    service_date=None,
    note: str | None = None,
    now: dt.datetime | None = None,
    policy: wf.Policy | None = None,
) -> Referral:
    """The provider records what came of an accepted referral: the service provided (on a date),
    or why not. A service provided (or already received elsewhere) delivers the planned service;
    any other outcome closes it with that reason."""
    now = now or utcnow()
    referral = _provider_referral(session, user, referral_id)
    errors: dict = {}
    outcome = _choice(errors, "outcome", outcome, wf.REFERRAL_DONE_OUTCOMES)
    day = _date(errors, "service_date", service_date,
                required=outcome in wf.DELIVERED_OUTCOMES)  # fmt: skip
    if day is not None and day > now.date():
        errors["service_date"] = Msg("cannot be in the future")
    accepted = referral.responded_at if referral.status == "accepted" else None
    if (day is not None and outcome == "service_provided" and accepted is not None
            and day < accepted.date()):  # fmt: skip
        # a service received before (elsewhere) is the other outcome, with its own date
        errors["service_date"] = Msg(
            "cannot be before the referral was accepted ({accepted})",
            accepted=accepted.date().isoformat(),
        )
    note = _text(errors, "note", note, required=False)
    if errors:
        raise field_errors(errors)
    _move_referral(referral, "complete")
    referral.outcome, referral.done_at = outcome, now
    referral.service_date, referral.outcome_note = day, note
    if referral.planned_service_id is not None:
        planned = session.get(PlannedService, referral.planned_service_id)
        if outcome in wf.DELIVERED_OUTCOMES:
            planned.status, planned.delivered_at = "delivered", _at(day, now)
            planned.delivered_source = "referral"
        else:
            planned.status, planned.closed_reason = "closed", outcome  # a code: the page says it
    session.flush()
    case = session.get(Case, referral.case_id)
    change_case(
        session, case, user, now=now, policy=policy, action="referral_done",
        detail={"referral_id": referral.id, "service": referral.service_code,
                "outcome": outcome, "service_date": day.isoformat() if day else None},
    )  # fmt: skip
    answer = {"referral": referral.id, "answer": "completed"}
    tell_officers(session, case, "referral_answered", answer, actor=user, now=now)
    propose_closure_if_met(session, case, now, policy)
    return referral
