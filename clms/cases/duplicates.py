"""Possible duplicate children, and merging two records found to be the same child.

A monitor who mistypes a name, writes the words of a name in another order, or records a child in
a second household of the village makes a second record of the same child: its visits, alerts and
cases are split in two, and a child in child labour may be counted twice or followed up half.
Officers see the pairs of records that may be the same child and either merge them (one record
is kept and gets everything the other had) or mark them as different children.

**The rule** (pure, :func:`compare`): two records are a possible duplicate when they are of the
same village (the village of the child's household), neither was merged already, the recorded sexes
do not differ, and

- their names are *similar*: the same words after folding case and accents, in any order, with at
  most two letters of typing difference in all (an inserted, missing, changed or swapped letter;
  at most one in a word of 4 to 7 letters, two in a longer word, none in a word of 3 letters or
  fewer: "Aya" and "Ama" are different names), or one name has one extra word (a second first name)
  and is otherwise the same; and
- their birth years are at most one year apart (an age in completed years moves the estimated
  birth year by one around a birthday); when a birth year is unknown, only *near-identical* names
  count: the same words, in any order, without a letter of difference or an extra word.

Each pair gets a score out of 100 (100: same household, same name, same year, same sex, same date
of birth; less for each difference, see :func:`compare`) and the reasons in words.

**Finding them at scale** (:func:`possible_duplicates`): one query reads the records in the
user's scope ordered by village and birth year; records are compared in Python only within a
village, and within it only those whose birth years are at most one apart and whose names share
a word or a word within the allowed typing difference (an index of each word and of its variants
with one or two letters deleted: two words within *k* typing differences always share a variant
with at most *k* letters deleted from each). Work grows with the records and the similar pairs,
never with the square of the scope.

**Deciding** on a pair, merging the two records or marking them different children, is
:mod:`clms.cases.merge`.
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from clms.audit import record_read
from clms.errors import problem
from clms.i18n import Msg
from clms.models import (
    ACTIVE_ALERT_STATUSES,
    OPEN_CASE_STATES,
    Alert,
    Case,
    Child,
    ChildVisit,
    DuplicateDismissal,
    Household,
    User,
    Village,
    Visit,
)
from clms.paging import Page, Paging
from clms.scope import village_in_scope, village_scope_condition
from forms.parse import name_key

PER_PAGE = 20
MAX_PER_PAGE = 100
#: the list's pages; the web page reads a page below 1 as the first (its forms post it back)
DUPLICATE_PAGING = Paging(PER_PAGE, MAX_PER_PAGE, low_reads_first=True)
MAX_TYPING_DIFFERENCE = 2  # letters, in the whole name


# --- the similarity (pure) ---------------------------------------------------------------------


@dataclass(eq=False)
class Candidate:
    """What the rule reads of one child record: plain data, no database.

    ``name`` may be the name as written or its folded key (``Child.name_key``): it is folded
    again here, which changes nothing in a key.

    >>> Candidate(1, "Traoré  Aya").words
    ('traore', 'aya')
    """

    id: int
    name: str
    sex: str | None = None
    birth_year: int | None = None
    dob: dt.date | None = None
    household_id: int | None = None
    words: tuple[str, ...] = field(init=False)
    #: the words in alphabetical order: equal for the same name in any order
    canonical: str = field(init=False)

    def __post_init__(self):
        self.words, self.canonical = _folded(self.name or "")


@functools.lru_cache(maxsize=65536)  # names repeat: folding each again costs more than a look-up
def _folded(name: str) -> tuple[tuple[str, ...], str]:
    words = tuple(name_key(name).split())
    return words, " ".join(sorted(words))


@dataclass(frozen=True)
class NameMatch:
    """How two names compare: letters of typing difference, words in another order, and the
    words one name has that the other has not (at most one)."""

    edits: int
    reordered: bool
    extra: tuple[str, ...] = ()

    @property
    def near_identical(self) -> bool:
        """The same words, in any order."""
        return self.edits == 0 and not self.extra


@dataclass(frozen=True)
class Similarity:
    """Why two records may be the same child: a score out of 100 and the reasons in words."""

    score: int
    reasons: tuple[Msg, ...]
    name: NameMatch


def word_allowance(a: str, b: str) -> int:
    """Letters of typing difference allowed between two words: none when the shorter has 3
    letters or fewer, one up to 7 letters, two from 8.

    >>> word_allowance("aya", "ama"), word_allowance("traore", "taore"), word_allowance(
    ...     "kouassiba", "kouasiba")
    (0, 1, 2)
    """
    return _deletions(min(len(a), len(b)))


@functools.lru_cache(maxsize=65536)
def typing_distance(a: str, b: str) -> int:
    """Letters inserted, deleted, changed, or swapped with a neighbour, to go from ``a`` to ``b``
    (the optimal string alignment distance).

    >>> typing_distance("traore", "tarore"), typing_distance("kouassi", "kouasi")
    (1, 1)
    """
    if a == b:
        return 0
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            cost = 0 if ca == cb else 1
            value = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                value = min(value, previous2[j - 2] + 1)
            current.append(value)
        previous2, previous = previous, current
    return previous[-1]


def match_names(a: Iterable[str], b: Iterable[str]) -> NameMatch | None:
    """Compare two names given as their folded words; None when they are not similar.

    Each word of the shorter name is paired with a different word of the longer one, the pairing
    with the fewest letters of difference winning; at most one word may be left over, and only
    when the shorter name has two words or more and the rest is the same.

    >>> match_names(["traore", "aya"], ["aya", "traore"])
    NameMatch(edits=0, reordered=True, extra=())
    >>> match_names(["aya", "traore"], ["aya", "tarore"])
    NameMatch(edits=1, reordered=False, extra=())
    >>> match_names(["aya", "kone"], ["ama", "kone"]) is None
    True
    """
    return _match_words(tuple(a), tuple(b))


@functools.lru_cache(maxsize=65536)  # names repeat: a village has many Aya Traoré
def _match_words(a: tuple[str, ...], b: tuple[str, ...]) -> NameMatch | None:
    if not a or not b:
        return None
    swapped = len(a) > len(b)
    short, long_ = (b, a) if swapped else (a, b)
    if len(long_) - len(short) > 1 or (len(long_) > len(short) and len(short) < 2):
        return None
    # distances of every pair of words, None above what the pair allows
    cost = [
        [d if (d := typing_distance(s, w)) <= word_allowance(s, w) else None for w in long_]
        for s in short
    ]
    best: tuple[int, bool, tuple[int, ...]] | None = None
    for chosen in _pairings(len(short), len(long_), cost):
        edits = sum(cost[i][j] for i, j in enumerate(chosen))
        reordered = list(chosen) != sorted(chosen)
        if best is None or (edits, reordered) < best[:2]:
            best = (edits, reordered, chosen)
    if best is None:
        return None
    edits, reordered, chosen = best
    extra = tuple(w for j, w in enumerate(long_) if j not in chosen)
    if edits > MAX_TYPING_DIFFERENCE or (extra and edits):
        return None
    return NameMatch(edits=edits, reordered=reordered, extra=extra)


def compare(a: Candidate, b: Candidate) -> Similarity | None:
    """Whether two records of one village may be the same child (the rule in the module
    documentation), with a score and the reasons; None when they may not.

    The score starts at 100 and loses 10 a letter of typing difference, 15 for an extra word, 5
    for words in another order, 10 for birth years a year apart, 15 for a birth year unknown, 10
    for different dates of birth, 5 when the sex is not recorded on both, and 5 for different
    households.

    >>> s = compare(Candidate(1, "Traoré Aya", "female", 2013, household_id=7),
    ...             Candidate(2, "Aya Traore", "female", 2014, household_id=7))
    >>> s.score, [str(r) for r in s.reasons]  # doctest: +NORMALIZE_WHITESPACE
    (85, ['same name, words in another order', 'birth years one year apart (2013 and 2014)',
          'same sex recorded', 'same household'])
    >>> compare(Candidate(1, "Aya Traore", "female", 2013),
    ...         Candidate(2, "Aya Traore", "male", 2013)) is None
    True
    """
    if a.sex and b.sex and a.sex != b.sex:
        return None
    name = match_names(a.words, b.words)
    if name is None:
        return None
    known = a.birth_year is not None and b.birth_year is not None
    if known and abs(a.birth_year - b.birth_year) > 1:
        return None
    if not known and not name.near_identical:
        return None

    score, reasons = 100, []
    if name.edits == 0:
        reasons.append(
            Msg("same name, words in another order") if name.reordered else Msg("same name")
        )
    else:
        reasons.append(
            Msg("names differ by one letter")
            if name.edits == 1
            else Msg("names differ by {n} letters", n=name.edits)
        )
        if name.reordered:
            reasons.append(Msg("words of the name in another order"))
    score -= 10 * name.edits + (5 if name.reordered else 0)
    if name.extra:
        reasons.append(Msg("one record has an extra name: {word}", word=" ".join(name.extra)))
        score -= 15 * len(name.extra)

    if not known:
        reasons.append(Msg("birth year not recorded on one record or both"))
        score -= 15
    elif a.birth_year == b.birth_year:
        reasons.append(Msg("born the same year ({year})", year=a.birth_year))
    else:
        first, second = sorted((a.birth_year, b.birth_year))
        reasons.append(Msg("birth years one year apart ({first} and {second})", first=first,
                           second=second))  # fmt: skip
        score -= 10
    if a.dob is not None and b.dob is not None:
        if a.dob == b.dob:
            reasons.append(Msg("same date of birth ({day})", day=a.dob))
        else:
            reasons.append(Msg("different dates of birth recorded"))
            score -= 10

    if a.sex and b.sex:
        reasons.append(Msg("same sex recorded"))
    else:
        reasons.append(Msg("sex not recorded on one record or both"))
        score -= 5
    if a.household_id is not None and a.household_id == b.household_id:
        reasons.append(Msg("same household"))
    else:
        reasons.append(Msg("different households of the same village"))
        score -= 5
    return Similarity(score=max(0, score), reasons=tuple(reasons), name=name)


def pairs_in_village(
    children: Iterable[Candidate],
) -> list[tuple[Candidate, Candidate, Similarity]]:
    """Every possible duplicate among the records of one village, lower id first in each pair.

    The same answer as :func:`compare` on every pair, but only records that can match are
    compared: those with birth years at most one apart of which each word of the shorter name
    shares a key (the word, or a variant of it with letters deleted, see the module
    documentation) with a word of the other; a record without a birth year only with the
    records whose name has the same words.

    >>> kids = [Candidate(1, "Aya Traore", None, 2013), Candidate(2, "Traoré Aya", None, 2014),
    ...         Candidate(3, "Aya Traore", None, 2016), Candidate(4, "Awa Kone", None, 2013)]
    >>> [(a.id, b.id) for a, b, _ in pairs_in_village(kids)]
    [(1, 2)]
    """
    children = [c for c in children if c.words]
    # the words of the village that may be typings of each other, found through the variants
    # they share: the village has far fewer distinct words than records
    vocabulary = {word for c in children for word in c.words}
    by_variant: dict[str, list[str]] = defaultdict(list)
    for word in vocabulary:
        for key in word_keys(word):
            by_variant[key].append(word)
    neighbours: dict[str, list[str]] = {}
    for word in vocabulary:
        near: set[str] = set()
        for key in word_keys(word):
            near.update(by_variant[key])
        neighbours[word] = [other for other in near if other == word or _close(word, other)]
    # birth year -> word -> positions in ``children`` of the records whose name has that word
    index: dict[int, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    by_canonical: dict[str, list[Candidate]] = defaultdict(list)
    for position, c in enumerate(children):
        by_canonical[c.canonical].append(c)
        if c.birth_year is not None:
            words = index[c.birth_year]
            for word in set(c.words):
                words[word].append(position)

    found: dict[tuple[int, int], tuple[Candidate, Candidate, Similarity]] = {}

    def consider(x: Candidate, y: Candidate) -> None:
        a, b = (x, y) if x.id < y.id else (y, x)
        if a.id == b.id or (a.id, b.id) in found:
            return
        similarity = compare(a, b)
        if similarity is not None:
            found[(a.id, b.id)] = (a, b, similarity)

    for position, c in enumerate(children):
        if c.birth_year is None:
            for other in by_canonical[c.canonical]:
                consider(c, other)
            continue
        # the same year (each pair once, from its first record) and the next year (from the
        # earlier): which of c's words share a key with each other record, as bits
        shared: dict[int, int] = {}
        for year, after in ((c.birth_year, position), (c.birth_year + 1, -1)):
            keys = index.get(year)
            if keys is None:
                continue
            for i, word in enumerate(c.words):
                bit = 1 << i
                for similar in neighbours[word]:
                    for other in keys.get(similar, ()):
                        if other > after:
                            shared[other] = shared.get(other, 0) | bit
        for other_position, bits in shared.items():
            other = children[other_position]
            # each word of the shorter name pairs with a word of the other within its allowance,
            # and two such words always share a key: fewer words sharing one cannot match
            if bits.bit_count() >= min(len(c.words), len(other.words)):
                consider(c, other)
    return [found[pair] for pair in sorted(found)]


@functools.lru_cache(maxsize=262144)
def _close(a: str, b: str) -> bool:
    """Whether two words are within their allowance of each other."""
    return typing_distance(a, b) <= word_allowance(a, b)


def _deletions(length: int) -> int:
    return 0 if length <= 3 else 1 if length <= 7 else 2


@functools.lru_cache(maxsize=65536)
def word_keys(word: str) -> frozenset[str]:
    """The word and its variants with up to as many letters deleted as a word of its length may
    differ by (:func:`word_allowance`): two words within their allowance always share one (each
    inserted, missing, changed or swapped letter is undone by deleting at most one letter from
    each word).

    >>> sorted(word_keys("awa")), sorted(word_keys("kone"))
    (['awa'], ['kne', 'koe', 'kon', 'kone', 'one'])
    """
    keys = {word}
    for _ in range(_deletions(len(word))):
        keys |= {k[:i] + k[i + 1 :] for k in keys for i in range(len(k))}
    return frozenset(keys)


def _pairings(n_short: int, n_long: int, cost: list[list[int | None]]) -> Iterator[tuple[int, ...]]:
    """Ways to pair each of ``n_short`` words with a different one of ``n_long`` words, each
    pair within its allowance. Every way for names of up to six words; beyond, the cheapest
    word first (names that long are rare, and a pairing is still found when one is clear)."""
    if n_long <= 6:
        for chosen in itertools.permutations(range(n_long), n_short):
            if all(cost[i][j] is not None for i, j in enumerate(chosen)):
                yield chosen
        return
    chosen: list[int] = []
    for row in cost:
        options = [(d, j) for j, d in enumerate(row) if d is not None and j not in chosen]
        if not options:
            return
        chosen.append(min(options)[1])
    yield tuple(chosen)


# --- reading the pairs ---------------------------------------------------------------------------


@dataclass
class RecordSummary:
    """What the list shows of one record of a pair, side by side with the other."""

    id: int
    uid: str
    name: str
    sex: str | None
    birth_year: int | None
    dob: dt.date | None
    household_code: str
    village_code: str
    village_name: str
    visits: int = 0
    last_visit_at: dt.datetime | None = None
    open_alert: Alert | None = None
    open_case: Case | None = None


@dataclass
class DuplicatePair:
    """Two records that may be the same child: the older record (lower id) first."""

    a: RecordSummary
    b: RecordSummary
    score: int
    reasons: tuple[Msg, ...]

    @property
    def key(self) -> str:
        """A stable id for the pair on a page: both pseudonymous ids."""
        return f"{self.a.uid}-{self.b.uid}"


@dataclass
class DuplicatePage(Page[DuplicatePair]):
    """One page of the possible duplicates, best match first."""

    per_page: int = PER_PAGE

    @property
    def pairs(self) -> list[DuplicatePair]:
        """The page's rows: pairs."""
        return self.rows


def possible_duplicates(
    session: Session,
    user: User,
    *,
    village: str | None = None,
    page: int = 1,
    per_page: int = PER_PAGE,
) -> DuplicatePage:
    """One page of the pairs of records in ``user``'s scope that may be the same child.

    Officers, supervisors and administrators with a scope see the pairs of their villages;
    anyone else sees none. ``village`` (a code) narrows to one village: a code that is not one of
    the user's villages is ``not_found``, whether or not it exists. Pairs an officer marked as
    different children are left out. Order: score (best first), then village, then the records'
    ids. Raises ``request.invalid_parameter`` for a page below 1 or a ``per_page`` outside
    1-100.

    >>> page = possible_duplicates(session, officer, village="V1")  # doctest: +SKIP
    >>> [(p.a.uid, p.b.uid, p.score) for p in page.pairs]  # doctest: +SKIP
    [('CH-7QK2M9XW4B', 'CH-N3RT8PZK5A', 85)]
    """
    window = DUPLICATE_PAGING.check(page, per_page)
    scope = village_scope_condition(session, user, Household.village_id)
    if scope is None:
        if village is not None:
            raise problem("not_found")
        return DuplicatePage([], 0, 1, 1, per_page)
    where = [scope]
    if village is not None:
        row = session.execute(
            select(Village.id, Village.area_id).where(Village.code == village)
        ).first()
        if row is None or not village_in_scope(session, user, row.id, row.area_id):
            raise problem("not_found")
        where.append(Household.village_id == row.id)

    found = _pairs(session, where)
    dismissed = set(
        session.execute(
            select(DuplicateDismissal.child_a_id, DuplicateDismissal.child_b_id)
            .join(Child, Child.id == DuplicateDismissal.child_a_id)
            .join(Household, Household.id == Child.household_id)
            .where(*where)
        )
    )
    found = [f for f in found if (f[1].id, f[2].id) not in dismissed]
    found.sort(key=lambda f: (-f[3].score, f[0], f[1].id, f[2].id))
    total = len(found)
    window = window.within(total)
    page = window.page
    chosen = window.cut(found)
    summaries = _summaries(session, {c.id for _v, a, b, _s in chosen for c in (a, b)})
    pairs = [
        DuplicatePair(summaries[a.id], summaries[b.id], sim.score, sim.reasons)
        for _v, a, b, sim in chosen
    ]
    if pairs:
        record_read(session, user, "duplicates.read", f"children:{len(pairs)} pairs",
                    pairs=[f"{p.a.uid}+{p.b.uid}" for p in pairs])  # fmt: skip
    return DuplicatePage(pairs, total, page, window.pages(total), per_page)


def duplicate_villages(session: Session, user: User) -> list[Village]:
    """The villages of ``user``'s scope, by code: the list's village filter."""
    scope = village_scope_condition(session, user, Village.id)
    if scope is None:
        return []
    return list(session.scalars(select(Village).where(scope).order_by(Village.code)))


def _pairs(session: Session, where: list) -> list[tuple[int, Candidate, Candidate, Similarity]]:
    """(village id, a, b, similarity) of every possible duplicate of the records ``where``
    selects, village by village, from one ordered read."""
    # plain rows through the connection: the ORM's row processing would cost more than the
    # database's work for the whole scope
    rows = session.connection().execute(
        select(Household.village_id, Child.id, Child.name_key, Child.sex, Child.birth_year,
               Child.dob, Child.household_id)
        .join(Household, Household.id == Child.household_id)
        .where(*where, Child.merged_into_id.is_(None))
        .order_by(Household.village_id, Child.birth_year, Child.id)
        .execution_options(yield_per=5000)
    )  # fmt: skip
    found = []
    for village_id, block in itertools.groupby(rows, key=lambda r: r[0]):
        candidates = (Candidate(*row[1:]) for row in block)
        found += [(village_id, a, b, sim) for a, b, sim in pairs_in_village(candidates)]
    return found


def _summaries(session: Session, ids: set[int]) -> dict[int, RecordSummary]:
    """The records the page shows, with their visits, open alert and open case (four queries)."""
    if not ids:
        return {}
    ids_list = sorted(ids)
    rows = session.execute(
        select(Child, Household.code, Village.code, Village.name)
        .join(Household, Household.id == Child.household_id)
        .join(Village, Village.id == Household.village_id)
        .where(Child.id.in_(ids_list))
    )
    found = {
        child.id: RecordSummary(
            id=child.id,
            uid=child.child_uid,
            name=child.name,
            sex=child.sex,
            birth_year=child.birth_year,
            dob=child.dob,
            household_code=household_code,
            village_code=village_code,
            village_name=village_name,
        )
        for child, household_code, village_code, village_name in rows
    }
    visits = session.execute(
        select(ChildVisit.child_id, func.count(ChildVisit.id), func.max(Visit.visited_at))
        .join(Visit, Visit.id == ChildVisit.visit_id)
        .where(ChildVisit.child_id.in_(ids_list), Visit.current.is_(True))
        .group_by(ChildVisit.child_id)
    )
    for child_id, count, last in visits:
        found[child_id].visits, found[child_id].last_visit_at = count, last
    for alert in session.scalars(
        select(Alert).where(Alert.child_id.in_(ids_list), Alert.status.in_(ACTIVE_ALERT_STATUSES))
    ):
        found[alert.child_id].open_alert = alert
    for case in session.scalars(
        select(Case).where(Case.child_id.in_(ids_list), Case.state.in_(OPEN_CASE_STATES))
    ):
        found[case.child_id].open_case = case
    return found
