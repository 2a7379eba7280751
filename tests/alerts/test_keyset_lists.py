"""Deep lists paged by key (issue 19, point 4): the alert queue (every order, the operation, the
API and the page), the case list and a provider's referrals.

Each walk by cursor must give every row exactly once, in the order the list had before it was
paged by key (read here as one page), with ties, rows added between two reads, backward as
forward, on both databases; a bad cursor is a 400 naming the parameter; the scope still applies
whatever the cursor says.
"""

from __future__ import annotations

import datetime as dt
import re
from urllib.parse import parse_qs, urlparse

import pytest
from sqlalchemy import select

from alerts.queue import ALERT_CURSORS, SORTS, list_alerts
from clms.cases.queries import list_cases, provider_referrals
from clms.db import session_scope
from clms.models import User
from clms.paging import Key
from tests import builders as b
from tests.conftest import PASSWORD

NOW = b.NOW
HOUR = dt.timedelta(hours=1)
SEVERITY_CATEGORY = {"critical": "worst_form", "high": "hazardous", "medium": "child_labour",
                     "low": "at_risk"}  # fmt: skip


def user(s, username: str) -> User:
    return s.scalar(select(User).where(User.username == username))


@pytest.fixture
def queue(app, places, make_user):
    """37 alerts in V1-V4 with many ties: four severities, deadlines on three hours (some past
    at :data:`NOW`, so overdue), ages at the visit with some missing, two statuses. olga is an
    officer of CI-D1 (V1, V2), sam a supervisor of the region (all four), otto an officer of
    CI-D2 (V3, V4)."""
    make_user("olga", "officer", areas=["CI-D1"])
    make_user("otto", "officer", areas=["CI-D2"])
    make_user("sam", "supervisor", areas=["CI-R1"])
    severities = list(SEVERITY_CATEGORY)
    with session_scope(app) as s:
        for n in range(37):
            village = ("V1", "V2", "V3", "V4")[n % 4]
            home = b.household(s, village)
            kid = b.child(s, home, f"Child {n}", sex="female" if n % 2 else "male")
            severity = severities[n % 3 if n % 5 else 3]
            age = None if n % 6 == 0 else 8 + n % 5
            cv = b.child_visit(s, b.visit(s, home, NOW - 50 * HOUR), kid, age=age)
            found = b.classification(s, cv, SEVERITY_CATEGORY[severity])
            b.alert(
                s, kid, category=SEVERITY_CATEGORY[severity], severity=severity,
                status="acknowledged" if n % 7 == 0 else "new",
                classification_id=found.id, created_at=NOW - (n % 3) * HOUR,
                ack_due_at=NOW + (n % 3 - 1) * HOUR, visit_due_at=NOW + 48 * HOUR,
            )  # fmt: skip


def walk(session, username: str, *, sort: str, per_page: int, backward: bool = False, **filters):
    """The ids of every page of the queue read by key, first to last (or last to first)."""
    me = user(session, username)
    first = list_alerts(session, me, sort=sort, per_page=per_page, now=NOW, **filters)
    if backward:  # start from the last page, then follow the previous pages' cursors
        pages = first.pages
        first = list_alerts(session, me, sort=sort, per_page=per_page, now=NOW, page=pages,
                            **filters)  # fmt: skip
    pages, page = [first], first
    while (page.previous_key if backward else page.next_key) is not None:
        parameter = "before" if backward else "after"
        cursor = page.previous_key if backward else page.next_key
        key = ALERT_CURSORS.read({parameter: cursor}, sort)
        page = list_alerts(session, me, sort=sort, per_page=per_page, now=NOW, key=key,
                           **filters)  # fmt: skip
        pages.append(page)
        assert len(pages) < 50, "the walk goes round"
    if backward:
        pages.reverse()
    return [[a.id for a in p.rows] for p in pages], [p.page for p in pages]


def whole(session, username: str, *, sort: str, **filters) -> list[int]:
    """The queue as one page: the order every walk must keep."""
    me = user(session, username)
    return [a.id for a in list_alerts(session, me, sort=sort, per_page=200, now=NOW,
                                      **filters).rows]  # fmt: skip


@pytest.mark.parametrize("sort", SORTS)
def test_every_order_of_the_queue_walks_by_key_forward_and_back(app, queue, sort):
    with session_scope(app) as s:
        expected = whole(s, "sam", sort=sort, status="all")
        assert len(expected) == 37
        for per_page in (4, 5):
            pages, numbers = walk(s, "sam", sort=sort, per_page=per_page, status="all")
            assert [i for p in pages for i in p] == expected, (sort, per_page)
            assert all(len(p) == per_page for p in pages[:-1])
            assert numbers == list(range(1, len(pages) + 1))  # "Page N of M" stays true
            back, numbers = walk(s, "sam", sort=sort, per_page=per_page, status="all",
                                 backward=True)  # fmt: skip
            assert [i for p in back for i in p] == expected, (sort, per_page)
            assert numbers == list(range(1, len(back) + 1))


def test_the_walk_keeps_filters_and_scope(app, queue):
    with session_scope(app) as s:
        for filters in ({"severity": "high"}, {"overdue": True}, {"overdue": False},
                        {"village": "V2"}, {}):  # fmt: skip
            expected = whole(s, "olga", sort="urgency", **filters)
            pages, _numbers = walk(s, "olga", sort="urgency", per_page=3, **filters)
            assert [i for p in pages for i in p] == expected, filters
        in_scope = set(whole(s, "olga", sort="urgency", status="all"))
        # otto's cursor, from his villages, in olga's hands: still olga's alerts only
        otto_page = list_alerts(s, user(s, "otto"), per_page=2, now=NOW)
        key = ALERT_CURSORS.read({"after": otto_page.next_key}, "urgency")
        later = list_alerts(s, user(s, "olga"), per_page=50, now=NOW, key=key, status="all")
        assert later.rows and {a.id for a in later.rows} <= in_scope


def test_rows_added_between_two_reads_neither_repeat_nor_hide_a_row(app, queue):
    """OFFSET would show the last row of page 1 again on page 2 when a more urgent alert
    arrives in between; by key, page 2 starts after the row it was asked after."""
    with session_scope(app) as s:
        sam = user(s, "sam")
        first = list_alerts(s, sam, per_page=10, now=NOW)
        before = [a.id for a in first.rows]
        # one alert more urgent than every row (overdue critical), one at the very end (low)
        home = b.household(s, "V1")
        urgent = b.alert(s, b.child(s, home, "New urgent"), category="worst_form",
                         ack_due_at=NOW - 5 * HOUR).id  # fmt: skip
        last = b.alert(s, b.child(s, b.household(s, "V3"), "New last"), category="at_risk",
                       severity="low", ack_due_at=NOW + 900 * HOUR).id  # fmt: skip
        rest, page = [], first
        while page.next_key:
            key = ALERT_CURSORS.read({"after": page.next_key}, "urgency")
            page = list_alerts(s, sam, per_page=10, now=NOW, key=key)
            rest += [a.id for a in page.rows]
        seen = before + rest
        assert len(seen) == len(set(seen)), "a row shown twice"
        assert urgent not in rest and rest[-1] == last
        everything = whole(s, "sam", sort="urgency")
        assert sorted(seen) == sorted(i for i in everything if i != urgent)


def test_a_deep_page_by_key_is_the_numbered_page(app, queue):
    """The cursor of page 3 reads the rows OFFSET read for page 4 (the same rows, not re-sorted)."""
    with session_scope(app) as s:
        sam = user(s, "sam")
        third = list_alerts(s, sam, per_page=5, page=3, now=NOW, status="all")
        fourth = list_alerts(s, sam, per_page=5, page=4, now=NOW, status="all")
        key = ALERT_CURSORS.read({"after": third.next_key}, "urgency")
        by_key = list_alerts(s, sam, per_page=5, now=NOW, key=key, status="all")
        assert [a.id for a in by_key.rows] == [a.id for a in fourth.rows]
        assert (by_key.page, by_key.pages, by_key.total) == (4, 8, 37)


# --- the API ----------------------------------------------------------------------------------


def bearer(client, username: str) -> dict:
    r = client.post("/api/v1/sessions", json={"username": username, "password": PASSWORD})
    assert r.status_code == 201, r.json
    return {"Authorization": f"Bearer {r.json['token']}"}


def test_api_walks_by_its_next_cursors_and_link_header(app, client, queue):
    headers = bearer(client, "sam")
    whole_list = client.get("/api/v1/alerts?per_page=200&sort=-age", headers=headers).json
    expected = [a["id"] for a in whole_list["alerts"]]
    seen, url, numbers = [], "/api/v1/alerts?per_page=6&sort=-age", []
    while url:
        r = client.get(url, headers=headers)
        assert r.status_code == 200, r.json
        seen += [a["id"] for a in r.json["alerts"]]
        numbers.append(r.json["page"])
        assert r.json["total"] == 37 and r.json["pages"] == 7
        link = r.headers.get("Link", "")
        if r.json["next"] is None:
            assert 'rel="next"' not in link
            url = None
        else:
            found = re.search(r'<([^>]+)>; rel="next"', link)
            assert found, link
            query = parse_qs(urlparse(found.group(1)).query)
            assert query["after"] == [r.json["next"]]
            assert query["sort"] == ["-age"] and query["per_page"] == ["6"]  # filters kept
            url = f"/api/v1/alerts?per_page=6&sort=-age&after={r.json['next']}"
    assert seen == expected and numbers == [1, 2, 3, 4, 5, 6, 7]
    # and back, by the previous cursors
    back, previous = [], r.json["previous"]
    while previous:
        r = client.get(f"/api/v1/alerts?per_page=6&sort=-age&before={previous}", headers=headers)
        back = [a["id"] for a in r.json["alerts"]] + back
        previous = r.json["previous"]
    assert back == expected[:36] and r.json["page"] == 1


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("after=not-a-cursor", "after"),
        ("before=%%%", "before"),
        ("after=W10", "after"),  # base64 of [] : JSON, but not a cursor
        ("after=eyJhIjoxfQ", "after"),  # {"a": 1}
        ("sort=village&after={urgency}", "after"),  # a cursor of another order
        ("after={urgency}&before={urgency}", "before"),
        ("page=2&after={urgency}", "page"),
    ],
)
def test_api_refuses_a_bad_cursor_naming_it(app, client, queue, query, parameter):
    urgency = ALERT_CURSORS.cursor("urgency", (True, 4, NOW, 1), page=2)
    r = client.get(f"/api/v1/alerts?{query.format(urgency=urgency)}", headers=bearer(client, "sam"))
    assert r.status_code == 400, r.json
    assert f"'{parameter}'" in r.json["message"], r.json


@pytest.mark.parametrize(
    "values",
    [
        ("yes", 4, "2026-01-01T00:00:00+00:00", 1),  # not a boolean
        (True, 4, "2026-01-01T00:00:00", 1),  # no time zone
        (True, 4, "tomorrow", 1),
        (True, 4.5, "2026-01-01T00:00:00+00:00", 1),
        (True, 4, "2026-01-01T00:00:00+00:00"),  # one value short
    ],
)
def test_a_cursor_with_values_of_the_wrong_kind_is_refused(values):
    import base64
    import json

    from clms.errors import Problem

    raw = json.dumps(["alerts:urgency", 2, *values]).encode()
    cursor = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    with pytest.raises(Problem) as refused:
        ALERT_CURSORS.read({"after": cursor}, "urgency")
    assert refused.value.details["parameter"] == "after"


# --- the web page ----------------------------------------------------------------------------


def login(client, username: str) -> None:
    r = client.post("/login", data={"username": username, "password": PASSWORD})
    assert r.status_code == 302


def test_the_alerts_page_follows_next_links_by_key(app, client, queue):
    login(client, "sam")
    with session_scope(app) as s:
        for n in range(20):  # two pages of 50
            b.alert(s, b.child(s, b.household(s, "V2"), f"More {n}"), category="at_risk",
                    ack_due_at=NOW + n * HOUR)  # fmt: skip
    with session_scope(app) as s:
        expected = whole(s, "sam", sort="village", status="all")
    seen, url, pages = [], "/alerts?status=all&sort=village", 0
    while url:
        html = client.get(url).get_data(as_text=True)
        pages += 1
        seen += [int(i) for i in re.findall(r'name="alert" value="(\d+)"', html)]
        assert pages == 1 or f"Page {pages}</span> of 2" in html
        found = re.search(r'href="([^"]+)" rel="next"', html)
        url = found.group(1).replace("&amp;", "&") if found else None
        if url:
            assert "after=" in url and "page=" not in url
            assert "status=all" in url and "sort=village" in url
        assert pages < 10
    assert seen == expected and pages == 2


def test_the_alerts_page_refuses_a_bad_cursor(app, client, queue):
    login(client, "sam")
    r = client.get("/alerts?after=garbage")
    assert r.status_code == 400
    assert "after" in r.get_data(as_text=True)


# --- cases and referrals ------------------------------------------------------------------------


@pytest.fixture
def cases(app, places, make_user):
    """23 cases of olga's villages with tied deadlines and openings, some without a step
    deadline, some overdue at :data:`NOW`; and 23 referrals to her provider with tied deadlines
    and three statuses."""
    make_user("olga", "officer", areas=["CI-D1"])
    make_user("otto", "officer", areas=["CI-D2"])
    make_user("pat", "provider")
    with session_scope(app) as s:
        for n in range(23):
            home = b.household(s, ("V1", "V2", "V3")[n % 3])
            kid = b.child(s, home, f"Child {n}")
            due = None if n % 4 == 0 else NOW + (n % 3 - 1) * 24 * HOUR
            case = b.case(s, kid, officer="olga", opened_at=NOW - (n % 2) * HOUR,
                          step_due_at=due)  # fmt: skip
            b.referral(s, case, "TEST-PROVIDER", status=("pending", "accepted", "done")[n % 3],
                       respond_by=NOW + (n % 2) * HOUR)  # fmt: skip


def test_the_case_list_walks_by_key(app, cases):
    from clms.cases.queries import CASE_CURSORS

    with session_scope(app) as s:
        for username in ("olga", "otto"):
            me = user(s, username)
            for state in ("open", "all"):
                expected = [c.id for c in list_cases(s, me, state=state, per_page=200,
                                                     now=NOW).rows]  # fmt: skip
                assert expected
                page = list_cases(s, me, state=state, per_page=4, now=NOW)
                seen, numbers = [c.id for c in page.rows], [page.page]
                while page.next_key:
                    key = CASE_CURSORS.read({"after": page.next_key}, "due")
                    page = list_cases(s, me, state=state, per_page=4, now=NOW, key=key)
                    seen += [c.id for c in page.rows]
                    numbers.append(page.page)
                assert seen == expected and numbers == list(range(1, len(numbers) + 1))
                back = [c.id for c in page.rows]
                while page.previous_key:
                    key = CASE_CURSORS.read({"before": page.previous_key}, "due")
                    page = list_cases(s, me, state=state, per_page=4, now=NOW, key=key)
                    back = [c.id for c in page.rows] + back
                assert back == expected and page.page == 1


def test_the_case_page_links_by_key(app, client, cases):
    with session_scope(app) as s:
        for n in range(40):  # olga's 16 cases and these: two pages of 50
            b.case(s, b.child(s, b.household(s, "V1"), f"More {n}"), officer="olga")
    login(client, "olga")

    def link(html: str, rel: str) -> str | None:
        found = re.search(rf'href="([^"]+)" rel="{rel}"', html)
        return found.group(1).replace("&amp;", "&") if found else None

    def ids(html: str) -> list[str]:
        return re.findall(r'href="/cases/(\d+)"', html)

    first = client.get("/cases?state=all").get_data(as_text=True)
    nxt = link(first, "next")
    assert "after=" in nxt and "state=all" in nxt and link(first, "prev") is None
    second = client.get(nxt).get_data(as_text=True)
    assert "Page 2 of 2" in second and link(second, "next") is None
    assert len(set(ids(first) + ids(second))) == 56
    prev = link(second, "prev")
    assert "before=" in prev and ids(client.get(prev).get_data(as_text=True)) == ids(first)
    assert client.get("/cases?after=xyz").status_code == 400


def test_a_providers_referrals_walk_by_key(app, client, cases):
    from clms.cases.queries import REFERRAL_CURSORS

    with session_scope(app) as s:
        pat = user(s, "pat")
        for status in ("open", "all"):
            expected = [r.referral.id for r in provider_referrals(s, pat, status=status).rows]
            page = provider_referrals(s, pat, status=status, per_page=4)
            seen = [r.referral.id for r in page.rows]
            while page.next_key:
                key = REFERRAL_CURSORS.read({"after": page.next_key}, "waiting")
                page = provider_referrals(s, pat, status=status, per_page=4, key=key)
                seen += [r.referral.id for r in page.rows]
            assert seen == expected and len(seen) == (23 if status == "all" else 16)
    login(client, "pat")
    assert client.get("/referrals?after=xyz").status_code == 400
    assert client.get("/referrals?before=xyz&status=all").status_code == 400


def test_key_kinds_follow_each_order():
    """Every order of the queue has its cursor kinds (a new order without them cannot page)."""
    assert set(ALERT_CURSORS.orders) == set(SORTS)
    assert Key("urgency", (True, 4, NOW, 1), 2).page == 2


# --- the audit log -----------------------------------------------------------------------------


def test_the_audit_log_refuses_a_bad_key_and_links_back_to_the_newest(app, client, make_user):
    make_user("ada", "admin")
    login(client, "ada")
    for bad in ("abc", "-5", "0", "1e3", "9" * 30):
        r = client.get(f"/audit?before={bad}")
        assert r.status_code == 400, bad
        assert "before" in r.get_data(as_text=True)
    html = client.get("/audit?before=999999&action=audit.").get_data(as_text=True)
    assert 'rel="first"' in html and "Newest entries" in html
    assert 'rel="first"' not in client.get("/audit").get_data(as_text=True)


def test_a_cursors_page_number_never_contradicts_the_page(app, cases):
    """A cursor's page number is taken as a hint: a page with more after it is never called the
    last, one without more is the last, and a page after another is never the first (a forged
    or stale cursor saying page 999 gave "Page 5 of 5" with a Next link)."""
    import base64
    import json

    from clms.cases.queries import CASE_CURSORS

    with session_scope(app) as s:
        me = user(s, "olga")
        first = list_cases(s, me, state="all", per_page=4, now=NOW)
        assert first.next_key and first.pages >= 3
        raw = first.next_key + "=" * (-len(first.next_key) % 4)
        body = json.loads(base64.urlsafe_b64decode(raw))
        for claimed in (999, 1):
            body[1] = claimed
            forged = base64.urlsafe_b64encode(json.dumps(body).encode()).decode().rstrip("=")
            key = CASE_CURSORS.read({"after": forged}, "due")
            page = list_cases(s, me, state="all", per_page=4, now=NOW, key=key)
            assert page.next_key and page.previous_key
            assert 2 <= page.page <= page.pages - 1, (claimed, page.page, page.pages)
