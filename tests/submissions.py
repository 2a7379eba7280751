"""Building submissions of our forms for tests, with the data dictionary's field names."""

from __future__ import annotations

import uuid
from xml.sax.saxutils import escape

from sqlalchemy import select

from clms.db import session_scope
from clms.models import Form


def live_version(app, xml_form_id: str) -> str:
    with session_scope(app) as s:
        form = s.scalar(select(Form).where(Form.xml_form_id == xml_form_id))
        return form.live_version.version


def _leaf(name: str, value) -> str:
    if value is None:
        return f"<{name}/>"
    if isinstance(value, list | tuple):
        value = " ".join(value)
    return f"<{name}>{escape(str(value))}</{name}>"


def child(**overrides) -> dict:
    """A child aged 10 at school who does no work, unless told otherwise."""
    values = {
        "child_name": "Adjoua Kouassi",
        "sex": "female",
        "dob": None,
        "age": 10,
        "relationship": "son_daughter",
        "attends_school": "yes",
        "work_activities": "none",
        "work_hours_7d": 0,
        "chore_hours_7d": 5,
        "hazards": "none",
        "night_work": "no",
        "injured_12m": "no",
        "worst_form_signs": "none",
        "nationality": "CIV",
        "migrant_status": "national",
        "lives_with_parent": "yes",
    }
    values.update(overrides)
    return values


#: a GPS reading in each village of the ``places`` fixture (tests/conftest.py), about 150 m from its
#: point: the server places a visit by its GPS, and holds one far from its village for review
VILLAGE_GPS = {
    "V1": "5.781 -6.592 210 5",
    "V2": "5.701 -6.611 210 5",
    "V3": "5.551 -6.901 210 5",
    "V4": "5.521 -6.951 210 5",
}


def household_xml(
    version: str,
    *,
    instance_id: str | None = None,
    deprecated_id: str | None = None,
    village: str = "V1",
    supplier: str = "T2-COOP",
    household_code: str = "HH-V1-001",
    head: str = "Kouassi Yao",
    gps: str | None = None,
    consent: str = "yes",
    children: list[dict] | None = None,
    end: str = "2026-11-20T10:30:00.000+00:00",
) -> bytes:
    """A clms_household_visit submission; ``gps`` defaults to a point in ``village``."""
    gps = gps if gps is not None else VILLAGE_GPS.get(village, VILLAGE_GPS["V1"])
    instance_id = instance_id or f"uuid:{uuid.uuid4()}"
    kids = children if children is not None else [child()]
    body = "".join(
        "<child>" + "".join(_leaf(k, v) for k, v in kid.items()) + "</child>" for kid in kids
    )
    meta = f"<instanceID>{instance_id}</instanceID>"
    if deprecated_id:
        meta += f"<deprecatedID>{deprecated_id}</deprecatedID>"
    return (
        f'<data xmlns:jr="http://openrosa.org/javarosa" xmlns:orx="http://openrosa.org/xforms" '
        f'id="clms_household_visit" version="{version}">'
        f"<start>2026-11-20T10:00:00.000+00:00</start><end>{end}</end>"
        "<deviceid>collect:TEST123</deviceid><username>awa</username>"
        f"{_leaf('village', village)}{_leaf('supplier', supplier)}"
        f"{_leaf('household_code', household_code)}{_leaf('household_head', head)}"
        f"{_leaf('gps', gps)}{_leaf('consent', consent)}{body}"
        f"<meta>{meta}</meta></data>"
    ).encode()


def followup_xml(
    version: str,
    case_number: str,
    *,
    end: str,
    instance_id: str | None = None,
    child_present: str = "yes",
    attends_school: str = "yes",
    work_hours_7d: int = 0,
    chore_hours_7d: int = 4,
    hazards: str = "none",
    night_work: str = "no",
    worst_form_signs: str = "none",
    services_received: str = "none",
    notes: str = "",
    entity: dict | None = None,
) -> bytes:
    """A clms_followup submission for ``case_number`` made at ``end``; with ``entity`` (the
    attributes of ``<meta><entity>``: id, baseVersion, and trunkVersion, branchId if offline),
    as the form with the case entity list sends it (the chosen entity in ``case_entity``)."""
    instance_id = instance_id or f"uuid:{uuid.uuid4()}"
    meta_entity, chosen = "", ""
    if entity is not None:
        attrs = {"dataset": "cases", "update": "1", "trunkVersion": "", "branchId": "", **entity}
        meta_entity = "<entity " + " ".join(f'{k}="{v}"' for k, v in attrs.items()) + "/>"
        chosen = _leaf("followup_date", end[:10]) + _leaf("case_entity", entity.get("id"))
    return (
        f'<data id="clms_followup" version="{version}">'
        f"<start>{end}</start><end>{end}</end>{chosen}"
        "<deviceid>collect:TEST123</deviceid><username>awa</username>"
        f"{_leaf('case', case_number)}{_leaf('child_present', child_present)}"
        f"{_leaf('attends_school', attends_school)}{_leaf('work_hours_7d', work_hours_7d)}"
        f"{_leaf('chore_hours_7d', chore_hours_7d)}{_leaf('hazards', hazards)}"
        f"{_leaf('night_work', night_work)}{_leaf('worst_form_signs', worst_form_signs)}"
        f"{_leaf('services_received', services_received)}{_leaf('notes', notes or None)}"
        f"<meta><instanceID>{instance_id}</instanceID>{meta_entity}</meta></data>"
    ).encode()
