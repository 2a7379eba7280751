"""Sending the outbox: the transactions of the ``send_notifications`` job.

The steps are :mod:`alerts.notify`'s (they flush, never commit); this module is their boundary.
A notification is claimed in a short transaction of its own, committed before anything is sent,
then sent outside any transaction (a slow mail server never holds the database), then what became
of each message of the batch is saved in one more transaction. A sender that dies between the two
leaves its claim to expire (``SEND_LEASE``): the next run sends again, with the same Message-ID.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping

from sqlalchemy.orm import Session

from alerts import notify
from clms.db import session_scope
from clms.models import utcnow


def send_due(
    sessions: Callable[[], Session],
    config: Mapping,
    *,
    now: dt.datetime | None = None,
    limit: int = 100,
) -> dict:
    """Send up to ``limit`` pending notifications whose ``next_attempt_at`` has come, over one
    SMTP connection; returns counts: ``sent``, ``failed`` (given up), ``retry`` (failed, tried
    again later) and ``pending`` (all notifications still waiting, due or not).

    ``sessions`` makes each transaction's session (the job's ``ctx.sessions``); ``config`` holds
    the ``SMTP_*``, ``MAIL_FROM`` and ``BASE_URL`` settings. With ``SMTP_HOST`` empty nothing is
    sent and everything stays pending.
    """
    now = now or utcnow()
    if not notify.mail_configured(config):
        return {"sent": 0, "failed": 0, "retry": 0, "pending": _pending(sessions),
                "mail": "not configured"}  # fmt: skip
    with session_scope(sessions) as session:
        batch = notify.claim_due(session, now, limit=limit)
    if not batch:
        return {"sent": 0, "failed": 0, "retry": 0, "pending": _pending(sessions)}
    outcomes = notify.deliver(batch, config, now)
    with session_scope(sessions) as session:
        summary = notify.record_outcomes(session, batch, outcomes, now)
    summary["pending"] = _pending(sessions)
    return summary


def _pending(sessions: Callable[[], Session]) -> int:
    with session_scope(sessions) as session:
        return notify.count_pending(session)
