"""Our three forms: they build, pass ODK Validate, and keep the data dictionary's contract.

Pure tests: no database, no application. ODK Validate really runs (it needs java).
"""

from __future__ import annotations

import re

import pytest
from lxml import etree
from pyxform.validators import odk_validate

from forms.build import build_form, build_forms, sources
from forms.convert import media_files, read_xform
from forms.publish import BUILD_DIR, OUR_FORMS, XLSFORM_DIR
from tests.conftest import ROOT

DICTIONARY = ROOT.parent / "shared" / "design" / "data-dictionary.md"
NS = {
    "h": "http://www.w3.org/1999/xhtml",
    "x": "http://www.w3.org/2002/xforms",
    "jr": "http://openrosa.org/javarosa",
}

# The contract (shared/design/data-dictionary.md) as paths in the primary instance.
# meta/deprecatedID is not in the form: ODK Collect and Enketo add it to an edited submission.
HOUSEHOLD_CHILD = [
    "child_name", "sex", "dob", "age", "relationship", "attends_school", "work_activities",
    "work_hours_7d", "chore_hours_7d", "hazards", "night_work", "injured_12m", "worst_form_signs",
    "nationality", "migrant_status", "lives_with_parent",
]  # fmt: skip
EXPECTED_PATHS = {
    "clms_household_visit": [
        "/data/start", "/data/end", "/data/deviceid", "/data/username", "/data/village",
        "/data/supplier", "/data/household_code", "/data/household_head", "/data/gps",
        "/data/consent", "/data/child", "/data/meta/instanceID",
        *(f"/data/child/{name}" for name in HOUSEHOLD_CHILD),
    ],
    "clms_followup": [
        "/data/case", "/data/child_present", "/data/attends_school", "/data/work_hours_7d",
        "/data/chore_hours_7d", "/data/hazards", "/data/night_work", "/data/worst_form_signs",
        "/data/services_received", "/data/notes", "/data/meta/instanceID",
    ],
    "clms_report": [
        "/data/reporter_type", "/data/village", "/data/concern", "/data/child_age_estimate",
        "/data/description", "/data/contact", "/data/meta/instanceID",
    ],
}  # fmt: skip
#: each form's version (raised on every change of its source)
VERSIONS = {
    "clms_household_visit": "2026112201",
    "clms_followup": "2026120701",  # the case entity list (issue 18)
    "clms_report": "2026112201",
}
HAZARD_CODES = [
    "land_clearing", "bush_burning", "agrochemicals", "heavy_loads", "sharp_tools",
    "climbing_heights", "motorised_tools", "working_alone_remote", "dust_fumes_gas",
    "extreme_temperature", "loud_noise_vibration", "chemicals_explosives", "underwater_or_at_sea",
    "underground", "heavy_machinery", "abuse_at_work", "none",
]  # fmt: skip
CHOICES = {
    "clms_household_visit": {
        "sex": ["female", "male"],
        "relationship": [
            "son_daughter", "grandchild", "niece_nephew", "other_relative", "not_related",
        ],
        "work_activities": ["own_farm", "family_business", "sell_goods", "paid_work", "none"],
        "hazards": HAZARD_CODES,
        "worst_form_signs": [
            "cannot_leave", "debt", "recruited_by_third_party", "separated_from_family",
            "sexual_exploitation", "illicit_activities", "none",
        ],
        "migrant_status": ["national", "migrant_documented", "migrant_undocumented", "unknown"],
        "yes_no": ["yes", "no"],
    },
    "clms_followup": {"hazards": HAZARD_CODES, "yes_no": ["yes", "no"]},
    "clms_report": {
        "reporter_type": ["child", "worker", "teacher", "community_member", "monitor", "other"],
        "concern": [
            "child_working", "hazardous_work", "not_in_school", "violence_abuse", "trafficking",
            "sexual_exploitation", "other",
        ],
    },
}  # fmt: skip
MEDIA = {
    "clms_household_visit": ["suppliers.csv", "villages.csv"],
    "clms_followup": ["cases.csv"],
    "clms_report": ["villages.csv"],
}


def built(form_id: str) -> etree._Element:
    return etree.fromstring((BUILD_DIR / f"{form_id}.xml").read_bytes())


def model(root: etree._Element) -> etree._Element:
    return root.find("h:head/x:model", NS)


def primary_instance(root: etree._Element) -> etree._Element:
    return model(root).find("x:instance", NS)[0]


def instance_paths(data: etree._Element) -> set[str]:
    """Every element path under the instance root (the repeat template included once)."""
    paths = set()

    def walk(elem, prefix):
        path = f"{prefix}/{etree.QName(elem).localname}"
        paths.add(path)
        for child in elem:
            if isinstance(child.tag, str):
                walk(child, path)

    walk(data, "")
    return paths


def bind(root: etree._Element, path: str) -> etree._Element:
    found = model(root).find(f"x:bind[@nodeset='{path}']", NS)
    assert found is not None, f"no bind for {path}"
    return found


# --- building ------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("form_id", OUR_FORMS)
def test_form_builds_and_passes_odk_validate(form_id, monkeypatch):
    calls = []
    real_check = odk_validate.check_xform

    def spy(path):
        calls.append(path)
        return real_check(path)

    # pyxform calls odk_validate.check_xform through the module: this proves java really ran
    monkeypatch.setattr(odk_validate, "check_xform", spy)
    built_id, xml, warnings = build_form(XLSFORM_DIR / f"{form_id}.md", validate=True)
    assert built_id == form_id
    assert len(calls) == 1
    assert warnings == []
    info = read_xform(xml)
    assert (info.form_id, info.version) == (form_id, VERSIONS[form_id])


def test_committed_build_is_up_to_date(tmp_path):
    """forms/build holds exactly what the sources build to: nobody forgot `clms forms build`."""
    warnings: dict[str, list[str]] = {}
    paths = build_forms(tmp_path, validate=False, warnings=warnings)
    assert sorted(p.stem for p in paths) == sorted(OUR_FORMS)
    assert sorted(p.stem for p in sources()) == sorted(OUR_FORMS)
    for path in paths:
        assert path.read_bytes() == (BUILD_DIR / path.name).read_bytes(), f"rebuild {path.name}"
    assert warnings == {form_id: [] for form_id in OUR_FORMS}


@pytest.mark.parametrize("form_id", OUR_FORMS)
def test_instance_root_is_data_with_form_id_and_version(form_id):
    data = primary_instance(built(form_id))
    assert etree.QName(data).localname == "data"
    assert data.get("id") == form_id
    assert data.get("version") == VERSIONS[form_id]
    assert built(form_id).findtext("h:head/h:title", namespaces=NS)


# --- the data dictionary --------------------------------------------------------------------------


@pytest.mark.parametrize("form_id", OUR_FORMS)
def test_every_dictionary_field_is_at_its_path(form_id):
    root = built(form_id)
    paths = instance_paths(primary_instance(root))
    missing = [p for p in EXPECTED_PATHS[form_id] if p not in paths]
    assert missing == []
    for path in EXPECTED_PATHS[form_id]:
        if path != "/data/child":
            bind(root, path)


def test_child_repeat_sits_directly_under_the_root():
    root = built("clms_household_visit")
    data = primary_instance(root)
    children = data.findall("x:child", NS)
    assert children and children[0].get(f"{{{NS['jr']}}}template") == ""
    assert root.find(".//h:body//x:repeat[@nodeset='/data/child']", NS) is not None
    # the repeat is the only element named child: names are unique in the form
    assert len(root.findall(".//x:repeat", NS)) == 1


def test_expected_paths_cover_the_data_dictionary():
    """Every name of the dictionary's tables is in EXPECTED_PATHS (deprecatedID is Collect's)."""
    if not DICTIONARY.exists():
        pytest.skip("shared/design/data-dictionary.md is not next to the checkout")
    form = None
    seen: dict[str, set[str]] = {f: set() for f in OUR_FORMS}
    for line in DICTIONARY.read_text(encoding="utf-8").splitlines():
        heading = re.match(r"## Form `([a-z_]+)`", line)
        if heading:
            form = heading.group(1)
        elif form and line.startswith("| `"):
            first_cell = line.split("|")[1]
            seen[form].update(re.findall(r"`([A-Za-z_/0-9]+)`", first_cell))
    for form_id, names in seen.items():
        assert names, form_id
        expected = {p.removeprefix("/data/") for p in EXPECTED_PATHS[form_id]}
        assert names - {"meta/deprecatedID"} <= expected, form_id


@pytest.mark.parametrize("form_id", OUR_FORMS)
def test_choice_codes(form_id):
    root = built(form_id)
    for list_name, codes in CHOICES[form_id].items():
        instance = model(root).find(f"x:instance[@id='{list_name}']", NS)
        assert instance is not None, list_name
        assert [v.text for v in instance.iterfind(".//x:item/x:name", NS)] == codes


def test_followup_service_codes_are_snake_case_and_cover_the_catalogue():
    root = built("clms_followup")
    codes = [v.text for v in model(root).iterfind("x:instance[@id='services']//x:name", NS)]
    # domain.md section 5 lists 15 remediation types; plus "none"
    assert len(codes) == 16 and codes[-1] == "none"
    assert all(re.fullmatch(r"[a-z]+(_[a-z]+)*", c) for c in codes)
    assert {"school_enrolment", "birth_certificate", "legal_aid", "family_reunification"} <= set(
        codes
    )


# --- languages and media ------------------------------------------------------------------------


@pytest.mark.parametrize("form_id", OUR_FORMS)
def test_english_and_french_itext(form_id):
    root = built(form_id)
    translations = model(root).findall("x:itext/x:translation", NS)
    langs = {t.get("lang"): t for t in translations}
    assert set(langs) == {"English (en)", "French (fr)"}
    assert langs["English (en)"].get("default") == "true()"
    ids = {lang: {t.get("id") for t in tr.findall("x:text", NS)} for lang, tr in langs.items()}
    assert ids["English (en)"] == ids["French (fr)"]
    # every translated text has a value in both languages (labels, hints, constraint messages)
    for tr in translations:
        for text in tr.findall("x:text", NS):
            assert (text.findtext("x:value", namespaces=NS) or "").strip(), text.get("id")


def test_french_labels_hints_and_constraint_messages():
    root = built("clms_household_visit")
    fr = model(root).find("x:itext/x:translation[@lang='French (fr)']", NS)

    def value(text_id):
        return fr.findtext(f"x:text[@id='{text_id}']/x:value", namespaces=NS)

    assert value("/data/child/age:label") == "Âge en années révolues"
    assert value("/data/child/age:hint").startswith("Rempli")
    assert "168" in value("/data/child/work_hours_7d:jr:constraintMsg")
    assert value("yes_no-1") == "Non"
    assert value("hazards-1") == "Brûlis (feux de brousse)"


@pytest.mark.parametrize("form_id", OUR_FORMS)
def test_csv_media_references(form_id):
    xml = (BUILD_DIR / f"{form_id}.xml").read_bytes()
    assert media_files(xml) == MEDIA[form_id]
    root = etree.fromstring(xml)
    for name in MEDIA[form_id]:
        instance = model(root).find(f"x:instance[@id='{name[:-4]}']", NS)
        assert instance is not None and instance.get("src") == f"jr://file-csv/{name}"


# --- constraints and relevance behave -------------------------------------------------------------


def _selected(_ctx, value, code):
    return code in _string(value).split()


def _count_selected(_ctx, value):
    return float(len(_string(value).split()))


def _string(value):
    """XPath arguments arrive as node lists (``.``, ``../x``) or as strings."""
    if isinstance(value, list):
        return (value[0].text or "") if value else ""
    return str(value)


ODK_FUNCTIONS = {(None, "selected"): _selected, (None, "count-selected"): _count_selected}


def evaluate(expression: str, context: etree._Element) -> bool:
    """A bind expression on ``context``: lxml's XPath 1.0 plus ODK's select functions."""
    return bool(etree.XPath(expression, extensions=ODK_FUNCTIONS)(context))


def child_instance(**values: str) -> etree._Element:
    """A filled-in /data/child with ``values`` (the rest empty), returned as the document root."""
    root = etree.fromstring(b"<data><consent>yes</consent><child/></data>")
    child = root[1]
    for name in HOUSEHOLD_CHILD:
        etree.SubElement(child, name).text = values.get(name, "")
    return root


@pytest.mark.parametrize(
    ("form_id", "path", "lowest", "highest"),
    [
        ("clms_household_visit", "/data/child/age", 5, 17),
        ("clms_household_visit", "/data/child/work_hours_7d", 0, 168),
        ("clms_household_visit", "/data/child/chore_hours_7d", 0, 168),
        ("clms_followup", "/data/work_hours_7d", 0, 168),
        ("clms_followup", "/data/chore_hours_7d", 0, 168),
        ("clms_report", "/data/child_age_estimate", 0, 17),
    ],
)
def test_integer_ranges(form_id, path, lowest, highest):
    b = bind(built(form_id), path)
    assert b.get("type") == "int"
    constraint = b.get("constraint")
    assert constraint == f". >= {lowest} and . <= {highest}"
    assert b.get(f"{{{NS['jr']}}}constraintMsg")
    for value, ok in [(lowest - 1, False), (lowest, True), (highest, True), (highest + 1, False)]:
        node = etree.fromstring(f"<v>{value}</v>".encode())
        assert evaluate(constraint, node) is ok, (path, value)


@pytest.mark.parametrize(
    "path", ["/data/child/work_activities", "/data/child/hazards", "/data/child/worst_form_signs"]
)
def test_none_is_exclusive_in_select_multiples(path):
    constraint = bind(built("clms_household_visit"), path).get("constraint")
    for value, ok in [("none", True), ("debt", True), ("a b", True), ("none debt", False)]:
        assert evaluate(constraint, etree.fromstring(f"<v>{value}</v>".encode())) is ok, value


def test_followup_select_multiples_keep_none_exclusive():
    root = built("clms_followup")
    for path in ("/data/hazards", "/data/worst_form_signs", "/data/services_received"):
        constraint = bind(root, path).get("constraint")
        assert not evaluate(constraint, etree.fromstring(b"<v>none legal_aid</v>"))


@pytest.mark.parametrize(
    ("activities", "relevant"),
    [("", False), ("none", False), ("own_farm", True), ("own_farm paid_work", True)],
)
def test_work_questions_only_when_work_was_done(activities, relevant):
    root = built("clms_household_visit")
    doc = child_instance(work_activities=activities)
    for name in ("work_hours_7d", "hazards", "night_work", "injured_12m"):
        expression = bind(root, f"/data/child/{name}").get("relevant")
        context = doc.find(f"child/{name}")
        assert evaluate(expression, context) is relevant, (name, activities)
    # questions every working or non-working child answers
    for name in ("chore_hours_7d", "worst_form_signs", "attends_school"):
        assert bind(root, f"/data/child/{name}").get("relevant") is None


def test_no_consent_ends_the_household_form():
    root = built("clms_household_visit")
    data = primary_instance(root)
    names = [etree.QName(e).localname for e in data if isinstance(e.tag, str)]
    after_consent = names[names.index("consent") + 1 :]
    asked = [n for n in after_consent if n not in ("consent_refused", "meta")]
    assert {"household_head", "gps", "child"} <= set(asked)
    for decision, relevant in (("yes", True), ("no", False)):
        doc = etree.fromstring(f"<data><consent>{decision}</consent></data>".encode())
        for name in asked:
            assert evaluate(bind(root, f"/data/{name}").get("relevant"), doc) is relevant, name


def test_age_is_computed_from_the_date_of_birth():
    root = built("clms_household_visit")
    age = bind(root, "/data/child/age")
    assert age.get("readonly") == " ../dob  != ''"
    setvalue = root.find(".//h:body//x:setvalue[@ref='/data/child/age']", NS)
    assert setvalue is not None and setvalue.get("event") == "xforms-value-changed"
    assert "format-date" in setvalue.get("value") and "../dob" in setvalue.get("value")
    # the date itself must give an age of 5-17
    dob = bind(root, "/data/child/dob")
    assert dob.get("type") == "date" and ">= 5" in dob.get("constraint")
