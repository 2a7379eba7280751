"""A brand's privacy gate over the cells of its release. Pure: plain data in and out.

:func:`gate_release` gives the tables a brand sees of a period from the counts its release holds
(:mod:`geo.hotspots.releases`) and the release of the period before; ``_protect_brand`` passes
every cell, layer, supplier and tier through :mod:`geo.privacy` in one pass.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from geo.hotspots.figures import LEVELS, HotspotTables, _base, _reason_empty
from geo.periods import Period

#: the levels protected together for a brand (a total of one is the sum of cells of the other)
HIERARCHIES = {
    "village": ("village", "area"),
    "area": ("village", "area"),
    "supplier": ("supplier",),
    "tier": ("tier",),
}


@dataclass
class Chain:
    """What a brand's privacy gate needs besides the figures, as they were when the figures were
    released: the brand's suppliers, the tier of each, who buys from whom among them, and the
    area each village lies in."""

    brand_ids: list[int] = field(default_factory=list)
    tiers: dict[int, int] = field(default_factory=dict)
    sellers: dict[int, list[int]] = field(default_factory=dict)
    village_area: dict[int, int] = field(default_factory=dict)


def gate_release(
    chain: Chain, cells: dict, parts: dict, previous, period: Period, thresholds
) -> HotspotTables:
    """The tables a brand sees of ``period``: its released ``cells`` and ``parts`` through the
    privacy gate (:func:`_protect_brand`, every level and every layer at once), with the previous
    figures of ``previous`` (the release of the period before, ``(chain, cells, parts)``, gated
    the same way) where that period shows the cell. Pure: plain data in and out."""
    brand_ids = tuple(chain.brand_ids)
    result = HotspotTables(period, True, *thresholds, {}, LEVELS, LEVELS, True, brand_ids)
    tiers = sorted(set(chain.tiers.values()))
    layers = [f"@s{i}" for i in brand_ids] + [f"@{t}" for t in tiers]
    scoped = bool(brand_ids)
    cells = _copied(cells)
    area_levels = {key: cell.get("area_level") for key, cell in cells.items()}
    before = {}
    if scoped and previous is not None:
        p_chain, p_cells, p_parts = previous
        before = _protect_brand(
            p_chain, _copied(p_cells), p_parts, result, bool(p_chain.brand_ids), layers
        )
    _carry_previous(cells, before)
    out = _protect_brand(chain, cells, parts, result, scoped, layers)
    for key, cell in out.items():
        cell["_area_level"] = area_levels.get(key, area_levels.get((_base(key[0]), key[1])))
    result.cells = out
    return result


def _copied(cells: dict) -> dict:
    """A copy of ``cells`` the gate may change: each cell's figures are plain numbers and strings,
    so copying each cell's dictionary is enough (``copy.deepcopy`` took three quarters of the
    gate's time)."""
    return {key: dict(cell) for key, cell in cells.items()}


def _protect_brand(
    chain: Chain,
    cells: dict,
    parts: dict,
    result: HotspotTables,
    scoped: bool,
    layers=(),
) -> dict:
    """A brand's cells through the privacy gate, ALL of them in one pass (the unfiltered cells
    of every level are always computed for a brand, so the outcome is the same whatever a
    request asks for):

    * villages, areas and the total: :func:`geo.privacy.protect` over the areas' hierarchy;
    * suppliers and tiers, each a sum of the suppliers' parts of the whole scope:
      :func:`geo.privacy.suppress_exact` (linear algebra over the brand's suppliers, with the
      total known), so that no supplier's own farmers and no tier can be worked out;
    * every layer (``village@2``, ``area@s12``, ``total@x``, ``supplier@2``...):
      :func:`geo.privacy.layer_places` over each village's part of each supplier (``parts``),
      all of a place's layers shown or none; a place hiding them is listed as hidden in every
      layer asked for (``layers``: their suffixes, ``@2``, ``@s12``, ``@x``), so that nobody
      learns which of its parts are empty.

    ``chain``: the brand's suppliers, their tiers and links, and the villages' areas, as the
    figures were released (a function of plain data: no database).
    """
    from geo import privacy as gate

    options = {"min_children": result.min_children, "min_households": result.min_households}
    if not scoped:
        return gate.protect(cells, [], **options)
    unfiltered = {k: c for k, c in cells.items() if k[0] in (*LEVELS, "total")}
    geo_cells = {k: c for k, c in unfiltered.items() if k[0] in ("village", "area", "total")}
    out = gate.protect(geo_cells, _groups(geo_cells, chain.village_area), **options)
    hidden_places = {k for k, row in out.items() if row.get("suppressed")}
    # suppliers and tiers
    tiers = dict(chain.tiers)
    sums, hidden_sums, place_parts = _protect_supply(chain, parts, unfiltered, out, result)
    root = ("total", None)
    # the layers
    village_area = chain.village_area
    parents = {root: None}
    for kind, cell_id in geo_cells:
        if kind == "village":
            area = village_area.get(cell_id)
            parents[(kind, cell_id)] = ("area", area) if ("area", area) in geo_cells else root
        elif kind == "area":
            parent = geo_cells[(kind, cell_id)].get("_parent_id")
            parents[(kind, cell_id)] = ("area", parent) if ("area", parent) in geo_cells else root
    shown_sums = {k for k in sums if k not in hidden_sums}
    pieces = {
        s: tuple(sorted((str(k[0]), k[1]) for k in shown_sums if s in sums[k])) for s in tiers
    }
    places, whole = gate.layer_places(
        parents, place_parts, hidden_places, root_pieces=pieces, **options
    )
    suffixes = sorted(({k[0][len(_base(k[0])) :] for k in cells} | set(layers)) - {""})
    layer_kinds = {k for level in result.layer_levels for k in _kinds(level, True)}
    for key, cell in cells.items():
        kind = key[0]
        suffix = kind[len(_base(kind)) :]
        if not suffix:
            continue
        base = (_base(kind), key[1])
        if base[0] == "total":
            if suffix[1:].isdigit():
                shown = ("tier", int(suffix[1:])) in shown_sums
            elif suffix.startswith("@s"):
                shown = ("supplier", int(suffix[2:])) in shown_sums
            else:
                shown = whole
        elif base[0] in ("village", "area"):
            shown = base in places
        else:
            shown = whole
        reason = None if shown else gate.REASON_LAYER
        small = gate.primary_reasons({key: cell}, result.min_children, result.min_households)
        out[key] = gate.publish(cell, small.get(key) or reason, **options)
    # a place hiding its layers: hidden in every layer, even one it has no child in
    for suffix in suffixes:
        for base, cell in unfiltered.items():
            key = (base[0] + suffix, base[1])
            if base[0] not in layer_kinds or key in out:
                continue
            if base in places or (base[0] in ("supplier", "tier") and whole):
                continue  # shown: no row is a true 0
            out[key] = gate.publish(cell, gate.REASON_LAYER, **options)
    for key in cells.keys() - out.keys():  # never published: a cell outside every gate
        out[key] = gate.publish(cells[key], _reason_empty(result.min_children), 0, 0)
    return out


def _protect_supply(chain: Chain, parts: dict, unfiltered: dict, out: dict, result) -> tuple:
    """The suppliers and tiers of a brand's cells (:func:`_protect_brand`), each a sum of the
    suppliers' parts of the whole scope, through :func:`geo.privacy.suppress_exact` and published
    into ``out``. Returns ``(sums, hidden_sums, place_parts)``: the suppliers each supplier's and
    tier's cell adds up, those hidden, and each place's part of each supplier (for the layers)."""
    from geo import privacy as gate

    options = {"min_children": result.min_children, "min_households": result.min_households}
    tiers = dict(chain.tiers)
    chains = {s: _reach(s, chain.sellers) for s in tiers}
    root_parts: dict = {}
    place_parts: dict = {}
    root = ("total", None)
    for (village_id, supplier_id), values in parts.items():
        children, households = int(values[0] or 0), int(values[1] or 0)
        c, h = root_parts.get(supplier_id, (0, 0))
        root_parts[supplier_id] = (c + children, h + households)
        place = root if village_id is None else ("village", village_id)
        place_parts[(place, supplier_id)] = (children, households)
    sums = {("supplier", s): chains[s] for s in tiers}
    for s, t in tiers.items():
        sums.setdefault(("tier", t), set()).add(s)
    total_known = root in out and not out[root].get("suppressed")
    hidden_sums = gate.suppress_exact(
        sums, root_parts, [], known=[set(tiers)] if total_known else [], **options
    )
    primary = gate.primary_reasons(unfiltered, result.min_children, result.min_households)
    for key in sums:
        if key in unfiltered:
            reason = (primary.get(key) or gate.REASON_SECONDARY) if key in hidden_sums else None
            out[key] = gate.publish(unfiltered[key], reason, **options)
    return sums, hidden_sums, place_parts


def _carry_previous(cells: dict, before: dict) -> None:
    """Give a brand's cells the previous figures the brand sees: the prevalence of the same
    cell in the previous period as published there (``before``, through the gate), or nothing
    where that period hides it, in place."""
    for key, cell in cells.items():
        shown = before.get(key)
        if shown is None or shown.get("suppressed") or shown.get("prevalence") is None:
            cell["previous_prevalence"] = cell["change"] = None
            cell["_previous_hidden"] = True
            continue
        cell["previous_prevalence"] = shown["prevalence"]
        cell["change"] = (
            None
            if cell["prevalence"] is None
            else round(100 * (cell["prevalence"] - shown["prevalence"]), 1)
        )
        cell["_previous_hidden"] = False


def _reach(supplier, sellers: dict) -> set:
    """``supplier`` and every supplier it buys from, however far down (``sellers``: buyer to
    the suppliers it buys from)."""
    seen, stack = {supplier}, [supplier]
    while stack:
        for seller in sellers.get(stack.pop(), ()):
            if seller not in seen:
                seen.add(seller)
                stack.append(seller)
    return seen


def _kinds(level: str, brand: bool) -> tuple:
    """The kinds of cells a table of ``level`` is computed (and for a brand protected) with."""
    return HIERARCHIES[level] if brand else (level,)


def _groups(cells: dict, village_area: dict) -> list[tuple]:
    """The published totals of a brand's places and the cells that add up to each:
    ``[(total key, [member keys]), ...]``: an area over its villages and the areas directly
    below it, the scope total over the top areas (the children no village holds are its
    residual). Suppliers and tiers are protected apart (:func:`_protect_brand`)."""
    groups: dict = {}
    for (kind, cell_id), row in cells.items():
        if kind == "village":
            parent = ("area", village_area.get(cell_id))
            groups.setdefault(parent, []).append((kind, cell_id))
        elif kind == "area":
            parent_id = row.get("_parent_id")
            parent = ("area", parent_id) if parent_id is not None else ("total", None)
            groups.setdefault(parent, []).append((kind, cell_id))
    return [(parent, members) for parent, members in groups.items() if parent in cells]
