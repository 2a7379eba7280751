"""The privacy gate (geo/privacy.py): thresholds, secondary suppression, the allow-list.

The property tests build random hierarchies (a total over areas over villages, with children no
village holds, plus tiers adding up to the same total), run the gate, and check with linear
algebra that no suppressed cell and no small residual can be worked out from what is published:
a value is recoverable exactly when its unit vector lies in the row space of the group equations
over the unknowns.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from geo.privacy import (
    REASON_SECONDARY,
    PrivacyError,
    assert_brand_safe,
    layer_places,
    protect,
    suppress,
    suppress_exact,
    thresholds,
)

MIN_C, MIN_H = 10, 5


def cell(children, households=None, **extra):
    return {"children": children, "households": households or children, **extra}


# --- examples ------------------------------------------------------------------------------------


def test_primary_suppression_and_what_a_suppressed_cell_says():
    rows = protect(
        {"V1": cell(9, level="village", code="V1", name="A"), "V2": cell(30, 4, code="V2")}, []
    )
    assert rows["V1"] == {
        "level": "village",
        "code": "V1",
        "name": "A",
        "suppressed": True,
        "reason": "fewer than 10 children monitored",
    }
    assert rows["V2"]["reason"] == "fewer than 5 households"
    assert "children" not in rows["V2"]


def test_secondary_suppression_takes_the_next_smallest():
    children = {"A": 60, "V1": 4, "V2": 12, "V3": 44}
    hidden = suppress(children, [("A", ["V1", "V2", "V3"])], {"V1": "small"}, MIN_C)
    assert hidden == {"V1": "small", "V2": REASON_SECONDARY}


def test_a_lone_member_takes_its_total_with_it_and_up_the_tree():
    # D1 holds only V1 (suppressed): D1 = V1, so D1 goes; R = D1 + D2, so D2 goes too
    children = {"R": 45, "D1": 5, "D2": 40, "V1": 5, "V2": 40}
    groups = [("R", ["D1", "D2"]), ("D1", ["V1"]), ("D2", ["V2"])]
    primary = {"V1": "small", "D1": "small"}
    hidden = suppress(children, groups, primary, MIN_C)
    assert set(hidden) == {"V1", "D1", "D2", "V2"}


def test_a_small_residual_is_protected():
    # a supplier of 30 children: its seller's sub-chain 26, its own farmers 4 (not published)
    hidden = suppress({"S": 30, "T": 26}, [("S", ["T"])], {}, MIN_C)
    assert hidden == {"T": REASON_SECONDARY}
    # a large residual needs nothing
    assert suppress({"S": 40, "T": 26}, [("S", ["T"])], {}, MIN_C) == {}


def test_previous_figures_suppressed_when_the_previous_cell_was_small():
    row = cell(30, previous_prevalence=0.5, change=-10.0, prevalence=0.4)
    published = protect({"V": {**row, "_previous_children": 4, "_previous_households": 4}}, [])
    assert published["V"]["previous_prevalence"] is None and published["V"]["change"] is None
    assert published["V"]["previous_suppressed"] is True
    published = protect({"V": {**row, "_previous_children": 14, "_previous_households": 7}}, [])
    assert published["V"]["previous_prevalence"] == 0.5 and published["V"]["change"] == -10.0


def test_only_allowed_keys_leave():
    row = cell(
        30, code="V1", name="Gnamagui", child_name="Aya", household_code="HH-1", lat=5.1,
        notes="free text", child_ids=[1, 2], _previous_children=30,
    )  # fmt: skip
    published = protect({"V1": row}, [])["V1"]
    assert set(published) <= {"code", "name", "children", "households", "suppressed",
                              "previous_suppressed", "previous_prevalence", "change"}  # fmt: skip
    assert_brand_safe(published, min_children=MIN_C, min_households=MIN_H)


def test_thresholds_are_only_raised():
    assert thresholds() == (10, 5)
    assert thresholds(3, 1) == (10, 5)
    assert thresholds(12, 6, 11, 9) == (12, 9)


def test_assert_brand_safe():
    with pytest.raises(PrivacyError):
        assert_brand_safe({"rows": [{"code": "V1", "child_uid": "C-1"}]})
    with pytest.raises(PrivacyError):
        assert_brand_safe({"type": "Point", "coordinates": [1.0, 2.0]})
    with pytest.raises(PrivacyError):
        assert_brand_safe({"code": "V1", "suppressed": True, "prevalence": 0.3})
    with pytest.raises(PrivacyError):
        assert_brand_safe([{"code": "V1", "children": 12, "households": 2}], min_households=5)
    assert_brand_safe({"rows": [{"code": "V1", "suppressed": True, "reason": "x"}]})


# --- properties ----------------------------------------------------------------------------------


@st.composite
def hierarchies(draw):
    """``(children, households, groups, residuals)``: a total over areas over villages (the
    villages of an area may be followed by a residual no village holds) and tiers over the same
    total."""
    children, households, groups, residuals = {}, {}, [], {}
    areas = []
    for a in range(draw(st.integers(1, 4))):
        villages = []
        for v in range(draw(st.integers(1, 5))):
            key = f"V{a}.{v}"
            n = draw(st.integers(1, 40))
            children[key] = n
            households[key] = draw(st.integers(1, n))
            villages.append(key)
        residual = draw(st.sampled_from([0, 0, 0, 1, 3, 8, 15]))
        area = f"A{a}"
        children[area] = sum(children[v] for v in villages) + residual
        households[area] = sum(households[v] for v in villages) + residual
        residuals[area] = residual
        groups.append((area, villages))
        areas.append(area)
    children["T"] = sum(children[a] for a in areas)
    households["T"] = sum(households[a] for a in areas)
    groups.append(("T", areas))
    residuals["T"] = 0
    # tiers: the same total split another way
    n_tiers = draw(st.integers(1, 3))
    cuts = sorted(draw(st.lists(st.integers(0, children["T"]), min_size=n_tiers - 1,
                                max_size=n_tiers - 1)))  # fmt: skip
    bounds = [0, *cuts, children["T"]]
    tiers = []
    for t in range(n_tiers):
        key = f"tier{t}"
        children[key] = bounds[t + 1] - bounds[t]
        households[key] = max(1, children[key] // 2)
        tiers.append(key)
    groups.append(("T", tiers))
    return children, households, groups, residuals


def recoverable(children, groups, residuals, hidden) -> set:
    """The unknowns (hidden cells, non-zero residuals) whose value the group equations fix."""
    unknowns = sorted(hidden) + [f"r:{g}:{i}" for i, (g, _m) in enumerate(groups)
                                 if residuals.get(g, 0) and not g.startswith("T")]  # fmt: skip
    index = {u: i for i, u in enumerate(unknowns)}
    rows = []
    for i, (total, members) in enumerate(groups):
        row = np.zeros(len(unknowns))
        if total in index:
            row[index[total]] += 1
        for m in members:
            if m in index:
                row[index[m]] -= 1
        if f"r:{total}:{i}" in index:
            row[index[f"r:{total}:{i}"]] -= 1
        if row.any():
            rows.append(row)
    if not rows:
        return set()
    matrix = np.array(rows)
    rank = np.linalg.matrix_rank(matrix)
    found = set()
    for u, i in index.items():
        unit = np.zeros(len(unknowns))
        unit[i] = 1
        if np.linalg.matrix_rank(np.vstack([matrix, unit])) == rank:
            found.add(u)
    return found


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hierarchies())
def test_no_suppressed_value_can_be_worked_out_from_the_totals(h):
    children, households, groups, residuals = h
    cells = {k: {"children": children[k], "households": households[k], "code": k}
             for k in children}  # fmt: skip
    rows = protect(cells, groups, min_children=MIN_C, min_households=MIN_H)
    hidden = {k for k, row in rows.items() if row["suppressed"]}
    # every small cell is hidden, every published one is large enough
    for k in children:
        if children[k] < MIN_C or households[k] < MIN_H:
            assert k in hidden
        else:
            assert k in hidden or rows[k]["children"] == children[k]
    # no hidden cell, and no small residual, is fixed by the published totals
    found = recoverable(children, groups, residuals, hidden)
    assert not (found & hidden), found & hidden
    small = {f"r:{g}:{i}" for i, (g, _m) in enumerate(groups)
             if 0 < residuals.get(g, 0) < MIN_C and not g.startswith("T")}  # fmt: skip
    assert not (found & small), found & small
    assert_brand_safe(list(rows.values()), min_children=MIN_C, min_households=MIN_H)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from("ABCDEFGH"), st.integers(0, 30), min_size=1))
def test_one_group_never_has_exactly_one_hidden_cell(members):
    children = {**members, "T": sum(members.values())}
    primary = {k: "small" for k, n in children.items() if n < MIN_C}
    hidden = suppress(children, [("T", sorted(members))], primary, MIN_C)
    assert set(primary) <= set(hidden)
    assert len(hidden) != 1


# --- layers: every table and every layer of a brand together --------------------------------------


def test_a_place_whose_supplier_part_is_small_shows_no_layer():
    # suppliers X, Y and Z split village V2; Z's part (3 children) is small: a layer of X and one
    # of Y would give Z's part as V2 - X - Y, so V2 shows no layer at all
    parents = {"T": None, "A": "T", "V1": "A", "V2": "A", "V3": "A", "V4": "A"}
    parts = {
        ("V1", "X"): (12, 6), ("V1", "Y"): (14, 6),
        ("V2", "X"): (20, 8), ("V2", "Y"): (25, 9), ("V2", "Z"): (3, 2),
        ("V3", "X"): (30, 11), ("V3", "Y"): (40, 12),
        ("V4", "X"): (50, 20), ("V4", "Z"): (12, 7),
    }  # fmt: skip
    limits = {"min_children": MIN_C, "min_households": MIN_H}
    # the table of suppliers shows Z's 15 children: Z minus V4's Z layer gives V2's 3, so V4
    # hides its layers too (the smallest village holding a Z part); V2 alone would be one row,
    # so the block of V2 and V4 has two, and Z's part of it is 15
    places, whole = layer_places(parents, parts, [], **limits)
    assert places == {"V1", "V3"}
    assert whole is True  # every supplier's part of the whole scope is large
    # the area shows its layers only when every village in it does
    assert "A" not in places
    # a village hidden among all suppliers shows no layer, whatever its parts
    places, _ = layer_places(parents, parts, ["V3"], **limits)
    assert "V3" not in places
    # where the tables of suppliers and tiers cannot tell X, Y and Z apart (one piece), the block
    # of V2 and V3 is large enough
    places, _ = layer_places(parents, parts, ["V3"], root_pieces=dict.fromkeys("XYZ", 1), **limits)
    assert places == {"V1"}  # Z's part of the whole is large: the tables tell them apart after all
    del parts[("V4", "Z")]  # now Z holds 3 children in all: the gate hides Z's own cell
    places, whole = layer_places(
        parents, parts, ["V3"], root_pieces=dict.fromkeys("XYZ", 1), **limits
    )
    assert whole is False and places == {"V1", "V4"}


@st.composite
def supply_maps(draw):
    """A brand's whole map: a total over regions over districts over villages; suppliers of
    tiers 1-3, each above tier 1 selling to one or two of the tier above; the children of each
    village (and of no village) per supplier; the parents of the places."""
    parents = {"T": None}
    villages = []
    for r in range(draw(st.integers(1, 2))):
        parents[f"R{r}"] = "T"
        for d in range(draw(st.integers(1, 2))):
            parents[f"D{r}{d}"] = f"R{r}"
            for v in range(draw(st.integers(1, 3))):
                parents[f"V{r}{d}{v}"] = f"D{r}{d}"
                villages.append(f"V{r}{d}{v}")
    tiers = {}
    buyers: dict = {}
    for s in range(draw(st.integers(1, 5))):
        tier = 1 if s == 0 else draw(st.integers(1, 3))
        above = [x for x, t in tiers.items() if t == tier - 1]
        if tier > 1 and not above:
            tier = 1
        tiers[f"S{s}"] = tier
        if tier > 1:
            buyers[f"S{s}"] = draw(st.lists(st.sampled_from(above), min_size=1, max_size=2,
                                            unique=True))  # fmt: skip
    size = st.sampled_from([0, 0, 1, 3, 8, 12, 25, 40])
    parts = {}
    for v in [*villages, "T"]:
        for s in tiers:
            n = draw(size if v != "T" else st.sampled_from([0, 0, 0, 2, 15]))
            if n:
                parts[(v, s)] = (n, max(1, n // draw(st.sampled_from([1, 2, 3]))))
    return parents, villages, tiers, buyers, parts


def _chain(supplier, buyers) -> set:
    """``supplier`` and every supplier it buys from, however far down."""
    sellers = {s for s, bs in buyers.items() if supplier in bs}
    out = {supplier}
    for s in sellers:
        out |= _chain(s, buyers)
    return out


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(supply_maps())
def test_nothing_hidden_can_be_worked_out_from_every_table_and_layer_together(m):
    """Every table a brand can ask for (villages, areas, suppliers, tiers) and every layer (each
    tier, each supplier's sub-chain, at every place and scope-wide, and tables of suppliers by
    tier and of tiers by supplier), published together as the gate decides, empty cells
    included (an absent row says 0): no cell the gate hides, no small layer cell, no supplier's
    small part of a village and no supplier's small part of the whole scope is fixed by the
    published figures (linear algebra over every place's part of every supplier)."""
    parents, villages, tiers, buyers, parts = m
    atoms = [(v, s) for v in [*villages, "T"] for s in sorted(tiers)]
    index = {a: i for i, a in enumerate(atoms)}

    def under(p, place):
        while p is not None:
            if p == place:
                return True
            p = parents[p]
        return False

    def vector(place, suppliers):
        row = np.zeros(len(atoms))
        for (v, s), i in index.items():
            if s in suppliers and (place == "T" or (v != "T" and under(v, place))):
                row[i] = 1
        return row

    def size(vec):
        held = [parts.get(a, (0, 0)) for a in atoms if vec[index[a]]]
        return sum(c for c, _h in held), sum(h for _c, h in held)

    chains = {s: _chain(s, buyers) for s in tiers}
    layers = {f"@{t}": {s for s in tiers if tiers[s] == t} for t in set(tiers.values())}
    layers.update({f"@s{x}": chains[x] for x in tiers})
    # the unfiltered cells and their groups, as geo.hotspots builds them
    vectors = {p: vector(p, set(tiers)) for p in parents}
    vectors.update({f"sup:{x}": vector("T", chains[x]) for x in tiers})
    vectors.update({f"tier:{t}": vector("T", layers[f"@{t}"]) for t in set(tiers.values())})
    cells = {}
    for k, vec in vectors.items():
        n, h = size(vec)
        if n:
            cells[k] = {"children": n, "households": h, "code": k}
    groups = []
    for p in parents:
        members = [c for c in parents if parents[c] == p and c in cells]
        if members and p in cells:
            groups.append((p, members))
    rows = protect(cells, groups, min_children=MIN_C, min_households=MIN_H)
    hidden = {k for k, row in rows.items() if row["suppressed"]}
    # the tables of suppliers and tiers: sums of each supplier's part of the whole scope
    root_parts: dict = {}
    for (_v, s), (n, h) in parts.items():
        root_parts[s] = (root_parts.get(s, (0, 0))[0] + n, root_parts.get(s, (0, 0))[1] + h)
    sums = {f"sup:{x}": chains[x] for x in tiers}
    sums.update({f"tier:{t}": layers[f"@{t}"] for t in set(tiers.values())})
    hidden -= set(sums)
    hidden |= suppress_exact(
        sums,
        root_parts,
        [],
        known=[] if "T" in hidden else [set(tiers)],
        min_children=MIN_C,
        min_households=MIN_H,
    )
    # the root's layer cells are the cells of the tables of tiers and suppliers
    root_shown = {f"@{t}": f"tier:{t}" not in hidden for t in set(tiers.values())}
    root_shown.update({f"@s{x}": f"sup:{x}" not in hidden for x in tiers})
    pieces = {s: tuple(sorted(name for name, members in layers.items()
                              if root_shown[name] and s in members))
              for s in tiers}  # fmt: skip
    places, whole = layer_places(
        dict(parents),
        parts,
        [p for p in parents if p in hidden or p not in cells],
        root_pieces=pieces,
        min_children=MIN_C,
        min_households=MIN_H,
    )
    published = [vec for k, vec in vectors.items() if k not in hidden]  # empty: a known 0
    secret = [vectors[k] for k in hidden]
    for name, suppliers in layers.items():
        for p in parents:
            vec = vector(p, suppliers)
            n, h = size(vec)
            if root_shown[name] if p == "T" else p in places:
                published.append(vec)  # an empty layer cell, shown as no row, is a known 0
                assert n == 0 or (n >= MIN_C and h >= MIN_H), (name, p, n, h)
            elif n and (n < MIN_C or h < MIN_H):
                secret.append(vec)  # a small layer cell
    if whole:  # suppliers by tier, tiers by supplier
        for x in tiers:
            for t in set(tiers.values()):
                published.append(vector("T", chains[x] & layers[f"@{t}"]))
    for a, i in index.items():
        n, h = parts.get(a, (0, 0))
        if n and (n < MIN_C or h < MIN_H):
            unit = np.zeros(len(atoms))
            unit[i] = 1
            secret.append(unit)
    for s in tiers:
        vec = vector("T", {s})
        n, _h = size(vec)
        if 0 < n < MIN_C:
            secret.append(vec)
    if not published:
        return
    matrix = np.array(published)
    _u, sv, vt = np.linalg.svd(matrix, full_matrices=False)
    basis = vt[sv > 1e-9]
    for vec in secret:
        residue = vec - basis.T @ (basis @ vec)
        assert np.linalg.norm(residue) > 1e-6, (
            f"{[a for a in atoms if vec[index[a]]]} is fixed (hidden {sorted(hidden)},"
            f" places {sorted(places)}, whole {whole})"
        )
