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
  writer. No Python code runs per value.
- :func:`xlsx_stream`: the XLSX sheet, each row's XML (cells with their references, kinds,
  styles and escaped, neutralised text) made by the query, zipped as it comes by
  :func:`clms.exports.xlsx_xml_chunks`.

Both read in the session's transaction (the view has made it read-only) through a cursor that
holds one batch at a time, so memory stays flat however many rows there are; the view closes
the session when the stream ends or is abandoned.

JSON lists are expected to hold codes (text, numbers, booleans or nulls, as the parser stores
them); a nested list or object inside one is written as the database prints JSON, not as
Python would.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from sqlalchemy import Integer, String, case, cast, false, func, literal, null, over, true
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
    xlsx_chunks,
    xlsx_column,
    xlsx_xml_chunks,
)

#: rows read from the database at a time (SQLite's fetchmany, PostgreSQL's server-side cursor)
BATCH = 5000
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
        yield from csv_copy_chunks(_copy_rows(conn, stmt))
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
        return func.nullif(neutralised(json_words(expr)), "")
    if kind == "rules":
        return func.nullif(neutralised(json_rule_words(expr)), "")
    return func.nullif(neutralised(expr), "")


def neutralised(expr):
    """``expr`` (text) with an apostrophe before a formula start, as
    :func:`clms.exports.neutralise` (OWASP, CSV injection); NULL stays NULL."""
    first = func.substr(expr, 1, 1)
    return case((first.in_(FORMULA_STARTS), literal("'", String) + expr), else_=expr)


def _copy_rows(conn, stmt) -> Iterator[memoryview]:
    """Each row of ``stmt`` as PostgreSQL's COPY writes it in CSV (one line, ending ``\\n``)."""
    sql, params = _driver_sql(conn, stmt)
    copy_sql = f"COPY ({sql}) TO STDOUT WITH (FORMAT csv)"
    with (
        conn.connection.driver_connection.cursor() as cursor,
        cursor.copy(copy_sql, params) as copy,
    ):
        yield from copy


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
    text inline and neutralised), each row's XML made by the query."""
    conn = session.connection()
    number = cast(over(func.row_number(), order_by=table.order_by) + 1, String)
    parts = [literal('<row r="', String), number, literal('">', String)]
    for index, column in enumerate(table.columns):
        parts.append(func.coalesce(_xlsx_cell(xlsx_column(index), number, column), ""))
    parts.append(literal("</row>", String))
    row = parts[0]
    for part in parts[1:]:
        row = row + part
    stmt = table.statement.with_only_columns(row).order_by(*table.order_by)
    return xlsx_xml_chunks(sheet, table.header, _joined(conn, stmt))


def _joined(conn, stmt) -> Iterator[str]:
    for batch in _batches(conn, stmt):
        yield "".join([text for (text,) in batch])


def _xlsx_cell(letters: str, number, column: Column):
    """The ``<c>`` element of ``column`` in the row ``number`` (text), NULL for no cell."""
    expr, kind = column.expr, column.kind

    def ref(attrs: str):
        return literal(f'<c r="{letters}', String) + number + literal(f'"{attrs}>', String)

    if kind == "int":
        return ref("") + "<v>" + cast(expr, String) + "</v></c>"
    if kind == "bool":
        bit = case((expr == true(), "1"), (expr == false(), "0"), else_=null())
        return ref(' t="b"') + "<v>" + bit + "</v></c>"
    if kind == "date":
        return ref(' s="1"') + "<v>" + cast(utc_day_serial(expr), String) + "</v></c>"
    if kind == "words":
        expr = func.coalesce(json_words(expr), "")
    elif kind == "rules":
        expr = func.coalesce(json_rule_words(expr), "")
    text = xml_text(neutralised(expr))
    return ref(' t="inlineStr"') + '<is><t xml:space="preserve">' + text + "</t></is></c>"


# --- SQL functions each database spells its own way ---------------------------------------------


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
    choice); a JSON text as it is; NULL for nothing."""

    type = String()
    inherit_cache = True
    name = "json_words"


class json_rule_words(FunctionElement):
    """The ``rule`` of each reason of a JSON list (an item that is no object: itself), joined
    with spaces, empty ones left out; NULL for nothing."""

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


@compiles(json_words, "postgresql")
def _json_words_pg(element, compiler, **kw):
    x = compiler.process(element.clauses, **kw)
    items = _PG_ITEMS.format(word=_PG_WORD, item="e", x=x)
    return f"(CASE jsonb_typeof({x}) WHEN 'string' THEN {x} #>> '{{}}' ELSE {items} END)"


@compiles(json_rule_words, "postgresql")
def _json_rule_words_pg(element, compiler, **kw):
    x = compiler.process(element.clauses, **kw)
    item = "CASE jsonb_typeof(e) WHEN 'object' THEN e -> 'rule' ELSE e END"
    return _PG_ITEMS.format(word=_PG_WORD, item=item, x=x)


# json_each walks a list in its order; its atom is the SQL value of a scalar item
_SQLITE_ITEMS = (
    "(SELECT group_concat(CASE t WHEN 'true' THEN 'True' WHEN 'false' THEN 'False' ELSE a END, "
    "' ') FROM (SELECT {type} AS t, {atom} AS a FROM json_each(CASE json_type({x}) "
    "WHEN 'array' THEN {x} ELSE '[]' END) AS items) AS words WHERE a IS NOT NULL AND a <> '')"
)


@compiles(json_words, "sqlite")
def _json_words_sqlite(element, compiler, **kw):
    x = compiler.process(element.clauses, **kw)
    items = _SQLITE_ITEMS.format(type="items.type", atom="items.atom", x=x)
    return f"(CASE json_type({x}) WHEN 'text' THEN json_extract({x}, '$') ELSE {items} END)"


@compiles(json_rule_words, "sqlite")
def _json_rule_words_sqlite(element, compiler, **kw):
    x = compiler.process(element.clauses, **kw)
    kind = "CASE items.type WHEN 'object' THEN json_type(items.value, '$.rule') ELSE items.type END"
    atom = (
        "CASE items.type WHEN 'object' THEN json_extract(items.value, '$.rule') ELSE items.atom END"
    )
    return _SQLITE_ITEMS.format(type=kind, atom=atom, x=x)


class xml_text(FunctionElement):
    """Text as an XML element may hold it: the characters XML 1.0 cannot carry dropped (as
    :data:`clms.exports._NOT_XML`), ``&``, ``<`` and ``>`` escaped."""

    type = String()
    inherit_cache = True
    name = "xml_text"


_ESCAPES = "replace(replace(replace({x}, '&', '&amp;'), '<', '&lt;'), '>', '&gt;')"


@compiles(xml_text, "postgresql")
def _xml_text_pg(element, compiler, **kw):
    x = compiler.process(element.clauses, **kw)
    cleaned = (
        f"regexp_replace({x}, "
        "'[\\u0001-\\u0008\\u000b\\u000c\\u000e-\\u001f\\ufffe\\uffff]', '', 'g')"
    )
    return (
        "("
        + _ESCAPES.format(
            x=f"(CASE WHEN {x} ~ '[\\u0001-\\u001f\\ufffe\\uffff]' THEN {cleaned} ELSE {x} END)"
        )
        + ")"
    )


@compiles(xml_text, "sqlite")
def _xml_text_sqlite(element, compiler, **kw):
    x = compiler.process(element.clauses, **kw)
    # the Python function only for the rare text that holds such a character
    pattern = "'*[' || char(1) || '-' || char(31) || char(65534) || char(65535) || ']*'"
    cleaned = f"(CASE WHEN {x} GLOB {pattern} THEN {_SQLITE_XML_CLEAN}({x}) ELSE {x} END)"
    return "(" + _ESCAPES.format(x=cleaned) + ")"


_SQLITE_XML_CLEAN = "clms_xml_clean"


def _sqlite_functions(driver) -> None:
    """The functions :class:`xml_text` calls on SQLite, on the DB-API connection ``driver``."""
    driver.create_function(_SQLITE_XML_CLEAN, 1, _xml_clean, deterministic=True)


def _xml_clean(value):
    return None if value is None else _NOT_XML.sub("", value)
