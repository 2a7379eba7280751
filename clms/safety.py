"""Checks on files strangers upload, before anything reads them for real.

Zip archives (XLSForms are zips, and so are zipped shapefiles) are checked from their directory
and then read through once, counting, before a library extracts anything: too many members, too
many bytes once uncompressed, a member that inflates far beyond its compressed size (a zip bomb),
or a member path that is absolute or climbs out with ``..`` is refused. The read-through also
catches an archive whose directory lies about its sizes (the CRC of what inflates does not match).

Spreadsheets may carry macros: a macro-enabled workbook (``.xlsm``, a ``vbaProject.bin`` inside,
an Office 97 ``.xls`` with a VBA project or an Excel 4 macro sheet) is refused, never opened by
anything that could run it. Formulas are never evaluated: an XLSForm is read from the values its
spreadsheet program saved, and one whose formulas have no saved value is refused
(:func:`formula_cells`) rather than silently read as empty cells.

Text files (CSV) must be UTF-8 (a byte-order mark for UTF-8 or UTF-16 is honoured);
:func:`decode_text` says at which line and column the first byte that is not is, and refuses NUL
characters, which no text field can hold (PostgreSQL refuses them).

Pure: bytes in, exceptions out; no Flask, no database.

>>> check_zip(_zip({"a.txt": b"hello"}), "a.zip").members
1
>>> try:
...     decode_text(b"name\\nKou\\xe9", "v.csv")
... except UnsafeFile as e:
...     print(str(e)[:51])
v.csv: line 2, column 4: not UTF-8 text (byte 0xe9)
"""

from __future__ import annotations

import io
import re
import stat
import zipfile
from dataclasses import dataclass
from pathlib import PurePosixPath

#: limits of a zip archive; callers may pass their own
MAX_MEMBERS = 1000
MAX_UNCOMPRESSED = 512 * 1024 * 1024
#: a member larger than RATIO_FLOOR that inflates more than MAX_RATIO times is a bomb (text and
#: shapefile tables compress 10-100 times; deflate's own ceiling is about 1030)
MAX_RATIO = 400
RATIO_FLOOR = 1024 * 1024
#: an XLSForm is a few sheets of text: far smaller limits
SPREADSHEET_MAX_MEMBERS = 500
SPREADSHEET_MAX_UNCOMPRESSED = 100 * 1024 * 1024

MACRO_SUFFIXES = (".xlsm", ".xltm", ".xlam", ".xlsb")
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ZIP_MAGIC = b"PK\x03\x04"
# the storage an Office 97 file keeps its VBA project in (directory names are UTF-16LE)
_OLE_VBA = re.compile("_VBA_PROJECT".encode("utf-16-le"), re.IGNORECASE)
_DRIVE = re.compile(r"^[A-Za-z]:")


class UnsafeFile(ValueError):
    """A file refused before it was read; the message says which file, where and why.

    For text, ``line`` and ``column`` say where, and ``byte`` is the first byte that is not
    UTF-8 (None for a NUL character), for callers that word their own message.
    """

    def __init__(
        self, message: str, line: int | None = None, column: int | None = None,
        byte: int | None = None,
    ):  # fmt: skip
        super().__init__(message)
        self.line, self.column, self.byte = line, column, byte


class UnreadableArchive(UnsafeFile):
    """Not a zip archive at all (damaged, or another kind of file): nothing dangerous was found,
    and a caller may let its own reader say what the file is not."""


@dataclass(frozen=True)
class ZipSummary:
    """What :func:`check_zip` found: member count, total bytes once inflated, member names."""

    members: int
    uncompressed: int
    names: tuple[str, ...]


def check_zip(
    data: bytes | str,
    source: str,
    *,
    max_members: int = MAX_MEMBERS,
    max_uncompressed: int = MAX_UNCOMPRESSED,
    max_ratio: int = MAX_RATIO,
    refuse_nested: bool = False,
) -> ZipSummary:
    """Check the zip archive ``data`` (bytes or a path) before anything extracts it.

    Raises :class:`UnsafeFile` naming ``source`` and the member at fault. ``refuse_nested``
    refuses archives inside the archive (GDAL could open them too).

    >>> try:
    ...     check_zip(_zip({"../x": b""}), "up.zip")
    ... except UnsafeFile as e:
    ...     print(str(e)[:65])
    up.zip: member '../x' has a path that leaves the archive's folder
    """
    try:
        book = zipfile.ZipFile(io.BytesIO(data) if isinstance(data, bytes) else data)
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        raise UnreadableArchive(f"{source}: not a readable zip archive ({e}).") from None
    with book:
        infos = book.infolist()
        if len(infos) > max_members:
            raise UnsafeFile(
                f"{source}: holds {len(infos)} files; at most {max_members} are accepted."
            )
        total = 0
        for info in infos:
            _check_member_name(info, source)
            if info.flag_bits & 0x1:
                raise UnsafeFile(f"{source}: member {info.filename!r} is encrypted; refused.")
            if refuse_nested and info.filename.lower().endswith((".zip", ".gz", ".7z", ".rar")):
                raise UnsafeFile(
                    f"{source}: member {info.filename!r} is an archive inside the archive; "
                    "unpack it and upload the files themselves."
                )
            total += info.file_size
            if total > max_uncompressed:
                raise UnsafeFile(
                    f"{source}: would inflate to more than {max_uncompressed} bytes "
                    f"(at member {info.filename!r}); refused as a possible zip bomb."
                )
            ratio = info.file_size / max(info.compress_size, 1)
            if info.file_size > RATIO_FLOOR and ratio > max_ratio:
                raise UnsafeFile(
                    f"{source}: member {info.filename!r} inflates {ratio:.0f} times "
                    f"({info.compress_size} to {info.file_size} bytes; at most {max_ratio} "
                    "times is accepted); refused as a possible zip bomb."
                )
        # the directory may lie about sizes: inflate once, counting, never past what it declared
        # (zipfile stops there and the CRC of a truncated member fails)
        seen = 0
        for info in infos:
            if info.is_dir():
                continue
            try:
                with book.open(info) as member:
                    while chunk := member.read(1024 * 1024):
                        seen += len(chunk)
                        if seen > max_uncompressed:
                            raise UnsafeFile(
                                f"{source}: inflates to more than {max_uncompressed} bytes; "
                                "refused as a possible zip bomb."
                            )
            except UnsafeFile:
                raise
            except Exception as e:  # BadZipFile (bad CRC), zlib.error, NotImplementedError...
                raise UnsafeFile(
                    f"{source}: member {info.filename!r} cannot be read ({e}); refused."
                ) from None
    return ZipSummary(len(infos), total, tuple(i.filename for i in infos))


def _check_member_name(info: zipfile.ZipInfo, source: str) -> None:
    name = info.filename
    parts = PurePosixPath(name.replace("\\", "/")).parts
    if (
        not name
        or "\x00" in name
        or name.startswith(("/", "\\"))
        or _DRIVE.match(name)
        or ".." in parts
    ):
        raise UnsafeFile(
            f"{source}: member {name!r} has a path that leaves the archive's folder "
            "(absolute, a drive, or '..'); refused."
        )
    if stat.S_ISLNK(info.external_attr >> 16):
        raise UnsafeFile(f"{source}: member {name!r} is a symbolic link; refused.")


def check_spreadsheet(filename: str, data: bytes) -> None:
    """Refuse a spreadsheet that carries macros, or a zip that is not safe to open.

    ``filename`` is the name as uploaded (its suffix may already say "macro-enabled").
    """
    suffix = PurePosixPath(filename.replace("\\", "/")).suffix.lower()
    if suffix in MACRO_SUFFIXES:
        raise UnsafeFile(_macro_message(filename, f"its type {suffix} is a macro-enabled workbook"))
    if data.startswith(_ZIP_MAGIC):
        found = check_zip(
            data,
            filename,
            max_members=SPREADSHEET_MAX_MEMBERS,
            max_uncompressed=SPREADSHEET_MAX_UNCOMPRESSED,
        )
        for name in found.names:
            lower = name.lower()
            if lower.endswith("vbaproject.bin") or "/macrosheets/" in lower or "activex" in lower:
                raise UnsafeFile(_macro_message(filename, f"it holds {name}"))
        with zipfile.ZipFile(io.BytesIO(data)) as book:
            try:
                types = book.read("[Content_Types].xml")
            except KeyError:
                types = b""
        if b"macroenabled" in types.lower():
            raise UnsafeFile(_macro_message(filename, "its content types declare macros"))
    elif data.startswith(_OLE_MAGIC):
        if _OLE_VBA.search(data):
            raise UnsafeFile(_macro_message(filename, "it holds a VBA project"))
        kinds = _xls_sheet_kinds(data)
        if kinds:
            raise UnsafeFile(_macro_message(filename, f"it holds {', '.join(sorted(kinds))}"))


def _macro_message(filename: str, why: str) -> str:
    return (
        f"The file '{filename}' is refused: {why}. Macros are never accepted; save the "
        "workbook as .xlsx (Excel Workbook) without macros and upload that file."
    )


def _xls_sheet_kinds(data: bytes) -> set[str]:
    """Excel 4 macro sheets and VBA modules an Office 97 workbook declares (xlrd notes and skips
    them; its notes are how it says so)."""
    import xlrd

    log = io.StringIO()
    try:
        book = xlrd.open_workbook(file_contents=data, on_demand=True, verbosity=1, logfile=log)
        book.release_resources()
    except Exception:  # unreadable: the spreadsheet reader says so with its own message
        return set()
    return {
        kind.lower() + "s"
        for kind in ("Macro sheet", "Visual Basic module")
        if f"= {kind})" in log.getvalue()
    }


def formula_cells(data: bytes, limit: int = 5) -> list[str]:
    """Up to ``limit`` cells of an ``.xlsx`` workbook holding a formula with no computed value,
    as ``'sheet'!A1 (=...)``.

    Nothing here or in pyxform ever evaluates a formula: the form is converted from the values
    the spreadsheet program computed and saved with it (Excel writes ``=TRUE()`` for a typed
    TRUE, and saves its value). A formula saved without a value (a file written by a program)
    would silently become an empty cell, so such a workbook is refused, naming the cells.

    The worksheets' XML is read as a stream of cells (``<c>`` with an ``<f>`` and no ``<v>``),
    with the project's safe parser settings: a sheet declaring a million empty rows costs no
    more than its cells (openpyxl would walk every row of the declared range).
    """
    from lxml import etree

    main = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
    rel = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"
    safe = {"resolve_entities": False, "no_network": True, "load_dtd": False, "huge_tree": False}
    found: list[str] = []
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = set(archive.namelist())
        if "xl/workbook.xml" not in names:
            return found
        workbook = etree.fromstring(archive.read("xl/workbook.xml"), etree.XMLParser(**safe))
        targets = {}
        if "xl/_rels/workbook.xml.rels" in names:
            rels = etree.fromstring(
                archive.read("xl/_rels/workbook.xml.rels"), etree.XMLParser(**safe)
            )
            for r in rels:
                target = r.get("Target", "")
                path = target.lstrip("/") if target.startswith("/") else f"xl/{target}"
                targets[r.get("Id")] = str(PurePosixPath(path))
        for sheet in workbook.iter(f"{main}sheet"):
            path = targets.get(sheet.get(rel))
            if path not in names:
                continue
            title = sheet.get("name", "")
            with archive.open(path) as stream:
                for _event, cell in etree.iterparse(stream, tag=f"{main}c", **safe):
                    formula = cell.find(f"{main}f")
                    value = cell.find(f"{main}v")
                    if formula is not None and (value is None or value.text is None):
                        text = "=" + (formula.text or "")
                        shown = text if len(text) <= 40 else text[:37] + "..."
                        found.append(f"'{title}'!{cell.get('r', '?')} ({shown})")
                        if len(found) >= limit:
                            return found
                    cell.clear()
    return found


def decode_text(data: bytes, source: str) -> str:
    """``data`` as text: UTF-8 (with or without a byte-order mark) or UTF-16 with one.

    Anything else is refused with the line and column of the first byte that is not UTF-8; a NUL
    character (UTF-16 saved without a byte-order mark looks like that) is refused too.

    >>> decode_text(b"\\xef\\xbb\\xbfcode,name\\n", "x.csv")
    'code,name\\n'
    >>> decode_text("a\\nb".encode("utf-16"), "x.csv")
    'a\\nb'
    """
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            text = data.decode("utf-16")
        except UnicodeDecodeError as e:
            raise UnsafeFile(f"{source}: not valid UTF-16 text (byte {e.start}).") from None
    else:
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as e:
            line, column = _line_column(data, e.start)
            raise UnsafeFile(
                f"{source}: line {line}, column {column}: not UTF-8 text (byte "
                f'0x{data[e.start]:02x}); save the file as "CSV UTF-8" and upload it again.',
                line,
                column,
                data[e.start],
            ) from None
    nul = text.find("\x00")
    if nul >= 0:
        line = text.count("\n", 0, nul) + 1
        column = nul - (text.rfind("\n", 0, nul) + 1) + 1
        hint = " (UTF-16 text without a byte-order mark?)" if text.count("\x00") > 1 else ""
        raise UnsafeFile(
            f"{source}: line {line}, column {column}: a NUL character, which text cannot hold"
            f'{hint}; save the file as "CSV UTF-8" and upload it again.',
            line,
            column,
        )
    return text


def _line_column(data: bytes, offset: int) -> tuple[int, int]:
    line = data.count(b"\n", 0, offset) + 1
    start = data.rfind(b"\n", 0, offset) + 1
    # the column in characters: the bytes before the bad one on its line are valid UTF-8
    column = len(data[start:offset].decode("utf-8", "replace")) + 1
    return line, column


def _zip(members: dict[str, bytes]) -> bytes:
    """A small zip archive (doctests)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as book:
        for name, content in members.items():
            book.writestr(name, content)
    return out.getvalue()
