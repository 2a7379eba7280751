"""The child-visit export written by the database (clms/export_sql.py) is the export Python
wrote (alerts.kpis.child_visit_rows through clms/exports.py): the same bytes of CSV, the same
sheet XML, on varied and hostile data, on both databases (issue 19, point 3)."""

from __future__ import annotations

import datetime as dt
import io
import zipfile

import openpyxl
from sqlalchemy import select, text

from alerts.kpis import CHILD_VISIT_COLUMNS, KpiFilters, child_visit_rows, child_visit_table
from clms import export_sql
from clms.db import session_scope
from clms.export_sql import csv_stream, table_chunks, xlsx_stream
from clms.exports import csv_chunks, xlsx_chunks
from clms.models import Area, User, Village
from tests import builders as b

UTC = dt.UTC
# text a spreadsheet would run, text CSV must quote, text XML must escape or cannot carry
HOSTILE = [
    "=1+2", "+33 1", "-2", "@SUM(A1)", "\tTab", "\rCR", 'say "hi"', "a,b", "two\nlines",
    "cr\r\nlf", "Côte d'Ivoire", "a&b<c>d", "bell\x07x", "\ufffeodd", " pad ", "'quoted",
    "back\\slash", "", "semi;colon", "日本",
]  # fmt: skip


def _world(app, places, make_user):
    make_user("sam", "supervisor", areas=["CI-R1"])
    make_user("mo", "monitor", areas=["CI-D1"])
    with session_scope(app) as s:
        d1 = s.scalar(select(Area.id).where(Area.code == "CI-D1"))
        s.add(Village(code='-V9,"x"', name="Hostile", area_id=d1, lat=5.7, lon=-6.6))
        s.flush()
        homes = [
            b.household(s, v, supplier=sup)
            for v, sup in [("V1", "T2-COOP"), ('-V9,"x"', None), ("V3", "T3-GRP"), ("V4", None)]
        ]
        prof = b.profile(s)
        n = 0
        for day in range(1, 21):
            home = homes[day % 4]
            # midnight UTC and just before: the date is the UTC date
            when = dt.datetime(2025, 1, day, 23 if day % 2 else 0, 59 if day % 2 else 0,
                               tzinfo=UTC)  # fmt: skip
            v = b.visit(s, home, when, kind="followup" if day % 5 == 0 else "household",
                        monitor="mo" if day % 3 else None,
                        supplier="T1-EXP" if day % 7 == 0 else None)  # fmt: skip
            for position in (1, 2):
                n += 1
                text = HOSTILE[n % len(HOSTILE)]
                kid = b.child(s, home, f"Child {n}", sex=text[:10] or None,
                              uid=f"{text[:14]}#{n}")  # fmt: skip
                cv = b.child_visit(
                    s, v, kid, position=position, age=[None, 0, 7, 17, -1][n % 5],
                    sex=None if n % 3 else "male", attends_school=[None, True, False][n % 3],
                    work_hours_7d=[None, 0, 43][n % 3], chore_hours_7d=[5, None][n % 2],
                    hazards=[[], ["agrochemicals", "sharp_tools"], [text, "", None, "x"],
                             None, ["=cmd|' /C calc'!A0"], [3, True], ["a", "b", text],
                             ["a", "b", "c", "d"], ["a", 3], ["a", ""], [text],
                             "one text"][n % 12],
                )  # fmt: skip
                if n % 7 == 3:
                    continue  # not classified: the classification's cells are empty
                reasons = [[{"rule": "RULE_A", "facts": {}}, {"rule": text}],
                           [], [{"facts": {}}, "RULE_B", {"rule": "-R"}], None,
                           [{"rule": "=X"}, {"rule": "B"}, {"rule": "C"}], [{"rule": ""}],
                           [{"rule": 5}, {"rule": "A"}], [{"rule": text}],
                           [{"rule": "A"}, {"rule": "B"}, {"rule": "C"}, {"rule": "D"}],
                           [{"rule": "A"}, {"rule": None}]][n % 10]  # fmt: skip
                category = ["none", "child_labour", "hazardous", "at_risk"][n % 4]
                b.classification(s, cv, category, sdg_871=bool(n % 2), reasons=reasons,
                                 profile_id=prof.id)  # fmt: skip


def _filters():
    return KpiFilters(date_from=dt.date(2025, 1, 1), date_to=dt.date(2025, 12, 31))


def _sam(s):
    return s.scalar(select(User).where(User.username == "sam"))


def test_the_csv_written_by_the_database_is_the_csv_python_wrote(app, places, make_user):
    _world(app, places, make_user)
    with session_scope(app) as s:
        before = b"".join(csv_chunks(CHILD_VISIT_COLUMNS, child_visit_rows(s, _sam(s), _filters())))
        table = child_visit_table(s, _sam(s), _filters())
        after = b"".join(csv_stream(s, table))
        if s.bind.dialect.name == "postgresql":  # the export's transaction can write nothing
            assert s.scalar(text("SELECT current_setting('transaction_read_only')")) == "on"
    assert before.count(b"#") == 40  # every child visit, hostile ones included
    assert after == before
    # what the bytes mean: a formula is text, a line break stays in its cell
    assert b"\r\n'=1+2#" in after and b'"two\nlines' in after


def test_the_sheet_written_by_the_database_is_the_sheet_python_wrote(app, places, make_user):
    _world(app, places, make_user)
    with session_scope(app) as s:
        rows = child_visit_rows(s, _sam(s), _filters())
        before = b"".join(xlsx_chunks([("Child visits", CHILD_VISIT_COLUMNS, rows)]))
        after = b"".join(xlsx_stream(s, "Child visits", child_visit_table(s, _sam(s), _filters())))
    sheets = []
    for data in (before, after):
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            sheets.append(z.read("xl/worksheets/sheet1.xml"))
    assert sheets[1] == sheets[0] and sheets[0].count(b"<row ") == 41
    book = openpyxl.load_workbook(io.BytesIO(after))
    read = list(book.active.iter_rows(values_only=True))
    assert read == list(openpyxl.load_workbook(io.BytesIO(before)).active.iter_rows(
        values_only=True))  # fmt: skip
    # dates are dates, booleans booleans, numbers numbers, formulas text
    assert {type(row[1]) for row in read[1:]} == {dt.datetime}
    assert read[1][1] == dt.datetime(2025, 1, 1) and read[2][1] == dt.datetime(2025, 1, 1)
    assert {row[15] for row in read[1:]} == {True, False, None}
    assert any(isinstance(row[8], int) and row[8] < 0 for row in read[1:])
    assert not any(
        isinstance(cell, str) and cell.startswith(("=", "+", "-", "@", "\t", "\r"))
        for row in read for cell in row
    )  # fmt: skip


def test_no_scope_gives_the_header_alone(app, places, make_user):
    make_user("ada", "admin")
    with session_scope(app) as s:
        ada = s.scalar(select(User).where(User.username == "ada"))
        assert child_visit_table(s, ada, _filters()) is None
        data = b"".join(table_chunks(s, None, CHILD_VISIT_COLUMNS, "csv", "Child visits"))
    assert data == b"".join(csv_chunks(CHILD_VISIT_COLUMNS, ()))


def test_the_database_written_exports_stream_a_batch_at_a_time(app, places, make_user, monkeypatch):
    """A chunk per batch of rows (here 8 of 40): memory holds one batch, whatever the count."""
    _world(app, places, make_user)
    monkeypatch.setattr(export_sql, "BATCH", 8)
    with session_scope(app) as s:
        table = child_visit_table(s, _sam(s), _filters())
        chunks = list(csv_stream(s, table))
        assert len(chunks) == 1 + 5 and all(c.count(b"#") == 8 for c in chunks[1:])
        pieces = []
        writer = export_sql.xlsx_xml_chunks

        def counting(sheet, header, rows_xml):  # the rows' XML as the zip writer gets it
            return writer(sheet, header, (pieces.append(_rows(p)) or p for p in rows_xml))

        monkeypatch.setattr(export_sql, "xlsx_xml_chunks", counting)
        sheet = b"".join(xlsx_stream(s, "Child visits", child_visit_table(s, _sam(s), _filters())))
    assert pieces == [8] * 5
    assert len(list(openpyxl.load_workbook(io.BytesIO(sheet)).active.iter_rows())) == 41


def _rows(piece: str | bytes) -> int:
    """How many rows a piece of a sheet's XML holds (text from SQLite's batches, bytes from
    PostgreSQL's COPY)."""
    return piece.count("<row " if isinstance(piece, str) else b"<row ")
