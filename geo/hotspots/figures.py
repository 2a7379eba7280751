"""The figures of a hotspot cell and the tables that hold them (see :mod:`geo.hotspots` for the
definitions). Pure: plain data in and out, no database, no request.

:data:`LEVELS`, :data:`FIGURES` and :data:`COUNTS` name what a cell holds; ``_finish`` adds a
cell's ratios to its counts (:func:`wilson_interval` for the interval); :class:`HotspotTables`
(the cells of one aggregation, already through the privacy gate for a brand) gives one
:class:`HotspotTable` per level.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field

from geo.periods import Period

#: the ``level`` values
LEVELS = ("village", "area", "supplier", "tier")
#: the figures of a cell, in the order tables and exports show them
FIGURES = (
    "households",
    "children",
    "child_labour",
    "hazardous",
    "worst_forms",
    "prevalence",
    "prevalence_low",
    "prevalence_high",
    "previous_prevalence",
    "change",
    "identified",
    "remediation_coverage",
)
#: the counts that add up over the cells of a group (what secondary suppression protects)
COUNTS = ("households", "children", "child_labour", "hazardous", "worst_forms", "identified")
#: z for a two-sided 95% interval
Z95 = 1.959963984540054


@dataclass
class HotspotTable:
    """The cells of one level for one caller.

    ``rows``: one dict per cell with ``level``, ``code``, ``name`` (for a village also
    ``area_code``, for a supplier also ``tier``; for a tier, ``code`` and ``name`` are the tier
    number as text) and either the :data:`FIGURES` or, for a brand's suppressed cell,
    ``{"suppressed": True, "reason": "..."}`` and no figure at all. ``total``: the same for the
    whole scope (``level`` "total"). ``brand``: the figures passed the privacy gate.
    """

    level: str
    period: Period
    rows: list[dict] = field(default_factory=list)
    total: dict = field(default_factory=dict)
    brand: bool = False
    min_children: int = 0
    min_households: int = 0

    def as_dict(self) -> dict:
        """The table as plain JSON-ready data (the API's answer)."""
        return {
            "level": self.level,
            "period": self.period.as_dict(),
            "thresholds": {
                "min_children": self.min_children,
                "min_households": self.min_households,
            },
            "total": self.total,
            "rows": self.rows,
        }


@dataclass
class HotspotTables:
    """The tables of one aggregation (:func:`geo.hotspots.tables.hotspot_tables`): ``cells``
    ``{(kind, id): row}``, already protected for a brand (one privacy gate over all of them);
    :meth:`table` picks one."""

    period: Period
    brand: bool
    min_children: int
    min_households: int
    cells: dict
    levels: tuple
    layer_levels: tuple
    tiers: bool
    supplier_ids: tuple
    #: for a brand, when the figures were released (geo.hotspots.releases); None: just now
    computed_at: dt.datetime | None = None

    def table(
        self,
        level: str,
        *,
        area_level: str | None = None,
        tier: int | None = None,
        supplier_id: int | None = None,
        _suffix: str | None = None,
    ) -> HotspotTable:
        """The table of ``level`` (for a tier's or a supplier's layer: ``tier`` or
        ``supplier_id``, among those the aggregation was asked for), the areas only of
        ``area_level`` if given."""
        if level not in LEVELS:
            raise ValueError(f"level must be one of {', '.join(LEVELS)}, not {level!r}")
        if tier is not None and supplier_id is not None:
            raise ValueError("a table of one tier or of one supplier, not both")
        wanted = "" if _suffix is None else _suffix
        if tier is not None:
            if not self.tiers or level not in self.layer_levels:
                raise ValueError(f"no tier layers of {level!r} in this aggregation")
            wanted = f"@{tier}"
        elif supplier_id is not None:
            if supplier_id not in self.supplier_ids or level not in self.layer_levels:
                raise ValueError(f"no layer of supplier {supplier_id} in this aggregation")
            wanted = f"@s{supplier_id}"
        elif _suffix is None and level not in self.levels:
            raise ValueError(f"no {level!r} table in this aggregation")
        from geo import privacy

        table = HotspotTable(
            level,
            self.period,
            brand=self.brand,
            min_children=self.min_children,
            min_households=self.min_households,
        )
        total = self.cells.get(("total" + wanted, None))
        if total is None:
            # nobody in this layer: an empty total, suppressed for a brand
            empty = {**_identity("total", None), **_empty_figures()}
            total = (
                privacy.publish(empty, _reason_empty(self.min_children), 0, 0)
                if self.brand
                else empty
            )
        table.total = _public(total)
        rows = [
            _public(cell)
            for (kind, _id), cell in self.cells.items()
            if kind == level + wanted
            and not cell.get("_hide")
            and (level != "area" or area_level is None or cell.get("_area_level") == area_level)
        ]
        table.rows = sorted(rows, key=_sort_key)
        return table


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """The Wilson score interval of ``successes`` out of ``n`` (None when ``n`` is 0).

    >>> [round(v, 4) for v in wilson_interval(3, 10)]
    [0.1078, 0.6032]
    """
    if n <= 0:
        return None
    p = successes / n
    z2 = z * z
    denominator = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denominator
    half = z / denominator * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def _finish(cell: dict) -> dict:
    """Add the ratios to a cell's counts, in place (previous figures only when the previous
    period had children)."""
    children = cell["children"]
    cell["prevalence"] = _share(cell["child_labour"], children)
    interval = wilson_interval(cell["child_labour"], children)
    cell["prevalence_low"] = round(interval[0], 4) if interval else None
    cell["prevalence_high"] = round(interval[1], 4) if interval else None
    previous = _share(cell.get("_previous_child_labour", 0), cell.get("_previous_children", 0))
    cell["previous_prevalence"] = previous
    cell["change"] = (
        None
        if previous is None or cell["prevalence"] is None
        else round(100 * (cell["prevalence"] - previous), 1)
    )
    cell["remediation_coverage"] = _share(cell.get("remediated", 0), cell["identified"])
    cell.pop("remediated", None)
    return cell


def _base(kind: str) -> str:
    """The kind of a cell without its slice (``village@2`` -> ``village``)."""
    return kind.split("@", 1)[0]


def _public(cell: dict) -> dict:
    """A copy of a cell without its private keys (``_...``)."""
    return {k: v for k, v in cell.items() if not k.startswith("_")}


def _reason_empty(min_children: int) -> str:
    from geo import privacy

    return privacy.REASON_CHILDREN.format(n=min_children)


def _identity(kind: str, cell_id) -> dict:
    return {"level": kind, "code": None if cell_id is None else str(cell_id), "name": None}


def _empty_counts() -> dict:
    return {name: 0 for name in COUNTS} | {"remediated": 0}


def _empty_figures() -> dict:
    return _finish(_empty_counts())


def _share(numerator, denominator) -> float | None:
    return round(numerator / denominator, 4) if denominator else None


def _sort_key(row: dict):
    return (str(row.get("area_code") or ""), str(row.get("code") or ""))
