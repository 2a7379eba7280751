"""The SQL of the hotspot figures: the counts of every cell asked for in one statement
(``_aggregate``, in named steps), the cells' names (``_cells``, ``_names``) and what a brand's
release is made of (:func:`release_inputs`). Child rows never reach Python (see
:mod:`geo.hotspots` for the cost).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    Integer,
    String,
    and_,
    case,
    cast,
    distinct,
    func,
    literal,
    null,
    select,
    union_all,
)
from sqlalchemy.orm import Session, aliased

from alerts.kpis import CHILD_LABOUR, current_classifications_in_windows, first_remediation
from clms.models import (
    Area,
    ChildVisit,
    Classification,
    Supplier,
    SupplierLink,
    UTCDateTime,
    Village,
    Visit,
)
from clms.supply.operations import brand_supplier_ids
from geo.hotspots.figures import LEVELS, _base, _empty_counts, _finish, _identity
from geo.hotspots.gate import Chain
from geo.periods import Period


def release_inputs(session: Session, brand_id: int, period: Period) -> tuple[Chain, dict, dict]:
    """What a brand's period is made of, before the privacy gate: ``(chain, cells, parts)`` -
    the cells of every level and every layer (each tier's, each supplier's sub-chain, at every
    level) and each village's part of each supplier, aggregated now over the brand's chain as it
    is now (:mod:`geo.hotspots.releases` keeps them, once)."""
    brand_ids = sorted(brand_supplier_ids(session, brand_id))
    chain = Chain(brand_ids=brand_ids)
    if not brand_ids:
        return chain, {("total", None): {**_identity("total", None), **_empty_counts()}}, {}
    for supplier_id, tier in session.execute(
        select(Supplier.id, Supplier.tier).where(Supplier.id.in_(brand_ids))
    ):
        chain.tiers[supplier_id] = tier
    for buyer, seller in session.execute(
        select(SupplierLink.buyer_id, SupplierLink.seller_id).where(
            SupplierLink.buyer_id.in_(brand_ids), SupplierLink.seller_id.in_(brand_ids)
        )
    ):
        chain.sellers.setdefault(buyer, []).append(seller)
    modes = [
        ("", None, None, LEVELS),
        ("@", "tier", None, LEVELS),
        ("@s", "supplier", brand_ids, LEVELS),
        ("part", None, None, ()),
    ]
    raw = _aggregate(session, period, Visit.supplier_id.in_(brand_ids), brand_ids, modes)
    parts = {
        cell_id: tuple(int(v or 0) for v in values)  # PostgreSQL's sums come as Decimal
        for kind, cell_id, window, *values in raw
        if kind == "part" and window == "cur"
    }
    cells = _cells(session, [row for row in raw if row[0] != "part"])
    for cell in cells.values():
        _finish(cell)
    villages = sorted({i for (kind, i) in cells if kind == "village"} | {v for v, _s in parts})
    for chunk in range(0, len(villages), 5000):
        chain.village_area.update(
            session.execute(
                select(Village.id, Village.area_id).where(
                    Village.id.in_([v for v in villages[chunk : chunk + 5000] if v is not None])
                )
            ).all()
        )
    return chain, cells, parts


def _aggregate(session, period: Period, scope, brand_ids, modes) -> list:
    """Rows ``(kind, cell_id, window, counts...)`` for the cells asked for and the totals, in
    one query: the latest classification of each child in each window is ranked once, summed
    per household and place (a common table expression the databases materialise, about a
    quarter of the children's rows) and grouped several ways.

    ``scope``: the visits that may count. ``modes``: ``[(suffix, slice_by, kept, kinds)]``, one
    set of cells for each, of the ``kinds`` (village, area, tier, supplier) and the total, whose
    kinds get ``suffix``: with ``slice_by`` None, ``kept`` (None, or the supplier ids, a list
    or a select) keeps the children whose latest visit is of those suppliers; with "tier" each
    cell is split by the tier of the latest visit's supplier (``village@2``); with "supplier"
    by each supplier of ``kept`` (a list of ids) whose sub-chain holds the latest visit's
    supplier (``village@s12``).

    The steps: the two windows (:func:`_windows`), each child's latest visit in each
    (:func:`_ranked`, :func:`_latest`), summed per household and place (:func:`_fine`), grouped
    as ``modes`` ask (:class:`_Groupings`) in one ``UNION ALL``, read back (:func:`_read`).
    """
    windows = _windows(period)
    dialect = session.get_bind().dialect.name
    ranked = _ranked(dialect, windows, scope)
    fine = _fine(_latest(dialect, ranked))
    groupings = _Groupings(fine, brand_ids)
    for suffix, slice_by, kept, kinds in modes:
        groupings.add(suffix, slice_by, kept, kinds)
    return _read(session.execute(union_all(*groupings.parts)))


def _windows(period: Period):
    """The two windows, ``cur`` (the period) and ``prev`` (the previous one): a common table
    expression of ``(k, s, e)``, key, start and end."""
    return union_all(
        *(
            select(
                literal(key).label("k"),
                literal(_midnight(start), UTCDateTime()).label("s"),
                literal(_midnight(stop), UTCDateTime()).label("e"),
            )
            for key, start, stop in (
                ("cur", period.start, period.end + dt.timedelta(days=1)),
                ("prev", period.previous_start, period.start),
            )
        )
    ).cte("hotspot_windows")


def _ranked(dialect: str, windows, scope):
    """Each child's current classified visits in each window, among those ``scope`` keeps, the
    latest of them ranked 1 (``rn``), with ``identified``: whether any of them was classified
    as child labour."""
    in_labour = case((Classification.category.in_(CHILD_LABOUR), 1), else_=0)
    columns = [
        windows.c.k.label("k"),
        windows.c.e.label("e"),
        ChildVisit.child_id.label("child_id"),
        Visit.household_id.label("household_id"),
        Visit.village_id.label("village_id"),
        Visit.supplier_id.label("supplier_id"),
        Classification.category.label("category"),
    ]
    if dialect == "sqlite":
        # one row per child and window, GROUP BY instead of window functions (twice as fast in
        # SQLite): with exactly one max() aggregate, SQLite takes the other (bare) columns from
        # the row holding the maximum (https://sqlite.org/lang_select.html#bare_columns); the
        # key orders as (visited_at, visit id, child visit id) do (SQLite stores datetimes as
        # fixed-width text), so that row is the latest visit
        latest_key = Visit.visited_at.op("||", return_type=String)(
            func.printf("%020d%020d", Visit.id, ChildVisit.id)
        )
        ranked = (
            current_classifications_in_windows(
                select(
                    *columns,
                    case((func.sum(in_labour) > 0, 1), else_=0).label("identified"),
                    func.max(latest_key).label("latest_key"),
                    literal(1).label("rn"),
                ),
                windows,
            )
            .where(scope)
            .group_by(windows.c.k, ChildVisit.child_id)
            .subquery("hotspot_ranked")
        )
    else:
        partition = [windows.c.k, ChildVisit.child_id]
        order = (Visit.visited_at.desc(), Visit.id.desc(), ChildVisit.id.desc())
        ranked = (
            current_classifications_in_windows(
                select(
                    *columns,
                    # the same partition and order for both (the whole partition as the frame
                    # of the first): the databases sort the rows once, not twice
                    func.max(in_labour)
                    .over(partition_by=partition, order_by=order, rows=(None, None))
                    .label("identified"),
                    func.row_number().over(partition_by=partition, order_by=order).label("rn"),
                ),
                windows,
            )
            .where(scope)
            .subquery("hotspot_ranked")
        )
    return ranked


def _latest(dialect: str, ranked):
    """Each child's latest visit in each window, with ``remediated``: identified in child
    labour and first served before the window's end."""
    first = first_remediation(dialect)
    # the first remediation only matters for the children identified in child labour
    latest = (
        select(
            ranked.c.k,
            ranked.c.household_id,
            ranked.c.village_id,
            ranked.c.supplier_id,
            ranked.c.category,
            ranked.c.identified,
            case((and_(ranked.c.identified == 1, first.c.first_at < ranked.c.e), 1), else_=0).label(
                "remediated"
            ),
        )
        .select_from(ranked)
        .outerjoin(first, and_(ranked.c.identified == 1, first.c.child_id == ranked.c.child_id))
        .where(ranked.c.rn == 1)
        .subquery("hotspot_latest")
    )
    return latest


def _fine(latest):
    """The children's counts per window, household and place: what every grouping adds up."""
    # one row per window, household and place (village, supplier): every grouping adds these up,
    # counting the distinct households, so the many groupings read a quarter of the rows
    where = (latest.c.k, latest.c.household_id, latest.c.village_id, latest.c.supplier_id)
    fine = (
        select(
            *where,
            func.count().label("children"),
            func.sum(case((latest.c.category.in_(CHILD_LABOUR), 1), else_=0)).label("child_labour"),
            func.sum(case((latest.c.category == "hazardous", 1), else_=0)).label("hazardous"),
            func.sum(case((latest.c.category == "worst_form", 1), else_=0)).label("worst_forms"),
            func.sum(latest.c.identified).label("identified"),
            func.sum(latest.c.remediated).label("remediated"),
        )
        .group_by(*where)
        .cte("hotspot_fine")
    )
    return fine


def _figures(source):
    c = source.c
    return [
        func.sum(c.children).label("children"),
        func.count(distinct(c.household_id)).label("households"),
        func.sum(c.child_labour).label("child_labour"),
        func.sum(c.hazardous).label("hazardous"),
        func.sum(c.worst_forms).label("worst_forms"),
        func.sum(c.identified).label("identified"),
        func.sum(c.remediated).label("remediated"),
    ]


class _Groupings:
    """The groupings of one aggregation over ``fine`` (:func:`_fine`), one select each in
    ``parts``, for a ``UNION ALL``: :meth:`add` adds those of one mode."""

    def __init__(self, fine, brand_ids):
        self.fine = fine
        self.brand_ids = brand_ids
        self.slicer = aliased(Supplier, name="slice_supplier")
        self.parts = []
        self.ctes: dict = {}
        self.closure = None

    def chain_of(self, name: str, roots):
        """(root, member) pairs: every supplier whose sub-chain holds ``member`` (UNION, so
        that a supplier reached by two paths counts once)."""
        ctes = self.ctes
        if name not in ctes:
            start = select(Supplier.id.label("root"), Supplier.id.label("member"))
            if roots is not None:
                start = start.where(Supplier.id.in_(roots))
            chain = start.cte(name, recursive=True)
            ctes[name] = chain.union(
                select(chain.c.root, SupplierLink.seller_id).join(
                    SupplierLink, SupplierLink.buyer_id == chain.c.member
                )
            )
        return ctes[name]

    def part(self, kind: str, cell_id, stmt, suffix, slice_by, kept) -> None:
        """One grouping: ``stmt`` selects from ``fine`` (and what it joins); ``cell_id`` None
        for the total."""
        fine, slicer = self.fine, self.slicer
        slice_col = cast(null(), Integer)
        if slice_by == "tier":
            stmt = stmt.join(slicer, slicer.id == fine.c.supplier_id)
            slice_col = slicer.tier
        elif slice_by == "supplier":
            sliced = self.chain_of("slice_chain", kept)
            stmt = stmt.join(sliced, sliced.c.member == fine.c.supplier_id)
            slice_col = sliced.c.root
        elif kept is not None:
            stmt = stmt.where(fine.c.supplier_id.in_(kept))
        stmt = stmt.add_columns(
            literal(kind + suffix).label("kind"),
            # typed NULLs: PostgreSQL settles a UNION's column types part by part
            (cast(null(), Integer) if cell_id is None else cell_id).label("cell_id"),
            slice_col.label("slice"),
            fine.c.k,
            *_figures(fine),
        ).group_by(fine.c.k)
        if slice_by is not None:
            stmt = stmt.group_by(slice_col)
        if cell_id is not None:
            stmt = stmt.group_by(cell_id)
        self.parts.append(stmt)

    def add(self, suffix, slice_by, kept, kinds) -> None:
        """The groupings of one mode (see :func:`_aggregate`)."""
        fine = self.fine
        if suffix == "part":
            # each village's (and no village's) children per supplier, in both windows: what
            # the layers of a brand's map add up (geo.privacy.layer_places)
            self.parts.append(
                select(
                    literal("part").label("kind"),
                    fine.c.village_id.label("cell_id"),
                    fine.c.supplier_id.label("slice"),
                    fine.c.k,
                    *_figures(fine),
                ).group_by(fine.c.k, fine.c.village_id, fine.c.supplier_id)
            )
            return
        args = (suffix, slice_by, kept)
        self.part("total", None, select().select_from(fine), *args)
        if "village" in kinds:
            self.part(
                "village",
                fine.c.village_id,
                select().select_from(fine).where(fine.c.village_id.is_not(None)),
                *args,
            )
        if "tier" in kinds:
            self.part(
                "tier",
                Supplier.tier,
                select().select_from(fine).join(Supplier, Supplier.id == fine.c.supplier_id),
                *args,
            )
        if "area" in kinds:
            # every area above a village: a closure (area, ancestor) built by a recursive CTE
            if self.closure is None:
                closure = select(Area.id.label("area_id"), Area.id.label("ancestor_id")).cte(
                    "area_closure", recursive=True
                )
                self.closure = closure.union_all(
                    select(closure.c.area_id, Area.parent_id)
                    .join(Area, Area.id == closure.c.ancestor_id)
                    .where(Area.parent_id.is_not(None))
                )
            closure = self.closure
            self.part(
                "area",
                closure.c.ancestor_id,
                select()
                .select_from(fine)
                .join(Village, Village.id == fine.c.village_id)
                .join(closure, closure.c.area_id == Village.area_id),
                *args,
            )
        if "supplier" in kinds:
            # every supplier whose sub-chain holds the visit's supplier
            chain = self.chain_of("supplier_chain", self.brand_ids)
            self.part(
                "supplier",
                chain.c.root,
                select().select_from(fine).join(chain, chain.c.member == fine.c.supplier_id),
                *args,
            )


def _read(result) -> list:
    """The rows of the ``UNION ALL`` as :func:`_aggregate` returns them: a slice joins its
    kind (``village`` and tier 2: ``village@2``), a total has no id, a part is keyed by
    ``(village id, supplier id)``."""
    out = []
    for kind, cell_id, slice_, *rest in result:
        if kind == "part":
            out.append((kind, (cell_id, slice_), *rest))
            continue
        if _base(kind) == "total":
            cell_id = None
        out.append((kind if slice_ is None else f"{kind}{slice_}", cell_id, *rest))
    return out


def _cells(session, raw, window: str = "cur") -> dict:
    """``{(kind, id): row}`` of ``window`` (``cur``, the period; ``prev``, the previous one):
    identity (codes, names) and the counts; for the period, the previous period's counts too."""
    counts: dict = {}
    for kind, cell_id, row_window, *values in raw:
        if _base(kind) != "total" and cell_id is None:
            continue
        cell = counts.setdefault((kind, cell_id), {})
        cell[row_window] = dict(
            zip(
                ("children", "households", "child_labour", "hazardous", "worst_forms"),
                (int(v or 0) for v in values[:5]),
                strict=True,
            )
        )
        cell[row_window]["identified"] = int(values[5] or 0)
        cell[row_window]["remediated"] = int(values[6] or 0)
    names = _names(session, counts)
    cells = {}
    for (kind, cell_id), windows in counts.items():
        if window not in windows:
            continue  # nobody this period: no row (the previous figures alone say nothing)
        row = dict(names.get((_base(kind), cell_id)) or _identity(_base(kind), cell_id))
        row.update(windows[window])
        previous = windows.get("prev") if window == "cur" else None
        row["_previous_children"] = previous["children"] if previous else 0
        row["_previous_households"] = previous["households"] if previous else 0
        row["_previous_child_labour"] = previous["child_labour"] if previous else 0
        cells[(kind, cell_id)] = row
    cells.setdefault(("total", None), {**_identity("total", None), **_empty_counts()})
    return cells


def _names(session, counts) -> dict:
    """Identity rows of the cells named in ``counts``, read in one query per kind."""
    out = {}
    ids = {kind: sorted({i for k, i in counts if _base(k) == kind}) for kind in LEVELS}
    if ids["village"]:
        for vid, code, name, area_code in session.execute(
            select(Village.id, Village.code, Village.name, Area.code)
            .join(Area, Area.id == Village.area_id)
            .where(Village.id.in_(ids["village"]))
        ):
            out[("village", vid)] = {
                "level": "village",
                "code": code,
                "name": name,
                "area_code": area_code,
            }
    if ids["area"]:
        for aid, code, name, area_level, parent_id in session.execute(
            select(Area.id, Area.code, Area.name, Area.level, Area.parent_id).where(
                Area.id.in_(ids["area"])
            )
        ):
            out[("area", aid)] = {
                "level": "area",
                "code": code,
                "name": name,
                "area_level": area_level,
                "_parent_id": parent_id,
            }
    if ids["supplier"]:
        for sid, code, name, supplier_tier in session.execute(
            select(Supplier.id, Supplier.code, Supplier.name, Supplier.tier).where(
                Supplier.id.in_(ids["supplier"])
            )
        ):
            out[("supplier", sid)] = {
                "level": "supplier",
                "code": code,
                "name": name,
                "tier": supplier_tier,
            }
    for t in ids["tier"]:
        out[("tier", t)] = {"level": "tier", "code": str(t), "name": str(t), "tier": t}
    return out


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), dt.UTC)
