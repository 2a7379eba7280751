"""A test in one transaction, rolled back at its end (the ``app`` fixture of tests/conftest.py).

The application reaches its database in two ways: sessions (the request's, the jobs' and the
commands', from ``app.extensions["clms_sessionmaker"]``) and connections of its own opened on the
engine (``app.extensions["clms_engine"]``: the audit entries of a request's reads, Digest nonces,
hotspot releases). During a test both get the test's one connection, opened on the application's
own engine in an outer transaction that the test ends with a rollback. This is SQLAlchemy's
"joining a session into an external transaction" (``join_transaction_mode="create_savepoint"``),
extended to the engine:

* the engine becomes a :class:`SharedConnection`, whose ``connect()`` and ``begin()`` lend the
  test's connection as a :class:`BorrowedConnection`, and the sessionmaker is bound to it;
* every transaction of a borrowed connection is a SAVEPOINT of the outer transaction: a commit
  releases it (what it wrote is seen by every later statement of the test, as a committed row
  is), a rollback or a close without commit rolls back to it (what it wrote is gone, as in
  production);
* a second real connection on the application's engine is refused with an error that names the
  way out (on SQLite it would wait forever for the write lock the test holds).

Savepoints nest, separate connections do not: a test may keep a session open (savepoint A)
while a request commits (savepoint B, released inside A). Ending A with a rollback would then undo
B's committed work too. So a transaction is followed by who wrote in it: one that wrote nothing
itself is simply released (there is nothing of its own to undo); one that wrote, with another
connection's writes inside it, cannot be undone alone and fails the test with
:class:`NotEmulated` (such a test needs real connections: ``@pytest.mark.committing``). A commit of
a transaction that is not the innermost one is released when the ones inside it end.

Nothing reaches the database's files: the tables stay empty for the next test, on SQLite and on
PostgreSQL alike. PostgreSQL's sequences are not transactional: they are set back at the end,
so that every test counts its ids from 1, as after ``TRUNCATE ... RESTART IDENTITY``.
"""

from __future__ import annotations

import re
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, event, inspect, text
from sqlalchemy.exc import InvalidRequestError
from sqlalchemy.inspection import _inspects

REFUSED = (
    "this test runs in one connection rolled back at its end (tests/transactions.py); a second "
    "connection to the database was asked for. A test that needs real, separate connections "
    "(threads, processes, a live server) is marked @pytest.mark.committing"
)
OTHER_THREAD = (
    "this test runs in one connection rolled back at its end (tests/transactions.py), which "
    "only the test's own thread may use; another thread asked for a connection. A test that "
    "needs real, separate connections (threads, processes, a live server) is marked "
    "@pytest.mark.committing"
)


class SecondConnection(RuntimeError):
    """A rolled-back test asked the application's engine for a second connection."""


class NotEmulated(RuntimeError):
    """A rollback that one shared connection cannot reproduce (see the module's documentation)."""


# statements that change no row: everything else counts as a write
_READ = re.compile(r"\s*(SELECT|SAVEPOINT|RELEASE|ROLLBACK|PRAGMA|EXPLAIN|SHOW)\b", re.I)
_WRITE_IN_WITH = re.compile(r"\b(INSERT|UPDATE|DELETE)\b", re.I)


def _writes(statement: str) -> bool:
    if _READ.match(statement):
        return False
    if statement.lstrip()[:4].upper() == "WITH":
        return bool(_WRITE_IN_WITH.search(statement))
    return True


class _Savepoint:
    __slots__ = ("name", "owner", "start", "active", "committed")

    def __init__(self, name: str, owner: BorrowedConnection, start: int):
        self.name, self.owner, self.start = name, owner, start
        self.active = True  # the owner has not ended it
        self.committed = False  # ended by a commit, not released yet (a transaction inside it)


class SharedConnection:
    """What the application takes for its engine during a rolled-back test: every ``connect()``
    lends the test's connection (:class:`BorrowedConnection`); ``url``, ``dialect`` and the rest
    are the real engine's. Keeps the savepoints of the borrowed transactions, in the database's
    order, and who wrote in each."""

    def __init__(self, engine: Engine, connection: Connection):
        self._engine = engine
        self._connection = connection
        self._stack: list[_Savepoint] = []  # open in the database, outermost first
        self._writers: list[int] = []  # the borrower of each run of writes, in order
        self._last: int | None = None
        self._count = 0
        self.executing: BorrowedConnection | None = None
        self.problems: list[str] = []
        self.pool = _Lent(engine.pool)
        self._thread = threading.get_ident()
        event.listen(connection, "before_cursor_execute", self._before_execute)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)

    def __repr__(self) -> str:
        return f"SharedConnection({self._engine!r})"

    def connect(self) -> BorrowedConnection:
        if threading.get_ident() != self._thread:
            self.problems.append(OTHER_THREAD)
            raise SecondConnection(OTHER_THREAD)
        borrowed = BorrowedConnection(self)
        self.pool.lent.add(borrowed)
        return borrowed

    @contextmanager
    def begin(self) -> Iterator[BorrowedConnection]:
        with self.connect() as conn, conn.begin():
            yield conn

    def dispose(self, close: bool = True) -> None:
        """Nothing to dispose of: the test's connection is closed when the test ends."""

    def close(self) -> None:
        event.remove(self._connection, "before_cursor_execute", self._before_execute)

    # --- who wrote ----------------------------------------------------------------------------

    def _before_execute(self, _conn, _cursor, statement, _params, _context, _many) -> None:
        if not _writes(statement):
            return
        writer = self.executing
        if writer is None:  # a statement not made through a borrowed connection's methods
            writer = self._stack[-1].owner if self._stack else None
        if writer is not None and id(writer) != self._last:
            self._writers.append(id(writer))
            self._last = id(writer)

    def _wrote(self, savepoint: _Savepoint) -> tuple[bool, bool]:
        """(the owner wrote in it, another borrower wrote in it)."""
        since = set(self._writers[savepoint.start :])
        mine = id(savepoint.owner)
        return mine in since, bool(since - {mine})

    # --- savepoints ---------------------------------------------------------------------------

    def open(self, owner: BorrowedConnection) -> _Savepoint:
        self._count += 1
        savepoint = _Savepoint(f"clms_test_{self._count}", owner, len(self._writers))
        self._connection.exec_driver_sql(f"SAVEPOINT {savepoint.name}")
        self._stack.append(savepoint)
        self._last = None  # the next write starts a run inside this savepoint
        return savepoint

    def commit(self, savepoint: _Savepoint) -> None:
        savepoint.active = False
        savepoint.committed = True
        self._release_ended()

    def rollback(self, savepoint: _Savepoint) -> None:
        savepoint.active = False
        mine, others = self._wrote(savepoint)
        if self._stack and self._stack[-1] is savepoint and not others:
            # the innermost savepoint, with only its owner's writes: undone exactly
            self._connection.exec_driver_sql(f"ROLLBACK TO SAVEPOINT {savepoint.name}")
            self._connection.exec_driver_sql(f"RELEASE SAVEPOINT {savepoint.name}")
            self._stack.pop()
            del self._writers[savepoint.start :]
            self._last = None
            self._release_ended()
        elif not mine:
            # nothing of its own to undo: what others committed inside it stays
            savepoint.committed = True
            self._release_ended()
        else:
            savepoint.committed = True  # keeps the stack consistent; the test fails
            problem = (
                "the code under test rolled back a transaction that wrote, inside which another "
                "connection of the application wrote too (or which is not the innermost one): "
                "one shared connection cannot undo the one without the other. Close the first "
                "transaction before the second starts, or mark the test @pytest.mark.committing"
            )
            self.problems.append(problem)
            self._release_ended()
            raise NotEmulated(problem)

    def _release_ended(self) -> None:
        while self._stack and self._stack[-1].committed:
            savepoint = self._stack.pop()
            self._connection.exec_driver_sql(f"RELEASE SAVEPOINT {savepoint.name}")


class _Dialect:
    """The engine's dialect as a borrowed connection gives it: the methods that take a connection
    (``has_table``: Alembic asks the dialect so) get the test's real one."""

    def __init__(self, dialect):
        self._dialect = dialect

    def __getattr__(self, name: str) -> Any:
        found = getattr(self._dialect, name)
        if not name.startswith("__") and callable(found):

            def call(*args, **kwargs):
                if args and isinstance(args[0], BorrowedConnection):
                    args = (args[0]._connection, *args[1:])
                return found(*args, **kwargs)

            return call
        return found


class _Lent:
    """The engine's pool as a rolled-back test sees it: ``checkedout()`` counts the borrowed
    connections not closed yet (what would be checked out of a real pool); the rest is the real
    pool's."""

    def __init__(self, pool):
        self._pool = pool
        self.lent: weakref.WeakSet[BorrowedConnection] = weakref.WeakSet()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pool, name)

    def checkedout(self) -> int:
        return sum(1 for borrowed in list(self.lent) if not borrowed.closed)


class BorrowedTransaction:
    """A borrowed connection's transaction (the outermost) or savepoint (``begin_nested``)."""

    def __init__(self, connection: BorrowedConnection, savepoint: _Savepoint, nested: bool):
        self.connection = connection
        self._savepoint = savepoint
        self.nested = nested

    @property
    def is_active(self) -> bool:
        return self._savepoint.active

    def __enter__(self) -> BorrowedTransaction:
        return self

    def __exit__(self, exc_type, _exc, _tb) -> None:
        if not self.is_active:
            return
        if exc_type is None:
            self.commit()
        else:
            self.rollback()

    def _inner(self) -> list[BorrowedTransaction]:
        stack = self.connection._transactions
        return stack[stack.index(self) + 1 :][::-1] if self in stack else []

    def commit(self) -> None:
        if not self.is_active:
            raise InvalidRequestError("This transaction is inactive")
        for inner in self._inner():
            inner.commit()
        self.connection._transactions.remove(self)
        self.connection._shared.commit(self._savepoint)

    def rollback(self) -> None:
        if not self.is_active:
            return
        for inner in self._inner():
            inner.rollback()
        self.connection._transactions.remove(self)
        self.connection._shared.rollback(self._savepoint)

    close = rollback


class BorrowedConnection:
    """The test's connection as one ``connect()`` of the engine gives it out.

    Behaves as a :class:`~sqlalchemy.Connection` of its own: ``begin()`` (or the first statement,
    as SQLAlchemy's autobegin) starts a transaction, ``begin_nested()`` a savepoint in it, both
    savepoints of the test's transaction; ``commit()`` releases them, ``rollback()`` and
    ``close()`` roll them back. Execution options set on it stay on it (``clms.db.read_only``
    marks a session's connection this way).
    """

    def __init__(self, shared: SharedConnection):
        self._shared = shared
        self._connection = shared._connection
        self._options: dict[str, Any] = {}
        self._transactions: list[BorrowedTransaction] = []  # active, outermost first
        self._closed = False

    def __getattr__(self, name: str) -> Any:  # dialect, info, connection, ...
        return getattr(self._connection, name)

    @property
    def engine(self) -> Any:
        return self._shared

    @property
    def dialect(self) -> Any:
        return _Dialect(self._connection.dialect)

    def __enter__(self) -> BorrowedConnection:
        return self

    def __exit__(self, *_exc) -> None:
        self.close()

    # --- transactions ---------------------------------------------------------------------------

    def begin(self) -> BorrowedTransaction:
        if self._transactions:
            raise InvalidRequestError(
                "a transaction is already begun on this connection (borrowed in a test)"
            )
        return self._start(nested=False)

    def begin_nested(self) -> BorrowedTransaction:
        if not self._transactions:
            self._start(nested=False)  # autobegin, as a Connection does
        return self._start(nested=True)

    def _start(self, nested: bool) -> BorrowedTransaction:
        if self._closed:
            raise InvalidRequestError("This borrowed connection is closed")
        transaction = BorrowedTransaction(self, self._shared.open(self), nested)
        self._transactions.append(transaction)
        return transaction

    def in_transaction(self) -> bool:
        return bool(self._transactions)

    def in_nested_transaction(self) -> bool:
        return len(self._transactions) > 1

    def get_transaction(self) -> BorrowedTransaction | None:
        return self._transactions[0] if self._transactions else None

    def get_nested_transaction(self) -> BorrowedTransaction | None:
        return self._transactions[-1] if len(self._transactions) > 1 else None

    def _get_required_transaction(self) -> BorrowedTransaction:
        transaction = self.get_transaction()
        if transaction is None:
            raise InvalidRequestError("connection is not in a transaction")
        return transaction

    def _get_required_nested_transaction(self) -> BorrowedTransaction:
        transaction = self.get_nested_transaction()
        if transaction is None:
            raise InvalidRequestError("connection is not in a nested transaction")
        return transaction

    def commit(self) -> None:
        if self._transactions:
            self._transactions[0].commit()

    def rollback(self) -> None:
        if self._transactions:
            self._transactions[0].rollback()

    def close(self) -> None:
        if not self._closed:
            try:
                self.rollback()
            finally:
                self._closed = True

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def invalidated(self) -> bool:
        return False

    def invalidate(self, exception: BaseException | None = None) -> None:
        self.close()

    # --- execution ----------------------------------------------------------------------------

    def execution_options(self, **options: Any) -> BorrowedConnection:
        self._options.update(options)
        return self

    def get_execution_options(self):
        return self._connection.get_execution_options().union(self._options)

    def _run(self, method: str, statement, parameters, execution_options):
        if self._closed:
            raise InvalidRequestError("This borrowed connection is closed")
        if not self._transactions:
            self._start(nested=False)  # autobegin, as a Connection does
        options = {**self._options, **(execution_options or {})}
        shared = self._shared
        before, shared.executing = shared.executing, self
        try:
            return getattr(self._connection, method)(
                statement, parameters, execution_options=options
            )
        finally:
            shared.executing = before

    def execute(self, statement, parameters=None, *, execution_options=None):
        return self._run("execute", statement, parameters, execution_options)

    def scalar(self, statement, parameters=None, *, execution_options=None):
        return self._run("scalar", statement, parameters, execution_options)

    def scalars(self, statement, parameters=None, *, execution_options=None):
        return self._run("scalars", statement, parameters, execution_options)

    def exec_driver_sql(self, statement, parameters=None, execution_options=None):
        return self._run("exec_driver_sql", statement, parameters, execution_options)


@_inspects(BorrowedConnection)
def _inspect_borrowed(borrowed: BorrowedConnection):
    """``sqlalchemy.inspect()`` of a borrowed connection (Alembic reads the version table so)."""
    return inspect(borrowed._connection)


@contextmanager
def rolled_back(app) -> Iterator[SharedConnection]:
    """Run the block with ``app``'s every connection in one transaction, rolled back after it."""
    engine: Engine = app.extensions["clms_engine"]
    sessions = app.extensions["clms_sessionmaker"]
    connection = engine.connect()
    outer = connection.begin()

    def refuse(*_args) -> None:
        raise SecondConnection(REFUSED)

    event.listen(engine, "checkout", refuse)
    shared = SharedConnection(engine, connection)
    app.extensions["clms_engine"] = shared
    sessions.configure(bind=shared)
    try:
        yield shared
    finally:
        event.remove(engine, "checkout", refuse)
        shared.close()
        app.extensions["clms_engine"] = engine
        sessions.configure(bind=engine)
        try:
            if outer.is_active:
                outer.rollback()
            if engine.dialect.name == "postgresql":
                restart_sequences(connection)
        finally:
            connection.close()


# every sequence of the schema back to 1 (one statement; setval is not undone by a rollback)
_RESTART = text(
    "SELECT setval(c.oid, 1, false) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE c.relkind = 'S' AND n.nspname = current_schema()"
)


def restart_sequences(connection: Connection) -> None:
    """Set every sequence of the schema back to its start, outside any transaction."""
    with connection.begin():
        connection.execute(_RESTART)
