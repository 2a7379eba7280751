"""Kept facts: figures' rows maintained as data arrives (issue 19), read by the indicators
instead of every visit, child visit and classification (:mod:`clms.facts` keeps them)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, Index, Integer, String, false
from sqlalchemy.orm import Mapped, mapped_column

from clms.db import Base
from clms.models.base import UTCDateTime


class KpiChildFact(Base):
    """One current classification of a child on a current visit, with every dimension a figure
    is grouped or filtered by, denormalised, and what spares the request a ranking: for each
    partition the figures rank in (the child; the child in one village, area, supplier, tier,
    monitor), ``next_*_at``, when the child's next such row is (order: visited_at, visit id,
    child visit id; NULL: none), and ``labour_*_at``, the latest such row up to this one that
    was child labour. Derived data: :func:`clms.facts.rebuild` makes it again from the rows."""

    __tablename__ = "kpi_child_facts"
    child_visit_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    classification_id: Mapped[int] = mapped_column(Integer)
    child_id: Mapped[int] = mapped_column(Integer)
    visit_id: Mapped[int] = mapped_column(Integer)
    household_id: Mapped[int | None] = mapped_column(Integer)
    visited_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    kind: Mapped[str] = mapped_column(String(12))
    village_id: Mapped[int | None] = mapped_column(Integer)
    area_id: Mapped[int | None] = mapped_column(Integer)
    # the visit's supplier, else the household's (the indicators); the visit's own (hotspots)
    supplier_id: Mapped[int | None] = mapped_column(Integer)
    visit_supplier_id: Mapped[int | None] = mapped_column(Integer)
    tier: Mapped[int | None] = mapped_column(Integer)
    monitor_id: Mapped[int | None] = mapped_column(Integer)
    sex: Mapped[str | None] = mapped_column(String(10))
    age_band: Mapped[str | None] = mapped_column(String(8))
    category: Mapped[str] = mapped_column(String(20))
    sdg_871: Mapped[bool] = mapped_column(Boolean)
    in_labour: Mapped[bool] = mapped_column(Boolean)
    # every row of the child is in one village (not none): a filter by villages keeps all or none
    single_village: Mapped[bool] = mapped_column(Boolean)
    # every row of the child has the same supplier, tier or monitor, or none has one: a filter
    # by one of them keeps all of the child's rows or none (migration 0024)
    single_supplier: Mapped[bool] = mapped_column(Boolean, server_default=false())
    single_tier: Mapped[bool] = mapped_column(Boolean, server_default=false())
    single_monitor: Mapped[bool] = mapped_column(Boolean, server_default=false())
    next_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    next_village_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    next_area_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    next_supplier_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    next_tier_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    next_monitor_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    labour_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    labour_village_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    labour_area_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    labour_supplier_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    labour_tier_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    labour_monitor_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    __table_args__ = (
        Index("ix_kpi_child_facts_child", "child_id", "visited_at"),
        Index("ix_kpi_child_facts_visited", "visited_at"),
        Index("ix_kpi_child_facts_household", "household_id"),
        Index("ix_kpi_child_facts_supplier", "supplier_id"),
        Index("ix_kpi_child_facts_village", "village_id"),
    )
