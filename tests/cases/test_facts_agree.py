"""Facts that must agree from page to page (issue 17): an alert's dates with its history, and a
child's age on the alert, case, child and referral pages, each saying the date it is taken at."""

from __future__ import annotations

import datetime as dt
import re
from html import unescape

import pytest
from sqlalchemy import select

from clms.cases.ages import ChildAge, age_on
from clms.db import session_scope
from clms.models import Alert, AlertEvent, Classification, utcnow
from tests import builders as b
from tests.conftest import PASSWORD

HOUR = dt.timedelta(hours=1)
VISIT = dt.datetime(2025, 3, 3, 8, 31, tzinfo=dt.UTC)  # the monitor's visit
RAISED = VISIT + 6 * HOUR  # when it reached the server and the alert was raised


def text(answer) -> str:
    """A page's text as read: tags out, entities decoded, spaces collapsed."""
    return " ".join(unescape(re.sub(r"<[^>]*>", " ", answer.get_data(as_text=True))).split())


@pytest.fixture
def found(app, places, make_user):
    """A child of 10 found in hazardous work at a visit in V1 (VISIT), the alert raised when
    the visit reached the server (RAISED), and a case opened from it; olga is V1's officer."""
    make_user("olga", "officer", areas=["CI-D1"])
    with session_scope(app) as s:
        home = b.household(s, "V1")
        kid = b.child(s, home, "Aya Traoré", uid="CH-AYA", birth_year=None)
        visit = b.visit(s, home, VISIT, [(kid, "hazardous")], age=10)
        cid = s.scalar(select(Classification.id).where(Classification.child_id == kid.id))
        alert = b.alert(s, kid, category="hazardous", created_at=RAISED, last_seen_at=VISIT,
                        classification_id=cid)  # fmt: skip
        s.add(AlertEvent(alert_id=alert.id, at=RAISED, action="raised",
                         detail={"category": "hazardous", "classification_id": cid}))  # fmt: skip
        case = b.case(s, kid, officer="olga", alert_id=alert.id)
        return {"alert": alert.id, "case": case.id, "visit": visit.id, "child": kid.id}


def signed_in(client, username="olga"):
    assert client.post("/login", data={"username": username, "password": PASSWORD}).status_code
    return client


def test_an_alert_says_when_it_was_raised_and_from_which_visit(app, client, found):
    """The alert page's "raised" is the moment its history's first line says; the visit that
    raised it is named with its own time; "last seen" is never before "raised"."""
    page = text(signed_in(client).get(f"/alerts/{found['alert']}"))
    assert (
        "Raised Mar 3, 2025, 14:31 UTC, when the visit of Mar 3, 2025, 08:31 UTC reached the server"
        in page
    )
    assert "Last seen" not in page  # no visit since the one that raised it
    history = page.split("History")[-1]
    assert "Mar 3, 2025, 14:31 UTC the system Raised" in history
    # a later visit saw the child again: now it is "last seen", after the raising
    with session_scope(app) as s:
        s.get(Alert, found["alert"]).last_seen_at = RAISED + 48 * HOUR
    page = text(client.get(f"/alerts/{found['alert']}"))
    assert "Last seen Mar 5, 2025, 14:31 UTC, at a later visit" in page


def test_the_age_says_at_which_date_it_is_taken_on_every_page(app, client, found):
    """10 at the visit, about 11 (or more) now: the alert, the case and the child's record say
    both, the same way, never a bare "10" here and "11" there."""
    years = age_on(None, 10, VISIT, utcnow().date()).now
    assert years > 10  # the visit was long ago
    said = f"10 years at the visit of Mar 3, 2025; about {years} now"
    signed_in(client)
    assert said in text(client.get(f"/alerts/{found['alert']}"))
    assert said in text(client.get(f"/cases/{found['case']}"))
    assert said in text(client.get("/children/CH-AYA"))
    with client.session_transaction() as session:
        session["locale"] = "fr"
    assert f"10 ans à la visite du 3 mars 2025 ; environ {years} aujourd'hui" in text(
        client.get(f"/cases/{found['case']}")
    )


def test_an_age_the_same_as_at_the_visit_still_says_its_date():
    age = age_on(None, 10, dt.date(2026, 6, 8), dt.date(2026, 12, 7))
    assert (age.seen, age.now, age.moved_on) == (10, 10, False)
    assert age_on(None, None, None, dt.date(2026, 12, 7)) == ChildAge(None, None, None)
    born = age_on(dt.date(2015, 9, 1), None, None, dt.date(2026, 12, 7))
    assert (born.seen, born.now, born.exact) == (None, 11, True)


def test_the_demo_dates_an_alert_and_its_history_together(app, found):
    """The demo moves its alerts back to the day of their visits: the history's "raised" line
    moves with them (it said today while the alert said June)."""
    from clms.demo.cases import date_alerts_as_synced

    with session_scope(app) as s:
        event = s.scalar(select(AlertEvent).where(AlertEvent.alert_id == found["alert"]))
        event.at = utcnow()  # as the demo's intake wrote it: today
        s.get(Alert, found["alert"]).last_seen_at = VISIT
    with session_scope(app) as s:
        assert date_alerts_as_synced(s) == 1
    with session_scope(app) as s:
        alert = s.get(Alert, found["alert"])
        event = s.scalar(select(AlertEvent).where(AlertEvent.alert_id == alert.id))
        assert alert.created_at == event.at == VISIT + 6 * HOUR
        assert alert.last_seen_at <= alert.created_at


def test_migration_0018_puts_the_records_of_before_right(app, found):
    """A verified case's alert no longer needs verification, and a case waiting for its
    verification is due from its opening, in a database written before the fixes."""
    import importlib

    from alembic.migration import MigrationContext
    from alembic.operations import Operations

    from clms.models import Case

    with session_scope(app) as s:
        case = s.get(Case, found["case"])
        case.category, case.opened_at, case.step_due_at = "hazardous", RAISED, RAISED - HOUR
        waiting = case.id
        home = b.household(s, "V1")
        other = b.child(s, home, "Awa Koné")
        verified_alert = b.alert(s, other, category="hazardous", needs_verification=True)
        b.case(s, other, state="assessment", alert_id=verified_alert.id, verified_at=RAISED,
               verification="confirmed", step_due_at=RAISED)  # fmt: skip
        s.get(Alert, found["alert"]).needs_verification = True  # its case is not verified yet
    migration = importlib.import_module("clms.migrations.versions.0018_facts_agree")
    with session_scope(app) as s, Operations.context(MigrationContext.configure(s.connection())):
        migration.upgrade()
    with session_scope(app) as s:
        assert not s.get(Alert, verified_alert.id).needs_verification
        assert s.get(Alert, found["alert"]).needs_verification
        due = s.get(Case, waiting).step_due_at
        assert due == RAISED + dt.timedelta(days=7)
