"""Supply chains: which suppliers a brand reaches, and the links that may be written.

brand -> tier 1 -> tier 2 -> tier 3 and deeper -> household (domain.md section 6). A brand buys
from its direct suppliers (``brand_suppliers``); a supplier buys from others (``supplier_links``,
buyer -> seller). The links form a directed graph without cycles; a supplier may serve several
buyers and several brands. A brand's scope is every supplier reachable from its direct suppliers.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import literal, select, union
from sqlalchemy.orm import Session

from clms.models import BrandSupplier, SupplierLink


def _downstream(start):
    """A recursive CTE of the suppliers in ``start`` (a select of supplier ids as ``id``) and every
    supplier they buy from, directly or through others.

    UNION (not UNION ALL) makes the recursion stop on a cycle too, should one ever be stored.
    """
    reach = start.cte("reach", recursive=True)
    step = select(SupplierLink.seller_id.label("id")).join(
        reach, SupplierLink.buyer_id == reach.c.id
    )
    return reach.union(step)


def brand_supplier_ids_query(brand_id: int):
    """SQL: the ids of every supplier in the brand's scope (usable in ``column.in_(...)``)."""
    start = select(BrandSupplier.supplier_id.label("id")).where(BrandSupplier.brand_id == brand_id)
    return select(_downstream(start).c.id)


def brand_supplier_ids(session: Session, brand_id: int) -> set[int]:
    """The ids of every supplier reachable from the brand (its direct suppliers included)."""
    return set(session.scalars(brand_supplier_ids_query(brand_id)))


def subchain_ids(session: Session, supplier_ids: Iterable[int]) -> set[int]:
    """The given suppliers and every supplier they buy from, directly or through others."""
    ids = sorted(set(supplier_ids))
    if not ids:
        return set()
    start = union(*(select(literal(i).label("id")) for i in ids)).subquery()
    return set(session.scalars(select(_downstream(select(start.c.id)).c.id)))


def would_cycle(session: Session, buyer_id: int, seller_id: int) -> bool:
    """Whether the link buyer -> seller would close a cycle: the buyer is the seller itself or is
    reachable from it."""
    return buyer_id == seller_id or buyer_id in subchain_ids(session, [seller_id])
