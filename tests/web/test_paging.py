"""clms.paging, the one way every list pages: reading ``?page``/``?per_page`` (web and API),
checking them with the refusals the lists have always given, and keyset pages (the audit log).
Pure: no database, no application."""

from __future__ import annotations

import doctest

import pytest

from clms import paging
from clms.errors import Problem
from clms.i18n import translator
from clms.paging import Keyset, Page, Paging, Window, page_count

LIST = Paging(per_page=50, max_per_page=200)


def test_the_doctests():
    assert doctest.testmod(paging).failed == 0


def test_windows_and_pages():
    assert [page_count(n, 50) for n in (0, 1, 50, 51, 100, 101)] == [1, 1, 1, 2, 2, 3]
    window = LIST.check(3, 7)
    assert (window.offset, window.limit, window.pages(15)) == (14, 7, 3)
    assert Window(4, 2).cut(list(range(7))) == [6]
    assert Window(5, 2).cut(list(range(7))) == []
    assert LIST.check(999).page == 999  # past the last: an empty page, not the last one
    page = Page(rows=[], total=0, page=1, pages=1, per_page=50)
    assert not page.has_previous and not page.has_next


@pytest.mark.parametrize(
    ("args", "strict", "expected"),
    [
        ({}, False, (1, 50)),
        ({"page": "2", "per_page": "10"}, False, (2, 50)),  # a web page never reads per_page
        ({"page": "two"}, False, (1, 50)),
        ({"page": ""}, False, (1, 50)),
        ({"page": "0"}, False, (0, 50)),  # read as asked: the list refuses it
        ({"page": " 3 ", "per_page": " 10 "}, True, (3, 10)),
        ({"page": "", "per_page": ""}, True, (1, 50)),
    ],
)
def test_reading(args, strict, expected):
    window = LIST.read(args, strict=strict)
    assert (window.page, window.per_page) == expected


@pytest.mark.parametrize(
    ("args", "parameter", "message"),
    [
        ({"page": "two"}, "page", "Parameter 'page' must be a whole number 1 or more, not 'two'."),
        (
            {"per_page": "1.5"},
            "per_page",
            "Parameter 'per_page' must be a whole number between 1 and 200, not '1.5'.",
        ),
    ],
)
def test_the_api_refuses_what_is_not_a_whole_number(args, parameter, message):
    with pytest.raises(Problem) as refused:
        LIST.read(args, strict=True)
    assert refused.value.status == 400 and refused.value.message == message
    assert refused.value.details["parameter"] == parameter


@pytest.mark.parametrize(
    ("page", "per_page", "parameter", "message"),
    [
        (0, 50, "page", "Parameter 'page' must be 1 or more."),
        (1, 0, "per_page", "Parameter 'per_page' must be between 1 and 200."),
        (1, 201, "per_page", "Parameter 'per_page' must be between 1 and 200."),
    ],
)
def test_checking_refuses_a_page_below_one_and_a_size_out_of_range(
    page, per_page, parameter, message
):
    for plain in (False, True):
        with pytest.raises(Problem) as refused:
            Paging(50, 200, plain=plain).check(page, per_page)
        assert refused.value.message == message
        assert refused.value.details["parameter"] == parameter


def test_a_plain_refusal_stays_english_on_a_translated_page():
    french = translator("fr")
    with pytest.raises(Problem) as translated:
        Paging(20, 100).check(0)
    with pytest.raises(Problem) as plain:
        Paging(50, 200, plain=True).check(0)
    assert "doit valoir 1 ou plus" in translated.value.msg.render(french)
    assert "must be 1 or more" in plain.value.msg.render(french)


def test_a_fixed_size_list_and_a_clamped_one():
    fixed = Paging(50)
    assert fixed.read({"per_page": "10"}, strict=True).per_page == 50
    with pytest.raises(Problem):
        fixed.check(1, 51)
    clamped = Paging(50, clamp=True)
    assert [clamped.check(n, total=120).page for n in (-1, 0, 1, 3, 4, 999)] == [1, 1, 1, 3, 3, 3]
    assert clamped.check(7, total=0).page == 1
    first = Paging(20, 100, low_reads_first=True)
    assert [first.read({"page": v}).page for v in ("0", "-4", "x", "2")] == [1, 1, 1, 2]
    with pytest.raises(Problem):
        first.check(0)


def test_keyset_pages():
    log = Keyset(per_page=3)
    assert (log.fetch, log.read({}), log.read({"before": "x"}), log.read({"before": "0"})) == (
        4, None, None, 0)  # fmt: skip
    keys = list(range(10, 0, -1))  # newest first
    pages, cursor = [], None
    while True:
        found = [k for k in keys if cursor is None or k < cursor][: log.fetch]
        page = log.page(found, key=lambda k: k, cursor=cursor)
        pages.append(page.rows)
        if not page.has_next:
            break
        cursor = page.next
    assert pages == [[10, 9, 8], [7, 6, 5], [4, 3, 2], [1]]
    assert log.page([], key=lambda k: k, cursor=5).next is None
