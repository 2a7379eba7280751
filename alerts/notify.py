"""Email notifications through an outbox.

Mail is never sent inside the transaction that raises an alert. The code that raises or escalates
writes a :class:`~clms.models.Notification` row (status ``pending``) in its own transaction, and
the ``send_notifications`` job (:func:`clms.jobs.outbox.send_due`, the boundary of its
transactions) sends what is due with the steps here: :func:`claim_due`, :func:`deliver`,
:func:`record_outcomes`, retrying with a growing delay.
A mail server that is down therefore never loses or delays the alert itself: the alert is in the
queue the moment its transaction commits, and the mail follows when the server is back.

Who gets mail:

- the *responsible officer* of an alert: ``alert.assigned_to`` if set (and active), else every
  active officer whose scope covers the alert's village, directly or through an area above it;
- the *supervisors* covering the village, for escalations (:mod:`alerts.escalate`).

A user without an email address gets no mail (logged at info level, never an error).

Email leaves the server, so a message carries no child name, no household head name and no free
text: only the pseudonymous ``Child.child_uid``, codes, places, dates and a link into CLMS. The
link is stored as ``{BASE_URL}/alerts/<id>`` and the placeholder is replaced when the message is
sent, from the ``BASE_URL`` setting.

Example (what the alert-raising code does, in its own transaction)::

    alerts = raise_alerts(session, ...)          # new or worse alerts, flushed
    notify_new_urgent_alerts(session, [a.id for a in alerts])
    session.commit()                             # the alerts and their mail, together
"""

from __future__ import annotations

import datetime as dt
import email.policy
import logging
import re
import smtplib
import ssl
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime

from sqlalchemy import func, select, union
from sqlalchemy.orm import Session, aliased

from clms.db import read_only
from clms.models import (
    ACTIVE_ALERT_STATUSES,
    Alert,
    Area,
    Child,
    Notification,
    Supplier,
    User,
    UserScope,
    Village,
)
from clms.notices.outbox import BASE_URL_MARK, queue_mail

log = logging.getLogger(__name__)

URGENT_SEVERITIES = ("critical", "high")
DIGEST_SEVERITIES = ("medium", "low")

#: delay before the next attempt after the n-th failure (the last one repeats)
RETRY_DELAYS = (
    dt.timedelta(minutes=1),
    dt.timedelta(minutes=5),
    dt.timedelta(minutes=30),
    dt.timedelta(hours=2),
    dt.timedelta(hours=6),
)
#: after this many failed attempts a notification is given up (status ``failed``): about 33 h
MAX_ATTEMPTS = 10
#: a notification being sent is claimed for this long: a sender that dies mid-run leaves it to
#: the next run after the lease, never to two senders at once
SEND_LEASE = dt.timedelta(minutes=10)
#: the digest looks back at most this far, however long ago the last digest was
DIGEST_MAX_LOOKBACK = dt.timedelta(days=7)
DIGEST_DEFAULT_LOOKBACK = dt.timedelta(hours=24)

CATEGORY_LABELS = {
    "worst_form": "worst forms",
    "hazardous": "hazardous work",
    "child_labour": "child labour",
    "at_risk": "at risk",
    "none": "no child labour",
}

_IN_CHUNK = 500  # ids per IN (...) list: far below every backend's limit on bound parameters


# --- recipients ----------------------------------------------------------------------------------


def users_for_villages(
    session: Session, village_ids: Iterable[int | None], role: str
) -> dict[int, list[User]]:
    """Active users with ``role`` whose scope covers each village, directly or through an area
    above it: ``{village_id: [User, ...]}`` (villages nobody covers are left out).

    One query for any number of villages: a recursive CTE climbs from each village's area to the
    top of the hierarchy and the scopes are matched against the village or any of those areas.
    """
    ids = sorted({v for v in village_ids if v is not None})
    found: dict[int, list[User]] = {}
    for chunk in _chunks(ids):
        up = (
            select(Village.id.label("village_id"), Village.area_id.label("area_id"))
            .where(Village.id.in_(chunk))
            .cte("village_areas", recursive=True)
        )
        parent = aliased(Area)
        # UNION, not UNION ALL: a cycle in badly imported areas ends instead of looping
        up = up.union(
            select(up.c.village_id, parent.parent_id)
            .join(parent, parent.id == up.c.area_id)
            .where(parent.parent_id.is_not(None))
        )
        pairs = union(
            select(UserScope.village_id.label("village_id"), UserScope.user_id).where(
                UserScope.village_id.in_(chunk)
            ),
            select(up.c.village_id, UserScope.user_id).join(up, UserScope.area_id == up.c.area_id),
        ).subquery()
        rows = session.execute(
            select(pairs.c.village_id, User)
            .join(User, User.id == pairs.c.user_id)
            .where(User.role == role, User.active.is_(True))
            .order_by(pairs.c.village_id, User.username)
        )
        for village_id, user in rows:
            found.setdefault(village_id, []).append(user)
    return found


def officers_for_village(session: Session, village_id: int) -> list[User]:
    """Active officers whose scope covers the village (directly or through an area above it)."""
    return users_for_villages(session, [village_id], "officer").get(village_id, [])


def supervisors_for_village(session: Session, village_id: int) -> list[User]:
    """Active supervisors whose scope covers the village (directly or through an area above it)."""
    return users_for_villages(session, [village_id], "supervisor").get(village_id, [])


def responsible_officers(session: Session, alerts: list[AlertFacts]) -> dict[int, list[User]]:
    """The responsible officers of each alert: the assignee if set and active, else every officer
    covering the alert's village. ``{alert_id: [User, ...]}``; two queries for any number."""
    assigned_ids = {a.assigned_to_id for a in alerts if a.assigned_to_id is not None}
    assigned: dict[int, User] = {}
    for chunk in _chunks(sorted(assigned_ids)):
        for user in session.scalars(select(User).where(User.id.in_(chunk), User.active.is_(True))):
            assigned[user.id] = user
    unassigned = [a.village_id for a in alerts if a.assigned_to_id not in assigned]
    by_village = users_for_villages(session, unassigned, "officer")
    result = {}
    for a in alerts:
        if a.assigned_to_id in assigned:
            result[a.id] = [assigned[a.assigned_to_id]]
        else:
            result[a.id] = by_village.get(a.village_id, []) if a.village_id is not None else []
        if not result[a.id]:
            log.warning("alert %d has no responsible officer (village %s)", a.id, a.village_id)
    return result


# --- what an email may say about an alert --------------------------------------------------------


@dataclass(frozen=True)
class AlertFacts:
    """The facts about an alert that may leave the server by email (no names, no free text)."""

    id: int
    source: str
    status: str
    category: str
    severity: str
    reasons: list
    child_uid: str | None
    village_id: int | None
    village: str | None  # "name (code)"
    supplier: str | None
    assigned_to_id: int | None
    created_at: dt.datetime
    ack_due_at: dt.datetime
    visit_due_at: dt.datetime | None
    acknowledged_at: dt.datetime | None
    first_visit_at: dt.datetime | None

    @property
    def subject_ref(self) -> str:
        """``child CH-XXXX in Village`` or ``reported concern in Village``."""
        who = f"child {self.child_uid}" if self.child_uid else "reported concern"
        return f"{who} in {self.village or 'unknown village'}"


def alert_facts(session: Session, alert_ids: Iterable[int]) -> dict[int, AlertFacts]:
    """The mailable facts of each alert, ``{alert_id: AlertFacts}``, one query per 500 ids."""
    facts = {}
    for chunk in _chunks(sorted(set(alert_ids))):
        rows = session.execute(
            select(
                Alert.id,
                Alert.source,
                Alert.status,
                Alert.category,
                Alert.severity,
                Alert.reasons,
                Child.child_uid,
                Alert.village_id,
                Village.name,
                Village.code,
                Supplier.name.label("supplier_name"),
                Alert.assigned_to_id,
                Alert.created_at,
                Alert.ack_due_at,
                Alert.visit_due_at,
                Alert.acknowledged_at,
                Alert.first_visit_at,
            )
            .outerjoin(Child, Child.id == Alert.child_id)
            .outerjoin(Village, Village.id == Alert.village_id)
            .outerjoin(Supplier, Supplier.id == Alert.supplier_id)
            .where(Alert.id.in_(chunk))
        )
        for r in rows:
            facts[r.id] = AlertFacts(
                id=r.id,
                source=r.source,
                status=r.status,
                category=r.category,
                severity=r.severity,
                reasons=list(r.reasons or []),
                child_uid=r.child_uid,
                village_id=r.village_id,
                village=f"{r.name} ({r.code})" if r.name else None,
                supplier=r.supplier_name,
                assigned_to_id=r.assigned_to_id,
                created_at=r.created_at,
                ack_due_at=r.ack_due_at,
                visit_due_at=r.visit_due_at,
                acknowledged_at=r.acknowledged_at,
                first_visit_at=r.first_visit_at,
            )
    return facts


def alert_lines(a: AlertFacts) -> list[str]:
    """The lines describing an alert in an email body."""
    lines = [
        f"Child: {a.child_uid} (pseudonymous id)" if a.child_uid else "Source: reported concern",
        f"Category: {CATEGORY_LABELS.get(a.category, a.category)}",
        f"Severity: {a.severity}",
        f"Village: {a.village or 'unknown'}",
        f"Supplier: {a.supplier or 'unknown'}",
        f"Raised: {_when(a.created_at)}",
        f"Acknowledge by: {_when(a.ack_due_at)}",
    ]
    if a.visit_due_at is not None:
        lines.append(f"First officer visit by: {_when(a.visit_due_at)}")
    reasons = reason_lines(a.reasons)
    if reasons:
        lines.append("Reasons:")
        lines.extend(f"  - {r}" for r in reasons)
    lines.append(f"Open the alert: {BASE_URL_MARK}/alerts/{a.id}")
    return lines


_CODE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


def reason_lines(reasons: list) -> list[str]:
    """``RULE: fact, fact`` for each reason, keeping only codes and numbers.

    Reasons are built by the rules from coded answers (``HAZ_TASK: agrochemicals``), but a fact
    could one day carry text a person typed; anything that is not a code is left out rather than
    mailed.
    """
    out = []
    for reason in reasons or []:
        if not isinstance(reason, Mapping):
            continue
        rule = str(reason.get("rule", ""))
        if not _CODE.match(rule):
            continue
        facts = [_safe_fact(f) for f in _flatten(reason.get("facts")) if _known(f)]
        shown = [f for f in facts if f is not None]
        text = rule + (": " + ", ".join(shown) if shown else "")
        if len(shown) < len(facts):
            text += " (more in CLMS)"
        out.append(text)
    return out


def _flatten(facts) -> Iterator:
    if facts is None:
        return
    if isinstance(facts, Mapping):
        for key, value in facts.items():
            for v in value if isinstance(value, list) else [value]:
                yield (key, v)
    elif isinstance(facts, list):
        yield from facts
    else:
        yield facts


def _known(fact) -> bool:
    return fact is not None and not (isinstance(fact, tuple) and fact[1] is None)


def _safe_fact(fact) -> str | None:
    if isinstance(fact, tuple):
        key, value = fact
        shown = _safe_fact(value)
        return f"{key}={shown}" if shown is not None and _CODE.match(str(key)) else None
    if isinstance(fact, bool | int | float):
        return str(fact)
    if isinstance(fact, str) and _CODE.match(fact):
        return fact
    return None


# --- queueing ------------------------------------------------------------------------------------


#: the outbox's queue (:func:`clms.notices.outbox.queue_mail`): one pending email for a user
queue_notification = queue_mail


def alert_subject(a: AlertFacts) -> str:
    """``[CLMS] CRITICAL alert: child CH-XXXX in Village (V1) (worst forms)``."""
    label = CATEGORY_LABELS.get(a.category, a.category)
    return f"[CLMS] {a.severity.upper()} alert: {a.subject_ref} ({label})"


def _subject_severity(subject: str) -> str | None:
    """The severity an alert subject was written for (see :func:`alert_subject`)."""
    parts = subject.split()
    return parts[1].lower() if len(parts) > 2 and parts[0] == "[CLMS]" else None


def notify_new_urgent_alerts(
    session: Session, alert_ids: list[int], *, now: dt.datetime | None = None
) -> int:
    """Queue an email to each responsible officer of the critical and high alerts among
    ``alert_ids`` (alerts just raised, or whose severity just rose); returns how many were queued.

    Call it in the transaction that raised the alerts: the mail is queued with them and sent by
    the ``send_notifications`` job. A few queries for any number of ids. An alert already mailed
    to an officer at this severity is not mailed again (a re-submitted visit, a retried batch).
    """
    facts = alert_facts(session, alert_ids)
    urgent = [
        a
        for a in facts.values()
        if a.severity in URGENT_SEVERITIES and a.status in ACTIVE_ALERT_STATUSES
    ]
    if not urgent:
        return 0
    already = set()
    for chunk in _chunks([a.id for a in urgent]):
        rows = session.execute(
            select(Notification.alert_id, Notification.user_id, Notification.subject).where(
                Notification.kind == "alert", Notification.alert_id.in_(chunk)
            )
        )
        already |= {(r.alert_id, r.user_id, _subject_severity(r.subject)) for r in rows}
    recipients = responsible_officers(session, urgent)
    queued = 0
    for a in sorted(urgent, key=lambda a: a.id):
        body = "\n".join(
            [
                f"A {a.severity} alert needs your attention.",
                "",
                *alert_lines(a),
                "",
                "This message holds no names: open CLMS to see the child's record.",
            ]
        )
        for user in recipients.get(a.id, []):
            if (a.id, user.id, a.severity) in already:
                continue
            if queue_notification(
                session,
                user,
                kind="alert",
                subject=alert_subject(a),
                body=body,
                alert_id=a.id,
                now=now,
            ):
                queued += 1
                already.add((a.id, user.id, a.severity))
    if queued:
        session.flush()
    return queued


def queue_daily_digest(session: Session, now: dt.datetime) -> int:
    """Queue one email per officer listing the medium and low alerts of their villages raised
    since their last digest (or in the last 24 h; at most 7 days back), still active and not
    already mailed to them one by one. Returns how many digests were queued; an officer with
    nothing new gets none.
    """
    last_digest = dict(
        session.execute(
            select(Notification.user_id, func.max(Notification.created_at))
            .where(Notification.kind == "digest", Notification.user_id.is_not(None))
            .group_by(Notification.user_id)
        ).all()
    )
    floor = now - DIGEST_MAX_LOOKBACK

    def since(user_id: int) -> dt.datetime:
        last = last_digest.get(user_id)
        return max(last, floor) if last is not None else now - DIGEST_DEFAULT_LOOKBACK

    earliest = min([since(u) for u in last_digest] + [now - DIGEST_DEFAULT_LOOKBACK])
    ids = session.scalars(
        select(Alert.id).where(
            Alert.severity.in_(DIGEST_SEVERITIES),
            Alert.status.in_(ACTIVE_ALERT_STATUSES),
            Alert.created_at > earliest,
            Alert.created_at <= now,
        )
    ).all()
    if not ids:
        return 0
    facts = alert_facts(session, ids)
    mailed = set()
    for chunk in _chunks(sorted(facts)):
        mailed |= set(
            session.execute(
                select(Notification.alert_id, Notification.user_id).where(
                    Notification.kind == "alert", Notification.alert_id.in_(chunk)
                )
            ).all()
        )
    recipients = responsible_officers(session, list(facts.values()))
    per_officer: dict[int, tuple[User, list[AlertFacts]]] = {}
    for alert_id, users in recipients.items():
        a = facts[alert_id]
        for user in users:
            if (alert_id, user.id) in mailed or a.created_at <= since(user.id):
                continue
            per_officer.setdefault(user.id, (user, []))[1].append(a)
    queued = 0
    for user, alerts in per_officer.values():
        alerts.sort(key=lambda a: (-_rank(a.severity), a.created_at, a.id))
        counts = {s: sum(1 for a in alerts if a.severity == s) for s in DIGEST_SEVERITIES}
        subject = (
            f"[CLMS] Daily digest: {len(alerts)} new alert{'s' if len(alerts) != 1 else ''} "
            f"({counts['medium']} medium, {counts['low']} low)"
        )
        body = [f"New alerts in your villages since {_when(since(user.id))}:", ""]
        for i, a in enumerate(alerts, 1):
            label = CATEGORY_LABELS.get(a.category, a.category)
            body.append(f"{i}. {a.severity.upper()}: {a.subject_ref} ({label})")
            body.append(f"   Acknowledge by {_when(a.ack_due_at)}")
            body.append(f"   {BASE_URL_MARK}/alerts/{a.id}")
        body += ["", "This message holds no names: open CLMS to see the children's records."]
        if queue_notification(
            session, user, kind="digest", subject=subject, body="\n".join(body), now=now
        ):
            queued += 1
    if queued:
        session.flush()
    return queued


# --- sending -------------------------------------------------------------------------------------

_not_configured_logged = False


@dataclass(frozen=True)
class Outgoing:
    """A notification claimed for sending (:func:`claim_due`)."""

    id: int
    email: str
    subject: str
    body: str
    attempts: int
    created_at: dt.datetime


def mail_configured(config: Mapping) -> bool:
    """Whether mail can be sent (``SMTP_HOST`` is set). The first time it is not, the log says
    so, once per process: notifications are then kept, pending."""
    global _not_configured_logged
    if config.get("SMTP_HOST"):
        return True
    if not _not_configured_logged:
        log.warning("mail is not configured (CLMS_SMTP_HOST is empty): notifications are kept")
        _not_configured_logged = True
    return False


def claim_due(session: Session, now: dt.datetime, *, limit: int = 100) -> list[Outgoing]:
    """Claim up to ``limit`` pending notifications whose ``next_attempt_at`` has come: their next
    attempt moves ``SEND_LEASE`` ahead, so that no other sender takes them meanwhile; returns what
    to send. Flushes, never commits: the sender's boundary commits the claim before sending
    (:func:`clms.jobs.outbox.send_due`)."""
    rows = session.scalars(
        select(Notification)
        .where(Notification.status == "pending", Notification.next_attempt_at <= now)
        .order_by(Notification.next_attempt_at, Notification.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    batch = [Outgoing(n.id, n.email, n.subject, n.body, n.attempts, n.created_at) for n in rows]
    for n in rows:
        n.next_attempt_at = now + SEND_LEASE
    session.flush()
    return batch


def record_outcomes(
    session: Session, batch: list[Outgoing], outcomes: Mapping, now: dt.datetime
) -> dict:
    """Mark each notification of ``batch`` by its outcome (:func:`deliver`): ``sent``, or on
    failure another attempt after 1, 5, 30 minutes, 2 hours, then every 6 hours, and ``failed``
    after ``MAX_ATTEMPTS`` (or at once when the server refused the address for good); one changed
    meanwhile is left alone. Returns the counts ``sent``, ``failed`` (given up) and ``retry``.
    Flushes, never commits."""
    summary = {"sent": 0, "failed": 0, "retry": 0}
    for item in batch:
        note = session.get(Notification, item.id)
        if note is None or note.status != "pending":
            continue
        error, permanent = outcomes.get(item.id, ("not attempted", False))
        if error is None:
            note.status, note.sent_at, note.last_error = "sent", now, None
            summary["sent"] += 1
            continue
        note.attempts = item.attempts + 1
        note.last_error = error[:2000]
        if permanent or note.attempts >= MAX_ATTEMPTS:
            note.status = "failed"
            summary["failed"] += 1
            log.error(
                "notification %d to %s given up after %d attempts: %s",
                item.id, item.email, note.attempts, error,
            )  # fmt: skip
        else:
            note.next_attempt_at = now + retry_delay(note.attempts)
            summary["retry"] += 1
            log.warning(
                "notification %d to %s failed (attempt %d), next at %s: %s",
                item.id, item.email, note.attempts, note.next_attempt_at, error,
            )  # fmt: skip
    session.flush()
    return summary


def count_pending(session: Session) -> int:
    """All notifications still waiting, due or not (in a read-only transaction)."""
    read_only(session)
    return session.scalar(select(func.count()).where(Notification.status == "pending"))


def retry_delay(attempts: int) -> dt.timedelta:
    """How long to wait after the ``attempts``-th failure: 1, 5, 30 min, 2 h, then 6 h."""
    return RETRY_DELAYS[min(max(attempts, 1), len(RETRY_DELAYS)) - 1]


# Python's folding at 78 columns breaks a subject starting with "[CLMS]" before its first word;
# headers may be 998 characters long (RFC 5322), ours stay far below that unfolded
_POLICY = email.policy.default.clone(max_line_length=998)


def build_message(
    config: Mapping,
    *,
    to: str,
    subject: str,
    body: str,
    message_id: str,
    now: dt.datetime,
) -> EmailMessage:
    """The email for one notification: From ``MAIL_FROM``, Date, Message-ID, plain text."""
    msg = EmailMessage(policy=_POLICY)
    msg["From"] = config.get("MAIL_FROM") or "clms@localhost"
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = format_datetime(now.astimezone(dt.UTC))
    msg["Message-ID"] = message_id
    # RFC 3834: an automatic message; well-behaved auto-responders do not answer it
    msg["Auto-Submitted"] = "auto-generated"
    base_url = str(config.get("BASE_URL") or "").rstrip("/")
    msg.set_content(body.replace(BASE_URL_MARK, base_url or "(CLMS address)"))
    return msg


def deliver(batch: list[Outgoing], config: Mapping, now: dt.datetime) -> dict:
    """Send ``batch`` over one SMTP connection, outside any transaction (a slow mail server never
    holds the database): ``{id: (error or None, permanent)}``."""
    domain = str(config.get("MAIL_FROM") or "clms@localhost").rpartition("@")[2] or "localhost"
    try:
        smtp = _connect(config)
    except (OSError, smtplib.SMTPException) as exc:  # refused, timed out, TLS or login failed
        error = _describe(exc)
        log.warning("cannot reach the mail server: %s", error)
        return {item.id: (error, False) for item in batch}
    outcomes: dict[int, tuple[str | None, bool]] = {}
    try:
        for i, item in enumerate(batch):
            # the same Message-ID on every attempt: a mail that did go out before a crash and is
            # sent again is recognised as a duplicate by mail clients
            stamp = int(item.created_at.timestamp())
            msg = build_message(
                config,
                to=item.email,
                subject=item.subject,
                body=item.body,
                message_id=f"<clms-notification-{item.id}.{stamp}@{domain}>",
                now=now,
            )
            try:
                smtp.send_message(msg)
                outcomes[item.id] = (None, False)
            except smtplib.SMTPRecipientsRefused as exc:
                codes = [code for code, _msg in exc.recipients.values()]
                outcomes[item.id] = (_describe(exc), bool(codes) and min(codes) >= 500)
            except smtplib.SMTPResponseException as exc:  # this message refused; others may pass
                outcomes[item.id] = (_describe(exc), False)
            except (smtplib.SMTPServerDisconnected, OSError) as exc:  # the connection is gone
                error = _describe(exc)
                for rest in batch[i:]:
                    outcomes[rest.id] = (error, False)
                break
    finally:
        try:
            smtp.quit()
        except (OSError, smtplib.SMTPException):
            smtp.close()
    return outcomes


def _connect(config: Mapping) -> smtplib.SMTP:
    host, port = str(config["SMTP_HOST"]), int(config.get("SMTP_PORT") or 25)
    if port == 465:  # implicit TLS (SMTPS)
        smtp: smtplib.SMTP = smtplib.SMTP_SSL(
            host, port, timeout=30, context=ssl.create_default_context()
        )
    else:
        smtp = smtplib.SMTP(host, port, timeout=30)
    try:
        if _truthy(config.get("SMTP_STARTTLS")) and port != 465:
            smtp.starttls(context=ssl.create_default_context())
        if config.get("SMTP_USER"):
            smtp.login(str(config["SMTP_USER"]), str(config.get("SMTP_PASSWORD") or ""))
    except BaseException:
        smtp.close()
        raise
    return smtp


def _truthy(value) -> bool:
    return str(value).strip().lower() in {"1", "true", "yes", "on"}


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


# --- small helpers -------------------------------------------------------------------------------


def _when(value: dt.datetime | None) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC") if value else "-"


def _rank(severity: str) -> int:
    return {"critical": 4, "high": 3, "medium": 2, "low": 1}.get(severity, 0)


def _chunks(ids: list, size: int = _IN_CHUNK) -> Iterator[list]:
    for start in range(0, len(ids), size):
        yield ids[start : start + size]
