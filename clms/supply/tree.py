"""The chain as a tree (each brand, its direct suppliers, whom they buy from, down), the list of
suppliers with their counts, and the chain's health (``clms supply check``): read with a few
queries (:func:`read_chain`), built in memory (:func:`build_tree`, pure).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from clms.models import (
    Brand,
    BrandSupplier,
    Household,
    Submission,
    Supplier,
    SupplierLink,
    SupplierVillage,
)
from clms.supply.graph import find_cycles, reach

# --- the chain as a tree, and its health -------------------------------------------------------


@dataclass
class ChainNode:
    """A supplier in a brand's tree: what it is, its villages and households, whom it buys from.

    ``repeated`` marks a supplier already shown higher in the same tree (reached by two paths):
    its sellers are not shown again.
    """

    code: str
    name: str
    tier: int
    kind: str | None
    villages: int
    households: int
    children: list[ChainNode] = field(default_factory=list)
    repeated: bool = False


@dataclass
class BrandChain:
    """A brand and the suppliers it reaches."""

    code: str
    name: str
    roots: list[ChainNode]
    suppliers: int
    villages: int
    households: int


@dataclass
class ChainTree:
    """Every brand's chain, and the suppliers no brand reaches."""

    brands: list[BrandChain]
    unreached: list[ChainNode]


@dataclass
class ChainData:
    """The whole chain as plain data (ids), read with a few queries; see :func:`build_tree`."""

    brands: list[tuple[int, str, str]]  # id, code, name
    suppliers: dict[int, tuple[str, str, int, str | None]]  # id -> code, name, tier, kind
    brand_links: list[tuple[int, int]]
    links: list[tuple[int, int]]  # buyer, seller
    supplier_villages: list[tuple[int, int]]
    households: dict[int, int]  # supplier id -> households selling to it


def read_chain(session: Session, brand_code: str | None = None) -> ChainData:
    """Read the chain (every brand's, or one brand's) with one query per table."""
    brands = select(Brand.id, Brand.code, Brand.name).order_by(Brand.code)
    if brand_code is not None:
        brands = brands.where(Brand.code == brand_code)
    return ChainData(
        brands=[tuple(r) for r in session.execute(brands)],
        suppliers={
            r.id: (r.code, r.name, r.tier, r.kind)
            for r in session.execute(select(Supplier.id, Supplier.code, Supplier.name,
                                            Supplier.tier, Supplier.kind))  # fmt: skip
        },
        brand_links=[tuple(r) for r in session.execute(
            select(BrandSupplier.brand_id, BrandSupplier.supplier_id))],  # fmt: skip
        links=[tuple(r) for r in session.execute(
            select(SupplierLink.buyer_id, SupplierLink.seller_id))],  # fmt: skip
        supplier_villages=[tuple(r) for r in session.execute(
            select(SupplierVillage.supplier_id, SupplierVillage.village_id))],  # fmt: skip
        households=dict(session.execute(
            select(Household.supplier_id, func.count(Household.id))
            .where(Household.supplier_id.is_not(None)).group_by(Household.supplier_id)).all()),
    )  # fmt: skip


def build_tree(data: ChainData, *, with_unreached: bool = True) -> ChainTree:
    """The chain as trees (pure): each brand, its direct suppliers, whom they buy from, down.

    A supplier reached twice in a brand's tree is shown in full the first time and marked
    ``repeated`` after, so a chain with many diamonds stays readable (and a stored cycle cannot
    loop).
    """
    sellers: dict[int, list[int]] = {}
    for b, s in data.links:
        sellers.setdefault(b, []).append(s)
    villages: dict[int, set[int]] = {}
    for s, v in data.supplier_villages:
        villages.setdefault(s, set()).add(v)

    def order(ids):
        return sorted(ids, key=lambda i: (data.suppliers[i][2], data.suppliers[i][0]))

    def grow(root_ids: list[int]) -> tuple[list[ChainNode], set[int]]:
        seen: set[int] = set()

        def node(i: int) -> ChainNode:
            code, name, tier, kind = data.suppliers[i]
            n = ChainNode(code, name, tier, kind, len(villages.get(i, ())),
                          data.households.get(i, 0), repeated=i in seen)  # fmt: skip
            if not n.repeated:
                seen.add(i)
                n.children = [node(c) for c in order(sellers.get(i, ()))]
            return n

        return [node(i) for i in order(root_ids)], seen

    direct: dict[int, list[int]] = {}
    for b, s in data.brand_links:
        direct.setdefault(b, []).append(s)
    chains, reached = [], set()
    for brand_id, code, name in data.brands:
        roots, scope = grow(direct.get(brand_id, []))
        reached |= scope
        in_villages = set().union(*(villages.get(i, set()) for i in scope))
        households = sum(data.households.get(i, 0) for i in scope)
        chains.append(BrandChain(code, name, roots, len(scope), len(in_villages), households))
    unreached: list[ChainNode] = []
    if with_unreached:
        # every brand's scope, shown or not
        reached |= reach(sellers, [s for _b, s in data.brand_links])
        rest = set(data.suppliers) - reached
        bought = {s for b, s in data.links if b in rest}
        tops = [i for i in rest if i not in bought] or sorted(rest)[:1]
        unreached, shown = grow(tops)
        while rest - shown:  # a stored cycle with no top: start anywhere in it
            more, again = grow([min(rest - shown)])
            unreached += more
            shown |= again
    return ChainTree(chains, unreached)


@dataclass(frozen=True)
class SupplierRow:
    """A supplier with its counts, for the list of suppliers."""

    code: str
    name: str
    tier: int
    kind: str | None
    villages: int
    households: int
    buyers: int  # brands and suppliers that buy from it
    sellers: int


def supplier_rows(data: ChainData) -> list[SupplierRow]:
    """Every supplier by tier and code, with its counts (pure)."""
    villages: dict[int, int] = {}
    for s, _v in data.supplier_villages:
        villages[s] = villages.get(s, 0) + 1
    buyers: dict[int, int] = {}
    sellers: dict[int, int] = {}
    for b, s in data.links:
        buyers[s] = buyers.get(s, 0) + 1
        sellers[b] = sellers.get(b, 0) + 1
    for _b, s in data.brand_links:
        buyers[s] = buyers.get(s, 0) + 1
    rows = [
        SupplierRow(code, name, tier, kind, villages.get(i, 0), data.households.get(i, 0),
                    buyers.get(i, 0), sellers.get(i, 0))
        for i, (code, name, tier, kind) in data.suppliers.items()
    ]  # fmt: skip
    return sorted(rows, key=lambda r: (r.tier, r.code))


def chain_tree(session: Session, brand_code: str | None = None) -> ChainTree:
    """Every brand's chain as a tree (or one brand's), and the suppliers no brand reaches."""
    data = read_chain(session, brand_code)
    return build_tree(data, with_unreached=brand_code is None)


def tree_lines(tree: ChainTree) -> list[str]:
    """The tree as indented lines of English, for the command line.

    >>> leaf = ChainNode("T2", "Coop", 2, "cooperative", 3, 40)
    >>> top = ChainNode("T1", "Exporter", 1, None, 0, 0, [leaf])
    >>> print("\\n".join(tree_lines(ChainTree([BrandChain("BR", "Brand", [top], 2, 3, 40)], []))))
    BR  Brand: 2 suppliers, 3 villages, 40 households
      T1  Exporter  [tier 1]  villages 0, households 0
        T2  Coop  [tier 2, cooperative]  villages 3, households 40
    """
    lines: list[str] = []

    def walk(n: ChainNode, depth: int) -> None:
        what = f"tier {n.tier}" + (f", {n.kind}" if n.kind else "")
        if n.repeated:
            lines.append(f"{'  ' * depth}{n.code}  {n.name}  [{what}]  (shown above)")
            return
        lines.append(f"{'  ' * depth}{n.code}  {n.name}  [{what}]  "
                     f"villages {n.villages}, households {n.households}")  # fmt: skip
        for c in n.children:
            walk(c, depth + 1)

    for b in tree.brands:
        lines.append(f"{b.code}  {b.name}: {b.suppliers} suppliers, {b.villages} villages, "
                     f"{b.households} households")  # fmt: skip
        if not b.roots:
            lines.append("  (buys from no supplier yet)")
        for root in b.roots:
            walk(root, 1)
    if tree.unreached:
        lines.append("Suppliers no brand reaches:")
        for root in tree.unreached:
            walk(root, 1)
    return lines


@dataclass
class ChainCheck:
    """What ``clms supply check`` finds."""

    cycles: list[list[str]]
    unreached: list[str]  # supplier codes no brand reaches
    tier_warnings: list[str]  # "BUYER (tier 2) -> SELLER (tier 1)"
    households_outside: int  # households selling to a supplier no brand reaches
    unknown_suppliers: dict[str, int]  # codes in visits held for review -> submissions

    @property
    def ok(self) -> bool:
        return not (self.cycles or self.unreached or self.households_outside
                    or self.unknown_suppliers)  # fmt: skip


def check_chain(session: Session) -> ChainCheck:
    """Cycles, suppliers no brand reaches, links whose tiers look the wrong way round,
    households selling outside every chain, and supplier codes the forms sent that no supplier
    has (submissions held for review)."""
    data = read_chain(session)
    code = {i: v[0] for i, v in data.suppliers.items()}
    cycles = find_cycles((code[b], code[s]) for b, s in data.links)
    sellers: dict[int, list[int]] = {}
    for b, s in data.links:
        sellers.setdefault(b, []).append(s)
    reached = reach(sellers, [s for _b, s in data.brand_links])
    unreached = sorted(code[i] for i in set(data.suppliers) - reached)
    tiers = {i: v[2] for i, v in data.suppliers.items()}
    warnings = sorted(
        f"{code[b]} (tier {tiers[b]}) -> {code[s]} (tier {tiers[s]})"
        for b, s in data.links
        if tiers[s] <= tiers[b]
    )
    outside = sum(n for i, n in data.households.items() if i not in reached)
    unknown: dict[str, int] = {}
    for reasons in session.scalars(select(Submission.review_reasons).where(
            Submission.status == "review", Submission.current.is_(True))):  # fmt: skip
        for reason in reasons or ():
            if isinstance(reason, dict) and reason.get("path") == "supplier":
                value = str(reason.get("value"))
                unknown[value] = unknown.get(value, 0) + 1
    return ChainCheck(cycles, unreached, warnings, outside, dict(sorted(unknown.items())))
