"""The submission processor: received submissions become households, visits and children."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from clms.db import session_scope
from clms.intake.process import process_received
from clms.models import Household, Submission, Visit
from forms import store
from forms.received import waiting
from tests.submissions import child, household_xml


def _send(phone, version, n, prefix="HH"):
    for i in range(n):
        xml = household_xml(
            version, instance_id=f"uuid:{prefix}-{i}", household_code=f"{prefix}-{i}",
            children=[child(child_name=f"Child {i}", age=8 + i % 9)],
        )  # fmt: skip
        assert phone.submit(xml).status_code == 201


def test_processes_in_batches_in_order_of_arrival_and_reports_progress(app, phone, version):
    _send(phone, version, 7)
    with session_scope(app) as s:
        assert waiting(s)[0] == 7
    seen = []
    result = process_received(
        app.extensions["clms_sessionmaker"], batch=3, progress=lambda t: seen.append(t.processed)
    )
    assert result.parsed == 7 and seen == [3, 6, 7]
    with session_scope(app) as s:
        assert waiting(s) == (0, None)
        # visits were written in the order the submissions arrived
        order = s.scalars(select(Visit.submission_id).order_by(Visit.id)).all()
        assert order == sorted(order)
        assert s.scalar(select(func.count()).select_from(Household)) == 7


def test_limit_stops_early_and_the_rest_waits(app, phone, version):
    _send(phone, version, 5)
    result = process_received(app.extensions["clms_sessionmaker"], batch=2, limit=3)
    assert result.processed == 3
    with session_scope(app) as s:
        assert waiting(s)[0] == 2


def test_one_submission_that_fails_is_marked_for_review_and_holds_up_nothing(
    app, phone, version, monkeypatch, process
):
    """Fault injection: the parser code raising for one household stands for any bug in it."""
    _send(phone, version, 4)
    real_plan = store.Batch.plan

    def failing(self, item):
        if getattr(item.record, "household_code", None) == "HH-2":
            raise RuntimeError("simulated fault in processing")
        return real_plan(self, item)

    monkeypatch.setattr(store.Batch, "plan", failing)
    result = process()
    assert (result.parsed, result.failed) == (3, 1)
    with session_scope(app) as s:
        bad = s.scalar(select(Submission).where(Submission.instance_id == "uuid:HH-2"))
        assert bad.status == "review"
        assert "simulated fault" in bad.review_reasons[0]["problem"]
        assert bad.xml  # the submission itself is kept, byte for byte
        codes = set(s.scalars(select(Household.code)))
        assert codes == {"HH-0", "HH-1", "HH-3"}
        assert waiting(s)[0] == 0


def test_a_retry_after_processing_is_not_processed_again(app, phone, version, process):
    xml = household_xml(version, instance_id="uuid:once", children=[child()])
    assert phone.submit(xml).status_code == 201
    assert process().parsed == 1
    assert phone.submit(xml).status_code == 201  # the phone did not get our first answer
    assert process().processed == 0
    with session_scope(app) as s:
        assert s.scalar(select(func.count()).select_from(Visit)) == 1


def test_clms_process_command_shows_what_it_did(app, phone, version, runner):
    _send(phone, version, 3)
    phone.submit(household_xml(version, instance_id="uuid:bad", village="NOPE"))
    result = runner.invoke(args=["process"])
    assert result.exit_code == 0, result.output
    assert "Processed 4: 3 parsed, 1 for review, 0 failed" in result.output
    again = runner.invoke(args=["process"])
    assert again.exit_code == 0 and "No submissions waiting." in again.output


def test_a_database_failure_leaves_everything_received_for_later(app, phone, version, monkeypatch):
    """Fault injection: an OperationalError (the database going away) is not the submissions'
    fault; nothing is marked for review and the next run processes them."""
    from sqlalchemy.exc import OperationalError

    _send(phone, version, 3)
    real_plan = store.Batch.plan

    def unreachable(self, item):
        raise OperationalError("SELECT 1", {}, Exception("server closed the connection"))

    monkeypatch.setattr(store.Batch, "plan", unreachable)
    with pytest.raises(OperationalError):
        process_received(app.extensions["clms_sessionmaker"])
    with session_scope(app) as s:
        assert waiting(s)[0] == 3
        assert s.scalar(select(func.count()).where(Submission.status == "review")) == 0
    monkeypatch.setattr(store.Batch, "plan", real_plan)
    assert process_received(app.extensions["clms_sessionmaker"]).parsed == 3
