"""Submissions of our forms parsed into households, visits and children; review; concurrency."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from sqlalchemy import func, select
from werkzeug.serving import make_server

from clms.db import session_scope
from clms.models import (
    Case,
    Child,
    ChildVisit,
    Household,
    Report,
    Submission,
    Visit,
)
from forms.parse import name_key, parse_submission
from forms.xmlsafe import parse_xml
from tests.conftest import PASSWORD
from tests.openrosa_client import OPENROSA
from tests.submissions import child, household_xml, live_version


def test_household_visit_parsed_into_rows(app, phone, version, process):
    kids = [
        child(
            child_name="Adjoua Kouassi",
            age=9,
            work_activities="own_farm",
            work_hours_7d=6,
            hazards="sharp_tools",
            night_work="no",
        ),
        child(
            child_name="Koffi Kouassi",
            sex="male",
            age=14,
            attends_school="no",
            work_activities="own_farm sell_goods",
            work_hours_7d=30,
            chore_hours_7d=10,
            hazards="agrochemicals heavy_loads",
        ),
        child(child_name="Aya Kouassi", age=6, dob="2020-03-14"),
    ]
    r = phone.submit(household_xml(version, children=kids))
    assert r.status_code == 201, r.data
    with session_scope(app) as s:
        # stored at once; parsed by the processor, not while the phone waits
        assert s.scalar(select(Submission.status)) == "received"
        assert s.scalar(select(func.count()).select_from(Household)) == 0
    result = process()
    assert (result.parsed, result.review, result.failed) == (1, 0, 0)
    assert process().processed == 0  # nothing is processed twice
    with session_scope(app) as s:
        sub = s.scalar(select(Submission))
        assert sub.status == "parsed", sub.review_reasons
        hh = s.scalar(select(Household))
        assert (hh.code, hh.village.code, hh.supplier.code, hh.head_name) == (
            "HH-V1-001",
            "V1",
            "T2-COOP",
            "Kouassi Yao",
        )
        visit = s.scalar(select(Visit))
        assert visit.kind == "household" and visit.consent is True
        assert (visit.lat, visit.lon, visit.accuracy) == (5.781, -6.592, 5.0)
        assert visit.monitor.username == "awa"
        cvs = s.scalars(select(ChildVisit).order_by(ChildVisit.position)).all()
        assert [c.age for c in cvs] == [9, 14, 6]
        assert cvs[1].work_activities == ["own_farm", "sell_goods"]
        assert cvs[1].hazards == ["agrochemicals", "heavy_loads"]
        assert cvs[1].attends_school is False and cvs[1].work_hours_7d == 30
        aya = cvs[2].child
        assert aya.birth_year == 2020 and aya.birth_year_exact
        assert all(c.child.child_uid.startswith("CH-") for c in cvs)


def test_same_child_keeps_one_pseudonymous_id_across_visits(app, phone, version, process):
    first = [child(child_name="Adjoua Kouassi", age=9), child(child_name="Koffi Kouassi", age=12)]
    # a year later: ages moved on, names typed differently, order changed, a new baby sister now 5
    later = [
        child(child_name="KOFFI  kouassi", age=13),
        child(child_name="Adjoua Kouassí", age=10),
        child(child_name="Ama Kouassi", age=5),
    ]
    assert (
        phone.submit(
            household_xml(version, children=first, end="2025-11-10T09:00:00+00:00")
        ).status_code
        == 201
    )
    assert phone.submit(household_xml(version, children=later)).status_code == 201
    process()
    with session_scope(app) as s:
        assert s.scalar(select(func.count()).select_from(Child)) == 3
        by_name = {}
        for cv in s.scalars(select(ChildVisit)):
            by_name.setdefault(cv.child.name_key, set()).add(cv.child.child_uid)
        assert by_name[name_key("Adjoua Kouassi")].__len__() == 1
        assert len(by_name[name_key("Koffi Kouassi")]) == 1
        assert s.scalar(select(func.count()).select_from(Household)) == 1


def test_two_children_with_the_same_name_stay_apart(app, phone, version, process):
    twins = [child(child_name="Yao Kouame", age=7), child(child_name="Yao Kouame", age=15)]
    assert phone.submit(household_xml(version, children=twins)).status_code == 201
    process()
    with session_scope(app) as s:
        assert s.scalar(select(func.count()).select_from(Child)) == 2


@pytest.mark.parametrize(
    ("overrides", "path", "problem"),
    [
        ({"village": "NOPE"}, "village", "unknown village code"),
        ({"village": "V3"}, "village", "not one of the villages assigned to awa"),
        ({"supplier": "GHOST"}, "supplier", "unknown supplier code"),
        ({"children": [child(age=25)]}, "child[1]/age", "outside the possible range 5-17"),
        (
            {"children": [child(work_hours_7d=200)]},
            "child[1]/work_hours_7d",
            "outside the possible",
        ),
        (
            {"children": [child(work_hours_7d=100, chore_hours_7d=100)]},
            "child[1]/work_hours_7d",
            "more than the 168 hours",
        ),
        ({"children": [child(hazards="sharp_tools lava")]}, "child[1]/hazards", "unknown choice"),
        ({"gps": "95 200"}, "gps", "not a GPS point"),
        ({"children": [child(age=6, dob="2012-01-01")]}, "child[1]/age", "does not match"),
    ],
)
def test_what_cannot_be_understood_is_stored_for_review(
    app, phone, version, process, overrides, path, problem
):
    xml = household_xml(version, **overrides)
    r = phone.submit(xml)
    assert r.status_code == 201
    assert process().review == 1
    with session_scope(app) as s:
        sub = s.scalar(select(Submission))
        assert sub.xml == xml  # kept byte for byte
        assert sub.status == "review"
        assert any(i["path"] == path and problem in i["problem"] for i in sub.review_reasons), (
            sub.review_reasons
        )


def test_review_never_fixes_a_value(app, phone, version, process):
    phone.submit(household_xml(version, children=[child(age=25, work_hours_7d=12)]))
    process()
    with session_scope(app) as s:
        cv = s.scalar(select(ChildVisit))
        assert cv.age is None and cv.work_hours_7d == 12


def test_refused_consent_ends_the_visit(app, phone, version, process):
    assert phone.submit(household_xml(version, consent="no", children=[])).status_code == 201
    process()
    with session_scope(app) as s:
        visit = s.scalar(select(Visit))
        assert visit.consent is False
        assert s.scalar(select(func.count()).select_from(ChildVisit)) == 0
        assert s.scalar(select(Submission.status)) == "parsed"


@pytest.mark.parametrize("processed_between", [True, False])
def test_edit_replaces_the_visit_and_keeps_the_old_one(app, phone, version, process,
                                                       processed_between):  # fmt: skip
    v1 = household_xml(version, instance_id="uuid:v1", children=[child(work_hours_7d=2)])
    v2 = household_xml(
        version, instance_id="uuid:v2", deprecated_id="uuid:v1", children=[child(work_hours_7d=20)]
    )
    assert phone.submit(v1).status_code == 201
    if processed_between:
        process()
    # without: the edit arrives before the first version was processed; it still becomes history
    assert phone.submit(v2).status_code == 201
    process()
    with session_scope(app) as s:
        visits = s.scalars(select(Visit).order_by(Visit.id)).all()
        assert [v.current for v in visits] == [False, True]
        assert visits[1].child_visits[0].work_hours_7d == 20
        assert s.scalar(select(func.count()).select_from(Child)) == 1


def test_report_and_followup_are_parsed(app, phone, process):
    report = (
        f'<data id="clms_report" version="{live_version(app, "clms_report")}">'
        "<reporter_type>teacher</reporter_type><village>V2</village>"
        "<concern>child_working not_in_school</concern><child_age_estimate>11</child_age_estimate>"
        "<description>Seen carrying loads during school hours</description><contact/>"
        "<meta><instanceID>uuid:r1</instanceID></meta></data>"
    ).encode()
    assert phone.submit(report).status_code == 201
    process()
    with session_scope(app) as s:
        rep = s.scalar(select(Report))
        assert (rep.village.code, rep.concern, rep.child_age_estimate) == (
            "V2",
            ["child_working", "not_in_school"],
            11,
        )

    # a follow-up of a case the monitor may see
    xml = household_xml(live_version(app, "clms_household_visit"), children=[child(age=12)])
    phone.submit(xml)
    process()
    with session_scope(app) as s:
        kid = s.scalar(select(Child))
        s.add(Case(case_number="C-2026-0001", child_id=kid.id, village_id=kid.household.village_id))
    cases = phone.get("/forms/clms_followup/media/cases.csv").data.decode().splitlines()
    assert cases[1].split(",")[1:6] == ["C-2026-0001 Adjoua", "1", "C-2026-0001", "Adjoua", "V1"]
    followup = (
        f'<data id="clms_followup" version="{live_version(app, "clms_followup")}">'
        "<case>C-2026-0001</case><child_present>yes</child_present><attends_school>yes</attends_school>"
        "<work_hours_7d>3</work_hours_7d><chore_hours_7d>8</chore_hours_7d><hazards>none</hazards>"
        "<night_work>no</night_work><worst_form_signs>none</worst_form_signs>"
        "<services_received>school_kit_costs</services_received><notes>Back at school</notes>"
        "<meta><instanceID>uuid:f1</instanceID></meta></data>"
    ).encode()
    assert phone.submit(followup).status_code == 201
    process()
    with session_scope(app) as s:
        visit = s.scalar(select(Visit).where(Visit.kind == "followup"))
        assert visit.case_id is not None and visit.child_present is True
        cv = visit.child_visits[0]
        assert cv.child.name == "Adjoua Kouassi" and cv.work_hours_7d == 3 and cv.age == 12


def test_parse_is_pure_and_names_issues():
    xml = household_xml("1", children=[child(sex="x", attends_school="maybe")])
    record = parse_submission(parse_xml(xml))
    assert record.kind == "household"
    assert {(i.path, i.value) for i in record.issues} == {
        ("child[1]/sex", "x"),
        ("child[1]/attends_school", "maybe"),
    }
    assert record.children[0].sex is None


@pytest.mark.committing  # sends in threads, each with a connection of its own
def test_twenty_concurrent_sends_store_exactly_one(app, phone, version, process):
    """Twenty phones-worth of retries of one submission, at once, over real HTTP."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_port}/submission"
    xml = household_xml(version, children=[child(), child(child_name="Koffi Kouassi", age=13)])
    auth = requests.auth.HTTPDigestAuth("awa", PASSWORD)

    def send(_):
        files = {"xml_submission_file": ("submission.xml", xml, "text/xml")}
        return requests.post(url, files=files, auth=auth, headers=OPENROSA, timeout=60).status_code

    try:
        with ThreadPoolExecutor(20) as pool:
            statuses = list(pool.map(send, range(20)))
    finally:
        server.shutdown()
    assert statuses == [201] * 20
    process()
    with session_scope(app) as s:
        assert s.scalar(select(func.count()).select_from(Submission)) == 1
        assert s.scalar(select(func.count()).select_from(Visit)) == 1
        assert s.scalar(select(func.count()).select_from(ChildVisit)) == 2
        assert s.scalar(select(func.count()).select_from(Child)) == 2


def test_submissions_pages_show_review_reasons_to_officers_in_scope(
    app, client, phone, version, make_user, process
):
    make_user("olga", "officer", areas=["CI-D1"])
    make_user("omar", "officer", areas=["CI-D2"])
    make_user("ada", "admin")
    phone.submit(household_xml(version, village="NOPE", household_code="HH-X"))
    phone.submit(household_xml(version, household_code="HH-Y"))
    process()

    client.post("/login", data={"username": "olga", "password": PASSWORD})
    # the list's "needs review" is the review queue, which says why in plain words
    assert client.get("/submissions?status=review").headers["Location"].endswith("/review")
    page = client.get("/review")
    assert page.status_code == 200
    assert b"<td data-label=\"Why\">Unknown village</td>" in page.data
    with session_scope(app) as s:
        review_id = s.scalar(select(Submission.id).where(Submission.status == "review"))
    detail = client.get(f"/submissions/{review_id}")
    assert detail.status_code == 200 and b"Kouassi Yao" in detail.data  # the answers
    assert "“NOPE” is not the code of a known village".encode() in detail.data
    client.post("/logout")

    # an officer of another department sees neither the list entries nor the submission
    client.post("/login", data={"username": "omar", "password": PASSWORD})
    assert b"Nothing waits for a decision." in client.get("/review").data
    assert client.get(f"/submissions/{review_id}").status_code == 404
    client.post("/logout")

    # an admin sees that it exists, never the child data inside
    client.post("/login", data={"username": "ada", "password": PASSWORD})
    detail = client.get(f"/submissions/{review_id}")
    assert detail.status_code == 200 and b"Kouassi Yao" not in detail.data
    client.post("/logout")

    # monitors have no web pages here
    client.post("/login", data={"username": "awa", "password": PASSWORD})
    assert client.get("/submissions").status_code == 403
