"""ODK's own form engine fills our forms as served to a phone, and the server takes its payloads.

The forms come from /formList and their media from the manifest, exactly as ODK Collect or Web
Forms would get them; the engine (npm @getodk/xforms-engine under Node) enforces the forms'
constraints and relevance, and builds the submission it would send.
"""

from __future__ import annotations

import csv
import io

import pytest
from lxml import etree
from sqlalchemy import select

from clms.db import session_scope
from clms.models import Case, CaseEntity, Child, ChildVisit, Household, Report, Submission, Visit
from tests.odk_engine_client import engine_available, fill_form

pytestmark = pytest.mark.skipif(not engine_available(), reason="npm ci --prefix tests/odk_engine")

XFORMS = {"x": "http://openrosa.org/xforms/xformsList"}
MANIFEST = {"m": "http://openrosa.org/xforms/xformsManifest"}


def download(phone, form_id: str) -> tuple[bytes, dict[str, bytes]]:
    """The form and its media files, found through /formList and the manifest."""
    listing = etree.fromstring(phone.get("/formList").data)
    xform = listing.xpath(f"//x:xform[x:formID='{form_id}']", namespaces=XFORMS)[0]
    local = lambda url: url.replace("http://localhost", "")  # noqa: E731
    form = phone.get(local(xform.findtext("x:downloadUrl", namespaces=XFORMS))).data
    manifest = etree.fromstring(
        phone.get(local(xform.findtext("x:manifestUrl", namespaces=XFORMS))).data
    )
    media = {
        f.findtext("m:filename", namespaces=MANIFEST): phone.get(
            local(f.findtext("m:downloadUrl", namespaces=MANIFEST))
        ).data
        for f in manifest.xpath("//m:mediaFile", namespaces=MANIFEST)
    }
    return form, media


def test_engine_fills_household_visit_and_server_parses_it(app, phone, process):
    form, media = download(phone, "clms_household_visit")
    answers = {
        "village": "V2",
        "supplier": "T2-COOP",
        "household_code": "HH-V2-017",
        "consent": "yes",
        "household_head": "Konan Affoué",
        "gps": "5.701 -6.611 190 4",
        "child": [
            {
                "child_name": "Kouadio Konan",
                "sex": "male",
                "age": 13,
                "relationship": "son_daughter",
                "attends_school": "no",
                "work_activities": ["own_farm"],
                "work_hours_7d": 24,
                "chore_hours_7d": 6,
                "hazards": ["sharp_tools", "heavy_loads"],
                "night_work": "no",
                "injured_12m": "yes",
                "worst_form_signs": ["none"],
                "nationality": "CIV",
                "migrant_status": "national",
                "lives_with_parent": "yes",
            },
            {
                "child_name": "Amenan Konan",
                "sex": "female",
                "age": 8,
                "relationship": "son_daughter",
                "attends_school": "yes",
                "work_activities": ["none"],
                "chore_hours_7d": 10,
                "worst_form_signs": ["none"],
                "nationality": "CIV",
                "migrant_status": "national",
                "lives_with_parent": "yes",
            },
            {
                "child_name": "Issa Ouédraogo",
                "sex": "male",
                "age": 16,
                "relationship": "not_related",
                "attends_school": "no",
                "work_activities": ["paid_work"],
                "work_hours_7d": 50,
                "chore_hours_7d": 0,
                "hazards": ["agrochemicals"],
                "night_work": "yes",
                "injured_12m": "no",
                "worst_form_signs": ["recruited_by_third_party", "debt"],
                "nationality": "BFA",
                "migrant_status": "migrant_undocumented",
                "lives_with_parent": "no",
            },
        ],
    }
    payload = fill_form(form, answers, media)
    root = etree.fromstring(payload)
    assert root.get("id") == "clms_household_visit"

    r = phone.submit(payload)
    assert r.status_code == 201, r.data
    assert process().parsed == 1
    with session_scope(app) as s:
        sub = s.scalar(select(Submission))
        assert sub.xml == payload
        assert sub.status == "parsed", sub.review_reasons
        hh = s.scalar(select(Household))
        assert (hh.code, hh.village.code, hh.supplier.code) == ("HH-V2-017", "V2", "T2-COOP")
        visit = s.scalar(select(Visit))
        assert visit.consent is True and round(visit.lat, 3) == 5.701
        cvs = s.scalars(select(ChildVisit).order_by(ChildVisit.position)).all()
        assert [c.child.name for c in cvs] == ["Kouadio Konan", "Amenan Konan", "Issa Ouédraogo"]
        assert [c.age for c in cvs] == [13, 8, 16]
        assert (
            sorted(cvs[0].hazards) == ["heavy_loads", "sharp_tools"] and cvs[0].injured_12m is True
        )
        assert cvs[1].work_activities == ["none"] and cvs[1].work_hours_7d is None
        assert sorted(cvs[2].worst_form_signs) == ["debt", "recruited_by_third_party"]
        assert cvs[2].night_work is True and cvs[2].migrant_status == "migrant_undocumented"


def test_engine_enforces_our_constraints(phone):
    from tests.odk_engine_client import OdkEngineError

    form, media = download(phone, "clms_household_visit")
    too_old = {
        "village": "V1",
        "supplier": "none",
        "household_code": "HH-1",
        "consent": "yes",
        "household_head": "X",
        "child": [{"child_name": "A", "sex": "male", "age": 19}],
    }
    with pytest.raises(OdkEngineError, match="age"):
        fill_form(form, too_old, media)
    other_area = {"village": "V3", "supplier": "none", "household_code": "HH-1", "consent": "yes"}
    with pytest.raises(OdkEngineError, match="village"):
        fill_form(form, other_area, media)


def test_engine_fills_report_and_followup(app, phone, process):
    form, media = download(phone, "clms_report")
    payload = fill_form(
        form,
        {
            "reporter_type": "teacher",
            "village": "V1",
            "concern": ["child_working", "not_in_school"],
            "child_age_estimate": 12,
            "description": "Absent for weeks",
        },
        media,
    )
    assert phone.submit(payload).status_code == 201
    process()
    with session_scope(app) as s:
        assert s.scalar(select(Report)).concern == ["child_working", "not_in_school"]

    household, hmedia = download(phone, "clms_household_visit")
    phone.submit(
        fill_form(
            household,
            {
                "village": "V1",
                "supplier": "none",
                "household_code": "HH-V1-9",
                "consent": "yes",
                "household_head": "Yao",
                "child": [
                    {
                        "child_name": "Akissi Yao",
                        "sex": "female",
                        "age": 11,
                        "relationship": "son_daughter",
                        "attends_school": "yes",
                        "work_activities": ["none"],
                        "chore_hours_7d": 4,
                        "worst_form_signs": ["none"],
                        "nationality": "CIV",
                        "migrant_status": "national",
                        "lives_with_parent": "yes",
                    }
                ],
            },
            hmedia,
        )
    )
    process()
    with session_scope(app) as s:
        kid = s.scalar(select(Child))
        s.add(Case(case_number="C-1", child_id=kid.id, village_id=kid.household.village_id))
    form, media = download(phone, "clms_followup")
    (listed,) = list(csv.DictReader(io.StringIO(media["cases.csv"].decode())))
    assert listed["case_number"] == "C-1" and listed["__version"] == "1"
    payload = fill_form(
        form,
        {
            "case_entity": listed["name"],  # the monitor picks the case; its number follows
            "child_present": "yes",
            "attends_school": "yes",
            "work_hours_7d": 0,
            "chore_hours_7d": 5,
            "worst_form_signs": ["none"],
            "services_received": ["school_kit_costs"],
            "notes": "Doing well",
        },
        media,
    )
    r = phone.submit(payload)
    assert r.status_code == 201, r.data
    assert process().parsed == 1
    with session_scope(app) as s:
        visit = s.scalar(select(Visit).where(Visit.kind == "followup"))
        assert visit.notes == "Doing well" and visit.child_visits[0].child.name == "Akissi Yao"
        assert visit.services_received == ["school_kit_costs"]
        # the engine's <meta><entity> updated the case entity from the version it read
        entity = s.scalar(select(CaseEntity))
        assert (entity.uuid, entity.version, entity.conflict) == (listed["name"], 2, None)
        assert entity.properties["child_present"] == "yes"
