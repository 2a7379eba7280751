"""The SQL of paging by a composite key: the rows beyond a row, in a list's order.

A list sorted by several columns, each ascending or descending, and ending with the row's id (so
no two rows tie), reads the page after a row as the rows whose sort tuple comes after that row's,
and the page before it as those whose tuple comes before (read in the reverse order, then turned
back). Row-value comparisons (``(a, b) > (x, y)``) only serve orders whose columns all go one
way, so the condition is written out: ``a > x OR (a = x AND b > y) OR ...``, with a leading
``a >= x`` the planner can read an index range from.

A column that may be NULL is preceded in the order by its own "is missing" flag (0 or 1), so a
missing value compares only with missing ones: beyond a row whose value is missing, the flag
decides, and the value is compared by ``IS NULL``. The cursors themselves are
:class:`clms.paging.Cursors`' (pure).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Select, and_, or_, true
from sqlalchemy.orm import Session

from clms.paging import Cursors, Key, Window


def beyond(
    order: Sequence[tuple[ColumnElement, bool]], key: Sequence, *, backward: bool = False
) -> ColumnElement[bool]:
    """SQL: the row comes after ``key`` in ``order`` (``(column, descending)`` pairs, the key's
    values in the same places), or before it when ``backward``."""
    branches = []
    equal: list[ColumnElement[bool]] = []
    for (column, descending), value in zip(order, key, strict=True):
        if value is not None:  # nothing is beyond a missing value but what its flag sorts apart
            later = column < value if descending != backward else column > value
            branches.append(and_(*equal, later) if equal else later)
        equal.append(column.is_(None) if value is None else column == value)
    if not branches:
        return ~true()
    condition = or_(*branches)
    first, descending = order[0]
    if key[0] is not None:  # the leading column's range, for an index
        condition = and_(first <= key[0] if descending != backward else first >= key[0], condition)
    return condition


@dataclass
class KeyedRows:
    """The rows of one page read by :func:`read_page` (without the key's columns), the page's
    number and the cursors of the pages next to it (None: there is none)."""

    rows: list
    page: int
    next_key: str | None
    previous_key: str | None


def read_page(
    session: Session,
    statement: Select,
    order: Sequence[tuple[ColumnElement, bool]],
    *,
    cursors: Cursors,
    name: str,
    key: Key | None,
    window: Window,
    total: int,
) -> KeyedRows:
    """One page of ``statement`` in ``order`` (``(column, descending)`` pairs, the row's id
    last): beyond ``key`` when there is one, else the numbered ``window`` (a page past the last
    is the last, of ``total`` rows). A page read backward that reaches the start is the first
    page, read again from the start (so it is always full). Its cursors are ``cursors``' for
    the order ``name``."""
    width, per_page = len(order), window.per_page
    keyed = statement.add_columns(*(column for column, _descending in order))

    def run(query: Select, backward: bool, offset: int) -> list:
        sort = [c.asc() if descending == backward else c.desc() for c, descending in order]
        return list(session.execute(query.order_by(*sort).offset(offset).limit(per_page + 1)))

    found: list = []
    if key is not None:
        found = run(keyed.where(beyond(order, key.values, backward=key.backward)), key.backward, 0)
        if key.backward and len(found) <= per_page:
            key = None  # back to the first page
    if key is None:
        window = window.within(total)
        found = run(keyed, False, window.offset)
        page, more_after, more_before = window.page, len(found) > per_page, window.page > 1
        found = found[:per_page]
    else:
        more_after, more_before = key.backward or len(found) > per_page, True
        # the number the cursor carries, kept consistent with what the page shows: a page with
        # more after it is not the last, one without is; a page after another is not the first
        pages = window.pages(total)
        page = min(key.page, pages - 1) if more_after else pages
        page = max(2 if pages > 1 else 1, page)
        found = found[:per_page]
        if key.backward:
            found.reverse()

    def cursor(row, at: int) -> str:
        return cursors.cursor(name, tuple(row[-width:]), page=max(1, at))

    return KeyedRows(
        rows=[tuple(row[:-width]) for row in found],
        page=page,
        next_key=cursor(found[-1], page + 1) if found and more_after else None,
        previous_key=cursor(found[0], page - 1) if found and more_before else None,
    )


__all__ = ["KeyedRows", "beyond", "read_page"]
