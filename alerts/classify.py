"""Classifying stored child visits and raising their alerts, a batch at a time.

The rules themselves are pure (:mod:`alerts.rules`); this module is the database edge around them,
two steps of the intake pipeline (:mod:`clms.intake.pipeline`, in the transaction that saves the
visits, so a visit is never stored without its classification): :func:`classify_visits` stores
each child visit's classification, and :func:`raise_alerts` raises or updates the alerts of the
children no case took (the pipeline asks the cases in between). ``clms reclassify`` uses the same.

Which law applies: the country of the visit's village (its area's ``country_code``) selects the
current country profile; a country without a profile, or a visit without a village, uses the ILO
statistical default. The profile version and the rule-set version are stored with every
classification, so a later reclassification can say what changed and why.

Alerts (domain.md section 4): a child has at most one active alert (new or acknowledged). A later
visit updates it; a worse category raises its severity and, because the officer acknowledged a
lesser danger, puts it back to ``new`` with the stricter acknowledgement deadline. A visit that
finds the child no longer in work leaves the alert open (an officer closes it) and records what
was seen. Deadlines run from the moment the server raises the alert: the officer could not act
before the phone synchronised. A concern reported through the report form raises an alert of
source ``reported``, always needing verification, with the severity of the worst thing reported.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.orm import Session

from alerts import rules
from alerts.profiles.seeds import seed_profiles
from alerts.profiles.store import current_profiles, to_rules_profile
from clms.models import (
    ACTIVE_ALERT_STATUSES,
    Alert,
    AlertEvent,
    Area,
    Classification,
    CountryProfile,
    Village,
)

ALERTS = Alert.__table__
EVENTS = AlertEvent.__table__
CLASSIFICATIONS = Classification.__table__
DEFAULT_PROFILE = "ILO"

# built once (see forms.store: building a statement costs more than running it on SQLite)
_COUNTRIES = (
    select(Village.id, Area.country_code)
    .join(Area, Area.id == Village.area_id)
    .where(Village.id.in_(bindparam("ids", expanding=True)))
)
_ACTIVE_ALERTS = select(
    ALERTS.c.id, ALERTS.c.child_id, ALERTS.c.status, ALERTS.c.category, ALERTS.c.severity_rank,
    ALERTS.c.severity, ALERTS.c.ack_due_at, ALERTS.c.visit_due_at, ALERTS.c.acknowledged_at,
    ALERTS.c.last_seen_at, ALERTS.c.household_id, ALERTS.c.village_id, ALERTS.c.supplier_id,
).where(
    ALERTS.c.child_id.in_(bindparam("ids", expanding=True)),
    ALERTS.c.status.in_(ACTIVE_ALERT_STATUSES),
)  # fmt: skip
_INSERT_CLASSIFICATIONS = insert(CLASSIFICATIONS).returning(
    CLASSIFICATIONS.c.id, sort_by_parameter_order=True
)
_INSERT_ALERTS = insert(ALERTS).returning(ALERTS.c.id, sort_by_parameter_order=True)
_UPDATE_ALERTS = update(ALERTS).where(ALERTS.c.id == bindparam("row_id"))
_INSERT_EVENTS = insert(EVENTS)

# what a reported concern can mean at worst, for the severity of its alert
REPORT_CONCERN_CATEGORY = {
    "trafficking": "worst_form",
    "sexual_exploitation": "worst_form",
    "hazardous_work": "hazardous",
    "violence_abuse": "hazardous",  # abuse at work is on the hazardous list (MICS CL6)
    "child_working": "child_labour",
    "not_in_school": "at_risk",
    "other": "at_risk",
}
# from least to most grave (rules.CATEGORIES lists them gravest first)
CATEGORY_ORDER = tuple(reversed(rules.CATEGORIES))


@dataclass
class ProfileSet:
    """The current country profiles, by code, with the id of each one's database row."""

    profiles: dict[str, rules.Profile]
    row_ids: dict[str, int]

    def for_country(self, country_code: str | None) -> tuple[rules.Profile, int]:
        code = country_code if country_code in self.profiles else DEFAULT_PROFILE
        return self.profiles[code], self.row_ids[code]


def load_profiles(session: Session) -> ProfileSet:
    """The current profiles. The ILO default is seeded here if it is missing: a child is never
    left unclassified for want of set-up (``clms init`` seeds it with the countries)."""
    profiles = current_profiles(session)
    if DEFAULT_PROFILE not in profiles:
        seed = next(r for r in seed_profiles(None) if r["code"] == DEFAULT_PROFILE)
        row = CountryProfile(**seed)
        session.add(row)
        session.flush()
        profiles[DEFAULT_PROFILE] = to_rules_profile(row)
    return ProfileSet(profiles, {code: p.row_id for code, p in profiles.items()})


def village_countries(session: Session, village_ids: Iterable[int | None]) -> dict[int, str]:
    """The country code of each village, in one query."""
    ids = sorted({v for v in village_ids if v is not None})
    if not ids:
        return {}
    return dict(session.execute(_COUNTRIES, {"ids": ids}).all())


def classify_by_profile(
    profiles: ProfileSet, country_codes: list[str | None], facts: list[dict]
) -> list:
    """Classify each of ``facts`` under the profile of its country, in the same order."""
    by_profile: dict[str, list[int]] = {}
    for i, country in enumerate(country_codes):
        profile, _ = profiles.for_country(country)
        by_profile.setdefault(profile.code, []).append(i)
    results = [None] * len(facts)
    for code, indexes in by_profile.items():
        found = rules.classify_rows(profiles.profiles[code], [facts[i] for i in indexes])
        for i, result in zip(indexes, found, strict=True):
            results[i] = result
    return results


@dataclass
class ChildVisitFacts:
    """A stored child visit to classify, with what the alert needs to know about it."""

    child_visit_id: int
    child_id: int
    household_id: int | None
    village_id: int | None
    supplier_id: int | None
    seen_at: dt.datetime  # when the visit took place
    facts: dict  # the child_visits columns the rules read
    raise_alert: bool = True  # False for a version already replaced by an edit
    kind: str = "household"  # or followup
    case_id: int | None = None  # the case a follow-up visit follows
    child_present: bool | None = None  # follow-ups: whether the monitor saw the child
    services_received: list | None = None  # follow-ups: services reported received


@dataclass
class AlertOutcome:
    """What one batch did: classifications stored, alerts raised, updated and made more severe."""

    classified: int = 0
    raised: int = 0
    updated: int = 0
    severity_raised: int = 0
    urgent_alert_ids: list[int] = field(default_factory=list)  # not yet queued for mail


@dataclass
class Classified:
    """The classifications of a batch of child visits, in the visits' order: the rules' results,
    the same as JSON, and the ids of the rows stored."""

    results: list  # rules.Result
    as_json: list[dict]
    ids: list[int]

    @property
    def categories(self) -> list[str]:
        return [r.category for r in self.results]


def classify_visits(
    session: Session, visits: list[ChildVisitFacts], profiles: ProfileSet, now: dt.datetime
) -> Classified:
    """Classify ``visits`` (in the order they happened) under the profiles of their countries
    and store the classifications; flushes, never commits. One query and one INSERT whatever
    the batch size."""
    if not visits:
        return Classified([], [], [])
    countries = village_countries(session, (v.village_id for v in visits))
    results = classify_by_profile(
        profiles, [countries.get(v.village_id) for v in visits], [v.facts for v in visits]
    )
    as_json = [r.as_dict() for r in results]
    rows = [
        {
            "child_visit_id": v.child_visit_id,
            "child_id": v.child_id,
            "current": True,
            "rule_set_version": rules.RULE_SET_VERSION,
            "profile_id": profiles.row_ids[r.profile_code],
            "category": r.category,
            "sdg_871": r.sdg_871,
            "reasons": j["reasons"],
            "risk_factors": j["risk_factors"],
            "classified_at": now,
            "previous_id": None,
            "change_reason": None,
        }
        for v, r, j in zip(visits, results, as_json, strict=True)
    ]
    ids = session.execute(_INSERT_CLASSIFICATIONS, rows).scalars().all()
    return Classified(results, as_json, list(ids))


def raise_alerts(
    session: Session,
    visits: list[ChildVisitFacts],
    classified: Classified,
    reports: list[ReportFacts],
    now: dt.datetime,
    outcome: AlertOutcome,
    *,
    skip: set[int] | frozenset[int] = frozenset(),
) -> AlertOutcome:
    """Raise or update the one active alert of each child of ``visits`` (classified as
    ``classified`` says), none for the children in ``skip`` (their case took the visit), and an
    alert for each of ``reports``; then queue the mail of the urgent ones. Adds to ``outcome``
    (its ``urgent_alert_ids`` are emptied once queued) and returns it; flushes, never commits.
    A fixed number of statements whatever the batch size."""
    if visits:
        raise_child_alerts(
            session, visits, classified.results, classified.as_json, classified.ids, now,
            outcome, skip=skip,
        )  # fmt: skip
    if reports:
        _raise_report_alerts(session, reports, now, outcome)
    if outcome.urgent_alert_ids:
        from alerts.notify import notify_new_urgent_alerts

        notify_new_urgent_alerts(session, outcome.urgent_alert_ids)
        outcome.urgent_alert_ids = []
    return outcome


def raise_child_alerts(
    session: Session,
    visits: list[ChildVisitFacts],
    results: list,
    as_json: list[dict],
    classification_ids: list[int],
    now: dt.datetime,
    outcome: AlertOutcome,
    skip: set[int] | frozenset[int] = frozenset(),
) -> None:
    """Create, update or raise the one active alert of each child, in memory, then write;
    children in ``skip`` (their case took the visit) get none."""
    child_ids = sorted({v.child_id for v in visits})
    active: dict[int, dict] = {}
    for row in session.execute(_ACTIVE_ALERTS, {"ids": child_ids}):
        active[row.child_id] = {"id": row.id, **row._mapping, "changed": False}
    new: dict[int, dict] = {}  # child id -> the row of an alert this batch creates
    events: list[tuple[dict, str, dict]] = []  # alert row, action, detail
    for v, r, j, cid in zip(visits, results, as_json, classification_ids, strict=True):
        if not v.raise_alert or v.child_id in skip:
            continue
        alert = active.get(v.child_id) or new.get(v.child_id)
        if r.category == "none":
            if alert is not None:
                note = "a later visit found the child in no work that raises an alert"
                detail = {"category": "none", "classification_id": cid, "note": note}
                events.append((alert, "updated", detail))
            continue
        severity = rules.SEVERITY[r.category]
        rank = rules.SEVERITY_RANK[severity]
        ack_due, visit_due = rules.deadlines(r.category, now)
        where = {"household_id": v.household_id, "village_id": v.village_id,
                 "supplier_id": v.supplier_id}  # fmt: skip
        if alert is None:
            alert = {
                "source": "visit", "status": "new", "child_id": v.child_id, "report_id": None,
                "category": r.category, "severity": severity, "severity_rank": rank,
                "reasons": j["reasons"], "needs_verification": True,
                "classification_id": cid, "created_at": now, "updated_at": now,
                "last_seen_at": v.seen_at, "ack_due_at": ack_due, "visit_due_at": visit_due,
                **where,
            }  # fmt: skip
            new[v.child_id] = alert
            events.append((alert, "raised", {"category": r.category, "severity": severity,
                                             "classification_id": cid}))  # fmt: skip
            outcome.raised += 1
            continue
        known = {k: val for k, val in where.items() if val is not None}  # never forget a place
        alert.update(known, reasons=j["reasons"], classification_id=cid, updated_at=now,
                     last_seen_at=max(alert["last_seen_at"] or v.seen_at, v.seen_at),
                     changed=True)  # fmt: skip
        if rank > alert["severity_rank"]:
            old = alert["severity"]
            # a graver danger than the one acknowledged: it must be acknowledged again, in time
            alert.update(category=r.category, severity=severity, severity_rank=rank,
                         status="new", acknowledged_at=None,
                         ack_due_at=min(ack_due, alert["ack_due_at"])
                         if alert.get("acknowledged_at") is None else ack_due,
                         visit_due_at=min(filter(None, (visit_due, alert["visit_due_at"])),
                                          default=None))  # fmt: skip
            events.append((alert, "severity_raised", {"from": old, "to": severity,
                                                      "category": r.category,
                                                      "classification_id": cid}))  # fmt: skip
            outcome.severity_raised += 1
        else:
            events.append((alert, "updated", {"category": r.category,
                                              "classification_id": cid}))  # fmt: skip
            outcome.updated += 1

    created = list(new.values())
    if created:
        ids = session.execute(_INSERT_ALERTS, [{k: a[k] for k in _ALERT_FIELDS} for a in created])
        for alert, alert_id in zip(created, ids.scalars().all(), strict=True):
            alert["id"] = alert_id
    changed = [a for a in active.values() if a["changed"]]
    if changed:
        session.execute(_UPDATE_ALERTS, [_alert_update(a) for a in changed])
    if events:
        session.execute(
            _INSERT_EVENTS,
            [{"alert_id": a["id"], "at": now, "user_id": None, "action": action, "detail": detail}
             for a, action, detail in events],
        )  # fmt: skip
    urgent = (a["id"] for a, action, _ in events
              if action in ("raised", "severity_raised") and a["severity_rank"] >= 3)  # fmt: skip
    outcome.urgent_alert_ids.extend(dict.fromkeys(urgent))


_ALERT_FIELDS = (
    "source", "status", "child_id", "report_id", "category", "severity", "severity_rank",
    "reasons", "needs_verification", "classification_id", "created_at", "updated_at",
    "last_seen_at", "ack_due_at", "visit_due_at", "household_id", "village_id", "supplier_id",
)  # fmt: skip


def _alert_update(a: dict) -> dict:
    return {
        "row_id": a["id"],
        "status": a["status"],
        "category": a["category"],
        "severity": a["severity"],
        "severity_rank": a["severity_rank"],
        "reasons": a["reasons"],
        "classification_id": a["classification_id"],
        "updated_at": a["updated_at"],
        "last_seen_at": a["last_seen_at"],
        "ack_due_at": a["ack_due_at"],
        "visit_due_at": a["visit_due_at"],
        "acknowledged_at": a["acknowledged_at"],
        "household_id": a["household_id"],
        "village_id": a["village_id"],
        "supplier_id": a["supplier_id"],
    }


@dataclass
class ReportFacts:
    """A stored report (the grievance channel) to raise an alert for."""

    report_id: int
    village_id: int | None
    concern: list[str]
    reporter_type: str | None
    child_age_estimate: int | None
    reported_at: dt.datetime


def report_category(concern: Iterable[str]) -> str:
    """The gravest category a report's concerns may mean (``at_risk`` when none is recognised)."""
    found = [REPORT_CONCERN_CATEGORY.get(c, "at_risk") for c in concern] or ["at_risk"]
    return max(found, key=CATEGORY_ORDER.index)


def _raise_report_alerts(
    session: Session, reports: list[ReportFacts], now: dt.datetime, outcome: AlertOutcome
) -> None:
    rows = []
    for rep in reports:
        category = report_category(rep.concern)
        severity = rules.SEVERITY[category]
        ack_due, visit_due = rules.deadlines(category, now)
        facts = {"concern": list(rep.concern), "reporter_type": rep.reporter_type}
        if rep.child_age_estimate is not None:
            facts["child_age_estimate"] = rep.child_age_estimate
        rows.append({
            "source": "reported", "status": "new", "child_id": None, "household_id": None,
            "report_id": rep.report_id, "village_id": rep.village_id, "supplier_id": None,
            "category": category, "severity": severity,
            "severity_rank": rules.SEVERITY_RANK[severity],
            "reasons": [{"rule": "REPORTED_CONCERN", "facts": facts}],
            "needs_verification": True, "classification_id": None, "created_at": now,
            "updated_at": now, "last_seen_at": rep.reported_at, "ack_due_at": ack_due,
            "visit_due_at": visit_due,
        })  # fmt: skip
    ids = session.execute(_INSERT_ALERTS, rows).scalars().all()
    session.execute(
        _INSERT_EVENTS,
        [{"alert_id": i, "at": now, "user_id": None, "action": "raised",
          "detail": {"category": r["category"], "severity": r["severity"], "source": "reported"}}
         for i, r in zip(ids, rows, strict=True)],
    )  # fmt: skip
    outcome.raised += len(ids)
    urgent = [i for i, r in zip(ids, rows, strict=True) if r["severity_rank"] >= 3]
    outcome.urgent_alert_ids.extend(urgent)
