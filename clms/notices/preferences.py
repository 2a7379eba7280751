"""Which kinds of notice a person also wants by email: read with the defaults filled in, and
changed by the person (audited: who changed which kinds to what)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from sqlalchemy import select
from sqlalchemy.orm import Session

from clms.audit import record
from clms.errors import field_errors
from clms.i18n import Msg
from clms.models import NoticePreference, User, utcnow
from clms.notices.kinds import BY_EMAIL_BY_DEFAULT, kinds_for

#: the two answers of the settings page, per kind
CHOICES = ("app", "email")


def email_choices(session: Session, user: User) -> dict[str, bool]:
    """For each kind ``user``'s role may receive: whether it also comes by email (their choice,
    else the kind's default)."""
    chosen = dict(
        session.execute(
            select(NoticePreference.kind, NoticePreference.by_email).where(
                NoticePreference.user_id == user.id
            )
        ).all()
    )
    return {k: chosen.get(k, k in BY_EMAIL_BY_DEFAULT) for k in kinds_for(user.role)}


def save_email_choices(
    session: Session, user: User, answers: Mapping[str, str], *, now: dt.datetime | None = None
) -> dict[str, bool]:
    """Save ``user``'s answers (``{kind: "app" | "email"}``, one per kind of their role; a kind
    left out keeps its setting) and audit what changed. A wrong answer or a kind that is not the
    person's is refused, naming it. Returns the choices now in force. Flushes, never commits."""
    now = now or utcnow()
    mine = kinds_for(user.role)
    errors: dict = {}
    for kind, answer in answers.items():
        if kind not in mine:
            errors[kind] = Msg("is not a kind of notification you receive")
        elif answer not in CHOICES:
            errors[kind] = Msg("must be one of: {choices}", choices=", ".join(CHOICES))
    if errors:
        raise field_errors(errors)
    before = email_choices(session, user)
    rows = {
        p.kind: p
        for p in session.scalars(
            select(NoticePreference).where(NoticePreference.user_id == user.id)
        )
    }
    changed = {}
    for kind, answer in answers.items():
        wanted = answer == "email"
        row = rows.get(kind)
        if row is None:
            session.add(NoticePreference(user_id=user.id, kind=kind, by_email=wanted,
                                         updated_at=now))  # fmt: skip
        elif row.by_email != wanted:
            row.by_email, row.updated_at = wanted, now
        if before[kind] != wanted:
            changed[kind] = answer
    session.flush()
    if changed:
        record(session, user, "notices.preferences", f"user:{user.username}", changed=changed)
    return email_choices(session, user)
