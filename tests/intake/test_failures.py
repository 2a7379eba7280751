"""Failures (issue 6): a server killed mid-load, the database away, a full disk, a scheduler killed
mid-pull. Every submission that got a 201 is stored exactly once and whole; nothing else gets a
201; nothing is half-stored; a restart resumes from the cursors.

Real parts only: gunicorn and ``clms scheduler`` run as subprocesses and die by SIGKILL, the
PostgreSQL servers are real (one of this module's own is stopped and started), the full disk is a
real small tmpfs (the tests that need to mount one are skipped when not run as root), and the
remote ODK Central / KoboToolbox servers are the doubles of tests/central_double.py and
tests/kobo_double.py, reached over HTTP.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
import tempfile
import threading
import time
import uuid
import warnings
from collections import Counter
from pathlib import Path

import pytest
import requests
from requests.auth import HTTPDigestAuth
from sqlalchemy import create_engine, func, select, text

from clms.app import create_app
from clms.db import session_scope
from clms.migrate import upgrade
from clms.models import JobRun, PullSource, Submission, SubmissionAttachment, Visit
from forms.pull.sources import add_source
from tests.central_double import CentralDouble
from tests.conftest import PASSWORD, SHARED, BrowserClient
from tests.failure_rig import (
    SECRET_KEY,
    Gunicorn,
    Process,
    StoppablePostgres,
    clms_command,
    fill,
    populate,
    server_env,
    small_tmpfs,
    wait_until,
)
from tests.kobo_double import KoboDouble
from tests.openrosa_client import OPENROSA, Phone
from tests.submissions import household_xml

RECEIVED = "Form received successfully."
ALREADY = "Full submission already received."


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def stored_counts(app) -> Counter:
    """How many rows each instanceID has."""
    with session_scope(app) as s:
        rows = s.execute(
            select(Submission.instance_id, func.count()).group_by(Submission.instance_id)
        ).all()
    return Counter(dict(rows))


def make_app(url: str, tmp_path: Path):
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": SECRET_KEY, "TESTING": True,
                      "SHARED_DATA": str(SHARED), "ODK_VALIDATE": "0"})  # fmt: skip
    app.instance_path = str(tmp_path / "instance")
    return app


def migrated(url: str) -> str:
    engine = create_engine(url)
    try:
        upgrade(engine)
    finally:
        engine.dispose()
    return url


def assert_openrosa_503(response) -> None:
    """What a phone must get when nothing could be stored: 503, when to try again, and an
    OpenRosa message it can show."""
    assert response.status_code == 503, response.get_data(as_text=True)[:500]
    assert int(response.headers["Retry-After"]) > 0
    assert response.headers["X-OpenRosa-Version"] == "1.0"
    assert response.mimetype == "text/xml"
    body = response.get_data(as_text=True)
    if response.request.method != "HEAD":
        assert "<OpenRosaResponse" in body and "nothing was saved" in body


# --- 1. the server killed mid-load ---------------------------------------------------------------


CLIENTS, PER_CLIENT = 8, 250  # 2,000 submissions
KILL_AFTER = 700  # 201s before the kill


class Phones:
    """Phones sending their submissions as ODK Collect does: the same bytes again, with the same
    instanceID, after a lost connection or a 5xx, until the server answers; a 201 ends it."""

    def __init__(self, base_url: str):
        self.base_url = base_url
        self.lock = threading.Lock()
        self.created: dict[str, str] = {}  # instanceID -> the message of its 201
        self.refused: dict[str, tuple[int, str]] = {}  # anything else final (must stay empty)
        self.connection_errors = 0
        self.server_errors = Counter()

    def run(self, items: list[tuple[str, bytes, bytes]], deadline: float) -> None:
        session = requests.Session()
        auth = HTTPDigestAuth("awa", PASSWORD)
        for instance_id, xml, photo in items:
            while True:
                if time.monotonic() > deadline:
                    return
                files = {
                    "xml_submission_file": ("submission.xml", xml, "text/xml"),
                    "photo.jpg": ("photo.jpg", photo, "image/jpeg"),
                }
                try:
                    r = session.post(self.base_url + "/submission", files=files, auth=auth,
                                     headers=OPENROSA, timeout=30)  # fmt: skip
                except requests.RequestException:
                    with self.lock:
                        self.connection_errors += 1
                    session.close()
                    time.sleep(0.1)
                    continue
                if r.status_code >= 500:
                    with self.lock:
                        self.server_errors[r.status_code] += 1
                    time.sleep(0.1)
                    continue
                with self.lock:
                    if r.status_code == 201:
                        self.created[instance_id] = ALREADY if ALREADY in r.text else RECEIVED
                    else:
                        self.refused[instance_id] = (r.status_code, r.text[:300])
                break


@pytest.mark.slow
@pytest.mark.committing  # a server process, killed
def test_sigkill_of_the_server_mid_load_loses_and_doubles_nothing(app, version, tmp_path):
    """2,000 submissions with photos from 8 phones; gunicorn (master and both workers) and the
    submission processor (``clms process --follow``) are killed with SIGKILL after 700 of them
    got their 201, and started again; the phones retry."""
    payloads = []
    for c in range(CLIENTS):
        items = []
        for i in range(PER_CLIENT):
            instance_id = f"uuid:{uuid.uuid4()}"
            xml = household_xml(version, instance_id=instance_id, village=("V1", "V2")[i % 2],
                                household_code=f"HH-K{c}-{i}")  # fmt: skip
            items.append((instance_id, xml, os.urandom(2048)))
        payloads.append(items)
    sent = {iid: (xml, photo) for items in payloads for iid, xml, photo in items}
    env = server_env(app)
    server = Gunicorn(env, tmp_path / "gunicorn.log")
    processor = Process(clms_command("process", "--follow", "--interval", "0.2"), env,
                        tmp_path / "process.log")  # fmt: skip
    server.start()
    processor.start()
    phones = Phones(server.url)
    deadline = time.monotonic() + 150
    threads = [threading.Thread(target=phones.run, args=(items, deadline)) for items in payloads]
    try:
        for t in threads:
            t.start()
        wait_until(lambda: len(phones.created) >= KILL_AFTER, timeout=90, interval=0.01,
                   what=f"{KILL_AFTER} submissions accepted")  # fmt: skip
        server.kill()
        processor.kill()
        killed_at = len(phones.created)
        with session_scope(app) as s:
            waiting_at_kill = s.scalar(select(func.count()).where(Submission.status == "received"))
        time.sleep(1.0)  # the phones meet a closed port for a while
        server.start()
        processor.start()
        for t in threads:
            t.join()

        def processed() -> bool:
            with session_scope(app) as s:
                return not s.scalar(select(func.count()).where(Submission.status == "received"))

        wait_until(processed, timeout=90, interval=0.2, what=f"processing\n{processor.tail()}")
    finally:
        server.stop()
        processor.stop()

    print(
        f"killed after {killed_at} accepted ({waiting_at_kill} waiting for the processor); "
        f"{phones.connection_errors} requests cut or refused, {dict(phones.server_errors)} 5xx, "
        f"{sum(m == ALREADY for m in phones.created.values())} retries of stored submissions"
    )
    assert killed_at < len(sent), "the kill came after the last submission"
    assert phones.connection_errors > 0, "no request was cut by the kill"
    assert phones.refused == {}
    # every phone got its 201 in the end (they retry until they do)
    assert set(phones.created) == set(sent)
    # stored exactly once each, and nothing else stored
    counts = stored_counts(app)
    assert set(counts) == set(sent)
    assert max(counts.values()) == 1
    # whole: the XML byte for byte and its photo
    with session_scope(app) as s:
        rows = s.execute(
            select(Submission.instance_id, Submission.xml, SubmissionAttachment.name,
                   SubmissionAttachment.sha256, SubmissionAttachment.data)
            .outerjoin(SubmissionAttachment, SubmissionAttachment.submission_id == Submission.id)
        ).all()  # fmt: skip
    assert len(rows) == len(sent)
    for instance_id, xml, name, digest, data in rows:
        sent_xml, photo = sent[instance_id]
        assert xml == sent_xml
        assert (name, digest, data) == ("photo.jpg", sha(photo), photo)
    # processing is a queue (clms.intake.process): each submission processed once, none lost in the
    # batch the kill interrupted
    with session_scope(app) as s:
        assert set(s.scalars(select(Submission.status).distinct())) <= {"parsed", "review"}
        assert s.scalar(select(func.count()).select_from(Visit)) == len(sent)
        assert s.scalar(select(func.count(func.distinct(Visit.submission_id)))) == len(sent)


# --- 2. the database away; 3. the disk full (PostgreSQL: a server of this module's own) ----------


@pytest.fixture(scope="module")
def own_pg(request):
    """A PostgreSQL server these tests may stop, start and fill (PostgreSQL runs only)."""
    if "postgresql" not in request.config.getoption("--db"):
        pytest.skip("PostgreSQL tests not asked for (--db)")
    server = StoppablePostgres(Path(tempfile.mkdtemp(prefix="clms-pg-failures-")))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def pg_app(own_pg, tmp_path):
    """The application on a new, migrated database of ``own_pg`` with monitor awa and our forms."""
    name = f"clms_{uuid.uuid4().hex[:8]}"
    app = make_app(migrated(own_pg.create_database(name)), tmp_path)
    app.config["HOUSEHOLD_VERSION"] = populate(app)
    yield app
    app.extensions["clms_engine"].dispose()
    with own_pg.admin() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.postgres
def test_database_down_answers_503_then_the_same_submission_is_stored_once(pg_app, own_pg):
    phone = Phone(pg_app.test_client(), "awa", PASSWORD)
    xml = household_xml(pg_app.config["HOUSEHOLD_VERSION"])
    assert phone.head("/submission").status_code == 204  # signed in, database up
    own_pg.pause()
    try:
        for response in (
            phone.submit(xml),
            phone.submit(xml, {"photo.jpg": b"\xff\xd8 a photo"}),
            phone.get("/formList"),
            phone.head("/formList"),
            phone.head("/submission"),
        ):
            assert_openrosa_503(response)
    finally:
        own_pg.resume()

    first = phone.submit(xml)
    again = phone.submit(xml)

    assert first.status_code == 201 and RECEIVED in first.get_data(as_text=True)
    assert again.status_code == 201 and ALREADY in again.get_data(as_text=True)
    assert list(stored_counts(pg_app).values()) == [1]


@pytest.mark.postgres
@pytest.mark.slow
def test_scheduler_waits_out_a_database_outage_and_stops_when_its_lock_goes(
    pg_app, own_pg, tmp_path
):
    """``clms scheduler --wait`` started while the database is down stands by instead of dying,
    and runs the jobs once it is back; a database restart under a running scheduler takes its
    lock away, and it stops rather than risk running jobs twice (its supervisor starts it again,
    with --wait)."""
    phone = Phone(pg_app.test_client(), "awa", PASSWORD)
    assert phone.submit(household_xml(pg_app.config["HOUSEHOLD_VERSION"])).status_code == 201
    argv = clms_command(
        "scheduler", "--wait", "--poll", "0.2", "--run-now", "process_submissions"
    )  # fmt: skip
    scheduler = Process(argv, server_env(pg_app), tmp_path / "scheduler.log")

    def status() -> str:
        with session_scope(pg_app) as s:
            return s.scalar(select(Submission.status))

    own_pg.pause()
    try:
        scheduler.start()
        wait_until(lambda: "cannot be reached" in scheduler.tail(), timeout=30,
                   what=f"the scheduler standing by\n{scheduler.tail()}")  # fmt: skip
        time.sleep(1.0)
        assert scheduler.running(), scheduler.tail()
    finally:
        own_pg.resume()
    try:
        wait_until(lambda: status() != "received", timeout=30, what="the job after the outage")
        assert status() == "parsed"
        # the database restarts under the running scheduler: at its next job (within 10 s) it
        # finds its lock gone and stops
        own_pg.pause()
        own_pg.resume()
        assert scheduler.proc.wait(timeout=30) == 1
        assert "the scheduler lock was lost" in scheduler.tail()
    finally:
        scheduler.stop()


SLOW_ATTACHMENT = """
CREATE FUNCTION clms_test_slow_attachment() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.name = 'slow.jpg' THEN PERFORM pg_sleep(30); END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER clms_test_slow_attachment BEFORE INSERT ON submission_attachments
    FOR EACH ROW EXECUTE FUNCTION clms_test_slow_attachment();
"""


@pytest.mark.postgres
def test_connection_killed_between_statements_leaves_nothing_and_answers_503(pg_app, own_pg):
    """The submission row is written, then the database connection is terminated (by an
    administrator, or a server restart) while the attachment is being written."""
    dbname = pg_app.extensions["clms_engine"].url.database
    with own_pg.admin(dbname) as conn:
        conn.execute(SLOW_ATTACHMENT)
    phone = Phone(pg_app.test_client(), "awa", PASSWORD)
    xml = household_xml(pg_app.config["HOUSEHOLD_VERSION"], instance_id="uuid:killed-1")
    answers = []
    sender = threading.Thread(
        target=lambda: answers.append(phone.submit(xml, {"slow.jpg": b"photo bytes"}))
    )
    sender.start()
    with own_pg.admin() as conn:

        def sleeping_backend():
            return conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND wait_event = 'PgSleep'",
                (dbname,),
            ).fetchone()

        (pid,) = wait_until(sleeping_backend, timeout=30, what="the INSERT of the attachment")
        # the submission row is in, uncommitted, when the connection goes
        assert conn.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone()[0]
    sender.join(30)

    assert_openrosa_503(answers[0])
    assert stored_counts(pg_app) == Counter()
    with session_scope(pg_app) as s:
        assert s.scalar(select(func.count()).select_from(SubmissionAttachment)) == 0
    with own_pg.admin(dbname) as conn:
        conn.execute("DROP TRIGGER clms_test_slow_attachment ON submission_attachments")

    retried = phone.submit(xml, {"slow.jpg": b"photo bytes"})

    assert retried.status_code == 201 and RECEIVED in retried.get_data(as_text=True)
    assert stored_counts(pg_app) == Counter({"uuid:killed-1": 1})
    with session_scope(pg_app) as s:
        assert s.scalars(select(SubmissionAttachment.data)).all() == [b"photo bytes"]


@pytest.mark.postgres
def test_connection_dropped_while_signing_in_answers_503_in_each_format(pg_app, own_pg):
    """The database drops the connection (an administrator, a restart, a failover) just as the
    request reads who is signing in: a phone gets OpenRosa's 503, the API its JSON 503 and a
    page an HTML 503, each saying when to try again; never a 500 (the commit that used to end
    the sign-in hid the failure behind PendingRollbackError)."""
    from sqlalchemy import event

    from clms.auth import issue_token
    from clms.auth.users import add_user

    engine = pg_app.extensions["clms_engine"]
    armed = []

    @event.listens_for(engine, "before_cursor_execute")
    def _drop_before_the_user_is_read(conn, _cursor, statement, *_args):
        if armed and f"FROM {armed[0]}" in statement:
            table, *down = armed
            armed.clear()
            if down:  # the server goes away altogether, and stays away while the page is made
                own_pg.pause()
                return
            pid = conn.connection.dbapi_connection.info.backend_pid
            with own_pg.admin() as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", (pid,))

    with session_scope(pg_app) as s:
        from clms.models import User

        awa = s.scalar(select(User).where(User.username == "awa"))
        token, _row = issue_token(s, awa, "api", hours=1)
        add_user(s, username="olga", role="officer", password=PASSWORD, full_name="Olga Officer",
                 realm=pg_app.config["DIGEST_REALM"], scope_codes=["CI-D1"])  # fmt: skip
    pg_app.test_client_class = BrowserClient  # sends the form's CSRF token, as a page does
    web = pg_app.test_client()
    assert web.post("/login", data={"username": "awa", "password": PASSWORD}).status_code == 302
    officer = pg_app.test_client()
    assert officer.post("/login", data={"username": "olga", "password": PASSWORD}).status_code \
        == 302  # fmt: skip
    phone = Phone(pg_app.test_client(), "awa", PASSWORD)
    try:
        armed.append("users")
        assert_openrosa_503(phone.head("/submission"))
        armed.append("api_tokens")
        api = pg_app.test_client().get(
            "/api/v1/alerts", headers={"Authorization": f"Bearer {token}"}
        )
        assert api.status_code == 503 and int(api.headers["Retry-After"]) > 0
        assert api.get_json()["code"] == "503.1"
        armed.append("users")
        page = web.get("/")
        assert page.status_code == 503 and int(page.headers["Retry-After"]) > 0
        assert page.mimetype == "text/html" and "nothing was saved" in page.get_data(as_text=True)
        # signed in, the server gone as the page reads the alerts: the page's header still
        # names the person (from what was read of them), nothing goes back to the database
        armed.extend(["alerts", "down"])
        try:
            queue = officer.get("/alerts")
        finally:
            own_pg.resume()
        assert queue.status_code == 503 and int(queue.headers["Retry-After"]) > 0
        assert "nothing was saved" in queue.get_data(as_text=True)
        assert "Olga Officer" in queue.get_data(as_text=True)
    finally:
        event.remove(engine, "before_cursor_execute", _drop_before_the_user_is_read)
    # and everything works again at once
    assert phone.head("/submission").status_code == 204


def _tmpfs(size: str, owner: str | None = None):
    try:
        return small_tmpfs(size, owner)
    except PermissionError as exc:  # pragma: no cover - CI runs as root
        pytest.skip(str(exc))


def _full_disk_round(app, disk: Path) -> None:
    """Fill ``disk`` but 64 KiB, send a submission with a 400 KiB photo (503, nothing stored),
    free the space, send it again (201, stored once, whole)."""
    phone = Phone(app.test_client(), "awa", PASSWORD)
    # random, so PostgreSQL cannot compress it into the space left; under 500 KiB, so the test
    # client keeps the request in memory (it spools larger ones to a file that outlives the test)
    photo = os.urandom(400 * 1024)
    xml = household_xml(app.config["HOUSEHOLD_VERSION"], instance_id="uuid:full-disk-1")
    filler = fill(disk, leave=64 * 1024)

    refused = phone.submit(xml, {"photo.jpg": photo})

    assert_openrosa_503(refused)
    assert stored_counts(app) == Counter()
    with session_scope(app) as s:
        assert s.scalar(select(func.count()).select_from(SubmissionAttachment)) == 0
    filler.unlink()

    accepted = phone.submit(xml, {"photo.jpg": photo})

    assert accepted.status_code == 201 and RECEIVED in accepted.get_data(as_text=True)
    assert stored_counts(app) == Counter({"uuid:full-disk-1": 1})
    with session_scope(app) as s:
        (data,) = s.scalars(select(SubmissionAttachment.data)).all()
    assert sha(data) == sha(photo)


@pytest.mark.postgres
def test_full_disk_under_postgresql_leaves_no_partial_record(own_pg, tmp_path):
    """The submissions and their files live on a tablespace of a small tmpfs (PostgreSQL's WAL
    stays on the big disk, as an operator would keep it): writing them fails with ENOSPC."""
    owner = "postgres" if own_pg.as_postgres else None
    name = f"clms_{uuid.uuid4().hex[:8]}"
    with _tmpfs("8m", owner) as disk:
        space = disk / "tablespace"
        space.mkdir()
        if owner:
            import shutil

            shutil.chown(space, owner, owner)
        with own_pg.admin() as conn:
            conn.execute(f"CREATE TABLESPACE clms_small LOCATION '{space}'")
        app = None
        try:
            app = make_app(migrated(own_pg.create_database(name)), tmp_path)
            with own_pg.admin(name) as conn:
                for table in ("submissions", "submission_attachments"):
                    conn.execute(f"ALTER TABLE {table} SET TABLESPACE clms_small")
            app.config["HOUSEHOLD_VERSION"] = populate(app)
            _full_disk_round(app, disk)
        finally:
            if app is not None:
                app.extensions["clms_engine"].dispose()
            with own_pg.admin() as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                conn.execute("DROP TABLESPACE IF EXISTS clms_small")


def test_full_disk_under_sqlite_leaves_no_partial_record(request, tmp_path):
    """The default set-up: the SQLite database on a disk that fills up."""
    if "sqlite" not in request.config.getoption("--db"):
        pytest.skip("SQLite tests not asked for (--db)")
    with _tmpfs("16m") as disk:
        url = migrated(f"sqlite:///{disk / 'clms.sqlite3'}")
        app = make_app(url, tmp_path)
        try:
            app.config["HOUSEHOLD_VERSION"] = populate(app)
            app.extensions["clms_engine"].dispose()
            with contextlib.closing(sqlite3.connect(disk / "clms.sqlite3")) as conn:
                # an empty write-ahead log: the photo cannot fit in space the log already holds
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            _full_disk_round(app, disk)
            app.extensions["clms_engine"].dispose()
            with contextlib.closing(sqlite3.connect(disk / "clms.sqlite3")) as conn:
                assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        finally:
            app.extensions["clms_engine"].dispose()


def multipart(xml: bytes, files: dict[str, bytes]) -> tuple[bytes, str]:
    """A POST body as Collect sends it, built here: the test client would spool a large one to
    a temporary file of its own, on the very disk the test fills."""
    boundary = uuid.uuid4().hex
    parts = [("xml_submission_file", "submission.xml", "text/xml", xml)]
    parts += [(name, name, "application/octet-stream", data) for name, data in files.items()]
    body = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"'
        f"\r\nContent-Type: {ctype}\r\n\r\n".encode()
        + data
        + b"\r\n"
        for name, filename, ctype, data in parts
    )
    return body + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def test_full_temporary_disk_answers_503_and_stores_nothing(app, version, monkeypatch):
    """A large photo is spooled to a temporary file while the request is read (werkzeug's form
    parser, above 500 KiB); with the temporary folder's disk full that write fails with ENOSPC."""
    phone = Phone(app.test_client(), "awa", PASSWORD)
    photo = os.urandom(1024 * 1024)
    xml = household_xml(version, instance_id="uuid:tmp-full-1")
    body, content_type = multipart(xml, {"photo.jpg": photo})
    with _tmpfs("2m") as disk:
        monkeypatch.setattr(tempfile, "tempdir", str(disk))
        filler = fill(disk, leave=64 * 1024)

        with warnings.catch_warnings():
            # werkzeug never closes the temporary file it could not fill: the server drops it
            # (clms._disk_full), and Python warns that it was not closed
            warnings.simplefilter("ignore", ResourceWarning)
            refused = phone.request("POST", "/submission", data=body, content_type=content_type)

        assert_openrosa_503(refused)
        assert stored_counts(app) == Counter()
        filler.unlink()

        accepted = phone.request("POST", "/submission", data=body, content_type=content_type)

    assert accepted.status_code == 201, accepted.get_data(as_text=True)
    assert stored_counts(app) == Counter({"uuid:tmp-full-1": 1})
    with session_scope(app) as s:
        assert s.scalars(select(SubmissionAttachment.sha256)).all() == [sha(photo)]


# --- 4. the scheduler killed mid-pull ------------------------------------------------------------

REMOTE_EACH = 100  # submissions on the Central double and on the Kobo double


@pytest.fixture
def slow_doubles():
    """An ODK Central and a KoboToolbox double, each answering every request after 15 ms, so a
    pull of 100 submissions in pages of 20 lasts long enough to be killed in the middle."""
    central, kobo = CentralDouble(), KoboDouble()
    for double in (central, kobo):
        double.app.before_request(lambda: time.sleep(0.015))
        double.start()
    yield central, kobo
    for double in (central, kobo):
        double.stop()


@pytest.fixture
def no_jobstore(app):
    """The scheduler's own table is not one of the models: drop it after the test."""
    yield
    with app.extensions["clms_engine"].begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS apscheduler_jobs"))


@pytest.mark.slow
@pytest.mark.committing  # a scheduler process, killed
def test_scheduler_killed_mid_pull_resumes_from_its_cursors(
    app, version, slow_doubles, no_jobstore, tmp_path
):
    central, kobo = slow_doubles
    for n in range(REMOTE_EACH):
        central.add(household_xml(version, instance_id=f"uuid:central-{n}",
                                  household_code=f"HH-C-{n}"))  # fmt: skip
        kobo.add(household_xml(version, instance_id=f"uuid:kobo-{n}",
                               household_code=f"HH-K-{n}"))  # fmt: skip
    key = app.config["CREDENTIALS_KEY"]
    with session_scope(app) as s:
        # pulled in name order: Central first, then Kobo
        add_source(s, "a-central", "central", central.url, central.xml_form_id,
                   {"email": central.email, "password": central.password},
                   project_id=str(central.project_id), key=key)  # fmt: skip
        add_source(s, "b-kobo", "kobo", kobo.url, kobo.asset_uid, {"token": kobo.token}, key=key)
    env = server_env(app, CLMS_PULL_PAGE_SIZE="20", CLMS_PULL_MINUTES="60")
    argv = clms_command(
        "scheduler", "--wait", "--poll", "0.2",
        "--run-now", "pull_sources", "--run-now", "process_submissions",
    )  # fmt: skip
    scheduler = Process(argv, env, tmp_path / "scheduler.log")

    def stored() -> int:
        with session_scope(app) as s:
            return s.scalar(select(func.count()).select_from(Submission))

    kills = []
    try:
        # killed twice: in the middle of the Central pull, then of the Kobo pull
        for threshold in (40, REMOTE_EACH + 40):
            scheduler.start()
            wait_until(lambda t=threshold: stored() >= t, timeout=60, interval=0.02,
                       what=f"{threshold} submissions pulled\n{scheduler.tail()}")  # fmt: skip
            scheduler.kill()
            kills.append(stored())
        scheduler.start()
        wait_until(lambda: stored() >= 2 * REMOTE_EACH, timeout=60, what="every submission")

        def processed() -> bool:
            with session_scope(app) as s:
                return not s.scalar(select(func.count()).where(Submission.status == "received"))

        # process_submissions runs every 10 s: the last pulled ones are processed by then
        wait_until(processed, timeout=40, interval=0.2, what="every submission processed")
    finally:
        stopped = scheduler.stop()

    assert stopped == 0, scheduler.tail()  # SIGTERM: the running jobs finished, then it stopped

    assert kills[0] < REMOTE_EACH and REMOTE_EACH < kills[1] < 2 * REMOTE_EACH, kills
    counts = stored_counts(app)
    expected = {f"uuid:central-{n}" for n in range(REMOTE_EACH)}
    expected |= {f"uuid:kobo-{n}" for n in range(REMOTE_EACH)}
    assert set(counts) == expected and max(counts.values()) == 1
    with session_scope(app) as s:
        sources = {p.name: p for p in s.scalars(select(PullSource))}
        assert sources["a-central"].cursor == central.submissions[-1].submission_date
        assert sources["b-kobo"].cursor == kobo.submissions[-1].submission_time
        # counted once each, in the same transaction as the submission it counts
        assert [sources[n].pulled_total for n in ("a-central", "b-kobo")] == [REMOTE_EACH] * 2
        assert s.scalar(select(func.count()).select_from(Visit)) == 2 * REMOTE_EACH
        assert s.scalar(select(func.count(func.distinct(Visit.submission_id)))) == 2 * REMOTE_EACH
        # the two killed pulls stay visible as stopped midway; the third ran to the end
        pulls = s.scalars(select(JobRun.ok).where(JobRun.job == "pull_sources").order_by(JobRun.id))
        assert pulls.all() == [None, None, True]


def test_scheduler_run_now_names_only_known_jobs(runner):
    from clms.jobs.cli import scheduler_command

    result = runner.invoke(scheduler_command, ["--run-now", "pull_sources", "--run-now", "pul"])

    assert result.exit_code == 2
    assert "no job called 'pul'" in result.output and "pull_sources" in result.output
