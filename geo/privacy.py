"""The privacy gate: every figure a brand receives passes through :func:`protect` (domain.md
section 8), and every brand-facing answer is checked by :func:`assert_brand_safe` before it is
sent.

The rules, in one place:

1. **Primary suppression.** A cell with fewer than ``min_children`` children (default 10) or fewer
   than ``min_households`` households (default 5) is suppressed. The settings
   ``PRIVACY_MIN_CHILDREN`` and ``PRIVACY_MIN_HOUSEHOLDS`` may only raise these
   (:func:`thresholds`).
2. **Secondary suppression.** A group is a published total and the cells that add up to it (an
   area over its villages and the areas directly below it, the scope total over the top areas);
   what the members do not cover is the group's *residual* (children with no village).
   Subtracting the published members from a published total gives the sum of the unknowns, so
   no group may have exactly one unknown cell: where it has, the smallest published member (else
   the total itself) is suppressed too; a residual that is itself below the
   thresholds counts as a cell to protect. This repeats until nothing changes (:func:`suppress`).
   Cells that overlap in more ways than a tree (suppliers, whose sub-chains share sellers, and
   tiers, over the same children) are protected by linear algebra instead
   (:func:`suppress_exact`).
3. **Only aggregates leave.** A published row keeps only the keys of :data:`ALLOWED_KEYS`: codes
   and names of villages, areas, suppliers and tiers, and the aggregate figures; anything else
   (ids, names of people, household codes, points, free text) is dropped. A suppressed row keeps
   its identity and ``{"suppressed": True, "reason": "..."}``, no number at all.
4. **Layers** (a map's layer per tier or per supplier, a table filtered by either): see
   :func:`layer_places`. The children of a place are split by the supplier their latest visit
   names (its *parts*); every layer is a sum of parts, so a layer cell is published only where
   nothing a combination of layers could single out is small.
5. **The previous period.** Its figures (``previous_prevalence``, ``change``) are dropped when the
   previous cell was below the thresholds, and say ``previous_suppressed``; a brand's hotspot
   figures take them from the previous period as this gate published it, so that they are
   dropped wherever that period hides the cell.
6. **Periods.** A brand sees only the periods of a fixed grid that never overlap
   (:mod:`geo.periods`): figures of nested periods would undo each other.

Everything here is pure: plain dicts in, plain dicts out, no database and no Flask.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable, Iterable, Mapping

from clms.i18n import N_

#: the defaults of domain.md section 8 (an administrator may only raise them)
DEFAULT_MIN_CHILDREN = 10
DEFAULT_MIN_HOUSEHOLDS = 5

#: identity keys a brand may receive
IDENTITY_KEYS = frozenset({"level", "code", "name", "area_code", "area_level", "tier"})
#: aggregate figures a brand may receive: written out, not taken from geo.hotspots.figures.FIGURES,
#: so that a figure added there reaches no brand until it is allowed here
FIGURE_KEYS = frozenset(
    {
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
    }
)
#: keys that say a figure is hidden
SUPPRESSION_KEYS = frozenset({"suppressed", "reason", "previous_suppressed"})
#: every key a brand's row may hold
ALLOWED_KEYS = IDENTITY_KEYS | FIGURE_KEYS | SUPPRESSION_KEYS
#: keys of the envelopes around rows (API answer, GeoJSON), checked by :func:`assert_brand_safe`
ENVELOPE_KEYS = frozenset(
    {
        "level",
        "period",
        "start",
        "end",
        "months",
        "previous_start",
        "previous_end",
        "thresholds",
        "min_children",
        "min_households",
        "total",
        "rows",
        "type",
        "features",
        "properties",
        "geometry",
        "coordinates",
        "geometries",
        "bbox",
    }
)
#: geometry types a brand may receive: areas and village cells, never points
ALLOWED_GEOMETRIES = frozenset({"Polygon", "MultiPolygon"})

REASON_CHILDREN = N_("fewer than {n} children monitored")
REASON_HOUSEHOLDS = N_("fewer than {n} households")
REASON_SECONDARY = N_("hidden so that a suppressed cell cannot be worked out from the totals")
REASON_LAYER = N_("hidden so that no supplier's part of this place can be worked out")
#: every reason, as a pattern of the words the gate writes (``{n}``: a threshold)
_REASONS = tuple(
    (template, re.compile(re.escape(template).replace(re.escape("{n}"), r"(\d+)") + r"\Z"))
    for template in (REASON_CHILDREN, REASON_HOUSEHOLDS, REASON_SECONDARY, REASON_LAYER)
)


def reason_in(reason: str | None, translate: Callable[[str], str]) -> str | None:
    """A suppression reason as the gate wrote it (English, its threshold in it) in the language
    of ``translate`` (a gettext), for the files a person downloads; a reason it does not know is
    left as it is.

    >>> reason_in("fewer than 10 children monitored", lambda t: t.replace("fewer", "less"))
    'less than 10 children monitored'
    """
    for template, pattern in _REASONS:
        found = pattern.match(reason or "")
        if found:
            return translate(template).format(n=int(found.group(1))) if found.groups() else (
                translate(template))  # fmt: skip
    return reason


Key = Hashable


class PrivacyError(AssertionError):
    """A brand-facing answer would break the privacy rules; it must not be sent."""


def thresholds(*values: int | None) -> tuple[int, int]:
    """``(min_children, min_households)``: the largest of the defaults and each given pair
    ``(children, households)`` (settings, a request); a value can only raise a threshold.

    >>> thresholds(None, None, 20, 3)
    (20, 5)
    """
    children, households = DEFAULT_MIN_CHILDREN, DEFAULT_MIN_HOUSEHOLDS
    for i in range(0, len(values), 2):
        c, h = values[i], values[i + 1] if i + 1 < len(values) else None
        if c is not None:
            children = max(children, int(c))
        if h is not None:
            households = max(households, int(h))
    return children, households


def primary_reasons(
    cells: Mapping[Key, Mapping], min_children: int, min_households: int
) -> dict[Key, str]:
    """``{key: reason}`` of the cells below a threshold."""
    out = {}
    for key, cell in cells.items():
        if cell.get("children", 0) < min_children:
            out[key] = REASON_CHILDREN.format(n=min_children)
        elif cell.get("households", 0) < min_households:
            out[key] = REASON_HOUSEHOLDS.format(n=min_households)
    return out


def suppress(
    children: Mapping[Key, int],
    groups: Iterable[tuple[Key, list[Key]]],
    primary: Mapping[Key, str],
    min_children: int,
) -> dict[Key, str]:
    """``{key: reason}`` of every cell to suppress: ``primary`` and, repeated until stable,
    what stops a group's published total from giving away a single unknown (rule 2).

    ``children`` holds each cell's count (what the sizes compare); ``groups`` pairs a total's key
    with the keys of the cells that add up to it.

    >>> suppress({"A": 30, "V1": 3, "V2": 12, "V3": 15}, [("A", ["V1", "V2", "V3"])],
    ...          {"V1": "small"}, 10)
    {'V1': 'small', 'V2': 'hidden so that a suppressed cell cannot be worked out from the totals'}
    """
    hidden = dict(primary)
    groups = [(total, list(members)) for total, members in groups]
    changed = True
    while changed:
        changed = False
        for total, members in groups:
            if total not in children:
                continue
            residual = children[total] - sum(children.get(m, 0) for m in members)
            unknown = [k for k in [total, *members] if k in hidden]
            if residual > 0:
                # the residual is never published: an unknown of its own, and one to protect
                # when it is small
                if len(unknown) >= 1 or residual >= min_children:
                    continue
            elif len(unknown) != 1:
                continue
            published = sorted(
                (m for m in members if m not in hidden), key=lambda m: (children.get(m, 0), str(m))
            )
            victim = published[0] if published else (total if total not in hidden else None)
            if victim is not None:
                hidden[victim] = REASON_SECONDARY
                changed = True
    return hidden


def publish(cell: Mapping, reason: str | None, min_children: int, min_households: int) -> dict:
    """The row a brand may receive for ``cell``: only :data:`ALLOWED_KEYS`; for a suppressed
    cell (``reason``) its identity, ``suppressed`` and ``reason`` only.

    ``cell`` may carry ``_previous_children`` and ``_previous_households`` (the previous
    period's counts): below a threshold, the previous figures are dropped; or
    ``_previous_hidden``, the previous period's own gate's decision (a brand's hotspot figures,
    :func:`geo.hotspots.tables.hotspot_tables`), which then decides alone.
    """
    identity = {k: v for k, v in cell.items() if k in IDENTITY_KEYS}
    if reason is not None:
        return {**identity, "suppressed": True, "reason": reason}
    row = {**identity, **{k: v for k, v in cell.items() if k in FIGURE_KEYS}}
    row["suppressed"] = False
    previous_small = cell.get("_previous_hidden")
    if previous_small is None:
        previous_small = (
            cell.get("_previous_children", 0) < min_children
            or cell.get("_previous_households", 0) < min_households
        )
    if previous_small:
        row["previous_prevalence"] = None
        row["change"] = None
    row["previous_suppressed"] = previous_small
    return row


def protect(
    cells: Mapping[Key, Mapping],
    groups: Iterable[tuple[Key, list[Key]]],
    *,
    min_children: int = DEFAULT_MIN_CHILDREN,
    min_households: int = DEFAULT_MIN_HOUSEHOLDS,
) -> dict[Key, dict]:
    """The rows a brand may receive for ``cells`` (``{key: row}``, each row with at least
    ``children`` and ``households``): primary and secondary suppression over ``groups``, then
    only the allowed keys (rules 1 to 4). The one function every brand-facing output uses.

    >>> rows = protect({"T": {"level": "total", "children": 4, "households": 2,
    ...                       "head_name": "x"}}, [])
    >>> rows["T"]["suppressed"], "children" in rows["T"], "head_name" in rows["T"]
    (True, False, False)
    """
    min_children, min_households = thresholds(min_children, min_households)
    primary = primary_reasons(cells, min_children, min_households)
    counts = {key: int(cell.get("children", 0)) for key, cell in cells.items()}
    hidden = suppress(counts, groups, primary, min_children)
    out = {
        key: publish(cell, hidden.get(key), min_children, min_households)
        for key, cell in cells.items()
    }
    for row in out.values():
        _check_row(row, min_children, min_households)
    return out


def suppress_exact(
    cells: Mapping[Key, Iterable[Hashable]],
    parts: Mapping[Hashable, tuple[int, int]],
    primary: Iterable[Key],
    *,
    known: Iterable[Iterable[Hashable]] = (),
    min_children: int = DEFAULT_MIN_CHILDREN,
    min_households: int = DEFAULT_MIN_HOUSEHOLDS,
) -> set:
    """The cells to hide so that no hidden cell and no small part can be worked out from the
    shown ones, by linear algebra (for tables over a few hundred parts: a brand's suppliers).

    ``cells`` maps each cell to the parts it adds up (a supplier's cell: the suppliers of its
    sub-chain; a tier's: the suppliers of that tier); ``parts`` gives each part's
    ``(children, households)``; ``primary``: the cells hidden already; ``known``: sums published
    elsewhere that cannot be hidden here (the scope total). A cell with no children is known to
    be 0 (no row says so). While a hidden cell or a part below the thresholds lies in the span
    of the shown cells, the smallest shown cell that the combination uses is hidden too.

    >>> sorted(suppress_exact({"x": ["a"], "y": ["a", "b"]}, {"a": (12, 6), "b": (3, 1)}, [],
    ...                       known=[["a", "b"]]))
    ['x']
    """
    import numpy as np

    min_children, min_households = thresholds(min_children, min_households)
    units = sorted(parts, key=str)
    index = {u: i for i, u in enumerate(units)}
    hidden = set(primary)

    def vector(members) -> np.ndarray:
        row = np.zeros(len(units))
        for m in members:
            if m in index:
                row[index[m]] = 1.0
        return row

    vectors = {key: vector(members) for key, members in cells.items()}
    fixed = [vector(members) for members in known]
    sizes = {key: sum(parts[u][0] for u in members if u in parts) for key, members in cells.items()}
    for key, vec in vectors.items():
        if vec.any() and key not in hidden:
            n = sum(parts[u][0] for u in units if vec[index[u]])
            h = sum(parts[u][1] for u in units if vec[index[u]])
            if n < min_children or h < min_households:
                hidden.add(key)
    smalls = [
        vector([u])
        for u in units
        if parts[u][0] > 0 and (parts[u][0] < min_children or parts[u][1] < min_households)
    ]
    while True:
        shown = [k for k in vectors if k not in hidden]
        rows = [vectors[k] for k in shown] + fixed
        if not rows or not units:
            return hidden
        matrix = np.array(rows)
        secrets = [vectors[k] for k in sorted(hidden, key=str) if vectors[k].any()] + smalls
        victim = None
        for secret in secrets:
            coefficients, *_ = np.linalg.lstsq(matrix.T, secret, rcond=None)
            if np.linalg.norm(matrix.T @ coefficients - secret) > 1e-6:
                continue  # not in the span: cannot be worked out
            used = [k for k, c in zip(shown, coefficients, strict=False) if abs(c) > 1e-9]
            used = [k for k in used if vectors[k].any()]
            if used:
                victim = min(used, key=lambda k: (sizes[k], str(k)))
                break
        if victim is None:
            return hidden
        hidden.add(victim)


def layer_places(
    parents: Mapping[Key, Key | None],
    parts: Mapping[tuple[Key, Hashable], tuple[int, int]],
    hidden: Iterable[Key],
    *,
    root_pieces: Mapping[Hashable, Hashable] | None = None,
    min_children: int = DEFAULT_MIN_CHILDREN,
    min_households: int = DEFAULT_MIN_HOUSEHOLDS,
) -> tuple[set, bool]:
    """The places whose layer cells a brand may see, and whether the scope-wide cells of
    suppliers by tier and of tiers by supplier may be seen: ``(places, whole)``.

    ``parents`` maps every place (villages, areas) to the place above it; the root (the scope
    total) is the one place whose parent is ``None``. ``parts`` maps ``(place, supplier)`` to
    ``(children, households)``: the children of a *village* whose latest visit names that
    supplier and, keyed by the root, those no village holds. ``hidden``: the places whose own
    (unfiltered) cell the gate hides. ``root_pieces`` maps each supplier to its *piece*: the
    suppliers the shown cells of the tables of suppliers and tiers cannot tell apart share one
    (by default, and when ``whole``, each supplier is its own piece).

    Every layer (a tier, a supplier's sub-chain, both) is a union of suppliers, so each of a
    place's layer cells is a sum of its parts. The rules:

    * a village shows its layers (all of them, or none) only when its own cell is shown and
      each of its parts holds at least ``min_children`` children and ``min_households``
      households: whatever its layers are combined into is then a sum of whole parts, never a
      small group;
    * an area shows its layers only when every place below it does: they add up to its own,
      which then tell nothing new;
    * a place hiding its layers is listed as hidden in every layer, even one it has no child in,
      so that nobody learns which of its parts are empty;
    * the cells of the tables of suppliers and tiers, minus the shown villages' layers, give the
      pieces of the *block*: the villages hiding their layers and the children no village holds.
      With the block's rows (two at least) each connected to every piece, no single row's piece
      can be worked out; the block's piece totals must be large as well. Where they are not, the
      smallest villages showing their layers hide them too, until they are, or until none is
      left (what remains is what the gate protects with rule 2).

    ``whole`` is True when each supplier's part of the whole scope is large enough: the tables of
    suppliers by tier and of tiers by supplier are then sums of large parts as well.

    >>> parents = {"T": None, "V1": "T", "V2": "T", "V3": "T"}
    >>> parts = {("V1", "x"): (20, 8), ("V1", "y"): (30, 9), ("V2", "x"): (25, 7),
    ...          ("V2", "y"): (3, 1), ("V3", "x"): (40, 12), ("V3", "y"): (15, 6)}
    >>> places, whole = layer_places(parents, parts, [])
    >>> sorted(places), whole
    (['V3'], True)
    """
    min_children, min_households = thresholds(min_children, min_households)
    hidden = set(hidden)
    below: dict = {}
    root = None
    for place, parent in parents.items():
        if parent is None:
            root = place
        else:
            below.setdefault(parent, []).append(place)
    if root is None:
        return set(), False
    own: dict = {}  # place -> {supplier: [children, households]}
    for (place, supplier), (children, households) in parts.items():
        if children:
            counts = own.setdefault(place, {}).setdefault(supplier, [0, 0])
            counts[0] += int(children)
            counts[1] += int(households)

    def large(counts) -> bool:
        return counts[0] >= min_children and counts[1] >= min_households

    def add(into: dict, parts_of: Mapping, key=lambda supplier: supplier) -> None:
        for supplier, (children, households) in parts_of.items():
            counts = into.setdefault(key(supplier), [0, 0])
            counts[0] += children
            counts[1] += households

    whole_parts: dict = {}
    for place_parts in own.values():
        add(whole_parts, place_parts)
    whole = bool(whole_parts) and all(large(c) for c in whole_parts.values())
    if whole:
        root_pieces = None  # the tables of suppliers by tier tell every supplier apart
    villages = [p for p in parents if p != root and not below.get(p) and own.get(p)]
    shown = {v for v in villages if v not in hidden and all(large(c) for c in own[v].values())}
    # the root's block: hide the smallest villages showing their layers until it is safe
    piece = (lambda s: s) if root_pieces is None else (lambda s: root_pieces.get(s, s))
    block: dict = {}
    rows = 0
    if own.get(root):
        add(block, own[root], piece)
        rows += 1
    for v in villages:
        if v not in shown:
            add(block, own[v], piece)
            rows += 1
    candidates = sorted(shown, key=lambda v: (sum(c for c, _h in own[v].values()), str(v)))
    while block and not (rows >= 2 and all(large(c) for c in block.values())):
        small = {p for p, c in block.items() if not large(c)}
        # a village holding a small piece makes it larger; else any village adds a row
        pick = next((v for v in candidates if small & {piece(s) for s in own[v]}), None)
        if pick is None and rows < 2 and candidates:
            pick = candidates[0]
        if pick is None:
            break
        candidates.remove(pick)
        shown.discard(pick)
        add(block, own[pick], piece)
        rows += 1
    # an area shows its layers when everything below it does
    order, stack = [], [root]
    while stack:
        place = stack.pop()
        order.append(place)
        stack.extend(below.get(place, ()))
    for place in reversed(order):
        members = [m for m in below.get(place, ()) if _holds(m, own, below)]
        if place != root and members and place not in hidden and all(m in shown for m in members):
            shown.add(place)
    return shown, whole


def _holds(place, own: Mapping, below: Mapping) -> bool:
    """Whether ``place`` (or a place below it) holds children."""
    if own.get(place):
        return True
    return any(_holds(m, own, below) for m in below.get(place, ()))


def assert_brand_safe(payload, *, min_children: int = 0, min_households: int = 0) -> None:
    """Raise :class:`PrivacyError` unless ``payload`` (a row, a table's dict, a GeoJSON
    FeatureCollection, a list of CSV records) is fit for a brand: only allowed keys, no point
    geometry, suppressed rows without numbers, published rows at or above the thresholds.

    >>> assert_brand_safe({"rows": [{"code": "V1", "child_uid": "C-1"}]})
    Traceback (most recent call last):
    ...
    geo.privacy.PrivacyError: key 'child_uid' may not reach a brand
    """
    if isinstance(payload, list):
        for item in payload:
            assert_brand_safe(item, min_children=min_children, min_households=min_households)
        return
    if not isinstance(payload, dict):
        return
    if payload.get("type") in ("Point", "MultiPoint"):
        raise PrivacyError("a point may not reach a brand")
    if payload.get("type") in ("Feature",):
        geometry = payload.get("geometry")
        if geometry is not None and geometry.get("type") not in ALLOWED_GEOMETRIES:
            raise PrivacyError(f"geometry {geometry.get('type')!r} may not reach a brand")
        _check_row(payload.get("properties") or {}, min_children, min_households)
        return
    is_row = "suppressed" in payload or "children" in payload
    for key, value in payload.items():
        if key not in ALLOWED_KEYS and key not in ENVELOPE_KEYS:
            raise PrivacyError(f"key {key!r} may not reach a brand")
        if key in ("coordinates", "geometries"):
            continue
        if isinstance(value, dict | list):
            assert_brand_safe(value, min_children=min_children, min_households=min_households)
    if is_row:
        _check_row(payload, min_children, min_households)


def _check_row(row: Mapping, min_children: int, min_households: int) -> None:
    for key in row:
        if key not in ALLOWED_KEYS:
            raise PrivacyError(f"key {key!r} may not reach a brand")
    if row.get("suppressed"):
        numbers = [k for k in FIGURE_KEYS if row.get(k) is not None]
        if numbers:
            raise PrivacyError(f"a suppressed cell ({row.get('code')}) shows {sorted(numbers)}")
        return
    children = row.get("children")
    households = row.get("households")
    if children is not None and children < min_children:
        raise PrivacyError(f"cell {row.get('code')} has {children} children, fewer than allowed")
    if households is not None and households < min_households:
        raise PrivacyError(
            f"cell {row.get('code')} has {households} households, fewer than allowed"
        )


__all__ = [
    "ALLOWED_KEYS",
    "DEFAULT_MIN_CHILDREN",
    "DEFAULT_MIN_HOUSEHOLDS",
    "PrivacyError",
    "assert_brand_safe",
    "layer_places",
    "primary_reasons",
    "protect",
    "publish",
    "suppress",
    "suppress_exact",
    "thresholds",
]
