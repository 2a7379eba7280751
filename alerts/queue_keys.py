"""How the alert queue's pages are read: the rows of a page by their keys, never the whole queue.

By urgency (overdue, severity, the acknowledgement deadline, id) the queue is at most eight groups
(overdue or not, times four severities), each a run of consecutive rows the index
``ix_alerts_scope_queue`` reads in order: :func:`queue_groups` counts them, :func:`page_keys`
reads a numbered page from the group or two it falls in, and :func:`keys_beyond` reads the page
after (or before) a row from its own group, beyond its key, and the groups after it, so a deep
page costs what the first does. By one column (:func:`sorted_keys`), a page is one sorted query,
by OFFSET or beyond a key. Each function answers the keys of its rows, the last value the id:
:mod:`alerts.queue` loads the alerts and makes the cursors.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, case, func, literal, select, union_all
from sqlalchemy.orm import Session

from clms.keyset import beyond
from clms.models import Alert, ChildVisit, Classification, Village
from clms.paging import Key


def _next_deadline() -> ColumnElement:
    """SQL for :func:`alerts.deadlines.due_at` of an active alert: the acknowledgement deadline
    until it is acknowledged, then the first visit's (NULL once met)."""
    return case(
        (Alert.acknowledged_at.is_(None), Alert.ack_due_at),
        (Alert.first_visit_at.is_(None), Alert.visit_due_at),
        else_=None,
    )


def _age_at_visit() -> ColumnElement:
    """SQL: the child's age at the visit the alert was raised (or last updated) from."""
    return (
        select(ChildVisit.age)
        .join(Classification, Classification.child_visit_id == ChildVisit.id)
        .where(Classification.id == Alert.classification_id)
        .scalar_subquery()
    )


def sorted_keys(
    session: Session, where: list, sort: str, offset: int, limit: int, *, key: Key | None = None
) -> list[tuple]:
    """The keys (value missing, value, deadline, id) of one page of the queue read in the order
    ``sort`` (a column's natural order, a leading "-" reversing it; values missing come last
    either way; ties by the acknowledgement deadline, then id): ``limit`` rows from the
    ``offset``-th, or beyond ``key`` (before it, nearest first, when it reads backward)."""
    by = sort.lstrip("-")
    reverse = sort.startswith("-")
    statement = select(Alert.id).where(*where)
    if by == "village":
        statement = statement.outerjoin(Village, Village.id == Alert.village_id)
        column, natural_desc = Village.name, False
    elif by == "severity":
        column, natural_desc = Alert.severity_rank, True
    elif by == "deadline":
        column, natural_desc = _next_deadline(), False
    elif by == "age":
        column, natural_desc = _age_at_visit(), False
    else:  # raised
        column, natural_desc = Alert.created_at, True
    descending = natural_desc != reverse
    missing = case((column.is_(None), 1), else_=0)
    order = [(missing, False), (column, descending), (Alert.ack_due_at, False), (Alert.id, False)]
    backward = key is not None and key.backward
    if key is not None:
        statement = statement.where(beyond(order, key.values, backward=backward))
    statement = statement.add_columns(missing, column, Alert.ack_due_at, Alert.id)
    return [
        tuple(row[1:])
        for row in session.execute(
            statement.order_by(*(c.desc() if d != backward else c.asc() for c, d in order))
            .offset(offset)
            .limit(limit)
        )
    ]


def queue_groups(
    session: Session, where: list, late: ColumnElement[bool], ranks: list[int]
) -> list[tuple[bool, int, int]]:
    """``(overdue, severity_rank, size)`` of each group of the queue, in the queue's order.

    The queue is ordered by overdue, then severity, then deadline: every (overdue, severity)
    group is a run of consecutive rows. Sorting each group alone is far cheaper than sorting the
    whole queue when the page is deep, and the first page usually needs only the first group.

    One pass with ``GROUP BY severity_rank``, except on SQLite, whose GROUP BY builds a temporary
    B-tree that costs more than the counting: there, one aggregate per severity joined by UNION
    ALL, each a range of the index led by status, village and severity. (On PostgreSQL those
    branches would each scan the whole status range: four times the work.)
    """
    overdue_count = func.coalesce(func.sum(case((late, 1), else_=0)), 0)
    if session.get_bind().dialect.name == "sqlite":
        parts = [
            select(literal(rank), func.count(), overdue_count).where(
                *where, Alert.severity_rank == rank
            )
            for rank in ranks
        ]
        statement = parts[0] if len(parts) == 1 else union_all(*parts)
    else:
        statement = (
            select(Alert.severity_rank, func.count(), overdue_count)
            .where(*where, Alert.severity_rank.in_(ranks))
            .group_by(Alert.severity_rank)
        )
    sizes = {rank: (total, late_) for rank, total, late_ in session.execute(statement)}
    sizes = {rank: sizes.get(rank, (0, 0)) for rank in ranks}
    return [(True, r, sizes[r][1]) for r in ranks] + [
        (False, r, sizes[r][0] - sizes[r][1]) for r in ranks
    ]


def page_keys(
    session: Session,
    where: list,
    late: ColumnElement[bool],
    groups: list[tuple[bool, int, int]],
    offset: int,
    limit: int,
) -> list[tuple]:
    """The keys (overdue, severity rank, deadline, id) of the queue's rows ``offset`` to
    ``offset + limit``, from their groups."""
    keys: list[tuple] = []
    start = 0
    for overdue, rank, size in groups:
        low, high = max(offset, start), min(offset + limit, start + size)
        if low < high:
            keys += [
                (overdue, rank, due, alert_id)
                for due, alert_id in session.execute(
                    select(Alert.ack_due_at, Alert.id)
                    .where(*where, Alert.severity_rank == rank, late if overdue else ~late)
                    .order_by(Alert.ack_due_at, Alert.id)
                    .limit(high - low)
                    .offset(low - start)
                )
            ]
        start += size
    return keys


def keys_beyond(
    session: Session,
    where: list,
    late: ColumnElement[bool],
    groups: list[tuple[bool, int, int]],
    key: Key,
    limit: int,
) -> list[tuple]:
    """The keys of up to ``limit`` rows of the queue after ``key`` (or before it, nearest
    first), from the group of the key (beyond it by deadline and id, an index range) and the
    groups after (before) it: no row before the key is read, however deep the page."""
    overdue, rank, due, alert_id = key.values
    here = _group_place(overdue, rank)
    if key.backward:
        chosen = [g for g in reversed(groups) if _group_place(g[0], g[1]) <= here]
    else:
        chosen = [g for g in groups if _group_place(g[0], g[1]) >= here]
    in_group = (Alert.ack_due_at, Alert.id)
    keys: list[tuple] = []
    for group_overdue, group_rank, size in chosen:
        wanted = limit - len(keys)
        if wanted <= 0:
            break
        if not size:
            continue
        condition = [*where, Alert.severity_rank == group_rank, late if group_overdue else ~late]
        if _group_place(group_overdue, group_rank) == here:
            by = [(column, False) for column in in_group]
            condition.append(beyond(by, (due, alert_id), backward=key.backward))
        order = (Alert.ack_due_at.desc(), Alert.id.desc()) if key.backward else in_group
        keys += [
            (group_overdue, group_rank, row_due, row_id)
            for row_due, row_id in session.execute(
                select(Alert.ack_due_at, Alert.id).where(*condition).order_by(*order).limit(wanted)
            )
        ]
    return keys


def _group_place(overdue: bool, rank: int) -> tuple[int, int]:
    """Where the group (overdue, severity rank) comes in the queue: overdue first, then the most
    severe (ascending)."""
    return (0 if overdue else 1, -rank)
