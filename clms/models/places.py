"""Places: administrative areas and the villages where households are visited."""

from __future__ import annotations

from sqlalchemy import Float, ForeignKey, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from clms.db import Base

AREA_LEVELS = ("country", "region", "department", "district", "subdistrict")


# --- places and supply chain -------------------------------------------------------------------


class Area(Base):
    """An administrative area (country > region > department/district)."""

    __tablename__ = "areas"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    level: Mapped[str] = mapped_column(String(20))
    country_code: Mapped[str] = mapped_column(String(3))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("areas.id"), index=True)
    # the boundary as WKB in EPSG:4326 (longitude, latitude), from an imported boundary file
    geom: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)
    parent: Mapped[Area | None] = relationship(remote_side=[id])


class Village(Base):
    """A village or locality where households are visited."""

    __tablename__ = "villages"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    area_id: Mapped[int] = mapped_column(ForeignKey("areas.id"), index=True)
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    # the village's land as WKB in EPSG:4326: an imported polygon ("polygon"), or the cell of the
    # points nearer this village than any other, clipped to its administrative area ("voronoi")
    cell: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)
    cell_kind: Mapped[str | None] = mapped_column(String(10))
    area: Mapped[Area] = relationship()
