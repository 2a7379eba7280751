"""The demo's remediation work: service providers, and officers working the alerts into cases.

``clms demo`` sends household visits that are up to six months old (as if monitors had visited
over a season). So that the case pages, timelines and indicators show a season of work, this
module then does what officers, supervisors and providers would have done since, each step
through the same operations the web pages call (the step modules of :mod:`clms.cases`), dated
when it would have happened and never later than now:

- each alert is dated as if its visit had synchronised the same day (the demo sends every visit
  at once, today), its deadlines counted from then;
- about a third of the alerts of child labour, and every worst form, become cases: verified,
  assessed, planned, approved where needed, consented, referred; providers accept and deliver;
- follow-up visits are then sent by the monitors through the real OpenRosa endpoint
  (:func:`clms.demo.sending.followup_jobs`), so that the system itself proposes the closures
  they justify;
- supervisors approve some of those closures.

Everything comes from the demo's seeded random source: the same seed gives the same cases.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from alerts import rules
from clms.cases import workflow as wf
from clms.cases.assessment import AssessmentInput, record_assessment
from clms.cases.catalogue import ProviderInput, ensure_services, save_provider
from clms.cases.closure import decide_closure
from clms.cases.opening import open_case, record_verification
from clms.cases.plan import add_planned_service, decide_plan, submit_plan
from clms.cases.referrals import (
    accept_referral,
    complete_referral,
    record_consent,
    refer,
    reject_referral,
)
from clms.cases.signs import signs_of
from clms.cases.transfer import add_note
from clms.errors import Problem
from clms.models import (
    Alert,
    AlertEvent,
    Area,
    Case,
    Notice,
    ServiceProvider,
    User,
    Village,
    utcnow,
)

CHILD_LABOUR = ("worst_form", "hazardous", "child_labour")
DAY = dt.timedelta(days=1)

CHILD_VIEWS = [
    "Je veux aller à l'école comme mes frères. Le travail au champ me fait mal au dos.",
    "J'aide mon oncle parce qu'il n'a pas d'argent pour payer des ouvriers.",
    "I want to become a nurse. I only go to the farm because my father asks me to.",
    "Je n'aime pas porter les sacs, c'est trop lourd. Je voudrais apprendre un métier.",
    "Je suis venu avec un monsieur qui a dit que j'irais à l'école. Je veux rentrer chez ma mère.",
    "I like school but we cannot pay the fees this year.",
]
FAMILY = [
    "Lives with both parents; six children; the cocoa income fell this season.",
    "Vit chez un oncle planteur ; les parents sont restés au Burkina Faso.",
    "Mother is a widow farming two hectares alone; the older children help on the farm.",
    "Famille de huit personnes ; le père est malade depuis la dernière récolte.",
]
#: the note an officer addresses to a supervisor when a worst form's plan goes for approval
URGENT_NOTE = (
    "Protection plan submitted today: the child must leave the farm this week. Please decide on "
    "the plan first."
)
FINDINGS = [
    "Seen at the farm during school hours, carrying pods with a machete.",
    "L'enfant était au champ avec le pulvérisateur ; confirmé avec le chef de ménage.",
    "Confirmed with the child and the household head: works every day after school.",
]
LESSONS = [
    "The school kit and the cooperative's labour group were enough once the family agreed.",
    "Le suivi régulier du moniteur a convaincu la famille ; l'AGR de la mère a payé la scolarité.",
    "Early contact with the school director made the re-enrolment quick.",
]


@dataclass
class CaseWork:
    """What the demo's officers did: cases opened and where they stand."""

    opened: int = 0
    by_state: dict[str, int] = field(default_factory=dict)
    referrals: int = 0
    refused: list[str] = field(default_factory=list)


# --- providers ---------------------------------------------------------------------------------


def seed_providers(session: Session) -> dict[str, str]:
    """The catalogue and providers for the demo's areas: a school per department, a civil
    registry per department, a social centre and a health centre per region, and national legal
    aid, police and NGO. Returns ``{role-like key: provider code}`` for the demo's accounts."""
    ensure_services(session)
    areas = list(session.scalars(select(Area).order_by(Area.code)))
    departments = [a for a in areas if a.level == "department"]
    regions = [a for a in areas if a.level == "region"]
    made: dict[str, str] = {}

    def add(code, name, kind, area, services, key=None):
        save_provider(session, ProviderInput(
            code=code[:64], name=name, kind=kind, area=area.code if area else "",
            services=services, email=f"{code[:40].lower()}@example.org"), new=True)  # fmt: skip
        if key and key not in made:
            made[key] = code[:64]

    for a in departments:
        short = a.code.split("-", 1)[-1]
        add(
            f"SCH-{short}",
            f"École primaire publique de {a.name}",
            "school",
            a,
            ("school_enrolment", "school_kit_costs", "bridging_classes"),
            "school",
        )
        add(f"ETC-{short}", f"Centre d'état civil de {a.name}", "local_authority", a,
            ("birth_certificate",))  # fmt: skip
    for a in regions:
        short = a.code.split("-", 1)[-1]
        add(
            f"SOC-{short}",
            f"Centre social de {a.name}",
            "social_services",
            a,
            (
                "psychosocial_support",
                "cash_transfer",
                "emergency_protection",
                "family_reunification",
                "awareness_counselling",
            ),
            "social",
        )
        add(f"SAN-{short}", f"Centre de santé de {a.name}", "clinic", a, ("health_care",))
    add(
        "POL-BPM",
        "Brigade de protection des mineurs",
        "police",
        None,
        ("law_enforcement_referral", "emergency_protection"),
    )
    add("JUR-CLINIQUE", "Clinique juridique d'Abidjan", "legal_aid", None, ("legal_aid",))
    add("ONG-ENFANCE", "ONG Enfance et Avenir", "ngo", None,
        ("income_generating_activity", "community_service_group", "vocational_training",
         "awareness_counselling"))  # fmt: skip
    return made


def provider_usernames(session: Session) -> list[tuple[str, str]]:
    """``(username, provider code)`` for one sign-in per provider organisation."""
    codes = session.scalars(select(ServiceProvider.code).order_by(ServiceProvider.code))
    return [(f"provider-{code.lower()}"[:80], code) for code in codes]


# --- alerts dated as if synchronised on the day of the visit -----------------------------------


def date_alerts_as_synced(session: Session) -> int:
    """Date each alert as if its visit had reached the server the same day (six hours later),
    with its deadlines counted from then, and the ``raised`` line of its history with it (the
    alert page's "raised" and its history say the same moment, as the intake writes them);
    alerts never move into the future."""
    now = utcnow()
    rows = session.execute(select(Alert.id, Alert.category, Alert.last_seen_at)).all()
    values = []
    for alert_id, category, seen in rows:
        created = min(seen + dt.timedelta(hours=6), now)
        ack_due, visit_due = rules.deadlines(category, created)
        values.append({"row_id": alert_id, "created_at": created, "updated_at": created,
                       "ack_due_at": ack_due, "visit_due_at": visit_due})  # fmt: skip
    if values:
        from sqlalchemy import bindparam

        session.execute(
            update(Alert.__table__).where(Alert.__table__.c.id == bindparam("row_id")),
            values,
        )
        events = AlertEvent.__table__
        session.execute(
            update(events)
            .where(events.c.alert_id == bindparam("row_id"), events.c.action == "raised")
            .values(at=bindparam("created_at")),
            [{"row_id": v["row_id"], "created_at": v["created_at"]} for v in values],
        )
    return len(values)


# --- officers at work ---------------------------------------------------------------------------


def work_cases(
    sessions, rng: random.Random, progress=None, share: float = 0.35, *, policy: wf.Policy
) -> CaseWork:
    """Officers open cases from the alerts of child labour (``share`` of them, and every worst
    form) and take each as far as the time since its visit allows, by the workflow's settings
    ``policy``; one transaction per case."""
    from alerts.notify import users_for_villages

    now = utcnow()
    work = CaseWork()
    with sessions() as session:
        alerts = session.execute(
            select(Alert.id, Alert.category, Alert.created_at, Alert.village_id)
            .where(Alert.status == "new", Alert.source == "visit",
                   Alert.category.in_(CHILD_LABOUR))
            .order_by(Alert.id)
        ).all()  # fmt: skip
        chosen = [a for a in alerts if a.category == "worst_form" or rng.random() < share]
        officers = users_for_villages(session, [a.village_id for a in chosen], "officer")
        supervisors = users_for_villages(session, [a.village_id for a in chosen], "supervisor")
        officer_ids = {v: [u.id for u in us] for v, us in officers.items()}
        supervisor_ids = {v: [u.id for u in us] for v, us in supervisors.items()}
    for done, a in enumerate(chosen, start=1):
        if not officer_ids.get(a.village_id):
            continue
        try:
            with sessions() as session:
                state = _one_case(session, rng, a, officer_ids[a.village_id],
                                  supervisor_ids.get(a.village_id, []), now, policy)  # fmt: skip
            work.opened += 1
            work.by_state[state] = work.by_state.get(state, 0) + 1
        except Problem as p:  # a refusal is the demo's own bug: report it, go on
            work.refused.append(f"alert {a.id}: {p.message}")
        if progress is not None:
            progress(done)
    with sessions() as session:
        from sqlalchemy import func

        from clms.models import Referral

        work.referrals = session.scalar(select(func.count()).select_from(Referral)) or 0
    return work


def _one_case(
    session: Session, rng: random.Random, a, officer_ids, supervisor_ids, now, policy: wf.Policy
) -> str:
    """One case from the alert ``a``, taken step by step (verification, assessment, plan,
    consents and referrals, the providers' answers) as far as the time since its visit allows;
    returns the state it reached (by the workflow's settings ``policy``). One piece on purpose:
    the case's story reads in the order it happens, each step dated from the one before (and the
    seeded draws stay in that order).
    """
    officer = session.get(User, rng.choice(officer_ids))
    t = a.created_at + dt.timedelta(hours=rng.randint(2, 60))
    if t > now:
        t = now
    case = open_case(session, officer, a.id, policy=policy, now=t)

    def step(days: float) -> dt.datetime | None:
        nonlocal t
        t = t + dt.timedelta(days=days)
        return t if t <= now else None

    when = step(rng.uniform(0.5, 3))
    if when is None:
        return case.state
    if rng.random() < 0.07:
        record_verification(
            session,
            officer,
            case.id,
            confirmed=False,
            visited_on=when.date(),
            policy=policy,
            now=when,
            reason="L'enfant a 18 ans révolus ; il travaille comme ouvrier.",
        )
        return case.state  # fmt: skip
    record_verification(session, officer, case.id, confirmed=True, visited_on=when.date(),
                        findings=rng.choice(FINDINGS), policy=policy, now=when)  # fmt: skip
    when = step(rng.uniform(1, 5))
    if when is None:
        return case.state
    risk = {"worst_form": "high", "hazardous": rng.choice(["high", "medium", "medium"]),
            "child_labour": rng.choice(["medium", "low", "low"])}[a.category]  # fmt: skip
    in_danger = a.category == "worst_form"
    record_assessment(session, officer, case.id, AssessmentInput(
        risk_level=risk, child_views=rng.choice(CHILD_VIEWS), family_situation=rng.choice(FAMILY),
        schooling=rng.choice(["dropped_out", "irregular", "attending"]),
        immediate_safety="in_danger" if in_danger else rng.choice(["safe", "safe", "at_risk"]),
        safety_notes="Needs protection away from the farm owner." if in_danger
        else "Carries loads on the road to the collection point.",
        response_types=["education", "economic_strengthening"]
        + (["legal_protection", "family_tracing"] if in_danger else []),
        response_level="protection" if in_danger else "remediation"),
        policy=policy, now=when)  # fmt: skip
    view_providers = _providers_for(session, case)
    services = ["school_kit_costs", "school_enrolment"] if rng.random() < 0.6 else [
        "school_kit_costs", "income_generating_activity"]  # fmt: skip
    if in_danger:
        services = ["emergency_protection", "family_reunification", "psychosocial_support"]
    planned = []
    for code in services:
        provider = view_providers.get(code)
        if provider is None:
            continue
        planned.append(add_planned_service(
            session, officer, case.id, service_code=code, provider_code=provider,
            due_on=(when + dt.timedelta(days=rng.randint(20, 40))).date(), policy=policy,
            now=when))  # fmt: skip
    submit_plan(session, officer, case.id, policy=policy, now=when)
    if in_danger and supervisor_ids:  # a worst form: the officer asks a supervisor to look
        first = session.get(User, supervisor_ids[0])
        add_note(session, officer, case.id, URGENT_NOTE, for_user=first.username, policy=policy,
                 now=when)  # fmt: skip
    if case.state == "action_plan":  # waiting for a supervisor
        when = step(rng.uniform(0.5, 3))
        if when is None or not supervisor_ids:
            return case.state
        supervisor = session.get(User, rng.choice(supervisor_ids))
        decide_plan(session, supervisor, case.id, approve=True, policy=policy, now=when)
    when = step(rng.uniform(0.5, 2))
    if when is None:
        return case.state
    consented = set()
    for p in planned:
        provider = session.get(ServiceProvider, p.provider_id)
        if provider.code not in consented:
            record_consent(
                session,
                officer,
                case.id,
                provider_code=provider.code,
                given_by="child_and_guardian",
                method="verbal",
                shares=["first_name", "age", "sex", "village"],
                policy=policy,
                now=when,
            )
            consented.add(provider.code)  # fmt: skip
        refer(session, officer, case.id, planned_service_id=p.id, policy=policy, now=when)
    for referral_id, provider_id in _open_referrals(session, case.id):
        when = step(rng.uniform(0.5, 4))
        if when is None:
            return case.state
        staff = session.scalar(select(User).where(User.provider_id == provider_id))
        if staff is None:
            continue
        if rng.random() < 0.08:
            reject_referral(session, staff, referral_id, policy=policy, now=when,
                            reason="Plus de places cette année scolaire.",
                            outcome="service_unavailable")  # fmt: skip
            continue
        accept_referral(session, staff, referral_id, policy=policy, now=when)
        done = when + dt.timedelta(days=rng.uniform(3, 20))
        if done <= now and rng.random() < 0.85:
            complete_referral(session, staff, referral_id, outcome="service_provided",
                              service_date=done.date(), policy=policy, now=done)  # fmt: skip
    return case.state


def _providers_for(session: Session, case: Case) -> dict[str, str]:
    """Service code -> the code of a provider of the case's area (the nearest first)."""
    area_ids = []
    area = session.get(Area, session.get(Village, case.village_id).area_id)
    while area is not None:
        area_ids.append(area.id)
        area = session.get(Area, area.parent_id) if area.parent_id else None
    found: dict[str, str] = {}
    for area_id in [*area_ids, None]:
        where = (ServiceProvider.area_id.is_(None) if area_id is None
                 else ServiceProvider.area_id == area_id)  # fmt: skip
        for p in session.scalars(
            select(ServiceProvider).where(where).order_by(ServiceProvider.code)
        ):
            for code in p.services:
                found.setdefault(code, p.code)
    return found


def _open_referrals(session: Session, case_id: int) -> list[tuple[int, int]]:
    from clms.models import Referral

    return list(
        session.execute(
            select(Referral.id, Referral.provider_id)
            .where(Referral.case_id == case_id, Referral.status == "pending")
            .order_by(Referral.id)
        )
    )


# --- follow-ups and closures ---------------------------------------------------------------------


def followup_plan(session: Session, rng: random.Random) -> list[tuple[Case, dt.datetime]]:
    """When the monitors visited the cases in implementation: every 30-40 days from the start of
    implementation, up to today. Returns ``(case, visit time)`` in time order."""
    now = utcnow()
    visits = []
    for case in session.scalars(
        select(Case).where(Case.state == "implementation").order_by(Case.id)
    ):
        t = case.state_changed_at + dt.timedelta(days=rng.uniform(8, 20))
        while t <= now - dt.timedelta(hours=2):
            visits.append((case, t))
            t += dt.timedelta(days=rng.uniform(30, 40))
    return sorted(visits, key=lambda pair: pair[1])


def approve_closures(sessions, rng: random.Random, share: float = 0.6, *, policy: wf.Policy) -> int:
    """Supervisors approve some of the closures the system proposed (the rest wait in their
    queue, for the demo to show), by the workflow's settings ``policy``. A case whose record holds
    a sign of a worst form or of trafficking (:func:`clms.cases.signs.signs_of`) is never
    approved here: it waits for a supervisor to read the signs, as a real one must."""
    from alerts.notify import users_for_villages

    approved = 0
    with sessions() as session:
        cases = session.execute(
            select(Case.id, Case.village_id).where(Case.state == "closure_review").order_by(Case.id)
        ).all()
        supervisors = users_for_villages(session, [c.village_id for c in cases], "supervisor")
        by_village = {v: [u.id for u in us] for v, us in supervisors.items()}
    for case_id, village_id in cases:
        if rng.random() > share or not by_village.get(village_id):
            continue
        with sessions() as session:
            if signs_of(session, session.get(Case, case_id)):
                continue
            supervisor = session.get(User, rng.choice(by_village[village_id]))
            decide_closure(
                session,
                supervisor,
                case_id,
                approve=True,
                outcome="remediated",
                lessons_learned=rng.choice(LESSONS),
                root_causes=rng.sample(
                    ["household_income", "school_costs", "labour_shortage", "social_norms"], 2
                ),
                policy=policy,
            )
            approved += 1  # fmt: skip
    return approved


#: the demo's people read their notices as they came: those older than this are read
NOTICES_READ_AFTER = dt.timedelta(days=14)


def read_old_notices(session: Session, now: dt.datetime | None = None) -> int:
    """Mark read, as it came, each notice older than :data:`NOTICES_READ_AFTER`: the
    demo simulates months of work at once, and its people would have opened what came then; what
    is left unread is the last fortnight's. Returns how many."""
    now = now or utcnow()
    result = session.execute(
        update(Notice)
        .where(Notice.read_at.is_(None), Notice.created_at < now - NOTICES_READ_AFTER)
        .values(read_at=Notice.created_at)
    )
    return result.rowcount or 0
