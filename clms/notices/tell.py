"""Telling people what happened: a notice for each, in the transaction of the event, and the mail
of those who chose it for this kind.

The operation that changes something calls :func:`tell` with the people concerned (chosen among
those whose scope covers the item, so each can open it) and the person who acted, who is never
told of their own action::

    tell(session, supervisors_of(session, case), "approval_requested",
         About("case", case.id, case.case_number, {"step": "plan"}), actor=user, now=now)

It flushes, never commits: the event and its notices are saved together or not at all.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from clms.models import Notice, NoticePreference, User, utcnow
from clms.notices.kinds import BY_EMAIL_BY_DEFAULT, KINDS, MAIL_KIND, SUBJECTS
from clms.notices.outbox import BASE_URL_MARK, queue_mail
from clms.notices.words import path_of, sentence


@dataclass(frozen=True)
class About:
    """What a notice is about: the item (``subject``: case, alert, referral, submission, and its
    id), the code a person knows it by, and more codes (``detail``: never a name or free text)."""

    subject: str
    id: int
    code: str
    detail: dict = field(default_factory=dict)


@dataclass
class Told:
    """What :func:`tell` did: the notices added and how many emails were queued."""

    notices: list[Notice]
    mailed: int = 0


@dataclass(frozen=True)
class Mail:
    """The email an event already writes (its subject and body, or a function of the recipient
    giving the body), sent to those who want this kind by email; ``outbox_kind`` the outbox's
    kind, ``alert_id`` the alert it is about (the outbox keeps it)."""

    subject: str
    body: str | Callable[[User], str]
    outbox_kind: str | None = None
    alert_id: int | None = None


def tell(
    session: Session,
    users: Iterable[User],
    kind: str,
    about: About,
    *,
    actor: User | None,
    now: dt.datetime | None = None,
    mail: Mail | None = None,
) -> Told:
    """A notice of ``kind`` for each active person of ``users`` but ``actor``, and the mail of
    those who want this kind by email (``mail``: the event's own email; None: a short one written
    from the notice). Returns the notices (flushed) and how many emails were queued (a person
    without an email address gets none)."""
    if kind not in KINDS or about.subject not in SUBJECTS:
        raise ValueError(f"unknown notice {kind} about {about.subject}")
    now = now or utcnow()
    actor_id = actor.id if actor is not None else None
    people = {u.id: u for u in users if u is not None and u.active and u.id != actor_id}
    if not people:
        return Told([])
    notices = [
        Notice(
            user_id=uid,
            kind=kind,
            subject=about.subject,
            subject_id=about.id,
            code=about.code[:40],
            detail=dict(about.detail),
            actor_id=actor_id,
            created_at=now,
        )  # fmt: skip
        for uid in sorted(people)
    ]
    session.add_all(notices)
    wanted = wants_email(session, sorted(people), kind)
    told = Told(notices)
    for uid in sorted(people):
        if uid in wanted and _mail(session, people[uid], kind, about, mail, now):
            told.mailed += 1
    session.flush()
    return told


def wants_email(session: Session, user_ids: list[int], kind: str) -> set[int]:
    """Which of ``user_ids`` want ``kind`` by email: their choice, else the kind's default."""
    chosen = dict(
        session.execute(
            select(NoticePreference.user_id, NoticePreference.by_email).where(
                NoticePreference.kind == kind, NoticePreference.user_id.in_(user_ids)
            )
        ).all()
    )
    default = kind in BY_EMAIL_BY_DEFAULT
    return {uid for uid in user_ids if chosen.get(uid, default)}


def _mail(session, user: User, kind: str, about: About, mail: Mail | None, now) -> bool:
    if mail is None:
        words = str(sentence(kind, about.code, about.detail))
        mail = Mail(
            subject=f"[CLMS] {words}",
            body="\n".join(
                [
                    words,
                    "",
                    f"Open it: {BASE_URL_MARK}{path_of(kind, about.subject, about.id)}",
                    "",
                    "This message holds no names: open CLMS to see more.",
                    "You chose to receive this by email; change it in CLMS under Notifications,",
                    "Email settings.",
                ]
            ),
        )
    body = mail.body(user) if callable(mail.body) else mail.body
    return None is not queue_mail(
        session,
        user,
        kind=mail.outbox_kind or MAIL_KIND.get(kind, "notice"),
        subject=mail.subject,
        body=body,
        alert_id=mail.alert_id,
        now=now,
    )


def settle(
    session: Session, kind: str, subject: str, subject_id: int, *, now: dt.datetime | None = None
) -> int:
    """Mark read, for everyone, the unread notices of ``kind`` about one item once what they ask
    for is done (a plan decided, a referral answered, a held submission decided), by whoever did
    it: a notice must not say a thing waits when it no longer does. Returns how many."""
    result = session.execute(
        update(Notice)
        .where(
            Notice.kind == kind,
            Notice.subject == subject,
            Notice.subject_id == subject_id,
            Notice.read_at.is_(None),
        )
        .values(read_at=now or utcnow())
    )
    return result.rowcount or 0
