"""What a server says of a submission it holds (deleted, rejected, not approved, restored) made
true here by ``clms.intake.pull.apply_remote_state``, for Central and Kobo pulls alike."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from clms.db import session_scope
from clms.intake.pull import apply_remote_state
from clms.models import AuditEvent, PullSource, Submission, Visit
from tests import builders

WHEN = dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC)


def _pulled_chain(s):
    """A Central source and a submission pulled from it, edited once (two versions)."""
    source = PullSource(
        name="c", kind="central", base_url="http://c", project_id="1", remote_form_id="f",
        credentials=b"x",
    )  # fmt: skip
    s.add(source)
    s.flush()
    home = builders.household(s)
    old = builders.visit(s, home, WHEN, current=False)
    new = builders.visit(s, home, WHEN)
    first, second = s.get(Submission, old.submission_id), s.get(Submission, new.submission_id)
    second.logical_id = first.logical_id = "uuid:root"
    for sub in (first, second):
        sub.pull_source_id, sub.remote_id = source.id, "uuid:root"
    s.flush()
    return source.id, first, second, new


def test_a_withdrawal_and_a_restore_follow_the_server_and_are_audited_once(app):
    with session_scope(app) as s:
        source_id, first, second, new_visit = _pulled_chain(s)

        assert apply_remote_state(s, source_id, "uuid:root", "rejected", review_state="rejected")
        assert (first.withdrawn_reason, second.withdrawn_reason) == ("rejected", "rejected")
        assert second.remote_review_state == "rejected"
        s.expire_all()
        assert s.get(Visit, new_visit.id).current is False
        # the same state again changes nothing and records nothing
        assert (
            apply_remote_state(s, source_id, "uuid:root", "rejected", review_state="rejected")
            is False
        )
        assert apply_remote_state(s, source_id, "uuid:root", "deleted") is True
        assert second.withdrawn_reason == "deleted"

        assert apply_remote_state(s, source_id, "uuid:root", "restored") is True
        assert (first.withdrawn_at, second.withdrawn_at) == (None, None)
        s.expire_all()
        assert s.get(Visit, new_visit.id).current is True
        actions = s.scalars(select(AuditEvent.action).order_by(AuditEvent.id)).all()
        assert actions.count("submission.withdrawn") == 2
        assert actions.count("submission.restored") == 1


def test_an_id_never_pulled_is_left_alone_and_an_unknown_state_refused(app):
    with session_scope(app) as s:
        source_id, *_ = _pulled_chain(s)
        assert apply_remote_state(s, source_id, "uuid:other", "deleted") is None
        assert apply_remote_state(s, source_id + 1, "uuid:root", "deleted") is None
        with pytest.raises(ValueError, match="unknown remote state"):
            apply_remote_state(s, source_id, "uuid:root", "gone")
