"""`clms demo`: generated answers, submissions built from the form, and the whole run."""

from __future__ import annotations

import datetime as dt
import math
import socket
from collections import Counter
from pathlib import Path

import pytest
from lxml import etree
from sqlalchemy import func, select

from clms.db import session_scope
from clms.demo.answers import Generator, followup_values, household_values
from clms.demo.plan import MonitorPlan, VillagePoint
from clms.demo.progress import ProgressLine
from clms.demo.submissions import build_submission, choice_values, primary_instance
from clms.models import (
    Area,
    Brand,
    Case,
    CaseEntity,
    CaseWithdrawal,
    Child,
    ChildVisit,
    Household,
    PullRetry,
    PullSource,
    Referral,
    Report,
    Submission,
    Supplier,
    SupplierVillage,
    User,
    Village,
    Visit,
)
from clms.supply.operations import brand_supplier_ids
from clms.supply.tree import check_chain
from forms.parse import parse_submission
from forms.xmlsafe import parse_xml
from tests.odk_engine_client import engine_available, fill_form

MONITOR = MonitorPlan("monitor01", "Awa Koné", "not used here", ["V1"], "collect:ABCDEFGH12345678")
VILLAGE = VillagePoint("V1", "Gnamagui", 5.78, -6.59, [("T2-COOP-X", 2), ("T3-GRP-X-1", 3)])

# A small XForm shaped as pyxform writes one: a repeat with its jr:template copy and a default
# occurrence, a layout group, choices in a secondary instance.
XFORM = b"""<?xml version="1.0"?>
<h:html xmlns="http://www.w3.org/2002/xforms" xmlns:h="http://www.w3.org/1999/xhtml"
  xmlns:jr="http://openrosa.org/javarosa" xmlns:orx="http://openrosa.org/xforms">
<h:head><h:title>t</h:title><model>
<instance><data id="clms_household_visit" version="2026112201">
  <start/><end/><deviceid/><username/>
  <where><village/><supplier/></where>
  <household_code/><consent/><household_head/><gps/>
  <child jr:template=""><child_name/><sex/><dob/><age/><relationship/><attends_school/>
    <work_activities/><work_hours_7d/><chore_hours_7d/><hazards/><night_work/><injured_12m/>
    <worst_form_signs/><nationality/><migrant_status/><lives_with_parent/></child>
  <child><child_name/><sex/><dob/><age/><relationship/><attends_school/>
    <work_activities/><work_hours_7d/><chore_hours_7d/><hazards/><night_work/><injured_12m/>
    <worst_form_signs/><nationality/><migrant_status/><lives_with_parent/></child>
  <meta><instanceID/><instanceName/></meta>
</data></instance>
<instance id="sex"><root><item><name>female</name></item><item><name>male</name></item></root>
</instance>
</model></h:head>
<h:body><select1 ref="/data/child/sex"><itemset nodeset="instance('sex')/root/item">
<value ref="name"/><label ref="name"/></itemset></select1>
<select ref="/data/child/x"><item><label>A</label><value>a</value></item></select></h:body>
</h:html>"""


def _ilo_category(c) -> str:
    """The ILO statistical category with the default thresholds (domain.md section 3)."""
    hours = c.work_hours_7d if c.works else 0
    if c.worst_form_signs != ["none"]:
        return "worst_form"
    if c.age < 18 and (c.hazards or c.night_work or hours >= 43):
        return "hazardous"
    if (c.age < 12 and hours >= 1) or (12 <= c.age < 15 and hours >= 14):
        return "child_labour"
    return "other"


def _years(born: dt.date, on: dt.date) -> int:
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def test_the_same_seed_gives_the_same_answers():
    today = dt.date(2026, 11, 22)
    a = [Generator(7, today).household(MONITOR, VILLAGE, n) for n in range(1, 20)]
    b = [Generator(7, today).household(MONITOR, VILLAGE, n) for n in range(1, 20)]
    c = [Generator(8, today).household(MONITOR, VILLAGE, n) for n in range(1, 20)]
    assert a == b and a != c


def test_generated_households_look_like_the_cocoa_belt():
    today = dt.date(2026, 11, 22)
    gen = Generator(7, today)
    visits = [gen.household(MONITOR, VILLAGE, n) for n in range(1, 1501)]
    children = [c for v in visits for c in v.children]

    refused = [v for v in visits if not v.consent]
    assert 0.01 < len(refused) / len(visits) < 0.06
    assert all(v.children == [] and v.household_head for v in refused)
    assert all(1 <= len(v.children) <= 5 for v in visits if v.consent)
    assert all(5 <= c.age <= 17 for c in children)
    for v in visits:
        assert v.household_code.startswith("HH-V1-")
        assert v.supplier in ("none", "T2-COOP-X", "T3-GRP-X-1")
        assert today - dt.timedelta(days=183) <= v.start.date() < today and v.start < v.end
        lat, lon, _alt, acc = v.gps
        metres = math.hypot(
            (lat - VILLAGE.lat) * 111_320, (lon - VILLAGE.lon) * 111_320 * math.cos(0.1)
        )
        assert metres <= 1010 and 0 < acc < 20
        for c in v.children:
            if c.dob is not None:  # the date of birth gives the same completed years
                assert _years(c.dob, v.end.date()) == c.age

    categories = Counter(_ilo_category(c) for c in children)
    in_labour = categories["worst_form"] + categories["hazardous"] + categories["child_labour"]
    assert 0.12 <= in_labour / len(children) <= 0.18, categories
    assert 0 < categories["worst_form"] < 0.01 * len(children)
    attending = sum(c.attends_school for c in children) / len(children)
    assert 0.75 <= attending <= 0.85
    hazards = Counter(h for c in children for h in c.hazards)
    for common in ("sharp_tools", "heavy_loads", "agrochemicals", "land_clearing"):
        assert hazards[common] > 0
    # no child under 12 works without being in child labour (any work is child labour there)
    assert all(_ilo_category(c) != "other" for c in children if c.age < 12 and c.works)


def test_a_careless_monitor_makes_short_visits_far_from_the_village():
    gen = Generator(3, dt.date(2026, 11, 22))
    careless = MonitorPlan("monitor09", "X", "-", ["V1"], "collect:X", careless=True)
    visits = [gen.household(careless, VILLAGE, n) for n in range(1, 200)]
    assert all((v.end - v.start) < dt.timedelta(minutes=8) for v in visits)
    far = [v for v in visits if abs(v.gps[0] - VILLAGE.lat) * 111_320 > 1100]
    assert far


def test_submission_is_the_forms_primary_instance_filled_in():
    template = primary_instance(XFORM)
    assert etree.QName(template).localname == "data"
    gen = Generator(11, dt.date(2026, 11, 22))
    visit = next(
        v
        for v in (gen.household(MONITOR, VILLAGE, n) for n in range(1, 50))
        if len(v.children) >= 3
    )
    values, children = household_values(visit)
    xml = build_submission(template, values, {"child": children}, "uuid:1234")

    root = parse_xml(xml)
    assert root.tag == "data"  # no XForms namespace, as Collect sends
    assert root.get("id") == "clms_household_visit" and root.get("version") == "2026112201"
    assert b"jr:template" not in xml and b"http://www.w3.org/2002/xforms" not in xml
    repeats = root.findall("child")
    assert len(repeats) == len(visit.children)
    assert [r.findtext("child_name") for r in repeats] == [c.name for c in visit.children]
    assert [e.tag for e in root][-1] == "meta"  # repeats stay where the form has them
    assert root.findtext("meta/instanceID") == "uuid:1234"
    assert root.findtext("where/village") == "V1"  # leaves inside groups are filled too

    record = parse_submission(root)
    assert record.issues == []
    assert record.household_code == visit.household_code
    assert [c.age for c in record.children] == [c.age for c in visit.children]
    assert [c.hazards or [] for c in record.children] == [
        (c.hazards or ["none"]) if c.works else [] for c in visit.children
    ]


def test_refused_consent_sends_no_children():
    template = primary_instance(XFORM)
    gen = Generator(5, dt.date(2026, 11, 22))
    refused = next(
        v for v in (gen.household(MONITOR, VILLAGE, n) for n in range(1, 500)) if not v.consent
    )
    values, children = household_values(refused)
    root = parse_xml(build_submission(template, values, {"child": children}))
    assert root.findall("child") == []
    assert root.findtext("consent") == "no" and root.findtext("household_head") == ""
    assert root.findtext("meta/instanceID").startswith("uuid:")
    assert parse_submission(root).issues == []


def test_choice_values_reads_itemsets_and_inline_items():
    assert choice_values(XFORM, "sex") == ["female", "male"]
    assert choice_values(XFORM, "x") == ["a"]
    assert choice_values(XFORM, "nothing") == []


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
@pytest.mark.committing  # the demo's server and submission processor answer in threads
def test_demo_builds_everything_and_sends_through_openrosa(app, runner):
    """The whole command; needs the forms (forms.publish) and the OpenRosa server to be in place."""
    port = _free_port()
    result = runner.invoke(
        args=["demo", "--no-serve", "--households", "40", "--port", str(port), "--seed", "7"]
    )
    assert result.exit_code == 0, result.output
    assert f"http://127.0.0.1:{port}/" in result.output
    # 40 visits, 3 visits a person must review, 3 reports
    assert "Submissions: 46 of 46 accepted (201)." in result.output

    with session_scope(app) as s:
        household_subs = s.scalars(
            select(Submission)
            .join(Submission.form)
            .where(Submission.form.has(xml_form_id="clms_household_visit"))
        ).all()
        assert len(household_subs) == 43
        held = [sub.review_reasons for sub in household_subs if sub.status != "parsed"]
        # what phones send now and then: a village code typed by hand, a far GPS point, an old
        # form's answer; each kept, and held for a person with the reason
        assert sorted(reasons[0]["path"] for reasons in held) == [
            "child[1]/hazards",
            "gps",
            "village",
        ]
        # every visit came through the endpoint, signed by its monitor; one village's visits are
        # then those of the cooperative's ODK Central (clms.demo.in_step), which deleted one
        # and rejected another after they arrived
        assert all(sub.submitter_id for sub in household_subs)
        pulled = [sub for sub in household_subs if sub.source == "central"]
        assert pulled and all(sub.pull_source_id and sub.remote_id for sub in pulled)
        assert {sub.source for sub in household_subs} == {"openrosa", "central"}
        assert {sub.withdrawn_reason for sub in pulled} >= {"deleted"}
        source = s.scalar(select(PullSource))
        assert (source.kind, source.enabled) == ("central", False)
        [waiting] = s.scalars(select(PullRetry)).all()
        assert waiting.code == "400.6" and "has no version" in waiting.message
        # the deleted visit's case is flagged (and any other case of a child of that household,
        # or of the rejected visit's: how many depends on the demo's random households)
        flags = s.scalars(select(CaseWithdrawal)).all()
        assert "deleted" in {flag.reason for flag in flags}
        assert {flag.reason for flag in flags} <= {"deleted", "rejected"}
        assert all(flag.acknowledged_at is None for flag in flags)
        # a second phone updated a case from the version another had updated: a conflict
        assert s.scalar(select(func.count(CaseEntity.id)).where(CaseEntity.conflict.is_not(None)))
        assert s.scalar(select(func.count(Household.id))) == 43
        assert s.scalar(select(func.count(Visit.id)).where(Visit.kind == "household")) == 43
        n_children = s.scalar(select(func.count(Child.id)))
        assert 40 <= n_children <= 200
        household_child_visits = (
            select(func.count(ChildVisit.id))
            .join(Visit, ChildVisit.visit_id == Visit.id)
            .where(Visit.kind == "household")
        )
        assert s.scalar(household_child_visits) == n_children
        # remediation: cases opened from alerts, worked, some followed up to closure
        case_states = Counter(s.scalars(select(Case.state)))
        assert sum(case_states.values()) >= 1, result.output
        assert s.scalar(select(func.count(Referral.id))) >= 1
        followups = s.scalar(select(func.count(Visit.id)).where(Visit.kind == "followup"))
        assert followups >= 1, result.output
        assert case_states["closed"] + case_states["closure_review"] >= 1, result.output
        assert s.scalar(select(func.count(Report.id))) == 3
        # the work told people as it went: the header's count and the list hold real entries
        from clms.models import Notice

        kinds = Counter(s.scalars(select(Notice.kind)))
        assert kinds["submission_held"] >= 3 and kinds["referral_answered"] >= 1, kinds
        # every visit was sent by a monitor of that village, near the village, but the one held
        # for its far GPS point
        far = 0
        for visit in s.scalars(select(Visit).where(Visit.kind == "household")):
            assert visit.village_id is not None and visit.monitor_id is not None
            if visit.consent:
                village = s.get(Village, visit.village_id)
                near = abs(visit.lat - village.lat) < 0.05 and abs(visit.lon - village.lon) < 0.05
                far += not near
        assert far == 1

        # places, supply chain and people
        assert 150 <= s.scalar(select(func.count(Village.id))) <= 300
        levels = Counter(s.scalars(select(Area.level)))
        assert levels["country"] == 1 and levels["region"] == 4 and levels["department"] >= 6
        assert s.scalar(select(func.count(Brand.id))) == 3
        tiers = Counter(s.scalars(select(Supplier.tier)))
        assert set(tiers) == {1, 2, 3}
        assert s.scalar(select(func.count()).select_from(SupplierVillage)) > 100
        # every brand has a chain down to the farmer groups, the brands reach different
        # suppliers, and every supplier is reached by some brand
        scopes = {b.code: brand_supplier_ids(s, b.id) for b in s.scalars(select(Brand))}
        tier_of = dict(s.execute(select(Supplier.id, Supplier.tier)).all())
        assert all({tier_of[i] for i in scope} == {1, 2, 3} for scope in scopes.values())
        assert len({frozenset(scope) for scope in scopes.values()}) == 3
        assert sum(scope == set(tier_of) for scope in scopes.values()) <= 1
        assert set().union(*scopes.values()) == set(tier_of)
        found = check_chain(s)
        assert found.cycles == [] and found.unreached == [] and found.households_outside == 0
        # the departments have their boundaries and every village its cell, so that visits are
        # placed by their GPS point
        n_villages = s.scalar(select(func.count(Village.id)))
        with_cell = s.scalar(select(func.count(Village.id)).where(Village.cell.is_not(None)))
        assert with_cell == n_villages > 0
        assert s.scalar(select(func.count(Area.id)).where(Area.geom.is_not(None))) >= 1
        sources = Counter(s.scalars(select(Visit.village_source).where(Visit.kind == "household")))
        assert sources["gps"] >= 0.8 * sum(sources.values())
        # issue 17: an alert's history says it was raised when the alert says it was
        from clms.models import Alert, AlertEvent

        raised = s.execute(
            select(Alert.created_at, AlertEvent.at)
            .join(AlertEvent, AlertEvent.alert_id == Alert.id)
            .where(AlertEvent.action == "raised")
        ).all()
        assert raised and all(created == at for created, at in raised)
    assert "Supply chain: 3 brands," in result.output and "links; suppliers each brand" in (
        result.output
    )
    with session_scope(app) as s:
        roles = Counter(s.scalars(select(User.role)))
        assert roles["admin"] == 1 and roles["provider"] >= 2 and roles["brand"] == 3
        assert roles["supervisor"] == 4 and roles["officer"] >= 6 and roles["monitor"] >= 20
    for role in ("admin", "monitor", "officer", "supervisor", "provider", "brand"):
        assert f"  {role} " in result.output

    with session_scope(app) as s:
        before = s.scalar(select(func.count(Submission.id)))
    assert before > 43  # the follow-up visits came in too
    again = runner.invoke(args=["demo", "--no-serve", "--port", str(port)])
    assert again.exit_code == 0, again.output
    assert "already holds demo data" in again.output
    with session_scope(app) as s:
        assert s.scalar(select(func.count(Submission.id))) == before


def test_progress_line_shows_counts_rate_and_eta():
    import io

    stream = io.StringIO()  # not a terminal: one line per tenth
    progress = ProgressLine("Submissions", 10, stream=stream)
    for done in range(1, 11):
        progress(done)
    progress.finish()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 10
    assert lines[0].startswith("Submissions: 1/10 (") and "/s, ETA " in lines[0]
    assert lines[-1].startswith("Submissions: 10/10 (") and "done in" in lines[-1]


def test_demo_refuses_a_busy_port_before_building_anything(app, runner):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = runner.invoke(
            args=["demo", "--no-serve", "--households", "5", "--port", str(port)]
        )
    assert result.exit_code != 0
    assert f"{port} is in use" in result.output  # werkzeug's own words
    with session_scope(app) as s:
        assert s.scalar(select(func.count(Village.id))) == 0


@pytest.mark.committing  # the demo's submission processor thread
def test_demo_on_a_database_with_users_of_its_own_changes_nothing(app, runner, make_user):
    make_user("admin", "admin")
    result = runner.invoke(
        args=["demo", "--no-serve", "--households", "5", "--port", str(_free_port())]
    )
    assert result.exit_code != 0
    assert "There is already a user called 'admin'" in result.output
    assert "run it on an empty database" in result.output
    with session_scope(app) as s:
        assert s.scalar(select(func.count(Village.id))) == 0
        assert s.scalar(select(func.count(Brand.id))) == 0
        assert s.scalar(select(func.count(User.id))) == 1


# --- the answers a real ODK engine would accept --------------------------------------------------

BUILD = Path(__file__).resolve().parents[2] / "forms" / "build"
PRELOADS = {"start", "end", "deviceid", "username", "instanceName"}
#: values the form computes (the follow-up's case number from the entity chosen, its date)
COMPUTED = {"case", "followup_date"}
CASE_ENTITY = "8c1f1b46-3c1e-4f0e-9a51-2b7d0f6c9e11"
INTEGERS = {"age", "work_hours_7d", "chore_hours_7d", "child_age_estimate"}
MEDIA = {
    "villages.csv": b"name,label,area\nV1,Gnamagui,CI-D1\n",
    "suppliers.csv": (
        b"name,label,tier\nT2-COOP-X,Coop X,2\nT3-GRP-X-1,Groupement X,3\n"
        b"none,None of these / does not sell,\n"
    ),
    # the case entity list (clms.cases.entities.HEADER), as the server serves it
    "cases.csv": (
        b"name,label,__version,case_number,first_name,village,last_followup,child_present,"
        b"attends_school,work_hours_7d\n" + CASE_ENTITY.encode() + b",C-1 Awa,3,C-1,Awa,V1,,,,\n"
    ),
}


def _select_multiples(xform: bytes) -> set[str]:
    html = etree.fromstring(xform)
    refs = html.iter("{http://www.w3.org/2002/xforms}select")
    return {(e.get("ref") or "").rsplit("/", 1)[-1] for e in refs}


def _engine_answers(values: dict[str, str], multiples: set[str]) -> dict:
    """Our leaf values as fill.mjs takes them: what a person types in (no preload, no skipped
    question, no computed value)."""
    out: dict = {}
    for name, value in values.items():
        if (name in PRELOADS or name in COMPUTED or value == ""
                or (name == "age" and values.get("dob"))):  # fmt: skip
            continue  # preloads and the age computed from the date of birth are not typed in
        if name in multiples:
            out[name] = value.split()
        elif name in INTEGERS:
            out[name] = int(value)
        else:
            out[name] = value
    return out


@pytest.mark.slow
@pytest.mark.skipif(not engine_available(), reason="npm ci --prefix tests/odk_engine")
def test_odk_engine_accepts_our_household_answers_and_sends_the_same():
    """ODK's own engine, given the generated answers, accepts every one of them (relevance,
    required, constraints, choices) and produces the submission we build ourselves."""
    xform = (BUILD / "clms_household_visit.xml").read_bytes()
    multiples = _select_multiples(xform)
    template = primary_instance(xform)
    today = dt.datetime.now(dt.UTC).date()
    gen = Generator(21, today)
    visits = [gen.household(MONITOR, VILLAGE, n) for n in range(1, 400)]
    chosen = [
        next(v for v in visits if not v.consent),
        next(v for v in visits if sum(c.works for c in v.children) >= 2 and len(v.children) >= 4),
        next(v for v in visits if any(c.worst_form_signs != ["none"] for c in v.children)),
        next(v for v in visits if any(c.dob for c in v.children) and v.supplier == "none"),
    ]
    for visit in chosen:
        for c in visit.children:  # the engine counts age up to today, the visit was earlier
            if c.dob and _years(c.dob, today) != c.age:
                c.dob = None
        values, children = household_values(visit)
        answers = _engine_answers(values, multiples)
        if children:
            answers["child"] = [_engine_answers(c, multiples) for c in children]
        payload = fill_form(xform, answers, MEDIA)
        ours = build_submission(template, values, {"child": children}, "uuid:x")
        theirs, mine = parse_submission(parse_xml(payload)), parse_submission(parse_xml(ours))
        assert theirs.issues == [] and mine.issues == []
        for name in ("village", "supplier", "household_code", "household_head", "gps", "consent"):
            assert getattr(theirs, name) == getattr(mine, name), name
        assert theirs.children == mine.children


@pytest.mark.slow
@pytest.mark.skipif(not engine_available(), reason="npm ci --prefix tests/odk_engine")
def test_odk_engine_accepts_our_report_and_followup_answers():
    gen = Generator(4, dt.datetime.now(dt.UTC).date())
    when = dt.datetime.now(dt.UTC) - dt.timedelta(days=3)
    for form_id in ("clms_report", "clms_followup"):
        xform = (BUILD / f"{form_id}.xml").read_bytes()
        multiples = _select_multiples(xform)
        services = choice_values(xform, "services_received")
        for _ in range(6):
            if form_id == "clms_report":
                values = gen.report(MONITOR, VILLAGE)
            else:
                values = followup_values(gen.rng, "C-1", MONITOR, services, when,
                                         entity_id=CASE_ENTITY)  # fmt: skip
            payload = fill_form(xform, _engine_answers(values, multiples), MEDIA)
            entity = {"id": CASE_ENTITY, "baseVersion": "3"} if form_id == "clms_followup" else None
            ours = build_submission(primary_instance(xform), values, None, "uuid:y", entity)
            theirs, mine = parse_submission(parse_xml(payload)), parse_submission(parse_xml(ours))
            assert theirs.issues == [] and mine.issues == []
            if form_id == "clms_followup":  # the engine's date is today's, ours the visit's
                assert theirs.entity.properties.pop("last_followup") in {
                    dt.date.today().isoformat(),
                    dt.datetime.now(dt.UTC).date().isoformat(),
                }
                assert mine.entity.properties.pop("last_followup") == when.date().isoformat()
                assert (theirs.entity.entity_id, theirs.entity.base_version) == (CASE_ENTITY, 3)
            fields = {f for f in vars(mine) if f not in ("meta", "issues")}
            assert {f: getattr(theirs, f) for f in fields} == {f: getattr(mine, f) for f in fields}
