"""Importing a whole supply chain from CSV files (:func:`import_chain`): all of it or nothing,
planned against the database before anything is written; it only flushes: the caller commits.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.orm import Session, aliased

from clms.facts import refresh_households, refresh_suppliers
from clms.i18n import Msg
from clms.models import (
    Brand,
    BrandSupplier,
    Household,
    Supplier,
    SupplierLink,
    SupplierVillage,
    Village,
)
from clms.supply.csvfiles import ChainImportError, ChainRows, Issue, Where, read_chain_csv
from clms.supply.graph import cycle_words, find_cycles

# --- CSV import: checking against the database and writing -------------------------------------


@dataclass
class ImportSummary:
    """What an import changed (or would change, on a dry run), and its warnings."""

    files: dict[str, str] = field(default_factory=dict)  # name -> kind
    rows: int = 0
    brands_added: int = 0
    brands_updated: int = 0
    suppliers_added: int = 0
    suppliers_updated: int = 0
    links_added: int = 0
    links_removed: int = 0
    villages_added: int = 0
    villages_removed: int = 0
    households_updated: int = 0
    warnings: list[Issue] = field(default_factory=list)

    def lines(self) -> list[str]:
        """The summary in English, for the command line."""
        return [
            f"Read {self.rows} rows from {len(self.files)} file(s): "
            + ", ".join(f"{n} ({k})" for n, k in self.files.items()),
            f"Brands: {self.brands_added} added, {self.brands_updated} updated.",
            f"Suppliers: {self.suppliers_added} added, {self.suppliers_updated} updated.",
            f"Links: {self.links_added} added, {self.links_removed} removed.",
            f"Supplier villages: {self.villages_added} added, {self.villages_removed} removed.",
            f"Households: {self.households_updated} given a new supplier.",
        ]

    def msg(self) -> Msg:
        """The summary for people, in their language."""
        return Msg(
            "Imported: {brands} brand(s) and {suppliers} supplier(s) added or updated, "
            "{links} link(s) added and {removed} removed, {villages} village(s) attached, "
            "{households} household(s) given a supplier.",
            brands=self.brands_added + self.brands_updated,
            suppliers=self.suppliers_added + self.suppliers_updated,
            links=self.links_added, removed=self.links_removed,
            villages=self.villages_added, households=self.households_updated,
        )  # fmt: skip


def import_chain(
    session: Session,
    files: Sequence[tuple[str, bytes | str]],
    *,
    replace: bool = False,
    progress: Callable[[str], None] | None = None,
) -> ImportSummary:
    """Import a supply chain from CSV files: all of it, or nothing.

    Parameters
    ----------
    files:
        ``(name, content)`` pairs; each file's kind comes from its header: brands
        ``code,name``; suppliers ``code,name,tier[,kind]``; links ``buyer,seller`` (the buyer a
        brand or a supplier code, the seller a supplier code); supplier villages
        ``supplier,village``; household suppliers ``household,supplier``. Files may come in any
        order: a link may name a supplier defined in another file of the same import.
    replace:
        Also remove the links (brand and supplier) not in the links files (when one is given),
        and, for each supplier a villages file names, the villages it does not list.
    progress:
        Called with a line of English for each step (the command line prints them).

    Raises :class:`ChainImportError` naming file, line and column of every problem, before
    anything is written; otherwise flushes the changes (the caller commits) and returns what
    changed. Importing the same files again changes nothing.

    >>> # import_chain(session, [("brands.csv", b"code,name\\nBR-A,Brand A\\n")])
    """
    say = progress or (lambda _line: None)
    rows = ChainRows()
    issues: list[Issue] = []
    for name, data in files:
        issues += read_chain_csv(name, data, rows)
        if name in rows.kinds:
            say(f"{name}: {rows.kinds[name]}")
    say(f"Read {rows.rows()} rows.")
    plan = _plan(session, rows, replace, issues)
    if issues:
        raise ChainImportError(issues)
    summary = _write(session, plan, say)
    summary.files, summary.rows = dict(rows.kinds), rows.rows()
    summary.warnings = plan.warnings
    return summary


@dataclass
class _Plan:
    """The checked import: what to write."""

    brands: dict[str, str] = field(default_factory=dict)  # code -> name
    suppliers: dict[str, tuple[str, int, str | None]] = field(default_factory=dict)
    brand_links: set[tuple[str, str]] = field(default_factory=set)
    supplier_links: set[tuple[str, str]] = field(default_factory=set)
    villages: set[tuple[str, str]] = field(default_factory=set)  # (supplier, village code)
    households: dict[str, str] = field(default_factory=dict)  # household code -> supplier
    replace_links: bool = False
    replace_villages: bool = False
    warnings: list[Issue] = field(default_factory=list)


def _first_wins(rows, key, values, label_columns, issues: list[Issue], what: str) -> dict:
    """``key(row) -> values(row)`` of the rows; a key given again with other values is an issue
    that names both places."""
    seen: dict[str, tuple[Where, tuple]] = {}
    for row in rows:
        where, k, v = row[0], key(row), values(row)
        if k in seen and seen[k][1] != v:
            first_where, first = seen[k]
            for column, old, new in zip(label_columns, first, v, strict=True):
                if old != new:
                    issues.append(Issue(where.at(column), Msg(
                        "{what} {code!r} is given again with a different {column} "
                        "({new!r}; {old!r} at {first})", what=what, code=k, column=column,
                        new="" if new is None else str(new), old="" if old is None else str(old),
                        first=first_where.msg())))  # fmt: skip
                    break
        seen.setdefault(k, (where, v))
    return {k: v for k, (_w, v) in seen.items()}


def _plan(session: Session, rows: ChainRows, replace: bool, issues: list[Issue]) -> _Plan:
    plan = _Plan(
        replace_links=replace and "links" in rows.kinds.values(),
        replace_villages=replace and "villages" in rows.kinds.values(),
    )
    plan.brands = {
        k: v[0]
        for k, v in _first_wins(
            rows.brands, lambda r: r[1], lambda r: (r[2],), ("name",), issues, Msg("brand")
        ).items()
    }
    plan.suppliers = _first_wins(
        rows.suppliers, lambda r: r[1], lambda r: (r[2], r[3], r[4]), ("name", "tier", "kind"),
        issues, Msg("supplier"))  # fmt: skip
    plan.households = {k: v[0] for k, v in _first_wins(
        rows.households, lambda r: r[1], lambda r: (r[2],), ("supplier",), issues,
        Msg("household")).items()}  # fmt: skip

    brand_codes = set(session.scalars(select(Brand.code))) | set(plan.brands)
    tiers = dict(session.execute(select(Supplier.code, Supplier.tier)).all())
    tiers.update({code: v[1] for code, v in plan.suppliers.items()})
    both = sorted(brand_codes & set(tiers))
    for where, code, *_ in sorted(rows.brands + rows.suppliers, key=lambda r: r[0]):
        if code in both:
            both.remove(code)  # once, at the first row that gives it
            issues.append(Issue(where.at("code"), Msg(
                "{code!r} is both a brand and a supplier code; links could not tell them apart",
                code=code)))  # fmt: skip

    def known_supplier(where: Where, code: str) -> bool:
        if code in tiers:
            return True
        issues.append(Issue(where, Msg("names no known supplier ({code!r})", code=code)))
        return False

    new_links: dict[tuple[str, str], Where] = {}
    for where, buyer, seller in rows.links:
        if buyer == seller:
            issues.append(Issue(where.at("seller"), Msg(
                "a supplier cannot buy from itself ({code!r})", code=seller)))  # fmt: skip
            continue
        if seller in brand_codes and seller not in tiers:
            issues.append(Issue(where.at("seller"), Msg(
                "{code!r} is a brand: a brand buys, it does not sell", code=seller)))  # fmt: skip
            continue
        ok = known_supplier(where.at("seller"), seller)
        if buyer in brand_codes:
            if ok:
                plan.brand_links.add((buyer, seller))
            continue
        if buyer not in tiers:
            issues.append(Issue(where.at("buyer"), Msg(
                "names no known brand or supplier ({code!r})", code=buyer)))  # fmt: skip
            continue
        if ok:
            plan.supplier_links.add((buyer, seller))
            new_links.setdefault((buyer, seller), where)
            if tiers[seller] <= tiers[buyer]:
                plan.warnings.append(Issue(where.at("seller"), Msg(
                    "the seller {seller!r} (tier {seller_tier}) is not at a deeper tier than its "
                    "buyer {buyer!r} (tier {buyer_tier})", seller=seller,
                    seller_tier=tiers[seller], buyer=buyer, buyer_tier=tiers[buyer])))  # fmt: skip

    _cycle_issues(session, plan, new_links, issues)

    village_codes = {r[2] for r in rows.villages}
    known_villages = _existing(session, Village.code, village_codes)
    for where, supplier, village in rows.villages:
        ok = known_supplier(where.at("supplier"), supplier)
        if village not in known_villages:
            issues.append(Issue(where.at("village"), Msg(
                "names no known village ({code!r})", code=village)))  # fmt: skip
        elif ok:
            plan.villages.add((supplier, village))

    known_households = _existing(session, Household.code, set(plan.households))
    for where, household, supplier in rows.households:
        known_supplier(where.at("supplier"), supplier)
        if household not in known_households:
            issues.append(Issue(where.at("household"), Msg(
                "names no known household ({code!r})", code=household)))  # fmt: skip
    return plan


def _cycle_issues(
    session: Session, plan: _Plan, new_links: dict[tuple[str, str], Where], issues: list[Issue]
) -> None:
    """An issue for each cycle the new links close (``new_links``: the place of each)."""
    # cycles: through the new links alone, or through new and stored ones together
    edges = set(plan.supplier_links)
    if not plan.replace_links:
        buyer_s, seller_s = aliased(Supplier), aliased(Supplier)
        edges |= set(session.execute(
            select(buyer_s.code, seller_s.code)
            .join(SupplierLink, SupplierLink.buyer_id == buyer_s.id)
            .join(seller_s, SupplierLink.seller_id == seller_s.id)).all())  # fmt: skip
    for cycle in find_cycles(edges):
        steps = list(zip(cycle, cycle[1:], strict=False))
        blamed = sorted(new_links[s] for s in steps if s in new_links)
        if not blamed:
            continue  # a cycle already stored: `clms supply check` reports it
        # shown at the new link that comes last in the files, the one that closes the cycle, and
        # the path starts at its buyer
        first = next(s for s in steps if new_links.get(s) == blamed[-1])
        i = cycle.index(first[0])
        cycle = cycle[i:-1] + cycle[:i] + [cycle[i]]
        where = blamed[-1].at("seller")
        issues.append(Issue(where, Msg("this link closes a cycle: {path}",
                                       path=cycle_words(cycle))))  # fmt: skip


def _existing(session: Session, column, codes: set[str]) -> set[str]:
    """Which of ``codes`` are in ``column``, asked in chunks (a household file may be long)."""
    found: set[str] = set()
    ordered = sorted(codes)
    for i in range(0, len(ordered), 500):
        found |= set(session.scalars(select(column).where(column.in_(ordered[i : i + 500]))))
    return found


def _write(session: Session, plan: _Plan, say: Callable[[str], None]) -> ImportSummary:
    summary = ImportSummary()
    brands = {b.code: b for b in session.scalars(select(Brand))}
    for code, name in plan.brands.items():
        brand = brands.get(code)
        if brand is None:
            brands[code] = Brand(code=code, name=name)
            session.add(brands[code])
            summary.brands_added += 1
        elif brand.name != name:
            brand.name = name
            summary.brands_updated += 1
    suppliers = {s.code: s for s in session.scalars(select(Supplier))}
    for code, (name, tier, kind) in plan.suppliers.items():
        supplier = suppliers.get(code)
        if supplier is None:
            suppliers[code] = Supplier(code=code, name=name, tier=tier, kind=kind)
            session.add(suppliers[code])
            summary.suppliers_added += 1
        elif (supplier.name, supplier.tier, supplier.kind) != (name, tier, kind):
            supplier.name, supplier.tier, supplier.kind = name, tier, kind
            summary.suppliers_updated += 1
    session.flush()
    say(f"Brands and suppliers written ({len(plan.brands)} + {len(plan.suppliers)}).")

    wanted = {(brands[b].id, suppliers[s].id) for b, s in plan.brand_links}
    stored = set(session.execute(select(BrandSupplier.brand_id, BrandSupplier.supplier_id)).all())
    added, removed = _sync(session, BrandSupplier, ("brand_id", "supplier_id"), wanted, stored,
                           plan.replace_links)  # fmt: skip
    wanted = {(suppliers[b].id, suppliers[s].id) for b, s in plan.supplier_links}
    stored = set(session.execute(select(SupplierLink.buyer_id, SupplierLink.seller_id)).all())
    more, fewer = _sync(session, SupplierLink, ("buyer_id", "seller_id"), wanted, stored,
                        plan.replace_links)  # fmt: skip
    summary.links_added, summary.links_removed = added + more, removed + fewer
    say(f"Links written ({summary.links_added} added, {summary.links_removed} removed).")

    village_ids = dict(session.execute(
        select(Village.code, Village.id).where(Village.code.in_({v for _s, v in plan.villages}))
    ).all()) if plan.villages else {}  # fmt: skip
    wanted = {(suppliers[s].id, village_ids[v]) for s, v in plan.villages}
    stored = set(session.execute(select(SupplierVillage.supplier_id,
                                        SupplierVillage.village_id)).all())  # fmt: skip
    # --replace: the villages of each supplier the villages files name are exactly those listed
    listed = {suppliers[s].id for s, _v in plan.villages}
    stored = {(s, v) for s, v in stored if s in listed or not plan.replace_villages}
    summary.villages_added, summary.villages_removed = _sync(
        session, SupplierVillage, ("supplier_id", "village_id"), wanted, stored,
        plan.replace_villages)  # fmt: skip
    added, removed = summary.villages_added, summary.villages_removed
    say(f"Supplier villages written ({added} added, {removed} removed).")

    codes = sorted(plan.households)
    changes = []
    for i in range(0, len(codes), 500):
        for hid, code, current in session.execute(
            select(Household.id, Household.code, Household.supplier_id).where(
                Household.code.in_(codes[i : i + 500]))):  # fmt: skip
            target = suppliers[plan.households[code]].id
            if current != target:
                changes.append({"id": hid, "supplier_id": target})
        say(f"Households checked: {min(i + 500, len(codes))} of {len(codes)}.")
    if changes:
        session.execute(update(Household), changes)
    summary.households_updated = len(changes)
    session.flush()
    # the kept facts name each visit's supplier (else its household's) and that supplier's tier
    refresh_households(session, [change["id"] for change in changes])
    refresh_suppliers(session, [s.id for s in suppliers.values()])
    return summary


def _sync(session, model, columns, wanted: set, stored: set, replace: bool) -> tuple[int, int]:
    """Insert the ``wanted`` pairs not ``stored``; with ``replace``, delete the stored ones not
    wanted. Returns (added, removed)."""
    a, b = columns
    new = sorted(wanted - stored)
    if new:
        session.execute(insert(model), [{a: x, b: y} for x, y in new])
    old = sorted(stored - wanted) if replace else []
    if old:
        table = model.__table__
        # Core executemany: one statement, every pair as parameters
        session.execute(
            table.delete().where(table.c[a] == bindparam("x"), table.c[b] == bindparam("y")),
            [{"x": x, "y": y} for x, y in old],
        )
    return len(new), len(old)
