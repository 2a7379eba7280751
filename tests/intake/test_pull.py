"""Pulling submissions from ODK Central and KoboToolbox (forms.pull, clms.intake.pull), its CLI
and its web pages.

The remote servers are the doubles in tests/central_double.py and tests/kobo_double.py, real HTTP
servers on 127.0.0.1 that answer as the published APIs do; everything on our side is real.
"""

from __future__ import annotations

import datetime as dt
import json
import logging

import pytest
from sqlalchemy import select

from clms.db import session_scope
from clms.intake.pull import pull_all, pull_source
from clms.models import Household, PullSource, Submission, SubmissionAttachment, Visit
from forms.credentials import CredentialsError, decrypt_credentials, encrypt_credentials
from forms.pull.cli import sources_group
from forms.pull.clients import ATTEMPTS, KoboClient
from forms.pull.run import PullResult
from forms.pull.sources import SourceInvalid, add_source, list_sources, update_source
from tests.central_double import iso_ms
from tests.conftest import PASSWORD
from tests.kobo_double import KoboDouble
from tests.submissions import child, household_xml

UTC = dt.UTC


@pytest.fixture
def kobo():
    double = KoboDouble().start()
    yield double
    double.stop()


def add_central(app, double, name="nawa-central", password=None, project_id=None) -> int:
    with session_scope(app) as s:
        source = add_source(
            s, name, "central", double.url, double.xml_form_id,
            {"email": double.email, "password": password or double.password},
            project_id=str(project_id or double.project_id), key=app.config["CREDENTIALS_KEY"],
        )  # fmt: skip
        return source.id


def add_kobo(app, double, name="nawa-kobo", token=None) -> int:
    with session_scope(app) as s:
        source = add_source(
            s, name, "kobo", double.url, double.asset_uid, {"token": token or double.token},
            key=app.config["CREDENTIALS_KEY"],
        )  # fmt: skip
        return source.id


def pull(app, source_id, lookback=None, **kw):
    """Pull with sleeps recorded, not slept (``lookback``: PULL_LOOKBACK_MINUTES, 0 to see the
    cursor's own boundary)."""
    if lookback is not None:
        app.config["PULL_LOOKBACK_MINUTES"] = lookback
    sleeps: list[float] = []
    result = pull_source(
        app.extensions["clms_sessionmaker"], source_id, app.config, sleep=sleeps.append, **kw
    )
    return result, sleeps


def visit(version, n: int, prefix="C", **kw) -> bytes:
    return household_xml(
        version, instance_id=f"uuid:{prefix}-{n}", household_code=f"HH-{prefix}-{n}", **kw
    )


def stored_ids(app) -> list[str]:
    with session_scope(app) as s:
        return s.scalars(select(Submission.instance_id).order_by(Submission.id)).all()


def source_row(app, source_id) -> PullSource:
    with session_scope(app) as s:
        row = s.get(PullSource, source_id)
        s.expunge(row)
        return row


# --- ODK Central -------------------------------------------------------------------------------


def test_central_full_pull_follows_every_page_and_stores_oldest_first(app, version, central):
    xmls = [visit(version, i) for i in range(7)]
    for xml in xmls:
        central.add(xml)
    source_id = add_central(app, central)

    result, sleeps = pull(app, source_id, page_size=3)

    assert result.ok, result.error
    assert (result.fetched, result.stored, result.duplicates, result.problem_count) == (7, 7, 0, 0)
    # three pages of new submissions, then one each of edits and reviews, and of deletions
    assert result.pages == 5 and result.expected == 7 and sleeps == []
    assert result.cursor == central.submissions[-1].submission_date
    odata = [r for r in central.requests if ".svc/Submissions" in r and "updatedAt" not in r
             and "deletedAt" not in r]  # fmt: skip
    assert len(odata) == 3 and "skiptoken" not in odata[0]
    assert all("skiptoken" in r for r in odata[1:])  # followed @odata.nextLink
    assert not any("orderby" in r for r in odata)  # Central refuses $orderby with $skiptoken
    assert central.xml_requests() == [f"uuid:C-{i}" for i in range(7)]  # oldest first
    assert stored_ids(app) == [f"uuid:C-{i}" for i in range(7)]
    with session_scope(app) as s:
        rows = s.scalars(select(Submission).order_by(Submission.id)).all()
        assert [r.xml for r in rows] == xmls  # byte for byte
        assert {(r.source, r.status, r.device_id) for r in rows} == {
            ("central", "received", "collect:TEST123")
        }
    row = source_row(app, source_id)
    assert row.cursor == result.cursor and row.pulled_total == 7
    assert row.last_pull_at is not None and row.last_success_at >= row.last_pull_at
    assert row.last_error is None


def test_central_second_pull_asks_only_from_the_cursor(app, version, central):
    for i in range(3):
        central.add(visit(version, i))
    source_id = add_central(app, central)
    first, _ = pull(app, source_id)
    assert first.stored == 3
    for i in range(3, 5):
        central.add(visit(version, i))
    central.requests.clear()

    second, _ = pull(app, source_id, lookback=0)

    assert second.ok and (second.stored, second.duplicates) == (2, 1)
    # the newest already stored is seen again (at the cursor), nothing older is fetched
    assert central.xml_requests() == ["uuid:C-2", "uuid:C-3", "uuid:C-4"]
    listing = next(r for r in central.requests if ".svc/Submissions" in r)
    assert "submissionDate+ge+" + first.cursor.replace(":", "%3A") in listing
    assert stored_ids(app) == [f"uuid:C-{i}" for i in range(5)]
    assert source_row(app, source_id).pulled_total == 5

    third, _ = pull(app, source_id, lookback=0)
    assert (third.fetched, third.stored, third.duplicates) == (1, 0, 1)


def test_a_submission_pushed_by_a_phone_and_pulled_is_stored_once(app, version, phone, central):
    pushed = visit(version, 1, prefix="BOTH")
    assert phone.submit(pushed).status_code == 201
    central.add(pushed)  # the same bytes reached Central too
    central.add(visit(version, 2, prefix="BOTH"))
    source_id = add_central(app, central)

    result, _ = pull(app, source_id)

    assert result.ok and (result.stored, result.duplicates, result.problem_count) == (1, 1, 0)
    with session_scope(app) as s:
        rows = s.execute(select(Submission.instance_id, Submission.source)).all()
        assert sorted(rows) == [("uuid:BOTH-1", "openrosa"), ("uuid:BOTH-2", "central")]
    # and the other way round: pulled first, then the phone sends it (a safe retry, 201)
    assert phone.submit(visit(version, 2, prefix="BOTH")).status_code == 201
    assert len(stored_ids(app)) == 2


def test_pulled_household_visits_are_processed_like_pushed_ones(
    app, version, phone, central, process
):
    assert phone.submit(visit(version, 1, prefix="PUSH")).status_code == 201
    central.add(
        visit(version, 1, prefix="PULL", village="V2", children=[child(child_name="Ama", age=13)])
    )
    result, _ = pull(app, add_central(app, central))
    assert result.stored == 1

    processed = process()

    assert (processed.parsed, processed.review, processed.failed) == (2, 0, 0)
    with session_scope(app) as s:
        assert set(s.scalars(select(Submission.status))) == {"parsed"}
        codes = set(s.scalars(select(Household.code)))
        assert codes == {"HH-PUSH-1", "HH-PULL-1"}
        kinds = s.execute(
            select(Submission.source, Visit.kind).join(Visit, Visit.submission_id == Submission.id)
        ).all()
        assert sorted(kinds) == [("central", "household"), ("openrosa", "household")]


def test_central_attachments_are_downloaded_and_missing_ones_skipped(app, version, central):
    central.add(visit(version, 1), attachments={"photo.jpg": b"\xff\xd8jpeg", "audio.m4a": None})
    result, _ = pull(app, add_central(app, central))
    assert result.stored == 1
    with session_scope(app) as s:
        files = s.execute(
            select(SubmissionAttachment.name, SubmissionAttachment.content_type,
                   SubmissionAttachment.data)
        ).all()  # fmt: skip
    assert files == [("photo.jpg", "image/jpeg", b"\xff\xd8jpeg")]


def test_retries_on_429_and_503_honouring_retry_after(app, version, central):
    central.add(visit(version, 1))
    central.add(visit(version, 2))
    central.fail(2, 429, retry_after=7)
    central.fail(1, 503)
    result, sleeps = pull(app, add_central(app, central))
    assert result.ok and result.stored == 2
    # Retry-After twice, then the third try's own backoff (1, 2, 4 ... seconds)
    assert sleeps == [7.0, 7.0, 4.0]


def test_retries_are_bounded_and_the_cursor_is_kept(app, version, central):
    central.add(visit(version, 1))
    source_id = add_central(app, central)
    central.fail(100, 503, match="/v1/sessions")
    result, sleeps = pull(app, source_id)
    assert not result.ok
    assert "ODK Central answered 503" in result.error and f"{ATTEMPTS} times" in result.error
    assert sleeps == [1.0, 2.0, 4.0, 8.0]
    assert sum("/v1/sessions" in r for r in central.requests) == ATTEMPTS
    row = source_row(app, source_id)
    assert row.last_error == result.error and row.last_success_at is None and row.cursor is None


def test_a_long_wait_asked_by_the_server_is_left_for_the_next_pull(app, version, central):
    central.add(visit(version, 1))
    central.fail(1, 429, retry_after=3600)
    result, sleeps = pull(app, add_central(app, central))
    assert "asked to wait 3600 s" in result.error and sleeps == []


def test_refused_credentials_stop_that_source_and_the_others_are_pulled(
    app, version, central, kobo
):
    central.add(visit(version, 1))
    kobo.add(visit(version, 2, prefix="K"))
    kobo.add(visit(version, 3, prefix="K"))
    bad = add_central(app, central, name="a-central", password="not the password")
    add_kobo(app, kobo, name="b-kobo")
    sleeps: list[float] = []

    results = pull_all(app.extensions["clms_sessionmaker"], app.config, sleep=sleeps.append)

    assert set(results) == {"a-central", "b-kobo"}
    error = results["a-central"].error
    assert error == (
        "ODK Central refused the credentials for source 'a-central' (401.2 Could not "
        "authenticate with the provided credentials.): check the email and password"
    )
    assert sleeps == [] and sum("/v1/sessions" in r for r in central.requests) == 1  # no retry
    assert results["b-kobo"].ok and results["b-kobo"].stored == 2
    row = source_row(app, bad)
    assert row.last_error == error and row.last_success_at is None and row.last_pull_at
    assert stored_ids(app) == ["uuid:K-2", "uuid:K-3"]


def test_a_source_disabled_is_left_out_and_a_failing_key_stops_only_its_source(
    app, version, central, kobo
):
    kobo.add(visit(version, 1, prefix="K"))
    central.add(visit(version, 1))
    add_kobo(app, kobo)
    central_id = add_central(app, central)
    with session_scope(app) as s:
        # sealed under another key: as if CLMS_CREDENTIALS_KEY had changed
        s.get(PullSource, central_id).credentials = encrypt_credentials({"x": "y"}, "other")
    results = pull_all(app.extensions["clms_sessionmaker"], app.config, sleep=lambda _s: None)
    assert results["nawa-central"].error.startswith(
        "credentials cannot be decrypted: was CLMS_CREDENTIALS_KEY changed?"
    )
    assert results["nawa-kobo"].stored == 1

    with session_scope(app) as s:
        update_source(s, central_id, enabled=False, key=app.config["CREDENTIALS_KEY"])
    results = pull_all(app.extensions["clms_sessionmaker"], app.config)
    assert set(results) == {"nawa-kobo"}


def test_a_bug_in_one_source_is_recorded_and_the_others_are_pulled(
    app, version, central, kobo, monkeypatch
):
    """Fault injection: ingest raising for Central's submissions stands for any bug."""
    import forms.pull.run

    real = forms.pull.run.ingest_submission

    def failing(session, incoming, *a, **kw):
        if incoming.source == "central":
            raise RuntimeError("simulated fault")
        return real(session, incoming, *a, **kw)

    monkeypatch.setattr(forms.pull.run, "ingest_submission", failing)
    central.add(visit(version, 1))
    kobo.add(visit(version, 2, prefix="K"))
    central_id = add_central(app, central, name="a")
    add_kobo(app, kobo, name="b")
    results = pull_all(app.extensions["clms_sessionmaker"], app.config)
    assert results["a"].error == "unexpected error: RuntimeError"
    assert results["b"].ok and results["b"].stored == 1
    row = source_row(app, central_id)
    assert row.last_error == "unexpected error: RuntimeError: simulated fault"
    assert row.cursor is None and row.last_pull_at is not None


def test_central_forbidden_and_unknown_form_say_what_to_check(app, version, central):
    central.add(visit(version, 1))
    source_id = add_central(app, central, project_id=99)
    result, _ = pull(app, source_id)
    assert "ODK Central has nothing at GET /v1/projects/99/forms/clms_household_visit.svc" in (
        result.error
    )
    assert "check project 99 and form 'clms_household_visit'" in result.error

    central.fail(1, 403, match=".svc", body=json.dumps({"code": 403.1, "message": "No rights."}))
    result, _ = pull(app, add_central(app, central, name="other"))
    assert result.error.startswith("ODK Central refused access for source 'other' (403.1 No rig")


def test_an_expired_central_session_is_renewed_once(app, version, central):
    for i in range(3):
        central.add(visit(version, i))

    def expire_once(result):
        if result.fetched == 1:
            central.expire_sessions()

    result, _ = pull(app, add_central(app, central), progress=expire_once)
    assert result.ok and result.stored == 3
    assert sum("POST /v1/sessions" in r for r in central.requests) == 2
    assert central.requests[-1] == "DELETE /v1/sessions/current"  # the renewed one, ended


def test_conflicts_and_unknown_forms_are_reported_and_the_pull_goes_on(
    app, version, phone, central
):
    assert phone.submit(visit(version, 1, head="Kouassi Yao")).status_code == 201
    central.add(visit(version, 0))
    central.add(visit(version, 1, head="Changed on Central"))  # same instanceID, other XML
    central.add(visit(version, 2).replace(b'id="clms_household_visit"', b'id="someone_elses"'))
    central.add(visit(version, 3))
    source_id = add_central(app, central)

    result, _ = pull(app, source_id)

    assert result.ok and (result.fetched, result.stored, result.problem_count) == (4, 2, 2)
    assert [(p["instance_id"], p["code"]) for p in result.problems] == [
        ("uuid:C-1", "409.1"),
        ("uuid:C-2", "404.1"),
    ]
    assert "A different submission with instanceID uuid:C-1" in result.problems[0]["message"]
    assert result.cursor == central.submissions[-1].submission_date
    assert stored_ids(app) == ["uuid:C-1", "uuid:C-0", "uuid:C-3"]
    row = source_row(app, source_id)
    assert row.last_error.startswith(
        "2 submissions not stored, waiting to be tried again: uuid:C-1: 409.1 A different"
    )
    assert "uuid:C-2: 404.1 There is no form 'someone_elses'" in row.last_error
    assert row.last_success_at is not None and row.pulled_total == 2
    with session_scope(app) as s:
        kept = s.scalar(select(Submission.xml).where(Submission.instance_id == "uuid:C-1"))
        assert b"Kouassi Yao" in kept  # the first one stays


def test_a_pull_that_breaks_midway_resumes_from_its_cursor(app, version, central):
    for i in range(6):
        central.add(visit(version, i))
    source_id = add_central(app, central)
    central.fail(100, 500, after=3, match=".xml")  # the server breaks after three submissions

    broken, _ = pull(app, source_id)

    assert not broken.ok and "answered 500 (Internal Server Error)" in broken.error
    assert broken.stored == 3 and stored_ids(app) == ["uuid:C-0", "uuid:C-1", "uuid:C-2"]
    assert source_row(app, source_id).cursor == central.submissions[2].submission_date
    central.heal()

    resumed, _ = pull(app, source_id, lookback=0)

    assert resumed.ok and (resumed.stored, resumed.duplicates) == (3, 1)
    assert stored_ids(app) == [f"uuid:C-{i}" for i in range(6)]
    assert source_row(app, source_id).pulled_total == 6


def test_submissions_sharing_the_cursors_time_are_never_skipped(app, version, central):
    """Central keeps microseconds and shows milliseconds: asking for what is strictly after the
    cursor would skip C-2, created at the very same time as C-1."""
    at = dt.datetime(2026, 11, 21, 9, 0, 0, 123456, tzinfo=UTC)
    central.add(visit(version, 0), at=at - dt.timedelta(seconds=1))
    central.add(visit(version, 1), at=at)
    central.add(visit(version, 2), at=at)
    source_id = add_central(app, central)
    central.fail(100, 503, after=2, match=".xml")
    broken, _ = pull(app, source_id, attempts=1)
    assert broken.stored == 2 and source_row(app, source_id).cursor == iso_ms(at)
    central.heal()

    resumed, _ = pull(app, source_id)

    assert resumed.stored == 1 and stored_ids(app) == ["uuid:C-0", "uuid:C-1", "uuid:C-2"]


# --- KoboToolbox -------------------------------------------------------------------------------


def test_kobo_pull_follows_next_and_fetches_each_xml_and_attachment(app, version, kobo):
    for i in range(5):
        kobo.add(visit(version, i, prefix="K"), attachments={"photo.jpg": b"img%d" % i})
    source_id = add_kobo(app, kobo)

    result, _ = pull(app, source_id, page_size=2)

    assert result.ok and (result.fetched, result.stored, result.pages) == (5, 5, 3)
    assert result.expected == 5 and result.cursor == kobo.submissions[-1].submission_time
    listings = [
        r
        for r in kobo.requests
        if r.startswith("GET /api/v2/assets/aXyZ123abc/data/?")
        and "sort=%7B%22_submission_time" in r  # not the re-listing by _id (kobo_changes)
    ]
    assert len(listings) == 3 and "start=2" in listings[1] and "start=4" in listings[2]
    assert kobo.xml_requests() == [s.id for s in kobo.submissions]
    with session_scope(app) as s:
        rows = s.scalars(select(Submission).order_by(Submission.id)).all()
        assert [r.xml for r in rows] == [
            b'<?xml version="1.0" encoding="utf-8"?>' + sub.xml for sub in kobo.submissions
        ]  # what Kobo gives: the XML with the declaration it adds
        assert {r.source for r in rows} == {"kobo"}
        files = s.execute(select(SubmissionAttachment.name, SubmissionAttachment.data)).all()
        assert sorted(files) == [("photo.jpg", b"img%d" % i) for i in range(5)]


def test_kobo_second_pull_asks_from_the_cursor_second(app, version, kobo):
    for i in range(2):
        kobo.add(visit(version, i, prefix="K"))
    source_id = add_kobo(app, kobo)
    first, _ = pull(app, source_id)
    kobo.add(visit(version, 2, prefix="K"))
    kobo.requests.clear()

    second, _ = pull(app, source_id, lookback=0)

    assert (second.stored, second.duplicates) == (1, 1)
    listing = next(r for r in kobo.requests if "/data/?" in r)
    query = json.dumps({"_submission_time": {"$gte": first.cursor}})
    assert json.loads(_param(listing, "query")) == json.loads(query)
    assert json.loads(_param(listing, "sort")) == {"_submission_time": 1, "_id": 1}
    assert kobo.xml_requests() == [s.id for s in kobo.submissions[1:]]


def test_kobo_copy_of_a_pushed_submission_is_recognised_despite_the_added_declaration(
    app, version, phone, kobo
):
    pushed = visit(version, 1, prefix="K")
    assert not pushed.startswith(b"<?xml")
    assert phone.submit(pushed).status_code == 201
    kobo.add(pushed)
    result, _ = pull(app, add_kobo(app, kobo))
    assert (result.stored, result.duplicates, result.problem_count) == (0, 1, 0)
    assert stored_ids(app) == ["uuid:K-1"]


def test_kobo_wrong_token_and_throttling(app, version, kobo):
    kobo.add(visit(version, 1, prefix="K"))
    bad, sleeps = pull(app, add_kobo(app, kobo, name="bad", token="not-the-token"))
    assert bad.error == (
        "KoboToolbox refused the API token for source 'bad' (401 Invalid token.): check the "
        "token (Account settings > Security > API key)"
    )
    assert sleeps == []

    kobo.fail(2, 429, retry_after=3)
    good, sleeps = pull(app, add_kobo(app, kobo))
    assert good.ok and good.stored == 1 and sleeps == [3.0, 3.0]


def test_kobo_pull_broken_midway_resumes_within_the_same_second(app, version, kobo):
    at = dt.datetime(2026, 11, 21, 9, 0, 0, tzinfo=UTC)
    for i in range(4):
        kobo.add(visit(version, i, prefix="K"), at=at if i else at - dt.timedelta(seconds=5))
    source_id = add_kobo(app, kobo)
    kobo.fail(100, 500, after=2, match="format=xml")
    broken, _ = pull(app, source_id, page_size=2)
    assert broken.stored == 2 and "KoboToolbox answered 500" in broken.error
    kobo.heal()

    resumed, _ = pull(app, source_id, page_size=2, lookback=0)

    assert resumed.ok and (resumed.stored, resumed.duplicates) == (2, 1)
    assert stored_ids(app) == [f"uuid:K-{i}" for i in range(4)]


# --- credentials -------------------------------------------------------------------------------


def test_credentials_are_encrypted_at_rest(app, central):
    source_id = add_central(app, central)
    with app.extensions["clms_engine"].connect() as conn:
        raw = conn.execute(
            select(PullSource.__table__.c.credentials).where(PullSource.id == source_id)
        ).scalar_one()
    assert central.password.encode() not in bytes(raw)
    assert central.email.encode() not in bytes(raw)
    creds = decrypt_credentials(raw, app.config["CREDENTIALS_KEY"])
    assert creds == {"email": central.email, "password": central.password}
    assert central.password not in repr(creds) and central.password not in str(creds)
    with pytest.raises(CredentialsError, match="was CLMS_CREDENTIALS_KEY changed"):
        decrypt_credentials(raw, "another key")


def test_the_credentials_key_is_given_by_the_caller_and_a_missing_one_is_refused(app, central):
    """The operations never read the application: the view, command or test passes its
    CREDENTIALS_KEY, and without one nothing is encrypted or decrypted."""
    source_id = add_central(app, central)
    with session_scope(app) as s:
        with pytest.raises(ValueError, match="no credentials key"):
            add_source(
                s, "keyless", "kobo", "https://kf.example.org", "aXyZ", {"token": "t"}, key=None
            )
        with pytest.raises(ValueError, match="no credentials key"):
            update_source(s, source_id, credentials={"password": "new"}, key="")
        # nothing to encrypt: no key needed
        assert update_source(s, source_id, name="renamed", key=None).name == "renamed"
    with pytest.raises(TypeError):
        add_source(None, "x", "kobo", "https://kf.example.org", "aXyZ", {"token": "t"})


def test_secrets_never_reach_logs_errors_cli_or_pages(
    app, version, central, kobo, caplog, client, make_user
):
    central.add(visit(version, 1))
    kobo.add(visit(version, 2, prefix="K"))
    add_central(app, central)
    add_kobo(app, kobo)
    # a server that echoes what it was sent in its errors, and fails until the tries run out
    echo = json.dumps({"code": 500.1, "message": f"cannot log in {central.password}"})
    central.fail(100, 500, match="/v1/sessions", body=echo)
    kobo.fail(100, 503, match="format=xml", body=json.dumps({"detail": f"bad {kobo.token}"}))
    caplog.set_level(logging.DEBUG)

    results = pull_all(app.extensions["clms_sessionmaker"], app.config, sleep=lambda _s: None)

    assert "cannot log in ***" in results["nawa-central"].error
    assert "bad ***" in results["nawa-kobo"].error
    runner = app.test_cli_runner()
    listing = runner.invoke(sources_group, ["list"]).output
    assert "cannot log in ***" in listing
    make_user("ada", "admin")
    client.post("/login", data={"username": "ada", "password": PASSWORD})
    pages = [client.get("/sources").get_data(as_text=True)]
    with session_scope(app) as s:
        ids = [src.id for src in list_sources(s)]
    pages += [client.get(f"/sources/{i}/edit").get_data(as_text=True) for i in ids]
    assert "cannot log in ***" in pages[0]
    with session_scope(app) as s:
        stored = " ".join(src.last_error or "" for src in list_sources(s))
    for secret in (central.password, kobo.token):
        assert secret not in caplog.text
        assert secret not in stored
        assert secret not in listing
        assert all(secret not in page for page in pages)
        assert all(secret not in repr(r) for r in results.values())


# --- managing sources --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"kind": "odk"}, "kind", "must be one of central, kobo"),
        ({"base_url": "ftp://x.org"}, "base_url", "must be an http:// or https:// address"),
        ({"base_url": "https://u:p@x.org"}, "base_url", "must not hold a user name"),
        ({"project_id": None}, "project_id", "is required for ODK Central"),
        ({"project_id": "three"}, "project_id", "must be a number"),
        ({"remote_form_id": "a/b"}, "remote_form_id", "no spaces or '/'"),
        ({"name": " "}, "name", "is required"),
        ({"credentials": {"email": "pull@example.org"}}, "password", "is required"),
        ({"name": "taken"}, "name", "there is already a source called 'taken'"),
    ],
)
def test_adding_a_source_checks_each_field(app, changes, field, message):
    args = {
        "name": "nawa", "kind": "central", "base_url": "https://central.example.org",
        "remote_form_id": "clms_household_visit", "project_id": "3",
        "credentials": {"email": "pull@example.org", "password": "pw"},
    }  # fmt: skip
    key = app.config["CREDENTIALS_KEY"]
    with session_scope(app) as s:
        add_source(s, **{**args, "name": "taken"}, key=key)
    with session_scope(app) as s, pytest.raises(SourceInvalid) as caught:
        add_source(s, **{**args, **changes}, key=key)
    assert message in caught.value.errors[field]
    assert f"{field}: " in str(caught.value)


def test_updating_keeps_blank_credentials_and_restarts_the_cursor_when_moved(app, version, central):
    key = app.config["CREDENTIALS_KEY"]
    central.add(visit(version, 1))
    source_id = add_central(app, central, password="wrong at first")
    assert "refused the credentials" in pull(app, source_id)[0].error
    with session_scope(app) as s:
        update_source(
            s, source_id, credentials={"email": "", "password": central.password}, key=key
        )
    assert pull(app, source_id)[0].stored == 1
    with session_scope(app) as s:  # blank keeps what is stored
        update_source(
            s, source_id, name="renamed", credentials={"email": "", "password": ""}, key=key
        )
    assert source_row(app, source_id).cursor is not None
    assert pull(app, source_id)[0].ok
    with session_scope(app) as s:  # the API root pasted: the same server, the cursor stays
        update_source(s, source_id, base_url=central.url + "/v1/", key=key)
    assert source_row(app, source_id).cursor is not None
    other = central.url.replace("127.0.0.1", "localhost")
    with session_scope(app) as s:  # another server: its cursor means nothing there
        update_source(s, source_id, base_url=other + "/", key=key)
    row = source_row(app, source_id)
    assert row.cursor is None and row.base_url == other and row.name == "renamed"
    assert pull(app, source_id)[0].duplicates == 1


# --- the CLI -----------------------------------------------------------------------------------


def test_cli_adds_lists_pulls_and_disables(app, version, central, kobo):
    central.add(visit(version, 1))
    central.add(visit(version, 2))
    kobo.add(visit(version, 3, prefix="K"))
    runner = app.test_cli_runner()
    add = [
        "add", "nawa", "--kind", "central", "--url", central.url, "--form", "clms_household_visit",
        "--project", "7", "--email", central.email,
    ]  # fmt: skip
    result = runner.invoke(sources_group, add, input=central.password + "\n")
    assert result.exit_code == 0, result.output
    assert "Added source nawa (central" in result.output
    result = runner.invoke(
        sources_group,
        ["add", "kb", "--kind", "kobo", "--url", kobo.url, "--form", kobo.asset_uid],
        input=kobo.token + "\n",
    )
    assert result.exit_code == 0, result.output

    listing = runner.invoke(sources_group, ["list"]).output
    assert f"nawa: ODK Central {central.url} project 7 form clms_household_visit" in listing
    assert f"kb: KoboToolbox {kobo.url} asset aXyZ123abc" in listing
    assert "cursor -; last pull never" in listing

    result = runner.invoke(sources_group, ["pull"])
    assert result.exit_code == 0, result.output
    assert "Pulled source 'nawa': 2 fetched, 2 new, 0 already stored" in result.output
    assert "Pulled source 'kb': 1 fetched, 1 new" in result.output
    listing = runner.invoke(sources_group, ["list"]).output
    assert central.submissions[-1].submission_date in listing and "3 pulled" not in listing
    assert "2 pulled in all" in listing

    assert runner.invoke(sources_group, ["disable", "nawa"]).exit_code == 0
    assert "nawa (disabled):" in runner.invoke(sources_group, ["list"]).output
    result = runner.invoke(sources_group, ["pull"])
    assert "'nawa'" not in result.output and "Pulled source 'kb'" in result.output
    result = runner.invoke(sources_group, ["pull", "nawa", "--from-start"])
    assert result.exit_code == 0 and "2 fetched, 0 new, 2 already stored" in result.output
    for output in (listing, result.output):
        assert central.password not in output and kobo.token not in output


def test_cli_reports_bad_input_and_failed_pulls(app, version, central):
    runner = app.test_cli_runner()
    result = runner.invoke(
        sources_group,
        ["add", "x", "--kind", "central", "--url", "central.example.org", "--form", "f",
         "--email", "a@b.org"],
        input="secret password\n",
    )  # fmt: skip
    assert result.exit_code == 1
    assert "--url: must be an http:// or https:// address" in result.output
    assert "--project: is required for ODK Central" in result.output
    kobo_add = ["add", "y", "--kind", "kobo", "--url", "https://kf.kobotoolbox.org", "--form", "u"]
    result = runner.invoke(sources_group, kobo_add, input="")
    assert result.exit_code == 1 and "No api token on standard input" in result.output
    assert runner.invoke(sources_group, ["pull", "nope"]).exit_code == 1

    central.add(visit(version, 1))
    add_central(app, central, password="wrong password")
    result = runner.invoke(sources_group, ["pull"])
    assert result.exit_code == 1
    assert "Failed: source 'nawa-central'" in result.output
    assert "1 of 1 source could not be pulled to the end: nawa-central." in result.output


# --- the web pages -----------------------------------------------------------------------------


def login(client, username):
    response = client.post("/login", data={"username": username, "password": PASSWORD})
    assert response.status_code == 302


@pytest.mark.parametrize(
    ("role", "areas", "brand"),
    [("officer", ["CI-D1"], None), ("monitor", ["CI-D1"], None), ("brand", [], "BRAND-A")],
)
def test_source_pages_are_for_admins_only(app, client, places, make_user, role, areas, brand):
    make_user("someone", role, areas=areas, brand=brand)
    login(client, "someone")
    for path in ("/sources", "/sources/new", "/sources/1/edit"):
        assert client.get(path).status_code == 403, path
    for path in ("/sources/new", "/sources/1/pull", "/sources/1/enabled"):
        assert client.post(path).status_code == 403, path


def test_anonymous_is_sent_to_sign_in(client):
    response = client.get("/sources")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_admin_adds_edits_pulls_and_disables_a_source(app, client, version, make_user, central):
    central.add(visit(version, 1))
    central.add(visit(version, 2))
    make_user("ada", "admin")
    login(client, "ada")
    assert "No sources yet." in client.get("/sources").get_data(as_text=True)
    form = client.get("/sources/new").get_data(as_text=True)
    assert 'name="password" type="password"' in form and 'name="token" type="password"' in form

    bad = client.post(
        "/sources/new",
        data={"name": "web", "kind": "central", "base_url": "not a url", "remote_form_id": "f",
              "email": central.email, "password": central.password},
    )  # fmt: skip
    assert bad.status_code == 400
    html = bad.get_data(as_text=True)
    assert 'id="base_url-error"' in html and "must be an http:// or https:// address" in html
    assert 'id="project_id-error"' in html and 'aria-invalid="true"' in html
    assert 'value="web"' in html and central.password not in html

    good = client.post(
        "/sources/new",
        data={"name": "web", "kind": "central", "base_url": central.url,
              "remote_form_id": central.xml_form_id, "project_id": str(central.project_id),
              "email": central.email, "password": central.password},
    )  # fmt: skip
    assert good.status_code == 302 and good.headers["Location"] == "/sources"
    with session_scope(app) as s:
        source_id = s.scalar(select(PullSource.id).where(PullSource.name == "web"))
    listing = client.get("/sources").get_data(as_text=True)
    assert "Added source web." in listing and central.url in listing
    assert "clms_household_visit" in listing and "from the start" in listing

    edit = client.get(f"/sources/{source_id}/edit").get_data(as_text=True)
    assert 'id="password" name="password" type="password"' in edit and 'value=""' in edit
    assert central.password not in edit and central.email not in edit
    saved = client.post(
        f"/sources/{source_id}/edit",
        data={"name": "web2", "base_url": central.url, "remote_form_id": central.xml_form_id,
              "project_id": str(central.project_id), "email": "", "password": ""},
    )  # fmt: skip
    assert saved.status_code == 302

    pulled = client.post(f"/sources/{source_id}/pull", follow_redirects=True)
    html = pulled.get_data(as_text=True)
    assert "Pulled source &#39;web2&#39;: 2 fetched, 2 new, 0 already stored" in html
    assert central.submissions[-1].submission_date in html
    assert client.get("/sources").get_data(as_text=True).count("badge parsed") == 1

    disabled = client.post(
        f"/sources/{source_id}/enabled", data={"enabled": "0"}, follow_redirects=True
    )
    assert "Disabled source web2." in disabled.get_data(as_text=True)
    assert not source_row(app, source_id).enabled
    assert client.get("/sources/999/edit").status_code == 404


def test_a_failed_pull_now_shows_the_error(app, client, version, make_user, central):
    central.add(visit(version, 1))
    source_id = add_central(app, central, password="wrong password")
    make_user("ada", "admin")
    login(client, "ada")
    html = client.post(f"/sources/{source_id}/pull", follow_redirects=True).get_data(as_text=True)
    assert 'class="flash error"' in html
    assert "Pull failed: source &#39;nawa-central&#39;" in html
    assert "check the email and password" in html and "badge review" in html


def _param(line: str, name: str) -> str:
    from urllib.parse import parse_qs, urlsplit

    return parse_qs(urlsplit(line.split(" ", 1)[1]).query)[name][0]


# --- pure parts --------------------------------------------------------------------------------


def test_links_from_the_server_are_followed_on_the_configured_server_only():
    """A next link or download URL naming another host never receives our token."""
    from forms.pull.clients import Target

    target = Target(1, "k", "kobo", "https://kf.example.org", None, "aXyZ", None)
    client = KoboClient(target, {"token": "t0ken"}, http=None, sleep=None)
    assert client.on_our_server("https://evil.example.net/api/v2/x/?start=2") == (
        "https://kf.example.org/api/v2/x/?start=2"
    )
    assert client.on_our_server("http://kf.example.org:80/a?b=1") == "https://kf.example.org/a?b=1"
    assert client.on_our_server("/api/v2/assets/") == "https://kf.example.org/api/v2/assets/"
    assert "t0ken" not in repr(client)


def test_retry_after_accepts_seconds_and_http_dates():
    from email.utils import format_datetime

    import requests

    from forms.pull.clients import _retry_after

    response = requests.Response()
    response.headers["Retry-After"] = "12"
    assert _retry_after(response) == 12.0
    later = dt.datetime.now(UTC) + dt.timedelta(seconds=30)
    response.headers["Retry-After"] = format_datetime(later, usegmt=True)
    assert 25 <= _retry_after(response) <= 30
    response.headers["Retry-After"] = "soon"
    assert _retry_after(response) is None


def test_a_result_says_what_happened_in_one_line():
    result = PullResult(source="s", fetched=3, stored=1, duplicates=1, pages=1, cursor="c")
    result.problem_count, result.edits, result.withdrawn, result.retried = 1, 2, 1, 1
    result.waiting = 1
    result.problems.append({"instance_id": "uuid:x", "code": "409.1", "message": "Conflict."})
    assert result.summary() == (
        "source 's': 3 fetched, 1 new, 1 already stored, 2 edits, 1 withdrawn, 0 restored, "
        "1 not stored, 1 taken from the retry list, 1 waiting there (1 page); cursor c. "
        "First problem: uuid:x: Conflict."
    )
    assert result.as_dict()["ok"] is True and json.dumps(result.as_dict())
