"""Exports at the speed of the database: the query formats each cell itself, so Python only
hands bytes on (issue 19, point 3).

An export is a :class:`Table`: named columns, each an SQL expression with its kind (text,
integer, boolean, the date of a UTC time, a JSON list joined with spaces as ODK writes a multiple
choice, the rule ids of a classification's reasons), and the statement they are read from (its
joins, conditions and order). From it:

- :func:`csv_stream`: the CSV, byte for byte what :func:`clms.exports.csv_chunks` writes from the
  same values (the tests compare them), text neutralised against formula injection *in SQL*. On
  PostgreSQL the rows come out of ``COPY (SELECT ...) TO STDOUT`` in CSV, quoted by the server;
  on SQLite through the DB-API cursor ``fetchmany`` a batch at a time, quoted by the C ``csv``
  writer. No Python code runs per value, but for the exceptions below.
- :func:`xlsx_stream`: the XLSX sheet, each row's XML (cells with their references, kinds,
  styles and escaped, neutralised text) made by the query, numbered and zipped as it comes by
  :func:`clms.exports.xlsx_xml_chunks`.

Both read in the session's transaction (the view has made it read-only; on PostgreSQL it is made
read-only at the server too) through a cursor that holds one batch at a time, so memory stays
flat however many rows there are; the view closes the session when the stream ends or is
abandoned.

On SQLite, two things are done by Python functions of the connection, because SQL did them more
slowly: joining a JSON list (it repeats: the function remembers the last 4,096 it has seen) and,
for the rare text that a GLOB finds needing it, the XML escaping and formula neutralising of an
XLSX cell. JSON lists are expected to hold codes (text, numbers, booleans or nulls, as the
parser stores them); on PostgreSQL a nested list or object inside one is written as the database
prints JSON, not as Python would.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape

from sqlalchemy import (
    Boolean,
    Integer,
    String,
    case,
    cast,
    false,
    func,
    literal_column,
    null,
    true,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.functions import FunctionElement

from clms.exports import (
    _NOT_XML,
    FORMULA_STARTS,
    csv_chunks,
    csv_copy_chunks,
    csv_header,
    csv_text_chunks,
    neutralise,
    xlsx_chunks,
    xlsx_column,
    xlsx_xml_chunks,
)

#: rows read from the database at a time (SQLite's fetchmany, PostgreSQL's server-side cursor)
BATCH = 2000
KINDS = ("text", "int", "bool", "date", "words", "rules")


@dataclass(frozen=True)
class Column:
    """One column of an export: its ``name`` (the header), the SQL ``expr`` it is read from and
    its ``kind`` (one of :data:`KINDS`)."""

    name: str
    expr: object
    kind: str = "text"

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"column {self.name}: unknown kind {self.kind!r}")


@dataclass(frozen=True)
class Table:
    """An export: its ``columns``, the ``statement`` that reads them (a ``select()`` with its
    joins and conditions, whose own columns are ignored) and the rows' order (``order_by``)."""

    columns: Sequence[Column]
    statement: object
    order_by: Sequence = ()

    @property
    def header(self) -> list[str]:
        return [c.name for c in self.columns]


def table_chunks(
    session: Session, table: Table | None, header: Sequence[str], fmt: str, sheet: str
) -> Iterator[bytes]:
    """The ``fmt`` (``csv`` or ``xlsx``) export of ``table`` in chunks; of the ``header``
    alone when there is no table (a person with no scope)."""
    if table is None:
        return csv_chunks(header, ()) if fmt == "csv" else xlsx_chunks([(sheet, header, ())])
    return csv_stream(session, table) if fmt == "csv" else xlsx_stream(session, sheet, table)


# --- CSV -----------------------------------------------------------------------------------------


def csv_stream(session: Session, table: Table) -> Iterator[bytes]:
    """The CSV of ``table`` in chunks: the header (with the byte-order mark), then the rows as
    the database formats them. Nothing is read until the iterator is."""
    yield csv_header(table.header)
    conn = session.connection()
    cells = [_csv_cell(c.expr, c.kind) for c in table.columns]
    stmt = table.statement.with_only_columns(*cells).order_by(*table.order_by)
    if conn.dialect.name == "postgresql":
        yield from csv_copy_chunks(_copy_rows(conn, stmt), batch=BATCH)
    else:
        yield from csv_text_chunks(_batches(conn, stmt))


def _csv_cell(expr, kind: str):
    """``expr`` as the text :func:`clms.exports.csv_chunks` writes for its value, or NULL for an
    empty cell (PostgreSQL's COPY quotes an empty text, where Python writes nothing)."""
    if kind == "int":
        return cast(expr, String)
    if kind == "bool":
        return case((expr == true(), "true"), (expr == false(), "false"), else_=null())
    if kind == "date":
        return utc_date_text(expr)
    if kind == "words":
        return func.nullif(json_words(expr), "")
    if kind == "rules":
        return func.nullif(json_rule_words(expr), "")
    return func.nullif(neutralised(expr), "")


def _copy_rows(conn, stmt, options: str = "FORMAT csv") -> Iterator[memoryview]:
    """Each row of ``stmt`` as PostgreSQL's COPY writes it with ``options`` (by default CSV):
    one line, ending ``\\n``."""
    sql, params = _driver_sql(conn, stmt)
    copy_sql = f"COPY ({sql}) TO STDOUT WITH ({options})"
    with conn.connection.driver_connection.cursor() as cursor:
        _for_export(cursor)
        with cursor.copy(copy_sql, params) as copy:
            yield from copy


def _for_export(cursor) -> None:
    """The rest of the export's transaction on PostgreSQL: read-only at the server too (the
    view made it so on SQLite; PostgreSQL allows a transaction to become read-only after it has
    read), and without JIT compilation (PostgreSQL judged a million rows worth compiling, and
    spent 9.5 of 12.8 s of a 100,000-row export compiling)."""
    cursor.execute("SET TRANSACTION READ ONLY")
    cursor.execute("SET LOCAL jit = off")


def _driver_sql(conn, stmt) -> tuple[str, dict | tuple]:
    """``stmt`` as the SQL and parameters its DB-API driver takes (named for psycopg, whose
    COPY takes no server-side parameters: psycopg writes them in on the client, quoted;
    positional for SQLite), each parameter through its type's converter as SQLAlchemy's own
    execution would."""
    compiled = stmt.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    params = compiled.construct_params()
    processors = compiled._bind_processors
    values = {
        key: processors[key](value) if key in processors else value for key, value in params.items()
    }
    if compiled.positiontup is not None:
        return str(compiled), tuple(values[key] for key in compiled.positiontup)
    return str(compiled), values


def _batches(conn, stmt) -> Iterator[list[tuple]]:
    """The rows of ``stmt`` a batch at a time, from the DB-API cursor itself (no SQLAlchemy row
    objects: the columns are text made by the query); on PostgreSQL a server-side cursor."""
    sql, params = _driver_sql(conn, stmt)
    driver = conn.connection.driver_connection
    if conn.dialect.name == "postgresql":
        with driver.cursor() as settings:
            _for_export(settings)
        cursor = driver.cursor(name="clms_export")
    else:
        _sqlite_functions(driver)
        cursor = driver.cursor()
    try:
        cursor.execute(sql, params)
        while batch := cursor.fetchmany(BATCH):
            yield batch
    finally:
        cursor.close()


# --- XLSX ----------------------------------------------------------------------------------------


def xlsx_stream(session: Session, sheet: str, table: Table) -> Iterator[bytes]:
    """The XLSX workbook of one ``sheet`` holding ``table``, in chunks: the cells as
    :func:`clms.exports.xlsx_chunks` writes them (numbers, booleans and dates of their own kind,
    text inline and neutralised), each row's XML made by the query.

    The query writes each row's XML with U+0001 where the row's number goes (a character XML
    cannot carry, so no text holds it: :class:`xml_text` drops it), and Python writes the
    numbers in: a window function numbering the rows made the database sort them twice."""
    conn = session.connection()
    postgres = conn.dialect.name == "postgresql"
    row = _row_xml(table.columns, _xlsx_value)
    texts = [c.expr for c in table.columns if c.kind == "text"]
    if postgres and texts:
        # one look at all of a row's texts for what XML must escape or drop, rather than one
        # for each: when none has any, the texts are only neutralised
        plain = _row_xml(table.columns, _xlsx_plain)
        row = case((xml_plain(concat_all(*texts)), plain), else_=row)
    stmt = table.statement.with_only_columns(row).order_by(*table.order_by)
    if postgres:
        rows = _numbered_lines(_copy_rows(conn, stmt, _COPY_XML))
    else:
        rows = _numbered(_batches(conn, stmt))
    return xlsx_xml_chunks(sheet, table.header, rows)


def _row_xml(columns: Sequence[Column], value):
    """The XML of a row of ``columns``, each cell's value made by ``value(expr, kind)``."""
    cells = [
        _xlsx_cell(xlsx_column(index), value(column.expr, column.kind), column.kind)
        for index, column in enumerate(columns)
    ]
    return concat_all(_sql_text(f'<row r="{_ROW}">'), *cells, _sql_text("</row>"))


def _xlsx_plain(expr, kind: str):
    """:func:`_xlsx_value` of a text known to hold nothing XML escapes or drops."""
    return neutralised(expr) if kind == "text" else _xlsx_value(expr, kind)


# where a row's number goes in its XML: U+0001 (an SQL text may hold it as it is)
_ROW = "\x01"
# On PostgreSQL the rows' XML comes by COPY, twice as fast as a cursor's batches (900 MB for a
# million rows): as CSV whose delimiter and quote are characters no XML holds (xml_text drops
# them), so that a row is written as it is, but for a line break in a cell, for which COPY
# wraps the row in the quote character
_COPY_XML = "FORMAT csv, DELIMITER E'\\x02', QUOTE E'\\x03'"
_QUOTE = 3


def _numbered_lines(lines) -> Iterator[bytes]:
    """The rows' XML from COPY (:data:`_COPY_XML`, a line each), numbered from 2, in chunks."""
    part: list[bytes] = []
    n = 1
    mark = _ROW.encode()
    for line in lines:
        xml = bytes(line[1:-2] if line[0] == _QUOTE else line[:-1])
        n += 1
        part.append(xml.replace(mark, b"%d" % n))
        if len(part) == BATCH:
            yield b"".join(part)
            part.clear()
    if part:
        yield b"".join(part)


def _numbered(batches) -> Iterator[str]:
    """The rows' XML, a batch at a time, numbered from 2 (the header is row 1)."""
    n = 1
    for batch in batches:
        yield "".join([xml.replace(_ROW, str(n := n + 1)) for (xml,) in batch])


def _xlsx_value(expr, kind: str):
    """``expr`` as the text of its cell's value: a number, 1 or 0, a date's serial number, the
    text (neutralised and escaped); NULL for no cell."""
    if kind == "int":
        return cast(expr, String)
    if kind == "bool":
        return case((expr == true(), "1"), (expr == false(), "0"), else_=null())
    if kind == "date":
        return cast(utc_day_serial(expr), String)
    if kind == "words":  # an empty list is an empty text, as Python writes it
        return func.coalesce(xml_escaped(json_words(expr)), "")
    if kind == "rules":
        return func.coalesce(xml_escaped(json_rule_words(expr)), "")
    return xml_text(expr)


def _xlsx_cell(letters: str, value, kind: str):
    """The ``<c>`` element of ``value`` (:func:`_xlsx_value`) in column ``letters``, NULL for
    no cell (``||`` gives NULL when a part is NULL; :class:`concat_all` writes it as nothing)."""
    if kind in ("int", "bool", "date"):
        attrs = {"int": "", "bool": ' t="b"', "date": ' s="1"'}[kind]
        start, end = f'"{attrs}><v>', "</v></c>"
    else:
        start, end = '" t="inlineStr"><is><t xml:space="preserve">', "</t></is></c>"
    return _sql_text(f'<c r="{letters}{_ROW}{start}') + value + _sql_text(end)


def _sql_text(text: str):
    """A constant text written into the SQL (no parameter: PostgreSQL's COPY takes none)."""
    assert "'" not in text and "\\" not in text and "%" not in text
    return literal_column(f"'{text}'", String)


# --- SQL functions each database spells its own way ---------------------------------------------


class concat_all(FunctionElement):
    """Texts joined in one call (a NULL as nothing): a chain of ``||`` copies the text so far at
    each step, which for a row of a sheet cost more than everything else."""

    type = String()
    inherit_cache = True
    name = "concat_all"


@compiles(concat_all, "postgresql")
def _concat_all_pg(element, compiler, **kw):
    return f"concat({compiler.process(element.clauses, **kw)})"


@compiles(concat_all, "sqlite")
def _concat_all_sqlite(element, compiler, **kw):
    # printf('%s%s...'): SQLite before 3.44 has no concat(); at most 127 arguments
    n = len(element.clauses.clauses)
    assert n < 127, "printf takes at most 127 arguments"
    return f"printf('{'%s' * n}', {compiler.process(element.clauses, **kw)})"


class neutralised(FunctionElement):
    """Text with an apostrophe before a formula start, as :func:`clms.exports.neutralise`
    (OWASP, CSV injection); NULL stays NULL."""

    type = String()
    inherit_cache = True
    name = "neutralised"


# the formula starts, as a GLOB's character class and as a list of PostgreSQL texts
assert FORMULA_STARTS == ("=", "+", "-", "@", "\t", "\r")
_SQLITE_STARTS = "'[=+@' || char(9) || char(13) || '-]*'"
# PostgreSQL: the first character's code (ascii() of an empty text is 0), three times cheaper
# than comparing the text of ``left(x, 1)``
_PG_STARTS = "(" + ", ".join(str(ord(c)) for c in FORMULA_STARTS) + ")"
_APOSTROPHE = "'" * 4  # the SQL text of one apostrophe


@compiles(neutralised, "postgresql")
def _neutralised_pg(element, compiler, **kw):
    x = compiler.process(element.clauses, **kw)
    return f"(CASE WHEN ascii({x}) IN {_PG_STARTS} THEN {_APOSTROPHE} || {x} ELSE {x} END)"


@compiles(neutralised, "sqlite")
def _neutralised_sqlite(element, compiler, **kw):
    x = compiler.process(element.clauses, **kw)
    return f"(CASE WHEN {x} GLOB {_SQLITE_STARTS} THEN {_APOSTROPHE} || {x} ELSE {x} END)"


class utc_date_text(FunctionElement):
    """The ISO date (``YYYY-MM-DD``) of a UTC time column."""

    type = String()
    inherit_cache = True
    name = "utc_date_text"


@compiles(utc_date_text, "postgresql")
def _utc_date_text_pg(element, compiler, **kw):
    return f"to_char(({compiler.process(element.clauses, **kw)}) AT TIME ZONE 'UTC', 'YYYY-MM-DD')"


@compiles(utc_date_text, "sqlite")
def _utc_date_text_sqlite(element, compiler, **kw):
    # SQLite keeps UTC times as text, 'YYYY-MM-DD HH:MM:SS.ffffff'
    return f"substr({compiler.process(element.clauses, **kw)}, 1, 10)"


class utc_day_serial(FunctionElement):
    """The spreadsheet's serial number (days since 1899-12-30) of a UTC time column's date."""

    type = Integer()
    inherit_cache = True
    name = "utc_day_serial"


@compiles(utc_day_serial, "postgresql")
def _utc_day_serial_pg(element, compiler, **kw):
    value = compiler.process(element.clauses, **kw)
    return f"((({value}) AT TIME ZONE 'UTC')::date - DATE '1899-12-30')"


@compiles(utc_day_serial, "sqlite")
def _utc_day_serial_sqlite(element, compiler, **kw):
    value = compiler.process(element.clauses, **kw)
    return f"CAST(julianday(substr({value}, 1, 10)) - 2415018.5 AS INTEGER)"


class json_words(FunctionElement):
    """A JSON list's items joined with spaces, empty ones left out (as ODK writes a multiple
    choice); a JSON text as it is; NULL for nothing; neutralised (:class:`neutralised`) in a
    subquery, so that the list is read once."""

    type = String()
    inherit_cache = True
    name = "json_words"


class json_rule_words(FunctionElement):
    """The ``rule`` of each reason of a JSON list (an item that is no object: itself), joined
    with spaces, empty ones left out; NULL for nothing; neutralised as :class:`json_words`."""

    type = String()
    inherit_cache = True
    name = "json_rule_words"


# Python writes True as 'True': so do these
_PG_WORD = "CASE jsonb_typeof(v) WHEN 'boolean' THEN initcap(v #>> '{}') ELSE v #>> '{}' END"
_PG_ITEMS = (
    "(SELECT string_agg({word}, ' ' ORDER BY o) FROM (SELECT {item} AS v, o FROM "
    "jsonb_array_elements(CASE jsonb_typeof({x}) WHEN 'array' THEN {x} ELSE '[]'::jsonb END) "
    "WITH ORDINALITY AS items(e, o)) AS words "
    "WHERE v IS NOT NULL AND jsonb_typeof(v) <> 'null' AND v <> '\"\"'::jsonb)"
)


_PG_NEUTRALISED = (  # constants, no input
    f"(SELECT CASE WHEN ascii(w) IN {_PG_STARTS} THEN {_APOSTROPHE} || w ELSE w END "  # noqa: S608
    # OFFSET 0: kept a subquery, so that the list is read once, not once for each ``w``
    "FROM (SELECT {words} AS w OFFSET 0) AS joined)"
)


@compiles(json_words, "postgresql")
def _json_words_pg(element, compiler, **kw):
    x = compiler.process(element.clauses, **kw)
    items = _PG_ITEMS.format(word=_PG_WORD, item="e", x=x)
    words = f"(CASE jsonb_typeof({x}) WHEN 'string' THEN {x} #>> '{{}}' ELSE {items} END)"
    return _pg_short_or(x, "{x} -> {i}", _PG_NEUTRALISED.format(words=words))


#: lists up to this long of plain texts are joined without a subquery (:func:`_pg_short_or`)
_PG_SHORT = 3


def _pg_short_or(x: str, item: str, words: str) -> str:
    """The words of the JSON list ``x``: at once NULL for the commonest list, the empty one;
    joined by operators for a list of one to :data:`_PG_SHORT` ``item``s (``{x} -> {i}`` or
    its ``rule``) that are all non-empty JSON texts, the lists the forms and the classifier
    write (``x -> i`` is NULL past the end, and for a value that is no list, so nothing here
    can fail); else ``words``, the subquery that reads any list. A subquery costs three times
    the operators; both give the same text (tested)."""
    items = [item.format(x=x, i=i) for i in range(_PG_SHORT + 1)]
    plain = [f"jsonb_typeof({v}) = 'string' AND {v} <> '\"\"'::jsonb" for v in items]
    texts = [f"({v} #>> '{{}}')" for v in items]
    # the words start with the first text: neutralised by it
    apostrophe = f"CASE WHEN ascii({texts[0]}) IN {_PG_STARTS} THEN {_APOSTROPHE} ELSE '' END"
    whens = []
    for n in range(1, _PG_SHORT + 1):
        ok = " AND ".join([*plain[:n], f"{x} -> {n} IS NULL"])
        joined = " || ' ' || ".join(texts[:n])
        whens.append(f"WHEN {ok} THEN {apostrophe} || {joined}")
    return f"(CASE WHEN {x} = '[]'::jsonb THEN NULL {' '.join(whens)} ELSE {words} END)"


@compiles(json_rule_words, "postgresql")
def _json_rule_words_pg(element, compiler, **kw):
    x = compiler.process(element.clauses, **kw)
    item = "CASE jsonb_typeof(e) WHEN 'object' THEN e -> 'rule' ELSE e END"
    words = _PG_NEUTRALISED.format(words=_PG_ITEMS.format(word=_PG_WORD, item=item, x=x))
    return _pg_short_or(x, "{x} -> {i} -> 'rule'", words)


# SQLite: a function of this connection, in Python, remembering the lists it has seen (they
# repeat: a few hazard lists, a few reasons), where json_each's subquery per row cost more than
# all the other cells together
@compiles(json_words, "sqlite")
def _json_words_sqlite(element, compiler, **kw):
    return f"{_SQLITE_WORDS}({compiler.process(element.clauses, **kw)})"


@compiles(json_rule_words, "sqlite")
def _json_rule_words_sqlite(element, compiler, **kw):
    return f"{_SQLITE_RULE_WORDS}({compiler.process(element.clauses, **kw)})"


_SQLITE_WORDS, _SQLITE_RULE_WORDS = "clms_json_words", "clms_json_rule_words"


@functools.lru_cache(maxsize=4096)
def _words(text: str | None) -> str | None:
    value = None if text is None else json.loads(text)
    if isinstance(value, str):
        return neutralise(value)
    return _joined_words(value if isinstance(value, list) else [])


@functools.lru_cache(maxsize=4096)
def _rule_words(text: str | None) -> str | None:
    value = None if text is None else json.loads(text)
    items = value if isinstance(value, list) else []
    return _joined_words(r.get("rule") if isinstance(r, dict) else r for r in items)


def _joined_words(items) -> str | None:
    return neutralise(" ".join(str(v) for v in items if v not in (None, ""))) or None


class xml_text(FunctionElement):
    """Text neutralised (:class:`neutralised`) and made such that an XML element may hold it:
    the characters XML 1.0 cannot carry dropped (as :data:`clms.exports._NOT_XML`), ``&``,
    ``<`` and ``>`` escaped."""

    type = String()
    inherit_cache = True
    name = "xml_text"


class xml_escaped(FunctionElement):
    """Text (neutralised already) made such that an XML element may hold it, as
    :class:`xml_text`."""

    type = String()
    inherit_cache = True
    name = "xml_escaped"


_ESCAPES = "replace(replace(replace({x}, '&', '&amp;'), '<', '&lt;'), '>', '&gt;')"
# PostgreSQL: the control characters (tab and line breaks included) and the two non-characters,
# where a text needs a look before it goes into XML
_PG_CONTROLS = "\\u0001-\\u001f\\ufffe\\uffff"
_PG_CLEAN = (
    f"(CASE WHEN {{x}} ~ '[{_PG_CONTROLS}]' THEN regexp_replace({{x}}, "
    "'[\\u0001-\\u0008\\u000b\\u000c\\u000e-\\u001f\\ufffe\\uffff]', '', 'g') "
    "ELSE {x} END)"
)


class xml_plain(FunctionElement):
    """Whether a text holds nothing :class:`xml_text` would escape or drop (PostgreSQL)."""

    type = Boolean()
    inherit_cache = True
    name = "xml_plain"


@compiles(xml_plain, "postgresql")
def _xml_plain_pg(element, compiler, **kw):
    x = compiler.process(element.clauses, **kw)
    return f"({x} !~ '[&<>{_PG_CONTROLS}]')"


@compiles(xml_text, "postgresql")
def _xml_text_pg(element, compiler, **kw):
    neutral = _neutralised_pg(element, compiler, **kw)
    return "(" + _ESCAPES.format(x=_PG_CLEAN.format(x=neutral)) + ")"


@compiles(xml_escaped, "postgresql")
def _xml_escaped_pg(element, compiler, **kw):
    x = compiler.process(element.clauses, **kw)
    return "(" + _ESCAPES.format(x=_PG_CLEAN.format(x=x)) + ")"


# SQLite: two GLOBs find the rare text that needs any of it, and a Python function of the
# connection does it (three replace() calls on every text cost more than the rest of its cell)
_SQLITE_XML_SPECIAL = "'*[&<>\x01-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]*'"
_SQLITE_XML_TEXT, _SQLITE_XML_ESCAPED = "clms_xml_text", "clms_xml_escaped"


@compiles(xml_text, "sqlite")
def _xml_text_sqlite(element, compiler, **kw):
    x = compiler.process(element.clauses, **kw)
    return (
        f"(CASE WHEN {x} GLOB {_SQLITE_STARTS} OR {x} GLOB {_SQLITE_XML_SPECIAL} "
        f"THEN {_SQLITE_XML_TEXT}({x}) ELSE {x} END)"
    )


@compiles(xml_escaped, "sqlite")
def _xml_escaped_sqlite(element, compiler, **kw):
    x = compiler.process(element.clauses, **kw)
    return (
        f"(CASE WHEN {x} GLOB {_SQLITE_XML_SPECIAL} THEN {_SQLITE_XML_ESCAPED}({x}) ELSE {x} END)"
    )


def _xml_text(value):
    return None if value is None else _xml_escaped(neutralise(value))


def _xml_escaped(value):
    return None if value is None else escape(_NOT_XML.sub("", value))


def _sqlite_functions(driver) -> None:
    """The functions :class:`xml_text` calls on SQLite, on the DB-API connection ``driver``."""
    driver.create_function(_SQLITE_XML_TEXT, 1, _xml_text, deterministic=True)
    driver.create_function(_SQLITE_XML_ESCAPED, 1, _xml_escaped, deterministic=True)
    driver.create_function(_SQLITE_WORDS, 1, _words, deterministic=True)
    driver.create_function(_SQLITE_RULE_WORDS, 1, _rule_words, deterministic=True)
