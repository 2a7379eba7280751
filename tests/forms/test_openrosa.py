"""The OpenRosa server as ODK Collect sees it: authentication, form list, manifest, submission."""

from __future__ import annotations

import hashlib
import io
import re
from pathlib import Path

import pytest
from lxml import etree
from sqlalchemy import func, select

from clms.auth import issue_token
from clms.db import session_scope
from clms.models import Area, Submission, SubmissionAttachment, User, Village
from forms.publish import ensure_builtin_forms, publish_form
from tests.conftest import PASSWORD, SHARED
from tests.openrosa_client import OPENROSA, Phone

SIMPLE = SHARED / "odk_submissions" / "simple"


def publish_file(app, path: Path):
    with session_scope(app) as s:
        return publish_form(s, path.name, path.read_bytes(), validate=False).form_version.version


@pytest.fixture
def monitor(app, places, make_user):
    make_user("awa", "monitor", areas=["CI-D1"])
    return "awa"


@pytest.fixture
def phone(client, monitor):
    return Phone(client, "awa", PASSWORD)


@pytest.fixture
def our_forms(app):
    with session_scope(app) as s:
        ensure_builtin_forms(s)


def count(app, model, *where) -> int:
    with session_scope(app) as s:
        return s.scalar(select(func.count()).select_from(model).where(*where))


# --- protocol and authentication ---------------------------------------------------------------


def test_head_submission_challenges_then_answers_204(client, phone):
    bare = client.head("/submission", headers=OPENROSA)
    assert bare.status_code == 401
    assert bare.headers["WWW-Authenticate"].startswith('Digest realm="CLMS"')
    ok = phone.head("/submission")
    assert ok.status_code == 204
    assert ok.headers["X-OpenRosa-Version"] == "1.0"
    assert int(ok.headers["X-OpenRosa-Accept-Content-Length"]) > 0
    assert "Date" in ok.headers and ok.headers["Content-Type"].startswith("text/xml")


def test_wrong_password_is_refused_with_a_new_challenge(client, monitor):
    bad = Phone(client, "awa", "not the password").head("/submission")
    assert bad.status_code == 401 and "Digest" in bad.headers["WWW-Authenticate"]


def test_openrosa_version_header_is_required(client, phone):
    for headers in ({}, {"X-OpenRosa-Version": "2.0"}):
        r = client.post("/submission", headers=headers)
        assert r.status_code == 400
        assert b'nature="error"' in r.data and b"OpenRosa 1.0" in r.data
        assert r.headers["X-OpenRosa-Version"] == "1.0"


def test_basic_auth_only_over_https(client, monitor):
    import base64

    creds = base64.b64encode(f"awa:{PASSWORD}".encode()).decode()
    headers = {**OPENROSA, "Authorization": f"Basic {creds}"}
    plain = client.get("/formList", headers=headers)
    assert plain.status_code == 401 and b"only accepted over https" in plain.data
    secure = client.head("/submission", headers=headers, base_url="https://localhost")
    assert secure.status_code == 204


def test_device_token_url(app, client, monitor, our_forms):
    with session_scope(app) as s:
        user = s.scalar(select(User).where(User.username == "awa"))
        token, _ = issue_token(s, user, "device", label="phone 1")
    listed = client.get(f"/key/{token}/formList", headers=OPENROSA)
    assert listed.status_code == 200
    urls = re.findall(r"<downloadUrl>([^<]+)</downloadUrl>", listed.data.decode())
    assert urls and all(f"/key/{token}/" in u for u in urls)
    path = urls[0].replace("http://localhost", "").replace("&amp;", "&")
    assert client.get(path, headers=OPENROSA).status_code == 200
    assert client.get("/key/not-a-token/formList", headers=OPENROSA).status_code == 403
    assert client.head(f"/key/{token}/submission", headers=OPENROSA).status_code == 204


def test_roles_without_phone_work_cannot_use_openrosa(client, places, make_user):
    make_user("bob", "brand", brand="BRAND-A")
    make_user("ada", "admin")
    for name in ("bob", "ada"):
        assert Phone(client, name, PASSWORD).get("/formList").status_code == 403


# --- form list, download, manifest -------------------------------------------------------------


def test_form_list_hash_is_md5_of_served_form(phone, our_forms):
    listing = phone.get("/formList")
    assert listing.status_code == 200
    doc = etree.fromstring(listing.data)
    ns = {"x": "http://openrosa.org/xforms/xformsList"}
    ids = doc.xpath("//x:formID/text()", namespaces=ns)
    assert set(ids) == {"clms_household_visit", "clms_followup", "clms_report"}
    for xform in doc.xpath("//x:xform", namespaces=ns):
        url = xform.findtext("x:downloadUrl", namespaces=ns).replace("http://localhost", "")
        served = phone.get(url)
        assert served.status_code == 200
        assert (
            xform.findtext("x:hash", namespaces=ns) == "md5:" + hashlib.md5(served.data).hexdigest()
        )
        assert xform.findtext("x:manifestUrl", namespaces=ns)


def test_manifest_media_are_built_for_the_monitors_villages(app, phone, our_forms):
    manifest = phone.get("/forms/clms_household_visit/manifest")
    assert manifest.status_code == 200
    ns = {"m": "http://openrosa.org/xforms/xformsManifest"}
    doc = etree.fromstring(manifest.data)
    files = {
        f.findtext("m:filename", namespaces=ns): (
            f.findtext("m:hash", namespaces=ns),
            f.findtext("m:downloadUrl", namespaces=ns).replace("http://localhost", ""),
        )
        for f in doc.xpath("//m:mediaFile", namespaces=ns)
    }
    assert {"villages.csv", "suppliers.csv"} <= set(files)
    hash_before, url = files["villages.csv"]
    villages = phone.get(url)
    assert hash_before == "md5:" + hashlib.md5(villages.data).hexdigest()
    lines = villages.data.decode().splitlines()
    assert lines[0] == "name,label,area"
    # awa works in department CI-D1: villages V1 and V2 only
    assert sorted(line.split(",")[0] for line in lines[1:]) == ["V1", "V2"]
    suppliers = phone.get(files["suppliers.csv"][1]).data.decode().splitlines()
    assert [s.split(",")[0] for s in suppliers[1:]] == ["T2-COOP", "none"]

    with session_scope(app) as s:
        d1 = s.scalar(select(Area).where(Area.code == "CI-D1"))
        s.add(Village(code="V9", name="Nouveau", area_id=d1.id))
    again = etree.fromstring(phone.get("/forms/clms_household_visit/manifest").data)
    new_hash = again.xpath("//m:mediaFile[m:filename='villages.csv']/m:hash/text()", namespaces=ns)
    assert new_hash[0] != hash_before


def test_followup_cases_csv_is_scoped(app, phone, our_forms):
    manifest = etree.fromstring(phone.get("/forms/clms_followup/manifest").data)
    names = manifest.xpath("//*[local-name()='filename']/text()")
    assert "cases.csv" in names
    cases = phone.get("/forms/clms_followup/media/cases.csv")
    # the case entity list (tests/cases/test_entities.py): its columns as Central's
    assert cases.data.decode().splitlines()[0].startswith("name,label,__version,case_number,")


# --- submissions -------------------------------------------------------------------------------


def test_submission_stored_raw_for_a_form_that_is_not_ours(app, phone):
    version = publish_file(app, SIMPLE / "form.xml")
    assert version == ""
    xml = (SIMPLE / "submission_one.xml").read_bytes()
    r = phone.submit(xml)
    assert r.status_code == 201, r.data
    with session_scope(app) as s:
        sub = s.scalar(select(Submission))
        assert sub.xml == xml and sub.status == "raw" and sub.source == "openrosa"
        assert sub.submitter.username == "awa"


def test_retry_is_idempotent_and_adds_attachments(app, phone):
    publish_file(app, SIMPLE / "form.xml")
    xml = (SIMPLE / "submission_one.xml").read_bytes()
    first = phone.submit(
        xml, {"photo.jpg": b"\xff\xd8jpeg"}, query_string={"deviceID": "collect:1"}
    )
    assert first.status_code == 201
    again = phone.submit(xml, {"photo.jpg": b"\xff\xd8jpeg", "audio.m4a": b"m4a"})
    assert again.status_code == 201 and b"already received" in again.data
    assert count(app, Submission) == 1
    with session_scope(app) as s:
        names = s.scalars(
            select(SubmissionAttachment.name).order_by(SubmissionAttachment.name)
        ).all()
        assert names == ["audio.m4a", "photo.jpg"]
        assert s.scalar(select(Submission.device_id)) == "collect:1"


def test_conflicting_resubmission_gets_409(app, phone):
    publish_file(app, SIMPLE / "form.xml")
    assert phone.submit((SIMPLE / "submission_one.xml").read_bytes()).status_code == 201
    changed = (SIMPLE / "submission_one.xml").read_bytes().replace(b"Alice", b"Alicia")
    r = phone.submit(changed)
    assert r.status_code == 409 and b"already received" in r.data
    with session_scope(app) as s:
        assert b"Alice<" in s.scalar(select(Submission.xml))


def test_edits_keep_history(app, phone):
    publish_file(app, SIMPLE / "form.xml")
    v1 = (
        b'<data id="simple"><meta><instanceID>uuid:a1</instanceID></meta>'
        b"<name>A</name><age>3</age></data>"
    )
    v2 = (
        b'<data id="simple"><meta><instanceID>uuid:a2</instanceID><deprecatedID>uuid:a1'
        b"</deprecatedID></meta><name>A</name><age>4</age></data>"
    )
    v2b = v2.replace(b"uuid:a2", b"uuid:a3").replace(b"<age>4", b"<age>5")
    unknown = v2.replace(b"uuid:a2", b"uuid:a4").replace(b"uuid:a1", b"uuid:nope")
    assert phone.submit(v1).status_code == 201
    assert phone.submit(v2).status_code == 201
    assert phone.submit(v2b).status_code == 409  # a1 was already replaced by a2
    assert phone.submit(unknown).status_code == 404
    with session_scope(app) as s:
        rows = {r.instance_id: r for r in s.scalars(select(Submission))}
        assert set(rows) == {"uuid:a1", "uuid:a2"}
        assert not rows["uuid:a1"].current and rows["uuid:a2"].current
        assert rows["uuid:a2"].logical_id == "uuid:a1"


@pytest.mark.parametrize(
    ("xml", "status", "message"),
    [
        (b"<data id='simple'><name>x</name></data>", 400, b"no instanceID"),
        (
            b"<data id='nope'><meta><instanceID>u1</instanceID></meta></data>",
            404,
            b"no form 'nope'",
        ),
        (
            b"<data id='simple' version='9'><meta><instanceID>u1</instanceID></meta></data>",
            400,
            b"has no version '9'",
        ),
        (b"<data id='simple'><meta><instanceID>u1</instanceID></meta>", 400, b"could not be read"),
        (b"\xff\xfe\x00garbage", 400, b"could not be read"),
    ],
)
def test_bad_submissions_are_refused_with_a_clear_error(app, phone, xml, status, message):
    publish_file(app, SIMPLE / "form.xml")
    r = phone.submit(xml)
    assert r.status_code == status, r.data
    assert b'nature="error"' in r.data and message in r.data
    assert count(app, Submission) == 0


def test_missing_xml_part_is_400(app, phone):
    r = phone.request(
        "POST",
        "/submission",
        data={"other": (io.BytesIO(b"x"), "x.txt")},
        content_type="multipart/form-data",
    )
    assert r.status_code == 400 and b"xml_submission_file" in r.data


def test_hostile_xml_is_refused_without_reading_files(app, phone, tmp_path):
    publish_file(app, SIMPLE / "form.xml")
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT")
    xxe = (
        f'<?xml version="1.0"?><!DOCTYPE data [<!ENTITY x SYSTEM "file://{secret}">]>'
        '<data id="simple"><meta><instanceID>u1</instanceID></meta><name>&x;</name></data>'
    ).encode()
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        + b"".join(
            f'<!ENTITY lol{i} "{(f"&lol{i - 1};" if i > 1 else "&lol;") * 10}">'.encode()
            for i in range(1, 10)
        )
        + b']><data id="simple"><meta><instanceID>u2</instanceID></meta><name>&lol9;</name></data>'
    )
    utf16 = xxe.decode().replace('<?xml version="1.0"?>', '<?xml version="1.0" encoding="UTF-16"?>')
    for payload in (xxe, bomb, utf16.encode("utf-16")):
        r = phone.submit(payload)
        assert r.status_code == 400, r.data
        assert b"TOP-SECRET" not in r.data
    assert count(app, Submission) == 0


def test_oversize_upload_gets_413_and_stores_nothing(app, phone):
    publish_file(app, SIMPLE / "form.xml")
    app.config["MAX_CONTENT_LENGTH"] = 50_000
    xml = (SIMPLE / "submission_one.xml").read_bytes()
    r = phone.submit(xml, {"huge.bin": b"x" * 60_000})
    assert r.status_code == 413 and b"larger than this server accepts" in r.data
    assert count(app, Submission) == 0


def test_attachment_names_cannot_traverse(app, phone):
    publish_file(app, SIMPLE / "form.xml")
    xml = (SIMPLE / "submission_one.xml").read_bytes()
    r = phone.submit(xml, {"../../etc/passwd": b"x"})
    assert r.status_code == 400 and b"not a plain file name" in r.data
    assert count(app, Submission) == 0


def test_form_restricted_to_other_areas_is_not_listed_nor_accepted(app, phone, make_user):
    from clms.models import Form, FormArea

    publish_file(app, SIMPLE / "form.xml")
    with session_scope(app) as s:
        form = s.scalar(select(Form).where(Form.xml_form_id == "simple"))
        d2 = s.scalar(select(Area).where(Area.code == "CI-D2"))
        s.add(FormArea(form_id=form.id, area_id=d2.id))
    assert b"<formID>simple" not in phone.get("/formList").data
    r = phone.submit((SIMPLE / "submission_one.xml").read_bytes())
    assert r.status_code == 403 and b"not one of the forms you may use" in r.data


def test_every_shared_odk_form_and_submission_goes_through(app, client, places, make_user):
    """Publish each real ODK test form, see it in formList, and send its submissions."""
    make_user("awa", "monitor", areas=["CI"])
    phone = Phone(client, "awa", PASSWORD)
    folders = sorted(p for p in (SHARED / "odk_submissions").iterdir() if p.is_dir())
    assert len(folders) == 9
    sent = 0
    for folder in folders:
        publish_file(app, folder / "form.xml")
        form_id = (
            etree.parse(str(folder / "form.xml"))
            .xpath("//*[local-name()='instance'][1]/*")[0]
            .get("id")
        )
        assert f"<formID>{form_id}</formID>".encode() in phone.get("/formList").data
        for sub in sorted(folder.glob("submission*.xml")):
            r = phone.submit(sub.read_bytes())
            assert r.status_code == 201, (sub, r.data)
            sent += 1
    files = list((SHARED / "odk_submissions").glob("*/submission*.xml"))
    assert sent == len(files) >= 14
    assert count(app, Submission) == sent
