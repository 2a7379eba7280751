"""The outgoing mail queue: a row of the outbox table (:class:`~clms.models.Notification`) per
email, written in the event's transaction and sent later by the ``send_notifications`` job
(:mod:`alerts.notify` delivers it). Shared by the alerts' mail and the notices' mail.

An email leaves the server: what is queued holds codes, places, dates and a link, never a
child's name or free text. The link is written ``{BASE_URL}/...`` and completed when the mail is
sent.
"""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy.orm import Session

from clms.models import Notification, User, utcnow

log = logging.getLogger(__name__)

#: replaced by the ``BASE_URL`` setting when a message is sent
BASE_URL_MARK = "{BASE_URL}"


def queue_mail(
    session: Session,
    user: User,
    *,
    kind: str,
    subject: str,
    body: str,
    alert_id: int | None = None,
    now: dt.datetime | None = None,
) -> Notification | None:
    """Add a pending email for ``user`` (None, and logged, when the user has no email)."""
    if not user.email:
        log.info("%s %s: %s has no email address; no mail", kind, subject, user.username)
        return None
    now = now or utcnow()
    note = Notification(
        kind=kind,
        user_id=user.id,
        email=user.email,
        subject=subject[:300],
        body=body,
        alert_id=alert_id,
        status="pending",
        attempts=0,
        created_at=now,
        next_attempt_at=now,
    )
    session.add(note)
    return note
