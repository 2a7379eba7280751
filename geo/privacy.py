"""The privacy gate: every figure a brand receives passes through :func:`protect` (domain.md
section 8), and every brand-facing answer is checked by :func:`assert_brand_safe` before it is
sent.

The rules, in one place:

1. **Primary suppression.** A cell with fewer than ``min_children`` children (default 10) or fewer
   than ``min_households`` households (default 5) is suppressed. The settings
   ``PRIVACY_MIN_CHILDREN`` and ``PRIVACY_MIN_HOUSEHOLDS`` may only raise these
   (:func:`thresholds`).
2. **Secondary suppression.** A group is a published total and the cells that add up to it (an
   area over its villages and the areas directly below it, the scope total over the top areas or
   the tiers or the brand's direct suppliers, a supplier over the suppliers it buys from); what the
   members do not cover is the group's *residual* (children with no village, a supplier's own
   farmers). Subtracting the published members from a published total gives the sum of the
   unknowns, so no group may have exactly one unknown cell: where it has, the smallest published
   member (else the total itself) is suppressed too; a residual that is itself below the
   thresholds counts as a cell to protect. This repeats until nothing changes (:func:`suppress`).
3. **Only aggregates leave.** A published row keeps only the keys of :data:`ALLOWED_KEYS`: codes
   and names of villages, areas, suppliers and tiers, and the aggregate figures; anything else
   (ids, names of people, household codes, points, free text) is dropped. A suppressed row keeps
   its identity and ``{"suppressed": True, "reason": "..."}``, no number at all.
4. **The previous period.** Its figures (``previous_prevalence``, ``change``) are dropped when the
   previous cell was below the thresholds, and say ``previous_suppressed``.

Everything here is pure: plain dicts in, plain dicts out, no database and no Flask.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping

from clms.i18n import N_

#: the defaults of domain.md section 8 (an administrator may only raise them)
DEFAULT_MIN_CHILDREN = 10
DEFAULT_MIN_HOUSEHOLDS = 5

#: identity keys a brand may receive
IDENTITY_KEYS = frozenset({"level", "code", "name", "area_code", "area_level", "tier"})
#: aggregate figures a brand may receive: written out, not taken from geo.hotspots.FIGURES, so
#: that a figure added there reaches no brand until it is allowed here
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
    period's counts): below a threshold, the previous figures are dropped.
    """
    identity = {k: v for k, v in cell.items() if k in IDENTITY_KEYS}
    if reason is not None:
        return {**identity, "suppressed": True, "reason": reason}
    row = {**identity, **{k: v for k, v in cell.items() if k in FIGURE_KEYS}}
    row["suppressed"] = False
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
    "primary_reasons",
    "protect",
    "publish",
    "suppress",
    "thresholds",
]
