"""Re-running the rules over every stored child visit after a rules or country-profile change.

Each child visit's current classification is compared with what the current rules and profiles say
now. Where the result differs (category, SDG flag, reasons or risk factors) a new classification is
added under the current rule-set and profile versions, naming the one it replaces and saying why it
changed (:func:`alerts.rules.explain_change`); the old one stays as history. A result the new
versions reproduce is left alone, so nothing is deleted, storage grows only with real changes, and
running it twice changes nothing the second time.

When the new classification of a child's most recent visit is graver than before, the child's
alert is raised or made more severe, exactly as on arrival: a change of law can put a child in
child labour, and then an officer must know. A milder result never closes an alert by itself.

Work goes in chunks of child visits (keyset order by id), one transaction each, so a run over
millions of visits holds no long lock and can be interrupted and run again. This module does the
work of a chunk (:func:`reclassify_chunk`, which flushes and never commits); the run, its chunks'
transactions and what the graver findings do to cases and alerts are the intake's
(:mod:`clms.intake.reclassify`, with the last steps of the intake pipeline).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field

from sqlalchemy import Row, and_, bindparam, func, insert, select, update
from sqlalchemy.orm import Session

from alerts import rules
from alerts.classify import (
    CATEGORY_ORDER,
    AlertOutcome,
    ChildVisitFacts,
    Classified,
    classify_by_profile,
    load_profiles,
    village_countries,
)
from clms.facts import refresh_children
from clms.models import ChildVisit, Classification, CountryProfile, Visit

CV = ChildVisit.__table__
VISITS = Visit.__table__
CL = Classification.__table__

_CHUNK = (
    select(
        CV.c.id, CV.c.child_id, *(CV.c[f] for f in rules.FACT_FIELDS),
        VISITS.c.household_id, VISITS.c.village_id, VISITS.c.supplier_id, VISITS.c.visited_at,
        VISITS.c.current.label("visit_current"),
        CL.c.id.label("class_id"), CL.c.category, CL.c.sdg_871, CL.c.reasons, CL.c.risk_factors,
        CL.c.profile_id, CL.c.rule_set_version,
    )
    .join(VISITS, VISITS.c.id == CV.c.visit_id)
    .outerjoin(CL, and_(CL.c.child_visit_id == CV.c.id, CL.c.current.is_(True)))
    .where(CV.c.id > bindparam("after"))
    .order_by(CV.c.id)
    .limit(bindparam("size"))
)  # fmt: skip
# the most recent visit of each child in a chunk, to decide whether its alert may change
_LATEST = (
    select(CV.c.child_id, func.max(VISITS.c.visited_at))
    .join(VISITS, VISITS.c.id == CV.c.visit_id)
    .where(CV.c.child_id.in_(bindparam("ids", expanding=True)), VISITS.c.current.is_(True))
    .group_by(CV.c.child_id)
)
_RETIRE = update(CL).where(CL.c.id == bindparam("row_id")).values(current=False)
_INSERT = insert(CL).returning(CL.c.id, sort_by_parameter_order=True)


@dataclass
class ReclassifyReport:
    """What a run found: visits examined, classifications changed, and how."""

    examined: int = 0
    changed: int = 0
    unchanged: int = 0
    transitions: Counter = field(default_factory=Counter)  # (old category, new category) -> n
    why: Counter = field(default_factory=Counter)  # explanation -> n
    examples: list[dict] = field(default_factory=list)  # the first changes, with explanations
    alerts: AlertOutcome = field(default_factory=AlertOutcome)


def count_child_visits(session: Session) -> int:
    """How many child visits a run examines."""
    return session.scalar(select(func.count()).select_from(CV)) or 0


def profile_names(session: Session) -> dict[int, tuple[str, int]]:
    """The code and version of every country profile, by row id (to explain changes)."""
    rows = session.execute(select(CountryProfile.id, CountryProfile.code, CountryProfile.version))
    return {row.id: (row.code, row.version) for row in rows}


def read_chunk(session: Session, after: int, size: int) -> list[Row]:
    """Up to ``size`` child visits after the id ``after``, with their current classifications."""
    return session.execute(_CHUNK, {"after": after, "size": size}).all()


def reclassify_chunk(
    session: Session,
    rows: list[Row],
    profile_names: dict[int, tuple[str, int]],
    report: ReclassifyReport,
    dry_run: bool,
    now: dt.datetime,
    max_examples: int,
) -> tuple[list[ChildVisitFacts], Classified]:
    """Classify ``rows`` (a chunk of :func:`read_chunk`) again and, unless ``dry_run``, store the
    changed classifications; counts in ``report``. Returns the changes that made a child's latest
    visit graver, for cases and alerts. Flushes, never commits.
    """
    profiles = load_profiles(session)
    countries = village_countries(session, (r.village_id for r in rows))
    changed_rows, retire, facts_of, results = [], [], [], []
    all_facts = [{f: getattr(r, f) for f in rules.FACT_FIELDS} for r in rows]
    found = classify_by_profile(profiles, [countries.get(r.village_id) for r in rows], all_facts)
    for r, facts, new in zip(rows, all_facts, found, strict=True):
        profile_row_id = profiles.row_ids[new.profile_code]
        new_json = new.as_dict()
        report.examined += 1
        if r.class_id is not None and (
            r.category == new.category
            and r.sdg_871 == new.sdg_871
            and (r.reasons or []) == new_json["reasons"]
            and (r.risk_factors or []) == new_json["risk_factors"]
        ):  # reproduced: the stored row, naming the versions that first gave it, stands
            report.unchanged += 1
            continue
        if r.class_id is None:
            why = "not classified before"
        else:
            code, version = profile_names.get(r.profile_id, ("?", 0))
            old = {
                "category": r.category, "sdg_871": r.sdg_871, "reasons": r.reasons or [],
                "risk_factors": r.risk_factors or [], "rule_set_version": r.rule_set_version,
                "profile_code": code, "profile_version": version,
            }  # fmt: skip
            why = rules.explain_change(old, new) or "recomputed"
        report.changed += 1
        report.transitions[(r.category or "-", new.category)] += 1
        report.why[why] += 1
        if len(report.examples) < max_examples:
            report.examples.append({"child_visit_id": r.id, "from": r.category or "-",
                                    "to": new.category, "why": why})  # fmt: skip
        changed_rows.append({
            "child_visit_id": r.id, "child_id": r.child_id, "current": True,
            "rule_set_version": rules.RULE_SET_VERSION, "profile_id": profile_row_id,
            "category": new.category, "sdg_871": new.sdg_871, "reasons": new_json["reasons"],
            "risk_factors": new_json["risk_factors"], "classified_at": now,
            "previous_id": r.class_id, "change_reason": why,
        })  # fmt: skip
        if r.class_id is not None:
            retire.append({"row_id": r.class_id})
        graver = CATEGORY_ORDER.index(new.category) > CATEGORY_ORDER.index(r.category or "none")
        facts_of.append((r, facts, graver))
        results.append((new, new_json))
    if dry_run or not changed_rows:
        return [], Classified([], [], [])
    if retire:  # retire first: the partial unique index allows one current row per visit
        session.execute(_RETIRE, retire)
    ids = session.execute(_INSERT, changed_rows).scalars().all()
    refresh_children(session, {row["child_id"] for row in changed_rows})
    return _graver_latest(session, facts_of, results, ids)


def _graver_latest(session, facts_of, results, ids) -> tuple[list[ChildVisitFacts], Classified]:
    """The changes that made a child's latest visit graver: the alerts may change for them."""
    candidates = [i for i, (r, _facts, graver) in enumerate(facts_of) if graver and r.visit_current]
    if not candidates:
        return [], Classified([], [], [])
    child_ids = sorted({facts_of[i][0].child_id for i in candidates})
    latest = dict(session.execute(_LATEST, {"ids": child_ids}).all())
    visits, found, as_json, class_ids = [], [], [], []
    for i in candidates:
        r, facts, _ = facts_of[i]
        if latest.get(r.child_id) != r.visited_at:
            continue
        visits.append(ChildVisitFacts(r.id, r.child_id, r.household_id, r.village_id,
                                      r.supplier_id, r.visited_at, facts))  # fmt: skip
        found.append(results[i][0])
        as_json.append(results[i][1])
        class_ids.append(ids[i])
    return visits, Classified(found, as_json, class_ids)
