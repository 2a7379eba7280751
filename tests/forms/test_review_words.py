"""The pure parts of the review: reasons in plain words, and a form's questions and answers."""

from __future__ import annotations

from pathlib import Path

import pytest

from clms.i18n import catalogue, translator
from forms import questions, reasons
from forms.xmlsafe import parse_xml
from tests.submissions import child, household_xml

BUILD = Path(__file__).resolve().parents[2] / "forms" / "build"


def test_every_code_has_words_a_name_and_french():
    french = catalogue("fr")
    assert set(reasons.WORDS) == set(reasons.CODE_NAMES)
    for code, words in reasons.WORDS.items():
        assert french.get(words) and french.get(reasons.CODE_NAMES[code]), code
    assert set(reasons.WORDS) >= reasons.ACCEPTABLE


def test_a_reason_names_the_question_and_the_child_in_the_readers_language():
    reason = {"path": "child[2]/hazards", "value": "sharp_tools lava",
              "problem": "unknown choice(s) lava", "code": "unknown_choice",
              "data": {"unknown": ["lava"]}}  # fmt: skip
    words = reasons.describe(reason, reasons.Where("Hazards", 2))
    # only the answer that is not a choice is quoted: the codes of the others are not words
    assert str(words).startswith("Child 2, Hazards: “lava” is not one of the form's choices")
    french = words.render(translator("fr"))
    assert french.startswith("Enfant 2, Hazards : « lava » n'est pas un des choix")
    assert "sharp_tools" not in french and "unknown" not in french
    # a row written before the reasons kept their data quotes the answer as received
    old = {"path": "child[2]/hazards", "value": "lava", "problem": "unknown choice(s) lava"}
    assert str(reasons.describe(old, reasons.Where("Hazards", 2))).startswith(
        "Child 2, Hazards: “lava” is not one of"
    )


def test_a_reason_missing_what_its_words_need_is_shown_as_written():
    reason = {"path": "gps", "value": "1 1", "problem": "12.0 km from village V1, the village "
              "chosen in the form (more than 5 km)"}  # fmt: skip
    assert reasons.code_of(reason) == "far_gps"  # an old row: no code, no data
    assert str(reasons.describe(reason, reasons.Where("GPS"))) == f"GPS: {reason['problem']}"


def test_only_doubts_may_be_accepted():
    far = {"path": "gps", "value": "", "problem": "", "code": "far_gps"}
    choice = {"path": "child[1]/sex", "value": "x", "problem": "", "code": "unknown_choice"}
    assert reasons.acceptable([far]) == (True, [])
    assert reasons.acceptable([far, choice]) == (False, [choice])
    assert reasons.acceptable([{"path": "x", "value": None, "problem": "new"}])[0] is False


@pytest.fixture(scope="module")
def layout():
    return questions.read_form((BUILD / "clms_household_visit.xml").read_bytes())


def test_the_answers_follow_the_form_with_labels_in_each_language(layout):
    xml = household_xml("1", children=[child(), child(child_name="Koffi", sex="male")])
    english = questions.answers(layout, xml, "en")
    french = questions.answers(layout, xml, "fr")
    groups = [r.path for r in english if r.kind == "group"]
    assert groups == ["child[1]", "child[2]"]
    sex = {r.path: r for r in english}["child[2]/sex"]
    assert (sex.value, sex.shown) == ("male", "Male")
    assert {r.path: r for r in french}["child[2]/sex"].shown == "Masculin"
    assert not any(r.path.startswith(("meta", "start", "deviceid")) for r in english)


def test_a_correction_changes_one_answer_and_names_the_version_it_replaces():
    xml = household_xml("1", instance_id="uuid:one",
                        children=[child(age=10), child(child_name="B", age=12)])  # fmt: skip
    new = questions.corrected(xml, "child[2]/age", "13", "uuid:two", "uuid:one")
    root = parse_xml(new)
    assert questions.current_value(new, "child[2]/age") == "13"
    assert questions.current_value(new, "child[1]/age") == "10"
    assert questions.current_value(xml, "child[2]/age") == "12"  # the original is untouched
    assert root.findtext("meta/instanceID") == "uuid:two"
    assert root.findtext("meta/deprecatedID") == "uuid:one"
    # an answer the submission lacks is added where the processing reads it
    added = questions.corrected(xml, "child[1]/nickname", "Ti", "uuid:3", "uuid:one")
    assert questions.current_value(added, "child[1]/nickname") == "Ti"
    with pytest.raises(questions.PathNotFound):
        questions.corrected(xml, "child[9]/age", "1", "uuid:4", "uuid:one")
