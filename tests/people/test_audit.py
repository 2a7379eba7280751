"""The audit log (clms.audit): append-only, chained by hashes, written for every read of
child-level data, export, case change and sign-in; searched by administrators; checked by
``clms audit verify``."""

from __future__ import annotations

import json
import threading

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DatabaseError
from sqlalchemy.orm import Session

from clms.audit import GENESIS, entry_hash, record, verify
from clms.db import session_scope
from clms.models import AuditEvent, AuditHead, Submission
from tests.conftest import AUDIT_NO_DELETE, PASSWORD
from tests.submissions import child, household_xml, live_version


def _entries(app, **where) -> list[AuditEvent]:
    with session_scope(app) as s:
        query = select(AuditEvent).order_by(AuditEvent.seq)
        for key, value in where.items():
            query = query.where(getattr(AuditEvent, key) == value)
        return list(s.scalars(query))


def _write(app, n: int, actor="tester") -> None:
    with session_scope(app) as s:
        for i in range(n):
            record(s, actor, "test.entry", f"thing:{i}", reason="because", number=i)


def _tamper(app, statement: str) -> None:
    """Run ``statement`` on audit_events past the append-only guard, as an attacker with the
    database's owner rights would."""
    engine = app.extensions["clms_engine"]
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("ALTER TABLE audit_events DISABLE TRIGGER USER"))
            conn.execute(text(statement))
            conn.execute(text("ALTER TABLE audit_events ENABLE TRIGGER USER"))
        else:
            for what in ("update", "delete"):
                conn.execute(text(f"DROP TRIGGER IF EXISTS audit_events_no_{what}"))
            conn.execute(text(statement))
            conn.execute(text(AUDIT_NO_DELETE))
            conn.execute(
                text(
                    "CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events "
                    "BEGIN SELECT RAISE(ABORT, 'audit_events is append-only: UPDATE refused'); END"
                )
            )


def test_entries_are_chained_and_verify(app):
    _write(app, 5)
    entries = _entries(app)
    assert [e.seq for e in entries] == [1, 2, 3, 4, 5]
    assert entries[0].prev_hash == GENESIS
    for before, after in zip(entries, entries[1:], strict=False):
        assert after.prev_hash == before.hash
    assert all(entry_hash(e) == e.hash for e in entries)
    assert json.loads(entries[2].details) == {"number": 2}
    assert entries[2].reason == "because" and entries[2].target == "thing:2"
    with session_scope(app) as s:
        result = verify(s)
        assert result.ok and result.checked == 5
        head = s.get(AuditHead, 1)
        assert (head.seq, head.last_hash) == (5, entries[-1].hash)


def test_secrets_never_reach_the_log(app):
    with session_scope(app) as s:
        record(s, "cli", "user.password", "user:awa", password="hunter2hunter2", passphrase="x")
    [entry] = _entries(app)
    assert "hunter2" not in entry.details and "passphrase" not in entry.details


def test_the_database_refuses_to_change_or_remove_an_entry(app):
    _write(app, 2)
    engine = app.extensions["clms_engine"]
    for statement in (
        "UPDATE audit_events SET actor = 'someone else' WHERE seq = 1",
        "DELETE FROM audit_events WHERE seq = 2",
    ):
        with pytest.raises(DatabaseError, match="append-only"), engine.begin() as conn:
            conn.execute(text(statement))
    assert [e.actor for e in _entries(app)] == ["tester", "tester"]


def test_tampering_is_detected_where_it_happened(app, runner):
    _write(app, 6)
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 0 and "intact: 6 entries" in result.output
    _tamper(app, "UPDATE audit_events SET reason = 'nothing to see' WHERE seq = 4")
    with session_scope(app) as s:
        found = verify(s)
    assert not found.ok and found.broken_at == 4 and "changed" in found.problem
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 1 and "broken at entry 4" in result.output


def test_a_removed_entry_is_detected_in_the_middle_and_at_the_end(app):
    _write(app, 5)
    _tamper(app, "DELETE FROM audit_events WHERE seq = 5")
    with session_scope(app) as s:
        found = verify(s)
    assert not found.ok and "removed from the end" in found.problem
    _tamper(app, "DELETE FROM audit_events WHERE seq = 2")
    with session_scope(app) as s:
        found = verify(s)
    assert not found.ok and found.broken_at == 2 and "missing" in found.problem


def test_a_rolled_back_change_leaves_no_entry_and_no_gap(app):
    with pytest.raises(RuntimeError), session_scope(app) as s:
        record(s, "tester", "test.entry", "thing:lost")
        raise RuntimeError("the work failed")
    _write(app, 1)
    assert [(e.seq, e.target) for e in _entries(app)] == [(1, "thing:0")]


@pytest.mark.committing  # writers in threads, each with a connection of its own
def test_concurrent_writers_never_fork_the_chain(app):
    engine = app.extensions["clms_engine"]
    errors = []

    def writer(name: str) -> None:
        try:
            for i in range(15):
                with Session(bind=engine) as s:
                    record(s, name, "test.entry", f"{name}:{i}")
                    s.commit()
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(f"w{n}",)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    entries = _entries(app)
    assert [e.seq for e in entries] == list(range(1, 61))
    with session_scope(app) as s:
        assert verify(s).ok


# --- what the application writes ------------------------------------------------------------------


def _login(client, username: str, password: str = PASSWORD):
    return client.post("/login", data={"username": username, "password": password})


def _submission(app, phone) -> int:
    xml = household_xml(
        live_version(app, "clms_household_visit"),
        children=[child(child_name="Akissi Zébédée")],
    )
    assert phone.submit(xml).status_code == 201
    with session_scope(app) as s:
        return s.scalar(select(Submission.id))


def test_sign_in_reads_and_the_admin_page(app, client, phone, make_user):
    make_user("ada", "admin")
    make_user("olga", "officer", areas=["CI-D1"])
    submission_id = _submission(app, phone)
    assert _login(client, "olga", "wrong password!").status_code == 401
    assert _login(client, "olga").status_code == 302
    # reading a submission's content (children's names) is an entry, written before the page
    page = client.get(f"/submissions/{submission_id}")
    assert page.status_code == 200 and "Akissi" in page.get_data(as_text=True)
    [read] = _entries(app, action="submission.read")
    assert read.actor == "olga" and read.role == "officer" and read.target.startswith("submission:")
    [failed] = _entries(app, action="auth.login_failed")
    assert failed.target == "user:olga" and failed.actor == "system"
    # nobody but an administrator reads the log
    assert client.get("/audit").status_code == 403
    assert client.get("/audit/verify").status_code == 403
    client.post("/logout")
    assert _entries(app, action="auth.logout")[0].actor == "olga"
    _login(client, "ada")
    # the page: newest first, filtered; looking is itself an entry
    page = client.get("/audit?action=auth.")
    text_ = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "auth.login" in text_ and "auth.login_failed" in text_ and "submission.read" not in text_
    page = client.get("/audit?actor=olga&action=submission.read")
    assert read.target in page.get_data(as_text=True)
    assert _entries(app, action="audit.search")[0].actor == "ada"
    assert client.get("/audit?since=yesterday").status_code == 400
    assert client.get("/audit/verify").status_code == 200
    with session_scope(app) as s:
        assert verify(s).ok


def test_a_read_that_cannot_be_recorded_is_not_shown(app, client, phone, make_user):
    make_user("olga", "officer", areas=["CI-D1"])
    submission_id = _submission(app, phone)
    _login(client, "olga")
    engine = app.extensions["clms_engine"]
    with engine.begin() as conn:  # the audit log cannot take any entry any more
        if engine.dialect.name == "postgresql":
            conn.execute(
                text(
                    "CREATE FUNCTION audit_full() RETURNS trigger AS $$ BEGIN "
                    "RAISE EXCEPTION 'no room'; END; $$ LANGUAGE plpgsql"
                )
            )
            conn.execute(
                text(
                    "CREATE TRIGGER audit_full BEFORE INSERT ON audit_events "
                    "FOR EACH ROW EXECUTE FUNCTION audit_full()"
                )
            )
        else:
            conn.execute(
                text(
                    "CREATE TRIGGER audit_full BEFORE INSERT ON audit_events "
                    "BEGIN SELECT RAISE(ABORT, 'no room'); END"
                )
            )
    try:
        page = client.get(f"/submissions/{submission_id}")
        assert page.status_code == 503
        assert "Akissi" not in page.get_data(as_text=True)
    finally:
        with engine.begin() as conn:
            if engine.dialect.name == "postgresql":
                conn.execute(text("DROP TRIGGER audit_full ON audit_events"))
                conn.execute(text("DROP FUNCTION audit_full()"))
            else:
                conn.execute(text("DROP TRIGGER audit_full"))
    assert client.get(f"/submissions/{submission_id}").status_code == 200


def test_the_command_shows_entries(app, runner):
    _write(app, 3, actor="cli")
    result = runner.invoke(args=["audit", "show", "--action", "test.", "--limit", "2"])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 2 and "thing:2" in lines[0] and "thing:1" in lines[1]
    with session_scope(app) as s:
        assert s.scalar(select(func.count(AuditEvent.id))) == 3


def test_lists_naming_children_are_reads_too(app, client, places, make_user):
    from tests.factories import add_alert

    make_user("olga", "officer", areas=["CI-D1"])
    with session_scope(app) as s:
        alert_id = add_alert(s, "V1").id
    _login(client, "olga")
    assert client.get("/alerts").status_code == 200
    [listed] = _entries(app, action="alerts.list")
    assert listed.actor == "olga" and json.loads(listed.details)["alerts"] == [alert_id]
    # an empty list names nobody: nothing to record
    assert client.get("/cases").status_code == 200
    assert _entries(app, action="cases.list") == []
    assert client.get("/map/frame").status_code == 200
    assert client.get(f"/alerts/{alert_id}").status_code == 200
    assert [e.target for e in _entries(app, action="alert.read")] == [f"alert:{alert_id}"]
