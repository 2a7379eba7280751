"""Cases and their workflow: events, assessments, services and providers, plans, consents,
referrals, transfers, and the merging of duplicate children.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from clms.cases import workflow
from clms.db import Base
from clms.models.base import JSONType, UTCDateTime, utcnow

if TYPE_CHECKING:
    from clms.models.people import User
    from clms.models.places import Area, Village
    from clms.models.supply import Supplier
    from clms.models.visits import Child


#: the case workflow's states (its rules: clms.cases.workflow, pure, imported here for the schema)
CASE_STATES = workflow.STATES
#: states in which a case still needs work here (closed and transferred ones need none)
OPEN_CASE_STATES = workflow.OPEN_STATES


class Case(Base):
    """A remediation case for one child: the workflow of domain.md section 5.

    The states and the rules for moving between them are in :mod:`clms.cases.workflow`; every
    change goes through the operations of :mod:`clms.cases` (one module per step) and adds a
    :class:`CaseEvent`. ``version`` grows with every change: a change made on a stale page is
    refused instead of overwriting.
    """

    __tablename__ = "cases"
    id: Mapped[int] = mapped_column(primary_key=True)
    case_number: Mapped[str] = mapped_column(String(40), unique=True)
    child_id: Mapped[int] = mapped_column(ForeignKey("children.id"), index=True)
    village_id: Mapped[int | None] = mapped_column(ForeignKey("villages.id"), index=True)
    supplier_id: Mapped[int | None] = mapped_column(
        ForeignKey("suppliers.id", name="fk_cases_supplier"), index=True
    )
    state: Mapped[str] = mapped_column(String(20), default="verification")
    version: Mapped[int] = mapped_column(Integer, default=1)
    # the gravest category found while the case is open (worst_form needs supervisor approval)
    category: Mapped[str | None] = mapped_column(String(20))
    risk_level: Mapped[str | None] = mapped_column(String(10))  # of the latest assessment
    opened_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    opened_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", name="fk_cases_opener"))
    state_changed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    alert_id: Mapped[int | None] = mapped_column(
        ForeignKey("alerts.id", use_alter=True, name="fk_cases_alert")
    )
    officer_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", name="fk_cases_officer"), index=True
    )
    # the monitor who does the follow-up visits: only their phone lists the case (cases.csv)
    monitor_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", name="fk_cases_monitor"), index=True
    )
    # step 1: the officer's verification visit
    verified_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    verification: Mapped[str | None] = mapped_column(String(20))  # confirmed, not_confirmed
    # step 5: proposed for closure (by the system when the criteria hold, or by an officer)
    closure_proposed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # step 6: the closure report
    outcome: Mapped[str | None] = mapped_column(String(40))
    closure_reason: Mapped[str | None] = mapped_column(Text)
    lessons_learned: Mapped[str | None] = mapped_column(Text)
    root_causes: Mapped[list] = mapped_column(JSONType, default=list)
    closed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", name="fk_cases_closer"))
    reopened_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    reopen_count: Mapped[int] = mapped_column(Integer, default=0)
    # the deadline of the current step; past it the case escalates to a supervisor, once a step
    step_due_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    step_escalated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    next_followup_due_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    followup_reminded_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    child: Mapped[Child] = relationship()
    village: Mapped[Village | None] = relationship()
    supplier: Mapped[Supplier | None] = relationship()
    officer: Mapped[User | None] = relationship(foreign_keys=[officer_id])
    monitor: Mapped[User | None] = relationship(foreign_keys=[monitor_id])
    __table_args__ = (
        CheckConstraint(
            "state IN ('verification','assessment','action_plan','implementation',"
            "'closure_review','closed','reopened','transferred')",
            name="ck_cases_state",
        ),
        CheckConstraint(
            "risk_level IS NULL OR risk_level IN ('high','medium','low')", name="ck_cases_risk"
        ),
        # one case a child at a time: a child found in work again goes to the open case
        Index(
            "uq_cases_open_child",
            "child_id",
            unique=True,
            sqlite_where=Column("state").in_(OPEN_CASE_STATES),
            postgresql_where=Column("state").in_(OPEN_CASE_STATES),
        ),
        # the case list: scope (village) within state, newest first
        Index("ix_cases_list", "village_id", "state", "opened_at"),
        # a supervisor's "Escalated to you": the few escalated steps, not every open case
        Index(
            "ix_cases_step_escalated",
            "village_id",
            "state",
            sqlite_where=Column("step_escalated_at").is_not(None),
            postgresql_where=Column("step_escalated_at").is_not(None),
        ),
    )


class CaseEvent(Base):
    """One line of a case's timeline: what happened, by whom (None: the system) and when."""

    __tablename__ = "case_events"
    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    action: Mapped[str] = mapped_column(String(30))
    from_state: Mapped[str | None] = mapped_column(String(20))
    to_state: Mapped[str | None] = mapped_column(String(20))
    detail: Mapped[dict] = mapped_column(JSONType, default=dict)
    user: Mapped[User | None] = relationship()


class CaseWithdrawal(Base):
    """A flag on a case: a submission behind it (the visit that raised its alert, or one it took)
    was withdrawn by its server (deleted, rejected, not approved). The case is never closed for
    it: the officer reads the flag and acknowledges it with a note; a restore there clears it."""

    __tablename__ = "case_withdrawals"
    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    # the current version of the withdrawn logical submission, when the flag was raised
    submission_id: Mapped[int] = mapped_column(ForeignKey("submissions.id"))
    reason: Mapped[str] = mapped_column(String(20))  # deleted, rejected, not_approved
    server: Mapped[str] = mapped_column(String(200))  # the pull source's name, or its kind
    withdrawn_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    flagged_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    acknowledged_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    acknowledged_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    note: Mapped[str | None] = mapped_column(Text)
    restored_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    acknowledged_by: Mapped[User | None] = relationship(foreign_keys=[acknowledged_by_id])
    __table_args__ = (
        CheckConstraint(
            "reason IN ('deleted','rejected','not_approved')", name="ck_case_withdrawals_reason"
        ),
    )


class Assessment(Base):
    """A best-interest assessment (step 2): the child's situation and the response it needs.

    A case may be assessed again (after a reopening, or when the situation changes); the latest
    one is the case's ``risk_level``. ``child_views`` holds the child's own words.
    """

    __tablename__ = "assessments"
    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    assessed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    assessed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    risk_level: Mapped[str] = mapped_column(String(10))
    child_views: Mapped[str] = mapped_column(Text)
    family_situation: Mapped[str] = mapped_column(Text)
    schooling: Mapped[str] = mapped_column(String(30))  # attending, irregular, dropped_out, never
    schooling_notes: Mapped[str | None] = mapped_column(Text)
    immediate_safety: Mapped[str] = mapped_column(String(20))  # safe, at_risk, in_danger
    safety_notes: Mapped[str | None] = mapped_column(Text)
    response_types: Mapped[list] = mapped_column(JSONType, default=list)
    response_level: Mapped[str] = mapped_column(String(20))  # prevention, remediation, protection
    assessed_by: Mapped[User | None] = relationship()
    __table_args__ = (
        CheckConstraint("risk_level IN ('high','medium','low')", name="ck_assessments_risk"),
    )


class ServiceType(Base):
    """A remediation service of the catalogue (domain.md section 5); administrators edit it.

    ``code`` is what the follow-up form's ``services_received`` reports. An ``urgent`` service
    (emergency protection, law enforcement, health care) may be referred at any step: urgent
    protection never waits for an assessment or a plan.
    """

    __tablename__ = "service_types"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name_en: Mapped[str] = mapped_column(String(200))
    name_fr: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    min_age: Mapped[int | None] = mapped_column(Integer)
    max_age: Mapped[int | None] = mapped_column(Integer)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    sort_order: Mapped[int] = mapped_column(Integer, default=0)


class ServiceProvider(Base):
    """An organisation that delivers services: a school, clinic, legal aid clinic, social services.

    Its people sign in with the ``provider`` role (``User.provider_id``) and see only the
    referrals sent to it. ``area_id`` None: it serves everywhere.
    """

    __tablename__ = "service_providers"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(30))
    email: Mapped[str | None] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(50))
    area_id: Mapped[int | None] = mapped_column(ForeignKey("areas.id"))
    services: Mapped[list] = mapped_column(JSONType, default=list)  # service type codes
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    area: Mapped[Area | None] = relationship()


class ActionPlan(Base):
    """The remediation plan of a case (step 3); a revised plan is a new version.

    ``status``: draft, submitted (waiting for a supervisor), approved (or ``auto``: no approval
    needed), returned (by the supervisor, with a note), superseded (a newer version exists).
    """

    __tablename__ = "action_plans"
    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    status: Mapped[str] = mapped_column(String(12), default="draft")
    needs_approval: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    submitted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    submitted_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decision_note: Mapped[str | None] = mapped_column(Text)
    services: Mapped[list[PlannedService]] = relationship(
        back_populates="plan", order_by="PlannedService.id"
    )
    __table_args__ = (UniqueConstraint("case_id", "version", name="uq_action_plans_version"),)


class PlannedService(Base):
    """A service the plan gives the child: which, who delivers it, by when, and what came of it.

    ``status``: planned, referred, delivered, closed (not delivered, with ``closed_reason``).
    """

    __tablename__ = "planned_services"
    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    plan_id: Mapped[int | None] = mapped_column(ForeignKey("action_plans.id"), index=True)
    service_code: Mapped[str] = mapped_column(String(40))
    provider_id: Mapped[int] = mapped_column(ForeignKey("service_providers.id"))
    due_on: Mapped[dt.date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(12), default="planned")
    closed_reason: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    delivered_source: Mapped[str | None] = mapped_column(String(12))  # referral, followup, officer
    notes: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    plan: Mapped[ActionPlan | None] = relationship(back_populates="services")
    provider: Mapped[ServiceProvider] = relationship()
    __table_args__ = (
        CheckConstraint(
            "status IN ('planned','referred','delivered','closed')", name="ck_planned_status"
        ),
    )


class Consent(Base):
    """The child's or guardian's consent to share the case with one provider, and what it covers.

    ``shares`` lists the items of :data:`clms.cases.workflow.SHAREABLE` the provider may see.
    Withdrawing it stops new referrals to that provider (those sent stay, the record says so).
    """

    __tablename__ = "consents"
    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("service_providers.id"))
    given_by: Mapped[str] = mapped_column(String(20))  # child, guardian, child_and_guardian
    method: Mapped[str] = mapped_column(String(20))  # verbal, written, thumbprint
    shares: Mapped[list] = mapped_column(JSONType, default=list)
    notes: Mapped[str | None] = mapped_column(Text)
    recorded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    withdrawn_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    withdrawn_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    provider: Mapped[ServiceProvider] = relationship()


REFERRAL_STATUSES = ("pending", "accepted", "rejected", "done", "revoked")
REFERRAL_OUTCOMES = (
    "referred",
    "service_provided",
    "already_received_elsewhere",
    "not_applicable",
    "declined_by_child_or_family",
    "service_unavailable",
)


class Referral(Base):
    """A case referred to a provider for one service, under a consent or an authorised override.

    ``shared`` is exactly what the provider may see of the child, fixed when the referral is sent.
    """

    __tablename__ = "referrals"
    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    planned_service_id: Mapped[int | None] = mapped_column(ForeignKey("planned_services.id"))
    provider_id: Mapped[int] = mapped_column(ForeignKey("service_providers.id"), index=True)
    service_code: Mapped[str] = mapped_column(String(40))
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(10), default="pending")
    outcome: Mapped[str] = mapped_column(String(30), default="referred")
    consent_id: Mapped[int | None] = mapped_column(ForeignKey("consents.id"))
    override_reason: Mapped[str | None] = mapped_column(Text)
    override_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    shared: Mapped[list] = mapped_column(JSONType, default=list)
    message: Mapped[str | None] = mapped_column(Text)  # from the officer to the provider
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    respond_by: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    complete_by: Mapped[dt.date | None] = mapped_column(Date)
    responded_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    responded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    rejection_reason: Mapped[str | None] = mapped_column(Text)
    done_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    service_date: Mapped[dt.date | None] = mapped_column(Date)
    outcome_note: Mapped[str | None] = mapped_column(Text)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    revoked_reason: Mapped[str | None] = mapped_column(Text)
    escalated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    case: Mapped[Case] = relationship()
    provider: Mapped[ServiceProvider] = relationship()
    __table_args__ = (
        CheckConstraint(
            "status IN ('pending','accepted','rejected','done','revoked')",
            name="ck_referrals_status",
        ),
        CheckConstraint(
            "consent_id IS NOT NULL OR override_reason IS NOT NULL", name="ck_referrals_consent"
        ),
        Index("ix_referrals_provider_status", "provider_id", "status"),
        # a supervisor's "Escalated to you": the referrals the job escalated
        Index(
            "ix_referrals_escalated",
            "case_id",
            sqlite_where=Column("escalated_at").is_not(None),
            postgresql_where=Column("escalated_at").is_not(None),
        ),
    )


class CaseTransfer(Base):
    """A case handed to another agency or jurisdiction (migrant children), and what was shared."""

    __tablename__ = "case_transfers"
    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    kind: Mapped[str] = mapped_column(String(10))  # internal (another village here) or external
    to_agency: Mapped[str] = mapped_column(String(200))
    to_country: Mapped[str | None] = mapped_column(String(3))
    to_village_id: Mapped[int | None] = mapped_column(ForeignKey("villages.id"))
    from_village_id: Mapped[int | None] = mapped_column(ForeignKey("villages.id"))
    to_contact: Mapped[str | None] = mapped_column(String(300))
    reason: Mapped[str] = mapped_column(Text)
    shared: Mapped[list] = mapped_column(JSONType, default=list)
    consent_basis: Mapped[str] = mapped_column(String(20))  # consent or best_interests
    transferred_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    transferred_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class ChildMerge(Base):
    """Two records found to be the same child, merged: the visits, classifications, alerts and
    cases of ``merged_child_id`` now belong to ``kept_child_id``; the merged row stays (its
    pseudonymous id still leads to the kept child)."""

    __tablename__ = "child_merges"
    id: Mapped[int] = mapped_column(primary_key=True)
    kept_child_id: Mapped[int] = mapped_column(ForeignKey("children.id"), index=True)
    merged_child_id: Mapped[int] = mapped_column(ForeignKey("children.id"), unique=True)
    merged_uid: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str] = mapped_column(Text)
    moved: Mapped[dict] = mapped_column(JSONType, default=dict)  # table -> rows moved
    merged_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    merged_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class DuplicateDismissal(Base):
    """An officer's decision that two similar records are different children (not shown again).
    The pair is stored with the lower id first."""

    __tablename__ = "duplicate_dismissals"
    child_a_id: Mapped[int] = mapped_column(ForeignKey("children.id"), primary_key=True)
    child_b_id: Mapped[int] = mapped_column(ForeignKey("children.id"), primary_key=True)
    decided_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    __table_args__ = (CheckConstraint("child_a_id < child_b_id", name="ck_dup_pair_order"),)
