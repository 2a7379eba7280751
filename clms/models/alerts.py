"""Alerts: a child found in work or a reported concern, and what happened to it."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from sqlalchemy import Boolean, CheckConstraint, Column, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from clms.db import Base
from clms.models.base import JSONType, UTCDateTime, utcnow

if TYPE_CHECKING:
    from clms.models.people import User
    from clms.models.places import Village
    from clms.models.supply import Supplier
    from clms.models.visits import Child, Household, Report


# --- alerts ------------------------------------------------------------------------------------

SEVERITIES = ("critical", "high", "medium", "low")
#: withdrawn: closed by the system because every visit behind it was withdrawn by its server
ALERT_STATUSES = ("new", "acknowledged", "dismissed", "case_opened", "withdrawn")
ACTIVE_ALERT_STATUSES = ("new", "acknowledged")


class Alert(Base):
    """A child found in work (source ``visit``) or a reported concern (source ``reported``).

    A child has at most one active alert (new or acknowledged): later visits update it and a worse
    category raises its severity. ``severity_rank`` (critical 4 ... low 1) orders the queue.
    """

    __tablename__ = "alerts"
    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(10))  # visit or reported
    status: Mapped[str] = mapped_column(String(12), default="new")
    child_id: Mapped[int | None] = mapped_column(ForeignKey("children.id"), index=True)
    household_id: Mapped[int | None] = mapped_column(ForeignKey("households.id"))
    report_id: Mapped[int | None] = mapped_column(ForeignKey("reports.id"), unique=True)
    village_id: Mapped[int | None] = mapped_column(ForeignKey("villages.id"), index=True)
    supplier_id: Mapped[int | None] = mapped_column(ForeignKey("suppliers.id"), index=True)
    category: Mapped[str] = mapped_column(String(20))
    severity: Mapped[str] = mapped_column(String(10))
    severity_rank: Mapped[int] = mapped_column(Integer)
    reasons: Mapped[list] = mapped_column(JSONType, default=list)
    needs_verification: Mapped[bool] = mapped_column(Boolean, default=True)
    classification_id: Mapped[int | None] = mapped_column(ForeignKey("classifications.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)  # the latest visit or report
    ack_due_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    visit_due_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    acknowledged_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    acknowledged_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    first_visit_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)  # officer's visit
    assigned_to_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    dismissed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    dismissed_reason: Mapped[str | None] = mapped_column(Text)
    escalated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    child: Mapped[Child | None] = relationship()
    household: Mapped[Household | None] = relationship()
    report: Mapped[Report | None] = relationship()
    village: Mapped[Village | None] = relationship()
    supplier: Mapped[Supplier | None] = relationship()
    assigned_to: Mapped[User | None] = relationship(foreign_keys=[assigned_to_id])
    __table_args__ = (
        CheckConstraint("source IN ('visit','reported')", name="ck_alerts_source"),
        CheckConstraint(
            "status IN ('new','acknowledged','dismissed','case_opened','withdrawn')",
            name="ck_alerts_status",
        ),
        CheckConstraint(
            "severity IN ('critical','high','medium','low')", name="ck_alerts_severity"
        ),
        # the rule that makes a retried or concurrent submission unable to duplicate an alert
        Index(
            "uq_alerts_active_child",
            "child_id",
            unique=True,
            sqlite_where=Column("status").in_(ACTIVE_ALERT_STATUSES),
            postgresql_where=Column("status").in_(ACTIVE_ALERT_STATUSES),
        ),
        Index("ix_alerts_queue", "status", "severity_rank", "ack_due_at"),
        # the officer's queue: scope (village) within status, and every column of its order and
        # of the overdue rule, so the count and the sort read the index, never the wide rows
        # (bench/alert_queue.py: first page p95 451 -> 43 ms on SQLite with 100,000 alerts)
        Index(
            "ix_alerts_scope_queue",
            "status",
            "village_id",
            "severity_rank",
            "ack_due_at",
            "acknowledged_at",
            "visit_due_at",
            "first_visit_at",
        ),
        # the active queue in its urgency order within each severity, whatever the scope: the
        # page after a row (paged by key) reads the next rows of the index in order and stops, so
        # page 1,000 of the country costs what page 1 does (issue 19; bench/alert_queue.py)
        Index(
            "ix_alerts_active_order",
            "severity_rank",
            "ack_due_at",
            "id",
            "village_id",
            "acknowledged_at",
            "visit_due_at",
            "first_visit_at",
            sqlite_where=Column("status").in_(ACTIVE_ALERT_STATUSES),
            postgresql_where=Column("status").in_(ACTIVE_ALERT_STATUSES),
        ),
        # a supervisor's "Escalated to you": the few escalated alerts, not every active one
        Index(
            "ix_alerts_escalated",
            "status",
            "village_id",
            sqlite_where=Column("escalated_at").is_not(None),
            postgresql_where=Column("escalated_at").is_not(None),
        ),
    )


class AlertEvent(Base):
    """Something that happened to an alert, by whom (None: the system) and when."""

    __tablename__ = "alert_events"
    id: Mapped[int] = mapped_column(primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id"), index=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # raised, updated, severity_raised, acknowledged, assigned, dismissed, escalated, case_opened
    action: Mapped[str] = mapped_column(String(20))
    detail: Mapped[dict] = mapped_column(JSONType, default=dict)
    user: Mapped[User | None] = relationship()
