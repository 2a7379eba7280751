"""Backup and restore: every table of the database in one portable, checked file.

``clms backup -o FILE`` writes a ZIP archive (``clms-backup`` format 1):

``manifest.json``
    ``format``, ``format_version``, ``created_at`` (UTC), ``schema_revision`` (the Alembic
    revision of the database), ``source_dialect`` (sqlite or postgresql), and ``tables``: in
    dependency order (a table after the tables it refers to), each with its ``name``, ``file``,
    ``columns`` (name and type), ``rows`` and the ``sha256`` of its part; ``files`` lists files
    kept outside the database (none: submission attachments and form media are in the database).
``tables/<name>.jsonl``
    One JSON object per row, column name -> value: binary columns in base64, datetimes in
    ISO 8601 UTC, dates ISO, JSON columns as JSON.

Every table is read in one read-only transaction (REPEATABLE READ on PostgreSQL, one WAL
snapshot on SQLite), so the backup is consistent while people keep working. The audit log is
copied as it is: its hash chain verifies on the restored database (``clms audit verify``).

``clms restore FILE`` writes a backup into an EMPTY database (any other is refused, so that
nothing held is ever overwritten): it checks every part's SHA-256 and row count first, migrates
the empty database to the backup's schema revision, inserts every row in one transaction (a
reference to a row inserted later, such as ``forms.live_version_id``, is set once that row is
in), counts the rows again before committing, resets PostgreSQL's id sequences, then brings the
schema to the current revision. A backup of SQLite restores into PostgreSQL and back: this is
the way a deployment moves from the embedded database to a server.

Not in the backup: the instance folder's keys (``secret_key``, ``credentials_key``, unless set in
the environment) and the scheduler's own job table. Keep ``credentials_key`` (or
``CLMS_CREDENTIALS_KEY``) with the backups, or the pull sources' credentials cannot be read
after a restore; keep it apart from them, since together they open those credentials.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import io
import json
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    Date,
    DateTime,
    Engine,
    LargeBinary,
    MetaData,
    Table,
    func,
    inspect,
    select,
    text,
)
from sqlalchemy import column as sql_column
from sqlalchemy import table as sql_table
from sqlalchemy.types import TypeEngine

from clms.db import READ_ONLY, Base
from clms.errors import DomainProblem
from clms.migrate import FOREIGN_TABLES, alembic_config, upgrade
from clms.models import UTCDateTime, utcnow

FORMAT = "clms-backup"
FORMAT_VERSION = 1
#: rows per INSERT batch on restore, and per fetch on backup
BATCH = 1000
#: tables whose rows a fresh migration writes: restore replaces them with the backup's
SEEDED = {"audit_head"}

Progress = Callable[[str, int, int], None]  # (table, rows done, rows of the table)


class BackupError(DomainProblem):
    """A backup that cannot be written or restored, and why (nothing was written;
    ``backup.refused``)."""

    KEY = "backup.refused"


@dataclass
class TablePart:
    name: str
    rows: int
    sha256: str
    columns: list[dict[str, str]] = field(default_factory=list)

    @property
    def file(self) -> str:
        return f"tables/{self.name}.jsonl"


@dataclass
class BackupResult:
    path: Path
    schema_revision: str
    tables: list[TablePart]

    @property
    def rows(self) -> int:
        return sum(t.rows for t in self.tables)


def current_revision(conn) -> str | None:
    """The Alembic revision the database is at (None: never migrated)."""
    if not inspect(conn).has_table("alembic_version"):
        return None
    return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def head_revision(engine: Engine) -> str:
    """The newest revision this code knows."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config(engine)).get_current_head()


def backup(engine: Engine, path: str | Path, progress: Progress | None = None) -> BackupResult:
    """Write every table of ``engine``'s database to ``path`` (see the module documentation)."""
    path = Path(path)
    tables = [t for t in Base.metadata.sorted_tables if t.name not in FOREIGN_TABLES]
    tmp = path.with_name(path.name + ".partial")
    parts: list[TablePart] = []
    try:
        revision = _snapshot(engine, tmp, tables, parts, progress)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    tmp.replace(path)  # a backup cut short never looks like a whole one
    return BackupResult(path, revision, parts)


def _snapshot(engine: Engine, tmp: Path, tables: list[Table], parts: list, progress) -> str:
    """Write the archive from one read transaction; returns the schema revision."""
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
        else:  # a deferred BEGIN: one WAL snapshot, no write lock taken
            conn = conn.execution_options(**{READ_ONLY: True})
        with conn.begin():
            if engine.dialect.name == "postgresql":
                conn.exec_driver_sql("SET TRANSACTION READ ONLY")
            revision = current_revision(conn)
            if revision is None:
                raise BackupError("The database has no schema yet: nothing to back up.")
            present = set(inspect(conn).get_table_names())
            counts = {
                t.name: conn.scalar(select(func.count()).select_from(t))
                for t in tables
                if t.name in present
            }
            with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as zf:
                for table in tables:
                    if table.name not in present:
                        continue
                    parts.append(_write_table(conn, zf, table, counts[table.name], progress))
                manifest = {
                    "format": FORMAT,
                    "format_version": FORMAT_VERSION,
                    "created_at": utcnow().isoformat(),
                    "schema_revision": revision,
                    "source_dialect": engine.dialect.name,
                    "tables": [
                        {
                            "name": p.name,
                            "file": p.file,
                            "rows": p.rows,
                            "sha256": p.sha256,
                            "columns": p.columns,
                        }
                        for p in parts
                    ],
                    "files": [],
                }
                zf.writestr("manifest.json", json.dumps(manifest, indent=2))
    return revision


def _write_table(conn, zf: zipfile.ZipFile, table: Table, total: int, progress) -> TablePart:
    order = list(table.primary_key.columns) or list(table.columns)
    digest, rows = hashlib.sha256(), 0
    columns = [{"name": c.name, "type": _kind(c.type)} for c in table.columns]
    with zf.open(f"tables/{table.name}.jsonl", "w", force_zip64=True) as out:
        result = conn.execution_options(yield_per=BATCH).execute(select(table).order_by(*order))
        for row in result:
            line = (
                json.dumps(
                    {c.name: _encode(row[i], c.type) for i, c in enumerate(table.columns)},
                    ensure_ascii=False,
                    separators=(",", ":"),
                )
                + "\n"
            ).encode()
            digest.update(line)
            out.write(line)
            rows += 1
            if progress and rows % BATCH == 0:
                progress(table.name, rows, total)
    if progress:
        progress(table.name, rows, total)
    return TablePart(table.name, rows, digest.hexdigest(), columns)


def _kind(type_: TypeEngine) -> str:
    if isinstance(type_, LargeBinary):
        return "binary"
    if isinstance(type_, UTCDateTime | DateTime):
        return "datetime"
    if isinstance(type_, Date):
        return "date"
    if isinstance(type_, JSON):
        return "json"
    return type_.__class__.__name__.lower()


def _encode(value: Any, type_: TypeEngine) -> Any:
    if value is None:
        return None
    kind = _kind(type_)
    if kind == "binary":
        return base64.b64encode(bytes(value)).decode("ascii")
    if kind == "datetime":
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC).isoformat()
    if kind == "date":
        return value.isoformat()
    return value


def _decode(value: Any, kind: str) -> Any:
    if value is None:
        return None
    if kind == "binary":
        return base64.b64decode(value)
    if kind == "datetime":
        return dt.datetime.fromisoformat(value)
    if kind == "date":
        return dt.date.fromisoformat(value)
    return value


# --- restore --------------------------------------------------------------------------------------


@dataclass
class RestoreResult:
    schema_revision: str
    upgraded_to: str | None
    rows: dict[str, int]


def read_manifest(zf: zipfile.ZipFile) -> dict:
    """The manifest of an open backup, checked for its format."""
    try:
        manifest = json.loads(zf.read("manifest.json"))
    except KeyError as e:
        raise BackupError("This is not a CLMS backup: it has no manifest.json.") from e
    except ValueError as e:
        raise BackupError(f"The backup's manifest.json is damaged: {e}.") from e
    if manifest.get("format") != FORMAT or manifest.get("format_version") != FORMAT_VERSION:
        raise BackupError(
            f"This is not a CLMS backup of format {FORMAT_VERSION} (its manifest says "
            f"{manifest.get('format')!r} {manifest.get('format_version')!r})."
        )
    return manifest


def verify_backup(zf: zipfile.ZipFile, manifest: dict, progress: Progress | None = None) -> None:
    """Check every part against the manifest: present, its SHA-256 and its row count."""
    for part in manifest["tables"]:
        name = part["name"]
        try:
            handle = zf.open(part["file"])
        except KeyError as e:
            raise BackupError(f"The backup is damaged: the part of table {name} is missing.") from e
        digest, rows = hashlib.sha256(), 0
        try:
            with handle:
                for line in handle:
                    digest.update(line)
                    rows += 1
        except (zipfile.BadZipFile, OSError, EOFError) as e:
            raise BackupError(f"The backup is damaged: table {name} cannot be read ({e}).") from e
        if digest.hexdigest() != part["sha256"]:
            raise BackupError(
                f"The backup is damaged: the part of table {name} does not match its SHA-256 "
                f"in the manifest. Nothing was restored."
            )
        if rows != part["rows"]:
            raise BackupError(
                f"The backup is damaged: table {name} has {rows} rows, the manifest says "
                f"{part['rows']}. Nothing was restored."
            )
        if progress:
            progress(f"check {name}", rows, rows)


def database_is_empty(engine: Engine) -> list[str]:
    """The tables of ``engine``'s database that hold rows (empty list: it is empty)."""
    with engine.connect() as conn:
        names = set(inspect(conn).get_table_names()) - FOREIGN_TABLES
        busy = []
        for name in sorted(names):
            if name == "alembic_version":
                continue
            stmt = select(func.count()).select_from(sql_table(name))
            if name == "audit_head":  # a fresh migration's chain head, nothing written yet
                stmt = stmt.where(sql_column("seq") != 0)
            if conn.scalar(stmt):
                busy.append(name)
        return busy


def restore(engine: Engine, path: str | Path, progress: Progress | None = None) -> RestoreResult:
    """Restore the backup at ``path`` into ``engine``'s empty database (module documentation).

    Raises :class:`BackupError` with what is wrong, having written nothing, for a damaged or
    foreign file, a database that is not empty, or a backup made by a newer CLMS.
    """
    path = Path(path)
    try:
        zf = zipfile.ZipFile(path)
    except FileNotFoundError as e:
        raise BackupError(f"There is no file {path}.") from e
    except (zipfile.BadZipFile, OSError) as e:
        raise BackupError(f"{path} is not a CLMS backup (not a readable ZIP file: {e}).") from e
    with zf:
        manifest = read_manifest(zf)
        revision = manifest["schema_revision"]
        _check_revision(engine, revision)
        busy = database_is_empty(engine)
        if busy:
            raise BackupError(
                "The database is not empty (rows in "
                + ", ".join(busy[:8])
                + (", ..." if len(busy) > 8 else "")
                + "): restore writes only into an empty database, so that nothing held is "
                "overwritten. Create a new database, point CLMS_DATABASE_URL at it and restore "
                "again."
            )
        verify_backup(zf, manifest, progress)
        with engine.connect() as conn:
            at = current_revision(conn)
        if at != revision:
            upgrade(engine, revision)
        rows = _load(engine, zf, manifest, progress)
    upgraded = None
    head = head_revision(engine)
    if revision != head:
        upgrade(engine, "head")
        upgraded = head
    return RestoreResult(revision, upgraded, rows)


def _check_revision(engine: Engine, revision: str) -> None:
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config(engine))
    try:
        known = script.get_revision(revision)
    except Exception:
        known = None
    if known is None:
        raise BackupError(
            f"The backup is at schema revision {revision}, which this CLMS does not know: it "
            "was made by a newer version. Restore it with that version (or newer)."
        )
    with engine.connect() as conn:
        at = current_revision(conn)
    if at is not None and at != revision:
        raise BackupError(
            f"The database is at schema revision {at}, the backup at {revision}: restore into a "
            "new database that was never migrated (do not run `clms init` on it first); it is "
            "brought to the backup's revision, filled, then upgraded to this version's schema."
        )


def _load(engine: Engine, zf: zipfile.ZipFile, manifest: dict, progress) -> dict[str, int]:
    """Insert every part in one transaction; a reference to a row of a table restored later
    (or of the same table) is inserted empty and set afterwards."""
    order = [p["name"] for p in manifest["tables"]]
    position = {name: i for i, name in enumerate(order)}
    done: dict[str, int] = {}
    with engine.connect() as conn:
        reflected = MetaData()
        reflected.reflect(bind=conn, only=[n for n in order if inspect(conn).has_table(n)])
        conn.rollback()  # end the reflection's transaction: the restore is one of its own
        missing = [n for n in order if n not in reflected.tables]
        if missing:
            raise BackupError(
                "The backup holds tables this database schema lacks: " + ", ".join(missing)
            )
        with conn.begin():
            later: list[tuple[Table, list[str], list[str], list[dict]]] = []
            for part in manifest["tables"]:
                name = part["name"]
                target = reflected.tables[name]
                kinds = {c["name"]: c["type"] for c in part["columns"]}
                unknown = [c for c in kinds if c not in target.columns]
                if unknown:
                    raise BackupError(
                        f"The backup's table {name} has columns the database lacks: "
                        + ", ".join(unknown)
                    )
                table = _typed(name, kinds, target)
                deferred = sorted(
                    {
                        fk.parent.name
                        for fk in target.foreign_keys
                        if position.get(fk.column.table.name, -1) >= position[name]
                        and fk.parent.nullable
                    }
                )
                pk = [c.name for c in target.primary_key.columns]
                if name in SEEDED:
                    conn.execute(table.delete())  # the fresh migration's seed row
                updates: list[dict] = []
                total, count, batch = part["rows"], 0, []
                for row in _rows(zf, part["file"], kinds):
                    if deferred:
                        values = {c: row[c] for c in deferred if row.get(c) is not None}
                        if values:
                            updates.append({**{f"pk_{k}": row[k] for k in pk}, **values})
                            row = {**row, **{c: None for c in deferred}}
                    batch.append(row)
                    if len(batch) >= BATCH:
                        conn.execute(table.insert(), batch)
                        count += len(batch)
                        batch = []
                        if progress:
                            progress(name, count, total)
                if batch:
                    conn.execute(table.insert(), batch)
                    count += len(batch)
                if progress:
                    progress(name, count, total)
                if updates:
                    later.append((table, pk, deferred, updates))
                done[name] = count
            for table, pk, deferred, updates in later:
                _set_later(conn, table, pk, deferred, updates)
            for part in manifest["tables"]:  # counted again, in the transaction, before commit
                table = reflected.tables[part["name"]]
                n = conn.scalar(select(func.count()).select_from(table))
                if n != part["rows"]:
                    raise BackupError(
                        f"Table {part['name']} holds {n} rows after the restore, the backup "
                        f"{part['rows']}: nothing was restored."
                    )
            if engine.dialect.name == "postgresql":
                _reset_sequences(conn, [reflected.tables[n] for n in order])
    return done


def _typed(name: str, kinds: dict[str, str], target: Table) -> Table:
    """A table object for inserting the backup's values: our own types for our columns (so
    datetimes, JSON and booleans are written the way the models read them), the database's
    for others."""
    ours = Base.metadata.tables.get(name)
    columns = []
    for column_name in kinds:
        model_col = ours.columns.get(column_name) if ours is not None else None
        type_ = model_col.type if model_col is not None else target.columns[column_name].type
        columns.append(Column(column_name, type_, key=column_name))
    return Table(name, MetaData(), *columns)


def _rows(zf: zipfile.ZipFile, file: str, kinds: dict[str, str]) -> Iterator[dict]:
    with zf.open(file) as handle:
        for line in io.TextIOWrapper(handle, encoding="utf-8"):
            raw = json.loads(line)
            yield {k: _decode(v, kinds.get(k, "")) for k, v in raw.items()}


def _set_later(conn, table: Table, pk: list[str], deferred: list[str], updates: list[dict]):
    from sqlalchemy import bindparam

    by_columns: dict[tuple[str, ...], list[dict]] = {}
    for u in updates:
        cols = tuple(c for c in deferred if c in u)
        by_columns.setdefault(cols, []).append(u)
    for cols, rows in by_columns.items():
        stmt = table.update().values({c: bindparam(c) for c in cols})
        for k in pk:
            stmt = stmt.where(table.c[k] == bindparam(f"pk_{k}"))
        conn.execute(stmt, rows)


def _reset_sequences(conn, tables: list[Table]) -> None:
    """Move each id sequence past the highest id restored (ids were inserted as they were)."""
    for table in tables:
        pk = list(table.primary_key.columns)
        if len(pk) != 1:
            continue
        column = pk[0].name
        seq = conn.execute(
            text("SELECT pg_get_serial_sequence(:t, :c)"), {"t": table.name, "c": column}
        ).scalar()
        if seq:
            top = select(func.max(table.c[column])).scalar_subquery()
            conn.execute(select(func.setval(seq, func.coalesce(top, 1), top.is_not(None))))


__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "BackupError",
    "BackupResult",
    "RestoreResult",
    "backup",
    "database_is_empty",
    "read_manifest",
    "restore",
    "verify_backup",
]
