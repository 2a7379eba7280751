"""Phones configured the KoboToolbox way: KoboCollect's server address is
``https://<server>/<username>``, and kpi serves ``/<username>/formList``,
``/<username>/submission`` (HEAD and POST) and the form, manifest and media addresses its form
list gives (kobo/apps/openrosa/apps/main/urls.py). CLMS answers the same paths with the same
handlers: the person signs in with Digest as at the root, the name in the address must be theirs,
and every address the form list and the manifests give stays under ``/<username>/``.
"""

from __future__ import annotations

import hashlib

import pytest
from lxml import etree
from sqlalchemy import select

from clms.db import session_scope
from clms.models import Area, Form, FormArea, Submission
from tests.conftest import PASSWORD
from tests.odk_engine_client import engine_available, fill_form
from tests.openrosa_client import OPENROSA, Phone
from tests.submissions import household_xml

XFORMS = {"x": "http://openrosa.org/xforms/xformsList"}
MANIFEST = {"m": "http://openrosa.org/xforms/xformsManifest"}


def local(url: str) -> str:
    return url.replace("http://localhost", "")


def listed(phone, prefix: str) -> dict[str, tuple[str, str, str | None]]:
    """formID -> (hash, downloadUrl, manifestUrl) of ``<prefix>/formList``."""
    answer = phone.get(f"{prefix}/formList")
    assert answer.status_code == 200, answer.data
    doc = etree.fromstring(answer.data)
    return {
        x.findtext("x:formID", namespaces=XFORMS): (
            x.findtext("x:hash", namespaces=XFORMS),
            local(x.findtext("x:downloadUrl", namespaces=XFORMS)),
            x.findtext("x:manifestUrl", namespaces=XFORMS)
            and local(x.findtext("x:manifestUrl", namespaces=XFORMS)),
        )
        for x in doc.xpath("//x:xform", namespaces=XFORMS)
    }


def test_form_list_form_manifest_and_media_stay_under_the_username(phone):
    forms = listed(phone, "/awa")
    assert set(forms) == {"clms_household_visit", "clms_followup", "clms_report"}
    for form_id, (md5, download, manifest) in forms.items():
        assert download.startswith(f"/awa/forms/{form_id}/form.xml"), download
        served = phone.get(download)
        assert served.status_code == 200
        assert md5 == "md5:" + hashlib.md5(served.data).hexdigest()
        assert manifest == f"/awa/forms/{form_id}/manifest"
    doc = etree.fromstring(phone.get("/awa/forms/clms_household_visit/manifest").data)
    files = {
        f.findtext("m:filename", namespaces=MANIFEST): (
            f.findtext("m:hash", namespaces=MANIFEST),
            local(f.findtext("m:downloadUrl", namespaces=MANIFEST)),
        )
        for f in doc.xpath("//m:mediaFile", namespaces=MANIFEST)
    }
    md5, url = files["villages.csv"]
    assert url == "/awa/forms/clms_household_visit/media/villages.csv"
    villages = phone.get(url)
    assert md5 == "md5:" + hashlib.md5(villages.data).hexdigest()
    # the monitor's villages only (CI-D1), as at the root
    assert sorted(row.split(",")[0] for row in villages.data.decode().splitlines()[1:]) == [
        "V1",
        "V2",
    ]


def test_the_list_is_filtered_by_the_persons_areas_as_at_the_root(app, phone):
    with session_scope(app) as s:
        form = s.scalar(select(Form).where(Form.xml_form_id == "clms_report"))
        elsewhere = s.scalar(select(Area).where(Area.code == "CI-D2"))
        s.add(FormArea(form_id=form.id, area_id=elsewhere.id))
    under_name = listed(phone, "/awa")
    assert set(under_name) == set(listed(phone, "")) == {"clms_household_visit", "clms_followup"}
    assert phone.get("/awa/forms/clms_report/form.xml").status_code == 404


def test_head_and_post_submission_under_the_username(app, client, phone, version):
    kobo_phone = Phone(client, "awa", PASSWORD, prefix="/awa")
    probe = kobo_phone.head("/submission")
    assert probe.status_code == 204 and probe.headers["X-OpenRosa-Version"] == "1.0"
    xml = household_xml(version, instance_id="uuid:KOBO-ADDR-1")
    sent = kobo_phone.submit(xml)
    assert sent.status_code == 201, sent.data
    assert kobo_phone.submit(xml).status_code == 201  # a retry, as at the root
    with session_scope(app) as s:
        sub = s.scalar(select(Submission))
        assert (sub.instance_id, sub.source, sub.submitter.username) == (
            "uuid:KOBO-ADDR-1",
            "openrosa",
            "awa",
        )


def test_the_username_is_read_without_case_and_kept_as_typed(phone):
    forms = listed(phone, "/Awa")
    assert forms and all(d.startswith("/Awa/forms/") for _md5, d, _m in forms.values())
    assert phone.head("/AWA/submission").status_code == 204


def test_another_persons_name_is_403_and_a_name_nobody_has_is_404(client, phone, make_user):
    make_user("kone", "monitor", areas=["CI-D1"])
    other = phone.get("/kone/formList")
    assert other.status_code == 403
    assert b"ends with the username 'kone', but you signed in as 'awa'" in other.data
    assert b'nature="error"' in other.data
    assert phone.head("/kone/submission").status_code == 403
    assert phone.get("/kone/forms/clms_report/form.xml").status_code == 403
    nobody = phone.get("/nobody/formList")
    assert nobody.status_code == 404 and b"'nobody', which is no user's name here" in nobody.data
    # a stranger learns nothing about who has an account: both ask for a password first
    for name in ("kone", "nobody"):
        bare = client.get(f"/{name}/formList", headers=OPENROSA)
        assert bare.status_code == 401 and bare.headers["WWW-Authenticate"].startswith("Digest")


def test_wrong_password_and_roles_without_phones_are_refused_as_at_the_root(
    client, phone, make_user
):
    assert Phone(client, "awa", "wrong").get("/awa/formList").status_code == 401
    make_user("ada", "admin")
    assert Phone(client, "ada", PASSWORD).get("/ada/formList").status_code == 403


def test_fixed_addresses_of_the_application_are_not_taken_for_a_username(client, phone):
    # /key/<token>/... stays the device-token prefix; /login stays the web page
    assert client.get("/key/not-a-token/formList", headers=OPENROSA).status_code == 403
    assert client.get("/login").status_code == 200


@pytest.mark.skipif(not engine_available(), reason="npm ci --prefix tests/odk_engine")
def test_odk_engine_fills_the_form_got_under_the_username(app, phone, process):
    forms = listed(phone, "/awa")
    _md5, download, manifest = forms["clms_report"]
    form = phone.get(download).data
    doc = etree.fromstring(phone.get(manifest).data)
    media = {
        f.findtext("m:filename", namespaces=MANIFEST): phone.get(
            local(f.findtext("m:downloadUrl", namespaces=MANIFEST))
        ).data
        for f in doc.xpath("//m:mediaFile", namespaces=MANIFEST)
    }
    payload = fill_form(
        form,
        {
            "reporter_type": "teacher",
            "village": "V1",
            "concern": ["child_working"],
            "child_age_estimate": 12,
            "description": "Seen at the market",
        },
        media,
    )
    kobo_phone = Phone(phone.client, "awa", PASSWORD, prefix="/awa")
    assert kobo_phone.submit(payload).status_code == 201
    process()
    with session_scope(app) as s:
        sub = s.scalar(select(Submission))
        assert sub.xml == payload and sub.status == "parsed", sub.review_reasons
