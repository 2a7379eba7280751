"""Parsing our forms' submissions into plain records (no database, no Flask).

The parser never guesses. A value it cannot understand is left out of the record (``None``) and an
:class:`Issue` says which field, what value and why, so the submission is stored and marked for
review instead of being silently "fixed". Field names are the data dictionary's
(shared/design/data-dictionary.md); fields are looked up by name anywhere outside the ``child``
repeat, so layout groups in a form do not matter.

>>> from forms.xmlsafe import parse_xml
>>> xml = b'''<data id="clms_report" version="1"><reporter_type>teacher</reporter_type>
... <village>V1</village><concern>child_working not_in_school</concern>
... <meta><instanceID>uuid:1</instanceID></meta></data>'''
>>> r = parse_submission(parse_xml(xml))
>>> r.kind, r.village, r.concern
('report', 'V1', ['child_working', 'not_in_school'])
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass, field

from lxml import etree

from clms.codes import (
    CONCERNS,
    HAZARDS,
    MIGRANT_STATUS,
    RELATIONSHIPS,
    REPORTER_TYPES,
    SEX,
    WORK_ACTIVITIES,
    WORST_FORM_SIGNS,
)
from forms.xmlsafe import local

HOUSEHOLD_FORM = "clms_household_visit"
FOLLOWUP_FORM = "clms_followup"
REPORT_FORM = "clms_report"
OUR_FORMS = (HOUSEHOLD_FORM, FOLLOWUP_FORM, REPORT_FORM)

MIN_CHILD_AGE, MAX_CHILD_AGE = 5, 17
MAX_WEEK_HOURS = 168


@dataclass
class Issue:
    """Something in a submission that needs a person: where, what value, what is wrong."""

    path: str
    value: str | None
    problem: str  # in English, for the logs and for old readers
    #: a stable code of the kind of problem (forms.reasons says it in plain words, and whether a
    #: reviewer may accept it as it is); None only in rows written before codes existed
    code: str | None = None
    #: what the plain words need besides path and value (a distance, a limit, ...)
    data: dict | None = None

    def as_dict(self) -> dict:
        out = {"path": self.path, "value": self.value, "problem": self.problem}
        if self.code is not None:
            out["code"] = self.code
        if self.data:
            out["data"] = self.data
        return out


@dataclass
class Meta:
    """ODK metadata common to all our forms."""

    start: dt.datetime | None = None
    end: dt.datetime | None = None
    device_id: str | None = None
    username: str | None = None


@dataclass
class ChildRecord:
    """One ``child`` repeat of a household visit."""

    position: int
    name: str | None
    sex: str | None
    dob: dt.date | None
    age: int | None
    relationship: str | None
    attends_school: bool | None
    work_activities: list[str]
    work_hours_7d: int | None
    chore_hours_7d: int | None
    hazards: list[str]
    night_work: bool | None
    injured_12m: bool | None
    worst_form_signs: list[str]
    nationality: str | None
    migrant_status: str | None
    lives_with_parent: bool | None


@dataclass
class HouseholdVisitRecord:
    kind = "household"
    meta: Meta
    village: str | None
    supplier: str | None  # None when absent, "none" when the household sells to nobody we know
    household_code: str | None
    household_head: str | None
    gps: tuple[float, float, float | None, float | None] | None
    consent: bool | None
    children: list[ChildRecord]
    issues: list[Issue] = field(default_factory=list)


@dataclass
class FollowupRecord:
    kind = "followup"
    meta: Meta
    case_number: str | None
    child_present: bool | None
    attends_school: bool | None
    work_hours_7d: int | None
    chore_hours_7d: int | None
    hazards: list[str]
    night_work: bool | None
    worst_form_signs: list[str]
    services_received: list[str]
    notes: str | None
    issues: list[Issue] = field(default_factory=list)
    #: the ``<meta><entity>`` block: the follow-up's update of the case entity on the phone
    #: (None from form versions before the entity list)
    entity: EntityBlock | None = None


#: the entity properties a follow-up saves (the ``save_to`` column of clms_followup.md), each
#: with the field that holds its value; the server keeps them as the phone does, as text
FOLLOWUP_ENTITY_PROPERTIES = {
    "last_followup": "followup_date",
    "child_present": "child_present",
    "attends_school": "attends_school",
    "work_hours_7d": "work_hours_7d",
}
#: an entity id (and an offline branch id): a version-4 UUID, as ODK Central checks them
UUID4 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


@dataclass
class EntityBlock:
    """A submission's ``<meta><entity>`` (ODK entities spec 2024.1): which entity of which list
    (``dataset``) it creates or updates, from which version the phone saw (``base_version``;
    offline updates also say the server version their branch started from, ``trunk_version``,
    and the branch, ``branch_id``), the label if given and the properties' values as received.

    ``problem`` says what is wrong with the block (in English, naming the attribute); a block
    with a problem updates nothing.
    """

    dataset: str
    entity_id: str
    create: bool
    update: bool
    base_version: int | None
    trunk_version: int | None
    branch_id: str | None
    label: str | None
    properties: dict[str, str]
    problem: str | None = None


@dataclass
class ReportRecord:
    kind = "report"
    meta: Meta
    reporter_type: str | None
    village: str | None
    concern: list[str]
    child_age_estimate: int | None
    description: str | None
    contact: str | None
    issues: list[Issue] = field(default_factory=list)


Record = HouseholdVisitRecord | FollowupRecord | ReportRecord


def parse_submission(root: etree._Element) -> Record | None:
    """Parse a submission of one of our forms; ``None`` for any other form."""
    form_id = root.get("id")
    if form_id == HOUSEHOLD_FORM:
        return _household(root)
    if form_id == FOLLOWUP_FORM:
        return _followup(root)
    if form_id == REPORT_FORM:
        return _report(root)
    return None


def name_key(name: str) -> str:
    """Fold a name for matching the same child across visits: case, accents, spacing, punctuation.

    >>> name_key("  Adjoua  KOUASSI-Ébrié ")
    'adjoua kouassi ebrie'
    """
    text = unicodedata.normalize("NFKD", name)
    text = "".join(c for c in text if not unicodedata.combining(c)).casefold()
    return " ".join(re.sub(r"[^\w]+", " ", text).split())


# --- reading values ----------------------------------------------------------------------------


class _Fields:
    """Leaf values of one element, found by local name, and the issues met while reading them."""

    def __init__(self, elem: etree._Element, prefix: str, skip: set[str], issues: list[Issue]):
        self.values: dict[str, str] = {}
        self.prefix = prefix
        self.issues = issues
        self._collect(elem, skip)

    def _collect(self, elem: etree._Element, skip: set[str]) -> None:
        for c in elem:
            name = local(c.tag)
            if not name or name in skip:
                continue
            if len(c):
                self._collect(c, skip)  # a layout group: its leaves belong to the same record
            elif name not in self.values:
                self.values[name] = (c.text or "").strip()

    def _issue(
        self, name: str, value: str | None, message: str, code: str, data: dict | None = None
    ) -> None:
        self.issues.append(Issue(f"{self.prefix}{name}", value, message, code, data))

    def text(self, name: str, max_len: int = 2000) -> str | None:
        value = self.values.get(name) or None
        if value is not None and len(value) > max_len:
            self._issue(name, value[:40] + "...", f"longer than {max_len} characters",
                        "too_long", {"limit": max_len})
            return None
        return value

    def code(self, name: str, allowed: set[str]) -> str | None:
        value = self.text(name)
        if value is None:
            return None
        if value not in allowed:
            self._issue(
                name, value, f"not one of the form's choices ({', '.join(sorted(allowed))})",
                "unknown_choice", {"unknown": [value]},
            )
            return None
        return value

    def codes(self, name: str, allowed: set[str]) -> list[str]:
        value = self.text(name)
        if value is None:
            return []
        chosen = value.split()
        unknown = [c for c in chosen if c not in allowed]
        if unknown:
            self._issue(name, value, f"unknown choice(s) {', '.join(unknown)}", "unknown_choice",
                        {"unknown": unknown})
            return [c for c in chosen if c in allowed]
        if "none" in chosen and len(chosen) > 1:
            self._issue(
                name, value, "'none' chosen together with other answers", "none_with_others"
            )
        return chosen

    def yes_no(self, name: str) -> bool | None:
        value = self.text(name)
        if value is None:
            return None
        if value in ("yes", "no"):
            return value == "yes"
        self._issue(name, value, "expected yes or no", "not_yes_no")
        return None

    def integer(self, name: str, low: int, high: int) -> int | None:
        value = self.text(name)
        if value is None:
            return None
        try:
            number = int(value)
        except ValueError:
            self._issue(name, value, "not a whole number", "not_a_number")
            return None
        if not low <= number <= high:
            self._issue(name, value, f"outside the possible range {low}-{high}", "out_of_range",
                        {"low": low, "high": high})
            return None
        return number

    def date(self, name: str) -> dt.date | None:
        value = self.text(name)
        if value is None:
            return None
        try:
            return dt.date.fromisoformat(value[:10])
        except ValueError:
            self._issue(name, value, "not a date (YYYY-MM-DD)", "not_a_date")
            return None

    def timestamp(self, name: str) -> dt.datetime | None:
        value = self.text(name)
        if value is None:
            return None
        try:
            stamp = dt.datetime.fromisoformat(value)
        except ValueError:
            self._issue(name, value, "not a date and time", "not_a_date")
            return None
        # ODK sends local time with an offset; a stamp without one is taken as UTC
        return stamp.replace(tzinfo=dt.UTC) if stamp.tzinfo is None else stamp.astimezone(dt.UTC)

    def geopoint(self, name: str) -> tuple[float, float, float | None, float | None] | None:
        value = self.text(name)
        if value is None:
            return None
        try:
            parts = [float(p) for p in value.split()]
        except ValueError:
            parts = []
        if len(parts) < 2 or not (-90 <= parts[0] <= 90 and -180 <= parts[1] <= 180):
            self._issue(
                name, value, "not a GPS point (latitude longitude [altitude accuracy])", "not_gps"
            )
            return None
        parts += [None] * (4 - len(parts))
        return parts[0], parts[1], parts[2], parts[3]


def _meta(f: _Fields) -> Meta:
    return Meta(
        start=f.timestamp("start"),
        end=f.timestamp("end"),
        device_id=f.text("deviceid", 200),
        username=f.text("username", 200),
    )


def _household(root: etree._Element) -> HouseholdVisitRecord:
    issues: list[Issue] = []
    f = _Fields(root, "", {"child", "meta"}, issues)
    meta = _meta(f)
    consent = f.yes_no("consent")
    household_code = f.text("household_code", 100)
    if household_code is None:
        issues.append(Issue("household_code", None, "missing: the household cannot be identified",
                            "missing_field"))
    record = HouseholdVisitRecord(
        meta=meta,
        village=f.text("village", 64),
        supplier=f.text("supplier", 64),
        household_code=household_code,
        household_head=f.text("household_head", 200),
        gps=f.geopoint("gps"),
        consent=consent,
        children=[],
        issues=issues,
    )
    if record.village is None:
        issues.append(Issue("village", None, "missing", "missing_field"))
    reference = meta.end or meta.start or None
    repeats = [c for c in root if local(c.tag) == "child"]
    if consent is False and repeats:
        issues.append(Issue("child", None, "children recorded although consent was refused",
                            "children_without_consent"))
    for position, elem in enumerate(repeats, start=1):
        record.children.append(_child(elem, position, reference, issues))
    return record


def _child(
    elem: etree._Element, position: int, reference: dt.datetime | None, issues: list[Issue]
) -> ChildRecord:
    f = _Fields(elem, f"child[{position}]/", set(), issues)
    dob = f.date("dob")
    age = f.integer("age", MIN_CHILD_AGE, MAX_CHILD_AGE)
    if dob is not None and reference is not None:
        years = _completed_years(dob, reference.date())
        if age is not None and abs(years - age) > 1:
            f._issue("age", str(age), f"does not match the date of birth {dob} ({years} years)",
                     "age_mismatch", {"dob": dob.isoformat(), "years": years})
        elif age is None and MIN_CHILD_AGE <= years <= MAX_CHILD_AGE and "age" not in f.values:
            age = years
    if age is None and "age" not in f.values:
        f._issue("age", None, "missing: the child cannot be classified", "missing_field")
    work_activities = f.codes("work_activities", WORK_ACTIVITIES)
    work_hours = f.integer("work_hours_7d", 0, MAX_WEEK_HOURS)
    chore_hours = f.integer("chore_hours_7d", 0, MAX_WEEK_HOURS)
    if (
        work_hours is not None
        and chore_hours is not None
        and work_hours + chore_hours > MAX_WEEK_HOURS
    ):
        f._issue(
            "work_hours_7d",
            f"{work_hours}+{chore_hours}",
            f"work and chores add up to more than the {MAX_WEEK_HOURS} hours of a week",
            "too_many_hours",
            {"limit": MAX_WEEK_HOURS},
        )
    name = f.text("child_name", 200)
    if name is None:
        f._issue("child_name", None, "missing: the child cannot be recognised on later visits",
                 "missing_field")
    return ChildRecord(
        position=position,
        name=name,
        sex=f.code("sex", SEX),
        dob=dob,
        age=age,
        relationship=f.code("relationship", RELATIONSHIPS),
        attends_school=f.yes_no("attends_school"),
        work_activities=work_activities,
        work_hours_7d=work_hours,
        chore_hours_7d=chore_hours,
        hazards=f.codes("hazards", HAZARDS),
        night_work=f.yes_no("night_work"),
        injured_12m=f.yes_no("injured_12m"),
        worst_form_signs=f.codes("worst_form_signs", WORST_FORM_SIGNS),
        nationality=f.text("nationality", 100),
        migrant_status=f.code("migrant_status", MIGRANT_STATUS),
        lives_with_parent=f.yes_no("lives_with_parent"),
    )


def _completed_years(born: dt.date, on: dt.date) -> int:
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def _followup(root: etree._Element) -> FollowupRecord:
    issues: list[Issue] = []
    f = _Fields(root, "", {"meta"}, issues)
    record = FollowupRecord(
        meta=_meta(f),
        case_number=f.text("case", 40),
        child_present=f.yes_no("child_present"),
        attends_school=f.yes_no("attends_school"),
        work_hours_7d=f.integer("work_hours_7d", 0, MAX_WEEK_HOURS),
        chore_hours_7d=f.integer("chore_hours_7d", 0, MAX_WEEK_HOURS),
        hazards=f.codes("hazards", HAZARDS),
        night_work=f.yes_no("night_work"),
        worst_form_signs=f.codes("worst_form_signs", WORST_FORM_SIGNS),
        services_received=(f.text("services_received") or "").split(),
        notes=f.text("notes", 5000),
        issues=issues,
        entity=entity_block(root, FOLLOWUP_ENTITY_PROPERTIES),
    )
    if record.case_number is None:
        issues.append(
            Issue("case", None, "missing: the follow-up belongs to no case", "missing_field")
        )
    return record


def entity_block(root: etree._Element, properties: dict[str, str]) -> EntityBlock | None:
    """The ``<meta><entity>`` block of a submission, or None when it has none.

    ``properties`` maps each entity property to the field holding its value (the form's
    ``entities:saveto`` binds); a property whose field is absent was not received, an empty one
    was received empty (as ODK Central reads them).

    Ids and branch ids must be version-4 UUIDs, as ODK Central requires (it refuses others with
    "expected (branchId) to be (valid version 4 UUID)").

    >>> from forms.xmlsafe import parse_xml
    >>> xml = b'''<data id="f"><seen>yes</seen><meta><entity dataset="cases" update="1"
    ... id="uuid:6F0E2A1B-3C4D-4E5F-8A9B-0C1D2E3F4A5B" baseVersion="2" trunkVersion=""
    ... branchId=""/></meta></data>'''
    >>> b = entity_block(parse_xml(xml), {"child_present": "seen"})
    >>> b.entity_id, b.update, b.base_version, b.properties, b.problem
    ('6f0e2a1b-3c4d-4e5f-8a9b-0c1d2e3f4a5b', True, 2, {'child_present': 'yes'}, None)
    >>> entity_block(parse_xml(xml.replace(b'branchId=""', b'branchId="b1"')), {}).problem
    "branchId 'b1' is not a version 4 UUID"
    """
    meta = next((c for c in root if local(c.tag) == "meta"), None)
    block = None if meta is None else next((c for c in meta if local(c.tag) == "entity"), None)
    if block is None:
        return None
    attrs = {local(k): (v or "").strip() for k, v in block.attrib.items()}
    problems: list[str] = []

    def version(name: str) -> int | None:
        value = attrs.get(name, "")
        if value == "":
            return None
        if not value.isdigit() or int(value) < 1:
            problems.append(f"{name} '{value[:20]}' is not a version number (1 or more)")
            return None
        return int(value)

    entity_id = attrs.get("id", "").removeprefix("uuid:").lower()  # Central drops "uuid:" too
    if not entity_id:
        problems.append("id is empty: no entity was chosen")
    elif not UUID4.fullmatch(entity_id):
        problems.append(f"id '{entity_id[:40]}' is not a version 4 UUID")
    branch_id = attrs.get("branchId", "").lower() or None
    if branch_id is not None and not UUID4.fullmatch(branch_id):
        problems.append(f"branchId '{branch_id[:40]}' is not a version 4 UUID")
    create = attrs.get("create", "") in ("1", "true")
    update = attrs.get("update", "") in ("1", "true")
    base, trunk = version("baseVersion"), version("trunkVersion")
    if update and base is None and not problems:
        problems.append("baseVersion is missing: an update must say which version it changes")
    if not create and not update:
        problems.append("neither create nor update is set")
    fields: dict[str, str] = {}
    for c in root.iter():
        name = local(c.tag)
        if name and name not in fields and not len(c):
            fields[name] = (c.text or "").strip()
    label = next((c for c in block if local(c.tag) == "label"), None)
    return EntityBlock(
        dataset=attrs.get("dataset", ""),
        entity_id=entity_id,
        create=create,
        update=update,
        base_version=base,
        trunk_version=trunk,
        branch_id=branch_id,
        label=None if label is None else (label.text or "").strip()[:500],
        properties={p: fields[f][:2000] for p, f in properties.items() if f in fields},
        problem="; ".join(problems) or None,
    )


def _report(root: etree._Element) -> ReportRecord:
    issues: list[Issue] = []
    f = _Fields(root, "", {"meta"}, issues)
    return ReportRecord(
        meta=_meta(f),
        reporter_type=f.code("reporter_type", REPORTER_TYPES),
        village=f.text("village", 64),
        concern=f.codes("concern", CONCERNS),
        child_age_estimate=f.integer("child_age_estimate", 0, MAX_CHILD_AGE),
        description=f.text("description", 5000),
        contact=f.text("contact", 500),
        issues=issues,
    )
