"""Data protection on a real database: retention, the subject access export, erasure, and backup
and restore across SQLite and PostgreSQL (clms.dataprotection, clms.backup)."""

from __future__ import annotations

import datetime as dt
import json
import socket
import unicodedata
import uuid
import zipfile

import pytest
from sqlalchemy import (
    JSON,
    LargeBinary,
    String,
    Text,
    func,
    select,
)

from alerts.kpis import KpiFilters, compute_everything
from clms.app import create_app
from clms.cases.assessment import AssessmentInput, record_assessment
from clms.cases.catalogue import ProviderInput, ensure_services, save_provider
from clms.cases.opening import open_case, record_verification
from clms.cases.plan import add_planned_service, submit_plan
from clms.cases.referrals import accept_referral, complete_referral, record_consent, refer
from clms.cases.transfer import TransferInput, add_note, transfer_case
from clms.db import Base, session_scope
from clms.models import (
    Alert,
    AlertEvent,
    Assessment,
    AuditEvent,
    CaseEvent,
    CaseTransfer,
    Child,
    ChildVisit,
    Classification,
    Consent,
    Household,
    PlannedService,
    Referral,
    Submission,
    User,
    Visit,
)
from tests.conftest import PASSWORD
from tests.submissions import child, followup_xml, household_xml, live_version

NOW = dt.datetime(2026, 11, 25, 9, tzinfo=dt.UTC)
OLD = dt.datetime(2019, 3, 10, 9, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)
CONFIG = {"RETENTION_YEARS": 5}


@pytest.fixture
def staff(app, places, make_user):
    """Olga (officer of CI-D1), Sam (supervisor), Ada (admin), a school that takes referrals."""
    with session_scope(app) as s:
        ensure_services(s)
        save_provider(
            s,
            ProviderInput(
                code="SCH-GN", name="École primaire de Gnamagui", kind="school",
                services=("school_enrolment", "school_kit_costs"), email="sch@example.org",
            ),
            new=True,
        )  # fmt: skip
    make_user("olga", "officer", areas=["CI-D1"], email="olga@example.org")
    make_user("sam", "supervisor", areas=["CI-R1"])
    make_user("ada", "admin")
    make_user("pat", "provider", provider="SCH-GN")


def who(s, username: str) -> User:
    return s.scalar(select(User).where(User.username == username))


def stamp(at: dt.datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S.000+00:00")


def visit(phone, version, household: str, kids: list[dict], at: dt.datetime, **kw) -> None:
    xml = household_xml(version, household_code=household, children=kids, end=stamp(at), **kw)
    assert phone.submit(xml).status_code == 201


def working(name: str, **kw) -> dict:
    return child(child_name=name, age=10, work_activities="own_farm", work_hours_7d=6, **kw)


def uid_of(s, name: str) -> str:
    return s.scalar(select(Child.child_uid).where(Child.name == name))


def case_for(s, name: str, at: dt.datetime, *, close: bool) -> str:
    """Open a case from the child's alert at ``at`` (and close it, verification not confirmed)."""
    alert = s.scalar(
        select(Alert).join(Child, Alert.child_id == Child.id).where(Child.name == name)
    )
    olga = who(s, "olga")
    case = open_case(s, olga, alert.id, now=at)
    if close:
        record_verification(
            s, olga, case.id, confirmed=False, visited_on=at.date(),
            reason=f"{name} was not at the farm; neighbours say the child goes to school.", now=at,
        )  # fmt: skip
    return case.case_number


def figures(app) -> dict:
    """Every KPI over every village, and the hotspot table of the supervisor, as plain data."""
    from geo.hotspots.settings import HotspotSettings
    from geo.hotspots.tables import hotspot_tables

    with session_scope(app) as s:
        since = KpiFilters(date_from=OLD.date(), date_to=NOW.date(), group="village")
        report = compute_everything(s, since, now=NOW)
        tables = hotspot_tables(s, who(s, "sam"), ("village",), end=NOW.date(), months=120,
                                settings=HotspotSettings.from_config(app.config))  # fmt: skip
        maps = {level: tables.table(level).as_dict() for level in ("village",)}
        return {"overall": report.overall, "rows": report.rows, "monitors": report.monitors,
                "maps": maps}  # fmt: skip


# --- retention ------------------------------------------------------------------------------------


def test_retention_anonymises_exactly_the_children_due_and_keeps_every_figure(
    app, staff, phone, version, process, runner
):
    # Awa (closed in 2019, nothing since): due. Bintou: closed in 2019 but visited again this
    # year. Chantal: her case is still open. Djeneba: closed only two years ago. Esther: never a
    # case. Fatou and Awa share a household: Fatou's closed case makes her due too.
    visit(
        phone, version, "HH-A", [working("Awa Koné"), working("Fatou Koné")], OLD, head="Issa Koné"
    )
    visit(phone, version, "HH-B", [working("Bintou Sow")], OLD, head="Ali Sow")
    visit(phone, version, "HH-C", [working("Chantal Ba")], OLD, head="Oumar Ba")
    visit(phone, version, "HH-D", [working("Djeneba Tall")], OLD, head="Sekou Tall")
    visit(phone, version, "HH-E", [working("Esther Diop")], OLD, head="Paul Diop")
    process()
    with session_scope(app) as s:
        for name in ("Awa Koné", "Fatou Koné", "Bintou Sow"):
            case_for(s, name, OLD + 20 * DAY, close=True)
        case_for(s, "Chantal Ba", OLD + 20 * DAY, close=False)
        case_for(s, "Djeneba Tall", NOW - 700 * DAY, close=True)
        uids = {n: uid_of(s, n) for n in ("Awa Koné", "Fatou Koné", "Bintou Sow", "Chantal Ba",
                                           "Djeneba Tall", "Esther Diop")}  # fmt: skip
    visit(phone, version, "HH-B", [child(child_name="Bintou Sow", age=17)], NOW - 30 * DAY,
          head="Ali Sow")  # fmt: skip
    process()
    with session_scope(app) as s:
        s.execute(
            Visit.__table__.update()
            .where(Visit.household_id.in_(select(Household.id).where(Household.code == "HH-A")))
            .values(notes="Awa Koné helps her uncle on Saturdays.")
        )
        # a second record of Awa, found to be her and merged into hers, goes with her
        awa = s.scalar(select(Child).where(Child.name == "Awa Koné"))
        twin = Child(household_id=awa.household_id, name="Awa Kone", name_key="awa kone",
                     dob=dt.date(2009, 1, 2), birth_year=2009, sex="female",
                     merged_into_id=awa.id)  # fmt: skip
        s.add(twin)
        s.flush()
        uids["twin"] = twin.child_uid
    before = figures(app)
    assert before["overall"]["children_monitored"] == 6

    from clms.dataprotection import due_for_retention, retention_cut, run_retention

    sessions = app.extensions["clms_sessionmaker"]
    dry = run_retention(sessions, CONFIG, now=NOW, dry_run=True, actor="test")
    assert (dry.children, dry.dry_run) == (2, True)
    with session_scope(app) as s:
        assert s.scalar(select(func.count()).where(Child.anonymised_at.is_not(None))) == 0

    # one child a transaction: the household's head name goes once its last child's data goes
    steps = []
    result = run_retention(sessions, CONFIG, now=NOW, actor="test", chunk=1,
                           progress=lambda done, total: steps.append((done, total)))  # fmt: skip
    assert (result.children, result.records) == (2, 3) and steps == [(0, 2), (1, 2), (2, 2)]
    with session_scope(app) as s:
        kids = {c.child_uid: c for c in s.scalars(select(Child))}
        gone = {u for u, c in kids.items() if c.anonymised_at is not None}
        assert gone == {uids["Awa Koné"], uids["Fatou Koné"], uids["twin"]}
        for u in gone:
            c = kids[u]
            assert (c.name, c.name_key, c.dob, c.anonymised_why) == ("[removed]", "", None,
                                                                     "retention")  # fmt: skip
            assert c.birth_year is not None and c.sex == "female"
        assert kids[uids["Bintou Sow"]].name == "Bintou Sow"
        heads = dict(s.execute(select(Household.code, Household.head_name)).all())
        assert heads["HH-A"] is None and heads["HH-B"] == "Ali Sow"
        old_visit = s.scalar(select(Visit).join(Household).where(Household.code == "HH-A"))
        assert old_visit.notes is None and old_visit.lat == 5.78 and old_visit.lon == -6.59
        sub = s.get(Submission, old_visit.submission_id)
        assert b"Kon" not in sub.xml and b"<instanceID>uuid:" in sub.xml
        other = s.scalar(select(Visit).join(Household).where(Household.code == "HH-C"))
        assert b"Chantal Ba" in s.get(Submission, other.submission_id).xml
        assert due_for_retention(s, retention_cut(NOW, 5)) == []
        entries = s.scalars(select(AuditEvent).order_by(AuditEvent.seq)).all()
        anonymised = [e.target for e in entries if e.action == "child.anonymise"]
        assert sorted(anonymised) == sorted(f"child:{u}" for u in gone - {uids["twin"]})
        runs = [json.loads(e.details) for e in entries if e.action == "retention.run"]
        assert [(r["dry_run"], r["children"]) for r in runs] == [(True, 2), (False, 2)]
    # every indicator and every hotspot figure is the same
    assert figures(app) == before

    # a phone sending the same visit again is still told it is a duplicate, not a conflict
    xml_again = None
    with session_scope(app) as s:
        xml_again = s.scalar(select(Submission.instance_id).where(Submission.id == sub.id))
    assert xml_again.startswith("uuid:")

    # idempotent: again, nothing more; the command says so, with a dry run first
    again = runner.invoke(args=["retention", "run", "--dry-run"])
    assert again.exit_code == 0, again.output
    assert "0 children would be anonymised" in again.output
    assert run_retention(sessions, CONFIG, now=NOW).children == 0
    assert run_retention(sessions, {"RETENTION_YEARS": 0}, now=NOW).disabled


def test_a_retried_upload_of_an_anonymised_visit_is_still_a_duplicate(
    app, staff, phone, version, process
):
    xml = household_xml(version, household_code="HH-R", children=[working("Rama Cissé")],
                        end=stamp(OLD))  # fmt: skip
    assert phone.submit(xml).status_code == 201
    process()
    with session_scope(app) as s:
        case_for(s, "Rama Cissé", OLD + DAY, close=True)
    from clms.dataprotection import run_retention

    assert run_retention(app.extensions["clms_sessionmaker"], CONFIG, now=NOW).children == 1
    retry = phone.submit(xml)
    assert retry.status_code in (200, 201, 202), retry.data
    with session_scope(app) as s:
        assert s.scalar(select(func.count(Submission.id))) == 1


def test_the_retention_job_runs_and_is_audited(app, staff):
    from clms.jobs.registry import JobContext, run_job

    ctx = JobContext({**app.config, "RETENTION_YEARS": 5}, app.extensions["clms_sessionmaker"],
                     NOW, app)  # fmt: skip
    run = run_job(ctx, "retention")
    assert run.ok and run.summary["children"] == 0 and run.summary["cut"].startswith("2021-11-25")
    with session_scope(app) as s:
        entry = s.scalar(select(AuditEvent).where(AuditEvent.action == "retention.run"))
        assert entry.actor == "scheduler"


# --- a child with a whole case: export and erasure ----------------------------------------------

NAME, OTHER = "Aya Konaté", "Moussa Diallo"


@pytest.fixture
def lived(app, staff, phone, version, process):
    """Aya's whole case: found working, case opened, verified, assessed, a school kit planned,
    consent, referral accepted and done, a follow-up visit with notes, then a transfer to Ghana.
    Moussa (another household) has a case still open."""
    visit(phone, version, "HH-AYA", [working(NAME)], NOW - 200 * DAY, head="Bakary Konaté")
    visit(phone, version, "HH-MOU", [working(OTHER)], NOW - 200 * DAY, head="Ibrahim Diallo")
    process()
    at = NOW - 190 * DAY
    with session_scope(app) as s:
        olga = who(s, "olga")
        case_for(s, OTHER, at, close=False)
        alert = s.scalar(select(Alert).join(Child).where(Child.name == NAME))
        case = open_case(s, olga, alert.id, now=at)
        record_verification(s, olga, case.id, confirmed=True, visited_on=at.date(),
                            findings=f"{NAME} was carrying pods.", now=at)  # fmt: skip
        record_assessment(
            s, olga, case.id,
            AssessmentInput(
                risk_level="low", child_views=f"Je suis {NAME}, je veux aller à l'école.",
                family_situation="Lives with her uncle Bakary.", schooling="dropped_out",
                immediate_safety="safe", response_types=["education"],
                response_level="remediation",
            ),
            now=at,
        )  # fmt: skip
        planned = add_planned_service(
            s, olga, case.id, service_code="school_kit_costs", provider_code="SCH-GN",
            due_on=(at + 20 * DAY).date(), now=at,
        )  # fmt: skip
        submit_plan(s, olga, case.id, now=at)
        record_consent(s, olga, case.id, provider_code="SCH-GN", given_by="child",
                       method="verbal", shares=["first_name"], now=at)  # fmt: skip
        referral = refer(s, olga, case.id, planned_service_id=planned.id,
                         message=f"Please enrol {NAME}.", now=at)  # fmt: skip
        number = case.case_number
        case_id, referral_id = case.id, referral.id
    with session_scope(app) as s:
        accept_referral(s, who(s, "pat"), referral_id, now=at + DAY)
        complete_referral(s, who(s, "pat"), referral_id, outcome="service_provided",
                          service_date=(at + 2 * DAY).date(), note=f"Kit given to {NAME}.",
                          now=at + 2 * DAY)  # fmt: skip
        add_note(s, who(s, "olga"), case_id, f"Called Bakary about {NAME}.", now=at + 3 * DAY)
    followup = followup_xml(
        live_version(app, "clms_followup"), number, end=stamp(at + 10 * DAY),
        notes=f"{NAME} is back at school.",
    )  # fmt: skip
    assert phone.submit(followup).status_code == 201
    process()
    with session_scope(app) as s:
        transfer_case(
            s, who(s, "olga"), case_id,
            TransferInput(
                kind="external", to_agency="Social Welfare, Bolgatanga", to_country="GHA",
                to_contact="Mr Mensah +233 20 000 0000", reason=f"{NAME}'s family moved.",
                shared=["identity"], consent_basis="consent",
            ),
        )  # fmt: skip
        uids = {NAME: uid_of(s, NAME), OTHER: uid_of(s, OTHER)}
    return {"uids": uids, "case_id": case_id, "number": number}


def ids(s, stmt) -> set[int]:
    return set(s.scalars(stmt))


def test_the_subject_export_holds_every_record_of_the_child_and_nothing_of_another(
    app, lived, runner, tmp_path
):
    uid = lived["uids"][NAME]
    out = tmp_path / "aya.json"
    refused = runner.invoke(args=["child", "export", uid, "-o", str(out), "--reason", " "])
    assert refused.exit_code == 1 and "reason" in refused.output and not out.exists()
    done = runner.invoke(
        args=["child", "export", uid.lower(), "-o", str(out), "--reason", "Guardian's request"]
    )
    assert done.exit_code == 0, done.output
    text = out.read_text()
    doc = json.loads(text)
    assert doc["about"]["child_uid"] == uid and set(doc["about"]["parts"]) <= set(doc)
    assert doc["child"]["name"] == NAME and doc["household"]["head_name"] == "Bakary Konaté"
    case_id = lived["case_id"]
    with session_scope(app) as s:
        child_id = s.scalar(select(Child.id).where(Child.child_uid == uid))
        [case] = doc["cases"]
        assert case["case_number"] == lived["number"]
        expect = {
            "events": ids(s, select(CaseEvent.id).where(CaseEvent.case_id == case_id)),
            "assessments": ids(s, select(Assessment.id).where(Assessment.case_id == case_id)),
            "planned_services": ids(s, select(PlannedService.id).where(
                PlannedService.case_id == case_id)),
            "consents": ids(s, select(Consent.id).where(Consent.case_id == case_id)),
            "referrals": ids(s, select(Referral.id).where(Referral.case_id == case_id)),
            "transfers": ids(s, select(CaseTransfer.id).where(CaseTransfer.case_id == case_id)),
        }  # fmt: skip
        for part, want in expect.items():
            assert want and {r["id"] for r in case[part]} == want, part
        visits = ids(s, select(ChildVisit.visit_id).where(ChildVisit.child_id == child_id))
        visits |= ids(s, select(Visit.id).where(Visit.case_id == case_id))
        assert {v["id"] for v in doc["visits"]} == visits and len(visits) == 2
        answers = [a for v in doc["visits"] for a in v["answers_about_this_child"]]
        assert {a["id"] for a in answers} == ids(
            s, select(ChildVisit.id).where(ChildVisit.child_id == child_id)
        )
        assert {c["id"] for a in answers for c in a["classifications"]} == ids(
            s, select(Classification.id).where(Classification.child_id == child_id)
        )
        [alert] = doc["alerts"]
        assert {e["id"] for e in alert["events"]} == ids(
            s, select(AlertEvent.id).where(AlertEvent.alert_id == alert["id"])
        )
        subs = ids(s, select(Visit.submission_id).where(Visit.id.in_(visits)))
        assert {x["id"] for x in doc["submissions"]} == subs
        assert all(NAME in x["xml"] or "clms_followup" in x["xml"] for x in doc["submissions"])
        entry = s.scalar(select(AuditEvent).where(AuditEvent.action == "child.export"))
        assert (entry.target, entry.reason, entry.actor.startswith("cli:")) == (
            f"child:{uid}", "Guardian's request", True)  # fmt: skip
    assert any(e["action"].startswith("case.") for e in doc["access_log"])
    # nothing about Moussa
    assert OTHER not in text and lived["uids"][OTHER] not in text and "Ibrahim" not in text


#: columns left out of the scan: none. The append-only audit log cannot be changed by an
#: erasure, so it never takes free text from case steps (clms.cases.records._codes_only)
APPEND_ONLY: set[str] = set()


def personal_traces(app, needles: list[str]) -> list[str]:
    """Every table.column (of every table of the schema) whose text, JSON or bytes hold one of
    ``needles`` (case- and accent-insensitive), the audit log included."""

    def fold(value: str) -> str:
        value = unicodedata.normalize("NFKD", value)
        return "".join(c for c in value if not unicodedata.combining(c)).casefold()

    wanted = [fold(n) for n in needles]
    found = []
    with session_scope(app) as s:
        for table in Base.metadata.sorted_tables:
            columns = [
                c for c in table.columns if isinstance(c.type, String | Text | LargeBinary | JSON)
            ]
            if not columns:
                continue
            action = table.c.action if table.name == "audit_events" else None
            for *row, what in s.execute(select(*columns, action)):
                for column, value in zip(columns, row, strict=True):
                    if value is None:
                        continue
                    where = f"{table.name}.{column.name}"
                    if where in APPEND_ONLY and not what.startswith(("child.", "retention.")):
                        continue
                    if isinstance(value, bytes | memoryview):
                        value = bytes(value).decode("utf-8", "replace")
                    elif not isinstance(value, str):
                        value = json.dumps(value, ensure_ascii=False)
                    if any(w in fold(value) for w in wanted):
                        found.append(where)
    return sorted(set(found))


def test_erasure_leaves_no_trace_and_is_in_the_audit_log(app, lived, runner):
    uid, other = lived["uids"][NAME], lived["uids"][OTHER]
    needles = [NAME, "Konaté", "Bakary", "Mensah"]
    assert "children.name" in personal_traces(app, needles)
    before = figures(app)

    # Moussa's case is open: refused, with why, and nothing changes
    refused = runner.invoke(args=["child", "erase", other, "--reason", "Parent's request", "--yes"])
    assert refused.exit_code == 1
    assert "open case" in refused.output and "harm" in refused.output
    with session_scope(app) as s:
        assert s.scalar(select(Child.name).where(Child.child_uid == other)) == OTHER
        assert s.scalar(select(func.count()).where(AuditEvent.action == "child.erase")) == 0

    done = runner.invoke(
        args=["child", "erase", uid, "--reason", "Guardian's erasure request",
              "--request-ref", "DPO-2026-17", "--yes"]
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    assert personal_traces(app, needles) == []
    with session_scope(app) as s:
        erased = s.scalar(select(Child).where(Child.child_uid == uid))
        assert erased.anonymised_why == "erasure" and erased.birth_year is not None
        assert s.scalar(select(Child.name).where(Child.child_uid == other)) == OTHER
        assert s.scalar(select(Household.head_name).where(Household.code == "HH-MOU")) == (
            "Ibrahim Diallo")  # fmt: skip
        entry = s.scalar(select(AuditEvent).where(AuditEvent.action == "child.erase"))
        details = json.loads(entry.details)
        assert (entry.target, entry.reason, details["request_ref"]) == (
            f"child:{uid}", "Guardian's erasure request", "DPO-2026-17")  # fmt: skip
    # the aggregate facts stay
    assert figures(app) == before
    from clms.audit import verify

    with session_scope(app) as s:
        assert verify(s).ok

    # forcing an open case's erasure needs a reason, and says so in the log
    forced = runner.invoke(args=["child", "erase", other, "--reason", "Court order", "--yes",
                                 "--force", "Court order 12/2026 overrides"])  # fmt: skip
    assert forced.exit_code == 0, forced.output
    with session_scope(app) as s:
        entry = s.scalars(
            select(AuditEvent).where(AuditEvent.action == "child.erase").order_by(AuditEvent.seq)
        ).all()[-1]
        assert json.loads(entry.details)["forced"] is True
    assert personal_traces(app, [OTHER, "Ibrahim"]) == []


# --- backup and restore ---------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fill_every_table(s) -> None:
    """A row in each table the case fixture leaves empty: configuration, supply chain, keys,
    pulled sources, caches, tokens, a report, an encrypted submission, an attachment, a merge,
    a reviewer's decision."""
    from clms import models as m

    sub = s.scalars(select(m.Submission).order_by(m.Submission.id)).first()
    olga, brand = who(s, "olga"), s.scalar(select(m.Brand))
    t1, t2 = s.scalars(select(m.Supplier).order_by(m.Supplier.tier)).all()[:2]
    area = s.scalar(select(m.Area).where(m.Area.code == "CI-D1"))
    village = s.scalar(select(m.Village).where(m.Village.code == "V1"))

    def submission(instance: str, status: str) -> m.Submission:
        row = m.Submission(
            instance_id=instance, logical_id=instance, form_id=sub.form_id, status=status,
            form_version_id=sub.form_version_id, xml=b"<data/>", xml_sha256="0" * 64,
            source="central", review_reasons=[], received_at=NOW,
        )  # fmt: skip
        s.add(row)
        s.flush()
        return row

    s.add_all(
        [
            m.BrandSupplier(brand_id=brand.id, supplier_id=t1.id),
            m.SupplierLink(buyer_id=t1.id, seller_id=t2.id),
            m.FormArea(form_id=sub.form_id, area_id=area.id),
            m.FormAttachment(
                form_version_id=sub.form_version_id,
                name="logo.png",
                content_type="image/png",
                data=b"\x89PNG\r\n\x00\xff",
                md5="0" * 32,
            ),  # fmt: skip
            m.SubmissionAttachment(
                submission_id=sub.id,
                name="photo.jpg",
                content_type="image/jpeg",
                data=bytes(range(256)),
                sha256="1" * 64,
                size=256,
            ),  # fmt: skip
            m.Report(
                submission_id=submission("uuid:report", "parsed").id,
                reporter_type="teacher",
                village_id=village.id,
                concern=["heavy_loads"],
                child_age_estimate=11,
                description="Une fille porte des charges lourdes.",
                contact="+225 01 02",
                reported_at=NOW,
            ),  # fmt: skip
            m.SubmissionReview(
                logical_id="uuid:held", form_id=sub.form_id,
                submission_id=submission("uuid:held", "rejected").id, action="reject",
                reason="Sent twice", accepted=[], actor_id=olga.id, at=NOW,
            ),  # fmt: skip
            m.EncryptedSubmission(
                submission_id=submission("uuid:enc", "encrypted").id,
                form_id=sub.form_id,
                manifest=b"<manifest/>",
                manifest_sha256="2" * 64,
            ),  # fmt: skip
            m.FormKey(
                form_id=sub.form_id,
                public_key="MIIB",
                fingerprint="3" * 64,
                private_key_pem=b"-----BEGIN ENCRYPTED PRIVATE KEY-----\n",
                created_by_id=olga.id,
            ),  # fmt: skip
            m.PullSource(
                name="central",
                kind="central",
                base_url="https://central.example.org",
                project_id="1",
                remote_form_id="f",
                credentials=b"\x00\x01secret",
                cursor="2026-01-01T00:00:00Z",
            ),  # fmt: skip
            m.CaseWithdrawal(
                case_id=s.scalar(select(m.Case.id).order_by(m.Case.id).limit(1)),
                submission_id=sub.id, reason="deleted", server="ODK Central (central)",
                withdrawn_at=NOW, flagged_at=NOW, acknowledged_at=NOW,
                acknowledged_by_id=olga.id, note="Aya seen at home",
            ),  # fmt: skip
            m.NoticePreference(user_id=olga.id, kind="note", by_email=True, updated_at=NOW),
            m.HotspotRelease(
                brand_id=brand.id,
                start=dt.date(2025, 1, 1),
                months=3,
                released_at=NOW,
                payload=b"x\x9c\x03\x00\x00\x00\x00\x01",
            ),
            m.KpiSnapshot(taken_on=NOW.date(), figures={"children_monitored": 2}),
            m.JobRun(job="escalate", started_at=NOW, finished_at=NOW, ok=True, summary={"a": 0}),
            m.ApiToken(user_id=olga.id, kind="api", label="laptop", token_sha256="5" * 64),
            m.Notification(
                kind="alert",
                user_id=olga.id,
                email="olga@example.org",
                subject="New alert",
                body="Open CLMS.",
                alert_id=s.scalar(select(func.min(m.Alert.id))),
            ),  # fmt: skip
        ]
    )
    if hasattr(m, "LoginThrottle"):
        s.add(m.LoginThrottle(scope="user", key="olga", count=2, window_start=NOW, updated_at=NOW))
    kept = s.scalar(select(m.Child).where(m.Child.name == OTHER))
    twin = m.Child(household_id=kept.household_id, name="Mousa Diallo", name_key="mousa diallo",
                   birth_year=2016)  # fmt: skip
    other = m.Child(household_id=kept.household_id, name="Awa Diallo", name_key="awa diallo")
    s.add_all([twin, other])
    s.flush()
    twin.merged_into_id = kept.id
    s.add(m.ChildMerge(kept_child_id=kept.id, merged_child_id=twin.id, merged_uid=twin.child_uid,
                       reason="Same child, name misspelt.", moved={"visits": 0}))  # fmt: skip
    pair = sorted([kept.id, other.id])
    s.add(m.DuplicateDismissal(child_a_id=pair[0], child_b_id=pair[1], decided_by_id=olga.id))
    source = s.scalar(select(m.PullSource).where(m.PullSource.name == "central"))
    s.add(m.PullRetry(source_id=source.id, remote_id="uuid:R-1", instance_id="uuid:R-1",
                      submitted_at="2026-01-02T00:00:00.000Z", code="409.3",
                      message="A submission with this instanceID exists with other content.",
                      first_failed_at=NOW, last_tried_at=NOW))  # fmt: skip
    # a case as the phones' entity, with a follow-up's version in conflict, resolved (issue 18)
    entity = m.CaseEntity(case_id=s.scalar(select(func.min(m.Case.id))),
                          uuid="6f0e2a1b-3c4d-4e5f-8a9b-0c1d2e3f4a5b", version=2,
                          properties={"child_present": "no"}, created_at=NOW, updated_at=NOW)
    s.add(entity)
    s.flush()
    s.add(m.CaseEntityVersion(entity_id=entity.id, version=2, base_version=1,
                              submission_id=sub.id, submitter_id=olga.id, at=NOW,
                              received={"child_present": "no"}, properties={"child_present": "no"},
                              branch_id="3f2b8c1e-5d4a-4e6f-9a7b-1c2d3e4f5a6b", trunk_version=1,
                              branch_base_version=1, conflict="hard",
                              conflicting=["child_present"], resolved_at=NOW,
                              resolved_by_id=olga.id,
                              resolution_note="Seen at the farm."))  # fmt: skip


def every_row(engine) -> dict[str, list[tuple]]:
    """Every row of every table, in primary-key order, as plain values."""

    def plain(value):
        return bytes(value) if isinstance(value, memoryview) else value

    out = {}
    with engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            order = list(table.primary_key.columns)
            out[table.name] = [
                tuple(plain(v) for v in row) for row in conn.execute(select(table).order_by(*order))
            ]
    return out


@pytest.fixture
def empty_database(request, database_url, tmp_path):
    """A function making the URL of a new, never-migrated database: ``same`` kind as the test's,
    or the ``other`` kind (SQLite <-> PostgreSQL)."""

    def make(kind: str) -> str:
        sqlite = database_url.startswith("sqlite")
        if sqlite == (kind == "same"):
            return f"sqlite:///{tmp_path / f'restored-{uuid.uuid4().hex[:6]}.sqlite3'}"
        server = request.getfixturevalue("postgres_server")
        return server.create_database(f"clms_restore_{uuid.uuid4().hex[:8]}")

    return make


def app_on(url: str, tmp_path):
    other = create_app(
        {"DATABASE_URL": url, "SECRET_KEY": "test-secret", "TESTING": True, "ODK_VALIDATE": "0"}
    )
    other.instance_path = str(tmp_path / "other-instance")
    return other


@pytest.mark.parametrize("kind", ["same", "other"])
def test_a_backup_restores_every_row_into_an_empty_database(
    app, lived, runner, tmp_path, empty_database, kind
):
    with session_scope(app) as s:
        fill_every_table(s)
    source = every_row(app.extensions["clms_engine"])
    empty = [name for name, rows in source.items() if not rows]
    assert empty == [], f"give these tables a row in fill_every_table: {empty}"

    out = tmp_path / "clms-backup.zip"
    made = runner.invoke(args=["backup", "-o", str(out)])
    assert made.exit_code == 0, made.output
    assert "rows, schema revision" in made.output
    with zipfile.ZipFile(out) as zf:
        manifest = json.loads(zf.read("manifest.json"))
    assert {t["name"]: t["rows"] for t in manifest["tables"]} == {
        name: len(rows) for name, rows in source.items()
    }
    assert runner.invoke(args=["backup", "-o", str(out)]).exit_code == 1  # never overwritten

    url = empty_database(kind)
    other = app_on(url, tmp_path)
    try:
        restored = other.test_cli_runner().invoke(args=["restore", str(out)])
        assert restored.exit_code == 0, restored.output
        restored_rows = every_row(other.extensions["clms_engine"])
        # the restore itself is the next entry of the restored audit log
        head = restored_rows.pop("audit_head")
        entries = restored_rows.pop("audit_events")
        assert entries[: len(source["audit_events"])] == source["audit_events"]
        assert [e[6] for e in entries[len(source["audit_events"]) :]] == ["database.restore"]
        assert head[0][1] == len(entries)
        assert restored_rows == {
            k: v for k, v in source.items() if k not in ("audit_head", "audit_events")
        }
        verified = other.test_cli_runner().invoke(args=["audit", "verify"])
        assert verified.exit_code == 0 and "intact" in verified.output, verified.output
        # new rows get new ids (PostgreSQL's sequences were moved past the restored ones)
        with session_scope(other) as s:
            from clms.audit import record

            record(s, "test", "test.after_restore")
            s.add(Household(code="HH-NEW"))
        with session_scope(other) as s:
            assert s.scalar(select(Household.id).where(Household.code == "HH-NEW")) > max(
                r[0] for r in source["households"]
            )
        # and a second restore into it is refused: it holds data now
        again = other.test_cli_runner().invoke(args=["restore", str(out)])
        assert again.exit_code == 1 and "not empty" in again.output
    finally:
        other.extensions["clms_engine"].dispose()


def test_a_damaged_backup_is_refused_and_writes_nothing(app, staff, runner, tmp_path):
    out = tmp_path / "clms-backup.zip"
    assert runner.invoke(args=["backup", "-o", str(out)]).exit_code == 0
    damaged = tmp_path / "damaged.zip"
    with zipfile.ZipFile(out) as zf, zipfile.ZipFile(damaged, "w") as bad:
        for item in zf.infolist():
            data = zf.read(item)
            if item.filename == "tables/users.jsonl":
                data = data.replace(b"olga", b"olgb", 1)
            bad.writestr(item, data)
    url = f"sqlite:///{tmp_path / 'target.sqlite3'}"
    other = app_on(url, tmp_path)
    try:
        result = other.test_cli_runner().invoke(args=["restore", str(damaged)])
        assert result.exit_code == 1
        assert "damaged" in result.output and "users" in result.output, result.output
        from clms.backup import database_is_empty

        assert database_is_empty(other.extensions["clms_engine"]) == []
        junk = tmp_path / "junk.zip"
        junk.write_bytes(b"not a zip at all")
        result = other.test_cli_runner().invoke(args=["restore", str(junk)])
        assert result.exit_code == 1 and "not a CLMS backup" in result.output
    finally:
        other.extensions["clms_engine"].dispose()
    # the database the backup came from holds data: refused
    result = runner.invoke(args=["restore", str(out)])
    assert result.exit_code == 1 and "not empty" in result.output and "areas" in result.output


# --- the administrator's page ---------------------------------------------------------------------


def login(client, username: str) -> None:
    response = client.post("/login", data={"username": username, "password": PASSWORD})
    assert response.status_code == 302


def test_the_admin_page_exports_and_erases_with_confirmation(app, lived, client):
    uid, other = lived["uids"][NAME], lived["uids"][OTHER]
    login(client, "olga")
    assert client.get(f"/data-protection?child={uid}").status_code == 403
    client.post("/logout")
    login(client, "ada")
    page = client.get(f"/data-protection?child={uid.lower()}")
    assert page.status_code == 200 and uid in page.text and NAME not in page.text
    assert client.get("/data-protection?child=CH-NOPE").status_code == 404

    assert client.post(f"/data-protection/{uid}/export", data={"reason": ""}).status_code == 400
    download = client.post(f"/data-protection/{uid}/export", data={"reason": "Letter 3/2026"})
    assert download.status_code == 200 and "attachment" in download.headers["Content-Disposition"]
    assert download.json["child"]["name"] == NAME

    wrong = client.post(f"/data-protection/{uid}/erase", data={"reason": "Request", "confirm": "x"})
    assert wrong.status_code == 400 and "to confirm" in wrong.text
    open_case = client.post(
        f"/data-protection/{other}/erase", data={"reason": "Request", "confirm": other}
    )
    assert open_case.status_code == 409 and "harm" in open_case.text
    done = client.post(
        f"/data-protection/{uid}/erase",
        data={"reason": "Guardian's request", "request_ref": "R-9", "confirm": uid},
    )
    assert done.status_code == 303
    with session_scope(app) as s:
        assert s.scalar(select(Child.name).where(Child.child_uid == uid)) == "[removed]"
        assert s.scalar(select(Child.name).where(Child.child_uid == other)) == OTHER
        actions = [
            (e.action, e.actor, e.reason)
            for e in s.scalars(
                select(AuditEvent)
                .where(AuditEvent.action.in_(("child.export", "child.erase")))
                .order_by(AuditEvent.seq)
            )
        ]
    assert actions == [
        ("child.export", "ada", "Letter 3/2026"),
        ("child.erase", "ada", "Guardian's request"),
    ]
