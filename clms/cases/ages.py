"""A child's age, and the date it is taken at: one way for every page that shows one.

A monitor records a child's age (in completed years) at a visit; a date of birth, when the
household knows it, gives the age on any day. Pages used to show "10" on the alert (the age at
the visit) and "11" on the case (the age now) with nothing to say which: a :class:`ChildAge`
keeps both, with the visit's date, and the pages say both ("10 at the visit of 8 June; about 11
now") through one helper of the web pages (``age_words``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from clms.models import Child, ChildVisit, Visit

#: an age that moves on a year every year (an estimate from an age recorded at a visit)
YEAR_DAYS = 365.25


@dataclass(frozen=True)
class ChildAge:
    """A child's age: ``seen`` years at the visit of ``seen_on`` (None: no visit recorded one),
    and ``now`` years on the day the page is read, ``exact`` when a date of birth gives it
    (else estimated from the age seen)."""

    seen: int | None
    seen_on: dt.date | None
    now: int | None
    exact: bool = False

    @property
    def known(self) -> bool:
        return self.seen is not None or self.now is not None

    @property
    def moved_on(self) -> bool:
        """Whether the age now differs from the age at the visit (the page says both)."""
        return self.seen is not None and self.now is not None and self.now != self.seen


def age_on(
    dob: dt.date | None, seen: int | None, seen_at: dt.datetime | dt.date | None, on: dt.date
) -> ChildAge:
    """The age of a child born on ``dob`` (if known) who was ``seen`` years old at a visit on
    ``seen_at``, taken on ``on``.

    >>> at_visit = dt.date(2026, 6, 8)
    >>> age_on(None, 10, at_visit, dt.date(2026, 12, 7))
    ChildAge(seen=10, seen_on=datetime.date(2026, 6, 8), now=10, exact=False)
    >>> age_on(None, 10, at_visit, dt.date(2027, 6, 9)).now
    11
    >>> age_on(dt.date(2015, 9, 1), 10, at_visit, dt.date(2026, 12, 7))
    ChildAge(seen=10, seen_on=datetime.date(2026, 6, 8), now=11, exact=True)
    """
    day = seen_at.date() if isinstance(seen_at, dt.datetime) else seen_at
    if seen is None:
        day = None
    if dob is not None:
        return ChildAge(seen, day, _years(dob, on), exact=True)
    if seen is None or day is None:
        return ChildAge(None, None, None)
    return ChildAge(seen, day, seen + max(0, int((on - day).days // YEAR_DAYS)))


def _years(dob: dt.date, on: dt.date) -> int:
    return on.year - dob.year - ((on.month, on.day) < (dob.month, dob.day))


def child_age(
    session: Session,
    child_id: int,
    on: dt.date,
    *,
    at_visit: tuple[int | None, dt.datetime] | None = None,
) -> ChildAge:
    """The age of the child ``child_id`` on ``on``, with the age recorded at the visit
    ``at_visit`` (``(age, visited_at)``: the visit a page is about, an alert's) or else at the
    child's latest visit that recorded one."""
    dob = session.scalar(select(Child.dob).where(Child.id == child_id))
    if at_visit is None or at_visit[0] is None:
        at_visit = session.execute(
            select(ChildVisit.age, Visit.visited_at)
            .join(Visit, Visit.id == ChildVisit.visit_id)
            .where(ChildVisit.child_id == child_id, ChildVisit.age.is_not(None),
                   Visit.current.is_(True))
            .order_by(Visit.visited_at.desc(), Visit.id.desc())
            .limit(1)
        ).first()  # fmt: skip
    seen, seen_at = at_visit if at_visit is not None else (None, None)
    return age_on(dob, seen, seen_at, on)


def child_age_by_uid(session: Session, child_uid: str, on: dt.date) -> ChildAge:
    """:func:`child_age` of the child whose pseudonymous id is ``child_uid`` (unknown if none)."""
    child_id = session.scalar(select(Child.id).where(Child.child_uid == child_uid))
    if child_id is None:
        return ChildAge(None, None, None)
    return child_age(session, child_id, on)


__all__ = ["ChildAge", "age_on", "child_age", "child_age_by_uid"]
