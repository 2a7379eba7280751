"""Publishing forms: XLSForms and XForms, versions, errors that say where, and the CLI."""

from __future__ import annotations

import hashlib
import io
import shutil

import openpyxl
import pytest
from sqlalchemy import func, select

from clms.db import session_scope
from clms.errors import Problem
from clms.models import Form, FormVersion
from forms.convert import natural_key
from forms.publish import (
    BUILD_DIR,
    OUR_FORMS,
    XLSFORM_DIR,
    ensure_builtin_forms,
    publish_form,
    validate_setting,
)
from tests.conftest import SHARED
from tests.forms.test_forms_build import VERSIONS

XLSFORMS = sorted((SHARED / "xlsforms").iterdir())
XFORMS = sorted((SHARED / "odk_submissions").glob("*/form.xml"))
HAS_JAVA = shutil.which("java") is not None


def without_public_key(data: bytes) -> bytes:
    """The workbook ``data`` with its settings' ``public_key`` removed (the shared spec form
    carries one whose private key nobody holds here), saved as a spreadsheet program would: each
    formula replaced by the value it had (openpyxl writes no computed values)."""
    book = openpyxl.load_workbook(io.BytesIO(data), data_only=True)
    sheet = book["settings"]
    header = [cell.value for cell in sheet[1]]
    if "public_key" in header:
        sheet.delete_cols(header.index("public_key") + 1)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def test_a_form_encrypted_with_a_key_this_server_lacks_is_refused(app):
    path = SHARED / "xlsforms" / "xlsform_spec_test.xlsx"
    with pytest.raises(Problem) as e:
        publish(app, path.name, path.read_bytes())
    assert "holds no key for form" in e.value.message and "clms forms keygen" in e.value.message
    with session_scope(app) as s:
        assert s.scalar(select(func.count(Form.id))) == 0


def workbook(survey, choices=None, settings=None) -> bytes:
    """An .xlsx built in memory: lists of rows per sheet (first row = header)."""
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "survey"
    for row in survey:
        sheet.append(row)
    for title, rows in (("choices", choices), ("settings", settings)):
        if rows is not None:
            extra = book.create_sheet(title)
            for row in rows:
                extra.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def counts(app) -> tuple[int, int]:
    with session_scope(app) as s:
        return s.scalar(select(func.count(Form.id))), s.scalar(select(func.count(FormVersion.id)))


def publish(app, filename, data, **kwargs):
    """Publish as the application does, with its ODK_VALIDATE (off in tests)."""
    kwargs.setdefault("validate", validate_setting(app.config))
    with app.app_context(), session_scope(app) as s:
        result = publish_form(s, filename, data, **kwargs)
        return result, result.form_version.form.xml_form_id, result.form_version.version


def refused(app, filename, data, **kwargs) -> Problem:
    kwargs.setdefault("validate", validate_setting(app.config))
    with pytest.raises(Problem) as info, app.app_context(), session_scope(app) as s:
        publish_form(s, filename, data, **kwargs)
    return info.value


def report_md(version: str) -> bytes:
    text = (XLSFORM_DIR / "clms_report.md").read_text(encoding="utf-8")
    return text.replace("2026112201", version).encode("utf-8")


# --- pure -----------------------------------------------------------------------------------------


def test_natural_version_order():
    assert natural_key("10") > natural_key("9")
    assert natural_key("2026112202") > natural_key("2026112201")
    assert natural_key("1.10") > natural_key("1.9")
    assert natural_key("v2") > natural_key("v1")
    assert natural_key("1.0") == natural_key("1.0")
    assert natural_key("1") > natural_key("")


def test_validate_setting_without_app_is_auto():
    assert validate_setting() is HAS_JAVA


def test_validate_setting_follows_app_config(app):
    assert validate_setting(app.config) is False  # the test app sets ODK_VALIDATE=0
    app.config["ODK_VALIDATE"] = "1"
    assert validate_setting(app.config) is True
    app.config["ODK_VALIDATE"] = "auto"
    assert validate_setting(app.config) is HAS_JAVA


# --- our forms ------------------------------------------------------------------------------------


def test_builtin_forms_publish_once(app):
    with session_scope(app) as s:
        published = ensure_builtin_forms(s)
        assert sorted(v.form.xml_form_id for v in published) == sorted(OUR_FORMS)
    with session_scope(app) as s:
        assert ensure_builtin_forms(s) == []  # same bytes live already
        for form_id in OUR_FORMS:
            form = s.scalar(select(Form).where(Form.xml_form_id == form_id))
            data = (BUILD_DIR / f"{form_id}.xml").read_bytes()
            assert form.state == "open"
            assert form.live_version.xml == data  # byte for byte
            assert form.live_version.md5 == hashlib.md5(data).hexdigest()
            assert form.live_version.version == VERSIONS[form_id]
        household = s.scalar(select(Form).where(Form.xml_form_id == "clms_household_visit"))
        assert household.title == "CLMS household visit"
        assert household.live_version.media_files == ["suppliers.csv", "villages.csv"]


@pytest.mark.parametrize("form_id", OUR_FORMS)
def test_our_markdown_sources_publish(app, form_id):
    source = (XLSFORM_DIR / f"{form_id}.md").read_bytes()
    result, published_id, version = publish(app, f"{form_id}.md", source)
    assert (published_id, version, result.created) == (form_id, VERSIONS[form_id], True)
    assert result.warnings == []
    with session_scope(app) as s:
        row = s.scalar(select(FormVersion))
        assert row.source == source and row.source_name == f"{form_id}.md"
        assert row.md5 == hashlib.md5(row.xml).hexdigest()


# --- other people's forms -------------------------------------------------------------------------


@pytest.mark.parametrize("path", XLSFORMS, ids=[p.name for p in XLSFORMS])
def test_shared_xlsforms_publish(app, path, make_user):
    admin = make_user("ada", "admin")
    data = path.read_bytes()
    if path.name == "xlsform_spec_test.xlsx":
        data = without_public_key(data)  # see the test above
    result, form_id, version = publish(app, path.name, data, published_by=admin)
    assert result.created and version
    with session_scope(app) as s:
        row = s.scalar(select(FormVersion))
        assert row.source == data and row.source_name == path.name
        assert row.xml.startswith(b"<?xml") and row.published_by_id == admin
        assert row.warnings == result.warnings
        assert row.form.live_version_id == row.id
        assert row.media_files  # all three forms name media (csv instances, images, audio)
    if path.name == "xlsform_spec_test.xlsx":
        # pyxform warns about this form: the warnings come back to the person publishing
        assert any("Choices should have a label" in w for w in result.warnings)
        assert any("language" in w.lower() for w in result.warnings)
    if path.name == "UCL_Biomass_Plot_Form.xlsx":
        assert form_id == "UCL_Biomass_Plot_Form"  # no form_id in settings: the file's name


def test_xlsform_without_version_gets_a_clock_version_and_a_warning(app):
    data = workbook([["type", "name", "label"], ["text", "a", "A"]])
    result, form_id, version = publish(app, "tiny form.xlsx", data)
    assert form_id == "tiny_form"
    assert len(version) == 14 and version.isdigit() and version.startswith("20")
    assert any(version in w and "no version" in w for w in result.warnings)


@pytest.mark.parametrize("path", XFORMS, ids=[p.parent.name for p in XFORMS])
def test_shared_xforms_publish_byte_for_byte(app, path):
    data = path.read_bytes()
    result, form_id, _version = publish(app, path.name, data)
    assert result.created
    with session_scope(app) as s:
        row = s.scalar(select(FormVersion))
        assert row.xml == data and row.md5 == hashlib.md5(data).hexdigest()
        assert row.source is None and row.source_name == "form.xml"
        assert row.form.xml_form_id == form_id
    expected_versions = {"doubleRepeat": "1.0", "withrepeat": "1.0", "simple": ""}
    if path.parent.name in expected_versions:
        assert result.form_version.version == expected_versions[path.parent.name]


# --- versions -------------------------------------------------------------------------------------


def test_same_or_lower_version_is_refused_and_live_stays(app):
    publish(app, "clms_report.md", report_md("2026112201"))
    for version in ("2026112201", "2026112200", "999"):
        p = refused(app, "clms_report.md", report_md(version))
        assert p.key == "form.version_not_increasing" and p.status == 400
        assert f"'{version}'" in p.message and "'2026112201'" in p.message
    with session_scope(app) as s:
        form = s.scalar(select(Form))
        assert form.live_version.version == "2026112201"
    assert counts(app) == (1, 1)


def test_same_xform_twice_is_refused(app):
    data = (SHARED / "odk_submissions" / "simple" / "form.xml").read_bytes()
    publish(app, "form.xml", data)
    p = refused(app, "form.xml", data)
    assert p.key == "form.version_not_increasing"
    assert counts(app) == (1, 1)


def test_higher_version_becomes_live_and_old_is_kept(app):
    first, _, _ = publish(app, "clms_report.md", report_md("2026112201"))
    second, _, version = publish(app, "clms_report.md", report_md("2026112210"))
    assert version == "2026112210" and not second.created and first.created
    with session_scope(app) as s:
        form = s.scalar(select(Form))
        assert form.live_version.version == "2026112210"
        versions = s.scalars(select(FormVersion.version).order_by(FormVersion.id)).all()
        assert versions == ["2026112201", "2026112210"]


def test_numeric_runs_compare_as_numbers(app):
    xml = (SHARED / "odk_submissions" / "simple" / "form.xml").read_bytes()
    nine = xml.replace(b'<data id="simple">', b'<data id="simple" version="9">')
    ten = xml.replace(b'<data id="simple">', b'<data id="simple" version="10">')
    publish(app, "simple.xml", nine)
    _, _, version = publish(app, "simple.xml", ten)  # "10" < "9" as text, 10 > 9 as numbers
    assert version == "10"


# --- errors that say where ------------------------------------------------------------------------

BAD_SPREADSHEETS = {
    "unknown_type": (
        workbook([["type", "name", "label"], ["text", "a", "A"], ["txet", "b", "B"]]),
        ["Sheet 'survey', row 3", "unknown question type 'txet'"],
    ),
    "no_name_column": (
        workbook([["type", "label"], ["text", "A"], ["integer", "B"]]),
        ["Sheet 'survey', row 2", "no name", "no 'name' column"],
    ),
    "choices_list_missing": (
        workbook(
            [["type", "name", "label"], ["text", "a", "A"], ["select_one colors", "b", "B"]],
            choices=[["list_name", "name", "label"], ["yes_no", "yes", "Yes"]],
        ),
        ["Sheet 'survey', row 3", "colors"],
    ),
    "choices_sheet_missing": (
        workbook([["type", "name", "label"], ["text", "a", "A"], ["select_one colors", "b", "B"]]),
        ["Sheet 'survey', row 3", "select_one colors", "choices sheet"],
    ),
    "bad_name": (
        workbook([["type", "name", "label"], ["text", "a", "A"], ["text", "1st", "B"]]),
        ["Sheet 'survey', row 3", "'name' value is invalid"],
    ),
    "bad_choice_label_row": (
        workbook(
            [["type", "name", "label"], ["select_one yn", "a", "A"]],
            choices=[["list_name", "name", "label"], ["yn", "yes", "Yes"], ["yn", "yes", "Y"]],
        ),
        ["Sheet 'choices', row 3"],
    ),
}


@pytest.mark.parametrize("case", BAD_SPREADSHEETS, ids=list(BAD_SPREADSHEETS))
def test_bad_spreadsheet_names_sheet_row_and_problem(app, case):
    data, expected = BAD_SPREADSHEETS[case]
    p = refused(app, f"{case}.xlsx", data)
    assert p.key == "form.invalid" and p.status == 400
    for text in expected:
        assert text in p.message, p.message
    assert counts(app) == (0, 0)


def test_bad_markdown_xlsform_names_sheet_and_row(app):
    md = "| survey | type | name | label |\n|  | text | a | A |\n|  | txet | b | B |\n"
    p = refused(app, "bad.md", md.encode())
    assert "Sheet 'survey', row 3: unknown question type 'txet'" in p.message


def test_garbage_named_xlsx_is_not_a_spreadsheet(app):
    p = refused(app, "form.xlsx", b"\x00\x13garbage, not a workbook" * 10)
    assert p.key == "form.invalid"
    assert "'form.xlsx' is not a spreadsheet" in p.message
    assert counts(app) == (0, 0)


@pytest.mark.parametrize(
    ("filename", "data", "expected"),
    [
        ("notes.txt", b"hello", "neither an XLSForm (.xlsx, .xls or .md) nor an XForm (.xml)"),
        ("empty.xlsx", b"", "is empty"),
        ("archive.xlsx", b"PK\x03\x04" + b"\x00" * 50, "could not be read as an Excel workbook"),
        ("old.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 50, "could not be read"),
        ("page.xml", b"<html><body>hi</body></html>", "XML but not an XForm"),
        ("broken.xml", b"<h:html><unclosed>", "not well-formed XML"),
        ("text.md", b"# just a heading\nno table here\n", "not a Markdown XLSForm"),
    ],
)
def test_files_that_are_no_form_get_a_clear_message(app, filename, data, expected):
    p = refused(app, filename, data)
    assert p.key == "form.invalid"
    assert expected in p.message, p.message
    assert counts(app) == (0, 0)


def test_xform_without_id_is_refused(app):
    xml = (SHARED / "odk_submissions" / "simple" / "form.xml").read_bytes()
    p = refused(app, "x.xml", xml.replace(b'<data id="simple">', b"<data>"))
    assert "no id attribute" in p.message


@pytest.mark.parametrize(
    "xml",
    [
        b'<?xml version="1.0"?><!DOCTYPE h:html [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b'<h:html xmlns:h="http://www.w3.org/1999/xhtml"><h:head><model><instance>'
        b'<data id="evil">&x;</data></instance></model></h:head></h:html>',
        b'<!DOCTYPE html><h:html xmlns:h="http://www.w3.org/1999/xhtml"/>',
        b'<?xml version="1.0"?><!DOCTYPE lol [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]>'
        b"<x>&b;</x>",
    ],
    ids=["external-entity", "doctype", "entity-expansion"],
)
def test_xml_with_doctype_or_entities_is_refused(app, xml):
    # refused by the safe parse before ODK Validate (java's parser) ever sees it
    p = refused(app, "evil.xml", xml, validate=True)
    assert p.key == "form.invalid" and "DTD or entities" in p.message
    assert counts(app) == (0, 0)


@pytest.mark.skipif(not HAS_JAVA, reason="ODK Validate needs java")
def test_odk_validate_errors_are_reported(app):
    # JavaRosa rejects this XForm: a select with no choices
    data = (SHARED / "odk_submissions" / "selectMultiple" / "form.xml").read_bytes()
    p = refused(app, "form.xml", data, validate=True)
    assert p.key == "form.invalid"
    assert "ODK Validate" in p.message and "has no choices" in p.message
    assert "${form}" not in p.message
    assert counts(app) == (0, 0)
    # with validation off (the test app's setting) the same file is accepted as given
    publish(app, "form.xml", data)


@pytest.mark.skipif(not HAS_JAVA, reason="ODK Validate needs java")
def test_odk_validate_runs_on_xlsforms_when_asked(app):
    # pyxform accepts a calculation JavaRosa cannot parse; ODK Validate does not
    data = workbook(
        [["type", "name", "label", "calculation"], ["calculate", "c", "", "1 +* 2"]],
        settings=[["form_id", "version"], ["calc", "1"]],
    )
    p = refused(app, "calc.xlsx", data, validate=True)
    assert p.key == "form.invalid" and "ODK Validate" in p.message
    assert counts(app) == (0, 0)


def test_failed_publish_leaves_the_live_version(app):
    publish(app, "clms_report.md", report_md("2026112201"))
    refused(app, "clms_report.md", b"| survey | type | name |\n| | txet | x |\n")
    with session_scope(app) as s:
        assert s.scalar(select(Form)).live_version.version == "2026112201"
    assert counts(app) == (1, 1)


# --- the command line -----------------------------------------------------------------------------


def test_cli_publish_and_list(app, runner, tmp_path):
    path = tmp_path / "xlsform_spec_test.xlsx"
    path.write_bytes(without_public_key((SHARED / "xlsforms" / path.name).read_bytes()))
    result = runner.invoke(args=["forms", "publish", str(path)])
    assert result.exit_code == 0, result.output
    assert "Published Spec test version" in result.output
    assert "warning: " in result.output
    runner.invoke(args=["forms", "publish", str(XLSFORM_DIR / "clms_report.md")])
    listing = runner.invoke(args=["forms", "list"])
    assert listing.exit_code == 0
    lines = listing.output.splitlines()
    report = next(line for line in lines if line.startswith("clms_report"))
    assert "2026112201" in report and "open" in report and "CLMS: report a concern" in report
    assert report.split()[3] == "1"  # number of versions


def test_cli_publish_errors_exit_non_zero(app, runner, tmp_path):
    bad = tmp_path / "bad.xlsx"
    bad.write_bytes(BAD_SPREADSHEETS["unknown_type"][0])
    result = runner.invoke(args=["forms", "publish", str(bad)])
    assert result.exit_code != 0
    assert "Sheet 'survey', row 3: unknown question type 'txet'" in result.output
    again = runner.invoke(args=["forms", "publish", str(XLSFORM_DIR / "clms_report.md")])
    assert again.exit_code == 0
    same = runner.invoke(args=["forms", "publish", str(XLSFORM_DIR / "clms_report.md")])
    assert same.exit_code != 0 and "does not increase" in same.output


def test_cli_list_without_forms(runner):
    result = runner.invoke(args=["forms", "list"])
    assert result.exit_code == 0 and "No forms yet" in result.output


def test_cli_build_writes_the_forms(runner, tmp_path):
    result = runner.invoke(args=["forms", "build", "--no-validate", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    for form_id in OUR_FORMS:
        assert f"Built {form_id}" in result.output
        assert (tmp_path / f"{form_id}.xml").read_bytes() == (
            BUILD_DIR / f"{form_id}.xml"
        ).read_bytes()


def test_a_lost_race_is_a_clear_problem_and_the_transaction_survives(app, monkeypatch):
    """Two publishes of one version at once: the unique constraint decides, not a crash."""
    import forms.publish as publish_module

    publish(app, "clms_report.md", report_md("2026112201"))
    # as if the other publish committed between our check and our insert
    monkeypatch.setattr(publish_module, "_check_version_increases", lambda *args: None)
    with app.app_context(), session_scope(app) as s:
        with pytest.raises(Problem) as info:
            publish_form(s, "clms_report.md", report_md("2026112201"), validate=False)
        assert info.value.key == "form.version_not_increasing"
        # the caller's transaction is still usable after the savepoint rolled back
        result = publish_form(s, "clms_report.md", report_md("2026112202"), validate=False)
        assert result.form_version.version == "2026112202"
    with session_scope(app) as s:
        assert s.scalar(select(Form)).live_version.version == "2026112202"
    assert counts(app) == (1, 2)
