"""Where a person works: the villages a monitor, officer or supervisor is scoped to.

A scope row names an area (which covers every village in it and in the areas below it) or a single
village. Roles without a geographic scope (admin, brand, provider) cover no village here; their
access is decided elsewhere.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, bindparam, or_, select
from sqlalchemy.orm import Session

from clms.models import Area, User, UserScope, Village


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


def users_covering(session: Session, village_ids: set[int], roles: tuple[str, ...]) -> set[int]:
    """Ids of the users with one of ``roles`` whose scope covers at least one of ``village_ids``
    (the village itself, or its area or an area above it): three queries however many users and
    villages, where asking :func:`village_ids_in_scope` of each user would be three per user."""
    if not village_ids:
        return set()
    ids = sorted(village_ids)
    areas = set(session.scalars(select(Village.area_id).where(Village.id.in_(ids)).distinct()))
    parent = {row.id: row.parent_id for row in session.execute(select(Area.id, Area.parent_id))}
    covering: set[int] = set()
    for area in areas:
        while area is not None and area not in covering:  # a cycle of bad imports ends here
            covering.add(area)
            area = parent.get(area)
    return set(
        session.scalars(
            select(UserScope.user_id)
            .join(User, User.id == UserScope.user_id)
            .where(
                User.role.in_(roles),
                or_(UserScope.village_id.in_(ids), UserScope.area_id.in_(sorted(covering))),
            )
            .distinct()
        )
    )


def _ancestors(area_id):
    """A recursive CTE of the area ``area_id`` (a bind parameter) and every area above it."""
    up = select(Area.id, Area.parent_id).where(Area.id == area_id).cte("up", recursive=True)
    return up.union(select(Area.id, Area.parent_id).join(up, Area.id == up.c.parent_id))


# built once: the statement is the same for every call, only the parameters change
_IN_SCOPE = (
    select(UserScope.id)
    .where(
        UserScope.user_id == bindparam("user_id"),
        or_(
            UserScope.village_id == bindparam("village_id"),
            UserScope.area_id.in_(select(_ancestors(bindparam("area_id")).c.id)),
        ),
    )
    .limit(1)
)


def village_in_scope(session: Session, user: User, village_id: int, area_id: int) -> bool:
    """Whether the village (``village_id``, in ``area_id``) is one of ``user``'s, directly or
    through an area above it.

    The same answer as ``village_id in village_ids_in_scope(session, user)`` in one query, without
    reading every village in scope: the check made for each submission.
    """
    params = {"user_id": user.id, "village_id": village_id, "area_id": area_id}
    return session.scalar(_IN_SCOPE, params) is not None


def area_ids_in_scope(session: Session, user: User) -> set[int]:
    """Ids of the areas ``user`` covers: scoped areas, the areas below, their villages' areas."""
    direct = {s.area_id for s in user.scopes if s.area_id is not None}
    covered = descendant_area_ids(session, direct) if direct else set()
    village_ids = {s.village_id for s in user.scopes if s.village_id is not None}
    if village_ids:
        covered |= set(session.scalars(select(Village.area_id).where(Village.id.in_(village_ids))))
    return covered


#: roles that may hold child data, each only within a geographic scope (an administrator only
#: when also given one, domain.md section 1)
SCOPED_ROLES = ("officer", "supervisor", "admin")


def scope_parts(session: Session, user: User) -> tuple[set[int], set[int]] | None:
    """(area ids with every area below them, village ids) of a scoped ``user``; None when the
    role holds no child data or the scope is empty."""
    if user.role not in SCOPED_ROLES:
        return None
    area_ids = {s.area_id for s in user.scopes if s.area_id is not None}
    village_ids = {s.village_id for s in user.scopes if s.village_id is not None}
    if area_ids:
        area_ids = descendant_area_ids(session, area_ids)
    if not area_ids and not village_ids:
        return None
    return area_ids, village_ids


def village_scope_condition(
    session: Session, user: User, village_column
) -> ColumnElement[bool] | None:
    """SQL: ``village_column`` (a column holding a village id) is in ``user``'s scope; None when
    the user may see no child data at all.

    A subquery of the villages in the scoped areas, not a list of ids: a supervisor of a country
    covers thousands of villages, and the database joins them faster than it parses them.
    """
    return parts_condition(scope_parts(session, user), village_column)


def parts_condition(
    parts: tuple[set[int], set[int]] | None, village_column
) -> ColumnElement[bool] | None:
    """SQL: ``village_column`` is in the scope of :func:`scope_parts`' ``parts`` (None: None), for
    a caller that builds several conditions of one person's scope."""
    if parts is None:
        return None
    area_ids, village_ids = parts
    conditions = []
    if area_ids:
        conditions.append(
            village_column.in_(select(Village.id).where(Village.area_id.in_(sorted(area_ids))))
        )
    if village_ids:
        conditions.append(village_column.in_(sorted(village_ids)))
    return or_(*conditions) if len(conditions) > 1 else conditions[0]
