"""The supply chain: brands, suppliers, who buys from whom, and the villages suppliers buy in."""

from __future__ import annotations

from sqlalchemy import CheckConstraint, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from clms.db import Base


class Brand(Base):
    """A buyer whose supply chain is monitored."""

    __tablename__ = "brands"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))


class Supplier(Base):
    """A processor, trader, cooperative or farmer group at a tier of the supply chain."""

    __tablename__ = "suppliers"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    tier: Mapped[int] = mapped_column(Integer)
    # what it is: processor, exporter, trader, cooperative, farmer group, ... (free words)
    kind: Mapped[str | None] = mapped_column(String(40))
    __table_args__ = (CheckConstraint("tier >= 1", name="ck_suppliers_tier"),)


class BrandSupplier(Base):
    """A brand buys directly from a supplier (usually tier 1)."""

    __tablename__ = "brand_suppliers"
    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id"), primary_key=True)
    supplier_id: Mapped[int] = mapped_column(ForeignKey("suppliers.id"), primary_key=True)


class SupplierLink(Base):
    """A supplier (the buyer) buys from another (the seller), one tier further from the brand.

    The links form a directed graph without cycles (checked when they are written); a brand's
    scope is every supplier reachable from its direct suppliers along them.
    """

    __tablename__ = "supplier_links"
    buyer_id: Mapped[int] = mapped_column(ForeignKey("suppliers.id"), primary_key=True)
    seller_id: Mapped[int] = mapped_column(ForeignKey("suppliers.id"), primary_key=True, index=True)
    __table_args__ = (CheckConstraint("buyer_id <> seller_id", name="ck_supplier_links_self"),)


class SupplierVillage(Base):
    """A supplier buys from households in a village: which suppliers a monitor's form lists."""

    __tablename__ = "supplier_villages"
    supplier_id: Mapped[int] = mapped_column(ForeignKey("suppliers.id"), primary_key=True)
    village_id: Mapped[int] = mapped_column(ForeignKey("villages.id"), primary_key=True)
