"""Checking and converting a form file: what an upload is, an XLSForm converted to an XForm with
pyxform, an XForm read and refused when it is not one, ODK Validate, and the public key an
encrypted form carries. Pure functions of the file's bytes (no database); errors are catalogue
problems (``form.invalid``) whose message tells a person where to look: for a spreadsheet the
sheet, the row and the problem. Publishing a checked form is :mod:`forms.publish`.

>>> natural_key("2026112201") > natural_key("2026112200"), natural_key("1.10") > natural_key("1.9")
(True, True)
>>> media_files(b'<instance id="v" src="jr://file-csv/villages.csv"/><value>jr://images/a.png</value>')
['a.png', 'villages.csv']
"""

from __future__ import annotations

import datetime as dt
import io
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from lxml import etree
from pyxform.builder import create_survey_element_from_dict
from pyxform.errors import PyXFormError
from pyxform.validators.odk_validate import ODKValidateError, check_xform
from pyxform.xls2json import workbook_to_json
from pyxform.xls2json_backends import get_xlsform, is_markdown_table

from clms.errors import Problem, problem
from clms.safety import UnreadableArchive, UnsafeFile, check_spreadsheet, formula_cells
from forms.xmlsafe import local, parse_xml

XLSFORM_SUFFIXES = (".xlsx", ".xls", ".md")
_XFORMS_NS = "http://www.w3.org/2002/xforms"
_XHTML_NS = "http://www.w3.org/1999/xhtml"
_ORX_NS = "http://openrosa.org/xforms"
# Media an XForm names: external instances (jr://file/, jr://file-csv/) and itext media.
_MEDIA_REF = re.compile(rb"jr://(?:file|file-csv|images|image|audio|video)/([^\s\"'<>]+)")
_ROW_PREFIX = re.compile(r"^\[row\s*:\s*(\d+)\]\s*", re.IGNORECASE)
_ON_SHEET = re.compile(r"On the '([^']+)' sheet,\s*", re.IGNORECASE)
_ZIP_MAGIC = b"PK\x03\x04"
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # legacy .xls (and other Office 97 files)


@dataclass
class XFormInfo:
    """What the server needs to know about an XForm, read from its XML."""

    form_id: str
    version: str
    title: str
    media_files: list[str]


def natural_key(version: str) -> tuple:
    """Sort key comparing runs of digits as numbers: ``"10" > "9"``, ``"1.10" > "1.9"``.

    >>> sorted(["1.10", "1.9", "2", "1.9a"], key=natural_key)
    ['1.9', '1.9a', '1.10', '2']
    """
    # (0, n) for numbers and (1, text) for the rest keeps mixed tuples comparable
    return tuple(
        (0, int(part), "") if part.isdigit() else (1, 0, part)
        for part in re.findall(r"\d+|\D+", version or "")
    )


def media_files(xml: bytes) -> list[str]:
    """The media file names an XForm references (``jr://file-csv/villages.csv`` -> villages.csv)."""
    names = {
        m.group(1).decode("utf-8", "replace").rsplit("/", 1)[-1] for m in _MEDIA_REF.finditer(xml)
    }
    return sorted(n for n in names if n)


def file_kind(filename: str, data: bytes) -> str:
    """What the upload is: ``xlsx``, ``xls``, ``md`` or ``xform``, judged by content and name.

    The content decides where it can (a zip archive, an Office 97 file, XML); a name that promises
    a spreadsheet whose content is none gets a message saying so.
    """
    suffix = Path(filename).suffix.lower()
    if not data:
        raise problem("form.invalid", detail=f"The file '{filename}' is empty.")
    head = data[:8]
    if head.startswith(_ZIP_MAGIC):
        return "xlsx"
    if head == _OLE_MAGIC:
        return "xls"
    text_start = data.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text_start.startswith(b"<") or (suffix == ".xml" and _looks_like_utf16_xml(data)):
        return "xform"
    if suffix == ".md":
        return "md"
    if suffix in (".xlsx", ".xls"):
        raise problem(
            "form.invalid",
            detail=(
                f"The file '{filename}' is not a spreadsheet: its name ends in {suffix} but its "
                "content is not an Excel workbook. Save the XLSForm again from Excel or "
                "LibreOffice as .xlsx and upload that file."
            ),
        )
    raise problem(
        "form.invalid",
        detail=(
            f"The file '{filename}' is neither an XLSForm (.xlsx, .xls or .md) nor an XForm (.xml)."
        ),
    )


def convert_xlsform(
    filename: str,
    data: bytes,
    kind: str | None = None,
    validate: bool = False,
    pretty: bool = False,
    public_key: str | None = None,
) -> tuple[bytes, list[str]]:
    """Convert an XLSForm to XForm bytes with pyxform; returns ``(xml, warnings)``.

    The form id defaults to the file name's stem (as pyxform does for files on disk) and a missing
    version is assigned from the UTC clock (YYYYMMDDHHMMSS), with a warning saying so. Errors
    become ``form.invalid`` problems naming the sheet, the row and the problem. ``public_key``
    (base64 DER) is set as the settings sheet's ``public_key``: pyxform puts it on
    ``<submission base64RsaPublicKey=...>`` and ODK Collect then encrypts.
    """
    kind = kind or file_kind(filename, data)
    if kind == "md":
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise problem(
                "form.invalid", detail=f"The file '{filename}' is not UTF-8 text: {e}."
            ) from e
        if not is_markdown_table(data.decode("utf-8")):
            raise problem(
                "form.invalid",
                detail=f"The file '{filename}' is not a Markdown XLSForm: it has no table such as "
                "'| survey | type | name | label |'.",
            )
    else:
        _refuse_unsafe_spreadsheet(filename, kind, data)
    warnings: list[str] = []
    try:
        workbook = get_xlsform(xlsform=io.BytesIO(data), file_type=f".{kind}")
    except Exception as e:  # the readers raise anything on a corrupt file
        raise problem("form.invalid", detail=_unreadable(filename, kind, e)) from e
    try:
        form_json = workbook_to_json(
            workbook_dict=workbook,
            fallback_form_name=_form_id_from_name(filename),
            warnings=warnings,
        )
        if not str(form_json.get("version") or "").strip():
            assigned = dt.datetime.now(dt.UTC).strftime("%Y%m%d%H%M%S")
            form_json["version"] = assigned
            warnings.append(
                f"The settings sheet sets no version, so version {assigned} (the UTC time of "
                "publishing) was assigned. Set a version in the settings sheet to choose it."
            )
        if public_key is not None:
            form_json["public_key"] = public_key
        survey = create_survey_element_from_dict(form_json)
        xform = survey.to_xml(validate=validate, pretty_print=pretty, warnings=warnings)
    except ODKValidateError as e:
        raise problem("form.invalid", detail=_odk_validate_message(str(e))) from e
    except PyXFormError as e:
        raise problem("form.invalid", detail=locate_error(str(e), kind, data)) from e
    except OSError as e:  # java missing while validation was demanded
        raise problem("form.invalid", detail=f"ODK Validate could not run: {e}") from e
    except Exception as e:  # pyxform has unchecked paths: say what it said
        detail = locate_error(f"{type(e).__name__}: {e}", kind, data)
        raise problem("form.invalid", detail=f"pyxform could not convert the form. {detail}") from e
    return xform.encode("utf-8"), warnings


def read_xform(xml: bytes, filename: str = "form.xml") -> XFormInfo:
    """Read form id, version, title and media names from an XForm; refuse anything else.

    The id and version are the primary instance root's ``id`` and ``version`` (or ``orx:version``)
    attributes; a form without a version has version ``""``, as in ODK Central.
    """
    try:
        root = parse_xml(xml)
    except Problem as p:
        if p.key == "request.hostile_xml":
            raise problem(
                "form.invalid",
                detail=(
                    f"The file '{filename}' declares a DTD or entities "
                    f"({p.details.get('detail', 'DOCTYPE')}); XForms never need them, so it was "
                    "refused."
                ),
            ) from p
        raise problem(
            "form.invalid",
            detail=f"The file '{filename}' is not well-formed XML: "
            f"{p.details.get('detail', p.message)}",
        ) from p
    if local(root.tag) != "html" or _child(root, "head") is None:
        raise problem(
            "form.invalid",
            detail=(
                f"The file '{filename}' is XML but not an XForm: an XForm starts with <h:html> "
                f"and has <h:head><model><instance>; this one starts with <{local(root.tag)}>."
            ),
        )
    head = _child(root, "head")
    model = _child(head, "model")
    instance = _child(model, "instance") if model is not None else None
    data_root = (
        next((e for e in instance if isinstance(e.tag, str)), None)
        if instance is not None
        else None
    )
    if data_root is None:
        raise problem(
            "form.invalid",
            detail=f"The XForm '{filename}' has no primary instance "
            "(<model><instance> with a root element).",
        )
    form_id = (data_root.get("id") or "").strip()
    if not form_id:
        raise problem(
            "form.invalid",
            detail=(
                f"The XForm '{filename}': the primary instance root <{local(data_root.tag)}> "
                "has no id attribute; ODK needs it as the form id (settings sheet: form_id)."
            ),
        )
    if len(form_id) > 200:
        raise problem(
            "form.invalid", detail=f"The form id '{form_id[:60]}...' is longer than 200 characters."
        )
    version = (data_root.get("version") or data_root.get(f"{{{_ORX_NS}}}version") or "").strip()
    if len(version) > 100:
        raise problem(
            "form.invalid", detail=f"The version '{version[:60]}...' is longer than 100 characters."
        )
    title_el = _child(head, "title")
    title = " ".join((title_el.text or "").split()) if title_el is not None else ""
    return XFormInfo(
        form_id=form_id, version=version, title=title or form_id, media_files=media_files(xml)
    )


def locate_error(message: str, kind: str, data: bytes) -> str:
    """Turn a pyxform error into "Sheet 's', row n: problem", finding the row if pyxform gave none.

    pyxform prefixes most errors with ``[row : n]`` (a row of the survey sheet unless the message
    names another); some, such as "Unknown question type 'txet'.", carry no row, so the quoted
    value is looked up in the workbook.

    >>> locate_error("[row : 3] List name not in choices sheet: colors", "md", b"")
    "Sheet 'survey', row 3: list name not in choices sheet: colors"
    """
    message = " ".join(message.split())
    m = _ROW_PREFIX.match(message)
    cells = _workbook_cells(kind, data)
    if m:
        row = int(m.group(1))
        rest = message[m.end() :]
        sheet_m = _ON_SHEET.search(rest)
        sheet = sheet_m.group(1) if sheet_m else "survey"
        rest = _ON_SHEET.sub("", rest, count=1) if sheet_m else rest
        hint = _column_hint(cells, sheet, rest)
        if hint:
            rest = f"{rest.rstrip('.')} {hint}."
        return f"Sheet '{_sheet_title(cells, sheet)}', row {row}: {_lower_first(rest)}"
    if message.startswith("You must have a sheet named") and cells:
        return f"{message} The workbook's sheets are: {', '.join(repr(s) for s in cells)}."
    if "should be a choices sheet" in message:
        found = _find_select_row(cells)
        if found:
            sheet, row, value = found
            return (
                f"Sheet '{sheet}', row {row}: the question type '{value}' needs a choices sheet, "
                "but the workbook has none (it needs the columns list_name, name and label)."
            )
    for value in re.findall(r"'([^']+)'", message):
        found = _find_cell(cells, value)
        if found:
            sheet, row = found
            return f"Sheet '{sheet}', row {row}: {_lower_first(message)}"
    return message


def submission_public_key(xml: bytes) -> str | None:
    """The ``base64RsaPublicKey`` on an XForm's ``<submission>`` (None: not encrypted).

    >>> submission_public_key(b'<h:html xmlns:h="x" xmlns="y"><h:head><model>'
    ...     b'<submission base64RsaPublicKey="QUJD"/></model></h:head></h:html>')
    'QUJD'
    """
    root = parse_xml(xml)
    submission = _child(_child(_child(root, "head"), "model"), "submission")
    if submission is None:
        return None
    value = "".join((submission.get("base64RsaPublicKey") or "").split())
    return value or None


def with_public_key(xml: bytes, public_key: str, version: str) -> bytes:
    """The XForm with ``public_key`` on its ``<submission>`` (added when missing) and the primary
    instance's version set to ``version``; refused when it has no meta/instanceID (encryption
    needs it)."""
    root = parse_xml(xml)
    model = _child(_child(root, "head"), "model")
    instance = _child(model, "instance")
    data_root = next((e for e in instance if isinstance(e.tag, str)), None)
    meta = _child(data_root, "meta")
    if _child(meta, "instanceID") is None:
        raise problem(
            "form.invalid",
            detail="The form has no meta/instanceID, which encryption needs; add it (pyxform adds "
            "it unless the settings sheet sets omit_instanceID) and publish again.",
        )
    submission = _child(model, "submission")
    if submission is None:
        submission = etree.Element(f"{{{_XFORMS_NS}}}submission")
        model.insert(0, submission)
    submission.set("base64RsaPublicKey", public_key)
    if data_root.get(f"{{{_ORX_NS}}}version") is not None and data_root.get("version") is None:
        data_root.set(f"{{{_ORX_NS}}}version", version)
    else:
        data_root.set("version", version)
    return etree.tostring(root.getroottree(), xml_declaration=True, encoding="utf-8")


# --- private helpers ----------------------------------------------------------------------------


def odk_validate(xml: bytes) -> list[str]:
    """Run ODK Validate on XForm bytes; warnings back, ``form.invalid`` on rejection."""
    with tempfile.TemporaryDirectory(prefix="clms-validate-") as tmp:
        path = Path(tmp) / "form.xml"
        path.write_bytes(xml)
        try:
            return list(check_xform(str(path)))
        except ODKValidateError as e:
            raise problem("form.invalid", detail=_odk_validate_message(str(e))) from e
        except OSError as e:
            raise problem("form.invalid", detail=f"ODK Validate could not run: {e}") from e


def _odk_validate_message(text: str) -> str:
    """ODK Validate's report, without its boilerplate lines."""
    drop = (
        "ODK Validate Errors:",
        "The following files failed validation",
        "Result: Invalid",
        "${form}.xml",
    )
    lines = [ln.strip() for ln in text.splitlines()]
    kept = [
        ln.lstrip(">: ").strip() for ln in lines if ln and not any(ln.startswith(d) for d in drop)
    ]
    kept = [ln for ln in kept if ln and ln != "XForm is invalid."]
    body = " ".join(kept) or text.strip()
    return f"ODK Validate (the form engine of ODK Collect) rejected the form: {body}"


def _unreadable(filename: str, kind: str, error: Exception) -> str:
    what = {
        "xlsx": "an Excel workbook (.xlsx)",
        "xls": "an Excel 97-2003 workbook (.xls)",
        "md": "a Markdown XLSForm",
    }[kind]
    reason = " ".join(str(error).split())
    if "not recognized as a supported type" in reason:
        reason = "it is damaged, or it is another kind of file"
    return f"The file '{filename}' could not be read as {what}: {reason.rstrip('.')}."


def _refuse_unsafe_spreadsheet(filename: str, kind: str, data: bytes) -> None:
    """Refuse, before any reader opens it, a workbook that is a zip bomb, carries macros or holds
    formulas (:mod:`clms.safety`); a damaged file is left to the reader's own message."""
    try:
        check_spreadsheet(filename, data)
    except UnreadableArchive:
        return  # damaged, or no workbook at all: the reader's own message says so next
    except UnsafeFile as e:
        raise problem("form.invalid", detail=str(e)) from None
    if kind != "xlsx":
        return  # an .xls gives its readers saved values only; nothing is evaluated
    try:
        cells = formula_cells(data)
    except Exception:  # damaged: pyxform's reader says so next
        return
    if cells:
        raise problem(
            "form.invalid",
            detail=(
                f"The file '{filename}' holds formulas without a computed value, in "
                f"{', '.join(cells)}; formulas are never evaluated here. Open the file in a "
                "spreadsheet program and save it, or replace each formula with its value (copy, "
                "then Paste Special > Values), and upload it again."
            ),
        )


def _form_id_from_name(filename: str) -> str:
    stem = Path(filename).stem or "form"
    return re.sub(r"[^A-Za-z0-9_.-]", "_", stem)


def _looks_like_utf16_xml(data: bytes) -> bool:
    return data[:2] in (b"\xff\xfe", b"\xfe\xff") or data[:4] in (b"<\x00?\x00", b"\x00<\x00?")


def _child(elem: etree._Element | None, name: str) -> etree._Element | None:
    if elem is None:
        return None
    return next((c for c in elem if isinstance(c.tag, str) and local(c.tag) == name), None)


def _lower_first(text: str) -> str:
    if len(text) > 1 and text[0].isupper() and not text[1].isupper():
        return text[0].lower() + text[1:]
    return text


def _workbook_cells(kind: str, data: bytes) -> dict[str, list[list[str]]]:
    """Every sheet as rows of cell strings (index 0 = row 1), read independently of pyxform.

    pyxform's own reader may be what failed, so this one tolerates anything and returns ``{}``
    when the file cannot be read at all.
    """
    try:
        if kind == "xls":
            import xlrd

            book = xlrd.open_workbook(file_contents=data)
            return {
                s.name: [[_cell_text(v) for v in s.row_values(r)] for r in range(s.nrows)]
                for s in book.sheets()
            }
        if kind == "xlsx":
            import openpyxl

            book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
            try:
                return {
                    ws.title: [
                        [_cell_text(v) for v in row] for row in ws.iter_rows(values_only=True)
                    ]
                    for ws in book.worksheets
                }
            finally:
                book.close()
        if kind == "md":
            return _md_cells(data.decode("utf-8", "replace"))
    except Exception:  # best effort: the caller falls back to pyxform's message
        return {}
    return {}


def _md_cells(text: str) -> dict[str, list[list[str]]]:
    """Markdown XLSForm tables by sheet, numbered as pyxform numbers them (header = row 1)."""
    sheets: dict[str, list[list[str]]] = {}
    current = None
    for line in text.split("\n"):
        stripped = line.strip()
        if stripped.startswith("#") or not (stripped.startswith("|") and stripped.endswith("|")):
            continue
        cells = [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", stripped[1:-1])]
        if all(re.fullmatch(r"-*", c) for c in cells):
            continue  # a |---|---| separator line
        if cells[0]:
            current = cells[0]
            sheets[current] = []
        if current is not None and any(cells[1:]):
            sheets[current].append(cells[1:])
    return sheets


def _cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _sheet_title(cells: dict[str, list[list[str]]], name: str) -> str:
    """The sheet's name as the workbook spells it (pyxform lower-cases sheet names)."""
    return next((s for s in cells if s.lower() == name.lower()), name)


def _column_hint(cells: dict[str, list[list[str]]], sheet: str, problem_text: str) -> str:
    rows = cells.get(_sheet_title(cells, sheet))
    if not rows:
        return ""
    header = {h.lower() for h in rows[0]}
    if "no name" in problem_text.lower() and "name" not in header:
        return f"(the '{_sheet_title(cells, sheet)}' sheet has no 'name' column)"
    return ""


def _ordered_sheets(cells: dict[str, list[list[str]]]) -> list[str]:
    order = {"survey": 0, "choices": 1, "settings": 2}
    return sorted(cells, key=lambda s: order.get(s.lower(), 3))


def _find_cell(cells: dict[str, list[list[str]]], value: str) -> tuple[str, int] | None:
    """The first (sheet, row) holding ``value`` as a cell or as a word of one (survey first)."""
    for exact in (True, False):
        for sheet in _ordered_sheets(cells):
            for n, row in enumerate(cells[sheet][1:], start=2):
                for cell in row:
                    if cell == value if exact else value in cell.split():
                        return sheet, n
    return None


def _find_select_row(cells: dict[str, list[list[str]]]) -> tuple[str, int, str] | None:
    for sheet in _ordered_sheets(cells):
        if sheet.lower() != "survey" or not cells[sheet]:
            continue
        header = [h.lower() for h in cells[sheet][0]]
        if "type" not in header:
            return None
        col = header.index("type")
        for n, row in enumerate(cells[sheet][1:], start=2):
            value = row[col] if col < len(row) else ""
            words = value.split()
            if words and words[0] in ("select_one", "select_multiple", "rank"):
                return sheet, n, value
    return None
