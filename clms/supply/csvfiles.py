"""Reading and checking the CSV files of a supply chain (pure): each file's kind from its
header, every problem of format and value named by file, line and column.

The codes are checked against each other and the database later (:mod:`clms.supply.imports`).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from clms.errors import DomainProblem
from clms.i18n import Msg
from clms.safety import UnsafeFile, decode_text

# --- CSV import: reading (pure) ----------------------------------------------------------------

#: the kinds of file the import reads, recognised by their header: kind -> (required, optional)
FILE_KINDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "suppliers": (("code", "name", "tier"), ("kind",)),
    "links": (("buyer", "seller"), ()),
    "villages": (("supplier", "village"), ()),
    "households": (("household", "supplier"), ()),
    "brands": (("code", "name"), ()),
}
CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_CODE_COLUMNS = ("code", "buyer", "seller", "supplier", "village")
_HOUSEHOLD_CODE = re.compile(r"^\S{1,100}$")


@dataclass(frozen=True, order=True)
class Where:
    """A place in the files being imported: file name, line (1 is the header) and column."""

    file: str
    line: int
    column: str = ""

    def msg(self) -> Msg:
        if self.column:
            return Msg("{file}, line {line}, column {column}", file=self.file, line=self.line,
                       column=self.column)  # fmt: skip
        return Msg("{file}, line {line}", file=self.file, line=self.line)

    def __str__(self) -> str:
        return str(self.msg())

    def at(self, column: str) -> Where:
        return Where(self.file, self.line, column)


@dataclass(frozen=True)
class Issue:
    """Something wrong (or, for a warning, worth a look) at a place in the files."""

    where: Where
    msg: Msg

    def render(self, translate=None) -> str:
        return Msg("{where}: {what}", where=self.where.msg(), what=self.msg).render(translate)

    def __str__(self) -> str:
        return self.render()


class ChainImportError(DomainProblem):
    """The files were refused (``supply.import_refused``): every issue found (``issues``, in the
    order of the files), nothing written."""

    KEY = "supply.import_refused"

    def __init__(self, issues: list[Issue]):
        self.issues = sorted(issues, key=lambda i: i.where)
        super().__init__(count=len(self.issues), issues=[str(i) for i in self.issues])


@dataclass
class ChainRows:
    """What the files say, row by row, before anything is looked up in the database.

    Each row starts with its :class:`Where` (the file and line, no column).
    """

    brands: list[tuple[Where, str, str]] = field(default_factory=list)
    suppliers: list[tuple[Where, str, str, int, str | None]] = field(default_factory=list)
    links: list[tuple[Where, str, str]] = field(default_factory=list)
    villages: list[tuple[Where, str, str]] = field(default_factory=list)
    households: list[tuple[Where, str, str]] = field(default_factory=list)
    kinds: dict[str, str] = field(default_factory=dict)  # file name -> kind

    def rows(self) -> int:
        return sum(len(x) for x in (self.brands, self.suppliers, self.links, self.villages,
                                    self.households))  # fmt: skip


def _text_problem(e: UnsafeFile) -> Msg:
    """What is wrong with the bytes of a CSV file, where on its line (clms.safety.decode_text)."""
    if e.byte is not None:
        return Msg("character {column}: not UTF-8 text (byte 0x{byte}); save the file as CSV "
                   "UTF-8 and import it again", column=e.column, byte=f"{e.byte:02x}")  # fmt: skip
    if e.column is not None:
        return Msg("character {column}: a NUL character, which text cannot hold; save the file "
                   "as CSV UTF-8 and import it again", column=e.column)  # fmt: skip
    return Msg("is not text this server reads ({detail})", detail=str(e))


def file_kind(columns: Sequence[str]) -> str | None:
    """The kind of file a header names, or None.

    >>> file_kind(["code", "name", "tier", "kind"]), file_kind(["buyer", "seller"])
    ('suppliers', 'links')
    >>> file_kind(["code", "name"]), file_kind(["supplier", "village"]), file_kind(["x"])
    ('brands', 'villages', None)
    """
    have = set(columns)
    for kind, (required, _optional) in FILE_KINDS.items():
        if set(required) <= have:
            return kind
    return None


def read_chain_csv(name: str, data: bytes | str, rows: ChainRows) -> list[Issue]:
    """Read one CSV file into ``rows``; the issues of its format and values (codes are checked
    against each other and the database later, by :func:`plan_import`).

    The kind of file is known from its header (:data:`FILE_KINDS`); extra columns are refused,
    so that a misspelt optional column is not silently ignored.
    """
    issues: list[Issue] = []
    top = Where(name, 1)
    if isinstance(data, bytes):
        try:
            data = decode_text(data, name)
        except UnsafeFile as e:
            return [Issue(Where(name, e.line or 1), _text_problem(e))]
    reader = csv.reader(io.StringIO(data))
    header = [c.strip().lower() for c in next(reader, [])]
    kind = file_kind(header)
    if kind is None:
        return [Issue(top, Msg(
            "has the columns {columns}, which name no kind of supply-chain file; expected "
            "brands (code, name), suppliers (code, name, tier, kind), links (buyer, seller), "
            "supplier villages (supplier, village) or household suppliers (household, supplier)",
            columns=", ".join(header) or "-"))]  # fmt: skip
    required, optional = FILE_KINDS[kind]
    extra = [c for c in header if c not in required + optional]
    if extra:
        return [Issue(top, Msg("has unexpected column(s) {columns} for a {kind} file",
                               columns=", ".join(extra), kind=kind))]  # fmt: skip
    repeated = sorted({c for c in header if header.count(c) > 1})
    if repeated:
        return [Issue(top, Msg("names the column(s) {columns} twice", columns=", ".join(repeated)))]
    rows.kinds[name] = kind
    for line_no, values in enumerate(reader, start=2):
        if not any(v.strip() for v in values):
            continue  # blank lines, as spreadsheets leave at the end
        where = Where(name, line_no)
        if len(values) != len(header):
            issues.append(Issue(where, Msg("has {got} values for {expected} columns",
                                           got=len(values), expected=len(header))))  # fmt: skip
            continue
        row = {c: v.strip() for c, v in zip(header, values, strict=True)}
        bad = False
        for column in required:
            if not row[column]:
                issues.append(Issue(where.at(column), Msg("is required")))
                bad = True
            elif column in _CODE_COLUMNS and not CODE.match(row[column]):
                issues.append(
                    Issue(
                        where.at(column), Msg("must be letters, digits, '_', '.' or '-' (up to 64)")
                    )
                )
                bad = True
            elif column == "household" and not _HOUSEHOLD_CODE.match(row[column]):
                issues.append(
                    Issue(
                        where.at(column), Msg("must be a household code without spaces (up to 100)")
                    )
                )
                bad = True
        if row.get("name") and len(row["name"]) > 200:
            issues.append(Issue(where.at("name"), Msg("must be at most {n} characters", n=200)))
            bad = True
        if row.get("kind") and len(row["kind"]) > 40:
            issues.append(Issue(where.at("kind"), Msg("must be at most {n} characters", n=40)))
            bad = True
        tier = None
        if kind == "suppliers" and row["tier"]:
            tier = parse_tier(row["tier"])
            if tier is None:
                issues.append(
                    Issue(
                        where.at("tier"),
                        Msg(
                            "must be a whole number of 1 or more (got {value!r})", value=row["tier"]
                        ),
                    )
                )
                bad = True
        if bad:
            continue
        if kind == "brands":
            rows.brands.append((where, row["code"], row["name"]))
        elif kind == "suppliers":
            rows.suppliers.append((where, row["code"], row["name"], tier, row.get("kind") or None))
        elif kind == "links":
            rows.links.append((where, row["buyer"], row["seller"]))
        elif kind == "villages":
            rows.villages.append((where, row["supplier"], row["village"]))
        else:
            rows.households.append((where, row["household"], row["supplier"]))
    return issues


def parse_tier(text: str | int | None) -> int | None:
    """A tier (a whole number of 1 or more) from text, or None.

    >>> parse_tier("2"), parse_tier(" 3 "), parse_tier("0"), parse_tier("1.5"), parse_tier("x")
    (2, 3, None, None, None)
    """
    try:
        tier = int(str(text).strip())
    except (TypeError, ValueError):
        return None
    return tier if 1 <= tier <= 99 else None
