"""The ODK web form engine harness (tests/odk_engine): fill real forms the way ODK Web Forms does.

Pure tests: no Flask app, no database. Skipped only when the engine's node_modules are missing
(`npm ci --prefix tests/odk_engine`).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from lxml import etree

from tests.odk_engine_client import OdkEngineError, engine_available, fill_form

ROOT = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("CLMS_SHARED_DATA", ROOT.parent / "shared" / "data"))
FORMS = SHARED / "odk_submissions"

pytestmark = pytest.mark.skipif(
    not engine_available(),
    reason="ODK engine not installed: run `npm ci --prefix tests/odk_engine` (needs node)",
)


def _parse(payload: bytes) -> etree._Element:
    return etree.fromstring(payload)


def _local(el: etree._Element) -> str:
    return etree.QName(el).localname


def _child(el: etree._Element, name: str) -> etree._Element:
    found = [c for c in el if isinstance(c.tag, str) and _local(c) == name]
    assert len(found) == 1, f"expected one <{name}> under <{_local(el)}>, got {len(found)}"
    return found[0]


def _text(el: etree._Element, *path: str) -> str:
    for name in path:
        el = _child(el, name)
    return el.text or ""


def _instance_id(root: etree._Element) -> str:
    return _text(root, "meta", "instanceID")


def _shared_form(name: str) -> bytes:
    return (FORMS / name / "form.xml").read_bytes()


def _with_title(form: bytes, title: str) -> bytes:
    """ODK Web Forms refuses forms without <h:title>; some shared fixtures have none."""
    assert b"<h:title>" not in form
    return form.replace(b"<h:head>", b"<h:head>\n    <h:title>" + title.encode() + b"</h:title>", 1)


def _with_jr_preload(form: bytes) -> bytes:
    """Some shared fixtures spell the uid preload `preload="uid"`; ODK XForms says `jr:preload`."""
    assert b' preload="uid"' in form
    return form.replace(b' preload="uid"', b' jr:preload="uid"')


def test_simple_form_payload():
    payload = fill_form(_shared_form("simple"), {"name": "Aminata Ouédraogo", "age": 14})
    root = _parse(payload)
    assert _local(root) == "data"
    assert root.get("id") == "simple"
    assert _text(root, "name") == "Aminata Ouédraogo"
    assert _text(root, "age") == "14"
    assert _instance_id(root).startswith("uuid:")
    assert len(_instance_id(root)) > len("uuid:")


def test_each_fill_gets_a_new_instance_id():
    first = _instance_id(_parse(fill_form(_shared_form("simple"), {"name": "A"})))
    second = _instance_id(_parse(fill_form(_shared_form("simple"), {"name": "A"})))
    assert first.startswith("uuid:") and second.startswith("uuid:")
    assert first != second


def test_repeat_instances():
    form = _with_jr_preload(_with_title(_shared_form("withrepeat"), "With repeat"))
    answers = {
        "name": "Bob",
        "age": 40,
        "child": [
            {"name": "Awa", "age": 7},
            {"name": "Issa", "age": 11},
            {"name": "Mariam", "age": "15"},
        ],
    }
    root = _parse(fill_form(form, answers))
    assert root.get("id") == "withrepeat"
    assert _text(root, "name") == "Bob"
    assert _text(root, "age") == "40"
    children = [c for c in _child(root, "children") if _local(c) == "child"]
    assert len(children) == 3
    assert [_text(c, "name") for c in children] == ["Awa", "Issa", "Mariam"]
    assert [_text(c, "age") for c in children] == ["7", "11", "15"]
    meta = _child(root, "meta")
    assert etree.QName(meta).namespace == "http://openrosa.org/xforms"
    assert _instance_id(root).startswith("uuid:")


def test_nested_repeats():
    form = _with_jr_preload(_with_title(_shared_form("doubleRepeat"), "Double repeat"))
    answers = {
        "name": "Vick",
        "child": [
            {"name": "Alice", "toy": []},
            {"name": "Bob", "toy": [{"name": "Twilight Sparkle"}, {"name": "Spike"}]},
        ],
    }
    root = _parse(fill_form(form, answers))
    children = [c for c in _child(root, "children") if _local(c) == "child"]
    assert [_text(c, "name") for c in children] == ["Alice", "Bob"]
    assert [c for c in _child(children[0], "toys")] == []
    toys = [_text(t, "name") for t in _child(children[1], "toys")]
    assert toys == ["Twilight Sparkle", "Spike"]


def test_fixture_without_title_is_refused_like_odk_web_forms():
    with pytest.raises(OdkEngineError, match="h:title"):
        fill_form(_shared_form("withrepeat"), {"name": "Bob"})


def test_form_without_generated_instance_id_fails_loudly():
    # preload="uid" without the jr: prefix is not an ODK preload: the engine leaves it blank.
    form = _with_title(_shared_form("withrepeat"), "With repeat")
    with pytest.raises(OdkEngineError, match="instanceID"):
        fill_form(form, {"name": "Bob"})


def _select_multiple_form() -> bytes:
    """The shared selectMultiple fixture has no choices; give it the ones its submissions use."""
    form = _with_title(_shared_form("selectMultiple"), "Select multiple")

    def items(*codes: str) -> bytes:
        return b"".join(
            b"<item><label>" + c.encode() + b"</label><value>" + c.encode() + b"</value></item>"
            for c in codes
        )

    for label, codes in ((b"one", ("a", "b", "c")), (b"two", ("x", "y", "z"))):
        control = b"<label>" + label + b"</label>"
        assert control + b"</select>" in form
        form = form.replace(control + b"</select>", control + items(*codes) + b"</select>")
    return form


def test_select_multiple():
    root = _parse(fill_form(_select_multiple_form(), {"q1": ["b", "a"], "q2": ["x", "y", "z"]}))
    assert root.get("id") == "selectMultiple"
    # The engine writes choices in the order the form lists them.
    assert _text(root, "q1") == "a b"
    assert _text(root, "g1", "q2") == "x y z"
    assert _instance_id(root).startswith("uuid:")


def test_unavailable_choice_fails_loudly():
    with pytest.raises(OdkEngineError) as excinfo:
        fill_form(_select_multiple_form(), {"q1": ["a", "nope"]})
    message = str(excinfo.value)
    assert "q1" in message and "nope" in message and "not available" in message


def test_unknown_field_fails_loudly():
    with pytest.raises(OdkEngineError, match="no field or repeat named 'nickname'"):
        fill_form(_shared_form("simple"), {"name": "A", "nickname": "B"})


XLSFORM = """
| survey   |                                   |         |         |                    |          |
|          | type                              | name    | label   | constraint         | required |
|          | text                              | child   | Child   |                    | yes      |
|          | integer                           | age     | Age     | . >= 5 and . <= 17 |          |
|          | select_one_from_file villages.csv | village | Village |                    |          |
|          | select_multiple work              | work    | Work    |                    |          |
|          | geopoint                          | loc     | Where   |                    |          |
| choices  |                                   |         |         |                    |          |
|          | list_name                         | name    | label   |                    |          |
|          | work                              | farm    | Farm    |                    |          |
|          | work                              | mine    | Mine    |                    |          |
| settings |                                   |         |         |                    |          |
|          | form_id                           | version |         |                    |          |
|          | clms_harness                      | 2024061 |         |                    |          |
"""

VILLAGES_CSV = b"name,label\nkaya,Kaya\nbobo,Bobo-Dioulasso\nfada,Fada N'Gourma\n"


@pytest.fixture(scope="module")
def xlsform_xml() -> bytes:
    from pyxform.xls2xform import convert

    return convert(xlsform=XLSFORM).xform.encode("utf-8")


def test_select_one_from_file(xlsform_xml):
    assert b"jr://file-csv/villages.csv" in xlsform_xml
    answers = {
        "child": "Awa",
        "age": 12,
        "village": "bobo",
        "work": ["mine", "farm"],
        "loc": "12.25 -1.5 300 4.5",
    }
    root = _parse(fill_form(xlsform_xml, answers, media={"villages.csv": VILLAGES_CSV}))
    assert root.get("id") == "clms_harness"
    assert root.get("version") == "2024061"
    assert _text(root, "village") == "bobo"
    assert _text(root, "child") == "Awa"
    assert _text(root, "age") == "12"
    assert _text(root, "work") == "farm mine"
    lat, lon, alt, acc = (float(v) for v in _text(root, "loc").split())
    assert (lat, lon, alt, acc) == (12.25, -1.5, 300.0, 4.5)
    assert _instance_id(root).startswith("uuid:")


def test_village_not_in_csv_fails_loudly(xlsform_xml):
    with pytest.raises(OdkEngineError) as excinfo:
        fill_form(
            xlsform_xml, {"child": "Awa", "village": "paris"}, media={"villages.csv": VILLAGES_CSV}
        )
    assert "village" in str(excinfo.value) and "paris" in str(excinfo.value)


def test_missing_form_attachment_fails_loudly(xlsform_xml):
    with pytest.raises(OdkEngineError, match="villages.csv"):
        fill_form(xlsform_xml, {"child": "Awa"})


def test_constraint_violation_names_the_field(xlsform_xml):
    with pytest.raises(OdkEngineError) as excinfo:
        fill_form(xlsform_xml, {"child": "Awa", "age": 25}, media={"villages.csv": VILLAGES_CSV})
    message = str(excinfo.value)
    assert "constraint" in message
    assert "'age'" in message and "/data/age" in message and "25" in message


def test_missing_required_answer_fails_loudly(xlsform_xml):
    with pytest.raises(OdkEngineError, match="required field 'child'"):
        fill_form(xlsform_xml, {"age": 9}, media={"villages.csv": VILLAGES_CSV})


def test_value_the_type_cannot_hold_fails_loudly(xlsform_xml):
    with pytest.raises(OdkEngineError) as excinfo:
        fill_form(
            xlsform_xml,
            {"child": "Awa", "age": "twelve", "loc": "120 -1.5"},
            media={"villages.csv": VILLAGES_CSV},
        )
    message = str(excinfo.value)
    assert "'age'" in message and "not an integer" in message
    assert "'loc'" in message and "geopoint" in message
