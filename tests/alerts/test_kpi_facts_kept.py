"""The kept facts (issue 19, clms.facts) equal a rebuild after any sequence of what changes
them, each through the product's own path: submissions from a phone and the processing job,
edits (a new version replacing the current one), withdrawals and restores, merges of two
records, erasures, reclassification, a supplier's new tier, a held submission rejected.

A property test (hypothesis): the sequences are drawn, and after each one the facts kept so far
must be exactly what ``clms kpis rebuild-facts`` makes from the rows. The database keeps what
earlier sequences did, so later ones start from a world already changed.
"""

from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, update

from clms.db import session_scope
from clms.facts import fact_rows, rebuild
from clms.models import (
    Child,
    ChildVisit,
    Classification,
    KpiChildFact,
    Submission,
    User,
    Visit,
    utcnow,
)
from tests.submissions import child, household_xml

NAMES = ("Aya Traoré", "Awa Traoré", "Bema Koné")
WORK = {"work_activities": "own_farm", "work_hours_7d": 20, "attends_school": "no"}
DAYS = [f"2026-11-{d:02d}T10:30:00.000+00:00" for d in (3, 9, 9, 15, 20)]
_numbers = itertools.count(1)

submit = st.tuples(
    st.just("submit"),
    st.sampled_from(["HH-1", "HH-2"]),
    st.sampled_from(["V1", "V1", "V2", "V3"]),  # V3: outside the monitor's scope, held
    st.lists(st.tuples(st.sampled_from(NAMES), st.booleans()), min_size=1, max_size=3,
             unique_by=lambda kid: kid[0]),
    st.sampled_from(DAYS),
)  # fmt: skip
edit = st.tuples(st.just("edit"), st.integers(0, 50), submit)
other = st.tuples(
    st.sampled_from(["withdraw", "restore", "merge", "erase", "reclassify", "tier", "reject"]),
    st.integers(0, 50),
)
operations = st.lists(st.one_of(submit, submit, edit, other), min_size=1, max_size=8)


class Rig:
    """The phone, the processing job and the people the operations need."""

    def __init__(self, app, phone, version, process):
        self.app, self.phone, self.version, self.process = app, phone, version, process
        self.logical: list[str] = []  # each logical submission's latest instance id

    def send(self, household, village, kids, day, deprecated=None) -> str:
        instance = f"uuid:facts-{next(_numbers)}"
        xml = household_xml(
            self.version, instance_id=instance, deprecated_id=deprecated, village=village,
            household_code=household, end=day,
            children=[child(child_name=name, **(WORK if works else {})) for name, works in kids],
        )  # fmt: skip
        assert self.phone.submit(xml).status_code == 201
        self.process()
        return instance

    def apply(self, op) -> None:
        kind = op[0]
        if kind == "submit":
            self.logical.append(self.send(*op[1:]))
        elif kind == "edit" and self.logical:
            i = op[1] % len(self.logical)
            self.logical[i] = self.send(*op[2][1:], deprecated=self.logical[i])
        elif kind in ("withdraw", "restore") and self.logical:
            from clms.intake.withdraw import restore_submission, withdraw_submission

            with session_scope(self.app) as s:
                sub_id = self._submission(s, op[1])
                if kind == "withdraw":
                    withdraw_submission(s, sub_id, "deleted", detail="deleted on Central")
                else:
                    restore_submission(s, sub_id, detail="restored on Central")
        elif kind == "reject" and self.logical:
            from forms.decisions import reject

            with session_scope(self.app) as s:
                sub = s.get(Submission, self._submission(s, op[1]))
                if sub.status == "held" and sub.current:
                    reject(s, self._user(s, "ada"), sub.id, "not a real visit")
        elif kind == "merge":
            from clms.cases.merge import merge_children

            with session_scope(self.app) as s:
                kids = s.scalars(
                    select(Child).where(Child.merged_into_id.is_(None)).order_by(Child.id)
                ).all()
                pairs = [(a, b) for a in kids for b in kids if a.id < b.id
                         and a.household.village_id == b.household.village_id]  # fmt: skip
                if pairs:
                    a, b = pairs[op[1] % len(pairs)]
                    merge_children(s, self._user(s, "olga"), a.child_uid, b.child_uid, "same")
        elif kind == "erase":
            from clms.dataprotection.erasure import erase_child

            with session_scope(self.app) as s:
                kids = s.scalars(select(Child).where(Child.anonymised_at.is_(None))).all()
                if kids:
                    kid = kids[op[1] % len(kids)]
                    erase_child(s, self._user(s, "ada"), kid.child_uid, reason="asked",
                                force=True, force_reason="test", now=utcnow())  # fmt: skip
        elif kind == "reclassify":
            from clms.intake.reclassify import reclassify

            with session_scope(self.app) as s:
                # a classification as an older rule set made it: reclassification mends it
                row = s.scalars(
                    select(Classification).where(Classification.current).order_by(Classification.id)
                ).all()
                if row:
                    changed = row[op[1] % len(row)]
                    other = "worst_form" if changed.category != "worst_form" else "none"
                    s.execute(update(Classification).where(Classification.id == changed.id)
                              .values(category=other, rule_set_version="old"))  # fmt: skip
            with session_scope(self.app) as s:
                rebuild(s)  # the world as the old rules left it, facts and all
            reclassify(self.app.extensions["clms_sessionmaker"], config=self.app.config)
        elif kind == "tier":
            from clms.supply.operations import SupplierInput, save_supplier

            with session_scope(self.app) as s:
                save_supplier(s, SupplierInput(code="T2-COOP", name="Coop Soubré Espoir",
                                              tier=str(2 + op[1] % 3)), new=False)  # fmt: skip

    def _submission(self, s, n) -> int:
        instance = self.logical[n % len(self.logical)]
        return s.scalar(select(Submission.id).where(Submission.instance_id == instance))

    @staticmethod
    def _user(s, name) -> User:
        return s.scalar(select(User).where(User.username == name))


@pytest.fixture
def rig(app, phone, version, process, make_user):
    make_user("ada", "admin")
    make_user("olga", "officer", areas=["CI-R1"])
    return Rig(app, phone, version, process)


@settings(
    max_examples=30,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=operations)
def test_kept_facts_equal_a_rebuild_after_any_sequence(rig, ops):  # fmt: skip
    for op in ops:
        rig.apply(op)
    with session_scope(rig.app) as s:
        kept = fact_rows(s)
        rebuild(s)
        assert kept == fact_rows(s), ops
        # one per current classification of a current visit
        counted = s.scalar(
            select(func.count())
            .select_from(Classification)
            .join(ChildVisit, ChildVisit.id == Classification.child_visit_id)
            .join(Visit, Visit.id == ChildVisit.visit_id)
            .where(Classification.current, Visit.current)
        )
        assert len(kept) == counted
        s.rollback()


def test_the_command_rebuilds_and_checks(app, rig, runner):
    rig.apply(("submit", "HH-1", "V1", [("Aya Traoré", True), ("Bema Koné", False)], DAYS[0]))
    rig.apply(("submit", "HH-1", "V1", [("Aya Traoré", False)], DAYS[3]))
    result = runner.invoke(args=["kpis", "rebuild-facts", "--check"])
    assert result.exit_code == 0, result.output
    assert "equal a rebuild (3 rows)" in result.output
    with session_scope(app) as s:  # a fact gone astray: the check says so, the rebuild mends it
        s.execute(update(KpiChildFact).values(category="worst_form"))
    result = runner.invoke(args=["kpis", "rebuild-facts", "--check"])
    assert result.exit_code == 1 and "differ from a rebuild for 3 child visits" in result.output
    result = runner.invoke(args=["kpis", "rebuild-facts"])
    assert result.exit_code == 0 and "made again: 3" in result.output
    result = runner.invoke(args=["kpis", "rebuild-facts", "--check"])
    assert result.exit_code == 0, result.output
