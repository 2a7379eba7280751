"""What the supply chain's pages read besides the chain itself (:mod:`clms.supply.tree`): the
brands, a supplier by its code, the villages it buys in, and the villages to choose from."""

from __future__ import annotations

from sqlalchemy import Row, select
from sqlalchemy.orm import Session

from clms.models import Brand, Supplier, SupplierVillage, Village


def brands(session: Session) -> list[Brand]:
    """Every brand, by code."""
    return list(session.scalars(select(Brand).order_by(Brand.code)))


def supplier_by_code(session: Session, code: str) -> Supplier | None:
    """The supplier of this code, or None."""
    return session.scalar(select(Supplier).where(Supplier.code == code))


def supplier_villages(session: Session, supplier: Supplier) -> list[Village]:
    """The villages ``supplier`` buys in, by code."""
    return list(
        session.scalars(
            select(Village)
            .join(SupplierVillage, SupplierVillage.village_id == Village.id)
            .where(SupplierVillage.supplier_id == supplier.id)
            .order_by(Village.code)
        )
    )


def village_choices(session: Session) -> list[Row]:
    """``(code, name)`` of every village, by code: the villages a supplier may buy in."""
    return list(session.execute(select(Village.code, Village.name).order_by(Village.code)))
