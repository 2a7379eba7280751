"""Hotspot releases: a brand's figures of one period, released once."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Date, ForeignKey, Integer, LargeBinary, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from clms.db import Base
from clms.models.base import UTCDateTime


class HotspotRelease(Base):
    """One reporting period of one brand's hotspot figures, released once and never changed
    (geo.hotspots.releases): the counts of every cell, layer and supplier part before the privacy
    gate, with the chain and the places as they were; every answer to the brand gates them."""

    __tablename__ = "hotspot_releases"
    __table_args__ = (
        UniqueConstraint("brand_id", "start", "months", name="uq_hotspot_releases_period"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"), index=True)
    start: Mapped[dt.date] = mapped_column(Date)
    months: Mapped[int] = mapped_column(Integer)
    released_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    # zlib-compressed JSON (geo.hotspots.releases.Release)
    payload: Mapped[bytes] = mapped_column(LargeBinary)
