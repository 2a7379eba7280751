"""The officers' alert queue (operations, JSON API, web pages) and the child record."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from sqlalchemy import select

from alerts.deadlines import describe_deadline, due_at, is_overdue
from alerts.lifecycle import acknowledge_alert
from alerts.queue import list_alerts
from alerts.reasons import explain_reason
from clms.db import session_scope
from clms.errors import Problem
from clms.models import (
    Alert,
    AlertEvent,
    Household,
    User,
    UserScope,
    Village,
    utcnow,
)
from tests import builders
from tests.builders import RANK, child, child_visit, classification, household, visit
from tests.conftest import PASSWORD

CATEGORY = {"critical": "worst_form", "high": "hazardous", "medium": "child_labour",
            "low": "at_risk"}  # fmt: skip
ALERT_FIELDS = {"id", "child_id", "household_code", "category", "severity", "reasons", "village",
                "supplier", "status", "created_at", "due_at", "overdue"}  # fmt: skip


# --- building alerts ---------------------------------------------------------------------------


def add_alert(s, village: str, severity: str, *, overdue: bool = False, status: str = "new",
              supplier: str | None = "T2-COOP", ack_in_hours: float = 24, reported: bool = False,
              acknowledged: bool = False) -> int:  # fmt: skip
    """A household, a child and the child's alert in ``village``; returns the alert id.

    ``overdue`` puts the acknowledgement deadline an hour in the past; otherwise it is
    ``ack_in_hours`` ahead.
    """
    now = utcnow()
    n = (s.scalar(select(Household.id).order_by(Household.id.desc()).limit(1)) or 0) + 1
    kid = None
    if not reported:
        home = household(s, village, code=f"HH-{village}-{n:03d}", supplier=supplier)
        kid = child(s, home, f"Child {n}", sex="female", birth_year=2014)
    ack_due = now + (dt.timedelta(hours=-1) if overdue else dt.timedelta(hours=ack_in_hours))
    alert = builders.alert(
        s, kid, village=village, supplier=supplier, category=CATEGORY[severity],
        severity=severity, status=status,
        reasons=[{"rule": "HAZ_TASK", "facts": {"hazards": ["agrochemicals"], "age": 11}}],
        created_at=now - dt.timedelta(hours=2), updated_at=now,
        last_seen_at=now - dt.timedelta(hours=3), ack_due_at=ack_due,
        visit_due_at=ack_due + dt.timedelta(days=4),
        acknowledged_at=now - dt.timedelta(minutes=5) if acknowledged else None,
    )  # fmt: skip
    s.add(AlertEvent(alert_id=alert.id, action="raised", detail={"severity": severity}))
    s.flush()
    return alert.id


@pytest.fixture
def world(app, places, make_user):
    """Users of every role and one alert per village and severity pattern.

    olga: officer of CI-D1 (V1, V2); otto: officer of CI-D2 (V3, V4); sam: supervisor of CI-R1
    (all four); ada: admin with no scope; bea (brand), mo (monitor), pat (provider).
    """
    make_user("olga", "officer", areas=["CI-D1"])
    make_user("otto", "officer", areas=["CI-D2"])
    make_user("sam", "supervisor", areas=["CI-R1"])
    make_user("ada", "admin")
    make_user("bea", "brand", brand="BRAND-A")
    make_user("mo", "monitor", areas=["CI-D1"])
    make_user("pat", "provider")
    ids = {}
    with session_scope(app) as s:
        ids["v1_low"] = add_alert(s, "V1", "low", ack_in_hours=700)
        ids["v1_critical"] = add_alert(s, "V1", "critical", ack_in_hours=20)
        ids["v2_high_overdue"] = add_alert(s, "V2", "high", overdue=True)
        ids["v2_medium"] = add_alert(s, "V2", "medium", ack_in_hours=100, acknowledged=True,
                                     status="acknowledged")  # fmt: skip
        ids["v3_critical"] = add_alert(s, "V3", "critical", ack_in_hours=10)
        ids["v4_low_overdue"] = add_alert(s, "V4", "low", overdue=True, supplier="T3-GRP")
        ids["v1_dismissed"] = add_alert(s, "V1", "high", status="dismissed")
    return ids


def token(client, username: str) -> dict:
    r = client.post("/api/v1/sessions", json={"username": username, "password": PASSWORD})
    assert r.status_code == 201, r.json
    return {"Authorization": f"Bearer {r.json['token']}"}


def user(s, username: str) -> User:
    return s.scalar(select(User).where(User.username == username))


def login(client, username: str) -> None:
    r = client.post("/login", data={"username": username, "password": PASSWORD})
    assert r.status_code == 302


# --- pure helpers --------------------------------------------------------------------------------


def test_deadlines_and_overdue_rule():
    now = dt.datetime(2026, 11, 20, 12, tzinfo=dt.UTC)
    hour = dt.timedelta(hours=1)
    fresh = Alert(status="new", ack_due_at=now + 5 * hour, visit_due_at=now + 70 * hour)
    assert not is_overdue(fresh, now) and due_at(fresh) == now + 5 * hour
    assert describe_deadline(fresh, now) == "acknowledge within 5 h"
    late_ack = Alert(status="new", ack_due_at=now - hour)
    assert is_overdue(late_ack, now)
    acked = Alert(status="acknowledged", ack_due_at=now - 10 * hour, acknowledged_at=now - 9 * hour,
                  visit_due_at=now - hour)  # fmt: skip
    assert is_overdue(acked, now) and due_at(acked) == now - hour
    assert describe_deadline(acked, now) == "first visit overdue by 1 h"
    visited = Alert(status="acknowledged", ack_due_at=now - 10 * hour,
                    acknowledged_at=now - 9 * hour, visit_due_at=now - hour,
                    first_visit_at=now - 2 * hour)  # fmt: skip
    assert not is_overdue(visited, now) and due_at(visited) is None
    closed = Alert(status="dismissed", ack_due_at=now - 10 * hour)
    assert not is_overdue(closed, now) and due_at(closed) is None


def test_reasons_in_words():
    text = explain_reason({"rule": "HAZ_TASK", "facts": {"hazards": ["heavy_loads"], "age": 11}})
    assert text == (
        "A task or condition on the country's hazardous list: "
        "hazardous tasks or conditions Carrying heavy loads, or loads carried far; age 11"
    )
    reported = {"rule": "REPORTED_CONCERN", "facts": {"concern": ["child_working"]}}
    assert explain_reason(reported).endswith("to be verified: concern reported a child is working")
    # a rule id nobody described still reads as a sentence
    assert explain_reason({"rule": "HAZ_NEW_THING", "facts": {}}).startswith("Hazardous work")
    assert explain_reason({"rule": "XYZ"}) == "Rule XYZ"


# --- scope, order, filters, pages --------------------------------------------------------------


def test_scope_officer_supervisor_admin(app, world):
    with session_scope(app) as s:
        villages = {
            name: sorted({a.village.code for a in list_alerts(s, user(s, name)).rows})
            for name in ("olga", "otto", "sam", "ada", "bea", "mo", "pat")
        }
    assert villages == {
        "olga": ["V1", "V2"],
        "otto": ["V3", "V4"],
        "sam": ["V1", "V2", "V3", "V4"],
        "ada": [],
        "bea": [],
        "mo": [],
        "pat": [],
    }


def test_a_national_supervisor_sees_every_village(app, world, make_user):
    make_user("nina", "supervisor", areas=["CI"])  # the country: every area
    with session_scope(app) as s:
        national = [a.id for a in list_alerts(s, user(s, "nina")).rows]
        assert national == [a.id for a in list_alerts(s, user(s, "sam")).rows]
        assert len(national) == 6


def test_admin_with_an_officer_scope_sees_that_scope(app, world):
    with session_scope(app) as s:
        ada = user(s, "ada")
        village = s.scalar(select(Village).where(Village.code == "V3"))
        s.add(UserScope(user_id=ada.id, village_id=village.id))
    with session_scope(app) as s:
        page = list_alerts(s, user(s, "ada"))
        assert [a.id for a in page.rows] == [world["v3_critical"]]


def test_order_overdue_first_then_severity_then_deadline(app, world):
    with session_scope(app) as s:
        page = list_alerts(s, user(s, "sam"))
        order = [a.id for a in page.rows]
        assert page.overdue == {world["v2_high_overdue"], world["v4_low_overdue"]}
    assert order == [
        world["v2_high_overdue"],  # overdue, high
        world["v4_low_overdue"],  # overdue, low
        world["v3_critical"],  # critical, due in 10 h
        world["v1_critical"],  # critical, due in 20 h
        world["v2_medium"],
        world["v1_low"],
    ]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"severity": "critical"}, ["v3_critical", "v1_critical"]),
        ({"village": "V2"}, ["v2_high_overdue", "v2_medium"]),
        ({"supplier": "T3-GRP"}, ["v4_low_overdue"]),
        ({"overdue": True}, ["v2_high_overdue", "v4_low_overdue"]),
        ({"overdue": False}, ["v3_critical", "v1_critical", "v2_medium", "v1_low"]),
        ({"status": "acknowledged"}, ["v2_medium"]),
        ({"status": "dismissed"}, ["v1_dismissed"]),
        ({"status": "new", "severity": "low"}, ["v4_low_overdue", "v1_low"]),
        ({"village": "V3", "severity": "low"}, []),
    ],
)
def test_filters(app, world, filters, expected):
    with session_scope(app) as s:
        page = list_alerts(s, user(s, "sam"), **filters)
        assert [a.id for a in page.rows] == [world[k] for k in expected]
        assert page.total == len(expected)


def test_status_all_includes_closed_alerts(app, world):
    with session_scope(app) as s:
        assert list_alerts(s, user(s, "sam"), status="all").total == 7


def test_a_village_outside_scope_filters_to_nothing(app, world):
    with session_scope(app) as s:
        assert list_alerts(s, user(s, "olga"), village="V3").total == 0


def test_pagination(app, world):
    with session_scope(app) as s:
        sam = user(s, "sam")
        pages = [list_alerts(s, sam, page=n, per_page=4) for n in (1, 2, 999)]
        everything = [a.id for a in list_alerts(s, sam).rows]
        # the API's client reads pages until one is empty
        api = list_alerts(s, sam, page=3, per_page=4, keep_past_last=True)
    assert [(p.total, p.pages, p.page, len(p.rows)) for p in pages] == [
        (6, 2, 1, 4),
        (6, 2, 2, 2),
        (6, 2, 2, 2),  # past the end: the last page, numbered as it is (issue 17)
    ]
    assert [a.id for p in pages[:2] for a in p.rows] == everything
    assert (api.page, api.pages, api.rows) == (3, 2, [])


def test_pages_follow_the_queue_order_across_groups(app, world):
    """Pages are read group by group (overdue x severity); together they must be exactly the
    queue sorted in one piece, for any page size."""
    import random

    rng = random.Random(7)
    with session_scope(app) as s:
        for _ in range(40):
            add_alert(s, rng.choice(["V1", "V2", "V3", "V4"]), rng.choice(list(RANK)),
                      overdue=rng.random() < 0.4, ack_in_hours=rng.randint(1, 900),
                      acknowledged=rng.random() < 0.3)  # fmt: skip
    with session_scope(app) as s:
        sam = user(s, "sam")
        now = utcnow()
        active = s.scalars(select(Alert).where(Alert.status.in_(["new", "acknowledged"]))).all()
        expected = [
            a.id
            for a in sorted(
                active, key=lambda a: (not is_overdue(a, now), -a.severity_rank, a.ack_due_at, a.id)
            )  # fmt: skip
        ]
        for per_page in (1, 7, 50):
            pages = -(-len(expected) // per_page)
            got = []
            for n in range(1, pages + 1):
                got += [a.id for a in list_alerts(s, sam, page=n, per_page=per_page, now=now).rows]
            assert got == expected, per_page
        late = [i for i in expected if is_overdue(s.get(Alert, i), now)]
        assert [a.id for a in list_alerts(s, sam, overdue=True, per_page=200, now=now).rows] == late


# --- JSON API: the list --------------------------------------------------------------------------


def test_api_list_fields_and_values(client, world):
    r = client.get("/api/v1/alerts?per_page=2", headers=token(client, "olga"))
    assert r.status_code == 200, r.json
    body = r.json
    assert set(body) == {"alerts", "page", "per_page", "total", "pages", "next", "previous"}
    assert (body["page"], body["per_page"], body["total"], body["pages"]) == (1, 2, 4, 2)
    first, second = body["alerts"]
    assert set(first) == ALERT_FIELDS and set(second) == ALERT_FIELDS
    assert first["id"] == world["v2_high_overdue"] and first["overdue"] is True
    assert first["child_id"].startswith("CH-") and first["household_code"].startswith("HH-V2-")
    assert (first["category"], first["severity"], first["village"], first["supplier"]) == (
        "hazardous",
        "high",
        "V2",
        "T2-COOP",
    )
    assert first["status"] == "new"
    assert first["reasons"] == [
        {"rule": "HAZ_TASK", "facts": {"hazards": ["agrochemicals"], "age": 11}}
    ]
    for key in ("created_at", "due_at"):
        parsed = dt.datetime.fromisoformat(first[key])
        assert parsed.utcoffset() == dt.timedelta(0)
    assert second["id"] == world["v1_critical"] and second["overdue"] is False


def test_api_due_at_is_the_next_deadline_not_met(client, app, world):
    headers = token(client, "sam")
    alerts = {a["id"]: a for a in client.get("/api/v1/alerts", headers=headers).json["alerts"]}
    with session_scope(app) as s:
        medium = s.get(Alert, world["v2_medium"])  # acknowledged: the visit deadline is next
        critical = s.get(Alert, world["v1_critical"])  # new: the acknowledgement deadline
        assert alerts[medium.id]["due_at"] == medium.visit_due_at.isoformat()
        assert alerts[critical.id]["due_at"] == critical.ack_due_at.isoformat()


def test_api_reported_alert_has_no_child(client, app, world):
    with session_scope(app) as s:
        reported = add_alert(s, "V1", "high", reported=True, supplier=None)
    body = client.get("/api/v1/alerts?village=V1&severity=high", headers=token(client, "olga")).json
    (alert,) = body["alerts"]
    assert alert["id"] == reported
    assert (alert["child_id"], alert["household_code"], alert["supplier"]) == (None, None, None)


def test_api_filters_by_query_parameters(client, world):
    headers = token(client, "sam")

    def ids(query: str) -> list[int]:
        r = client.get(f"/api/v1/alerts?{query}", headers=headers)
        assert r.status_code == 200, r.json
        return [a["id"] for a in r.json["alerts"]]

    assert ids("severity=critical") == [world["v3_critical"], world["v1_critical"]]
    assert ids("village=V4") == [world["v4_low_overdue"]]
    assert ids("supplier=T3-GRP") == [world["v4_low_overdue"]]
    assert ids("overdue=true") == [world["v2_high_overdue"], world["v4_low_overdue"]]
    assert len(ids("overdue=false")) == 4
    assert ids("status=dismissed") == [world["v1_dismissed"]]
    assert ids("page=2&per_page=5") == [world["v1_low"]]


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("severity=urgent", "severity"),
        ("overdue=maybe", "overdue"),
        ("status=open", "status"),
        ("page=0", "page"),
        ("page=two", "page"),
        ("per_page=201", "per_page"),
        ("per_page=0", "per_page"),
        ("per_page=1.5", "per_page"),
        ("village=NOWHERE", "village"),
        ("supplier=NOBODY", "supplier"),
    ],
)
def test_api_bad_parameters_answer_400_naming_them(client, world, query, parameter):
    r = client.get(f"/api/v1/alerts?{query}", headers=token(client, "olga"))
    assert r.status_code == 400
    assert f"'{parameter}'" in r.json["message"], r.json
    assert r.json["details"]["parameter"] == parameter


@pytest.mark.parametrize("username", ["bea", "mo", "pat"])
def test_api_refuses_brand_monitor_provider(client, world, username):
    headers = token(client, username)
    alert_id = world["v1_critical"]
    for method, path in [
        ("get", "/api/v1/alerts"),
        ("get", f"/api/v1/alerts/{alert_id}"),
        ("post", f"/api/v1/alerts/{alert_id}/acknowledge"),
        ("post", f"/api/v1/alerts/{alert_id}/dismiss"),
        ("get", "/api/v1/children/CH-ANYTHING"),
    ]:
        r = getattr(client, method)(path, headers=headers, json={"reason": "x"})
        assert r.status_code == 403, (path, r.json)


def test_api_needs_a_token(client, world):
    alert_id = world["v1_critical"]
    for method, path in [
        ("get", "/api/v1/alerts"),
        ("get", f"/api/v1/alerts/{alert_id}"),
        ("post", f"/api/v1/alerts/{alert_id}/acknowledge"),
        ("post", f"/api/v1/alerts/{alert_id}/assign"),
        ("post", f"/api/v1/alerts/{alert_id}/dismiss"),
        ("get", "/api/v1/children/CH-ANYTHING"),
    ]:
        assert getattr(client, method)(path).status_code == 401, path


def test_api_alert_outside_scope_is_not_found(client, app, world):
    headers = token(client, "olga")
    outside = world["v3_critical"]
    missing = max(world.values()) + 100
    for alert_id in (outside, missing):
        assert client.get(f"/api/v1/alerts/{alert_id}", headers=headers).status_code == 404
        for action, body in [("acknowledge", None), ("assign", {"assignee": "olga"}),
                             ("dismiss", {"reason": "not ours"})]:  # fmt: skip
            r = client.post(f"/api/v1/alerts/{alert_id}/{action}", headers=headers, json=body or {})
            assert r.status_code == 404, (action, r.json)
    # the same answer for both: nothing tells an officer that alert exists
    assert client.get(f"/api/v1/alerts/{outside}", headers=headers).json == (
        client.get(f"/api/v1/alerts/{missing}", headers=headers).json
    )
    with session_scope(app) as s:
        assert s.get(Alert, outside).status == "new"


def test_api_admin_without_scope_sees_nothing(client, world):
    headers = token(client, "ada")
    assert client.get("/api/v1/alerts", headers=headers).json["total"] == 0
    assert client.get(f"/api/v1/alerts/{world['v1_critical']}", headers=headers).status_code == 404


# --- acting on alerts ----------------------------------------------------------------------------


def events_of(app, alert_id: int) -> list[tuple[str | None, str, dict]]:
    with session_scope(app) as s:
        rows = s.scalars(
            select(AlertEvent).where(AlertEvent.alert_id == alert_id).order_by(AlertEvent.id)
        )
        return [(e.user.username if e.user else None, e.action, e.detail) for e in rows]


def test_api_acknowledge_assign_dismiss_with_history(client, app, world):
    headers = token(client, "olga")
    alert_id = world["v1_critical"]
    base = f"/api/v1/alerts/{alert_id}"

    r = client.post(f"{base}/acknowledge", headers=headers)
    assert r.status_code == 200 and r.json["status"] == "acknowledged"
    assert set(r.json) == ALERT_FIELDS
    again = client.post(f"{base}/acknowledge", headers=headers)
    assert again.status_code == 409
    assert "already acknowledged by olga" in again.json["message"]

    r = client.post(f"{base}/assign", headers=headers, json={"assignee": "sam"})
    assert r.status_code == 200, r.json
    # otto works in CI-D2, not in V1; a brand user is no officer; nobody is called ghost
    for assignee, words in [("otto", "must work in village V1"),
                            ("bea", "active officer or supervisor"),
                            ("ghost", "active officer or supervisor")]:  # fmt: skip
        r = client.post(f"{base}/assign", headers=headers, json={"assignee": assignee})
        assert r.status_code == 400 and words in r.json["message"], r.json
        assert r.json["details"]["field"] == "assignee"
    assert client.post(f"{base}/assign", headers=headers, json={}).status_code == 400

    for body in ({}, {"reason": "   "}, {"reason": 5}):
        r = client.post(f"{base}/dismiss", headers=headers, json=body)
        assert r.status_code == 400 and "reason" in r.json["message"], body
    assert client.post(f"{base}/dismiss", headers=headers, data="reason").status_code == 400

    r = client.post(f"{base}/dismiss", headers=headers, json={"reason": "Verified: not working."})
    assert r.status_code == 200 and r.json["status"] == "dismissed"
    assert r.json["due_at"] is None and r.json["overdue"] is False
    twice = client.post(f"{base}/dismiss", headers=headers, json={"reason": "again"})
    assert twice.status_code == 409 and "was dismissed" in twice.json["message"]
    late_ack = client.post(f"{base}/acknowledge", headers=headers)
    assert late_ack.status_code == 409 and "only a new or acknowledged" in late_ack.json["message"]
    late_assign = client.post(f"{base}/assign", headers=headers, json={"assignee": "olga"})
    assert late_assign.status_code == 409

    assert events_of(app, alert_id) == [
        (None, "raised", {"severity": "critical"}),
        ("olga", "acknowledged", {}),
        ("olga", "assigned", {"assignee": "sam", "previous": None}),
        ("olga", "dismissed", {"reason": "Verified: not working."}),
    ]
    detail = client.get(base, headers=headers).json
    assert detail["assigned_to"] == "sam" and detail["dismissed_reason"] == "Verified: not working."
    assert [e["action"] for e in detail["events"]] == [
        "raised",
        "acknowledged",
        "assigned",
        "dismissed",
    ]
    with session_scope(app) as s:
        alert = s.get(Alert, alert_id)
        assert alert.acknowledged_by_id == user(s, "olga").id
        assert alert.dismissed_at is not None and alert.closed_at is not None


def test_supervisor_can_assign_in_any_village_of_the_region(client, world):
    headers = token(client, "sam")
    r = client.post(f"/api/v1/alerts/{world['v3_critical']}/assign", headers=headers,
                    json={"assignee": "otto"})  # fmt: skip
    assert r.status_code == 200
    r = client.post(f"/api/v1/alerts/{world['v3_critical']}/assign", headers=headers,
                    json={"assignee": "otto"})  # fmt: skip
    assert r.status_code == 409 and "already assigned to otto" in r.json["message"]


def test_inactive_officer_cannot_be_assigned(client, app, world, make_user):
    make_user("olivier", "officer", areas=["CI-D1"])
    with session_scope(app) as s:
        user(s, "olivier").active = False
    r = client.post(f"/api/v1/alerts/{world['v1_low']}/assign", headers=token(client, "olga"),
                    json={"assignee": "olivier"})  # fmt: skip
    assert r.status_code == 400


def test_acting_on_a_stale_copy_is_refused(app, world):
    """Two officers opened the same new alert; one acknowledges; the other's copy is stale."""
    maker = app.extensions["clms_sessionmaker"]
    first, second = maker(), maker()
    try:
        # on SQLite every transaction but a read-only one holds the write lock: each session
        # ends its transaction before the other starts, as two web requests would
        olga = user(first, "olga")
        first.commit()
        sam = user(second, "sam")
        stale = second.get(Alert, world["v2_high_overdue"])
        assert stale.status == "new"
        second.commit()  # the copy stays in the session's identity map, now stale
        acknowledge_alert(first, olga, world["v2_high_overdue"])
        first.commit()
        with pytest.raises(Problem) as refused:
            acknowledge_alert(second, sam, world["v2_high_overdue"])
        assert refused.value.status == 409 and "already acknowledged by olga" in str(refused.value)
    finally:
        first.close()
        second.close()


@pytest.mark.committing  # two threads, each with a connection of its own
def test_concurrent_acknowledgements_let_exactly_one_win(app, world):
    maker = app.extensions["clms_sessionmaker"]
    barrier = threading.Barrier(2)
    outcomes: dict[str, str] = {}

    def acknowledge(username: str) -> None:
        session = maker()
        try:
            me = user(session, username)
            session.commit()  # release the read transaction: both start the write together
            barrier.wait()
            acknowledge_alert(session, me, world["v1_critical"])
            session.commit()
            outcomes[username] = "ok"
        except Problem as p:
            session.rollback()
            outcomes[username] = p.code
        finally:
            session.close()

    threads = [threading.Thread(target=acknowledge, args=(u,)) for u in ("olga", "sam")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(outcomes.values()) == ["409.4", "ok"], outcomes
    assert [e[1] for e in events_of(app, world["v1_critical"])] == ["raised", "acknowledged"]


# --- the child record ----------------------------------------------------------------------------


def add_visits(app, alert_id: int) -> str:
    """Two visits of the alert's child, the first classified twice; returns the child's uid."""
    with session_scope(app) as s:
        alert = s.get(Alert, alert_id)
        kid = alert.child
        child_visits = []
        for day, kind, hours in [(1, "household", 6), (20, "followup", 0)]:
            v = visit(s, alert.household, dt.datetime(2026, 11, day, 9, tzinfo=dt.UTC), kind=kind)
            child_visits.append(child_visit(
                s, v, kid, age=11, attends_school=True,
                work_activities=["own_farm"] if hours else [], work_hours_7d=hours,
                chore_hours_7d=4, hazards=["agrochemicals"] if hours else [], night_work=False,
                worst_form_signs=[],
            ))  # fmt: skip
        first, followup = child_visits
        old = classification(s, first, "child_labour", current=False, rule_set_version="2026.1",
                             sdg_871=True,
                             reasons=[{"rule": "CL_UNDER_LIGHT_AGE", "facts": {"age": 11}}],
                             classified_at=dt.datetime(2026, 11, 1, 10, tzinfo=dt.UTC))  # fmt: skip
        classification(s, first, "hazardous", rule_set_version="2026.2", sdg_871=True,
                       previous_id=old.id, change_reason="hazard list changed",
                       reasons=[{"rule": "HAZ_TASK", "facts": {"hazards": ["agrochemicals"]}}],
                       classified_at=dt.datetime(2026, 11, 2, 10, tzinfo=dt.UTC))  # fmt: skip
        classification(s, followup, "none", rule_set_version="2026.2", sdg_871=False, reasons=[],
                       classified_at=dt.datetime(2026, 11, 20, 10, tzinfo=dt.UTC))  # fmt: skip
        return kid.child_uid


def test_api_child_record(client, app, world):
    uid = add_visits(app, world["v1_critical"])
    r = client.get(f"/api/v1/children/{uid}", headers=token(client, "olga"))
    assert r.status_code == 200, r.json
    record = r.json
    assert set(record) == {"child", "visits", "alerts"}
    assert record["child"]["child_id"] == uid and "name" not in record["child"]
    assert record["child"]["household_code"].startswith("HH-V1-")
    newest, oldest = record["visits"]
    assert (newest["kind"], newest["village"], newest["work_hours_7d"]) == ("followup", "V1", 0)
    assert newest["visited_at"].startswith("2026-11-20T09:00:00")
    assert [c["category"] for c in newest["classifications"]] == ["none"]
    assert oldest["kind"] == "household" and oldest["hazards"] == ["agrochemicals"]
    assert [(c["category"], c["current"], c["rule_set_version"]) for c in
            oldest["classifications"]] == [("hazardous", True, "2026.2"),
                                           ("child_labour", False, "2026.1")]  # fmt: skip
    current = oldest["classifications"][0]
    assert current["profile"] == {"code": "ILO", "version": 1}
    assert current["reasons"] == [{"rule": "HAZ_TASK", "facts": {"hazards": ["agrochemicals"]}}]
    assert current["change_reason"] == "hazard list changed"
    assert [(a["id"], a["severity"], a["status"]) for a in record["alerts"]] == [
        (world["v1_critical"], "critical", "new")
    ]


def test_api_child_outside_scope_is_not_found(client, app, world):
    with session_scope(app) as s:
        uid_v3 = s.get(Alert, world["v3_critical"]).child.child_uid
    headers = token(client, "olga")
    assert client.get(f"/api/v1/children/{uid_v3}", headers=headers).status_code == 404
    assert client.get("/api/v1/children/CH-NOSUCHKID", headers=headers).status_code == 404
    assert client.get(f"/api/v1/children/{uid_v3}", headers=token(client, "sam")).status_code == 200
    assert client.get(f"/api/v1/children/{uid_v3}", headers=token(client, "ada")).status_code == 404


# --- web pages -----------------------------------------------------------------------------------


def test_web_queue_lists_filters_and_pages(client, app, world):
    login(client, "olga")
    page = client.get("/alerts")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert html.count('<th scope="row"') == 4
    assert f'href="/alerts/{world["v2_high_overdue"]}"' in html
    assert f'href="/alerts/{world["v3_critical"]}"' not in html  # V3 is not olga's
    assert 'class="badge overdue"' in html and "acknowledgement overdue by" in html
    assert '<label for="f-village">Village</label>' in html
    # the village select offers olga's villages only
    assert '<option value="V1"' in html and '<option value="V3"' not in html
    with session_scope(app) as s:
        uid = s.get(Alert, world["v1_critical"]).child.child_uid
    assert uid in html and "Child 2" not in html  # the pseudonymous id, never the name

    filtered = client.get("/alerts?severity=critical&overdue=false").get_data(as_text=True)
    assert filtered.count('<th scope="row"') == 1
    assert '<option value="critical" selected' in filtered

    bad = client.get("/alerts?severity=urgent")
    assert bad.status_code == 400 and "Parameter &#39;severity&#39;" in bad.get_data(as_text=True)

    for n in range(60):
        with session_scope(app) as s:
            add_alert(s, "V1", "low", ack_in_hours=200 + n)
    first = client.get("/alerts").get_data(as_text=True)
    assert "Page 1</span> of 2" in first and 'rel="next"' in first
    second = client.get("/alerts?page=2&village=V1").get_data(as_text=True)
    assert "Page 2</span> of 2" in second and "village=V1" in second


def test_web_alert_page_and_actions(client, app, world):
    alert_id = world["v1_critical"]
    login(client, "olga")
    html = client.get(f"/alerts/{alert_id}").get_data(as_text=True)
    assert "A task or condition on the country&#39;s hazardous list" in html
    assert '<label for="reason">' in html and '<select id="assignee" name="assignee"' in html
    assert '<option value="olga">' in html and '<option value="sam">' in html
    assert '<option value="otto">' not in html  # not an officer of V1
    assert "the system" in html and "Raised" in html

    r = client.post(f"/alerts/{alert_id}/acknowledge")
    assert r.status_code == 303 and r.headers["Location"] == f"/alerts/{alert_id}"
    html = client.get(f"/alerts/{alert_id}").get_data(as_text=True)
    assert "Alert acknowledged." in html and "olga" in html
    client.post(f"/alerts/{alert_id}/acknowledge")
    assert "already acknowledged by olga" in client.get(f"/alerts/{alert_id}").get_data(
        as_text=True
    )

    client.post(f"/alerts/{alert_id}/assign", data={"assignee": "sam"})
    assert "Alert assigned to sam." in client.get(f"/alerts/{alert_id}").get_data(as_text=True)

    client.post(f"/alerts/{alert_id}/dismiss", data={"reason": "  "})
    html = client.get(f"/alerts/{alert_id}").get_data(as_text=True)
    assert "Field &#39;reason&#39; is required" in html and 'class="flash error"' in html

    client.post(f"/alerts/{alert_id}/dismiss", data={"reason": "Duplicate of another alert."})
    html = client.get(f"/alerts/{alert_id}").get_data(as_text=True)
    assert "Alert dismissed." in html and "Duplicate of another alert." in html
    assert '<textarea id="reason"' not in html  # no actions on a closed alert
    assert [e[1] for e in events_of(app, alert_id)] == [
        "raised",
        "acknowledged",
        "assigned",
        "dismissed",
    ]


def test_web_out_of_scope_and_roles(client, world):
    login(client, "olga")
    assert client.get(f"/alerts/{world['v3_critical']}").status_code == 404
    assert client.post(f"/alerts/{world['v3_critical']}/acknowledge").status_code == 404
    client.post("/logout")
    login(client, "bea")
    assert client.get("/alerts").status_code == 403
    client.post("/logout")
    login(client, "ada")  # an admin without an officer scope: the page, with nothing in it
    page = client.get("/alerts")
    assert page.status_code == 200 and "No alerts in your areas" in page.get_data(as_text=True)
    assert client.get(f"/alerts/{world['v1_critical']}").status_code == 404
    client.post("/logout")
    anonymous = client.get("/alerts")
    assert anonymous.status_code == 302 and "/login" in anonymous.headers["Location"]


def test_web_child_record(client, app, world):
    uid = add_visits(app, world["v1_critical"])
    login(client, "olga")
    html = client.get(f"/children/{uid}").get_data(as_text=True)
    assert html.count("<section") == 2
    assert "follow-up visit" in html and "household visit" in html
    assert "rules 2026.1; profile ILO v1" in html and "Changed because: hazard list changed" in html
    assert "Child 2" in html  # the officer in scope sees the name
    client.post("/logout")
    login(client, "otto")
    assert client.get(f"/children/{uid}").status_code == 404
