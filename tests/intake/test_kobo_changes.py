"""A KoboToolbox source stays in step (forms.pull.kobo_changes, clms.intake.kobo_recheck): kpi
changes submissions in place, with no modified time, so each pull re-lists a window of days and
compares. Edits are fetched again, "not approved" withdraws and any other status restores,
deletions withdraw, and late or back-dated rows are fetched.

The server is tests/kobo_double.py (checked against kpi's own tests in
test_kobo_double_contract.py); everything on our side is real.
"""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from clms.db import session_scope
from clms.models import AuditEvent, PullSource, Submission, Visit, utcnow
from forms.pull.clients import Entry
from forms.pull.kobo_changes import Held, Listed, brake, compare, window_start
from tests.intake.test_pull import add_kobo, pull, visit
from tests.kobo_double import KoboDouble

NOT_APPROVED = "validation_status_not_approved"


@pytest.fixture
def kobo():
    # submissions of the last days, inside the window whatever the day the tests run
    double = KoboDouble(epoch=utcnow() - dt.timedelta(days=2)).start()
    yield double
    double.stop()


@pytest.fixture(autouse=True)
def no_lookback(app):
    # the re-check is what these tests watch: without a look-back, the pull's own listing re-reads
    # only the cursor's row, so a change to an older row can only be found by the re-check
    app.config["PULL_LOOKBACK_MINUTES"] = 0


def rows(app, *where):
    with session_scope(app) as s:
        found = s.scalars(select(Submission).where(*where).order_by(Submission.id)).all()
        return [
            {
                "instance_id": r.instance_id,
                "logical_id": r.logical_id,
                "current": r.current,
                "withdrawn": r.withdrawn_reason,
                "remote_id": r.remote_id,
                "review": r.remote_review_state,
            }
            for r in found
        ]


def visits_counting(app) -> int:
    with session_scope(app) as s:
        return len(s.scalars(select(Visit.id).where(Visit.current.is_(True))).all())


# --- edits ---------------------------------------------------------------------------------------


def test_an_edit_in_kobo_is_fetched_at_the_next_pull_and_becomes_the_current_version(
    app, version, kobo
):
    sub = kobo.add(visit(version, 1, prefix="K"))
    newer = kobo.add(visit(version, 2, prefix="K"))
    source_id = add_kobo(app, kobo)
    first, _ = pull(app, source_id)
    assert first.stored == 2
    # a reviewer edits it in Enketo: the same row, a new instanceID naming the old one
    kobo.add(
        visit(version, 1, prefix="K")
        .replace(b"uuid:K-1", b"uuid:K-1-edit", 1)
        .replace(b"</instanceID>", b"</instanceID><deprecatedID>uuid:K-1</deprecatedID>", 1)
    )
    assert kobo.submissions == [sub, newer] and sub.instance_id == "uuid:K-1-edit"
    kobo.requests.clear()
    second, _ = pull(app, source_id)
    assert second.ok, second.error
    assert second.changes == {"edited": 1} and second.stored == 1
    assert kobo.xml_requests() == [newer.id, sub.id]  # the cursor's row, then the edit
    assert rows(app, Submission.remote_id == str(sub.id)) == [
        {"instance_id": "uuid:K-1", "logical_id": "uuid:K-1", "current": False,
         "withdrawn": None, "remote_id": str(sub.id), "review": None},
        {"instance_id": "uuid:K-1-edit", "logical_id": "uuid:K-1", "current": True,
         "withdrawn": None, "remote_id": str(sub.id), "review": None},
    ]  # fmt: skip
    # in step now: the next pull fetches only the cursor's row again (its $gte), not the edit
    kobo.requests.clear()
    third, _ = pull(app, source_id)
    assert third.changes == {} and kobo.xml_requests() == [newer.id]


def edited(version, n: int) -> bytes:
    """Submission K-n as edited in Enketo: a new instanceID naming the old one."""
    return (
        visit(version, n, prefix="K")
        .replace(f"uuid:K-{n}<".encode(), f"uuid:K-{n}-edit<".encode(), 1)
        .replace(b"</instanceID>", f"</instanceID><deprecatedID>uuid:K-{n}</deprecatedID>".encode())
    )


def test_an_edit_of_a_not_approved_submission_stays_withdrawn(app, version, kobo):
    sub = kobo.add(visit(version, 1, prefix="K"))
    kobo.add(visit(version, 2, prefix="K"))
    kobo.set_validation(sub.id, NOT_APPROVED)
    source_id = add_kobo(app, kobo)
    pull(app, source_id)
    kobo.add(edited(version, 1))
    result, _ = pull(app, source_id)
    # the new version is withdrawn as it arrives (its logical submission is): it never counts,
    # and nothing is withdrawn again
    assert result.changes == {"edited": 1}
    assert [
        (r["instance_id"], r["current"], r["withdrawn"])
        for r in rows(app, Submission.remote_id == str(sub.id))
    ] == [("uuid:K-1", False, "not_approved"), ("uuid:K-1-edit", True, "not_approved")]


def test_two_edits_between_pulls_leave_the_last_as_the_only_current_version(app, version, kobo):
    sub = kobo.add(visit(version, 1, prefix="K"))
    kobo.add(visit(version, 2, prefix="K"))
    source_id = add_kobo(app, kobo)
    pull(app, source_id)
    kobo.add(edited(version, 1))
    kobo.add(
        edited(version, 1)
        .replace(b"uuid:K-1-edit<", b"uuid:K-1-edit2<", 1)
        .replace(b"<deprecatedID>uuid:K-1<", b"<deprecatedID>uuid:K-1-edit<", 1)
    )
    result, _ = pull(app, source_id)  # kpi's API gives the last version only
    assert result.problem_count == 0, result.problems
    assert [
        (r["instance_id"], r["current"]) for r in rows(app, Submission.remote_id == str(sub.id))
    ] == [("uuid:K-1", False), ("uuid:K-1-edit2", True)]


# --- validation statuses -------------------------------------------------------------------------


def test_not_approved_withdraws_and_approved_again_restores(app, version, kobo, process):
    subs = [kobo.add(visit(version, n, prefix="K")) for n in (1, 2)]
    source_id = add_kobo(app, kobo)
    pull(app, source_id)
    process()
    assert visits_counting(app) == 2

    kobo.set_validation(subs[0].id, NOT_APPROVED, by_whom="reviewer")
    result, _ = pull(app, source_id)
    assert result.changes == {"withdrawn": 1}
    first, other = rows(app)
    assert (first["withdrawn"], first["review"]) == ("not_approved", NOT_APPROVED)
    assert other["withdrawn"] is None
    assert visits_counting(app) == 1
    with session_scope(app) as s:
        event = s.scalar(select(AuditEvent).where(AuditEvent.action == "submission.withdrawn"))
        assert event.target == "submission:uuid:K-1" and "not approved" in event.reason

    again, _ = pull(app, source_id)  # the same state: nothing more
    assert again.changes == {}

    kobo.set_validation(subs[0].id, "validation_status_approved")
    restored, _ = pull(app, source_id)
    assert restored.changes == {"restored": 1}
    assert rows(app)[0]["withdrawn"] is None
    assert rows(app)[0]["review"] == "validation_status_approved"
    assert visits_counting(app) == 2

    kobo.set_validation(subs[0].id, "validation_status_on_hold")
    on_hold, _ = pull(app, source_id)
    assert on_hold.changes == {} and rows(app)[0]["review"] == "validation_status_on_hold"
    assert visits_counting(app) == 2


def test_not_approved_before_the_first_pull_is_withdrawn_at_once(app, version, kobo):
    sub = kobo.add(visit(version, 1, prefix="K"))
    kobo.set_validation(sub.id, NOT_APPROVED)
    result, _ = pull(app, add_kobo(app, kobo))
    assert result.stored == 1 and result.changes == {"withdrawn": 1}
    assert rows(app)[0]["withdrawn"] == "not_approved"
    assert rows(app)[0]["remote_id"] == str(sub.id)


# --- deletions -----------------------------------------------------------------------------------


def test_a_deleted_submission_is_withdrawn_and_restored_if_it_comes_back(app, version, kobo):
    subs = [kobo.add(visit(version, n, prefix="K")) for n in (1, 2, 3)]
    source_id = add_kobo(app, kobo)
    pull(app, source_id)
    kobo.delete(subs[1].id)
    result, _ = pull(app, source_id)
    assert result.changes == {"withdrawn": 1}
    assert [r["withdrawn"] for r in rows(app)] == [None, "deleted", None]
    with session_scope(app) as s:
        event = s.scalar(select(AuditEvent).where(AuditEvent.action == "submission.withdrawn"))
        assert "no longer has it" in event.reason
    # the row comes back (restored from a backup of the server)
    kobo.submissions.insert(1, subs[1])
    back, _ = pull(app, source_id)
    assert back.changes == {"restored": 1}
    assert [r["withdrawn"] for r in rows(app)] == [None, None, None]


def test_a_back_dated_row_is_asked_for_by_id_not_taken_for_deleted(app, version, kobo):
    """A row kpi inserted after the window's oldest (a larger _id) but back-dated before the
    window is not listed by time: it is asked for by _id, found, and left alone."""
    kobo.add(visit(version, 1, prefix="K"))
    old = kobo.add(visit(version, 2, prefix="K"), at=utcnow() - dt.timedelta(days=90))
    source_id = add_kobo(app, kobo)
    pull(app, source_id)  # from the start: both are stored today
    kobo.requests.clear()
    result, _ = pull(app, source_id)
    assert result.ok and result.changes == {}
    assert [r["withdrawn"] for r in rows(app)] == [None, None]
    asked = [r for r in kobo.requests if "%24in" in r]
    assert len(asked) == 1 and f"%5B{old.id}%5D" in asked[0]
    # deleted there now: the same question finds it gone
    kobo.delete(old.id)
    gone, _ = pull(app, source_id)
    assert gone.changes == {"withdrawn": 1}
    assert rows(app, Submission.instance_id == "uuid:K-2")[0]["withdrawn"] == "deleted"
    assert rows(app, Submission.instance_id == "uuid:K-1")[0]["withdrawn"] is None


def test_a_row_older_than_the_window_by_id_too_is_out_of_reach(app, version, kobo):
    old = kobo.add(visit(version, 1, prefix="K"), at=utcnow() - dt.timedelta(days=90))
    kobo.add(visit(version, 2, prefix="K"))
    source_id = add_kobo(app, kobo)
    pull(app, source_id)
    kobo.delete(old.id)
    kobo.requests.clear()
    result, _ = pull(app, source_id)
    assert result.changes == {} and not [r for r in kobo.requests if "%24in" in r]
    assert [r["withdrawn"] for r in rows(app)] == [None, None]


def test_many_deletions_at_once_are_held_back_and_reported(app, version, kobo):
    subs = [kobo.add(visit(version, n, prefix="K")) for n in range(25)]
    source_id = add_kobo(app, kobo)
    pull(app, source_id)
    for sub in subs:
        kobo.delete(sub.id)
    result, _ = pull(app, source_id)
    assert [r["withdrawn"] for r in rows(app)] == [None] * 25
    assert result.problem_count == 1
    assert "no longer lists 25 of the 25 submissions" in result.problems[0]["message"]
    with session_scope(app) as s:
        assert "none was withdrawn" in s.scalar(select(PullSource.last_error))


# --- late arrivals -------------------------------------------------------------------------------


def test_a_back_dated_row_is_fetched_on_the_next_pull(app, version, kobo):
    """kpi back-dates _submission_time to the XML root's submissionDate, and writes its Mongo
    copy after PostgreSQL: a row can become visible behind the cursor."""
    kobo.add(visit(version, 1, prefix="K"))
    kobo.add(visit(version, 2, prefix="K"))
    source_id = add_kobo(app, kobo)
    first, _ = pull(app, source_id)
    cursor = first.cursor
    earlier = (utcnow() - dt.timedelta(days=5)).strftime("%Y-%m-%dT%H:%M:%S+00:00")
    late = kobo.add(
        visit(version, 3, prefix="K").replace(
            b"<data ", f'<data submissionDate="{earlier}" '.encode(), 1
        )
    )
    assert late.submission_time < cursor
    result, _ = pull(app, source_id)
    assert result.stored == 1 and result.changes == {"late": 1}
    assert result.cursor == cursor  # the cursor does not move back
    assert [r["instance_id"] for r in rows(app)] == ["uuid:K-1", "uuid:K-2", "uuid:K-3"]
    assert rows(app)[2]["remote_id"] == str(late.id)


def test_a_late_row_the_ingest_refuses_waits_on_the_retry_list(app, version, kobo):
    """A row only the re-check finds, refused by the ingest (a form version this server never
    had), waits on the retry list with its reason, tried again at every pull."""
    from clms.models import PullRetry

    kobo.add(visit(version, 1, prefix="K"))
    source_id = add_kobo(app, kobo)
    pull(app, source_id)
    earlier = (utcnow() - dt.timedelta(days=5)).strftime("%Y-%m-%dT%H:%M:%S+00:00")
    late = kobo.add(
        visit("1999010101", 2, prefix="K").replace(
            b"<data ", f'<data submissionDate="{earlier}" '.encode(), 1
        )
    )
    result, _ = pull(app, source_id)
    assert result.problem_count == 1
    with session_scope(app) as s:
        [waiting] = s.scalars(select(PullRetry)).all()
        assert (waiting.remote_id, waiting.code) == (str(late.id), "400.6")


def test_a_submission_a_phone_pushed_as_well_is_linked_and_followed(app, version, phone, kobo):
    pushed = visit(version, 1, prefix="K")
    assert phone.submit(pushed).status_code == 201
    sub = kobo.add(pushed)
    source_id = add_kobo(app, kobo)
    result, _ = pull(app, source_id)
    assert result.duplicates == 1 and result.changes == {}
    assert rows(app)[0]["remote_id"] == str(sub.id)
    kobo.set_validation(sub.id, NOT_APPROVED)
    pull(app, source_id)
    assert rows(app)[0]["withdrawn"] == "not_approved"


def test_no_window_no_recheck(app, version, kobo):
    sub = kobo.add(visit(version, 1, prefix="K"))
    source_id = add_kobo(app, kobo)
    pull(app, source_id)
    kobo.set_validation(sub.id, NOT_APPROVED)
    app.config["PULL_KOBO_RECHECK_DAYS"] = 0
    try:
        result, _ = pull(app, source_id)
    finally:
        app.config["PULL_KOBO_RECHECK_DAYS"] = 30
    assert result.changes == {} and rows(app)[0]["withdrawn"] is None


# --- the comparison, pure -----------------------------------------------------------------------


def listed(remote_id: str, instance_id: str, validation: str | None = None) -> Listed:
    entry = Entry(instance_id, "2026-12-01T10:00:00", int(remote_id))
    return Listed(remote_id, instance_id, validation, entry)


def held(submission_id, remote_id, instance_id, *, current=True, withdrawn=None, review=None):
    return Held(submission_id, remote_id, instance_id, current, withdrawn, review)


def test_compare_finds_each_kind_of_change():
    plan = compare(
        [
            listed("1", "uuid:a"),  # in step
            listed("2", "uuid:b2"),  # edited
            listed("3", "uuid:c", NOT_APPROVED),  # refused there
            listed("4", "uuid:d"),  # never stored: late
            listed("5", "uuid:e"),  # pushed by a phone
            listed("6", "uuid:f"),  # another source's
            listed("8", "uuid:h", "validation_status_on_hold"),  # was deleted, back
        ],
        {
            "1": [held(1, "1", "uuid:a")],
            "2": [held(2, "2", "uuid:b")],
            "3": [held(3, "3", "uuid:c")],
            "7": [held(7, "7", "uuid:g")],
            "8": [held(8, "8", "uuid:h", withdrawn="deleted")],
        },
        {"uuid:e": (50, None), "uuid:f": (60, 9)},
        {"1", "2", "3", "7"},
    )
    assert [(row.remote_id, why) for row, why in plan.fetch] == [("2", "edited"), ("4", "late")]
    assert plan.link == [(50, "5")]
    assert plan.states == [
        ("2", None), ("3", NOT_APPROVED), ("4", None), ("5", None),
        ("8", "validation_status_on_hold"),
    ]  # fmt: skip
    assert plan.deleted == ["7"]


def test_the_brake_and_the_window_start():
    plan = compare([], {}, {}, {str(n) for n in range(30)})
    assert "30 of the 30" in brake(plan, {str(n) for n in range(30)})
    few = compare([], {}, {}, {"1", "2"})
    assert brake(few, {"1", "2"}) is None
    now = dt.datetime(2026, 12, 7, 16, 0, 5, 123, tzinfo=dt.UTC)
    assert window_start(now, 30) == "2026-11-07T16:00:05"
