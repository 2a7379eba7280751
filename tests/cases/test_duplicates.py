"""Possible duplicate children, shown to officers, and a merge that keeps every visit and case
history (clms.cases.duplicates, clms.cases.merge, the duplicates pages, the child page and API
for merged ids)."""

from __future__ import annotations

import datetime as dt
import itertools
import random
import re
import threading
from pathlib import Path

import pytest
from sqlalchemy import func, select

from clms.cases.duplicates import (
    Candidate,
    compare,
    match_names,
    pairs_in_village,
    possible_duplicates,
    typing_distance,
    word_allowance,
    word_keys,
)
from clms.cases.merge import mark_different, merge_children
from clms.cases.opening import open_case
from clms.db import session_scope
from clms.errors import Problem
from clms.i18n import catalogue
from clms.models import (
    Alert,
    AlertEvent,
    Case,
    CaseEvent,
    Child,
    ChildMerge,
    ChildVisit,
    Classification,
    DuplicateDismissal,
    Household,
    ServiceProvider,
    User,
    UserScope,
    Village,
)
from tests import builders
from tests.conftest import PASSWORD
from tests.factories import add_alert
from tests.submissions import child, household_xml

ROOT = Path(__file__).resolve().parents[2]
WORKING = {"work_activities": "own_farm", "work_hours_7d": 6}


# --- the similarity (pure) -----------------------------------------------------------------------


def kid(id_, name, birth_year=2013, sex="female", **kw) -> Candidate:
    return Candidate(id_, name, sex, birth_year, **kw)


@pytest.mark.parametrize(
    ("first", "second", "edits", "reordered"),
    [
        ("Aya Traoré", "Aya Traore", 0, False),  # accents
        ("AYA  traoré", "aya TRAORE", 0, False),  # case and spaces
        ("Traoré Aya", "Aya Traore", 0, True),  # word order
        ("Adjoua Kouassi", "Adjoua Kouasi", 1, False),  # a letter missing
        ("Aya Traore", "Aya Tarore", 1, False),  # two letters swapped
        ("Aya Traore", "Aya Traoré", 0, False),
        ("Adjoua Kouassi", "Adjowa Kouasi", 2, False),  # a letter in each word
        ("Kouassi Adjowa", "Adjoua Kouasi", 2, True),  # and another order
        ("Fatoumata Coulibaly", "Fatoumata Koulibali", 2, False),  # two in a long word
    ],
)
def test_similar_names_whatever_the_accents_order_and_a_typing_difference(
    first, second, edits, reordered
):
    match = match_names(kid(1, first).words, kid(2, second).words)
    assert (match.edits, match.reordered, match.extra) == (edits, reordered, ())


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("Aya Kone", "Ama Kone"),  # a short word must be the same: Aya and Ama are two names
        ("Awa Traore", "Aya Traore"),
        ("Adjoua Kouassi", "Adjowa Kuasi"),  # three letters
        ("Adjoua Kouassi", "Adjoua Kouame"),  # another family name
        ("Traore", "Aya Traore"),  # one word is not enough to allow an extra word
        ("Aya Traore", "Aya Marie Awa Traore"),  # two extra words
        ("Aya Traore", "Aya Marie Tarore"),  # an extra word and a typing difference
        ("", "Aya Traore"),
    ],
)
def test_names_that_are_not_similar(first, second):
    assert match_names(kid(1, first).words, kid(2, second).words) is None


def test_an_extra_first_name_is_similar():
    match = match_names(kid(1, "Aya Traore").words, kid(2, "Aya Marie Traore").words)
    assert match is not None and (match.edits, match.extra) == (0, ("marie",))
    assert not match.near_identical


def test_typing_distance_and_allowance():
    assert typing_distance("traore", "tarore") == 1  # a swap is one difference
    assert typing_distance("kouassi", "kouame") == 3
    assert typing_distance("", "aya") == 3
    assert [word_allowance("aya", "ayaa"), word_allowance("kone", "koné"),
            word_allowance("coulibaly", "koulibali")] == [0, 1, 2]  # fmt: skip


@pytest.mark.parametrize(
    ("years", "same"),
    [((2013, 2013), True), ((2013, 2014), True), ((2014, 2013), True), ((2013, 2015), False),
     ((2013, 2011), False)],
)  # fmt: skip
def test_birth_years_within_one_year(years, same):
    a, b = kid(1, "Aya Traore", years[0]), kid(2, "Traore Aya", years[1])
    assert (compare(a, b) is not None) is same


def test_an_unknown_birth_year_needs_near_identical_names():
    known = kid(1, "Mariam Coulibaly", 2012)
    assert compare(kid(2, "Coulibaly Mariam", None), known) is not None  # same words
    assert compare(kid(2, "Mariam Coulibali", None), known) is None  # a letter off
    assert compare(kid(2, "Mariam Awa Coulibaly", None), known) is None  # an extra word
    both_unknown = compare(kid(2, "Mariam Coulibaly", None), kid(3, "Mariam Coulibaly", None))
    assert both_unknown is not None
    assert "birth year not recorded on one record or both" in map(str, both_unknown.reasons)


def test_a_different_recorded_sex_rules_a_pair_out_an_unrecorded_one_does_not():
    assert compare(kid(1, "Aya Traore", sex="female"), kid(2, "Aya Traore", sex="male")) is None
    unknown = compare(kid(1, "Aya Traore", sex="female"), kid(2, "Aya Traore", sex=None))
    assert unknown is not None and "sex not recorded on one record or both" in map(
        str, unknown.reasons
    )


def test_score_and_reasons_in_words():
    best = compare(kid(1, "Aya Traoré", household_id=5, dob=dt.date(2013, 4, 2)),
                   kid(2, "Aya Traore", household_id=5, dob=dt.date(2013, 4, 2)))  # fmt: skip
    assert best.score == 100
    assert [str(r) for r in best.reasons] == [
        "same name", "born the same year (2013)", "same date of birth (2013-04-02)",
        "same sex recorded", "same household",
    ]  # fmt: skip
    weaker = compare(kid(1, "Adjoua Kouassi", 2012, household_id=5),
                     kid(2, "Kouasi Adjowa", 2013, sex=None, household_id=6))  # fmt: skip
    # 2 letters (-20), words in another order (-5), a year apart (-10), sex (-5), households (-5)
    assert weaker.score == 55
    assert [str(r) for r in weaker.reasons] == [
        "names differ by 2 letters", "words of the name in another order",
        "birth years one year apart (2012 and 2013)", "sex not recorded on one record or both",
        "different households of the same village",
    ]  # fmt: skip
    extra = compare(kid(1, "Aya Traore", household_id=5), kid(2, "Aya Marie Traore",
                                                              household_id=5))  # fmt: skip
    assert extra.score == 85 and "one record has an extra name: marie" in map(str, extra.reasons)
    other_dob = compare(kid(1, "Aya Traore", dob=dt.date(2013, 4, 2), household_id=5),
                        kid(2, "Aya Traore", dob=dt.date(2013, 9, 2), household_id=5))  # fmt: skip
    assert other_dob.score == 90


def test_two_words_within_their_allowance_always_share_a_key():
    rng = random.Random(7)
    letters = "abcdefghijklmnopqrstuvwxyz"
    for _ in range(3000):
        word = "".join(rng.choice(letters) for _ in range(rng.randint(1, 11)))
        typed = word
        for _ in range(rng.randint(1, 2)):
            typed = _mistype(rng, typed, letters)
        close = typed and typing_distance(word, typed) <= word_allowance(word, typed)
        if close:
            assert word_keys(word) & word_keys(typed), (word, typed)


def _mistype(rng, word: str, letters: str) -> str:
    i = rng.randrange(len(word) + 1)
    kind = rng.choice(("insert", "delete", "change", "swap"))
    if kind == "insert":
        return word[:i] + rng.choice(letters) + word[i:]
    if not word or i == len(word):
        return word
    if kind == "delete":
        return word[:i] + word[i + 1 :]
    if kind == "change":
        return word[:i] + rng.choice(letters) + word[i + 1 :]
    return word[:i] + word[i + 1 : i + 2] + word[i] + word[i + 2 :]


FIRST = ["aya", "awa", "ama", "adjoua", "akissi", "kouadio", "kouassi", "koffi", "yao",
         "mariam", "fatoumata", "aminata", "salimata", "drissa", "lassina", "ibrahim",
         "abdoulaye"]  # fmt: skip
LAST = ["traore", "kone", "coulibaly", "ouattara", "diabate", "kouassi", "kouame", "konan",
        "bamba", "toure", "sangare", "nguessan", "gnagne", "yeboue"]  # fmt: skip


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_index_finds_exactly_what_comparing_every_pair_finds(seed):
    rng = random.Random(seed)
    records = []
    for i in range(400):
        words = [rng.choice(FIRST), rng.choice(LAST)]
        if rng.random() < 0.1:
            words.insert(1, rng.choice(FIRST))
        if rng.random() < 0.1:
            words = [rng.choice(LAST + FIRST)]
        if rng.random() < 0.4:
            for _ in range(rng.randint(1, 2)):
                j = rng.randrange(len(words))
                words[j] = _mistype(rng, words[j], "aeioukntrsy") or words[j]
        if rng.random() < 0.3:
            rng.shuffle(words)
        year = rng.choice([2010, 2011, 2012, 2013, None])
        records.append(Candidate(i + 1, " ".join(words), rng.choice(["female", "male", None]),
                                 year, household_id=rng.randrange(60)))  # fmt: skip
    every_pair = [
        (a.id, b.id, s.score)
        for a, b in itertools.combinations(records, 2)
        if (s := compare(a, b)) is not None
    ]
    indexed = [(a.id, b.id, s.score) for a, b, s in pairs_in_village(records)]
    assert indexed == every_pair
    assert len(indexed) > 20  # the data does hold pairs of every kind


# --- the pairs an officer sees -------------------------------------------------------------------


_codes = itertools.count(1)


def add_kid(s, village: str, name: str, *, birth_year: int | None = 2013,
            sex: str | None = "female", household: Household | None = None,
            dob: dt.date | None = None) -> Child:  # fmt: skip
    """A child record (in a new household of ``village`` unless one is given)."""
    if household is None:
        household = builders.household(s, village, code=f"HH-{village}-{next(_codes):03d}")
    return builders.child(s, household, name, sex=sex, birth_year=birth_year, dob=dob)


def user(s, username: str) -> User:
    return s.scalar(select(User).where(User.username == username))


def names(page) -> list[tuple[str, str]]:
    return [(p.a.name, p.b.name) for p in page.pairs]


@pytest.fixture
def people(app, places, make_user):
    """olga: officer of CI-D1 (V1, V2); otto: officer of CI-D2 (V3, V4); sam: supervisor of
    CI-R1 (all four); ada: admin without a scope; bea (brand), mo (monitor), pat (provider)."""
    make_user("olga", "officer", areas=["CI-D1"])
    make_user("otto", "officer", areas=["CI-D2"])
    make_user("sam", "supervisor", areas=["CI-R1"])
    make_user("ada", "admin")
    make_user("bea", "brand", brand="BRAND-A")
    make_user("mo", "monitor", areas=["CI-D1"])
    with session_scope(app) as s:
        s.add(ServiceProvider(code="SOC-1", name="Soubré social services", kind="social_services"))
    make_user("pat", "provider", provider="SOC-1")


@pytest.fixture
def kids(app, people):
    """Records of V1, V2 and V3; their ids by a short name."""
    with session_scope(app) as s:
        made = {
            # V1: one pair (the same child in two households, words in another order)
            "aya": add_kid(s, "V1", "Aya Traoré", birth_year=2013),
            "aya2": add_kid(s, "V1", "Traore Aya", birth_year=2014),
            "aya_older": add_kid(s, "V1", "Aya Traore", birth_year=2011),  # 2 years: not her
            "aya_boy": add_kid(s, "V1", "Aya Traore", sex="male"),  # another sex: not her
            "ama": add_kid(s, "V1", "Ama Traore", birth_year=2013),  # another first name
            # V2: a pair an officer will mark as different children
            "adjoua": add_kid(s, "V2", "Adjoua Kouassi", birth_year=2012),
            "adjoua2": add_kid(s, "V2", "Adjoua Kouasi", birth_year=2012),
            # V3: the same name as in V1, in another village: not a pair with V1's
            "aya_v3": add_kid(s, "V3", "Aya Traore", birth_year=2013),
            "yao": add_kid(s, "V3", "Kouadio Yao", birth_year=2010, sex="male"),
            "yao2": add_kid(s, "V3", "Yao Kouadio", birth_year=None, sex="male"),
        }
        return {k: (v.id, v.child_uid) for k, v in made.items()}


def test_candidates_found_in_scope_and_not_found_outside_it(app, kids):
    with session_scope(app) as s:
        olga = possible_duplicates(s, user(s, "olga"))
        assert names(olga) == [("Adjoua Kouassi", "Adjoua Kouasi"), ("Aya Traoré", "Traore Aya")]
        assert [p.score for p in olga.pairs] == [85, 80] and olga.total == 2
        assert names(possible_duplicates(s, user(s, "otto"))) == [("Kouadio Yao", "Yao Kouadio")]
        assert possible_duplicates(s, user(s, "sam")).total == 3
        for nobody in ("ada", "bea", "mo", "pat"):
            assert possible_duplicates(s, user(s, nobody)).pairs == []
        v1 = possible_duplicates(s, user(s, "olga"), village="V1")
        assert names(v1) == [("Aya Traoré", "Traore Aya")]
        pair = v1.pairs[0]
        assert (pair.a.uid, pair.b.uid) == (kids["aya"][1], kids["aya2"][1])
        assert [str(r) for r in pair.reasons][:2] == [
            "same name, words in another order",
            "birth years one year apart (2013 and 2014)",
        ]
        # a village outside the scope is as missing as one that does not exist
        for village in ("V3", "NOPE"):
            with pytest.raises(Problem) as missing:
                possible_duplicates(s, user(s, "olga"), village=village)
            assert missing.value.status == 404


def test_an_admin_with_a_scope_sees_its_pairs(app, kids):
    with session_scope(app) as s:
        v3 = s.scalar(select(Village.id).where(Village.code == "V3"))
        s.add(UserScope(user_id=user(s, "ada").id, village_id=v3))
    with session_scope(app) as s:
        assert names(possible_duplicates(s, user(s, "ada"))) == [("Kouadio Yao", "Yao Kouadio")]


def test_pages_of_pairs(app, people):
    with session_scope(app) as s:
        for i in range(5):
            add_kid(s, "V1", f"Adjoua Kouassi{'abcde'[i]}", birth_year=2000 + 3 * i)
            add_kid(s, "V1", f"Kouassi{'abcde'[i]} Adjoua", birth_year=2000 + 3 * i)
    with session_scope(app) as s:
        olga = user(s, "olga")
        first = possible_duplicates(s, olga, per_page=2)
        assert (first.total, first.pages, len(first.pairs)) == (5, 3, 2)
        pages = [possible_duplicates(s, olga, page=n, per_page=2) for n in (1, 2, 3)]
        every = [p.key for page in pages for p in page.pairs]
        assert len(set(every)) == 5
        past = possible_duplicates(s, olga, page=4, per_page=2)  # past the end: the last page
        assert (past.page, [p.key for p in past.pairs]) == (3, [p.key for p in pages[2].pairs])
        with pytest.raises(Problem) as bad:
            possible_duplicates(s, olga, page=0)
        assert bad.value.status == 400


def test_a_pair_marked_different_is_not_shown_again(app, kids):
    with session_scope(app) as s:
        decision = mark_different(s, user(s, "olga"), kids["adjoua2"][1], kids["adjoua"][1])
        # stored lower id first, whichever way it was asked
        assert (decision.child_a_id, decision.child_b_id) == (kids["adjoua"][0], kids["adjoua2"][0])
    with session_scope(app) as s:
        again = mark_different(s, user(s, "olga"), kids["adjoua"][1], kids["adjoua2"][1])
        assert again.child_a_id == kids["adjoua"][0]
        assert s.scalar(select(func.count()).select_from(DuplicateDismissal)) == 1
        assert names(possible_duplicates(s, user(s, "olga"))) == [("Aya Traoré", "Traore Aya")]
        with pytest.raises(Problem) as out_of_scope:
            mark_different(s, user(s, "otto"), kids["aya"][1], kids["aya2"][1])
        assert out_of_scope.value.status == 404
        with pytest.raises(Problem) as same:
            mark_different(s, user(s, "olga"), kids["aya"][1], kids["aya"][1])
        assert same.value.status == 400


# --- merging -------------------------------------------------------------------------------------


def _visit(phone, version, code: str, end: str, **kid):
    xml = household_xml(version, household_code=code, end=f"{end}T10:30:00.000+00:00",
                        children=[child(**kid)])  # fmt: skip
    assert phone.submit(xml).status_code == 201


def _rows(s, model, child_id: int) -> int:
    return s.scalar(select(func.count()).select_from(model).where(model.child_id == child_id))


def test_merge_moves_everything_and_keeps_the_history_and_later_visits_follow(
    app, phone, version, process, people
):
    # one child recorded twice: in household 001, then in 002 with her names the other way round
    _visit(phone, version, "HH-V1-001", "2026-11-20", child_name="Aya Traoré", age=10)
    _visit(phone, version, "HH-V1-002", "2026-11-21", child_name="Traore Aya", age=11, **WORKING)
    _visit(phone, version, "HH-V1-002", "2026-11-22", child_name="Traore Aya", age=11, **WORKING)
    process()
    with session_scope(app) as s:
        kept = s.scalar(select(Child).where(Child.name == "Aya Traoré"))
        merged = s.scalar(select(Child).where(Child.name == "Traore Aya"))
        (alert,) = s.scalars(select(Alert)).all()
        assert alert.child_id == merged.id
        case = open_case(s, user(s, "olga"), alert.id)
        kept_id, merged_id, case_id, alert_id = kept.id, merged.id, case.id, alert.id
        kept_uid, merged_uid, case_version = kept.child_uid, merged.child_uid, case.version
        (pair,) = possible_duplicates(s, user(s, "olga")).pairs
        assert (pair.a.uid, pair.b.uid) == (kept_uid, merged_uid)
        assert (pair.a.visits, pair.b.visits) == (1, 2)
        assert pair.b.last_visit_at == dt.datetime(2026, 11, 22, 10, 30, tzinfo=dt.UTC)
        assert pair.b.open_case.id == case_id and pair.b.open_alert is None
        history_before = s.scalars(
            select(AlertEvent.action).where(AlertEvent.alert_id == alert_id).order_by(AlertEvent.id)
        ).all()

    with session_scope(app) as s:
        record = merge_children(
            s,
            user(s, "olga"),
            kept_uid,
            merged_uid,
            "  Same girl: the monitor wrote her names the other way round ",
        )
        assert record.moved == {"child_visits": 2, "classifications": 2, "alerts": 1, "cases": 1,
                                "duplicate_dismissals": 0}  # fmt: skip

    with session_scope(app) as s:
        assert _rows(s, ChildVisit, merged_id) == 0 and _rows(s, ChildVisit, kept_id) == 3
        assert _rows(s, Classification, merged_id) == 0
        assert _rows(s, Classification, kept_id) == 3
        assert s.get(Alert, alert_id).child_id == kept_id
        case = s.get(Case, case_id)
        assert case.child_id == kept_id and case.version == case_version + 1
        assert case.state == "verification"  # still open, nothing else changed
        merged = s.get(Child, merged_id)
        assert merged.merged_into_id == kept_id  # the row stays: its id leads to the child
        (row,) = s.scalars(select(ChildMerge)).all()
        assert (row.kept_child_id, row.merged_child_id, row.merged_uid) == (
            kept_id, merged_id, merged_uid)  # fmt: skip
        assert row.reason == "Same girl: the monitor wrote her names the other way round"
        assert row.merged_by_id == user(s, "olga").id
        # the history stays and says what happened
        events = s.scalars(
            select(AlertEvent).where(AlertEvent.alert_id == alert_id).order_by(AlertEvent.id)
        ).all()
        assert [e.action for e in events] == [*history_before, "child_merged"]
        assert events[-1].detail["merged_record"] == merged_uid
        case_events = s.scalars(
            select(CaseEvent).where(CaseEvent.case_id == case_id).order_by(CaseEvent.id)
        ).all()
        assert [e.action for e in case_events] == ["opened", "child_merged"]
        assert case_events[-1].detail["kept_record"] == kept_uid
        assert case_events[-1].detail["case_moved"] is True
        # merged records are no candidates any more
        assert possible_duplicates(s, user(s, "olga")).pairs == []

    # a later visit of household 002 names her as before: it lands on the kept child
    _visit(phone, version, "HH-V1-002", "2026-11-25", child_name="Traore Aya", age=11, **WORKING)
    process()
    with session_scope(app) as s:
        assert _rows(s, ChildVisit, merged_id) == 0 and _rows(s, ChildVisit, kept_id) == 4
        assert _rows(s, Alert, merged_id) == 0
        assert s.scalar(select(func.count()).select_from(Child)) == 2  # no third record


def test_merge_takes_the_facts_the_kept_record_lacks(app, people):
    with session_scope(app) as s:
        kept = add_kid(s, "V1", "Aya Traore", birth_year=2013, sex=None)
        merged = add_kid(s, "V1", "Aya Traore", birth_year=2014, dob=dt.date(2014, 2, 3))
        merge_children(s, user(s, "olga"), kept.child_uid, merged.child_uid, "same child")
        s.refresh(kept)
        assert (kept.sex, kept.dob, kept.birth_year, kept.birth_year_exact) == (
            "female", dt.date(2014, 2, 3), 2014, True)  # fmt: skip
        # what it knew stays as it was
        other = add_kid(s, "V1", "Awa Kone", birth_year=2010, sex="female")
        merged2 = add_kid(s, "V1", "Awa Kone", birth_year=2011, sex=None)
        merge_children(s, user(s, "olga"), other.child_uid, merged2.child_uid, "same child")
        s.refresh(other)
        assert (other.sex, other.birth_year, other.dob) == ("female", 2010, None)


@pytest.mark.parametrize(
    ("kept_category", "merged_category", "older", "stays"),
    [
        ("hazardous", "worst_form", "kept", "merged"),  # the graver stays, wherever it was
        ("worst_form", "at_risk", "merged", "kept"),
        ("hazardous", "hazardous", "merged", "merged"),  # equal: the older stays
        ("hazardous", "hazardous", "kept", "kept"),
    ],
)
def test_two_active_alerts_keep_the_graver_and_dismiss_the_other(
    app, people, kept_category, merged_category, older, stays
):
    early, late = dt.datetime(2025, 3, 1, tzinfo=dt.UTC), dt.datetime(2025, 3, 2, tzinfo=dt.UTC)
    with session_scope(app) as s:
        kept = add_kid(s, "V1", "Aya Traore")
        merged = add_kid(s, "V1", "Traore Aya")
        alerts = {
            "kept": add_alert(s, child=kept, category=kept_category,
                              created_at=early if older == "kept" else late),
            "merged": add_alert(s, child=merged, category=merged_category,
                                created_at=early if older == "merged" else late),
        }  # fmt: skip
        ids = {k: a.id for k, a in alerts.items()}
        merge_children(s, user(s, "olga"), kept.child_uid, merged.child_uid, "same child")
        kept_id = kept.id
    goes = "kept" if stays == "merged" else "merged"
    with session_scope(app) as s:
        staying, gone = s.get(Alert, ids[stays]), s.get(Alert, ids[goes])
        assert staying.status == "new" and staying.child_id == kept_id
        assert gone.status == "dismissed" and gone.child_id == kept_id
        assert gone.dismissed_reason == f"merged duplicate of alert {ids[stays]}"
        dismissed = s.scalar(
            select(AlertEvent).where(
                AlertEvent.alert_id == ids[goes], AlertEvent.action == "dismissed"
            )
        )
        assert dismissed.detail["reason"] == gone.dismissed_reason
        assert dismissed.user_id == user(s, "olga").id


def test_two_open_cases_are_refused_naming_both(app, people):
    with session_scope(app) as s:
        olga = user(s, "olga")
        kept, merged = add_kid(s, "V1", "Aya Traore"), add_kid(s, "V1", "Traore Aya")
        kept_case = open_case(s, olga, add_alert(s, child=kept).id)
        merged_case = open_case(s, olga, add_alert(s, child=merged).id)
        numbers = (kept_case.case_number, merged_case.case_number)
        uids = (kept.child_uid, merged.child_uid)
    with session_scope(app) as s:
        with pytest.raises(Problem) as refused:
            merge_children(s, user(s, "olga"), *uids, "same child")
        assert refused.value.key == "case.transition_refused" and refused.value.status == 409
        assert all(n in refused.value.message for n in numbers)
        s.rollback()
        assert s.scalar(select(func.count()).select_from(ChildMerge)) == 0
        assert s.scalar(select(Child.merged_into_id).where(Child.child_uid == uids[1])) is None
    # once one of the cases is closed, the merge goes through (a closed case moves too)
    with session_scope(app) as s:
        closed = s.scalar(select(Case).where(Case.case_number == numbers[1]))
        closed.state, closed.closed_at = "closed", dt.datetime.now(dt.UTC)
    with session_scope(app) as s:
        record = merge_children(s, user(s, "olga"), *uids, "same child")
        assert record.moved["cases"] == 1


@pytest.mark.parametrize("case_on", ["kept", "merged"])
def test_an_open_case_and_an_active_alert_the_alert_joins_the_case(app, people, case_on):
    with session_scope(app) as s:
        olga = user(s, "olga")
        records = {"kept": add_kid(s, "V1", "Aya Traore"), "merged": add_kid(s, "V1", "Traore Aya")}
        alert_on = "merged" if case_on == "kept" else "kept"
        case = open_case(s, olga, add_alert(s, child=records[case_on], category="hazardous").id)
        alert = add_alert(s, child=records[alert_on], category="worst_form")
        case_id, alert_id = case.id, alert.id
        merge_children(s, olga, records["kept"].child_uid, records["merged"].child_uid, "same")
        kept_id = records["kept"].id
    with session_scope(app) as s:
        alert = s.get(Alert, alert_id)
        assert alert.status == "case_opened" and alert.child_id == kept_id
        assert s.get(Case, case_id).child_id == kept_id
        joined = s.scalar(select(AlertEvent).where(AlertEvent.alert_id == alert_id,
                                                   AlertEvent.action == "case_opened"))  # fmt: skip
        assert joined.detail["case_id"] == case_id
        actions = s.scalars(select(CaseEvent.action).where(CaseEvent.case_id == case_id)
                            .order_by(CaseEvent.id)).all()  # fmt: skip
        assert actions == ["opened", "child_merged", "alert_linked"]


def test_the_alert_joins_the_open_case_not_a_closed_one_opened_later(app, people):
    """A closed case on the record kept, opened after the open case on the other record, is not
    where the active alert goes (the merge once linked the alert to the case it looked at last)."""
    with session_scope(app) as s:
        olga = user(s, "olga")
        kept, merged = add_kid(s, "V1", "Aya Traore"), add_kid(s, "V1", "Traore Aya")
        open_one = open_case(s, olga, add_alert(s, child=merged, category="hazardous").id)
        first = add_alert(s, child=kept, category="hazardous")
        closed = open_case(s, olga, first.id)
        closed.opened_at = open_one.opened_at + dt.timedelta(days=1)
        closed.state, closed.closed_at = "closed", dt.datetime.now(dt.UTC)
        s.flush()
        alert = add_alert(s, child=kept, category="worst_form")
        open_id, closed_id, alert_id = open_one.id, closed.id, alert.id
        merge_children(s, olga, kept.child_uid, merged.child_uid, "same child")
    with session_scope(app) as s:
        assert s.get(Alert, alert_id).status == "case_opened"
        linked = s.scalars(select(CaseEvent.case_id).where(CaseEvent.action == "alert_linked"))
        assert list(linked) == [open_id] and open_id != closed_id


def test_merge_refusals(app, kids):
    uids = {k: uid for k, (_id, uid) in kids.items()}
    with session_scope(app) as s:
        olga = user(s, "olga")
        with pytest.raises(Problem) as no_reason:
            merge_children(s, olga, uids["aya"], uids["aya2"], "   ")
        assert no_reason.value.status == 400 and set(no_reason.value.fields) == {"reason"}
        with pytest.raises(Problem) as nothing:
            merge_children(s, olga, "", "", "")
        assert set(nothing.value.fields) == {"keep", "reason"}
        with pytest.raises(Problem) as same:
            merge_children(s, olga, uids["aya"], uids["aya"], "same")
        assert set(same.value.fields) == {"keep"}
        with pytest.raises(Problem) as too_long:
            merge_children(s, olga, uids["aya"], uids["aya2"], "x" * 2001)
        assert set(too_long.value.fields) == {"reason"}
        with pytest.raises(Problem) as villages:
            merge_children(s, olga, uids["aya"], uids["adjoua"], "same")
        assert villages.value.status == 409 and "V1" in villages.value.message
        for who, a, b in (("otto", "aya", "aya2"), ("olga", "aya", "aya_v3"), ("olga", "aya", "x"),
                          ("ada", "aya", "aya2"), ("bea", "aya", "aya2")):  # fmt: skip
            with pytest.raises(Problem) as missing:
                merge_children(s, user(s, who), uids.get(a, a), uids.get(b, b), "same")
            assert missing.value.status == 404, who
        s.rollback()
    with session_scope(app) as s:
        merge_children(s, user(s, "olga"), uids["aya"], uids["aya2"], "same child")
    with session_scope(app) as s:
        for kept, merged in (("aya", "aya2"), ("aya2", "aya"), ("ama", "aya2")):
            with pytest.raises(Problem) as again:
                merge_children(s, user(s, "olga"), uids[kept], uids[merged], "same child")
            assert again.value.status == 409 and "already merged" in again.value.message


def test_records_found_different_from_the_merged_one_stay_apart_from_the_kept_one(app, people):
    with session_scope(app) as s:
        a = add_kid(s, "V1", "Aya Traore")
        b = add_kid(s, "V1", "Traore Aya")
        c = add_kid(s, "V1", "Aya Tarore", birth_year=2014)
        uids = (a.child_uid, b.child_uid, c.child_uid)
        olga = user(s, "olga")
        mark_different(s, olga, uids[1], uids[2])
        assert len(possible_duplicates(s, olga).pairs) == 2  # a-b and a-c
        record = merge_children(s, olga, uids[0], uids[1], "same child")
        assert record.moved["duplicate_dismissals"] == 1
        assert possible_duplicates(s, olga).pairs == []


def test_a_record_merged_into_one_merged_later_leads_to_the_last(app, people, client):
    with session_scope(app) as s:
        a, b, c = (add_kid(s, "V1", n) for n in ("Aya Traore", "Traore Aya", "Aya Traoré"))
        uids = (a.child_uid, b.child_uid, c.child_uid)
        merge_children(s, user(s, "olga"), uids[1], uids[2], "same child")  # c into b
        merge_children(s, user(s, "olga"), uids[0], uids[1], "same child")  # b into a
        assert s.scalar(select(Child.merged_into_id).where(Child.child_uid == uids[2])) == a.id
    login(client, "olga")
    response = client.get(f"/children/{uids[2]}")
    assert response.status_code == 303 and response.location.endswith(f"/children/{uids[0]}")


@pytest.mark.committing  # two threads, each with a connection of its own
def test_concurrent_merges_of_a_pair_let_exactly_one_win(app, people):
    with session_scope(app) as s:
        uids = (add_kid(s, "V1", "Aya Traore").child_uid, add_kid(s, "V1", "Traore Aya").child_uid)
    maker = app.extensions["clms_sessionmaker"]
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def merge(kept: str, merged: str) -> None:
        session = maker()
        try:
            me = user(session, "olga")
            session.commit()
            barrier.wait()
            merge_children(session, me, kept, merged, "same child")
            session.commit()
            outcomes.append("ok")
        except Problem as p:
            session.rollback()
            outcomes.append(p.code)
        finally:
            session.close()

    threads = [threading.Thread(target=merge, args=pair) for pair in (uids, uids[::-1])]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(outcomes) == ["409.5", "ok"], outcomes
    with session_scope(app) as s:
        assert s.scalar(select(func.count()).select_from(ChildMerge)) == 1
        merged = s.scalar(select(func.count()).select_from(Child).where(
            Child.merged_into_id.is_not(None)))  # fmt: skip
        assert merged == 1


# --- pages, roles and the API --------------------------------------------------------------------


def login(client, username: str) -> None:
    response = client.post("/login", data={"username": username, "password": PASSWORD})
    assert response.status_code == 302


def token(client, username: str) -> dict:
    response = client.post("/api/v1/sessions", json={"username": username, "password": PASSWORD})
    return {"Authorization": f"Bearer {response.json['token']}"}


@pytest.mark.parametrize("who", ["bea", "mo", "pat"])
def test_other_roles_may_not_use_the_pages(app, kids, client, who):
    login(client, who)
    uids = {"a": kids["aya"][1], "b": kids["aya2"][1]}
    assert client.get("/duplicates").status_code == 403
    form = {**uids, "keep": uids["a"], "reason": "same child"}
    assert client.post("/duplicates/merge", data=form).status_code == 403
    assert client.post("/duplicates/different", data=uids).status_code == 403
    with session_scope(app) as s:
        assert s.scalar(select(func.count()).select_from(ChildMerge)) == 0


def test_anyone_signed_out_is_sent_to_sign_in(kids, client):
    response = client.get("/duplicates")
    assert response.status_code == 302 and "/login" in response.location


def test_the_list_page(kids, client):
    login(client, "olga")
    page = client.get("/duplicates")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert kids["aya"][1] in html and kids["aya2"][1] in html
    assert kids["aya_v3"][1] not in html and kids["yao"][1] not in html  # otto's village
    assert "2 pairs to check" in html and "same name, words in another order" in html
    assert 'href="/duplicates"' in html  # the navigation links the page
    # no inline scripts or styles (the CSP; the one script, confirm.js, comes from a file),
    # every field labelled
    assert not re.search(r"<script(?![^>]*\bsrc=)", html) and "style=" not in html
    for field in re.findall(r'<textarea id="([^"]+)"', html):
        assert f'<label for="{field}"' in html
    assert html.count('type="radio"') == 4 and html.count('<label class="choice">') == 4
    v1 = client.get("/duplicates?village=V1").get_data(as_text=True)
    assert kids["aya"][1] in v1 and kids["adjoua"][1] not in v1
    assert client.get("/duplicates?village=V3").status_code == 404
    assert client.get("/duplicates?page=abc").status_code == 200


def test_the_list_page_in_french(kids, client):
    login(client, "olga")
    client.post("/language", data={"locale": "fr", "next": "/duplicates"})
    html = client.get("/duplicates").get_data(as_text=True)
    assert "Enfants peut-être enregistrés deux fois" in html
    assert "même nom, mots dans un autre ordre" in html and "2 paires à vérifier" in html


def test_merging_from_the_page(app, kids, client):
    login(client, "olga")
    a, b = kids["aya"][1], kids["aya2"][1]
    # a form with nothing chosen and no reason: both messages, next to their fields
    refused = client.post("/duplicates/merge", data={"a": a, "b": b, "reason": " ", "page": "1"})
    html = refused.get_data(as_text=True)
    assert refused.status_code == 400
    assert 'role="alert"' in html and f'href="#reason-{a}-{b}"' in html
    assert f'<p class="field-error" id="reason-{a}-{b}-error">is required</p>' in html
    assert f'id="keep-{a}-{b}-error">is required: choose the record to keep</p>' in html
    assert f'aria-describedby="reason-{a}-{b}-hint reason-{a}-{b}-error"' in html
    # a record that is not one of the pair counts as no choice
    stranger = kids["adjoua"][1]
    wrong = client.post("/duplicates/merge", data={"a": a, "b": b, "keep": stranger,
                                                   "reason": "same"})  # fmt: skip
    assert wrong.status_code == 400
    with session_scope(app) as s:
        assert s.scalar(select(func.count()).select_from(ChildMerge)) == 0

    # without any token, as every other form of the site: it goes through
    done = client.post("/duplicates/merge", data={"a": a, "b": b, "keep": b, "reason": "same",
                                                  "village": "V1", "page": "1"})  # fmt: skip
    assert done.status_code == 303 and done.location.endswith("/duplicates?village=V1&page=1")
    after = client.get(done.location).get_data(as_text=True)
    assert f"Records merged: {a} is now part of {b}" in after
    assert "No possible duplicates in this village." in after
    with session_scope(app) as s:
        assert s.scalar(select(Child.merged_into_id).where(Child.child_uid == a)) == kids["aya2"][0]

    # the merged record's page leads to the kept child; the API answers with the kept child
    moved = client.get(f"/children/{a}")
    assert moved.status_code == 303 and moved.location.endswith(f"/children/{b}")
    assert client.get(f"/children/{b}").status_code == 200
    api = client.get(f"/api/v1/children/{a}", headers=token(client, "olga"))
    assert api.status_code == 200
    assert api.json["child"]["child_id"] == b and api.json["child"]["merged_ids"] == [a]
    other = client.get(f"/api/v1/children/{a}", headers=token(client, "otto"))
    assert other.status_code == 404

    # merging it again (a stale page) is refused, saying why, on the list
    again = client.post("/duplicates/merge", data={"a": a, "b": b, "keep": b, "reason": "same"})
    assert again.status_code == 409 and "already merged" in again.get_data(as_text=True)


def test_a_refused_merge_is_said_at_the_pair(app, people, client):
    with session_scope(app) as s:
        olga = user(s, "olga")
        kept, merged = add_kid(s, "V1", "Aya Traore"), add_kid(s, "V1", "Traore Aya")
        numbers = [open_case(s, olga, add_alert(s, child=k).id).case_number
                   for k in (kept, merged)]  # fmt: skip
        a, b = kept.child_uid, merged.child_uid
    login(client, "olga")
    response = client.post("/duplicates/merge", data={"a": a, "b": b, "keep": a,
                                                      "reason": "same child"})  # fmt: skip
    html = response.get_data(as_text=True)
    assert response.status_code == 409
    assert f'id="pair-{a}-{b}"' in html and "dup-failed" in html
    assert all(n in html for n in numbers)
    assert "same child</textarea>" in html  # what was typed is kept
    assert f'value="{a}" required checked' in html


def test_out_of_scope_is_404_on_the_pages(app, kids, client):
    login(client, "otto")
    a, b = kids["aya"][1], kids["aya2"][1]
    form = {"a": a, "b": b, "keep": a, "reason": "same"}
    assert client.post("/duplicates/merge", data=form).status_code == 404
    assert client.post("/duplicates/different", data={"a": a, "b": b}).status_code == 404
    assert client.get(f"/children/{a}").status_code == 404
    with session_scope(app) as s:
        assert s.scalar(select(func.count()).select_from(ChildMerge)) == 0
        assert s.scalar(select(func.count()).select_from(DuplicateDismissal)) == 0


def test_marking_different_from_the_page(app, kids, client):
    login(client, "sam")
    a, b = kids["adjoua"][1], kids["adjoua2"][1]
    done = client.post("/duplicates/different", data={"a": a, "b": b, "page": "1"})
    assert done.status_code == 303 and done.location.endswith("/duplicates?page=1")
    html = client.get(done.location).get_data(as_text=True)
    assert "marked as different children" in html and f"pair-{a}-{b}" not in html
    assert "2 pairs to check" in html
    with session_scope(app) as s:
        assert s.get(DuplicateDismissal, (kids["adjoua"][0], kids["adjoua2"][0])) is not None


def test_every_message_has_its_french():
    """Every message of the duplicates code and page is in the French catalogue."""
    template = (ROOT / "clms/templates/duplicates_index.html").read_text(encoding="utf-8")
    messages = re.findall(r'_\(\s*"([^"]+)"', template) + re.findall(r"_\(\s*'([^']+)'", template)
    for singular, plural in re.findall(r'ngettext\(\s*"([^"]+)",\s*"([^"]+)"', template):
        messages += [singular, plural]
    for name in (
        "clms/cases/duplicates.py",
        "clms/cases/merge.py",
        "clms/web/duplicates_views.py",
    ):
        code = (ROOT / name).read_text(encoding="utf-8")
        for found in re.finditer(r'Msg\(\s*((?:"(?:[^"\\]|\\.)*"\s*)+)', code):
            messages.append("".join(re.findall(r'"((?:[^"\\]|\\.)*)"', found.group(1))))
    assert len(messages) > 60
    french = catalogue("fr")
    missing = sorted({m for m in messages if m not in french})
    assert missing == []
    for english in messages:  # the placeholders survive the translation
        translated = french[english]
        assert sorted(re.findall(r"%\(\w+\)\w|\{\w+\}", english)) == sorted(
            re.findall(r"%\(\w+\)\w|\{\w+\}", translated)), english  # fmt: skip
