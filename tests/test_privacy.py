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
    protect,
    suppress,
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
