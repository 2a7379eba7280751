"""The case list as a download (``/cases/export.csv`` and ``.xlsx``): who may, what it holds
(pseudonymous, no free text), the list's filters and order, the person's scope, the audit log
(issue 19, point 3)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json

import openpyxl
import pytest
from sqlalchemy import select

from clms.cases.export import CASE_COLUMNS
from clms.cases.queries import list_cases
from clms.db import session_scope
from clms.models import AuditEvent, User, utcnow
from tests import builders as b
from tests.conftest import PASSWORD

NOW = utcnow()
DAY = dt.timedelta(days=1)


@pytest.fixture
def cases(app, places, make_user):
    """Cases in V1 and V2 (CI-D1, olga's) and V3 (CI-D2, otto's): one overdue, one closed, one
    whose child's id a spreadsheet would run as a formula; names and notes that must not leave."""
    make_user("olga", "officer", areas=["CI-D1"])
    make_user("otto", "officer", areas=["CI-D2"])
    make_user("sam", "supervisor", areas=["CI-R1"])
    make_user("mo", "monitor", areas=["CI-D1"])
    make_user("bea", "brand", brand="BRAND-A")
    make_user("ada", "admin")
    with session_scope(app) as s:
        h1, h2, h3 = b.household(s, "V1"), b.household(s, "V2"), b.household(s, "V3")
        aya = b.child(s, h1, "Aya Traoré", uid="=HYPERLINK(1)")
        bema = b.child(s, h2, "Bema Koné")
        drissa = b.child(s, h3, "Drissa Bamba")
        fanta = b.child(s, h1, "Fanta Traoré")
        b.case(s, aya, state="implementation", officer="olga", opened_at=NOW - 30 * DAY,
               step_due_at=NOW - 2 * DAY, category="hazardous", risk_level="high",
               closure_reason="Secret reason", lessons_learned="Private lesson")  # fmt: skip
        b.case(s, bema, state="verification", officer="olga", opened_at=NOW - 3 * DAY,
               step_due_at=NOW + 5 * DAY, category="child_labour")  # fmt: skip
        b.case(s, drissa, state="assessment", officer="otto", opened_at=NOW - 4 * DAY,
               step_due_at=NOW + 1 * DAY)  # fmt: skip
        b.case(s, fanta, state="closed", officer="olga", opened_at=NOW - 90 * DAY,
               closed_at=NOW - 10 * DAY, outcome="withdrawn_from_work")  # fmt: skip


def login(client, username: str) -> None:
    r = client.post("/login", data={"username": username, "password": PASSWORD})
    assert r.status_code == 302


def read_csv(data: bytes) -> list[dict]:
    assert data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert rows[0] == list(CASE_COLUMNS)
    return [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]


@pytest.mark.parametrize(
    ("username", "status"),
    [("olga", 200), ("otto", 200), ("sam", 200), ("ada", 200), ("mo", 403), ("bea", 403)],
)
@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_who_may_download_the_case_list(client, cases, username, status, fmt):
    login(client, username)
    r = client.get(f"/cases/export.{fmt}")
    assert r.status_code == status
    client.post("/logout")
    assert client.get(f"/cases/export.{fmt}").status_code in (302, 401)


def test_the_csv_holds_the_lists_cases_in_its_order_and_nothing_private(app, client, cases):
    login(client, "olga")
    r = client.get("/cases/export.csv")
    assert r.status_code == 200 and r.mimetype == "text/csv"
    assert r.headers["Cache-Control"] == "no-store"
    assert r.headers["Content-Disposition"].startswith('attachment; filename="clms-cases-')
    rows = read_csv(r.data)
    # olga's open cases (CI-D1), overdue first: the same cases and order as the list's page
    with session_scope(app) as s:
        olga = s.scalar(select(User).where(User.username == "olga"))
        page = list_cases(s, olga)
    assert [row["case_number"] for row in rows] == [c.case_number for c in page.rows]
    first = rows[0]
    assert first["child_uid"] == "'=HYPERLINK(1)"  # neutralised
    assert (first["village"], first["area"], first["state"], first["category"]) == (
        "V1", "CI-D1", "implementation", "hazardous")  # fmt: skip
    assert (first["risk_level"], first["officer"], first["overdue"]) == ("high", "olga", "true")
    assert first["opened"] == (NOW - 30 * DAY).date().isoformat()
    assert first["step_due"] == (NOW - 2 * DAY).date().isoformat()
    assert rows[1]["overdue"] == "false" and rows[1]["village"] == "V2"
    text = r.data.decode("utf-8-sig")
    for secret in ("Aya", "Traoré", "Bema", "Secret reason", "Private lesson", "5.78"):
        assert secret not in text
    [entry] = _audit(app, "cases.export")
    assert (entry.actor, entry.target) == ("olga", "cases")
    assert json.loads(entry.details) == {"format": "csv", "filters": {}}


def test_the_filters_and_the_scope(app, client, cases):
    login(client, "olga")
    rows = read_csv(client.get("/cases/export.csv?state=all").data)
    assert {row["village"] for row in rows} == {"V1", "V2"} and len(rows) == 3
    closed = read_csv(client.get("/cases/export.csv?state=closed").data)
    assert [(r["state"], r["outcome"], r["closed"]) for r in closed] == [
        ("closed", "withdrawn_from_work", (NOW - 10 * DAY).date().isoformat())]  # fmt: skip
    assert len(read_csv(client.get("/cases/export.csv?overdue=true").data)) == 1
    assert len(read_csv(client.get("/cases/export.csv?village=V2").data)) == 1
    # another area's village is no case of hers
    assert read_csv(client.get("/cases/export.csv?village=V3").data) == []
    r = client.get("/cases/export.csv?state=nonsense")
    assert r.status_code == 400 and "state" in r.text
    assert client.get("/cases/export.csv?village=NOPE").status_code == 400
    client.post("/logout")
    login(client, "otto")
    assert {r["village"] for r in read_csv(client.get("/cases/export.csv").data)} == {"V3"}
    client.post("/logout")
    login(client, "sam")
    assert len(read_csv(client.get("/cases/export.csv?state=all").data)) == 4
    client.post("/logout")
    login(client, "ada")  # an administrator without an area sees no case
    assert read_csv(client.get("/cases/export.csv?state=all").data) == []
    entries = _audit(app, "cases.export")
    assert json.loads(entries[1].details)["filters"] == {"state": "closed"}


def test_the_sheet(client, cases):
    login(client, "sam")
    r = client.get("/cases/export.xlsx?state=all")
    assert r.status_code == 200
    book = openpyxl.load_workbook(io.BytesIO(r.data))
    assert book.sheetnames == ["Cases"]
    rows = list(book.active.iter_rows(values_only=True))
    assert rows[0] == CASE_COLUMNS and len(rows) == 5
    by_number = {row[0]: dict(zip(CASE_COLUMNS, row, strict=True)) for row in rows[1:]}
    aya = next(row for row in by_number.values() if row["child_uid"].endswith("(1)"))
    assert aya["child_uid"] == "'=HYPERLINK(1)" and aya["overdue"] is True
    opened = (NOW - 30 * DAY).date()
    assert aya["opened"] == dt.datetime(opened.year, opened.month, opened.day)
    assert aya["closed"] is None


def test_the_case_list_page_links_to_its_downloads_with_its_filters(client, cases):
    login(client, "olga")
    page = client.get("/cases?state=all&village=V1").text
    assert "/cases/export.csv?" in page and "/cases/export.xlsx?" in page
    assert "state=all" in page.split("/cases/export.csv?")[1].split('"')[0]


def test_no_download_links_for_an_empty_or_refused_list(client, cases):
    """A file of nothing, or of a list the server refused (400), is not offered."""
    login(client, "olga")
    refused = client.get("/cases?village=NOPE")
    assert refused.status_code == 400 and "/cases/export." not in refused.text
    empty = client.get("/cases?q=NOSUCHCASE")
    assert empty.status_code == 200 and "/cases/export." not in empty.text


def _audit(app, action: str) -> list:
    with session_scope(app) as s:
        return list(
            s.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id))
        )
