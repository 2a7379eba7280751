"""Paging, one way for every list the server shows. Pure: no Flask, no database.

Numbered pages (:class:`Paging`)
    ``?page=N`` (from 1) and, where a client may choose the size (the API), ``?per_page=M``.
    Each list names its :class:`Paging`: its size, the largest size a client may ask for, and
    what a page out of range does. :meth:`Paging.read` reads the request's arguments,
    :meth:`Paging.check` checks the numbers (raising the ``request.invalid_parameter`` problem,
    naming the parameter) and gives the :class:`Window` the list's query reads (``offset``,
    ``limit``); the list answers a :class:`Page`. Once the list has counted its rows,
    :meth:`Window.within` brings a page past the last back to the last (a person who follows an
    old link, or types ``?page=999``, sees the last page and its true number, never "Page 999
    of 25" over an empty table); only the API keeps an empty page past the last, as a client
    reading pages until one is empty expects.
Keyset pages (:class:`Keyset`)
    For a list that can be deep (the audit log), newest first: ``?before=KEY`` starts the page
    below a key (a sequence number), so the database never reads and skips the rows of the pages
    before. The query reads :attr:`Keyset.fetch` rows (one more than a page, to know whether
    there are more) below the key; :meth:`Keyset.page` keeps a page of them and the key the next
    page starts below.

Keys of a sort order (:class:`Cursors`)
    For a deep list sorted by several columns (the alert queue by urgency: overdue, severity,
    deadline, id): ``?after=CURSOR`` reads the page that follows a row, ``?before=CURSOR`` the
    page that precedes one. A cursor is opaque to clients (URL-safe base64 of JSON) and holds
    the list and order it belongs to, the row's sort values (its id last, so no two rows tie)
    and the number of the page it leads to, shown as "Page N of M". :meth:`Cursors.read` checks
    it against the order's value kinds and refuses anything else as a
    ``request.invalid_parameter`` problem naming the parameter. It is not signed: it only says
    where to start in a list whose scope and filters the server applies again on every read,
    and holds nothing the reader has not seen on the page it came from.

The SQL that applies a window (``LIMIT``/``OFFSET``) or a key (``seq < :before``, or the rows
beyond a composite key: :func:`clms.keyset.beyond`) stays with each list's query.

>>> CASES = Paging(per_page=50, max_per_page=200)
>>> window = CASES.check(CASES.read({"page": "3"}).page)
>>> (window.page, window.per_page, window.offset, window.limit, window.pages(101))
(3, 50, 100, 50, 3)
>>> CASES.check(0)
Traceback (most recent call last):
...
clms.errors.Problem: 400.12 Parameter 'page' must be 1 or more.
>>> page = Page(rows=["a"], total=101, page=3, pages=3, per_page=50)
>>> (page.has_previous, page.has_next)
(True, False)
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from clms.errors import Problem, problem
from clms.i18n import Msg

T = TypeVar("T")


def page_count(total: int, per_page: int) -> int:
    """The pages ``total`` rows fill, ``per_page`` a page: at least one (an empty list has one,
    empty, page).

    >>> page_count(0, 50), page_count(50, 50), page_count(51, 50)
    (1, 1, 2)
    """
    return max(1, -(-total // per_page))


@dataclass(frozen=True)
class Window:
    """The rows of one numbered page: ``per_page`` rows from the ``offset``-th."""

    page: int
    per_page: int

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.per_page

    @property
    def limit(self) -> int:
        return self.per_page

    def pages(self, total: int) -> int:
        """The pages ``total`` rows fill at this size."""
        return page_count(total, self.per_page)

    def within(self, total: int) -> Window:
        """This window, or the last page's when it starts past the last of ``total`` rows (and
        the first when it is below 1).

        >>> Window(999, 50).within(1230).page, Window(2, 50).within(1230).page
        (25, 2)
        >>> Window(3, 50).within(0).page
        1
        """
        return Window(min(max(1, self.page), page_count(total, self.per_page)), self.per_page)

    def cut(self, rows: Sequence[T]) -> list[T]:
        """The page's rows of a list read whole (a list sorted in memory).

        >>> Window(2, 2).cut("abcde")
        ['c', 'd']
        """
        return list(rows[self.offset : self.offset + self.limit])


@dataclass
class Page(Generic[T]):
    """One numbered page of a list: its ``rows``, the list's ``total``, the page's number
    (from 1) and the number of ``pages`` (at least 1), and its size."""

    rows: list[T]
    total: int
    page: int
    pages: int
    per_page: int
    #: for a list paged by key (:class:`Cursors`): the cursor of the next page (``?after=``) and
    #: of the previous one (``?before=``); None where there is none
    next_key: str | None = field(default=None, kw_only=True)
    previous_key: str | None = field(default=None, kw_only=True)

    @property
    def has_previous(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.page < self.pages


@dataclass(frozen=True)
class Paging:
    """How one list is paged, and how its ``page`` and ``per_page`` are read and checked.

    ``per_page``: the size of a page. ``max_per_page``: the largest size a client may ask for
    (None: the size is fixed, and ``per_page`` is not read from a request).
    ``clamp``: a page below 1 is the first, and one past the last the last (else: a page below 1
    is refused, and one past the last is empty). ``low_reads_first``: in a request, a page below 1
    reads as the first (the list itself still refuses it). ``plain``: a refusal's detail is plain
    English text, not translated on the web pages (as it always was for those lists).
    """

    per_page: int
    max_per_page: int | None = None
    clamp: bool = False
    low_reads_first: bool = False
    plain: bool = False

    def read(self, args: Mapping[str, str], *, strict: bool = False) -> Window:
        """The page (and, where a client may choose it, the size) asked for in ``args`` (a
        request's query string or form), not yet checked: the list checks it (:meth:`check`).

        Web pages (``strict`` False) read ``page`` only: a value that is not a whole number is
        the first page. The API (``strict``) also reads ``per_page``, and refuses a value that
        is not a whole number, naming it; a missing or empty one is the default.

        >>> paging = Paging(per_page=50, max_per_page=200)
        >>> paging.read({"page": "two", "per_page": "10"})
        Window(page=1, per_page=50)
        >>> paging.read({"page": " 2", "per_page": "10"}, strict=True)
        Window(page=2, per_page=10)
        >>> paging.read({"page": "x"}, strict=True)
        Traceback (most recent call last):
        ...
        clms.errors.Problem: 400.12 Parameter 'page' must be a whole number 1 or more, not 'x'.
        """
        if strict:
            page = self._whole(args, "page", 1)
            per_page = self.per_page
            if self.max_per_page is not None:
                per_page = self._whole(args, "per_page", self.per_page)
        else:
            page, per_page = _lenient(args.get("page"), 1), self.per_page
        if self.low_reads_first:
            page = max(1, page)
        return Window(page, per_page)

    def check(self, page: int, per_page: int | None = None, *, total: int | None = None) -> Window:
        """The window of ``page`` at ``per_page`` rows (default: the list's size).

        Raises the ``request.invalid_parameter`` problem, naming the parameter, for a page below
        1 or a size outside 1 to ``max_per_page``; a list that clamps brings the page within 1
        and the last page of ``total`` rows instead.
        """
        per_page = self.per_page if per_page is None else per_page
        if self.clamp:
            page = max(1, page)
            if total is not None:
                page = min(page, page_count(total, per_page))
        if page < 1:
            raise self._refuse("page", Msg("must be 1 or more"))
        largest = self.max_per_page or self.per_page
        if not 1 <= per_page <= largest:
            raise self._refuse("per_page", Msg("must be between 1 and {n}", n=largest))
        return Window(page, per_page)

    def _whole(self, args: Mapping[str, str], name: str, default: int) -> int:
        raw = (args.get(name) or "").strip()
        if not raw:
            return default
        try:
            return int(raw)
        except ValueError:
            if name == "per_page":
                limits = Msg("between 1 and {n}", n=self.max_per_page or self.per_page)
            else:
                limits = Msg("1 or more")
            detail = Msg("must be a whole number {limits}, not {value!r}", limits=limits, value=raw)
            raise self._refuse(name, detail) from None

    def _refuse(self, parameter: str, detail: Msg) -> Problem:
        return problem(
            "request.invalid_parameter",
            parameter=parameter,
            detail=str(detail) if self.plain else detail,
        )


@dataclass
class KeysetPage(Generic[T]):
    """One page of a list paged by key: its ``rows``, the key it started below (``cursor``;
    None: the first page) and the key the next page starts below (``next``; None: the last)."""

    rows: list[T]
    cursor: int | None
    next: int | None

    @property
    def has_next(self) -> bool:
        return self.next is not None


@dataclass(frozen=True)
class Keyset:
    """A list paged by key, newest first: each page starts below the key (``?before=``, by
    default) of the last row of the page before.

    >>> log = Keyset(per_page=2)
    >>> cursor = log.read({"before": "90"})
    >>> rows = [89, 75, 60]  # what the query read: log.fetch rows with a key below 90
    >>> log.page(rows, key=lambda row: row, cursor=cursor)
    KeysetPage(rows=[89, 75], cursor=90, next=75)
    """

    per_page: int
    parameter: str = "before"

    @property
    def fetch(self) -> int:
        """The rows the query reads: one more than a page, to know whether there are more."""
        return self.per_page + 1

    def read(self, args: Mapping[str, str], *, strict: bool = False) -> int | None:
        """The key the page starts below; None (the first page) when it is missing, or not a
        whole number and not ``strict``: ``strict`` refuses it, naming the parameter.

        >>> Keyset(per_page=2).read({"before": "x9"}, strict=True)
        Traceback (most recent call last):
        ...
        clms.errors.Problem: 400.12 Parameter 'before' must be a whole number 1 or more, not 'x9'.
        """
        raw = (args.get(self.parameter) or "").strip()
        if strict and raw and not (raw.isascii() and raw.isdigit() and 0 < int(raw) < 2**63):
            detail = Msg("must be a whole number {limits}, not {value!r}", limits=Msg("1 or more"),
                         value=raw[:40])  # fmt: skip
            raise problem("request.invalid_parameter", parameter=self.parameter, detail=detail)
        return _lenient(raw or None, None)

    def page(self, rows: Sequence[T], *, key: Callable[[T], int], cursor: int | None) -> KeysetPage:
        """The page of ``rows`` (at most :attr:`fetch` of them, read below ``cursor``)."""
        kept = list(rows[: self.per_page])
        more = len(rows) > self.per_page
        return KeysetPage(kept, cursor, key(kept[-1]) if more and kept else None)


#: the kinds of value a cursor may hold, each checked on reading; "?" after one: or None
KINDS = ("int", "bool", "str", "datetime")
#: the longest cursor read (a few sort values and an id fit in far less)
MAX_CURSOR = 600


@dataclass(frozen=True)
class Key:
    """Where a page of a list paged by key starts: after (or, ``backward``, before) the row whose
    sort values are ``values`` (its id last), and the number of the page it leads to."""

    order: str
    values: tuple
    page: int
    backward: bool = False


@dataclass(frozen=True)
class Cursors:
    """The cursors of one list paged by composite key: ``?after=`` and ``?before=``.

    ``name`` names the list in its cursors; ``orders`` gives, for each order the list can be
    read in, the kinds of its key's values (:data:`KINDS`, "?" for a value that may be missing).

    >>> queue = Cursors("alerts", {"urgency": ("bool", "int", "datetime", "int")})
    >>> due = dt.datetime(2026, 12, 1, 8, 30, tzinfo=dt.UTC)
    >>> cursor = queue.cursor("urgency", (True, 4, due, 1234), page=7)
    >>> key = queue.read({"after": cursor}, "urgency")
    >>> key.values == (True, 4, due, 1234), key.page, key.backward
    (True, 7, False)
    >>> queue.read({"after": "abc"}, "urgency")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    clms.errors.Problem: 400.12 Parameter 'after' is not a cursor of this list: ...
    >>> queue.read({}, "urgency") is None
    True
    """

    name: str
    orders: Mapping[str, tuple[str, ...]]
    after: str = "after"
    before: str = "before"
    plain: bool = False

    def cursor(self, order: str, values: Sequence, *, page: int) -> str:
        """The cursor of the page ``page`` that starts after (or, read with ``?before=``, ends
        before) the row whose key is ``values``."""
        kinds = self.orders[order]
        if len(values) != len(kinds):
            raise ValueError(f"{order}: {len(kinds)} values expected, not {len(values)}")
        body = [f"{self.name}:{order}", page, *(_dump(v) for v in values)]
        raw = json.dumps(body, separators=(",", ":"), ensure_ascii=True).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    def read(self, args: Mapping[str, str], order: str) -> Key | None:
        """The key of ``args`` (``after`` or ``before``; None: neither, the first page), checked
        against ``order``: a cursor that is not one of this list and order is refused, naming
        the parameter."""
        after, before = (args.get(self.after) or "").strip(), (args.get(self.before) or "").strip()
        if after and before:
            raise self._refuse(self.before, Msg("cannot be given with '{other}'", other=self.after))
        if not (after or before):
            return None
        parameter, raw = (self.before, before) if before else (self.after, after)
        values = self._decode(raw, parameter, order)
        return Key(order, values[1:], values[0], backward=bool(before))

    def _decode(self, raw: str, parameter: str, order: str) -> tuple:
        try:
            if len(raw) > MAX_CURSOR:
                raise ValueError("too long")
            body = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
        except (ValueError, binascii.Error, UnicodeDecodeError):
            raise self._refuse(parameter, _NOT_OURS) from None
        if not (isinstance(body, list) and len(body) >= 2 and isinstance(body[0], str)):
            raise self._refuse(parameter, _NOT_OURS)
        name, _colon, its_order = body[0].partition(":")
        if name != self.name or its_order not in self.orders:
            raise self._refuse(parameter, _NOT_OURS)
        if its_order != order:
            raise self._refuse(
                parameter, Msg("belongs to another order of the list: start from its first page")
            )
        page, values, kinds = body[1], body[2:], self.orders[order]
        if not (type(page) is int and 1 <= page <= 10**9) or len(values) != len(kinds):
            raise self._refuse(parameter, _NOT_OURS)
        try:
            return (page, *(_load(v, kind) for v, kind in zip(values, kinds, strict=True)))
        except (TypeError, ValueError):
            raise self._refuse(parameter, _NOT_OURS) from None

    def _refuse(self, parameter: str, detail: Msg) -> Problem:
        return problem(
            "request.invalid_parameter",
            parameter=parameter,
            detail=str(detail) if self.plain else detail,
        )


_NOT_OURS = Msg(
    "is not a cursor of this list: follow the links of a page, or start from its first page"
)


def _dump(value):
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            raise ValueError("a cursor's datetime must carry its time zone")
        return value.astimezone(dt.UTC).isoformat()
    if value is None or isinstance(value, bool | int | str):
        return value
    raise TypeError(f"a cursor cannot hold {type(value).__name__}")


def _load(value, kind: str):
    """``value`` read from a cursor as ``kind`` (:data:`KINDS`; "?": or None); ValueError or
    TypeError when it is not one."""
    if kind.endswith("?"):
        if value is None:
            return None
        kind = kind[:-1]
    if kind == "bool" and type(value) is bool:
        return value
    if kind == "int" and type(value) is int and abs(value) < 2**63:
        return value
    if kind == "str" and isinstance(value, str) and len(value) <= 300:
        return value
    if kind == "datetime" and isinstance(value, str):
        moment = dt.datetime.fromisoformat(value)
        if moment.tzinfo is None:
            raise ValueError("no time zone")
        return moment
    raise TypeError(f"not {kind}")


def _lenient(raw: str | None, default):
    """A whole number, or ``default`` when ``raw`` is missing or not one (as a web page reads
    ``?page=``)."""
    if raw is None:
        return default
    try:
        return int(raw)
    except (TypeError, ValueError):
        return default


__all__ = ["Cursors", "Key", "Keyset", "KeysetPage", "Page", "Paging", "Window", "page_count"]
