"""An auditor of everything a brand has been shown, over several periods: can any small group of
children, or any cell the gate hid, be worked out by adding and subtracting published figures?

The model (for the tests of :mod:`geo.periods` and :mod:`geo.privacy`):

* Time is cut into *segments* (ordered, oldest first, never overlapping); a published period is
  a run of segments.
* A child's *signature* says, for each segment, which *part* (a village and a supplier) the
  child's latest visit of that segment is in, or ``None`` when the child has no visit in it.
  A child counts in a cell of period P when the latest of its segments in P that has a visit
  has a part the cell covers: that is "the latest visit of P" of :mod:`geo.hotspots`.
* The unknowns are the numbers of children (and of households) of each possible signature,
  ``(parts + [None]) ** segments`` of them: whatever the data, the attacker does not know which
  signatures are empty unless the published figures say so.
* A published cell is a 0/1 vector over the signatures (shown, or absent and so known to be 0);
  a figure is derivable exactly when its vector lies in the row space of the published ones.
* A hidden cell must not be derivable; a hidden *layer* cell only when it is small (a place
  hides all its layers or none, so a layer equal to the whole place may be hidden and known).

:func:`audit` lists what is derivable and should not be: every cell the gate hid, and every group
of children fixed by a choice, for each segment, of "any", "no visit", one part, or the parts of
a published cell (e.g. "latest visit of June in V1, no visit in May"), holding some children but
fewer than the thresholds, or fewer households.
"""

from __future__ import annotations

import itertools
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field

import numpy as np

Part = Hashable


@dataclass
class Release:
    """The cells of one period as a brand was shown them: ``shown`` and ``hidden`` map a cell's
    name to the parts it covers (an absent cell, a true 0, is shown)."""

    segments: tuple[int, ...]
    shown: dict[Hashable, frozenset] = field(default_factory=dict)
    hidden: dict[Hashable, frozenset] = field(default_factory=dict)
    #: the names of the cells that are layers (a tier's or a supplier's part of a place)
    layers: set = field(default_factory=set)


@dataclass(frozen=True)
class Unit:
    """Children of one household with one signature (a part or None per segment)."""

    signature: tuple
    children: int
    household: Hashable


def audit(
    n_segments: int,
    parts: Iterable[Part],
    units: Iterable[Unit],
    releases: Iterable[Release],
    *,
    min_children: int,
    min_households: int,
) -> list[str]:
    """What a brand shown ``releases`` can work out and must not, in words (empty: nothing)."""
    parts = list(parts)
    values = [*parts, None]
    signatures = list(itertools.product(values, repeat=n_segments))
    index = {s: i for i, s in enumerate(signatures)}
    releases = list(releases)
    children = np.zeros(len(signatures))
    households: list[set] = [set() for _ in signatures]
    for unit in units:
        children[index[unit.signature]] += unit.children
        households[index[unit.signature]].add(unit.household)
    # each signature's component in each segment, as an index into ``values``
    component = np.array([[values.index(v) for v in s] for s in signatures])

    none = len(values) - 1
    latest_of: dict[tuple, np.ndarray] = {}

    def vector(release: Release, covered: frozenset) -> np.ndarray:
        """The signatures whose latest part within the release's segments is ``covered``."""
        if release.segments not in latest_of:
            latest = np.full(len(signatures), none)
            for k in release.segments:  # oldest first: a later visit overrides
                seen = component[:, k] != none
                latest[seen] = component[seen, k]
            latest_of[release.segments] = latest
        wanted = np.array([v is not None and v in covered for v in values])
        return wanted[latest_of[release.segments]].astype(float)

    published = [vector(r, covered) for r in releases for covered in r.shown.values()]
    if not published:
        return []
    _u, sv, vt = np.linalg.svd(np.array(published), full_matrices=False)
    basis = vt[sv > 1e-9]

    def derivable(matrix: np.ndarray) -> np.ndarray:
        residue = matrix - (matrix @ basis.T) @ basis
        return np.linalg.norm(residue, axis=1) < 1e-6

    found = []
    for r in releases:
        for name, covered in r.hidden.items():
            vec = vector(r, covered)
            n = vec @ children
            h = len(set().union(*(households[i] for i in np.flatnonzero(vec))))
            # a layer's cell is hidden wherever its place hides its layers, even when it is the
            # whole place (a supplier buying everything): only a small one must stay unknown
            must_hide = name not in r.layers or n < min_children or h < min_households
            if n and must_hide and derivable(vec[None, :])[0]:
                found.append(f"hidden cell {name!r} of segments {r.segments} is derivable")
    # the groups: one choice per segment of any / no visit / a part / a published cell's parts
    masks = [np.ones(len(values), bool), np.eye(len(values), dtype=bool)[-1]]
    masks += [np.eye(len(values), dtype=bool)[i] for i in range(len(parts))]
    sets = {covered for r in releases for d in (r.shown, r.hidden) for covered in d.values()}
    masks += [np.array([v in covered for v in values]) for covered in sets]
    unique: dict[bytes, np.ndarray] = {m.tobytes(): m for m in masks}
    masks = list(unique.values())
    groups = {}
    for choice in itertools.product(range(len(masks)), repeat=n_segments):
        member = np.ones(len(signatures), bool)
        for k, m in enumerate(choice):
            member &= masks[m][component[:, k]]
        groups.setdefault(member.tobytes(), member)
    members = np.array(list(groups.values()), dtype=float)
    counts = members @ children
    candidates = members[counts > 0]
    fixed = derivable(candidates)
    for member in candidates[fixed]:
        n = int(member @ children)
        h = len(set().union(*(households[i] for i in np.flatnonzero(member))))
        if n < min_children or h < min_households:
            who = [s for s, i in index.items() if member[i] and children[i]]
            found.append(f"a group of {n} children in {h} households is derivable: {who}")
    return found
