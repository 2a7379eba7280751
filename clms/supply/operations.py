"""The supply chain in the database: a brand's scope and a supplier's subchain as queries
(recursive CTEs), and the edits an administrator makes (:func:`save_supplier`, :func:`link`,
:func:`unlink`, :func:`attach_village`, :func:`detach_village`). The edits only flush: the caller
commits.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import literal, select, union
from sqlalchemy.orm import Session

from clms.errors import Problem, field_errors
from clms.facts import refresh_suppliers
from clms.i18n import Msg
from clms.models import Brand, BrandSupplier, Supplier, SupplierLink, SupplierVillage, Village
from clms.supply.csvfiles import CODE, parse_tier
from clms.supply.graph import cycle_words, path_within


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


# --- errors ------------------------------------------------------------------------------------

#: the refusals of this module: key -> (code, HTTP status), numbered like clms.errors.CATALOGUE
REFUSALS = {
    "supply.invalid": ("422.20", 422),
    "supply.cycle": ("409.20", 409),
}


def _refusal(key: str, msg: Msg, fields: dict[str, Msg] | None = None) -> Problem:
    code, status = REFUSALS[key]
    return Problem(
        key=key,
        code=code,
        status=status,
        message=str(msg),
        details={"fields": {k: str(v) for k, v in (fields or {}).items()}} if fields else {},
        msg=msg,
        fields=dict(fields or {}),
    )


# --- editing by administrators -----------------------------------------------------------------


@dataclass
class SupplierInput:
    """What the supplier form sends."""

    code: str
    name: str
    tier: str | int
    kind: str = ""


def save_supplier(session: Session, data: SupplierInput, *, new: bool) -> Supplier:
    """Add (``new``) or change a supplier; every wrong answer is named. The code never changes
    once created: households, visits and cases refer to it."""
    errors: dict[str, Msg] = {}
    code = (data.code or "").strip()
    if not CODE.match(code):
        errors["code"] = Msg("must be letters, digits, '_', '.' or '-' (up to 64)")
    existing = session.scalar(select(Supplier).where(Supplier.code == code))
    if new and existing is not None:
        errors["code"] = Msg("is already used by '{name}'", name=existing.name)
    elif new and session.scalar(select(Brand.id).where(Brand.code == code)) is not None:
        errors["code"] = Msg("is already a brand's code")
    if not new and existing is None:
        errors["code"] = Msg("names no supplier")
    name = (data.name or "").strip()
    if not name:
        errors["name"] = Msg("is required")
    elif len(name) > 200:
        errors["name"] = Msg("must be at most {n} characters", n=200)
    tier = parse_tier(data.tier)
    if tier is None:
        errors["tier"] = Msg("must be a whole number of 1 or more (got {value!r})",
                             value=str(data.tier or ""))  # fmt: skip
    kind = (data.kind or "").strip()
    if len(kind) > 40:
        errors["kind"] = Msg("must be at most {n} characters", n=40)
    if errors:
        raise field_errors(errors)
    supplier = existing or Supplier(code=code)
    supplier.name, supplier.tier, supplier.kind = name, tier, kind or None
    session.add(supplier)
    session.flush()
    refresh_suppliers(session, [supplier.id])  # the kept facts name its tier
    return supplier


@dataclass(frozen=True)
class LinkResult:
    """A link written (or removed), with a warning when the tiers look the wrong way round."""

    buyer: str
    seller: str
    changed: bool
    warning: Msg | None = None


def _buyer_and_seller(session: Session, buyer_code: str, seller_code: str):
    buyer_code, seller_code = (buyer_code or "").strip(), (seller_code or "").strip()
    errors: dict[str, Msg] = {}
    brand = session.scalar(select(Brand).where(Brand.code == buyer_code))
    buyer = session.scalar(select(Supplier).where(Supplier.code == buyer_code))
    seller = session.scalar(select(Supplier).where(Supplier.code == seller_code))
    if brand is None and buyer is None:
        errors["buyer"] = Msg("names no known brand or supplier ({code!r})", code=buyer_code)
    if seller is None:
        errors["seller"] = Msg("names no known supplier ({code!r})", code=seller_code)
    if errors:
        raise _refusal("supply.invalid", Msg("Some answers need attention."), errors)
    return brand, buyer, seller


def link(session: Session, buyer_code: str, seller_code: str) -> LinkResult:
    """Record that the buyer (a brand or a supplier) buys from the seller (a supplier).

    Refuses (HTTP 409) a link that would close a cycle, naming it: ``A -> B -> C -> A``.
    """
    brand, buyer, seller = _buyer_and_seller(session, buyer_code, seller_code)
    if brand is not None and buyer is None:
        key = {"brand_id": brand.id, "supplier_id": seller.id}
        if session.get(BrandSupplier, key) is not None:
            return LinkResult(brand.code, seller.code, False)
        session.add(BrandSupplier(**key))
        session.flush()
        return LinkResult(brand.code, seller.code, True)
    path = cycle_path(session, buyer.id, seller.id)
    if path is not None:
        words = cycle_words(path)
        raise _refusal("supply.cycle", Msg(
            "{buyer} cannot buy from {seller}: that would close the cycle {path}.",
            buyer=buyer.code, seller=seller.code, path=words), {"seller": Msg(
            "would close the cycle {path}", path=words)})  # fmt: skip
    warning = None
    if seller.tier <= buyer.tier:
        warning = Msg(
            "the seller {seller!r} (tier {seller_tier}) is not at a deeper tier than its "
            "buyer {buyer!r} (tier {buyer_tier})", seller=seller.code,
            seller_tier=seller.tier, buyer=buyer.code, buyer_tier=buyer.tier)  # fmt: skip
    key = {"buyer_id": buyer.id, "seller_id": seller.id}
    if session.get(SupplierLink, key) is not None:
        return LinkResult(buyer.code, seller.code, False, warning)
    session.add(SupplierLink(**key))
    session.flush()
    return LinkResult(buyer.code, seller.code, True, warning)


def unlink(session: Session, buyer_code: str, seller_code: str) -> LinkResult:
    """Remove the link buyer -> seller (the buyer a brand or a supplier); no link, no change."""
    brand, buyer, seller = _buyer_and_seller(session, buyer_code, seller_code)
    if buyer is not None:
        row = session.get(SupplierLink, {"buyer_id": buyer.id, "seller_id": seller.id})
    else:
        row = session.get(BrandSupplier, {"brand_id": brand.id, "supplier_id": seller.id})
    if row is not None:
        session.delete(row)
        session.flush()
    return LinkResult((buyer or brand).code, seller.code, row is not None)


def cycle_path(session: Session, buyer_id: int, seller_id: int) -> list[str] | None:
    """The cycle (supplier codes, closed) the link buyer -> seller would make, or None.

    Set-based: the seller's subchain in one query, the links inside it in another, and the path
    found among them in memory.
    """
    if not would_cycle(session, buyer_id, seller_id):
        return None
    below = subchain_ids(session, [seller_id])
    edges = [
        (b, s)
        for b, s in session.execute(
            select(SupplierLink.buyer_id, SupplierLink.seller_id).where(
                SupplierLink.buyer_id.in_(select(_downstream_of(seller_id).c.id))
            )
        )
        if s in below
    ]
    graph: dict[int, list[int]] = {}
    for b, s in edges:
        graph.setdefault(b, []).append(s)
    graph.setdefault(buyer_id, []).append(seller_id)
    ids = path_within(graph, below | {buyer_id}, buyer_id, buyer_id) or [buyer_id, buyer_id]
    codes = dict(
        session.execute(select(Supplier.id, Supplier.code).where(Supplier.id.in_(ids))).all()
    )
    return [codes[i] for i in ids]


def _downstream_of(supplier_id: int):
    return _downstream(select(literal(supplier_id).label("id")))


def attach_village(session: Session, supplier_code: str, village_code: str) -> bool:
    """Record that the supplier buys in the village; False when it already did."""
    supplier, village = _supplier_and_village(session, supplier_code, village_code)
    key = {"supplier_id": supplier.id, "village_id": village.id}
    if session.get(SupplierVillage, key) is not None:
        return False
    session.add(SupplierVillage(**key))
    session.flush()
    return True


def detach_village(session: Session, supplier_code: str, village_code: str) -> bool:
    """The supplier no longer buys in the village; False when it did not."""
    supplier, village = _supplier_and_village(session, supplier_code, village_code)
    row = session.get(SupplierVillage, {"supplier_id": supplier.id, "village_id": village.id})
    if row is None:
        return False
    session.delete(row)
    session.flush()
    return True


def _supplier_and_village(session: Session, supplier_code: str, village_code: str):
    supplier = session.scalar(
        select(Supplier).where(Supplier.code == (supplier_code or "").strip())
    )
    village = session.scalar(select(Village).where(Village.code == (village_code or "").strip()))
    errors: dict[str, Msg] = {}
    if supplier is None:
        errors["supplier"] = Msg("names no known supplier ({code!r})", code=supplier_code)
    if village is None:
        errors["village"] = Msg("names no known village ({code!r})", code=village_code)
    if errors:
        raise _refusal("supply.invalid", Msg("Some answers need attention."), errors)
    return supplier, village
