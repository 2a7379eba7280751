"""The intake pipeline: what becomes of a batch of received submissions, one step after another.

Each step is a function of a feature, handed the plain results of the step before::

    parse     forms.parse      the stored XML      -> Parsed (a record of our forms, or an error)
    place     geo.join         household visits'   -> Placement by submission id (the village
                               GPS points             whose cell holds the point, the distance
                                                      to the village chosen in the form)
    save      forms.store      records, placements -> Saved (issues for review; the child visits
                                                      and reports written)
    classify  alerts.classify  child visits        -> Classified (the rules' results, stored)
    entities  clms.cases       follow-ups'          -> versions of the case entities (phones'
              .entities        <meta><entity>         copies of the cases), conflicting offline
                                                      updates kept for the officer
    cases     clms.cases       classified visits   -> the children whose case took the visit
              .findings
    alerts    alerts.classify  the other children, -> AlertOutcome (alerts raised, updated, made
                               the reports            more severe; urgent ones queued for mail)

The cases are asked before the alerts are raised: a child with an open case (or a case closed
lately, found working again) gets no new alert, the visit goes to the case. Parsing runs outside
any transaction; :func:`run` does the rest in the caller's transaction, so a visit is never
stored without its classification and alerts, and never commits: the processing job
(:mod:`clms.intake.process`) is the boundary. Reclassification (:mod:`clms.intake.reclassify`)
ends with the same last two steps (:func:`route`).

The steps are given the configuration they need as plain values (:class:`Settings`, made by
the processing job or command from the application's configuration); nothing here reads it.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from alerts.classify import (
    AlertOutcome,
    ChildVisitFacts,
    Classified,
    ReportFacts,
    classify_visits,
    load_profiles,
    raise_alerts,
)
from alerts.rules import FACT_FIELDS
from clms.cases import workflow as wf
from clms.cases.entities import apply_followups, followup_updates
from clms.cases.findings import route_to_cases
from clms.config import gps_far_km, max_children_per_submission
from clms.facts import refresh_submissions
from clms.models import utcnow
from forms import store
from forms.parse import HouseholdVisitRecord, Record, parse_submission
from forms.xmlsafe import parse_xml
from geo.join import GpsPoint, Placement, place_points

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Settings:
    """What the steps are told by the configuration: ``far_km`` (``GPS_FAR_METRES`` in km) and
    ``max_children`` (``MAX_CHILDREN_PER_SUBMISSION``) for saving, ``case_policy`` (the
    ``CASE_*`` and ``REFERRAL_*`` settings) for the cases; the defaults when not given."""

    far_km: float = field(default_factory=gps_far_km)
    max_children: int = field(default_factory=max_children_per_submission)
    case_policy: wf.Policy = field(default_factory=wf.Policy)

    @classmethod
    def from_config(cls, config: Mapping | None) -> Settings:
        """The settings of ``config`` (an application's, a job's ``ctx.config``; None: the
        defaults)."""
        if config is None:
            return cls()
        return cls(
            gps_far_km(config), max_children_per_submission(config), wf.Policy.from_config(config)
        )


@dataclass
class Parsed:
    """A received submission after the parse step: its record, or why it could not be parsed."""

    id: int
    received_at: dt.datetime
    submitter_id: int | None
    record: Record | None  # None for a form that is not ours, or an error
    error: str | None = None  # the XML could not be parsed
    # the codes of the reasons a reviewer accepted (forms.decisions): not held for them again
    accepted: frozenset[str] = frozenset()


def parse(row) -> Parsed:
    """Step 1: the record of a received submission (a row with ``id``, ``xml``, ``received_at``
    and ``submitter_id``). Pure; a failure is kept as the error, never raised."""
    accepted = frozenset(getattr(row, "accepted_reasons", None) or ())
    try:
        record = parse_submission(parse_xml(row.xml))
    except Exception as exc:  # stored XML passed the same parser on arrival: a bug, not input
        log.exception("submission %d could not be parsed", row.id)
        return Parsed(row.id, row.received_at, row.submitter_id, None, failure(exc), accepted)
    return Parsed(row.id, row.received_at, row.submitter_id, record, None, accepted)


def failure(exc: Exception) -> str:
    """What a submission that could not be processed says for review."""
    return f"could not be processed: {type(exc).__name__}: {exc}"[:500]


def place(session: Session, items: list[store.Item]) -> dict[int, Placement]:
    """Step 2: where the household visits' GPS points are, for the whole batch with one spatial
    join, by submission id (visits without a point have none)."""
    points = []
    for item in items:
        record = item.record
        if isinstance(record, HouseholdVisitRecord) and record.gps is not None:
            lat, lon, _alt, accuracy = record.gps
            points.append(GpsPoint(item.submission_id, lat, lon, accuracy, record.village))
    return place_points(session, points) if points else {}


def findings(saved: store.Saved) -> tuple[list[ChildVisitFacts], list[ReportFacts]]:
    """What the saving step wrote, as the classifying and alerting steps read it."""
    visits = [
        ChildVisitFacts(
            child_visit_id=v.child_visit_id,
            child_id=v.child_id,
            household_id=v.household_id,
            village_id=v.village_id,
            supplier_id=v.supplier_id,
            seen_at=v.seen_at,
            facts={f: v.answers[f] for f in FACT_FIELDS},
            raise_alert=v.current,
            kind=v.kind,
            case_id=v.case_id,
            child_present=v.child_present,
            services_received=v.services_received,
        )
        for v in saved.child_visits
    ]
    reports = [
        ReportFacts(r.report_id, r.village_id, r.concern, r.reporter_type, r.child_age_estimate,
                    r.reported_at)
        for r in saved.reports
    ]  # fmt: skip
    return visits, reports


def route(
    session: Session,
    visits: list[ChildVisitFacts],
    classified: Classified,
    reports: list[ReportFacts],
    now: dt.datetime,
    outcome: AlertOutcome,
    policy: wf.Policy | None = None,
) -> AlertOutcome:
    """Steps 5 and 6: the cases of the children take the visits they follow (by the workflow's
    settings ``policy``; None: the defaults), then the alerts of the other children and of
    ``reports`` are raised or updated (added to ``outcome``)."""
    on_cases = (
        route_to_cases(session, visits, classified.categories, classified.ids, now, policy)
        if visits
        else set()
    )
    return raise_alerts(session, visits, classified, reports, now, outcome, skip=on_cases)


def run(
    session: Session,
    items: list[store.Item],
    *,
    now: dt.datetime | None = None,
    settings: Settings | None = None,
) -> tuple[store.Saved, AlertOutcome]:
    """Steps 2 to 6 for a batch of parsed submissions (in order of arrival), in the caller's
    transaction, with ``settings`` (None: the defaults); returns what was saved (each
    submission's issues for review) and what the alerts step did. Flushes, never commits."""
    settings = settings or Settings()
    saved = store.save_batch(
        session,
        items,
        place(session, items),
        far_km=settings.far_km,
        max_children=settings.max_children,
    )
    # a follow-up held for review (a case outside the monitor's villages, say) does not change
    # the phones' copy of the case until a reviewer lets it through
    updates = followup_updates(i for i in items if not saved.issues.get(i.submission_id))
    if updates:
        apply_followups(session, updates)
    visits, reports = findings(saved)
    outcome = AlertOutcome()
    if visits or reports:
        now = now or utcnow()
        classified = classify_visits(session, visits, load_profiles(session), now)
        outcome.classified = len(classified.ids)
        route(session, visits, classified, reports, now, outcome, settings.case_policy)
    # the kept facts of the children these submissions saw (issue 19)
    refresh_submissions(session, [i.submission_id for i in items])
    return saved, outcome
