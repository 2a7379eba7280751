"""Cases carried to phones as ODK entities (issue 18): the entity list and its manifest entry as
ODK Collect reads them, the integrity URL, per-monitor scoping, the follow-ups' entity blocks, the
versions the server keeps, and conflicting offline updates shown to the officer and resolved.

Central's behaviour these follow is in getodk/central-backend: lib/formats/openrosa.js (the
manifest entry, the integrity XML), lib/resources/datasets.js (``GET .../integrity?id=``) and
lib/model/query/entities.js (base versions, offline branches, soft and hard conflicts).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from types import SimpleNamespace

import pytest
from lxml import etree
from sqlalchemy import func, select

from clms.cases.entities import HEADER, EntityUpdate, apply_followups, resolve_conflict
from clms.cases.merge import merge_children
from clms.db import session_scope
from clms.models import (
    AuditEvent,
    Case,
    CaseEntity,
    CaseEntityVersion,
    FormVersion,
    Submission,
    User,
    Village,
)
from clms.openrosa.media import media_for
from forms.parse import FOLLOWUP_ENTITY_PROPERTIES, EntityBlock
from forms.publish import BUILD_DIR
from tests import builders as b
from tests.conftest import PASSWORD
from tests.openrosa_client import OPENROSA, Phone
from tests.submissions import followup_xml, live_version

MANIFEST_NS = {"m": "http://openrosa.org/xforms/xformsManifest"}
BRANCH = "3f2b8c1e-5d4a-4e6f-9a7b-1c2d3e4f5a6b"  # an offline branch, as Collect draws it
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


@pytest.fixture
def cases(app, phone, make_user):
    """Open cases in V1 (awa's area CI-D1: Aya's, nobody's to follow; Ben's, zoe's) and in V3
    (CI-D2, another area); olga is the officer of CI-D1, zoe another monitor there."""
    make_user("olga", "officer", areas=["CI-D1"])
    make_user("zoe", "monitor", areas=["CI-D1"])
    with session_scope(app) as s:
        aya = b.case(s, b.child(s, b.household(s, "V1"), "Aya Koné"), state="implementation",
                     officer="olga")  # fmt: skip
        zoe = s.scalar(select(User).where(User.username == "zoe"))
        ben = b.case(s, b.child(s, b.household(s, "V1"), "Ben Yao"), state="implementation",
                     monitor_id=zoe.id)  # fmt: skip
        far = b.case(s, b.child(s, b.household(s, "V3"), "Eva Zadi"), state="implementation")
        return {"aya": aya.case_number, "ben": ben.case_number, "far": far.case_number}


def manifest_entry(phone, name="cases.csv"):
    r = phone.get("/forms/clms_followup/manifest")
    assert r.status_code == 200
    doc = etree.fromstring(r.data)
    (entry,) = doc.xpath(f"//m:mediaFile[m:filename='{name}']", namespaces=MANIFEST_NS)
    return entry


def entity_rows(phone):
    r = phone.get("/forms/clms_followup/media/cases.csv")
    assert r.status_code == 200
    return r, list(csv.DictReader(io.StringIO(r.data.decode())))


def uuid_of(app, number: str) -> str:
    with session_scope(app) as s:
        return s.scalar(
            select(CaseEntity.uuid).join(Case, Case.id == CaseEntity.case_id)
            .where(Case.case_number == number)
        )  # fmt: skip


# --- the form -------------------------------------------------------------------------------------


def test_followup_form_updates_the_case_entity_offline():
    """pyxform's output: the entities namespace and version, the <meta><entity> block with every
    attribute Collect fills for an offline update, each bound to the chosen case's row."""
    xml = etree.parse(str(BUILD_DIR / "clms_followup.xml")).getroot()
    ns = {"x": "http://www.w3.org/2002/xforms",
          "e": "http://www.opendatakit.org/xforms/entities"}  # fmt: skip
    model = xml.find(".//x:model", ns)
    assert model.get("{http://www.opendatakit.org/xforms/entities}entities-version") == "2024.1.0"
    (entity,) = xml.xpath("//x:instance[not(@id)]//x:meta/x:entity", namespaces=ns)
    assert entity.get("dataset") == "cases" and entity.get("update") == "1"
    for attr in ("id", "baseVersion", "trunkVersion", "branchId"):
        assert attr in entity.attrib
    binds = {bd.get("nodeset"): bd for bd in xml.iterfind(".//x:bind", ns)}
    assert binds["/data/meta/entity/@id"].get("calculate").strip() == "/data/case_entity"
    assert "__version" in binds["/data/meta/entity/@baseVersion"].get("calculate")
    assert "__trunkVersion" in binds["/data/meta/entity/@trunkVersion"].get("calculate")
    assert "__branchId" in binds["/data/meta/entity/@branchId"].get("calculate")
    saved = {
        bd.get("{http://www.opendatakit.org/xforms/entities}saveto"): bd.get("nodeset")
        for bd in binds.values()
        if bd.get("{http://www.opendatakit.org/xforms/entities}saveto")
    }
    # what the server reads (forms.parse) is what the form saves
    assert saved == {p: f"/data/{f}" for p, f in FOLLOWUP_ENTITY_PROPERTIES.items()}
    # the data dictionary's `case` is still the case number, looked up in the list
    assert "case_number" in binds["/data/case"].get("calculate")
    (src,) = xml.xpath("//x:instance[@id='cases']/@src", namespaces=ns)
    assert src == "jr://file-csv/cases.csv"


# --- the list, its manifest entry and its integrity URL ------------------------------------------


def test_manifest_serves_cases_as_an_entity_list_as_central_does(app, phone, cases):
    entry = manifest_entry(phone)
    assert entry.get("type") == "entityList"
    integrity = entry.findtext("m:integrityUrl", namespaces=MANIFEST_NS)
    assert integrity == "http://localhost/datasets/cases/integrity"
    r, rows = entity_rows(phone)
    # the md5 in the manifest is the bytes served (ids are kept, not drawn again per request)
    assert entry.findtext("m:hash", namespaces=MANIFEST_NS) == (
        "md5:" + hashlib.md5(r.data).hexdigest()
    )
    assert r.data.decode().splitlines()[0] == ",".join(HEADER)
    assert HEADER[:3] == ["name", "label", "__version"]
    (row,) = rows  # Aya only: Ben is zoe's, Eva in another area
    assert UUID.fullmatch(row["name"])
    assert row["label"] == f"{cases['aya']} Aya" and row["first_name"] == "Aya"
    assert (row["__version"], row["case_number"], row["village"]) == ("1", cases["aya"], "V1")
    assert "Koné" not in r.data.decode()  # the first name, no more
    # the same id next time, and for the same case in zoe's list
    assert entity_rows(phone)[1][0]["name"] == row["name"]
    zoe = Phone(phone.client, "zoe", PASSWORD)
    assert {x["case_number"]: x["name"] for x in entity_rows(zoe)[1]}[cases["aya"]] == row["name"]


def test_a_monitor_never_gets_another_areas_cases(app, phone, cases, make_user):
    make_user("kofi", "monitor", areas=["CI-D2"])
    kofi = Phone(phone.client, "kofi", PASSWORD)
    assert [x["case_number"] for x in entity_rows(kofi)[1]] == [cases["far"]]
    assert [x["case_number"] for x in entity_rows(phone)[1]] == [cases["aya"]]
    far = uuid_of(app, cases["far"])
    # asked about a case of another area, the integrity URL says it is gone, nothing more
    r = phone.get(f"/datasets/cases/integrity?id={far}")
    assert r.status_code == 200 and r.headers["X-OpenRosa-Version"] == "1.0"
    assert b"Eva" not in r.data and cases["far"].encode() not in r.data
    assert etree.fromstring(r.data).xpath("//entity/deleted/text()") == ["true"]


def test_integrity_says_which_entities_were_deleted(app, phone, cases):
    entity_rows(phone)
    aya = uuid_of(app, cases["aya"])
    unknown = "12345678-1234-4123-8234-123456789abc"

    def states(query=""):
        r = phone.get(f"/datasets/cases/integrity{query}")
        assert r.status_code == 200
        doc = etree.fromstring(r.data)
        assert doc.tag == "data" and doc[0].tag == "entities"
        return {e.get("id"): e.findtext("deleted") for e in doc.iter("entity")}

    assert states(f"?id={aya},{unknown}") == {aya: "false"}  # an id never given: left out
    assert states() == {aya: "false"}
    with session_scope(app) as s:
        s.scalar(select(Case).where(Case.case_number == cases["aya"])).state = "closed"
    assert states(f"?id={aya}") == {aya: "true"}
    assert states() == {}
    _, rows = entity_rows(phone)
    assert rows == []


def test_a_transferred_case_is_deleted_and_a_merged_childs_case_keeps_its_entity(app, phone, cases):
    """A case transferred to another agency leaves the list (deleted for the phones). Merging
    two records of the same child moves the case to the kept record (clms.cases.merge): the
    case goes on, so its entity keeps its id and the list shows the kept record's first name."""
    entity_rows(phone)
    aya = uuid_of(app, cases["aya"])
    with session_scope(app) as s:
        case = s.scalar(select(Case).where(Case.case_number == cases["aya"]))
        kept = b.child(s, b.household(s, "V1"), "Ayana Koné")
        olga = s.scalar(select(User).where(User.username == "olga"))
        merge_children(s, olga, kept.child_uid, case.child.child_uid, "the same girl")
    (row,) = [x for x in entity_rows(phone)[1] if x["case_number"] == cases["aya"]]
    assert (row["name"], row["first_name"]) == (aya, "Ayana")
    with session_scope(app) as s:
        s.scalar(select(Case).where(Case.case_number == cases["aya"])).state = "transferred"
    r = phone.get(f"/datasets/cases/integrity?id={aya}")
    assert etree.fromstring(r.data).xpath("//entity/deleted/text()") == ["true"]


def test_integrity_refuses_an_id_that_is_not_a_uuid(phone, cases):
    r = phone.get("/datasets/cases/integrity?id=1;drop")
    assert r.status_code == 400
    assert b"Parameter &#x27;id&#x27;" in r.data or b"Parameter 'id'" in r.data
    assert b"not an entity id" in r.data
    assert phone.get("/datasets/people/integrity").status_code == 404


def test_an_older_form_version_still_gets_the_cases_csv_it_was_built_for(app, phone, cases):
    """A phone still on the follow-up form from before the entity list chooses the case number
    from cases.csv: a version without <meta><entity> gets that file, from the same query."""
    built = etree.parse(str(BUILD_DIR / "clms_followup.xml")).getroot()
    for entity in built.xpath("//*[local-name()='meta']/*[local-name()='entity']"):
        entity.getparent().remove(entity)
    legacy = etree.tostring(built)
    with session_scope(app) as s:
        awa = s.scalar(select(User).where(User.username == "awa"))
        version = SimpleNamespace(
            id=-1, md5=hashlib.md5(legacy).hexdigest(), xml=legacy, media_files=["cases.csv"],
            form=SimpleNamespace(xml_form_id="clms_followup"),
        )  # fmt: skip
        (old,) = media_for(s, awa, version)
        live = s.get(FormVersion, s.scalar(select(FormVersion.id).where(
            FormVersion.version == live_version(app, "clms_followup"))))  # fmt: skip
        (new,) = [f for f in media_for(s, awa, live) if f.name == "cases.csv"]
    assert old.entity_list is None and new.entity_list == "cases"
    assert old.data.decode().splitlines() == [
        "name,label,first_name,village",
        f"{cases['aya']},{cases['aya']} Aya,Aya,V1",
    ]


# --- ingest: versions and conflicts ---------------------------------------------------------------


def follow_up(phone, version, number, uuid, base, end, **answers):
    xml = followup_xml(version, number, end=end, entity={"id": uuid, "baseVersion": base},
                       **answers)  # fmt: skip
    assert phone.submit(xml).status_code == 201


def test_a_followup_makes_a_new_version_of_the_case_entity(app, phone, cases, process):
    version = live_version(app, "clms_followup")
    entity_rows(phone)
    aya = uuid_of(app, cases["aya"])
    follow_up(phone, version, cases["aya"], aya, 1, "2026-06-10T09:00:00.000+00:00",
              attends_school="no", work_hours_7d=6)  # fmt: skip
    process()
    with session_scope(app) as s:
        entity = s.scalar(select(CaseEntity).where(CaseEntity.uuid == aya))
        assert entity.version == 2 and entity.conflict is None
        assert entity.properties == {"last_followup": "2026-06-10", "child_present": "yes",
                                     "attends_school": "no", "work_hours_7d": "6"}  # fmt: skip
        v2 = s.scalar(select(CaseEntityVersion).where(CaseEntityVersion.version == 2))
        assert (v2.base_version, v2.submitter_id is not None) == (1, True)
    # the phone's next download carries the new version and values
    (row,) = entity_rows(phone)[1]
    assert (row["__version"], row["attends_school"], row["work_hours_7d"]) == ("2", "no", "6")


def test_a_followup_held_for_review_does_not_change_the_entity(app, phone, cases, process):
    # the case moved to another area after the phone took it: the follow-up is held for review
    # (case outside the monitor's villages), and the other area's phones keep the entity as it was
    version = live_version(app, "clms_followup")
    entity_rows(phone)
    aya = uuid_of(app, cases["aya"])
    with session_scope(app) as s:
        case = s.scalar(select(Case).where(Case.case_number == cases["aya"]))
        case.village_id = s.scalar(select(Village.id).where(Village.code == "V3"))
        s.commit()
    follow_up(phone, version, cases["aya"], aya, 1, "2026-06-10T09:00:00.000+00:00",
              attends_school="no", work_hours_7d=6)  # fmt: skip
    process()
    with session_scope(app) as s:
        held = s.scalar(select(Submission).order_by(Submission.id.desc()).limit(1))
        assert held.status == "review"
        assert "case_out_of_scope" in {r["code"] for r in held.review_reasons}
        entity = s.scalar(select(CaseEntity).where(CaseEntity.uuid == aya))
        assert entity.version == 1 and "attends_school" not in entity.properties


def test_two_phones_updating_from_the_same_version_make_a_conflict_for_the_officer(
    app, phone, cases, process
):
    version = live_version(app, "clms_followup")
    zoe = Phone(phone.client, "zoe", PASSWORD)
    entity_rows(phone)
    aya = uuid_of(app, cases["aya"])
    follow_up(phone, version, cases["aya"], aya, 1, "2026-06-10T09:00:00.000+00:00",
              child_present="yes", work_hours_7d=0)  # fmt: skip
    follow_up(zoe, version, cases["aya"], aya, 1, "2026-06-10T15:00:00.000+00:00",
              child_present="no", work_hours_7d=0)  # fmt: skip
    process()
    with session_scope(app) as s:
        entity = s.scalar(select(CaseEntity).where(CaseEntity.uuid == aya))
        assert (entity.version, entity.conflict) == (3, "hard")
        v3 = s.scalar(select(CaseEntityVersion).where(CaseEntityVersion.version == 3))
        assert (v3.base_version, v3.conflict, v3.conflicting) == (1, "hard", ["child_present"])
        assert entity.properties["child_present"] == "no"  # merged, but not silently
        case_id = s.scalar(select(Case.id).where(Case.case_number == cases["aya"]))
    client = app.test_client()  # the officer's browser
    assert client.post("/login", data={"username": "olga", "password": PASSWORD}).status_code == 302
    page = client.get(f"/cases/{case_id}").data.decode()
    assert 'id="entity-conflict"' in page
    section = page[
        page.index('id="entity-conflict"') : page.index(
            "</section>", page.index('id="entity-conflict"')
        )
    ]
    assert "awa" in section and "zoe" in section  # who
    assert section.count("<mark") == 2  # the answer they disagree on, in both rows
    assert "Child seen" in section
    # the officer's home lists it until it is resolved
    home = client.get("/").data.decode()
    assert "Your cases that phones updated without seeing each other: resolve" in home
    assert cases["aya"] in home
    # resolving needs a note, then is audited and the section goes
    r = client.post(f"/cases/{case_id}/entity-conflict/resolve", data={"note": ""})
    assert r.status_code == 303
    assert 'id="entity-conflict"' in client.get(f"/cases/{case_id}").data.decode()
    r = client.post(f"/cases/{case_id}/entity-conflict/resolve",
                    data={"note": "Zoe came after Aya left for the farm."})  # fmt: skip
    assert r.status_code == 303
    assert 'id="entity-conflict"' not in client.get(f"/cases/{case_id}").data.decode()
    assert "phones updated without seeing each other" not in client.get("/").data.decode()
    with session_scope(app) as s:
        event = s.scalar(select(AuditEvent).where(
            AuditEvent.action == "case_entity.conflict_resolved"))  # fmt: skip
        assert event.actor == "olga" and json.loads(event.details)["conflict"] == "hard"
        assert "Zoe came" not in str(event.details) + event.reason  # personal data: not kept here
        v3 = s.scalar(select(CaseEntityVersion).where(CaseEntityVersion.version == 3))
        assert v3.resolved_at is not None and v3.resolution_note.startswith("Zoe came")


def block(uuid, base, *, trunk=None, branch=None, **props) -> EntityBlock:
    return EntityBlock("cases", uuid, False, True, base, trunk, branch, None, props)


def test_conflict_rules_follow_central(app, phone, cases):
    """Soft when the updates set different things, hard when one sets what the other changed,
    to another value; an offline branch's own later updates are not conflicts; a submission is
    applied once; a block that cannot apply is refused and audited."""
    entity_rows(phone)
    aya = uuid_of(app, cases["aya"])
    with session_scope(app) as s:
        awa = s.scalar(select(User).where(User.username == "awa"))
        now = b.NOW

        def apply(sub_id, blk):
            return apply_followups(s, [EntityUpdate(sub_id, awa, now, blk)])

        subs = [b.submission(s).id for _ in range(6)]
        # an offline branch: two updates on the same phone, the second from the first's version
        first = apply(subs[0], block(aya, 1, trunk=1, branch=BRANCH, child_present="yes"))
        second = apply(subs[1], block(aya, 2, trunk=1, branch=BRANCH, attends_school="no"))
        assert [v.conflict for v in first.versions + second.versions] == [None, None]
        assert second.versions[0].base_version == 2  # the branch's first update, on the server
        # another phone, from version 1, setting something nobody changed: soft
        soft = apply(subs[2], block(aya, 1, work_hours_7d="3"))
        assert (soft.versions[0].conflict, soft.versions[0].conflicting) == ("soft", [])
        # from version 1 again, contradicting the branch's answer: hard
        hard = apply(subs[3], block(aya, 1, attends_school="yes"))
        assert (hard.versions[0].conflict, hard.versions[0].conflicting) == (
            "hard", ["attends_school"])  # fmt: skip
        entity = s.scalar(select(CaseEntity).where(CaseEntity.uuid == aya))
        assert (entity.version, entity.conflict) == (5, "hard")
        # the same submission again (the intake ran it twice): nothing new
        assert apply(subs[3], block(aya, 1, attends_school="yes")).versions == []
        # a version the server never gave, an unknown entity: refused, audited, nothing changes
        refused = apply(subs[4], block(aya, 9, child_present="no")).refused
        assert refused and "baseVersion 9" in refused[0][1]
        other = "12345678-1234-4123-8234-123456789abc"
        assert "no case entity" in apply(subs[5], block(other, 1)).refused[0][1]
        assert s.scalar(select(CaseEntity.version).where(CaseEntity.uuid == aya)) == 5
        assert s.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.action == "case_entity.refused")) == 2  # fmt: skip


def test_through_a_device_token_url_the_integrity_url_keeps_the_token(app, phone, cases):
    """A phone configured with a device-token URL (/key/<token>/) reaches the list's integrity
    URL with the same token, as it reaches the list itself."""
    from clms.auth import issue_token

    with session_scope(app) as s:
        awa = s.scalar(select(User).where(User.username == "awa"))
        token, _ = issue_token(s, awa, "device", label="phone 1")
    client = phone.client
    r = client.get(f"/key/{token}/forms/clms_followup/manifest", headers=OPENROSA)
    assert r.status_code == 200
    doc = etree.fromstring(r.data)
    (integrity,) = doc.xpath("//m:integrityUrl/text()", namespaces=MANIFEST_NS)
    assert integrity == f"http://localhost/key/{token}/datasets/cases/integrity"
    answer = client.get(integrity.replace("http://localhost", ""), headers=OPENROSA)
    assert answer.status_code == 200 and answer.data.count(b"<entity ") == 1


def test_an_edit_of_a_followup_continues_its_own_update(app, phone, cases):
    """A reviewer's correction of a follow-up (a later version of the same logical submission,
    with the same entity block) is not a second phone: it changes what the first version did,
    without a conflict; another phone's update in between still is one."""
    entity_rows(phone)
    aya = uuid_of(app, cases["aya"])
    with session_scope(app) as s:
        awa = s.scalar(select(User).where(User.username == "awa"))
        first = b.submission(s, logical_id="uuid:visit-1")
        edit = b.submission(s, logical_id="uuid:visit-1", instance_id="uuid:visit-1-edit")
        other = b.submission(s)
        again = b.submission(s, logical_id="uuid:visit-1", instance_id="uuid:visit-1-edit-2")
        made = []
        for sub, blk in (
            (first, block(aya, 1, child_present="yes", work_hours_7d="6")),
            (edit, block(aya, 1, child_present="yes", work_hours_7d="4")),
            (other, block(aya, 1, attends_school="no")),  # zoe's phone, from version 1
            (again, block(aya, 1, child_present="yes", work_hours_7d="2")),
        ):
            made += apply_followups(s, [EntityUpdate(sub.id, awa, b.NOW, blk)]).versions
        assert [(v.version, v.base_version, v.conflict) for v in made] == [
            (2, 1, None), (3, 2, None), (4, 1, "soft"), (5, 3, "soft"),
        ]  # fmt: skip
        assert s.scalar(select(CaseEntity.properties).where(CaseEntity.uuid == aya)) == {
            "child_present": "yes", "work_hours_7d": "2", "attends_school": "no",
        }  # fmt: skip


def test_the_same_updates_give_the_versions_and_conflicts_real_central_gave(app, phone, cases):
    """The sequence below was sent to a real ODK Central (central-backend 4f5943d, the server of
    /work/shared/tools/odk-central, our follow-up form published there, the submissions made by
    tests.submissions.followup_xml): its entity versions came back as asserted here, version for
    version (base version, conflict, conflicting properties, offline branch)."""
    entity_rows(phone)
    aya = uuid_of(app, cases["aya"])

    def sent(base, present, school, hours, day, trunk=None, branch=None):
        return block(aya, base, trunk=trunk, branch=branch, child_present=present,
                     attends_school=school, work_hours_7d=str(hours),
                     last_followup=f"2026-06-{day}")  # fmt: skip

    with session_scope(app) as s:
        awa = s.scalar(select(User).where(User.username == "awa"))
        made = []
        for blk in (
            sent(1, "yes", "yes", 6, 10),
            sent(1, "no", "yes", 6, 10),  # another phone, from version 1
            sent(3, "yes", "no", 2, 11, trunk=3, branch=BRANCH),  # offline: branch starts
            sent(4, "yes", "no", 1, 11, trunk=3, branch=BRANCH),  # the branch goes on
            sent(3, "yes", "yes", 9, 11),  # a phone that never saw the branch
        ):
            update = EntityUpdate(b.submission(s).id, awa, b.NOW, blk)
            made += apply_followups(s, [update]).versions
        got = [(v.version, v.base_version, v.conflict, v.conflicting, v.branch_id,
                v.trunk_version, v.branch_base_version) for v in made]  # fmt: skip
        assert got == [
            (2, 1, None, [], None, None, None),
            (3, 1, "hard", ["child_present"], None, None, None),
            (4, 3, None, [], BRANCH, 3, 3),
            (5, 4, None, [], BRANCH, 3, 4),
            (6, 3, "hard", ["attends_school", "work_hours_7d"], None, None, None),
        ]
        assert s.scalar(select(CaseEntity.conflict).where(CaseEntity.uuid == aya)) == "hard"


def test_erasing_a_child_removes_their_name_from_the_resolution_notes(app, phone, cases):
    """A note resolving a conflict may name the child: an erasure finds it there, as in every
    other text of the child's record (clms.dataprotection)."""
    from clms.dataprotection.erasure import erase_child

    entity_rows(phone)
    aya = uuid_of(app, cases["aya"])
    with session_scope(app) as s:
        awa = s.scalar(select(User).where(User.username == "awa"))
        olga = s.scalar(select(User).where(User.username == "olga"))
        for present in ("yes", "no"):
            update = EntityUpdate(
                b.submission(s).id, awa, b.NOW, block(aya, 1, child_present=present)
            )
            apply_followups(s, [update])
        case = s.scalar(select(Case).where(Case.case_number == cases["aya"]))
        resolve_conflict(s, olga, case.id, "Aya Koné was at her aunt's when zoe came.")
        case.state = "closed"
        uid = case.child.child_uid
    with session_scope(app) as s:
        ada = s.scalar(select(User).where(User.username == "olga"))
        erase_child(s, ada, uid, reason="The family asked", now=b.NOW)
    with session_scope(app) as s:
        notes = s.scalars(select(CaseEntityVersion.resolution_note).where(
            CaseEntityVersion.resolution_note.is_not(None))).all()  # fmt: skip
        assert notes and all("Aya" not in n and "Koné" not in n for n in notes)
