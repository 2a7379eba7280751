"""Supply chains: which suppliers a brand reaches, and the links that may be written.

brand -> tier 1 -> tier 2 -> tier 3 and deeper -> household (domain.md section 6). A brand buys
from its direct suppliers (``brand_suppliers``); a supplier buys from others (``supplier_links``,
buyer -> seller). The links form a directed graph without cycles; a supplier may serve several
buyers and several brands. A brand's scope is every supplier reachable from its direct suppliers.

Here too: the CSV import of a whole chain (:func:`import_chain`, all or nothing, every problem
named by file, line and column), the edits an administrator makes (:func:`save_supplier`,
:func:`link`, :func:`unlink`, :func:`attach_village`, :func:`detach_village`), the chain as a tree
(:func:`chain_tree`) and its health (:func:`check_chain`). Reading the files and finding cycles are
pure functions; only :func:`import_chain` and the edits write, and they only flush: the caller
commits.
"""

from __future__ import annotations

import csv
import io
import re
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import bindparam, func, insert, literal, select, union, update
from sqlalchemy.orm import Session, aliased

from clms.errors import Problem, field_errors
from clms.i18n import Msg
from clms.models import (
    Brand,
    BrandSupplier,
    Household,
    Submission,
    Supplier,
    SupplierLink,
    SupplierVillage,
    Village,
)
from clms.safety import UnsafeFile, decode_text


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


def cycle_words(path: Sequence[str]) -> str:
    """A cycle as people read it.

    >>> cycle_words(["A", "B", "C", "A"])
    'A -> B -> C -> A'
    """
    return " -> ".join(path)


# --- CSV import: reading (pure) ----------------------------------------------------------------

#: the kinds of file the import reads, recognised by their header: kind -> (required, optional)
FILE_KINDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "suppliers": (("code", "name", "tier"), ("kind",)),
    "links": (("buyer", "seller"), ()),
    "villages": (("supplier", "village"), ()),
    "households": (("household", "supplier"), ()),
    "brands": (("code", "name"), ()),
}
_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_CODE_COLUMNS = ("code", "buyer", "seller", "supplier", "village")
_HOUSEHOLD_CODE = re.compile(r"^\S{1,100}$")


@dataclass(frozen=True, order=True)
class Where:
    """A place in the files being imported: file name, line (1 is the header) and column."""

    file: str
    line: int
    column: str = ""

    def msg(self) -> Msg:
        if self.column:
            return Msg("{file}, line {line}, column {column}", file=self.file, line=self.line,
                       column=self.column)  # fmt: skip
        return Msg("{file}, line {line}", file=self.file, line=self.line)

    def __str__(self) -> str:
        return str(self.msg())

    def at(self, column: str) -> Where:
        return Where(self.file, self.line, column)


@dataclass(frozen=True)
class Issue:
    """Something wrong (or, for a warning, worth a look) at a place in the files."""

    where: Where
    msg: Msg

    def render(self, translate=None) -> str:
        return Msg("{where}: {what}", where=self.where.msg(), what=self.msg).render(translate)

    def __str__(self) -> str:
        return self.render()


class ChainImportError(Exception):
    """The files were refused: every issue found, nothing written."""

    def __init__(self, issues: list[Issue]):
        self.issues = sorted(issues, key=lambda i: i.where)
        super().__init__("\n".join(str(i) for i in self.issues))


@dataclass
class ChainRows:
    """What the files say, row by row, before anything is looked up in the database.

    Each row starts with its :class:`Where` (the file and line, no column).
    """

    brands: list[tuple[Where, str, str]] = field(default_factory=list)
    suppliers: list[tuple[Where, str, str, int, str | None]] = field(default_factory=list)
    links: list[tuple[Where, str, str]] = field(default_factory=list)
    villages: list[tuple[Where, str, str]] = field(default_factory=list)
    households: list[tuple[Where, str, str]] = field(default_factory=list)
    kinds: dict[str, str] = field(default_factory=dict)  # file name -> kind

    def rows(self) -> int:
        return sum(len(x) for x in (self.brands, self.suppliers, self.links, self.villages,
                                    self.households))  # fmt: skip


def _text_problem(e: UnsafeFile) -> Msg:
    """What is wrong with the bytes of a CSV file, where on its line (clms.safety.decode_text)."""
    if e.byte is not None:
        return Msg("character {column}: not UTF-8 text (byte 0x{byte}); save the file as CSV "
                   "UTF-8 and import it again", column=e.column, byte=f"{e.byte:02x}")  # fmt: skip
    if e.column is not None:
        return Msg("character {column}: a NUL character, which text cannot hold; save the file "
                   "as CSV UTF-8 and import it again", column=e.column)  # fmt: skip
    return Msg("is not text this server reads ({detail})", detail=str(e))


def file_kind(columns: Sequence[str]) -> str | None:
    """The kind of file a header names, or None.

    >>> file_kind(["code", "name", "tier", "kind"]), file_kind(["buyer", "seller"])
    ('suppliers', 'links')
    >>> file_kind(["code", "name"]), file_kind(["supplier", "village"]), file_kind(["x"])
    ('brands', 'villages', None)
    """
    have = set(columns)
    for kind, (required, _optional) in FILE_KINDS.items():
        if set(required) <= have:
            return kind
    return None


def read_chain_csv(name: str, data: bytes | str, rows: ChainRows) -> list[Issue]:
    """Read one CSV file into ``rows``; the issues of its format and values (codes are checked
    against each other and the database later, by :func:`plan_import`).

    The kind of file is known from its header (:data:`FILE_KINDS`); extra columns are refused,
    so that a misspelt optional column is not silently ignored.
    """
    issues: list[Issue] = []
    top = Where(name, 1)
    if isinstance(data, bytes):
        try:
            data = decode_text(data, name)
        except UnsafeFile as e:
            return [Issue(Where(name, e.line or 1), _text_problem(e))]
    reader = csv.reader(io.StringIO(data))
    header = [c.strip().lower() for c in next(reader, [])]
    kind = file_kind(header)
    if kind is None:
        return [Issue(top, Msg(
            "has the columns {columns}, which name no kind of supply-chain file; expected "
            "brands (code, name), suppliers (code, name, tier, kind), links (buyer, seller), "
            "supplier villages (supplier, village) or household suppliers (household, supplier)",
            columns=", ".join(header) or "-"))]  # fmt: skip
    required, optional = FILE_KINDS[kind]
    extra = [c for c in header if c not in required + optional]
    if extra:
        return [Issue(top, Msg("has unexpected column(s) {columns} for a {kind} file",
                               columns=", ".join(extra), kind=kind))]  # fmt: skip
    repeated = sorted({c for c in header if header.count(c) > 1})
    if repeated:
        return [Issue(top, Msg("names the column(s) {columns} twice", columns=", ".join(repeated)))]
    rows.kinds[name] = kind
    for line_no, values in enumerate(reader, start=2):
        if not any(v.strip() for v in values):
            continue  # blank lines, as spreadsheets leave at the end
        where = Where(name, line_no)
        if len(values) != len(header):
            issues.append(Issue(where, Msg("has {got} values for {expected} columns",
                                           got=len(values), expected=len(header))))  # fmt: skip
            continue
        row = {c: v.strip() for c, v in zip(header, values, strict=True)}
        bad = False
        for column in required:
            if not row[column]:
                issues.append(Issue(where.at(column), Msg("is required")))
                bad = True
            elif column in _CODE_COLUMNS and not _CODE.match(row[column]):
                issues.append(
                    Issue(
                        where.at(column), Msg("must be letters, digits, '_', '.' or '-' (up to 64)")
                    )
                )
                bad = True
            elif column == "household" and not _HOUSEHOLD_CODE.match(row[column]):
                issues.append(
                    Issue(
                        where.at(column), Msg("must be a household code without spaces (up to 100)")
                    )
                )
                bad = True
        if row.get("name") and len(row["name"]) > 200:
            issues.append(Issue(where.at("name"), Msg("must be at most {n} characters", n=200)))
            bad = True
        if row.get("kind") and len(row["kind"]) > 40:
            issues.append(Issue(where.at("kind"), Msg("must be at most {n} characters", n=40)))
            bad = True
        tier = None
        if kind == "suppliers" and row["tier"]:
            tier = parse_tier(row["tier"])
            if tier is None:
                issues.append(
                    Issue(
                        where.at("tier"),
                        Msg(
                            "must be a whole number of 1 or more (got {value!r})", value=row["tier"]
                        ),
                    )
                )
                bad = True
        if bad:
            continue
        if kind == "brands":
            rows.brands.append((where, row["code"], row["name"]))
        elif kind == "suppliers":
            rows.suppliers.append((where, row["code"], row["name"], tier, row.get("kind") or None))
        elif kind == "links":
            rows.links.append((where, row["buyer"], row["seller"]))
        elif kind == "villages":
            rows.villages.append((where, row["supplier"], row["village"]))
        else:
            rows.households.append((where, row["household"], row["supplier"]))
    return issues


def parse_tier(text: str | int | None) -> int | None:
    """A tier (a whole number of 1 or more) from text, or None.

    >>> parse_tier("2"), parse_tier(" 3 "), parse_tier("0"), parse_tier("1.5"), parse_tier("x")
    (2, 3, None, None, None)
    """
    try:
        tier = int(str(text).strip())
    except (TypeError, ValueError):
        return None
    return tier if 1 <= tier <= 99 else None


def find_cycles(edges: Iterable[tuple[str, str]]) -> list[list[str]]:
    """One cycle, as a closed path, in each group of nodes that reach each other.

    >>> find_cycles([("A", "B"), ("B", "C"), ("C", "A"), ("C", "D")])
    [['A', 'B', 'C', 'A']]
    >>> find_cycles([("A", "B"), ("A", "C"), ("B", "C")])
    []
    """
    graph: dict[str, list[str]] = {}
    for a, b in edges:
        graph.setdefault(a, []).append(b)
        graph.setdefault(b, [])
    cycles = []
    for component in _strong_components(graph):
        if len(component) > 1:
            start = min(component)
            cycles.append(_path_within(graph, component, start, start))
    return sorted(cycles)


def _strong_components(graph: dict[str, list[str]]) -> list[set[str]]:
    """Tarjan's strongly connected components, without recursion (chains may be deep)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                found.append(component)
    return found


def _path_within(graph, nodes: set[str], start: str, goal: str) -> list[str]:
    """The shortest path start -> ... -> goal (at least one step) through ``nodes``."""
    came: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for nxt in sorted(graph.get(node, ())):
            if nxt not in nodes or nxt in came:
                continue
            came[nxt] = node
            if nxt == goal:
                path = [goal]
                while path[-1] != start or len(path) == 1:
                    path.append(came[path[-1]])
                return list(reversed(path))
            queue.append(nxt)
    return []


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
    if not _CODE.match(code):
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
    ids = _path_within(graph, below | {buyer_id}, buyer_id, buyer_id) or [buyer_id, buyer_id]
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
        reached |= _reach(sellers, [s for _b, s in data.brand_links])
        rest = set(data.suppliers) - reached
        bought = {s for b, s in data.links if b in rest}
        tops = [i for i in rest if i not in bought] or sorted(rest)[:1]
        unreached, shown = grow(tops)
        while rest - shown:  # a stored cycle with no top: start anywhere in it
            more, again = grow([min(rest - shown)])
            unreached += more
            shown |= again
    return ChainTree(chains, unreached)


def _reach(sellers: dict[int, list[int]], start: Iterable[int]) -> set[int]:
    found, stack = set(), list(start)
    while stack:
        i = stack.pop()
        if i not in found:
            found.add(i)
            stack.extend(sellers.get(i, ()))
    return found


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
    reached = _reach(sellers, [s for _b, s in data.brand_links])
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
