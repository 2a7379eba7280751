"""Email notifications: the outbox, a real SMTP server, retries, the daily digest.

The rows come from ``tests/factories.py``.
"""

from __future__ import annotations

import datetime as dt
import logging

import pytest
from sqlalchemy import func, select

from alerts import notify
from alerts.notify import (
    notify_new_urgent_alerts,
    officers_for_village,
    queue_daily_digest,
    reason_lines,
    supervisors_for_village,
)
from clms.db import session_scope
from clms.jobs.outbox import send_due
from clms.models import Alert, Child, Notification, User
from tests.factories import CHILD_NAME, HEAD_NAME, NOW, add_alert, village_id
from tests.smtp_server import SmtpServer, free_port


def sessions(app):
    return app.extensions["clms_sessionmaker"]


def mail_config(app, smtp=None, **extra) -> dict:
    config = dict(app.config)
    config.update(
        SMTP_HOST=smtp.host if smtp else "",
        SMTP_PORT=smtp.port if smtp else 25,
        MAIL_FROM="clms@clms.example.org",
        BASE_URL="https://clms.example.org",
    )
    config.update(extra)
    return config


def notifications(app, **where) -> list[Notification]:
    with session_scope(app) as s:
        stmt = select(Notification).order_by(Notification.id)
        for key, value in where.items():
            stmt = stmt.where(getattr(Notification, key) == value)
        return list(s.scalars(stmt))


@pytest.fixture
def smtp(tmp_path):
    """A real SMTP server process (aiosmtpd) for the test."""
    with SmtpServer(tmp_path / "mail") as server:
        yield server


@pytest.fixture
def staff(app, places, make_user):
    """Officers and supervisors: kofi (officer, CI-D1), ama (officer, CI-D2), nia (officer,
    village V2 only), sekou (supervisor, CI-D1), fatou (supervisor, CI-D2), awa (monitor)."""
    ids = {
        "kofi": make_user("kofi", "officer", areas=["CI-D1"], email="kofi@example.org"),
        "ama": make_user("ama", "officer", areas=["CI-D2"], email="ama@example.org"),
        "nia": make_user("nia", "officer", areas=["V2"], email="nia@example.org"),
        "sekou": make_user("sekou", "supervisor", areas=["CI-D1"], email="sekou@example.org"),
        "fatou": make_user("fatou", "supervisor", areas=["CI-D2"], email="fatou@example.org"),
        "awa": make_user("awa", "monitor", areas=["CI-D1"], email="awa@example.org"),
    }
    return ids


# --- recipients ----------------------------------------------------------------------------------


def test_officers_and_supervisors_of_a_village_through_areas_and_villages(app, staff, make_user):
    make_user("regina", "officer", areas=["CI-R1"], email="regina@example.org")  # the region
    make_user("gone", "officer", areas=["CI-D1"], email="gone@example.org")
    with session_scope(app) as s:
        s.scalar(select(User).where(User.username == "gone")).active = False
    with session_scope(app) as s:
        v1, v2, v3 = (village_id(s, c) for c in ("V1", "V2", "V3"))
        assert {u.username for u in officers_for_village(s, v1)} == {"kofi", "regina"}
        assert {u.username for u in officers_for_village(s, v2)} == {"kofi", "nia", "regina"}
        assert {u.username for u in officers_for_village(s, v3)} == {"ama", "regina"}
        assert [u.username for u in supervisors_for_village(s, v1)] == ["sekou"]
        assert [u.username for u in supervisors_for_village(s, v3)] == ["fatou"]


# --- queueing and sending ------------------------------------------------------------------------


def test_critical_alert_mails_the_responsible_officer_through_a_real_smtp_server(app, staff, smtp):
    with session_scope(app) as s:
        alert = add_alert(s, "V1", category="worst_form")
        alert.reasons = [{"rule": "WF_SIGNS", "facts": {"age": 11, "signs": ["bonded_labour"]}}]
        uid = s.get(Child, alert.child_id).child_uid
        # in the transaction that raised the alert, as the classifier does
        assert notify_new_urgent_alerts(s, [alert.id], now=NOW) == 1
        alert_id = alert.id
    [note] = notifications(app)
    assert (note.kind, note.status, note.email, note.alert_id) == (
        "alert", "pending", "kofi@example.org", alert_id,
    )  # fmt: skip

    summary = send_due(sessions(app), mail_config(app, smtp), now=NOW)
    assert summary["sent"] == 1 and summary["retry"] == 0
    [msg] = smtp.wait_for(1)
    assert msg["To"] == "kofi@example.org"
    assert msg["X-RcptTo"] == "kofi@example.org"  # the envelope, as the server saw it
    assert msg["From"] == "clms@clms.example.org"
    assert msg["Subject"] == f"[CLMS] CRITICAL alert: child {uid} in Gnamagui (V1) (worst forms)"
    assert msg["Message-ID"].endswith("@clms.example.org>")
    assert msg["Date"].datetime == NOW
    body = msg.get_content()
    assert uid in body
    assert f"https://clms.example.org/alerts/{alert_id}" in body
    assert "Coop Soubré Espoir" in body and "WF_SIGNS: age=11, signs=bonded_labour" in body
    assert "Acknowledge by: 2025-03-04 09:00 UTC" in body
    for secret in (CHILD_NAME, HEAD_NAME, "Aya", "Traoré"):
        assert secret not in body and secret not in msg["Subject"]
    [note] = notifications(app)
    assert note.status == "sent" and note.sent_at == NOW and note.attempts == 0

    # nothing is sent twice
    assert send_due(sessions(app), mail_config(app, smtp), now=NOW)["sent"] == 0
    assert len(smtp.wait_for(2, timeout=0.3)) == 1


def test_queued_once_per_alert_recipient_and_severity(app, staff):
    with session_scope(app) as s:
        alert = add_alert(s, "V2", category="hazardous")
        # kofi (CI-D1) and nia (V2) cover V2
        assert notify_new_urgent_alerts(s, [alert.id], now=NOW) == 2
        assert notify_new_urgent_alerts(s, [alert.id, alert.id], now=NOW) == 0
        # the severity rises: mailed again, once
        alert.category, alert.severity, alert.severity_rank = "worst_form", "critical", 4
        s.flush()
        assert notify_new_urgent_alerts(s, [alert.id], now=NOW) == 2
        assert notify_new_urgent_alerts(s, [alert.id], now=NOW) == 0
    subjects = sorted((n.email, n.subject.split(" alert")[0]) for n in notifications(app))
    assert subjects == [
        ("kofi@example.org", "[CLMS] CRITICAL"), ("kofi@example.org", "[CLMS] HIGH"),
        ("nia@example.org", "[CLMS] CRITICAL"), ("nia@example.org", "[CLMS] HIGH"),
    ]  # fmt: skip


def test_only_critical_and_high_are_mailed_and_an_assignee_replaces_the_village_officers(
    app, staff
):
    with session_scope(app) as s:
        medium = add_alert(s, "V1", category="child_labour")
        low = add_alert(s, "V1", category="at_risk")
        assigned = add_alert(s, "V3", category="hazardous", assigned_to_id=staff["kofi"])
        reported = add_alert(s, "V3", category="worst_form", child=None)
        ids = [medium.id, low.id, assigned.id, reported.id]
        assert notify_new_urgent_alerts(s, ids, now=NOW) == 2
    sent = {(n.alert_id, n.email) for n in notifications(app)}
    assert sent == {(assigned.id, "kofi@example.org"), (reported.id, "ama@example.org")}
    [note] = notifications(app, alert_id=reported.id)
    assert note.subject == "[CLMS] CRITICAL alert: reported concern in Oupoyo (V3) (worst forms)"


def test_users_without_email_get_no_mail_and_nothing_fails(app, places, make_user, caplog):
    make_user("kofi", "officer", areas=["CI-D1"], email=None)
    make_user("yao", "officer", areas=["V1"], email="yao@example.org")
    # the outbox's queue is shared with the notices' mail: it logs as clms.notices.outbox
    caplog.set_level(logging.INFO, logger="clms.notices.outbox")
    with session_scope(app) as s:
        alert = add_alert(s, "V1")
        assert notify_new_urgent_alerts(s, [alert.id], now=NOW) == 1
    assert [n.email for n in notifications(app)] == ["yao@example.org"]
    assert any("kofi has no email address" in r.getMessage() for r in caplog.records)


def test_a_mail_server_that_is_down_delays_the_mail_not_the_alert(app, staff, smtp):
    with session_scope(app) as s:
        alert = add_alert(s, "V3", category="hazardous")
        notify_new_urgent_alerts(s, [alert.id], now=NOW)
        alert_id = alert.id
    config = mail_config(app, smtp)
    smtp.stop()

    summary = send_due(sessions(app), config, now=NOW)
    assert summary == {"sent": 0, "failed": 0, "retry": 1, "pending": 1}
    [note] = notifications(app)
    assert note.status == "pending" and note.attempts == 1
    assert note.next_attempt_at == NOW + dt.timedelta(minutes=1)
    assert "Connection refused" in note.last_error or "Errno" in note.last_error
    with session_scope(app) as s:
        alert = s.get(Alert, alert_id)
        assert alert.status == "new" and alert.severity == "high"

    # not due yet: nothing is tried
    assert send_due(sessions(app), config, now=NOW + dt.timedelta(seconds=30))["retry"] == 0
    assert notifications(app)[0].attempts == 1

    smtp.start()  # back, same port
    later = NOW + dt.timedelta(minutes=2)
    assert send_due(sessions(app), config, now=later)["sent"] == 1
    assert send_due(sessions(app), config, now=later + dt.timedelta(hours=1))["sent"] == 0
    [msg] = smtp.wait_for(1)
    assert msg["To"] == "ama@example.org"
    assert len(smtp.wait_for(2, timeout=0.3)) == 1  # exactly once
    [note] = notifications(app)
    assert note.status == "sent" and note.sent_at == later and note.attempts == 1


def test_retries_back_off_then_give_up(app, staff):
    with session_scope(app) as s:
        notify_new_urgent_alerts(s, [add_alert(s, "V3").id], now=NOW)
    config = mail_config(app, SMTP_HOST="127.0.0.1", SMTP_PORT=free_port())  # nobody listens
    now, delays = NOW, []
    for _ in range(notify.MAX_ATTEMPTS):
        send_due(sessions(app), config, now=now)
        [note] = notifications(app)
        if note.status == "failed":
            break
        delays.append(note.next_attempt_at - now)
        now = note.next_attempt_at
    minutes = [d.total_seconds() / 60 for d in delays]
    assert minutes == [1, 5, 30, 120, 360, 360, 360, 360, 360]
    assert note.status == "failed" and note.attempts == notify.MAX_ATTEMPTS


def test_smtp_login(app, staff, tmp_path):
    with session_scope(app) as s:
        notify_new_urgent_alerts(s, [add_alert(s, "V1").id], now=NOW)
    with SmtpServer(tmp_path / "mail", login="clms:s3cret") as smtp:
        wrong = mail_config(app, smtp, SMTP_USER="clms", SMTP_PASSWORD="wrong")
        assert send_due(sessions(app), wrong, now=NOW)["retry"] == 1
        assert "SMTPAuthenticationError" in notifications(app)[0].last_error
        right = mail_config(app, smtp, SMTP_USER="clms", SMTP_PASSWORD="s3cret")
        later = NOW + dt.timedelta(minutes=1)
        assert send_due(sessions(app), right, now=later)["sent"] == 1
        assert [m["To"] for m in smtp.wait_for(1)] == ["kofi@example.org"]


def test_without_a_mail_server_configured_mail_is_kept(app, staff, caplog):
    with session_scope(app) as s:
        notify_new_urgent_alerts(s, [add_alert(s, "V1").id], now=NOW)
    caplog.set_level(logging.WARNING, logger="alerts.notify")
    notify._not_configured_logged = False
    for _ in range(2):
        summary = send_due(sessions(app), mail_config(app), now=NOW)
        assert summary["mail"] == "not configured" and summary["pending"] == 1
    [note] = notifications(app)
    assert note.status == "pending" and note.attempts == 0
    assert sum("mail is not configured" in r.getMessage() for r in caplog.records) == 1


def test_daily_digest_groups_medium_and_low_alerts_per_officer(app, staff, smtp):
    day = dt.timedelta(days=1)
    with session_scope(app) as s:
        m1 = add_alert(s, "V1", category="child_labour", created_at=NOW - dt.timedelta(hours=5))
        l2 = add_alert(s, "V2", category="at_risk", created_at=NOW - dt.timedelta(hours=3))
        m3 = add_alert(s, "V3", category="child_labour", created_at=NOW - dt.timedelta(hours=1))
        add_alert(s, "V1", category="worst_form", created_at=NOW - dt.timedelta(hours=2))
        add_alert(s, "V1", category="child_labour", created_at=NOW - 2 * day)  # before the window
        add_alert(s, "V1", category="at_risk", status="dismissed")  # needs nothing
        mailed = add_alert(s, "V4", category="child_labour", created_at=NOW - dt.timedelta(hours=4))
        s.add(Notification(kind="alert", user_id=staff["ama"], email="ama@example.org",
                           subject="[CLMS] MEDIUM alert", body="", alert_id=mailed.id,
                           status="sent", created_at=NOW, next_attempt_at=NOW))  # fmt: skip
        assert queue_daily_digest(s, NOW) == 3
        uid_m1 = s.get(Child, m1.child_id).child_uid
    digests = {n.email: n for n in notifications(app, kind="digest")}
    assert set(digests) == {"kofi@example.org", "nia@example.org", "ama@example.org"}
    kofi = digests["kofi@example.org"]
    assert kofi.subject == "[CLMS] Daily digest: 2 new alerts (1 medium, 1 low)"
    assert f"/alerts/{m1.id}" in kofi.body and f"/alerts/{l2.id}" in kofi.body
    assert kofi.body.index(f"/alerts/{m1.id}") < kofi.body.index(f"/alerts/{l2.id}")
    assert f"child {uid_m1} in Gnamagui (V1)" in kofi.body
    assert "1 new alert (0 medium, 1 low)" in digests["nia@example.org"].subject
    ama = digests["ama@example.org"]
    assert f"/alerts/{m3.id}" in ama.body and f"/alerts/{mailed.id}" not in ama.body

    with session_scope(app) as s:  # the same morning again: nothing new
        assert queue_daily_digest(s, NOW) == 0
    with session_scope(app) as s:  # the next day, one new alert in V4
        add_alert(s, "V4", category="at_risk", created_at=NOW + dt.timedelta(hours=20))
        assert queue_daily_digest(s, NOW + day) == 1
    assert len(notifications(app, kind="digest", email="ama@example.org")) == 2

    send_due(sessions(app), mail_config(app, smtp), now=NOW + day)
    received = smtp.wait_for(4)
    assert sorted(m["To"] for m in received) == sorted(
        ["kofi@example.org", "nia@example.org", "ama@example.org", "ama@example.org"]
    )
    for msg in received:
        assert CHILD_NAME not in msg.get_content() and HEAD_NAME not in msg.get_content()
        assert "https://clms.example.org/alerts/" in msg.get_content()


def test_notify_is_a_few_queries_for_a_batch(app, staff):
    from sqlalchemy import event

    with session_scope(app) as s:
        alerts = [add_alert(s, f"V{1 + i % 4}", category="hazardous") for i in range(40)]
        s.flush()
        statements = []
        listen = lambda *args: statements.append(args[2])  # noqa: E731
        engine = s.get_bind()
        event.listen(engine, "before_cursor_execute", listen)
        try:
            queued = notify_new_urgent_alerts(s, [a.id for a in alerts], now=NOW)
        finally:
            event.remove(engine, "before_cursor_execute", listen)
        assert queued == 50  # 10 in V2 (kofi, nia), 30 elsewhere (one officer each)
        selects = [q for q in statements if q.lstrip().upper().startswith(("SELECT", "WITH"))]
        assert len(selects) <= 5
        assert s.scalar(select(func.count()).select_from(Notification)) == 50


def test_reason_lines_keep_codes_and_drop_free_text():
    reasons = [
        {"rule": "HAZ_TASK", "facts": {"hazards": ["agrochemicals", "sharp_tools"], "age": 13}},
        {"rule": "REPORTED_CONCERN", "facts": {"concern": ["trafficking"], "reporter_type": None}},
        {"rule": "WF_SIGNS", "facts": {"note": "the boy Kouassi said he is beaten"}},
        {"rule": "bad rule with spaces", "facts": {}},
        "not a reason",
    ]
    assert reason_lines(reasons) == [
        "HAZ_TASK: hazards=agrochemicals, hazards=sharp_tools, age=13",
        "REPORTED_CONCERN: concern=trafficking",
        "WF_SIGNS (more in CLMS)",
    ]
