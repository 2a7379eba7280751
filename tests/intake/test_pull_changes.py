"""Pulls that stay in step with ODK Central (issue 18): edits with every version, review states,
deletions and restores, the retry list, the look-back window, one session per run.

The server is tests/central_double.py, which answers as central-backend does (checked against the
real server by tests/intake/test_central_real.py); everything on our side is real.
"""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from clms.db import session_scope
from clms.errors import Problem
from clms.models import PullRetry, PullSource, Submission, SubmissionAttachment
from forms.ingest import IncomingSubmission, ingest_submission
from forms.pull.cli import sources_group
from forms.pull.run import look_back
from tests.intake.test_pull import add_central, pull, source_row, visit
from tests.submissions import household_xml

UTC = dt.UTC


def edit_of(version, n: int, old: str, new: str, head="Edited in Central") -> bytes:
    return household_xml(
        version, instance_id=new, deprecated_id=old, household_code=f"HH-C-{n}", head=head
    )


def rows(app):
    with session_scope(app) as s:
        found = s.scalars(select(Submission).order_by(Submission.id)).all()
        for row in found:
            s.expunge(row)
        return found


def retries(app):
    with session_scope(app) as s:
        found = s.scalars(select(PullRetry).order_by(PullRetry.id)).all()
        for row in found:
            s.expunge(row)
        return found


# --- 1. the root is the logical identity; every version is kept --------------------------------


def test_an_edit_made_in_central_before_the_first_pull_arrives_with_every_version(
    app, version, central
):
    central.add(visit(version, 0))
    central.edit("uuid:C-0", edit_of(version, 0, "uuid:C-0", "uuid:C-0-b"))
    central.edit("uuid:C-0", edit_of(version, 0, "uuid:C-0-b", "uuid:C-0-c", head="Twice"))
    source_id = add_central(app, central)

    result, _ = pull(app, source_id)

    assert result.ok, result.error
    assert (result.stored, result.edits, result.problem_count) == (1, 2, 0)
    assert [
        (r.instance_id, r.logical_id, r.current, r.pull_source_id, r.remote_id) for r in rows(app)
    ] == [
        ("uuid:C-0", "uuid:C-0", False, source_id, "uuid:C-0"),
        ("uuid:C-0-b", "uuid:C-0", False, source_id, "uuid:C-0"),
        ("uuid:C-0-c", "uuid:C-0", True, source_id, "uuid:C-0"),
    ]
    assert b"Twice" in rows(app)[-1].xml and rows(app)[-1].remote_review_state == "edited"
    # oldest first, each version by its own address
    versions = [r for r in central.requests if "/versions/" in r and r.endswith(".xml")]
    assert [v.split("/versions/")[1] for v in versions] == [
        "uuid:C-0.xml", "uuid:C-0-b.xml", "uuid:C-0-c.xml"
    ]  # fmt: skip


def test_an_edit_after_a_pull_is_found_by_the_changes_cursor_and_only_new_versions_fetched(
    app, version, central
):
    central.add(visit(version, 0))
    central.add(visit(version, 1))
    source_id = add_central(app, central)
    first, _ = pull(app, source_id)
    assert first.stored == 2
    central.edit("uuid:C-0", edit_of(version, 0, "uuid:C-0", "uuid:C-0-b"))
    central.requests.clear()

    second, _ = pull(app, source_id)

    assert second.ok and second.edits == 1 and second.stored == 0
    assert [(r.instance_id, r.current) for r in rows(app)] == [
        ("uuid:C-0", False), ("uuid:C-1", True), ("uuid:C-0-b", True)
    ]  # fmt: skip
    fetched = [r for r in central.requests if r.endswith(".xml")]
    assert not any("uuid:C-0.xml" in r for r in fetched)  # the version we had is not read again
    updated = [r for r in central.requests if "updatedAt" in r]
    assert len(updated) == 1
    row = source_row(app, source_id)
    assert (
        row.changes_cursor
        == central.submissions[0].versions[-1].created_at.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]
        + "Z"
    )


def test_a_pulled_edit_of_a_version_never_seen_is_accepted_a_pushed_one_refused(app, version):
    edit = household_xml(version, instance_id="uuid:E-2", deprecated_id="uuid:E-1")
    with session_scope(app) as s:
        with pytest.raises(Problem) as refused:
            ingest_submission(s, IncomingSubmission(xml=edit, source="openrosa"))
        assert refused.value.key == "submission.deprecated_unknown"
    with session_scope(app) as s:
        source = PullSource(name="c", kind="central", base_url="http://c", project_id="1",
                            remote_form_id="clms_household_visit", credentials=b"x")  # fmt: skip
        s.add(source)
        s.flush()
        pulled = IncomingSubmission(
            xml=edit, source="central", pull_source_id=source.id, remote_id="uuid:E-0",
            root_id="uuid:E-0",
        )  # fmt: skip
        result = ingest_submission(s, pulled)
        assert result.created
        row = s.get(Submission, result.submission_id)
        assert (row.logical_id, row.current, row.remote_id) == ("uuid:E-0", True, "uuid:E-0")
        # an older version arriving afterwards is kept as a past version, not current
        first = household_xml(version, instance_id="uuid:E-0")
        older = ingest_submission(s, IncomingSubmission(
            xml=first, source="central", pull_source_id=source.id, remote_id="uuid:E-0",
            root_id="uuid:E-0",
        ))  # fmt: skip
        assert older.created and s.get(Submission, older.submission_id).current is False
        assert s.get(Submission, result.submission_id).current is True
        s.rollback()


# --- 2. review states, deletions, restores -------------------------------------------------------


def test_rejection_deletion_and_restore_in_central_withdraw_and_restore_here(app, version, central):
    for i in range(3):
        central.add(visit(version, i))
    source_id = add_central(app, central)
    assert pull(app, source_id)[0].stored == 3

    central.review("uuid:C-0", "rejected")
    central.delete("uuid:C-1")
    central.review("uuid:C-2", "approved")
    result, _ = pull(app, source_id)

    assert result.ok and (result.withdrawn, result.restored) == (2, 0)
    state = {r.instance_id: (r.withdrawn_reason, r.remote_review_state) for r in rows(app)}
    assert state == {
        "uuid:C-0": ("rejected", "rejected"),
        "uuid:C-1": ("deleted", None),
        "uuid:C-2": (None, "approved"),
    }
    deleted = [r for r in central.requests if "deletedAt" in r]
    assert deleted and "__system%2FdeletedAt+ge+" in deleted[-1]

    # seen again: nothing changes
    again, _ = pull(app, source_id)
    assert (again.withdrawn, again.restored) == (0, 0)

    central.restore("uuid:C-1")  # clears deletedAt, sets no time
    central.review("uuid:C-0", "approved")
    back, _ = pull(app, source_id)

    assert back.ok and back.restored == 2
    assert {r.instance_id: r.withdrawn_reason for r in rows(app)} == {
        "uuid:C-0": None, "uuid:C-1": None, "uuid:C-2": None
    }  # fmt: skip


def test_a_submission_already_rejected_at_its_first_pull_is_stored_withdrawn(app, version, central):
    central.add(visit(version, 0))
    central.review("uuid:C-0", "rejected")
    result, _ = pull(app, add_central(app, central))
    assert result.stored == 1 and result.withdrawn == 1
    assert rows(app)[0].withdrawn_reason == "rejected"


# --- 3. the retry list ---------------------------------------------------------------------------


def test_a_submission_that_cannot_be_taken_waits_on_the_retry_list_until_it_is_stored(
    app, version, central
):
    for i in range(3):
        central.add(visit(version, i))
    source_id = add_central(app, central)
    central.fail(2, 404, match="uuid:C-1.xml")  # gone for a while (two pulls)

    first, _ = pull(app, source_id, lookback=0)

    assert first.ok and first.stored == 2 and first.problem_count == 1 and first.waiting == 1
    assert source_row(app, source_id).cursor == central.submissions[-1].submission_date
    [waiting] = retries(app)
    assert (waiting.remote_id, waiting.code, waiting.attempts) == (
        "uuid:C-1", "pull.remote_not_found", 1
    )  # fmt: skip
    assert waiting.submitted_at == central.submissions[1].submission_date

    second, _ = pull(app, source_id, lookback=0)  # beyond the look-back: only the list has it
    [waiting] = retries(app)
    assert waiting.attempts == 2 and waiting.last_tried_at >= waiting.first_failed_at
    assert second.waiting == 1 and "1 waiting there" in second.summary()

    third, _ = pull(app, source_id, lookback=0)
    assert third.retried == 1 and third.waiting == 0 and retries(app) == []
    assert sorted(r.instance_id for r in rows(app)) == ["uuid:C-0", "uuid:C-1", "uuid:C-2"]


def test_a_refused_submission_is_kept_on_the_list_with_its_code_and_message(
    app, version, phone, central
):
    assert phone.submit(visit(version, 1, head="Kouassi Yao")).status_code == 201
    central.add(visit(version, 1, head="Changed on Central"))  # same instanceID, other XML
    source_id = add_central(app, central)
    pull(app, source_id)
    pull(app, source_id)
    [waiting] = retries(app)
    assert waiting.code == "409.1" and "A different submission" in waiting.message
    assert waiting.attempts == 2


# --- 4. the look-back window ---------------------------------------------------------------------


def test_a_late_arrival_before_the_cursor_and_a_late_attachment_are_taken(app, version, central):
    at = dt.datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
    central.add(visit(version, 0), attachments={"photo.jpg": None}, at=at)
    source_id = add_central(app, central)
    assert pull(app, source_id)[0].stored == 1
    # visible only now, created five minutes before the cursor; and the photo has arrived
    central.add(visit(version, 1), at=at - dt.timedelta(minutes=5))
    central.submissions[0].attachments["photo.jpg"] = b"jpeg"

    result, _ = pull(app, source_id)

    assert result.ok and result.stored == 1 and result.duplicates == 1
    assert source_row(app, source_id).cursor == central.submissions[0].submission_date
    with session_scope(app) as s:
        assert s.scalars(select(SubmissionAttachment.name)).all() == ["photo.jpg"]
    listing = next(r for r in central.requests[::-1] if "submissionDate" in r)
    assert "2026-11-21T08%3A45%3A00.000Z" in listing  # 15 minutes before the cursor


def test_look_back_keeps_each_servers_way_of_writing_times():
    minutes = dt.timedelta(minutes=15)
    assert look_back("2026-11-21T09:00:00.123Z", minutes) == "2026-11-21T08:45:00.123Z"
    assert look_back("2026-11-21T09:00:00", minutes) == "2026-11-21T08:45:00"
    assert look_back(None, minutes) is None
    assert look_back("2026-11-21T09:00:00", dt.timedelta(0)) == "2026-11-21T09:00:00"


# --- 5. one session per run, ended ------------------------------------------------------------


def test_one_central_session_serves_the_run_and_is_ended_even_when_it_fails(app, version, central):
    for i in range(3):
        central.add(visit(version, i))
    source_id = add_central(app, central)
    result, _ = pull(app, source_id)
    assert result.ok
    assert sum(r == "POST /v1/sessions" for r in central.requests) == 1
    assert central.requests[-1] == "DELETE /v1/sessions/current" and central.sessions_ended == 1
    assert not central.tokens

    central.fail(100, 500, match=".svc/Submissions")
    failed, _ = pull(app, source_id, attempts=1)
    assert not failed.ok and central.sessions_ended == 2 and not central.tokens


def test_an_oidc_only_central_says_which_account_to_use(app, version, central):
    central.oidc = True
    result, _ = pull(app, add_central(app, central))
    assert not result.ok
    assert "single sign-on (OIDC)" in result.error
    assert "Project Viewer role has a password" in result.error


def test_attachments_redirected_to_storage_are_fetched_without_our_credentials(
    app, version, central
):
    central.redirect_attachments = True
    central.add(visit(version, 0), attachments={"photo.jpg": b"jpeg"})
    result, _ = pull(app, add_central(app, central))
    assert result.ok and result.stored == 1, result.error
    assert any(r.startswith("GET /blobs/") for r in central.requests)
    with session_scope(app) as s:
        assert s.scalars(select(SubmissionAttachment.data)).all() == [b"jpeg"]


# --- 8. what the command line says ---------------------------------------------------------------


def test_cli_pull_says_what_was_edited_withdrawn_and_left_to_retry(app, version, central):
    central.add(visit(version, 0))
    central.add(visit(version, 1))
    central.edit("uuid:C-0", edit_of(version, 0, "uuid:C-0", "uuid:C-0-b"))
    central.review("uuid:C-1", "rejected")
    central.add(visit(version, 2))
    central.fail(1, 404, match="uuid:C-2.xml")
    add_central(app, central)
    runner = app.test_cli_runner()

    result = runner.invoke(sources_group, ["pull"])

    assert result.exit_code == 0, result.output
    assert "2 new" in result.output and "1 edit," in result.output
    assert "1 withdrawn, 0 restored, 1 not stored" in result.output
    assert "1 waiting there" in result.output
    listing = runner.invoke(sources_group, ["list"]).output
    assert "1 submission waiting to be pulled again" in listing


# --- 3. the retry list on the sources page -------------------------------------------------------


def test_admins_see_the_retry_list_with_its_reason_and_attempts_in_english_and_french(
    app, client, version, make_user, central
):
    from tests.intake.test_pull import login

    make_user("root", "admin")
    central.add(visit(version, 0))
    central.add(visit(version, 1))
    central.fail(2, 404, match="uuid:C-0.xml")
    source_id = add_central(app, central)
    pull(app, source_id, lookback=0)
    pull(app, source_id, lookback=0)
    login(client, "root")

    page = client.get("/sources").get_data(as_text=True)

    assert "Submissions waiting to be pulled again" in page
    assert "1 waiting to retry" in page
    table = page.split('id="waiting"')[1]
    assert "uuid:C-0" in table and "pull.remote_not_found" in table
    assert "<td>2</td>" in table  # attempts
    french = client.get("/sources", headers={"Accept-Language": "fr"}).get_data(as_text=True)
    assert "une nouvelle collecte</h2>" in french
    assert "Premier échec" in french and "Dernier essai" in french and "Essais" in french

    pull(app, source_id, lookback=0)  # the server has it again: stored, off the list
    page = client.get("/sources").get_data(as_text=True)
    assert "Submissions waiting to be pulled again" not in page


# --- found by attacking the change (issue 18's review) -------------------------------------------


def test_a_review_of_a_refused_submission_leaves_it_on_the_retry_list(app, version, phone, central):
    # refused by the ingest (other XML under an instanceID a phone sent here), then reviewed in
    # Central: the changes pass brings its state only, and it must stay waiting
    assert phone.submit(visit(version, 1, head="Kouassi Yao")).status_code == 201
    central.add(visit(version, 1, head="Changed on Central"))
    source_id = add_central(app, central)
    pull(app, source_id)
    central.review("uuid:C-1", "approved")
    second, _ = pull(app, source_id)
    [waiting] = retries(app)
    assert waiting.remote_id == "uuid:C-1" and waiting.attempts == 2
    assert second.retried == 0


def test_a_submission_never_pulled_that_only_the_changes_list_names_is_fetched(
    app, version, central
):
    # older than the cursor and its look-back (restored after a deletion, say), then reviewed:
    # only the changes listing names it, and it is fetched in full
    late = central.add(visit(version, 1), at=dt.datetime(2026, 11, 1, 9, 0, tzinfo=UTC))
    central.add(visit(version, 2), at=dt.datetime(2026, 11, 20, 9, 0, tzinfo=UTC))
    central.delete(late.root_id)
    source_id = add_central(app, central)
    pull(app, source_id, lookback=0)
    assert [r.instance_id for r in rows(app)] == ["uuid:C-2"]
    central.restore(late.root_id)
    central.review(late.root_id, "approved")
    second, _ = pull(app, source_id, lookback=0)
    assert second.ok, second.error
    assert sorted(r.instance_id for r in rows(app)) == ["uuid:C-1", "uuid:C-2"]
    assert [r.withdrawn_reason for r in rows(app)] == [None, None]


def test_a_failed_deletions_listing_does_not_let_the_edits_move_the_cursor_past_a_deletion(
    app, version, central
):
    subs = [central.add(visit(version, n)) for n in (1, 2)]
    source_id = add_central(app, central)
    pull(app, source_id, lookback=0)
    central.delete(subs[0].root_id)
    central.review(subs[1].root_id, "hasIssues")  # a later change than the deletion
    central.fail(5, 503, match="deletedAt")
    first, _ = pull(app, source_id, lookback=0, attempts=2)
    assert not first.ok
    central.heal()
    second, _ = pull(app, source_id, lookback=0)
    assert second.ok, second.error
    assert [(r.instance_id, r.withdrawn_reason) for r in rows(app)] == [
        ("uuid:C-1", "deleted"), ("uuid:C-2", None)
    ]  # fmt: skip


def test_a_submission_pulled_before_pulls_kept_its_place_follows_its_deletion(
    app, version, central
):
    central.add(visit(version, 1))
    source_id = add_central(app, central)
    pull(app, source_id)
    with session_scope(app) as s:  # as migration 0019 found it: pulled, not linked
        for row in s.scalars(select(Submission)):
            row.pull_source_id = row.remote_id = None
        s.commit()
    central.delete("uuid:C-1")
    result, _ = pull(app, source_id)
    assert result.ok, result.error
    [row] = rows(app)
    assert (row.withdrawn_reason, row.pull_source_id, row.remote_id) == (
        "deleted", source_id, "uuid:C-1"
    )  # fmt: skip
