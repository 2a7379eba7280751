"""Alert deadlines (pure): whether an alert is overdue, the next deadline not yet met, and the
deadline in words.

Plain functions of an alert's deadline columns and the time, no database: the same rule in SQL,
evaluated by the database for the queue, is :func:`alerts.queue.overdue_condition`.

>>> import datetime as dt
>>> from clms.models import Alert
>>> now = dt.datetime(2026, 11, 20, 12, tzinfo=dt.UTC)
>>> a = Alert(status="new", ack_due_at=now - dt.timedelta(hours=1))
>>> is_overdue(a, now), due_at(a) == a.ack_due_at
(True, True)
"""

from __future__ import annotations

import datetime as dt
from typing import Protocol

from clms.i18n import Msg

#: the statuses of an active alert: :data:`clms.models.ACTIVE_ALERT_STATUSES`, written here
#: because the pure core does not import the models
ACTIVE_ALERT_STATUSES = ("new", "acknowledged")


class Deadlined(Protocol):
    """What the deadlines read of an alert: a :class:`clms.models.Alert`, or any object with these
    attributes."""

    status: str
    acknowledged_at: dt.datetime | None
    ack_due_at: dt.datetime
    visit_due_at: dt.datetime | None
    first_visit_at: dt.datetime | None


def is_overdue(alert: Deadlined, now: dt.datetime) -> bool:
    """Whether an active alert is past its acknowledgement or first-visit deadline at ``now``."""
    if alert.status not in ACTIVE_ALERT_STATUSES:
        return False
    if alert.acknowledged_at is None and now > alert.ack_due_at:
        return True
    return bool(
        alert.visit_due_at is not None and alert.first_visit_at is None and now > alert.visit_due_at
    )


def due_at(alert: Deadlined) -> dt.datetime | None:
    """The next deadline not yet met: acknowledgement, else the officer's first visit.

    None for an alert that is no longer active or whose deadlines are all met.
    """
    if alert.status not in ACTIVE_ALERT_STATUSES:
        return None
    if alert.acknowledged_at is None:
        return alert.ack_due_at
    return alert.visit_due_at if alert.first_visit_at is None else None


def describe_deadline(alert: Deadlined, now: dt.datetime) -> str:
    """The deadline in words, for people: what is due and how long is left, or how late it is.

    >>> from clms.models import Alert
    >>> now = dt.datetime(2026, 11, 20, 12, tzinfo=dt.UTC)
    >>> describe_deadline(Alert(status="new", ack_due_at=now - dt.timedelta(hours=30)), now)
    'acknowledgement overdue by 1 day 6 h'
    """
    return str(deadline_msg(alert, now))


def deadline_msg(alert: Deadlined, now: dt.datetime) -> Msg:
    """:func:`describe_deadline` as a message, translated where it is shown."""
    if alert.status not in ACTIVE_ALERT_STATUSES:
        return Msg("closed")
    late = []
    if alert.acknowledged_at is None and now > alert.ack_due_at:
        late.append(("acknowledgement", alert.ack_due_at))
    if alert.visit_due_at is not None and alert.first_visit_at is None and now > alert.visit_due_at:
        late.append(("first visit", alert.visit_due_at))
    if late:
        what, when = min(late, key=lambda pair: pair[1])
        duration = _duration(now - when)
        if what == "acknowledgement":
            return Msg("acknowledgement overdue by {duration}", duration=duration)
        return Msg("first visit overdue by {duration}", duration=duration)
    due = due_at(alert)
    if due is None:
        return Msg("no deadline pending")
    duration = _duration(due - now)
    if alert.acknowledged_at is None:
        return Msg("acknowledge within {duration}", duration=duration)
    return Msg("first visit within {duration}", duration=duration)


def _duration(delta: dt.timedelta) -> Msg:
    minutes = max(0, int(delta.total_seconds() // 60))
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    if days and hours:
        if days == 1:
            return Msg("{days} day {hours} h", days=days, hours=hours)
        return Msg("{days} days {hours} h", days=days, hours=hours)
    if days:
        return Msg("{days} day", days=days) if days == 1 else Msg("{days} days", days=days)
    if hours and minutes:
        return Msg("{hours} h {minutes} min", hours=hours, minutes=minutes)
    if hours:
        return Msg("{hours} h", hours=hours)
    return Msg("{minutes} min", minutes=minutes)
