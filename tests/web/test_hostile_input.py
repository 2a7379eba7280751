"""Hostile input: every way untrusted bytes reach the server is refused or neutralised with a clear
error, the server stays up, and nothing accepted before is lost.

Each test stores something good first, throws one class of attack at the real endpoints (OpenRosa
submission, form publishing, the places and supply uploads, the pages), checks the status and the
words of the refusal, then checks that a good request still succeeds and that everything stored
before is still there, unchanged.
"""

from __future__ import annotations

import csv
import html
import io
import threading
import uuid
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from xml.sax.saxutils import escape

import openpyxl
import pytest
from sqlalchemy import func, select, update

from clms.db import session_scope
from clms.models import (
    Alert,
    Area,
    Case,
    CaseEvent,
    Child,
    Form,
    FormVersion,
    Household,
    Submission,
    SubmissionAttachment,
    Supplier,
    Village,
)
from forms.ingest import Attachment, IncomingSubmission, ingest_submission
from tests.conftest import PASSWORD
from tests.hotspots.test_hotspots import END, password_hash, world  # noqa: F401  (fixtures)
from tests.hotspots.test_maps import maps  # noqa: F401  (fixture)
from tests.submissions import child, household_xml

SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(1)>'
CLOSE = "</script><script>alert(2)</script>"
TEMPLATE = "{{7*7}}"
PAYLOADS = (SCRIPT, IMG, CLOSE, TEMPLATE)
#: what must never reach a page as markup
RAW = (SCRIPT, "<img src=x onerror=alert(1)>", CLOSE)


# --- helpers -------------------------------------------------------------------------------------


def login(client, username: str) -> None:
    r = client.post("/login", data={"username": username, "password": PASSWORD})
    assert r.status_code in (302, 303), r.data


def text_of(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def snapshot(app) -> dict:
    """Everything a submission, an upload or an import leaves behind, to compare later."""
    with session_scope(app) as s:
        return {
            "submissions": sorted(
                s.execute(
                    select(Submission.instance_id, Submission.xml_sha256, Submission.status)
                ).all()
            ),
            "attachments": sorted(
                s.execute(select(SubmissionAttachment.name, SubmissionAttachment.sha256)).all()
            ),
            "children": sorted(s.execute(select(Child.child_uid, Child.name)).all()),
            "households": sorted(s.execute(select(Household.code, Household.head_name)).all()),
            "alerts": s.scalar(select(func.count(Alert.id))),
            "villages": sorted(s.execute(select(Village.code, Village.name, Village.lat)).all()),
            "areas": sorted(s.execute(select(Area.code, Area.name)).all()),
            "suppliers": sorted(s.execute(select(Supplier.code, Supplier.name)).all()),
            "forms": sorted(s.execute(select(FormVersion.version, FormVersion.md5)).all()),
        }


def assert_kept(app, before: dict) -> None:
    """Nothing stored before is lost or changed (new rows may have been added)."""
    after = snapshot(app)
    for key, rows in before.items():
        if isinstance(rows, int):
            assert after[key] >= rows, key
        else:
            assert set(rows) <= set(after[key]), (key, set(rows) - set(after[key]))


def submit_ok(app, phone, version, process, **kw) -> str:
    """A good household visit, accepted (201) and processed; returns its instanceID."""
    instance_id = f"uuid:{uuid.uuid4()}"
    r = phone.submit(household_xml(version, instance_id=instance_id, **kw))
    assert r.status_code == 201, r.data
    process()
    with session_scope(app) as s:
        status = s.scalar(select(Submission.status).where(Submission.instance_id == instance_id))
    assert status == "parsed", status
    return instance_id


def multipart(parts: list[tuple[str, str | None, bytes]]) -> tuple[bytes, str]:
    """A multipart/form-data body built by hand (field name, file name or None for a plain
    field, bytes), so a large upload is sent as bytes (the test client would spool it to a file
    it never closes) and any file name travels exactly as given."""
    boundary = uuid.uuid4().hex
    out = io.BytesIO()
    for field, filename, data in parts:
        out.write(f"--{boundary}\r\n".encode())
        out.write(f'Content-Disposition: form-data; name="{field}"'.encode())
        if filename is not None:
            out.write(
                b'; filename="' + filename.encode("utf-8", "surrogateescape")
                + b'"\r\nContent-Type: application/octet-stream'
            )  # fmt: skip
        out.write(b"\r\n\r\n" + data + b"\r\n")
    out.write(f"--{boundary}--\r\n".encode())
    return out.getvalue(), f"multipart/form-data; boundary={boundary}"


def post_submission(phone, parts):
    body, content_type = multipart(parts)
    return phone.request("POST", "/submission", data=body, content_type=content_type)


def zip_of(members: dict[str, bytes], compression=zipfile.ZIP_DEFLATED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=compression) as book:
        for name, data in members.items():
            book.writestr(zipfile.ZipInfo(name, (2026, 1, 1, 0, 0, 0)), data, compression)
    return out.getvalue()


def xlsform(label="Name of the household head", form_id="hostile_test", version="1") -> bytes:
    """A small XLSForm workbook; ``label`` may be a formula (openpyxl writes "=..." as one)."""
    book = openpyxl.Workbook()
    survey = book.active
    survey.title = "survey"
    survey.append(["type", "name", "label"])
    survey.append(["text", "head", "Head"])
    survey.cell(row=2, column=3).value = label
    settings = book.create_sheet("settings")
    settings.append(["form_id", "version", "form_title"])
    settings.append([form_id, version, "Hostile test"])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def upload(client, path: str, filename: str, data: bytes, field: str = "file", **fields):
    """POST one file (and plain ``fields``) as a page's form would."""
    parts = [(name, None, value.encode()) for name, value in fields.items()]
    body, content_type = multipart([*parts, (field, filename, data)])
    return client.post(path, data=body, content_type=content_type)


def publish(client, filename: str, data: bytes):
    return upload(client, "/forms/publish", filename, data)


class _Listener:
    """A local HTTP server that counts the requests it gets (an external entity must never make
    the server fetch anything)."""

    def __init__(self):
        hits = self.hits = []

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                hits.append(self.path)
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"secret")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/x"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


# --- XML attacks ----------------------------------------------------------------------------------


def _laughs(encoding: str = "UTF-8") -> str:
    entities = '<!ENTITY l0 "lol">' + "".join(
        f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10)
    )
    return (
        f'<?xml version="1.0" encoding="{encoding}"?><!DOCTYPE data [{entities}]>'
        '<data id="clms_household_visit"><household_head>&l9;</household_head></data>'
    )


def test_xml_bombs_external_entities_and_deep_nesting_are_refused(
    app, phone, version, process, client, make_user
):
    first = submit_ok(app, phone, version, process)
    before = snapshot(app)
    with _Listener() as listener:
        blowup = "x" * 50_000
        attacks = {
            "billion laughs": _laughs().encode(),
            "billion laughs in UTF-16": _laughs("UTF-16").encode("utf-16"),
            "quadratic blowup": (
                f'<!DOCTYPE data [<!ENTITY a "{blowup}">]><data id="clms_household_visit">'
                + "&a;" * 20_000
                + "</data>"
            ).encode(),
            "external entity (file)": (
                b'<?xml version="1.0"?><!DOCTYPE data [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
                b'<data id="clms_household_visit"><household_head>&x;</household_head></data>'
            ),
            "external entity (network)": (
                f'<!DOCTYPE data [<!ENTITY x SYSTEM "{listener.url}">]>'
                '<data id="clms_household_visit"><household_head>&x;</household_head></data>'
            ).encode(),
            "parameter entity": (
                f'<!DOCTYPE data [<!ENTITY % p SYSTEM "{listener.url}"> %p;]>'
                '<data id="clms_household_visit"/>'
            ).encode(),
        }
        for what, xml in attacks.items():
            r = post_submission(phone, [("xml_submission_file", "submission.xml", xml)])
            assert r.status_code == 400, what
            assert b'nature="error"' in r.data, what
            assert "declares a DTD or entities" in text_of(r), what
        # the same document as a form upload: refused before pyxform or ODK Validate see it
        make_user("ada", "admin")
        login(client, "ada")
        xxe_form = (
            f'<!DOCTYPE h:html [<!ENTITY x SYSTEM "{listener.url}">]>'
            '<h:html xmlns:h="http://www.w3.org/1999/xhtml"><h:head><h:title>&x;</h:title>'
            "</h:head></h:html>"
        ).encode()
        r = publish(client, "evil.xml", xxe_form)
        assert r.status_code == 400 and "declares a DTD or entities" in text_of(r)
    assert listener.hits == []  # nothing was fetched

    deep = b'<data id="clms_household_visit">' + b"<a>" * 5000 + b"</a>" * 5000 + b"</data>"
    r = post_submission(phone, [("xml_submission_file", "submission.xml", deep)])
    assert r.status_code == 400 and "Excessive depth" in text_of(r)
    huge = b'<data id="clms_household_visit"><n>' + b"x" * (11 * 1024 * 1024) + b"</n></data>"
    r = post_submission(phone, [("xml_submission_file", "submission.xml", huge)])
    assert r.status_code == 413 and "larger than this server accepts" in text_of(r)

    assert_kept(app, before)
    assert len(snapshot(app)["submissions"]) == 1
    second = submit_ok(app, phone, version, process)
    assert {first, second} <= {row[0] for row in snapshot(app)["submissions"]}


# --- zip bombs and paths out of archives ----------------------------------------------------------


def _lying_zip() -> bytes:
    """A zip whose directory says a member is 1,000 bytes while it inflates to 5 MB."""
    data = bytearray(zip_of({"villages.csv": b"0" * (5 * 1024 * 1024)}))
    real = (5 * 1024 * 1024).to_bytes(4, "little")
    fake = (1000).to_bytes(4, "little")
    assert data.count(real) == 2  # the local header's and the central directory's size
    return bytes(data.replace(real, fake))


#: attack -> (archive, what the places uploads say, what the form upload says)
BOMBS = {
    "ratio": (zip_of({"big.shp": b"\0" * (30 * 1024 * 1024)}), "inflates 1028 times", None),
    "total size": (
        zip_of({f"part{i}.dbf": b"\0" * (1024 * 1024) for i in range(520)}),
        "would inflate to more than 536870912 bytes",
        "holds 520 files; at most 500",  # an XLSForm has lower limits
    ),
    "member count": (zip_of({f"f{i}.txt": b"" for i in range(1001)}), "holds 1001 files", None),
    "parent path": (zip_of({"../../evil.shp": b"x"}), "leaves the archive's folder", None),
    "absolute path": (zip_of({"/etc/evil.shp": b"x"}), "leaves the archive's folder", None),
    "drive path": (zip_of({"C:/evil.shp": b"x"}), "leaves the archive's folder", None),
    "nested archive": (
        zip_of({"inner.zip": zip_of({"a.shp": b"x"})}),
        "archive inside",
        "could not be read as an Excel workbook",
    ),
    "lying sizes": (_lying_zip(), "cannot be read (Bad CRC-32", None),
}


@pytest.mark.parametrize("attack", sorted(BOMBS))
def test_zip_bombs_and_paths_out_of_archives_are_refused_before_extraction(
    app, client, places, make_user, attack
):
    archive, words, form_words = BOMBS[attack]
    make_user("ada", "admin")
    login(client, "ada")
    before = snapshot(app)
    for endpoint in ("/places/villages", "/places/boundaries"):
        r = upload(client, endpoint, "upload.zip", archive, country="CIV")
        assert r.status_code == 422, (endpoint, r.status_code)
        assert words in text_of(r), (endpoint, text_of(r)[:3000])
    # the same archive as an XLSForm (.xlsx is a zip)
    r = publish(client, "form.xlsx", archive)
    assert r.status_code == 400 and (form_words or words) in text_of(r)
    assert_kept(app, before)
    # the server is up and a good file still goes in
    good = b"wof_id,name,lat,lon,area\n42,Sassandra,5.78,-6.59,CI-D1\n"
    r = client.post(
        "/places/villages",
        data={"file": (io.BytesIO(good), "villages.csv"), "country": "CIV", "area_column": "area"},
        content_type="multipart/form-data",
    )
    assert r.status_code == 303, text_of(r)[:2000]
    assert_kept(app, before)
    with session_scope(app) as s:
        assert s.scalar(select(Village.code).where(Village.name == "Sassandra")) is not None


# --- spreadsheets: macros and formulas ------------------------------------------------------------


def test_macro_workbooks_and_formulas_are_refused_and_text_that_looks_like_one_stays_text(
    app, client, make_user
):
    make_user("ada", "admin")
    login(client, "ada")
    r = publish(client, "hostile_test.xlsx", xlsform(version="1"))
    assert r.status_code == 302, text_of(r)[:2000]
    before = snapshot(app)

    clean = xlsform(version="2")
    with zipfile.ZipFile(io.BytesIO(clean)) as book:
        members = {i.filename: book.read(i) for i in book.infolist()}
    with_vba = zip_of({**members, "xl/vbaProject.bin": b"\xd0\xcf\x11\xe0 fake VBA"})
    ole_vba = (
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 500 + "_VBA_PROJECT_CUR".encode("utf-16-le")
    )
    refused = {
        "hostile_test.xlsm": (clean, "macro-enabled"),
        "vba.xlsx": (with_vba, "xl/vbaProject.bin"),
        "old.xls": (ole_vba, "VBA project"),
        "formula.xlsx": (
            xlsform('=HYPERLINK("http://evil.example/","Name")', version="3"),
            "'survey'!C2",
        ),  # fmt: skip
    }
    for filename, (data, words) in refused.items():
        r = publish(client, filename, data)
        page = text_of(r)
        assert r.status_code == 400, filename
        assert words in page, (filename, page[:3000])
        assert "Macros are never accepted" in page or "formulas are never evaluated" in page
    assert_kept(app, before)
    with session_scope(app) as s:
        assert s.scalar(select(func.count(FormVersion.id))) == 1

    # a formula saved with its value (as a spreadsheet program saves it): the saved value is
    # what the form says, and nothing evaluates the formula
    with zipfile.ZipFile(io.BytesIO(xlsform("=1+2", version="5"))) as book:
        members = {i.filename: book.read(i) for i in book.infolist()}
    sheet = members["xl/worksheets/sheet1.xml"]
    assert sheet.count(b'<c r="C2"><f>1+2</f><v></v></c>') == 1
    members["xl/worksheets/sheet1.xml"] = sheet.replace(
        b'<c r="C2"><f>1+2</f><v></v></c>', b'<c r="C2" t="str"><f>1+2</f><v>Saved label</v></c>'
    )
    r = publish(client, "hostile_test.xlsx", zip_of(members))
    assert r.status_code == 302, text_of(r)[:2000]
    with session_scope(app) as s:
        xml = s.scalar(select(FormVersion.xml).where(FormVersion.version == "5"))
    assert b"Saved label" in xml and b">3<" not in xml and b"1+2" not in xml

    # text typed with a formula's first character is text: published as typed, never evaluated
    typed = "=1+2 @SUM(A1) -3"
    book = openpyxl.load_workbook(io.BytesIO(xlsform(version="6")))
    cell = book["survey"]["C2"]
    cell.value, cell.data_type = typed, "s"  # a text cell, not a formula
    out = io.BytesIO()
    book.save(out)
    r = publish(client, "hostile_test.xlsx", out.getvalue())
    assert r.status_code == 302, text_of(r)[:2000]
    with session_scope(app) as s:
        form = s.scalar(select(Form).where(Form.xml_form_id == "hostile_test"))
        assert form.live_version.version == "6"
        assert typed.encode() in form.live_version.xml and b">3<" not in form.live_version.xml
    assert_kept(app, before)


def test_exports_neutralise_cells_that_a_spreadsheet_would_run(
    app, phone, version, process, client, make_user
):
    formulas = {"village": '=HYPERLINK("http://evil.example/","x")', "area": "+1+2",
                "supplier": "@SUM(A1)", "monitor": "-3+4"}  # fmt: skip
    with session_scope(app) as s:
        s.scalar(select(Village).where(Village.code == "V1")).name = formulas["village"]
        s.scalar(select(Area).where(Area.code == "CI-D1")).name = formulas["area"]
        s.scalar(select(Supplier).where(Supplier.code == "T2-COOP")).name = formulas["supplier"]
    submit_ok(app, phone, version, process,
              children=[child(age=9, work_activities="own_farm", work_hours_7d=10)])  # fmt: skip
    make_user("olga", "officer", areas=["CI-D1"])
    login(client, "olga")
    period = "from=2026-01-01&to=2026-12-31"
    for group, name in (("village", formulas["village"]), ("supplier", formulas["supplier"])):
        r = client.get(f"/kpis/export.csv?{period}&group={group}")
        assert r.status_code == 200, r.data[:500]
        rows = list(csv.reader(io.StringIO(r.get_data(as_text=True).lstrip("\ufeff"))))
        labels = [dict(zip(rows[0], row, strict=True))["label"] for row in rows[1:]]
        assert "'" + name in labels and name not in labels, labels
        r = client.get(f"/kpis/export.xlsx?{period}&group={group}")
        assert r.status_code == 200
        book = openpyxl.load_workbook(io.BytesIO(r.data))
        cells = [c for ws in book.worksheets for row in ws.iter_rows() for c in row]
        assert not [c.coordinate for c in cells if c.data_type == "f"]  # no formula at all
        assert "'" + name in [c.value for c in cells] and name not in [c.value for c in cells]


# --- 10,000 children in one household visit -------------------------------------------------------


@pytest.mark.slow
def test_ten_thousand_children_are_held_for_review_with_the_limit_or_saved_when_allowed(
    app, phone, version, process
):
    first = submit_ok(app, phone, version, process)
    before = snapshot(app)
    kids = [child(child_name=f"Child {i}", age=5 + i % 12) for i in range(10_000)]
    xml = household_xml(version, household_code="HH-BIG", children=kids)
    r = post_submission(phone, [("xml_submission_file", "submission.xml", xml)])
    assert r.status_code == 201, r.data
    process()
    with session_scope(app) as s:
        row = s.execute(
            select(Submission.status, Submission.review_reasons, Submission.xml).where(
                Submission.instance_id != first
            )
        ).one()
        assert row.status == "review" and row.xml == xml  # kept as received, byte for byte
        problems = " ".join(reason["problem"] for reason in row.review_reasons)
        assert "10000 children in one household visit" in problems
        assert "limit of 100 (CLMS_MAX_CHILDREN_PER_SUBMISSION)" in problems
        assert s.scalar(select(func.count(Household.id)).where(Household.code == "HH-BIG")) == 0
    assert_kept(app, before)
    assert len(snapshot(app)["children"]) == len(before["children"])

    # an administrator who expects such households raises the limit: processed, set-based, fast
    app.config["MAX_CHILDREN_PER_SUBMISSION"] = 10_000
    bigger = household_xml(version, household_code="HH-BIG2", children=kids)
    r = post_submission(phone, [("xml_submission_file", "submission.xml", bigger)])
    assert r.status_code == 201
    with app.app_context():
        result = process()
    assert result.parsed == 1, result
    with session_scope(app) as s:
        household = s.scalar(select(Household.id).where(Household.code == "HH-BIG2"))
        assert s.scalar(select(func.count(Child.id)).where(Child.household_id == household)) == (
            10_000
        )
    assert_kept(app, before)
    submit_ok(app, phone, version, process, household_code="HH-V1-002")


# --- text that is not UTF-8 ----------------------------------------------------------------------


def test_text_in_another_encoding_is_refused_with_its_position_or_read_when_declared(
    app, phone, version, process, client, make_user
):
    submit_ok(app, phone, version, process)
    before = snapshot(app)
    latin = household_xml(version, head="Kouassi Aké", household_code="HH-V1-005").decode()
    latin = latin.encode("latin-1")
    r = post_submission(phone, [("xml_submission_file", "submission.xml", latin)])
    page = text_of(r)
    assert r.status_code == 400 and "line 1, column" in page and "encoding" in page, page
    utf16 = household_xml(version).decode().encode("utf-16-le")  # no byte-order mark
    r = post_submission(phone, [("xml_submission_file", "submission.xml", utf16)])
    assert r.status_code == 400 and "line 1, column" in text_of(r)
    assert_kept(app, before)
    # the encoding declared: read as declared, the name kept with its accent
    declared = b'<?xml version="1.0" encoding="ISO-8859-1"?>' + latin
    r = post_submission(phone, [("xml_submission_file", "submission.xml", declared)])
    assert r.status_code == 201
    process()
    with session_scope(app) as s:
        assert s.scalar(select(Household.head_name).where(Household.code == "HH-V1-005")) == (
            "Kouassi Aké"
        )

    make_user("ada", "admin")
    login(client, "ada")
    for data, words in (
        ("code,name,tier\nT9,Coopé,2\n".encode("latin-1"),
         "line 2: character 8: not UTF-8 text (byte 0xe9)"),
        (b"code,name,tier\nT9,Co\x00op,2\n", "line 2: character 6: a NUL character"),
    ):  # fmt: skip
        r = client.post(
            "/supply/import",
            data={"files": (io.BytesIO(data), "suppliers.csv")},
            content_type="multipart/form-data",
        )
        assert r.status_code == 422 and f"suppliers.csv, {words}" in text_of(r), text_of(r)[:3000]
    r = client.post(
        "/places/villages",
        data={"file": (io.BytesIO("wof_id,name,lat,lon\n7,Aké,5.0,-6.0\n".encode("latin-1")),
                       "villages.csv")},
        content_type="multipart/form-data",
    )  # fmt: skip
    assert r.status_code == 422 and "villages.csv: line 2, column 5: not UTF-8" in text_of(r)
    r = client.post(
        "/providers/import",
        data={"file": (io.BytesIO(b"code,name,kind\nP1,Cl\x00inic,health\n"), "providers.csv")},
        content_type="multipart/form-data",
        follow_redirects=True,
    )
    assert "holds a NUL character on line 2" in text_of(r)
    assert_kept(app, before)
    # UTF-16 with its byte-order mark is text too
    good = "code,name,tier\nT9,Coopérative Sud,2\n".encode("utf-16")
    r = client.post(
        "/supply/import",
        data={"files": (io.BytesIO(good), "suppliers.csv")},
        content_type="multipart/form-data",
    )
    assert r.status_code == 303, text_of(r)[:3000]
    with session_scope(app) as s:
        assert s.scalar(select(Supplier.name).where(Supplier.code == "T9")) == "Coopérative Sud"
    assert_kept(app, before)


# --- attachment names -----------------------------------------------------------------------------


BAD_NAMES = [
    "../../etc/passwd",
    "/etc/passwd",
    "..\\..\\windows\\win.ini",
    "C:\\Users\\x\\photo.jpg",
    "photo\x00.jpg",
    "..",
    "a" * 300 + ".jpg",
]


def test_attachment_names_that_could_leave_a_folder_are_refused(app, phone, version, process):
    submit_ok(app, phone, version, process)
    before = snapshot(app)
    for name in BAD_NAMES:
        xml = household_xml(version)
        r = post_submission(
            phone, [("xml_submission_file", "submission.xml", xml), (name[:40], name, b"jpeg")]
        )
        if r.status_code == 201:
            # the multipart layer already unquoted the name (backslashes are escapes in a quoted
            # header value): what was stored must be a plain name all the same
            assert plain_names(app) == [], name
        else:
            assert r.status_code == 400, (name, r.data)
            assert "is not a plain file name" in text_of(r), name
        # pulled from ODK Central or Kobo: the same operation, the same refusal
        with session_scope(app) as s, pytest.raises(Exception, match="not a plain file name"):
            ingest_submission(
                s,
                IncomingSubmission(xml, "central", [Attachment(name, "image/jpeg", b"jpeg")]),
            )
    assert_kept(app, before)
    # a plain name with spaces and accents is kept exactly
    xml = household_xml(version, household_code="HH-V1-009")
    r = post_submission(
        phone,
        [("xml_submission_file", "submission.xml", xml), ("photo", "photo été 1.jpg", b"jpeg")],
    )
    assert r.status_code == 201
    with session_scope(app) as s:
        assert "photo été 1.jpg" in s.scalars(select(SubmissionAttachment.name)).all()
    assert_kept(app, before)
    # the device id travels in the query string: a NUL is refused; other control characters
    # and a very long value are cleaned, and the submission kept
    body, content_type = multipart(
        [("xml_submission_file", "submission.xml", household_xml(version, household_code="HH-D"))]
    )
    r = phone.request(
        "POST", "/submission?deviceID=collect%3Aabc%00", data=body, content_type=content_type
    )
    assert r.status_code == 400 and "Parameter 'deviceID' contains a NUL" in text_of(r)
    r = phone.request(
        "POST", "/submission?deviceID=collect%3Aabc%1b" + "x" * 300, data=body,
        content_type=content_type,
    )  # fmt: skip
    assert r.status_code == 201, r.data
    with session_scope(app) as s:
        stored = s.scalars(select(Submission.device_id).where(Submission.device_id.is_not(None)))
        assert [d for d in stored if d.startswith("collect:abc")] == ["collect:abc" + "x" * 189]
    assert_kept(app, before)


def plain_names(app) -> list[str]:
    """The stored attachment names that are not plain file names (none, ever)."""
    with session_scope(app) as s:
        names = s.scalars(select(SubmissionAttachment.name)).all()
    return [
        n for n in names
        if not n or n in (".", "..") or len(n) > 255 or any(c in n for c in "/\\\x00")
    ]  # fmt: skip


# --- script and template injection in every text that reaches a page ------------------------------


def assert_inert(response, where: str) -> str:
    """The page answered and carries no payload as markup."""
    assert response.status_code == 200, (where, response.status_code)
    body = response.get_data(as_text=True)
    for raw in RAW:
        assert raw not in body, (where, raw)
    return body


def test_submitted_text_is_escaped_on_the_officer_pages(
    app, phone, version, process, client, make_user
):
    kids = [
        child(child_name=SCRIPT, age=9, work_activities="own_farm", work_hours_7d=10),
        child(child_name=CLOSE, age=8, work_activities="own_farm", work_hours_7d=10),
        child(child_name=TEMPLATE, age=10, work_activities="own_farm", work_hours_7d=10),
    ]
    instance_id = escape(f"uuid:{IMG}")  # the helper puts the instanceID in as it is
    xml = household_xml(version, instance_id=instance_id, head=IMG, household_code="HH<s>1",
                        supplier=SCRIPT, children=kids)  # fmt: skip
    r = phone.submit(xml)
    assert r.status_code == 201
    process()
    make_user("olga", "officer", areas=["CI-D1"])
    login(client, "olga")
    with session_scope(app) as s:
        alert_ids = list(s.scalars(select(Alert.id)))
        uids = list(s.scalars(select(Child.child_uid)))
        submission_id = s.scalar(select(Submission.id))
    assert len(alert_ids) == 3 and len(uids) == 3
    pages = ["/alerts", "/submissions", f"/submissions/{submission_id}", "/cases"]
    pages += [f"/alerts/{i}" for i in alert_ids] + [f"/children/{u}" for u in uids]
    shown = ""
    for path in pages:
        shown += html.unescape(assert_inert(client.get(path), path))
    for payload in PAYLOADS:  # shown as text: escaped, not dropped, not evaluated
        assert payload in shown, payload

    # a case note is user text too
    r = client.post(f"/alerts/{alert_ids[0]}/open-case")
    assert r.status_code in (302, 303)
    with session_scope(app) as s:
        case_id = s.scalar(select(Case.id))
    r = client.post(f"/cases/{case_id}/notes", data={"text": " ".join(PAYLOADS)})
    assert r.status_code in (302, 303), r.data[:500]
    page = assert_inert(client.get(f"/cases/{case_id}"), "case")
    assert " ".join(PAYLOADS) in html.unescape(page)
    # a NUL in a form field or a query parameter is refused, naming it, before anything runs
    r = client.post(f"/cases/{case_id}/notes", data={"text": "note\x00with a NUL"})
    assert r.status_code == 400
    assert "Field 'text' contains a NUL character, which text cannot hold" in text_of(r)
    r = client.get("/alerts?village=V1%00")
    assert r.status_code == 400 and "Parameter 'village' contains a NUL" in text_of(r)
    with session_scope(app) as s:
        notes = s.scalar(
            select(func.count()).select_from(CaseEvent).where(CaseEvent.action == "note")
        )
    assert notes == 1
    submit_ok(app, phone, version, process, household_code="HH-V1-003")


def test_names_from_imports_are_escaped_on_maps_and_admin_pages(maps, client):  # noqa: F811
    app = maps
    with session_scope(app) as s:
        names = iter(PAYLOADS * 10)
        for village in s.scalars(select(Village).order_by(Village.code)):
            village.name = f"{next(names)} {village.code}"
        for supplier in s.scalars(select(Supplier).order_by(Supplier.code)):
            supplier.name = f"{next(names)} {supplier.code}"
        for area in s.scalars(select(Area).order_by(Area.code)):
            area.name = f"{next(names)} {area.code}"
        s.execute(update(Household).values(head_name=IMG))
        s.execute(update(Child).values(name=CLOSE))
    before = snapshot(app)
    period = "from=2025-01-01&to=2025-06-30"
    visits = {
        "olga": [f"/map?{period}", f"/map/frame?{period}", f"/map/layer.json?{period}",
                 f"/map?view=hotspots&end={END}", f"/kpis?{period}", "/alerts"],
        "bea": [f"/map?end={END}", f"/map/frame?end={END}", f"/map/export.html?end={END}"],
        "ada": ["/supply", "/places", "/forms"],
    }  # fmt: skip
    for username, paths in visits.items():
        login(client, username)
        shown = ""
        for path in paths:
            response = client.get(path)
            body = assert_inert(response, f"{username} {path}")
            shown += html.unescape(body)
            if "frame" in path or "export" in path:
                # the map's script: names travel as JSON that cannot close the script
                assert "</script><script>alert" not in body
                assert "\\u003c/script\\u003e" in body or "\\u003cscript" in body, path
        for payload in PAYLOADS:  # the names are there, as text
            assert payload in shown or payload.replace("<", "\\u003c") in shown, (username, payload)
        client.post("/logout")
    assert_kept(app, before)
    with session_scope(app) as s:
        assert s.scalar(select(func.count(Village.id))) == len(before["villages"])


@pytest.mark.parametrize(
    "path",
    [
        "/users/99999999999999999999",
        "/notifications/99999999999999999999",
        "/submissions/99999999999999999999",
        "/submissions/99999999999999999999/xml",
        "/cases/2147483648",
        "/alerts/99999999999999999999",
    ],
)
def test_an_id_too_large_for_the_database_is_no_page_not_a_server_error(
    app, client, places, make_user, path
):
    make_user("ada", "admin")
    make_user("olga", "officer", areas=["CI-D1"])
    for username in ("ada", "olga"):
        client.post("/logout")
        client.post("/login", data={"username": username, "password": PASSWORD})
        assert client.get(path).status_code == 404, (username, path)
    assert client.post("/submissions/99999999999999999999/correct", data={}).status_code == 404
