"""Where a person works: the villages a monitor, officer or supervisor is scoped to.

A scope row names an area (which covers every village in it and in the areas below it) or a single
village. Roles without a geographic scope (admin, brand, provider) cover no village here; their
access is decided elsewhere.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from clms.models import Area, User, Village


def descendant_area_ids(session: Session, area_ids: set[int]) -> set[int]:
    """The given areas and every area below them."""
    children: dict[int | None, list[int]] = {}
    for area_id, parent_id in session.execute(select(Area.id, Area.parent_id)):
        children.setdefault(parent_id, []).append(area_id)
    found, stack = set(), list(area_ids)
    while stack:
        current = stack.pop()
        if current in found:
            continue
        found.add(current)
        stack.extend(children.get(current, ()))
    return found


def village_ids_in_scope(session: Session, user: User) -> set[int]:
    """Ids of the villages ``user`` is assigned to, directly or through an area."""
    village_ids = {s.village_id for s in user.scopes if s.village_id is not None}
    area_ids = {s.area_id for s in user.scopes if s.area_id is not None}
    if area_ids:
        areas = descendant_area_ids(session, area_ids)
        village_ids |= set(session.scalars(select(Village.id).where(Village.area_id.in_(areas))))
    return village_ids


def area_ids_in_scope(session: Session, user: User) -> set[int]:
    """Ids of the areas ``user`` covers: scoped areas, the areas below, and their villages' areas."""
    direct = {s.area_id for s in user.scopes if s.area_id is not None}
    covered = descendant_area_ids(session, direct) if direct else set()
    village_ids = {s.village_id for s in user.scopes if s.village_id is not None}
    if village_ids:
        covered |= set(session.scalars(select(Village.area_id).where(Village.id.in_(village_ids))))
    return covered
