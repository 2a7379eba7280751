"""A person's own notices: how many are unread (the header), the list (newest first, paged),
opening one (marks it read), marking all read, and the notes addressed to them that they have not
read (their home page). Nobody reads another person's notices: every query is by the reader."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from clms.errors import problem
from clms.models import Notice, User, utcnow
from clms.paging import Page, Paging

PAGE_SIZE = 30
#: the list's pages: a page out of range comes back within the first and the last
NOTICE_PAGING = Paging(PAGE_SIZE, clamp=True)


@dataclass
class NoticePage(Page[Notice]):
    """One page of a person's notices, newest first, and how many are unread in all."""

    per_page: int = PAGE_SIZE
    unread: int = 0


def unread_count(session: Session, user: User) -> int:
    """How many notices ``user`` has not opened: one indexed count (the header shows it)."""
    return (
        session.scalar(
            select(func.count())
            .select_from(Notice)
            .where(Notice.user_id == user.id, Notice.read_at.is_(None))
        )
        or 0
    )


def list_notices(session: Session, user: User, *, page: int = 1) -> NoticePage:
    """One page of ``user``'s notices, newest first."""
    mine = Notice.user_id == user.id
    total = session.scalar(select(func.count()).select_from(Notice).where(mine)) or 0
    window = NOTICE_PAGING.check(page, total=total)
    rows = session.scalars(
        select(Notice)
        .where(mine)
        .order_by(Notice.created_at.desc(), Notice.id.desc())
        .limit(window.limit)
        .offset(window.offset)
    ).all()
    return NoticePage(rows=list(rows), total=total, page=window.page,
                      pages=window.pages(total), unread=unread_count(session, user))  # fmt: skip


def open_notice(
    session: Session, user: User, notice_id: int, *, now: dt.datetime | None = None
) -> Notice:
    """``user``'s notice, marked read (the first time it is opened); another person's notice is
    the same as one that does not exist (``not_found``). Flushes, never commits."""
    notice = session.get(Notice, notice_id)
    if notice is None or notice.user_id != user.id:
        raise problem("not_found")
    if notice.read_at is None:
        notice.read_at = now or utcnow()
        session.flush()
    return notice


def mark_all_read(session: Session, user: User, *, now: dt.datetime | None = None) -> int:
    """Mark every unread notice of ``user`` read; returns how many. Flushes, never commits."""
    done = session.execute(
        update(Notice)
        .where(Notice.user_id == user.id, Notice.read_at.is_(None))
        .values(read_at=now or utcnow())
    )
    return done.rowcount or 0


def unread_notes(session: Session, user: User, *, limit: int) -> tuple[int, list[Notice]]:
    """The case notes addressed to ``user`` that they have not opened: how many, and the first
    ``limit`` of them, newest first (the home page's section)."""
    where = (Notice.user_id == user.id, Notice.kind == "note", Notice.read_at.is_(None))
    count = session.scalar(select(func.count()).select_from(Notice).where(*where)) or 0
    rows = session.scalars(
        select(Notice).where(*where).order_by(Notice.created_at.desc(), Notice.id.desc())
        .limit(limit)
    ).all()  # fmt: skip
    return count, list(rows)
