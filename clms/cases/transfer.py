"""Transfers (to another agency or jurisdiction, or to another village of this system), the
assignment of an officer or monitor, and notes on a case's timeline."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from clms.cases import workflow as wf
from clms.cases.inputs import MAX_SHORT, _choice, _text
from clms.cases.notices import case_staff, notify, officers_of
from clms.cases.records import case_in_scope, change_case, check_move, record_event
from clms.errors import field_errors
from clms.i18n import Msg
from clms.models import Case, CaseTransfer, Referral, User, Village, utcnow
from clms.notices.tell import About, tell
from clms.scope import village_in_scope


@dataclass
class TransferInput:
    """The transfer form: to another agency or jurisdiction (external), or to another village
    covered by this system (internal: the child moved)."""

    kind: str | None = None
    to_agency: str | None = None
    to_country: str | None = None
    to_village: str | None = None
    to_contact: str | None = None
    reason: str | None = None
    shared: list[str] = field(default_factory=list)
    consent_basis: str | None = None


#: what may go with a transferred case
TRANSFER_SHAREABLE = (
    "identity",
    "case_summary",
    "assessments",
    "plan_and_services",
    "referrals",
    "visit_history",
    "household_contact",
)


def transfer_case(
    session: Session,
    user: User,
    case_id: int,
    data: TransferInput,
    *,
    expected_version: int | None = None,
    now: dt.datetime | None = None,
    policy: wf.Policy | None = None,
) -> CaseTransfer:
    """Hand the case to another agency or jurisdiction (the case ends here as ``transferred``,
    its open referrals revoked), or move it to another village of this system (it goes on there,
    with that village's officers). Records what was shared and on what basis."""
    now = now or utcnow()
    case = case_in_scope(session, user, case_id)
    errors: dict = {}
    kind = _choice(errors, "kind", data.kind, wf.TRANSFER_KINDS)
    move = "move_village" if kind == "internal" else "transfer"
    check_move(session, case, move, user, policy=policy)
    reason = _text(errors, "reason", data.reason, required=True)
    basis = _choice(errors, "consent_basis", data.consent_basis, wf.TRANSFER_BASES)
    shared = [s for s in dict.fromkeys(data.shared or []) if s]
    if not shared:
        errors["shared"] = Msg("must say what is shared (at least one item)")
    elif any(s not in TRANSFER_SHAREABLE for s in shared):
        errors["shared"] = Msg("must be among: {choices}",
                               choices=", ".join(TRANSFER_SHAREABLE))  # fmt: skip
    contact = _text(errors, "to_contact", data.to_contact, required=False, limit=MAX_SHORT)
    to_village = None
    country = None
    if kind == "internal":
        code = (data.to_village or "").strip()
        to_village = session.scalar(select(Village).where(Village.code == code)) if code else None
        if not code:
            errors["to_village"] = Msg("is required")
        elif to_village is None:
            errors["to_village"] = Msg("names no known village ({code})", code=code)
        elif to_village.id == case.village_id:
            errors["to_village"] = Msg("is the village the case is already in")
        agency = _text(errors, "to_agency", data.to_agency, required=False, limit=200)
        agency = agency or (to_village.name if to_village else "")
    else:
        agency = _text(errors, "to_agency", data.to_agency, required=True, limit=200)
        country = (data.to_country or "").strip().upper() or None
        if country is not None and not (len(country) == 3 and country.isalpha()):
            errors["to_country"] = Msg("must be a three-letter country code (ISO 3166), e.g. GHA")
    if errors:
        raise field_errors(errors)
    transfer = CaseTransfer(
        case_id=case.id, kind=kind, to_agency=agency, to_country=country,
        to_village_id=to_village.id if to_village else None, from_village_id=case.village_id,
        to_contact=contact, reason=reason, shared=[s for s in TRANSFER_SHAREABLE if s in shared],
        consent_basis=basis, transferred_at=now, transferred_by_id=user.id,
    )  # fmt: skip
    session.add(transfer)
    session.flush()
    detail = {"transfer_id": transfer.id, "kind": kind, "to_agency": agency,
              "to_country": country, "shared": transfer.shared, "consent_basis": basis}  # fmt: skip
    if kind == "internal":
        detail["to_village"] = to_village.code
        change_case(
            session, case, user, now=now, policy=policy, expected_version=expected_version,
            action="moved_village", detail=detail, village_id=to_village.id, officer_id=None,
            monitor_id=None,
        )  # fmt: skip
        notify(
            session, officers_of(session, case), kind="case",
            subject=f"[CLMS] Case {case.case_number} moved to your area",
            lines=[f"A remediation case moved to {to_village.name} ({to_village.code}): the",
                   "child now lives there. Please take it on."],
            case=case, now=now, notice="case_assigned", detail={"how": "moved"}, actor=user,
        )  # fmt: skip
    else:
        for referral in session.scalars(
            select(Referral).where(
                Referral.case_id == case.id, Referral.status.in_(("pending", "accepted"))
            )
        ):
            referral.status, referral.revoked_at = "revoked", now
            referral.revoked_reason = f"case transferred to {agency}"
        change_case(
            session, case, user, now=now, policy=policy, expected_version=expected_version,
            to_state="transferred", action="transferred", detail=detail, step_due_at=None,
            next_followup_due_at=None,
        )  # fmt: skip
    return transfer


def assign_case(
    session: Session,
    user: User,
    case_id: int,
    *,
    officer: str | None = None,
    monitor: str | None = None,
    now: dt.datetime | None = None,
    policy: wf.Policy | None = None,
) -> Case:
    """Make an officer responsible for the case and/or a monitor its follow-up visitor; each
    must work in the case's village."""
    now = now or utcnow()
    case = case_in_scope(session, user, case_id)
    check_move(session, case, "assign", user, policy=policy)
    errors: dict = {}
    values: dict = {}
    people: dict = {}
    for name, username, roles in (
        ("officer", officer, ("officer", "supervisor")),
        ("monitor", monitor, ("monitor",)),
    ):
        if not username:
            continue
        person = session.scalar(select(User).where(User.username == username.strip()))
        if person is None or not person.active or person.role not in roles:
            errors[name] = Msg("must name an active {role}", role=Msg(roles[0]))
        elif not village_in_scope(session, person, case.village_id, case.village.area_id):
            errors[name] = Msg("{who} does not work in village {village}",
                               who=person.username, village=case.village.code)  # fmt: skip
        else:
            values[f"{name}_id"] = person.id
            people[name] = person
    if not values and not errors:
        errors["officer"] = Msg("choose an officer or a monitor")
    if errors:
        raise field_errors(errors)
    change_case(session, case, user, now=now, policy=policy, action="assigned",
                detail={"officer": officer or None, "monitor": monitor or None},
                **values)  # fmt: skip
    if "officer" in people:  # a monitor sees the case on the phone, not in the application
        tell(session, [people["officer"]], "case_assigned",
             About("case", case.id, case.case_number, {"how": "assigned"}), actor=user,
             now=now)  # fmt: skip
    return case


def add_note(
    session: Session,
    user: User,
    case_id: int,
    text: str | None,
    *,
    for_user: str | None = None,
    now: dt.datetime | None = None,
    policy: wf.Policy | None = None,
) -> Case:
    """Add a note to the case's timeline (personal data: seen only by staff of the case),
    addressed to a person if ``for_user`` names one (a username among :func:`case_staff`: the
    case's officers and the supervisors of its village), who is told of it."""
    now = now or utcnow()
    case = case_in_scope(session, user, case_id)
    check_move(session, case, "note", user, policy=policy)
    errors: dict = {}
    text = _text(errors, "text", text, required=True)
    addressee = None
    if for_user and for_user.strip():
        staff = {u.username: u for u in case_staff(session, case)}
        addressee = staff.get(for_user.strip())
        if addressee is None:
            errors["for_user"] = Msg("must name an officer or supervisor of this case "
                                     "({who} is not one)", who=for_user.strip()[:60])  # fmt: skip
        elif addressee.id == user.id:
            errors["for_user"] = Msg("is you: address the note to someone else, or to nobody")
    if errors:
        raise field_errors(errors)
    detail = {"text": text}
    if addressee is not None:
        detail["for"] = addressee.username
    event = record_event(session, case, user, "note", detail, now=now)
    session.flush()
    if addressee is not None:
        tell(session, [addressee], "note",
             About("case", case.id, case.case_number, {"event": event.id}),
             actor=user, now=now)  # fmt: skip
    return case
