"""The supply graph (pure): cycles, reach, and the path that closes a cycle.

Suppliers are nodes, links buyer -> seller are edges; the chain must stay without cycles, and a
brand's scope is everything its direct suppliers reach. Plain data in, plain data out: no
database, no Flask (the queries that walk the stored links are in :mod:`clms.supply.operations`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence


def cycle_words(path: Sequence[str]) -> str:
    """A cycle as people read it.

    >>> cycle_words(["A", "B", "C", "A"])
    'A -> B -> C -> A'
    """
    return " -> ".join(path)


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
            cycles.append(path_within(graph, component, start, start))
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


def path_within(graph, nodes: set[str], start: str, goal: str) -> list[str]:
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


def reach(sellers: dict[int, list[int]], start: Iterable[int]) -> set[int]:
    """The suppliers in ``start`` and every supplier they buy from, however far down
    (``sellers``: buyer to the suppliers it buys from); a stored cycle cannot loop.

    >>> sorted(reach({1: [2, 3], 2: [4], 4: [1]}, [2]))
    [1, 2, 3, 4]
    """
    found, stack = set(), list(start)
    while stack:
        i = stack.pop()
        if i not in found:
            found.add(i)
            stack.extend(sellers.get(i, ()))
    return found
