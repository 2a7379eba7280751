"""The KPIs of domain.md section 7: one definition for the page, the API, the exports and the
nightly snapshot.

:func:`kpi_report` computes the figures a person may see (their scope, their filters);
:func:`take_kpi_snapshot` writes the same figures per area, every night, for trends;
:func:`child_visit_rows` streams the child visits behind them for the exports. Every figure is
set-based SQL (``GROUP BY``, window functions, ``UNION ALL``) that SQLite and PostgreSQL both run;
where the dialects differ (time arithmetic, reading a JSON list) the code branches on
``session.get_bind().dialect.name``. Nothing loops over children in Python: only the monitor
quality's GPS distances are measured in Python, over the visit rows.

Period and filters
------------------
The period is whole days in UTC, ``from`` to ``to`` inclusive, i.e. the half-open interval
``[from 00:00, to + 1 day 00:00)``; by default the 12 months up to today (``to`` today, ``from`` the
day after the same date a year earlier). Filters: an area (the villages in it and in every area
below it), a village, a supplier, a tier and a monitor; always within the person's scope
(:func:`clms.scope.village_scope_condition`). A person with no scope gets empty figures, never
everything; only the nightly job computes over everything.

How a row of each kind is placed in a group (and filtered):

=========================== ======== ============ ================================= ===========
rows                        village  supplier     monitor                           time
=========================== ======== ============ ================================= ===========
visits (households,         the      the visit's  the visit's monitor               visited_at
children, identification)   visit's  supplier,
                                     else the
                                     household's
alerts                      the      the alert's  the monitor of the visit whose    created_at
                            alert's               classification the alert carries
                                                  (a reported alert has none)
cases, their follow-ups     the      the case's   the case's follow-up monitor      see below
and delivered services      case's                (``Case.monitor_id``)
=========================== ======== ============ ================================= ===========

The area is the village's own area; the tier is the tier of that supplier. Time is the month or
quarter (the first and last clipped to the period) in which: a visit was made, an alert raised, a
case closed (open-to-close), a follow-up made, a service delivered; a case counts as open in every
month it was open in. A child, a household or a case counts once in every group it has rows in
(a child visited in January and March counts in both months); the overall row counts each once,
so group rows need not add up to it. Rows whose group is not recorded (a household with no
supplier, a visit with no monitor) form a group of their own, key ``None``.

Indicators of each row
----------------------
Children and households (current visits, current classifications, in the row's window):

- ``households_covered``: distinct households with a household visit (``kind`` household);
- ``children_monitored``: distinct children with a classified visit (household or follow-up);
- ``children_identified``: of those, children with at least one visit classified ``worst_form``,
  ``hazardous`` or ``child_labour``; ``identification_rate`` = identified / monitored (0-1, four
  decimals; None with no child monitored);
- ``by_category``: the children monitored by the category of their *latest* classification in
  the window (latest visit, then highest visit id); ``children_in_child_labour``: latest category
  one of the three above; ``sdg_871``: latest classification flagged for SDG 8.7.1;
- ``identified_remediated`` and ``pct_identified_remediated`` (percent, one decimal): identified
  children who received at least one remediation service before the window's end: a planned
  service of any of the child's cases delivered (``delivered_at``), a referral ``done`` with
  outcome ``service_provided`` or ``already_received_elsewhere`` (``done_at``, else
  ``responded_at``), or a current follow-up visit of the child's case reporting
  ``services_received`` other than ``none``;
- ``identified_followed_up`` (denominator), ``identified_no_longer_in_child_labour`` (numerator)
  and ``pct_identified_no_longer_in_child_labour``: identified children with at least one
  classified follow-up visit (``Visit.kind`` followup) before the window's end, and of them those
  whose latest such follow-up was not classified as child labour.

Alerts:

- ``median_days_alert_to_first_action`` (two decimals) over ``alerts_acted_on``: alerts raised in
  the window that have had a first action by now: the earliest of ``acknowledged_at``,
  ``dismissed_at`` and the opening of a case from the alert (``Case.alert_id``,
  ``Case.opened_at``); alerts not acted on yet are left out (the ``alerts_overdue`` count shows
  them);
- ``alerts_open`` (new or acknowledged, raised by now) and ``alerts_overdue`` (of those, the rule
  of :func:`alerts.escalate.overdue_alert_condition`): as they are *now*, whatever the period.

Cases:

- ``median_days_case_open_to_close`` over ``cases_closed``: cases in state ``closed`` whose
  ``closed_at`` is in the window, ``closed_at - opened_at``;
- ``followups`` (current follow-up visits of a case in the window), ``cases_open_in_period``
  (cases open at some time in the window: opened before its end and not closed or transferred
  before its start; a reopened case counts as open since its first opening) and
  ``followups_per_case`` = followups / cases_open_in_period (two decimals);
- ``cases_by_state``: cases by their state *now*;
- ``services_delivered_by_type`` and ``services_delivered``: planned services ``delivered`` in the
  window, by ``service_code``.

"Now" figures (alerts open and overdue, cases by state) have no time: in month and quarter rows
they are None. Medians of an even count are the mean of the middle two.

Monitor quality (:attr:`KpiReport.monitors`, one row per monitor with visits in the period):
``visits`` (current, both kinds), the monitor's ``children_monitored``, ``children_identified``
and ``identification_rate`` (as above, over the monitor's visits) against
``area_identification_rate``: the rate over every monitor's visits in the areas the monitor visited
in the period (same period, scope, area, supplier and tier filters; any village, any monitor);
``median_visit_minutes`` (``ended_at - started_at``, visits with both and not negative);
``share_short_visits``: of those, shorter than 10 minutes; ``share_far_gps``: of the visits with a
GPS point and a village point, more than 5 km from the village (haversine).

The nightly snapshot
--------------------
:func:`take_kpi_snapshot` stores, for day D, the overall row and one row per area that has
villages (group ``area``), each computed over the default period of day D (the 12 months up to
and including D) with the "now" figures as at the time of the run, plus ``as_of``. Changed from
the snapshot before these KPIs existed (deliberately, so that the trend uses the page's
definitions): the window is whole days instead of the 365 x 24 hours before the run;
``identification_rate`` is identified / monitored (it was latest-category child labour /
monitored, still stored as ``children_in_child_labour``); households count household visits only
(follow-ups no longer add a household); ``median_hours_alert_to_acknowledgement`` is replaced by
``median_days_alert_to_first_action``; and the snapshot now holds every indicator above.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from sqlalchemy import (
    ColumnElement,
    and_,
    case,
    delete,
    distinct,
    extract,
    func,
    literal,
    null,
    or_,
    select,
    union_all,
)
from sqlalchemy.orm import Session, aliased

from alerts.escalate import overdue_alert_condition
from alerts.rules import CATEGORIES
from clms.config import gps_far_km
from clms.errors import problem
from clms.i18n import N_, Msg
from clms.models import (
    ACTIVE_ALERT_STATUSES,
    CASE_STATES,
    Alert,
    Area,
    Case,
    Child,
    ChildVisit,
    Classification,
    Household,
    KpiSnapshot,
    PlannedService,
    Referral,
    ServiceType,
    Supplier,
    User,
    UTCDateTime,
    Village,
    Visit,
    utcnow,
)
from clms.scope import area_ids_in_scope, descendant_area_ids, village_scope_condition

#: the categories that are child labour (the rest: at risk, none)
CHILD_LABOUR = CATEGORIES[:3]
#: the ``group`` values: none gives the overall row only
GROUPS = ("none", "village", "area", "supplier", "tier", "monitor", "month", "quarter")
TIME_GROUPS = ("month", "quarter")
#: referral outcomes that mean the child received the service
SERVICE_RECEIVED_OUTCOMES = ("service_provided", "already_received_elsewhere")
#: a visit shorter than this is a sign of poor monitoring (domain.md section 7)
SHORT_VISIT_MINUTES = 10
#: the longest period a request may ask for
MAX_PERIOD_YEARS = 10
#: rows the child-visit export reads from the database at a time
EXPORT_CHUNK = 1000
#: the figures of a row, in the order the table and the exports show them
SCALAR_FIGURES = (
    "households_covered",
    "children_monitored",
    "children_identified",
    "identification_rate",
    "children_in_child_labour",
    "sdg_871",
    "identified_remediated",
    "pct_identified_remediated",
    "identified_followed_up",
    "identified_no_longer_in_child_labour",
    "pct_identified_no_longer_in_child_labour",
    "alerts_acted_on",
    "median_days_alert_to_first_action",
    "alerts_open",
    "alerts_overdue",
    "cases_closed",
    "median_days_case_open_to_close",
    "followups",
    "cases_open_in_period",
    "followups_per_case",
    "services_delivered",
)
#: the figures that are as they are now (None in month and quarter rows)
NOW_FIGURES = ("alerts_open", "alerts_overdue", "cases_by_state")
MONITOR_FIGURES = (
    "visits",
    "children_monitored",
    "children_identified",
    "identification_rate",
    "area_identification_rate",
    "visits_timed",
    "median_visit_minutes",
    "visits_short",
    "share_short_visits",
    "visits_with_gps",
    "visits_far",
    "share_far_gps",
)
#: the columns of the child-visit export: pseudonymous, no names, coordinates or free text
CHILD_VISIT_COLUMNS = (
    "child_uid",
    "visit_date",
    "kind",
    "village",
    "area",
    "supplier",
    "tier",
    "monitor",
    "age",
    "sex",
    "attends_school",
    "work_hours_7d",
    "chore_hours_7d",
    "hazards",
    "category",
    "sdg_871",
    "reason_rules",
)


# --- filters (pure) ------------------------------------------------------------------------------


@dataclass(frozen=True)
class KpiFilters:
    """What a request asks for: the period (whole days, inclusive), the filters, the grouping.

    >>> f = KpiFilters.default(dt.date(2025, 3, 3))
    >>> (f.date_from.isoformat(), f.date_to.isoformat(), f.group)
    ('2024-03-04', '2025-03-03', 'none')
    >>> f.start.isoformat(), f.end.isoformat()
    ('2024-03-04T00:00:00+00:00', '2025-03-04T00:00:00+00:00')
    """

    date_from: dt.date
    date_to: dt.date
    area: str | None = None
    village: str | None = None
    supplier: str | None = None
    tier: int | None = None
    monitor: str | None = None
    group: str = "none"

    @classmethod
    def default(cls, today: dt.date, **kwargs) -> KpiFilters:
        """The 12 months up to and including ``today``."""
        return cls(date_from=_year_before(today) + dt.timedelta(days=1), date_to=today, **kwargs)

    @property
    def start(self) -> dt.datetime:
        """The first instant of the period (UTC)."""
        return _midnight(self.date_from)

    @property
    def end(self) -> dt.datetime:
        """The first instant after the period (UTC)."""
        return _midnight(self.date_to + dt.timedelta(days=1))

    def query(self, **changes) -> dict[str, str]:
        """The filters as query-string parameters (only those set), for links and exports."""
        f = dataclasses.replace(self, **changes) if changes else self
        params = {
            "from": f.date_from.isoformat(),
            "to": f.date_to.isoformat(),
            "area": f.area,
            "village": f.village,
            "supplier": f.supplier,
            "tier": str(f.tier) if f.tier is not None else None,
            "monitor": f.monitor,
            "group": f.group if f.group != "none" else None,
        }
        return {k: v for k, v in params.items() if v}


def parse_filters(args: Mapping[str, str], today: dt.date) -> KpiFilters:
    """The filters of a request's query parameters: ``from`` and ``to`` (dates, YYYY-MM-DD),
    ``area``, ``village``, ``supplier``, ``monitor`` (codes, a username), ``tier`` (1, 2, ...),
    ``group`` (one of :data:`GROUPS`). Raises ``request.invalid_parameter`` naming the parameter.

    Codes are checked against the database by :func:`kpi_report`.

    >>> parse_filters({"from": "2025-01-01", "to": "2025-01-31", "group": "village"},
    ...               dt.date(2025, 3, 3)).group
    'village'
    >>> parse_filters({"tier": "0"}, dt.date(2025, 3, 3))
    Traceback (most recent call last):
    ...
    clms.errors.Problem: 400.12 Parameter 'tier' must be a whole number, 1 or more, not '0'.
    """

    def text(name: str) -> str | None:
        value = (args.get(name) or "").strip()
        return value or None

    date_to = _date(args, "to") or today
    date_from = _date(args, "from") or _year_before(date_to) + dt.timedelta(days=1)
    if date_from > date_to:
        raise _invalid("from", Msg("must not be after 'to' ({to})", to=date_to.isoformat()))
    if date_from < _year_before(date_to, MAX_PERIOD_YEARS):
        raise _invalid(
            "from", Msg("must be at most {years} years before 'to'", years=MAX_PERIOD_YEARS)
        )
    tier = text("tier")
    if tier is not None:
        if not tier.isdigit() or int(tier) < 1:
            raise _invalid(
                "tier", Msg("must be a whole number, 1 or more, not {value!r}", value=tier)
            )
        tier = int(tier)
    group = text("group") or "none"
    if group not in GROUPS:
        raise _invalid("group", Msg("must be one of {choices}", choices=", ".join(GROUPS)))
    return KpiFilters(
        date_from=date_from,
        date_to=date_to,
        area=text("area"),
        village=text("village"),
        supplier=text("supplier"),
        tier=tier,
        monitor=text("monitor"),
        group=group,
    )


def time_windows(filters: KpiFilters) -> list[tuple[str, dt.datetime, dt.datetime]]:
    """``(key, start, end)`` of each month or quarter of the period (clipped to it), or one
    window, key ``""``, for the whole period when the grouping is not by time.

    >>> [w[0] for w in time_windows(KpiFilters(dt.date(2024, 11, 15), dt.date(2025, 2, 1),
    ...                                        group="quarter"))]
    ['2024-Q4', '2025-Q1']
    """
    if filters.group not in TIME_GROUPS:
        return [("", filters.start, filters.end)]
    months = 1 if filters.group == "month" else 3
    first = filters.date_from.replace(day=1)
    first = first.replace(month=first.month - (first.month - 1) % months)
    out = []
    while first <= filters.date_to:
        following = _add_months(first, months)
        key = (
            f"{first.year}-{first.month:02d}"
            if months == 1
            else f"{first.year}-Q{(first.month - 1) // 3 + 1}"
        )
        out.append(
            (
                key,
                _midnight(max(first, filters.date_from)),
                _midnight(min(following, filters.date_to + dt.timedelta(days=1))),
            )
        )
        first = following
    return out


# --- the report ----------------------------------------------------------------------------------


@dataclass
class KpiReport:
    """The figures of one request: the overall row, one row per group, the monitors' quality.

    Each row is a dict: ``key`` (a code, a username, a tier, ``2025-01``, ``2025-Q1``; None for
    the overall row and for a group not recorded), ``label`` (a name to show) and the figures
    named in the module documentation.
    """

    filters: KpiFilters
    as_of: dt.datetime
    overall: dict
    rows: list[dict] = field(default_factory=list)
    monitors: list[dict] = field(default_factory=list)
    in_scope: bool = True

    def as_dict(self) -> dict:
        """The report as plain JSON-ready data (the API's answer)."""
        f = self.filters
        return {
            "as_of": self.as_of.astimezone(dt.UTC).isoformat(),
            "filters": {
                "from": f.date_from.isoformat(),
                "to": f.date_to.isoformat(),
                "area": f.area,
                "village": f.village,
                "supplier": f.supplier,
                "tier": f.tier,
                "monitor": f.monitor,
                "group": f.group,
            },
            "overall": self.overall,
            "groups": self.rows,
            "monitors": self.monitors,
        }


def empty_figures(*, timed: bool = False) -> dict:
    """A row with nothing counted (``timed``: a month or quarter row, whose "now" figures are
    None)."""
    row: dict = {name: 0 for name in SCALAR_FIGURES}
    for name in (
        "identification_rate",
        "pct_identified_remediated",
        "pct_identified_no_longer_in_child_labour",
        "median_days_alert_to_first_action",
        "median_days_case_open_to_close",
        "followups_per_case",
    ):
        row[name] = None
    row["by_category"] = {c: 0 for c in CATEGORIES}
    row["cases_by_state"] = {s: 0 for s in CASE_STATES}
    row["services_delivered_by_type"] = {}
    if timed:
        for name in NOW_FIGURES:
            row[name] = None
    return row


def kpi_report(
    session: Session, user: User, filters: KpiFilters, *, now: dt.datetime | None = None
) -> KpiReport:
    """The KPIs ``user`` may see for ``filters``: only the villages in their scope; empty
    figures for a user with no scope (a brand, a provider, an administrator without one).

    Raises ``request.invalid_parameter`` for a code that names nothing (a village, an area, a
    supplier, a monitor's username). A code outside the user's scope filters to nothing.

    >>> report = kpi_report(session, officer, KpiFilters.default(dt.date.today()))  # doctest: +SKIP
    >>> report.overall["identification_rate"]  # doctest: +SKIP
    0.15
    """
    now = now or utcnow()
    resolved = _resolve(session, filters)
    scope = village_scope_condition(session, user, _SCOPE_VILLAGE.id)
    if scope is None:
        overall = _label(empty_figures(), None, "")
        return KpiReport(filters, now, overall, [], [], in_scope=False)
    return _compute(session, filters, resolved, scope, now)


def compute_everything(
    session: Session, filters: KpiFilters, *, now: dt.datetime | None = None
) -> KpiReport:
    """The KPIs over every village and what has none: for the nightly snapshot only, never for
    a person (use :func:`kpi_report`)."""
    return _compute(session, filters, _resolve(session, filters), None, now or utcnow())


def take_kpi_snapshot(session: Session, day: dt.date, *, now: dt.datetime | None = None) -> int:
    """Write the KPI snapshot of ``day`` (one row per area with villages, one overall), replacing
    that day's rows; returns how many rows were written.

    The figures are those of the default period of ``day`` (the 12 months up to and including
    it), the "now" figures as at ``now`` when given (the nightly job passes the time it runs),
    else as at the end of ``day`` (UTC). Flushes; the caller commits.

    >>> take_kpi_snapshot(session, dt.date(2025, 3, 1))  # doctest: +SKIP
    5
    """
    as_of = now or _midnight(day + dt.timedelta(days=1))
    report = compute_everything(session, KpiFilters.default(day, group="area"), now=as_of)
    by_area = {row["area_id"]: row for row in report.rows if row["area_id"] is not None}
    area_ids = sorted(session.scalars(select(Village.area_id).distinct()).all())
    session.execute(delete(KpiSnapshot).where(KpiSnapshot.taken_on == day))
    created = utcnow()
    rows = []
    for area_id in [*area_ids, None]:
        row = report.overall if area_id is None else by_area.get(area_id) or empty_figures()
        figures = {"as_of": as_of.astimezone(dt.UTC).isoformat()}
        figures.update({k: v for k, v in row.items() if k not in _ROW_IDENTITY})
        rows.append(KpiSnapshot(taken_on=day, area_id=area_id, figures=figures, created_at=created))
    session.add_all(rows)
    session.flush()
    return len(rows)


def filter_choices(session: Session, user: User) -> dict[str, list]:
    """What the filter form offers ``user``: the areas and villages of their scope, the
    suppliers buying there, the tiers, and the monitors who visited there.

    Lists of ``(code, name)`` (tiers: ints; monitors: usernames).
    """
    scope = village_scope_condition(session, user, _SCOPE_VILLAGE.id)
    if scope is None:
        return {"areas": [], "villages": [], "suppliers": [], "tiers": [], "monitors": []}
    villages = session.execute(
        select(_SCOPE_VILLAGE.id, _SCOPE_VILLAGE.code, _SCOPE_VILLAGE.name)
        .where(scope)
        .order_by(_SCOPE_VILLAGE.code)
    ).all()
    areas = session.execute(
        select(Area.code, Area.name)
        .where(Area.id.in_(sorted(area_ids_in_scope(session, user))))
        .order_by(Area.code)
    ).all()
    suppliers = session.execute(
        select(Supplier.code, Supplier.name, Supplier.tier).order_by(Supplier.tier, Supplier.code)
    ).all()
    visited = select(Visit.monitor_id).where(
        Visit.village_id.in_(select(_SCOPE_VILLAGE.id).where(scope))
    )
    monitors = session.scalars(
        select(User.username).where(User.id.in_(visited)).order_by(User.username)
    ).all()
    return {
        "areas": [(a.code, a.name) for a in areas],
        "villages": [(v.code, v.name) for v in villages],
        "suppliers": [(s.code, s.name) for s in suppliers],
        "tiers": sorted({s.tier for s in suppliers}),
        "monitors": list(monitors),
    }


# --- the child-visit export ----------------------------------------------------------------------


def child_visit_rows(
    session: Session, user: User, filters: KpiFilters, *, chunk: int = EXPORT_CHUNK
) -> Iterator[tuple]:
    """One tuple per current child visit in ``user``'s scope and ``filters`` (the period is the
    visit's date), oldest first, in the order of :data:`CHILD_VISIT_COLUMNS`: the pseudonymous
    child id and the facts the classifier read, never a name, a coordinate or free text.

    The filters are checked at once (``request.invalid_parameter``); the rows are read when the
    iterator is, through a server-side cursor ``chunk`` rows at a time, so memory stays the same
    however many rows there are. Lists (hazards, reason rule ids) are joined with spaces, as ODK
    writes a multiple choice. Nothing for a user with no scope.
    """
    resolved = _resolve(session, filters)
    scope = village_scope_condition(session, user, _SCOPE_VILLAGE.id)
    if scope is None:
        return iter(())
    ctx = _Context.build(session, filters, resolved, scope, utcnow())
    dims = visit_dims()
    monitor = aliased(User, name="monitor_user")
    stmt = (
        select(
            Child.child_uid,
            Visit.visited_at,
            Visit.kind,
            Village.code,
            Area.code,
            Supplier.code,
            Supplier.tier,
            monitor.username,
            ChildVisit.age,
            func.coalesce(ChildVisit.sex, Child.sex),
            ChildVisit.attends_school,
            ChildVisit.work_hours_7d,
            ChildVisit.chore_hours_7d,
            ChildVisit.hazards,
            Classification.category,
            Classification.sdg_871,
            Classification.reasons,
        )
        .select_from(ChildVisit)
        .join(Visit, Visit.id == ChildVisit.visit_id)
        .join(Child, Child.id == ChildVisit.child_id)
        .outerjoin(
            Classification,
            and_(Classification.child_visit_id == ChildVisit.id, Classification.current),
        )
    )
    stmt = (
        _join_visit_dims(stmt)
        .outerjoin(Area, Area.id == Village.area_id)
        .outerjoin(monitor, monitor.id == Visit.monitor_id)
        .where(
            Visit.current,
            Visit.visited_at >= filters.start,
            Visit.visited_at < filters.end,
            *ctx.conditions(dims),
        )
        .order_by(Visit.visited_at, Visit.id, ChildVisit.position, ChildVisit.id)
        .execution_options(stream_results=True, yield_per=chunk)
    )
    return _child_visit_tuples(session, stmt)


def _child_visit_tuples(session: Session, stmt) -> Iterator[tuple]:
    for row in session.execute(stmt):
        (uid, visited_at, kind, village, area, supplier, tier, username, age, sex, school,
         work, chores, hazards, category, sdg, reasons) = row  # fmt: skip
        yield (
            uid,
            visited_at.date(),
            kind,
            village,
            area,
            supplier,
            tier,
            username,
            age,
            sex,
            school,
            work,
            chores,
            _words(hazards),
            category,
            sdg,
            _words(r.get("rule") if isinstance(r, dict) else r for r in (reasons or [])),
        )


def service_names(session: Session) -> dict[str, tuple[str, str]]:
    """``{service code: (English name, French name)}`` of the service catalogue."""
    return {
        code: (en, fr)
        for code, en, fr in session.execute(
            select(ServiceType.code, ServiceType.name_en, ServiceType.name_fr)
        )
    }


def empty_report(filters: KpiFilters, now: dt.datetime | None = None) -> KpiReport:
    """A report with nothing counted (a page whose filters could not be read)."""
    return KpiReport(filters, now or utcnow(), _label(empty_figures(), None, ""), in_scope=False)


def kpi_table(report: KpiReport) -> tuple[list[str], Iterator[list]]:
    """The KPI table as a header and rows (overall first), for the CSV and XLSX exports:
    scalar figures, then one column per category, case state and service code."""
    rows = [report.overall, *report.rows]
    services = sorted({code for r in rows for code in (r["services_delivered_by_type"] or {})})
    header = [
        "group",
        "key",
        "label",
        *SCALAR_FIGURES,
        *(f"children_latest_{c}" for c in CATEGORIES),
        *(f"cases_{s}" for s in CASE_STATES),
        *(f"services_{s}" for s in services),
    ]

    def lines():
        for i, r in enumerate(rows):
            states = r["cases_by_state"]
            yield [
                "overall" if i == 0 else report.filters.group,
                r["key"],
                r["label"],
                *(r[name] for name in SCALAR_FIGURES),
                *(r["by_category"][c] for c in CATEGORIES),
                *((states or {}).get(s) if states is not None else None for s in CASE_STATES),
                *(r["services_delivered_by_type"].get(s, 0) for s in services),
            ]

    return header, lines()


# --- computing -----------------------------------------------------------------------------------

# the village table as the scope condition names it: an alias of its own, so that the scope's
# subquery of villages (clms.scope) is never correlated with a query joining ``villages``
_SCOPE_VILLAGE = aliased(Village, name="scope_village")
_ROW_IDENTITY = ("key", "label", "area_id")


@dataclass(frozen=True)
class _Resolved:
    area_ids: frozenset[int] | None
    village_id: int | None
    supplier_id: int | None
    monitor_id: int | None


@dataclass(frozen=True)
class _Dims:
    """The SQL expressions placing one kind of row in a village, area, supplier, tier, monitor."""

    village: ColumnElement
    area: ColumnElement
    supplier: ColumnElement
    tier: ColumnElement
    monitor: ColumnElement


@dataclass
class _Context:
    session: Session
    filters: KpiFilters
    resolved: _Resolved
    now: dt.datetime
    dialect: str
    villages: object | None  # a CTE of the villages allowed (scope, area, village), or None: all
    area_villages: object | None  # the same without the village filter

    @classmethod
    def build(cls, session, filters, resolved, scope, now) -> _Context:
        def allowed(with_village: bool):
            conditions = [] if scope is None else [scope]
            if resolved.area_ids is not None:
                conditions.append(_SCOPE_VILLAGE.area_id.in_(sorted(resolved.area_ids)))
            if with_village and resolved.village_id is not None:
                conditions.append(_SCOPE_VILLAGE.id == resolved.village_id)
            if not conditions:
                return None
            name = "kpi_villages" if with_village else "kpi_area_villages"
            return select(_SCOPE_VILLAGE.id.label("id")).where(*conditions).cte(name)

        return cls(
            session,
            filters,
            resolved,
            now,
            session.get_bind().dialect.name,
            allowed(True),
            allowed(False),
        )

    def conditions(self, dims: _Dims, *, monitor: bool = True, village: bool = True) -> list:
        """The scope and the filters, on one kind of row (``monitor``/``village`` False: without
        the monitor or the village filter, for the monitors' area comparison)."""
        r = self.resolved
        villages = self.villages if village else self.area_villages
        out = []
        if villages is not None:
            out.append(dims.village.in_(select(villages.c.id)))
        if r.supplier_id is not None:
            out.append(dims.supplier == r.supplier_id)
        if self.filters.tier is not None:
            out.append(dims.tier == self.filters.tier)
        if monitor and r.monitor_id is not None:
            out.append(dims.monitor == r.monitor_id)
        return out

    def windows(self, group: str):
        """A CTE of the time windows of ``group`` (key ``k``, start ``s``, end ``e``)."""
        filters = dataclasses.replace(self.filters, group=group if group in TIME_GROUPS else "none")
        parts = [
            select(
                literal(key).label("k"),
                literal(start, UTCDateTime()).label("s"),
                literal(end, UTCDateTime()).label("e"),
            )
            for key, start, end in time_windows(filters)
        ]
        return (union_all(*parts) if len(parts) > 1 else parts[0]).cte("kpi_windows")

    def days(self, start, end):
        """Days from ``start`` to ``end`` (two datetime expressions), as a float."""
        if self.dialect == "postgresql":
            return extract("epoch", end - start) / 86400.0
        return func.julianday(end) - func.julianday(start)


def visit_dims() -> _Dims:
    """Where a visit row is placed: its village, the village's area, its supplier (else the
    household's), that supplier's tier, its monitor (for :func:`classified_in_windows`)."""
    return _Dims(
        Visit.village_id,
        Village.area_id,
        func.coalesce(Visit.supplier_id, Household.supplier_id),
        Supplier.tier,
        Visit.monitor_id,
    )


def _join_visit_dims(stmt):
    """``stmt`` (selecting from visits) joined to what places a visit in groups."""
    return (
        stmt.outerjoin(Household, Household.id == Visit.household_id)
        .outerjoin(Village, Village.id == Visit.village_id)
        .outerjoin(Supplier, Supplier.id == func.coalesce(Visit.supplier_id, Household.supplier_id))
    )


def classified_in_windows(columns, windows):
    """``columns`` selected from the current classifications of the current visits in
    ``windows``, joined to what places a visit in groups (:func:`_join_visit_dims`)."""
    return _join_visit_dims(current_classifications_in_windows(columns, windows))


def current_classifications_in_windows(columns, windows):
    """``columns`` selected from the current classifications (``Classification``, its
    ``ChildVisit`` and ``Visit``) of the current visits in ``windows`` (a CTE with the columns
    ``s`` and ``e``), without the joins that place a visit in groups: what counts as a child's
    classification, for the indicators and the hotspot figures (:mod:`geo.hotspots`)."""
    return (
        columns.select_from(Classification)
        .join(ChildVisit, ChildVisit.id == Classification.child_visit_id)
        .join(Visit, Visit.id == ChildVisit.visit_id)
        .join(windows, _in_window(Visit.visited_at, windows))
        .where(Classification.current, Visit.current)
    )


_ALERT_CLASSIFICATION = aliased(Classification, name="alert_classification")
_ALERT_CHILD_VISIT = aliased(ChildVisit, name="alert_child_visit")
_ALERT_VISIT = aliased(Visit, name="alert_visit")


def _alert_dims() -> _Dims:
    return _Dims(
        Alert.village_id, Village.area_id, Alert.supplier_id, Supplier.tier, _ALERT_VISIT.monitor_id
    )


def _join_alert_dims(stmt):
    return (
        stmt.outerjoin(Village, Village.id == Alert.village_id)
        .outerjoin(Supplier, Supplier.id == Alert.supplier_id)
        .outerjoin(_ALERT_CLASSIFICATION, _ALERT_CLASSIFICATION.id == Alert.classification_id)
        .outerjoin(
            _ALERT_CHILD_VISIT, _ALERT_CHILD_VISIT.id == _ALERT_CLASSIFICATION.child_visit_id
        )
        .outerjoin(_ALERT_VISIT, _ALERT_VISIT.id == _ALERT_CHILD_VISIT.visit_id)
    )


def _case_dims() -> _Dims:
    return _Dims(Case.village_id, Village.area_id, Case.supplier_id, Supplier.tier, Case.monitor_id)


def _join_case_dims(stmt):
    return stmt.outerjoin(Village, Village.id == Case.village_id).outerjoin(
        Supplier, Supplier.id == Case.supplier_id
    )


def _key(group: str, dims: _Dims, windows) -> ColumnElement:
    """The group key of a row: a dimension, the time window's key, or NULL for the overall."""
    if group in TIME_GROUPS:
        return windows.c.k
    column = {
        "village": dims.village,
        "area": dims.area,
        "supplier": dims.supplier,
        "tier": dims.tier,
        "monitor": dims.monitor,
    }.get(group)
    return null() if column is None else column


def _in_window(column, windows) -> ColumnElement[bool]:
    return and_(column >= windows.c.s, column < windows.c.e)


def _compute(session, filters, resolved, scope, now) -> KpiReport:
    ctx = _Context.build(session, filters, resolved, scope, now)
    overall = _figures(ctx, "none")[None]
    overall = _label(overall, None, "")
    rows = []
    if filters.group != "none":
        by_key = _figures(ctx, filters.group)
        if filters.group in TIME_GROUPS:
            # every month or quarter of the period, also those with nothing in them
            for key, _start, _end in time_windows(filters):
                by_key.setdefault(key, empty_figures(timed=True))
        rows = _labelled_rows(session, filters.group, by_key)
    monitors = _monitor_quality(ctx)
    return KpiReport(filters, now, overall, rows, monitors)


def _figures(ctx: _Context, group: str) -> dict:
    """``{group key: row}`` of every figure for one grouping (``none``: ``{None: overall}``)."""
    timed = group in TIME_GROUPS
    rows: dict = {}

    def row(key):
        return rows.setdefault(key, empty_figures(timed=timed))

    if group == "none":
        row(None)
    windows = ctx.windows(group)
    for key, n in _households(ctx, group, windows):
        row(key)["households_covered"] = n
    for key, values in _children(ctx, group, windows).items():
        row(key).update(values)
    for key, (denominator, numerator) in _followup_outcomes(ctx, group, windows).items():
        r = row(key)
        r["identified_followed_up"] = denominator
        r["identified_no_longer_in_child_labour"] = numerator
    for key, (n, median) in _alert_first_action(ctx, group, windows).items():
        row(key).update(alerts_acted_on=n, median_days_alert_to_first_action=_round(median, 2))
    if not timed:
        for key, n, overdue in _alerts_now(ctx, group):
            row(key).update(alerts_open=n, alerts_overdue=int(overdue or 0))
        for key, state, n in _cases_now(ctx, group):
            row(key)["cases_by_state"][state] = n
    for key, (n, median) in _case_open_to_close(ctx, group, windows).items():
        row(key).update(cases_closed=n, median_days_case_open_to_close=_round(median, 2))
    for key, n in _followups(ctx, group, windows):
        row(key)["followups"] = n
    for key, n in _cases_open(ctx, group, windows):
        row(key)["cases_open_in_period"] = n
    for key, code, n in _services(ctx, group, windows):
        r = row(key)
        r["services_delivered_by_type"][code] = n
        r["services_delivered"] += n
    for r in rows.values():
        _ratios(r)
    return rows


def _ratios(r: dict) -> None:
    r["identification_rate"] = _share(r["children_identified"], r["children_monitored"], 4)
    r["pct_identified_remediated"] = _pct(r["identified_remediated"], r["children_identified"])
    r["pct_identified_no_longer_in_child_labour"] = _pct(
        r["identified_no_longer_in_child_labour"], r["identified_followed_up"]
    )
    r["followups_per_case"] = _share(r["followups"], r["cases_open_in_period"], 2)


# --- children and households ---


def _households(ctx: _Context, group: str, windows) -> list:
    dims = visit_dims()
    inner = (
        _join_visit_dims(
            select(_key(group, dims, windows).label("k"), Visit.household_id.label("household_id"))
            .select_from(Visit)
            .join(windows, _in_window(Visit.visited_at, windows))
        )
        .where(
            Visit.current,
            Visit.kind == "household",
            Visit.household_id.is_not(None),
            *ctx.conditions(dims),
        )
        .subquery("household_visits")
    )
    return ctx.session.execute(
        select(inner.c.k, func.count(distinct(inner.c.household_id))).group_by(inner.c.k)
    ).all()


def _latest_classifications(ctx: _Context, group: str, windows, *, monitor=True, village=True):
    """A subquery: for each group key and child, the child's latest classification in the
    window (``category``, ``sdg``), whether any was child labour (``identified``) and the
    window's end (``e``)."""
    dims = visit_dims()
    key = _key(group, dims, windows)
    partition = [ChildVisit.child_id] if group == "none" else [key, ChildVisit.child_id]
    in_labour = case((Classification.category.in_(CHILD_LABOUR), 1), else_=0)
    ranked = (
        classified_in_windows(
            select(
                key.label("k"),
                ChildVisit.child_id.label("child_id"),
                Classification.category.label("category"),
                Classification.sdg_871.label("sdg"),
                windows.c.e.label("e"),
                func.max(in_labour).over(partition_by=partition).label("identified"),
                func.row_number()
                .over(
                    partition_by=partition,
                    order_by=(Visit.visited_at.desc(), Visit.id.desc(), ChildVisit.id.desc()),
                )
                .label("rn"),
            ),
            windows,
        )
        .where(*ctx.conditions(dims, monitor=monitor, village=village))
        .subquery("ranked_classifications")
    )
    return (
        select(
            ranked.c.k,
            ranked.c.child_id,
            ranked.c.category,
            ranked.c.sdg,
            ranked.c.e,
            ranked.c.identified,
        )  # fmt: skip
        .where(ranked.c.rn == 1)
        .subquery("latest_classifications")
    )


def _first_remediation(ctx: _Context):
    """A subquery: each child's first remediation service (``child_id``, ``first_at``)."""
    return first_remediation(ctx.dialect)


def first_remediation(dialect: str):
    """A subquery: each child's first remediation service (``child_id``, ``first_at``), as the
    KPIs define it (the module documentation); ``dialect``: ``session.get_bind().dialect.name``.
    Shared with the hotspot figures (:mod:`geo.hotspots`)."""
    # a follow-up reporting a service: its services_received list holds a code other than "none"
    if dialect == "postgresql":
        as_array = case(
            (func.jsonb_typeof(Visit.services_received) == "array", Visit.services_received),
            else_=func.jsonb("[]"),
        )
        code = func.jsonb_array_elements_text(as_array).column_valued("code")
        reported = select(code).where(code != "none")
    else:
        received = func.json_each(Visit.services_received).table_valued("value", "type")
        reported = select(received.c.value).where(
            received.c.type == "text", received.c.value != "none"
        )
    events = union_all(
        select(Case.child_id.label("child_id"), PlannedService.delivered_at.label("at"))
        .join(Case, Case.id == PlannedService.case_id)
        .where(PlannedService.status == "delivered", PlannedService.delivered_at.is_not(None)),
        select(Case.child_id, func.coalesce(Referral.done_at, Referral.responded_at))
        .join(Case, Case.id == Referral.case_id)
        .where(
            Referral.status == "done",
            Referral.outcome.in_(SERVICE_RECEIVED_OUTCOMES),
            func.coalesce(Referral.done_at, Referral.responded_at).is_not(None),
        ),
        select(Case.child_id, Visit.visited_at)
        .join(Case, Case.id == Visit.case_id)
        .where(Visit.current, Visit.kind == "followup", reported.exists()),
    ).subquery("remediation_events")
    return (
        select(events.c.child_id, func.min(events.c.at).label("first_at"))
        .group_by(events.c.child_id)
        .subquery("first_remediation")
    )


def _children(ctx: _Context, group: str, windows) -> dict:
    latest = _latest_classifications(ctx, group, windows)
    first = _first_remediation(ctx)
    identified = latest.c.identified == 1
    columns = [
        func.count().label("monitored"),
        func.sum(latest.c.identified).label("identified"),
        func.sum(case((latest.c.category.in_(CHILD_LABOUR), 1), else_=0)).label("in_labour"),
        func.sum(case((latest.c.sdg, 1), else_=0)).label("sdg"),
        func.sum(case((and_(identified, first.c.first_at < latest.c.e), 1), else_=0)).label(
            "remediated"
        ),
        *(
            func.sum(case((latest.c.category == c, 1), else_=0)).label(f"cat_{c}")
            for c in CATEGORIES
        ),
    ]
    out = {}
    for r in ctx.session.execute(
        select(latest.c.k, *columns)
        .select_from(latest)
        .outerjoin(first, first.c.child_id == latest.c.child_id)
        .group_by(latest.c.k)
    ).mappings():
        out[r["k"]] = {
            "children_monitored": r["monitored"],
            "children_identified": int(r["identified"] or 0),
            "children_in_child_labour": int(r["in_labour"] or 0),
            "sdg_871": int(r["sdg"] or 0),
            "identified_remediated": int(r["remediated"] or 0),
            "by_category": {c: int(r[f"cat_{c}"] or 0) for c in CATEGORIES},
        }
    return out


def _followup_outcomes(ctx: _Context, group: str, windows) -> dict:
    """``{key: (identified children followed up, of them not in child labour at the latest)}``."""
    latest = _latest_classifications(ctx, group, windows)
    followups = (
        select(
            ChildVisit.child_id.label("child_id"),
            Visit.visited_at.label("at"),
            Visit.id.label("visit_id"),
            Classification.category.label("category"),
        )
        .select_from(Classification)
        .join(ChildVisit, ChildVisit.id == Classification.child_visit_id)
        .join(Visit, Visit.id == ChildVisit.visit_id)
        .where(Classification.current, Visit.current, Visit.kind == "followup")
        .subquery("classified_followups")
    )
    partition = [latest.c.child_id] if group == "none" else [latest.c.k, latest.c.child_id]
    ranked = (
        select(
            latest.c.k,
            followups.c.category,
            func.row_number()
            .over(
                partition_by=partition,
                order_by=(followups.c.at.desc(), followups.c.visit_id.desc()),
            )
            .label("rn"),
        )
        .select_from(latest)
        .join(
            followups,
            and_(followups.c.child_id == latest.c.child_id, followups.c.at < latest.c.e),
        )
        .where(latest.c.identified == 1)
        .subquery("latest_followups")
    )
    out = {}
    for key, followed, free in ctx.session.execute(
        select(
            ranked.c.k,
            func.count(),
            func.sum(case((ranked.c.category.in_(CHILD_LABOUR), 0), else_=1)),
        )
        .where(ranked.c.rn == 1)
        .group_by(ranked.c.k)
    ):
        out[key] = (followed, int(free or 0))
    return out


# --- alerts ---


def _alert_first_action(ctx: _Context, group: str, windows) -> dict:
    """``{key: (alerts acted on, median days to the first action)}``."""
    f = ctx.filters
    raised = and_(Alert.created_at >= f.start, Alert.created_at < f.end)
    actions = union_all(
        select(Alert.id.label("alert_id"), Alert.acknowledged_at.label("at")).where(
            raised, Alert.acknowledged_at.is_not(None)
        ),
        select(Alert.id, Alert.dismissed_at).where(raised, Alert.dismissed_at.is_not(None)),
        select(Case.alert_id, Case.opened_at).join(Alert, Alert.id == Case.alert_id).where(raised),
    ).subquery("alert_actions")
    first = (
        select(actions.c.alert_id, func.min(actions.c.at).label("first_at"))
        .group_by(actions.c.alert_id)
        .subquery("first_actions")
    )
    dims = _alert_dims()
    values = _join_alert_dims(
        select(
            _key(group, dims, windows).label("k"),
            ctx.days(Alert.created_at, first.c.first_at).label("v"),
        )
        .select_from(Alert)
        .join(first, first.c.alert_id == Alert.id)
        .join(windows, _in_window(Alert.created_at, windows))
    ).where(first.c.first_at <= ctx.now, *ctx.conditions(dims))
    return _medians(ctx, values.subquery("alert_days"))


def _alerts_now(ctx: _Context, group: str) -> list:
    dims = _alert_dims()
    inner = (
        _join_alert_dims(
            select(
                _key(group, dims, None).label("k"),
                case((overdue_alert_condition(ctx.now), 1), else_=0).label("overdue"),
            ).select_from(Alert)
        )
        .where(
            Alert.status.in_(ACTIVE_ALERT_STATUSES),
            Alert.created_at <= ctx.now,
            *ctx.conditions(dims),
        )
        .subquery("open_alerts")
    )
    return ctx.session.execute(
        select(inner.c.k, func.count(), func.sum(inner.c.overdue)).group_by(inner.c.k)
    ).all()


# --- cases ---


def _case_end():
    """When a case stopped being open here: closed, or transferred; NULL while open."""
    return case(
        (Case.state == "closed", Case.closed_at),
        (Case.state == "transferred", Case.state_changed_at),
        else_=null(),
    )


def _cases_now(ctx: _Context, group: str) -> list:
    dims = _case_dims()
    inner = (
        _join_case_dims(
            select(_key(group, dims, None).label("k"), Case.state.label("state")).select_from(Case)
        )
        .where(*ctx.conditions(dims))
        .subquery("cases_now")
    )
    return ctx.session.execute(
        select(inner.c.k, inner.c.state, func.count()).group_by(inner.c.k, inner.c.state)
    ).all()


def _case_open_to_close(ctx: _Context, group: str, windows) -> dict:
    dims = _case_dims()
    values = _join_case_dims(
        select(
            _key(group, dims, windows).label("k"),
            ctx.days(Case.opened_at, Case.closed_at).label("v"),
        )
        .select_from(Case)
        .join(windows, _in_window(Case.closed_at, windows))
    ).where(Case.state == "closed", *ctx.conditions(dims))
    return _medians(ctx, values.subquery("case_days"))


def _followups(ctx: _Context, group: str, windows) -> list:
    dims = _case_dims()
    inner = (
        _join_case_dims(
            select(_key(group, dims, windows).label("k"), Visit.id.label("visit_id"))
            .select_from(Visit)
            .join(Case, Case.id == Visit.case_id)
            .join(windows, _in_window(Visit.visited_at, windows))
        )
        .where(Visit.current, Visit.kind == "followup", *ctx.conditions(dims))
        .subquery("followups")
    )
    return ctx.session.execute(select(inner.c.k, func.count()).group_by(inner.c.k)).all()


def _cases_open(ctx: _Context, group: str, windows) -> list:
    dims = _case_dims()
    end = _case_end()
    inner = (
        _join_case_dims(
            select(_key(group, dims, windows).label("k"), Case.id.label("case_id"))
            .select_from(Case)
            .join(
                windows,
                and_(Case.opened_at < windows.c.e, or_(end.is_(None), end >= windows.c.s)),
            )
        )
        .where(*ctx.conditions(dims))
        .subquery("open_cases")
    )
    return ctx.session.execute(select(inner.c.k, func.count()).group_by(inner.c.k)).all()


def _services(ctx: _Context, group: str, windows) -> list:
    dims = _case_dims()
    inner = (
        _join_case_dims(
            select(_key(group, dims, windows).label("k"), PlannedService.service_code.label("code"))
            .select_from(PlannedService)
            .join(Case, Case.id == PlannedService.case_id)
            .join(windows, _in_window(PlannedService.delivered_at, windows))
        )
        .where(PlannedService.status == "delivered", *ctx.conditions(dims))
        .subquery("services")
    )
    return ctx.session.execute(
        select(inner.c.k, inner.c.code, func.count())
        .group_by(inner.c.k, inner.c.code)
        .order_by(inner.c.code)
    ).all()


# --- monitor quality ---


def _monitor_quality(ctx: _Context) -> list[dict]:
    session = ctx.session
    windows = ctx.windows("none")
    dims = visit_dims()
    where = [Visit.current, Visit.monitor_id.is_not(None), *ctx.conditions(dims)]
    minutes = ctx.days(Visit.started_at, Visit.ended_at) * 1440.0
    timed = and_(
        Visit.started_at.is_not(None),
        Visit.ended_at.is_not(None),
        Visit.ended_at >= Visit.started_at,
    )
    visits = (
        _join_visit_dims(
            select(
                Visit.monitor_id.label("k"),
                case((timed, 1), else_=0).label("timed"),
                case((and_(timed, minutes < SHORT_VISIT_MINUTES), 1), else_=0).label("short"),
            )
            .select_from(Visit)
            .join(windows, _in_window(Visit.visited_at, windows))
        )
        .where(*where)
        .subquery("monitor_visits")
    )
    out: dict[int, dict] = {}
    for monitor_id, n, n_timed, n_short in session.execute(
        select(
            visits.c.k, func.count(), func.sum(visits.c.timed), func.sum(visits.c.short)
        ).group_by(visits.c.k)
    ):
        out[monitor_id] = {name: 0 for name in MONITOR_FIGURES} | {
            "visits": n,
            "visits_timed": int(n_timed or 0),
            "visits_short": int(n_short or 0),
            "identification_rate": None,
            "area_identification_rate": None,
            "median_visit_minutes": None,
        }
    if not out:
        return []
    for key, values in _children(ctx, "monitor", windows).items():
        if key in out:
            out[key]["children_monitored"] = values["children_monitored"]
            out[key]["children_identified"] = values["children_identified"]
    durations = _join_visit_dims(
        select(Visit.monitor_id.label("k"), minutes.label("v"))
        .select_from(Visit)
        .join(windows, _in_window(Visit.visited_at, windows))
    ).where(*where, timed)
    for key, (_n, median) in _medians(ctx, durations.subquery("visit_minutes")).items():
        out[key]["median_visit_minutes"] = _round(median, 1)
    for key, monitored, identified in _area_rates(ctx, windows):
        if key in out:
            out[key]["area_identification_rate"] = _share(identified, monitored, 4)
    _gps_distances(ctx, windows, where, out)

    names = dict(session.execute(select(User.id, User.username).where(User.id.in_(out))).all())
    rows = []
    for monitor_id, r in out.items():
        r["identification_rate"] = _share(r["children_identified"], r["children_monitored"], 4)
        r["share_short_visits"] = _share(r["visits_short"], r["visits_timed"], 4)
        r["share_far_gps"] = _share(r["visits_far"], r["visits_with_gps"], 4)
        rows.append({"key": names.get(monitor_id), "label": names.get(monitor_id), **r})
    return sorted(rows, key=lambda r: r["key"] or "")


def _area_rates(ctx: _Context, windows) -> list:
    """``(monitor id, children monitored, children identified)`` over every visit in the areas
    where each monitor visited (any monitor, any village of the area)."""
    dims = visit_dims()
    monitor_areas = (
        _join_visit_dims(
            select(Visit.monitor_id.label("monitor_id"), Village.area_id.label("area_id"))
            .select_from(Visit)
            .join(windows, _in_window(Visit.visited_at, windows))
        )
        .where(Visit.current, Visit.monitor_id.is_not(None), *ctx.conditions(dims))
        .distinct()
        .subquery("monitor_areas")
    )
    # one row per area and child (GROUP BY): the database reads the visits once and joins the
    # monitors' areas to the result; without it SQLite read every classification once per
    # monitor-area pair (bench/cases.py: 6 s of the KPI page at 100,000 child visits)
    area_children = (
        classified_in_windows(
            select(
                Village.area_id.label("area_id"),
                ChildVisit.child_id.label("child_id"),
                func.max(case((Classification.category.in_(CHILD_LABOUR), 1), else_=0)).label(
                    "identified"
                ),
            ),
            windows,
        )
        .where(*ctx.conditions(dims, monitor=False, village=False))
        .group_by(Village.area_id, ChildVisit.child_id)
        .subquery("area_children")
    )
    return ctx.session.execute(
        select(
            monitor_areas.c.monitor_id,
            func.count(distinct(area_children.c.child_id)),
            func.count(
                distinct(
                    case(
                        (area_children.c.identified == 1, area_children.c.child_id),
                        else_=null(),
                    )
                )
            ),
        )
        .select_from(monitor_areas)
        .join(area_children, area_children.c.area_id == monitor_areas.c.area_id)
        .group_by(monitor_areas.c.monitor_id)
    ).all()


def _gps_distances(ctx: _Context, windows, where, out: dict) -> None:
    """Count, per monitor, the visits with a GPS point and those far from their village: the
    distance stored at ingestion (to the village chosen in the form, its cell when it has one),
    else the haversine to the village point in Python, over the rows read a chunk at a time."""
    stmt = (
        _join_visit_dims(
            select(
                Visit.monitor_id, Visit.lat, Visit.lon, Visit.gps_distance_km, Village.lat,
                Village.lon,
            )
            .select_from(Visit)
            .join(windows, _in_window(Visit.visited_at, windows))
        )
        .where(
            *where,
            Visit.lat.is_not(None),
            Visit.lon.is_not(None),
            or_(
                Visit.gps_distance_km.is_not(None),
                and_(Village.lat.is_not(None), Village.lon.is_not(None)),
            ),
        )
        .execution_options(yield_per=EXPORT_CHUNK)
    )  # fmt: skip
    far_km = gps_far_km()  # a sign of poor monitoring, and held for review at ingestion
    for monitor_id, lat, lon, stored_km, vlat, vlon in ctx.session.execute(stmt):
        r = out.get(monitor_id)
        if r is None:
            continue
        r["visits_with_gps"] += 1
        km = stored_km if stored_km is not None else haversine_km(lat, lon, vlat, vlon)
        if km > far_km:
            r["visits_far"] += 1


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """The great-circle distance in km between two points (degrees).

    >>> round(haversine_km(5.78, -6.59, 5.70, -6.61), 2)
    9.17
    """
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371.0088 * math.asin(min(1.0, math.sqrt(a)))


# --- medians, labels, helpers ---


def _medians(ctx: _Context, values) -> dict:
    """``{k: (count, median of v)}`` of a subquery with columns ``k`` and ``v``: the middle one
    or two of the ordered values picked with ROW_NUMBER and COUNT windows, as the two databases
    share no MEDIAN."""
    ranked = select(
        values.c.k,
        values.c.v,
        func.row_number().over(partition_by=values.c.k, order_by=values.c.v).label("rn"),
        func.count().over(partition_by=values.c.k).label("n"),
    ).subquery("ranked_values")
    return {
        k: (n, median)
        for k, n, median in ctx.session.execute(
            select(ranked.c.k, func.max(ranked.c.n), func.avg(ranked.c.v))
            .where(or_(ranked.c.rn == (ranked.c.n + 1) // 2, ranked.c.rn == (ranked.c.n + 2) // 2))
            .group_by(ranked.c.k)
        )
    }


def _labelled_rows(session: Session, group: str, by_key: dict) -> list[dict]:
    """The group rows with their public key (code, username, tier, period) and label, sorted."""
    ids = [k for k in by_key if k is not None]
    names: dict = {}
    if group in ("village", "area", "supplier") and ids:
        model = {"village": Village, "area": Area, "supplier": Supplier}[group]
        names = {
            i: (code, name)
            for i, code, name in session.execute(
                select(model.id, model.code, model.name).where(model.id.in_(ids))
            )
        }
    elif group == "monitor" and ids:
        names = {
            i: (u, u)
            for i, u in session.execute(select(User.id, User.username).where(User.id.in_(ids)))
        }
    rows = []
    for k, figures in by_key.items():
        if k is None:
            key, label = None, ""
        elif group in ("village", "area", "supplier", "monitor"):
            key, label = names.get(k, (str(k), str(k)))
        elif group == "tier":
            key, label = int(k), f"Tier {int(k)}"
        else:  # month, quarter
            key, label = k, k
        row = _label(figures, key, label)
        if group == "area":
            row["area_id"] = k
        rows.append(row)

    def order(row):  # tiers by number, the rest by key; a group not recorded comes last
        key = row["key"]
        return (key is None, key if group == "tier" else str(key or ""))

    return sorted(rows, key=order)


def _label(figures: dict, key, label: str) -> dict:
    return {"key": key, "label": label, **figures}


def _resolve(session: Session, filters: KpiFilters) -> _Resolved:
    """The ids the filter codes name; ``request.invalid_parameter`` for one naming nothing."""

    def lookup(column, value, id_column, parameter: str, what: str):
        if value is None:
            return None
        found = session.scalar(select(id_column).where(column == value))
        if found is None:
            raise _invalid(
                parameter, Msg("names no known {what} ({value!r})", what=Msg(what), value=value)
            )
        return found

    area_id = lookup(Area.code, filters.area, Area.id, "area", N_("area"))
    return _Resolved(
        area_ids=frozenset(descendant_area_ids(session, {area_id})) if area_id else None,
        village_id=lookup(Village.code, filters.village, Village.id, "village", N_("village")),
        supplier_id=lookup(
            Supplier.code, filters.supplier, Supplier.id, "supplier", N_("supplier")
        ),
        monitor_id=lookup(User.username, filters.monitor, User.id, "monitor", N_("user")),
    )


def _invalid(parameter: str, detail: Msg):
    return problem("request.invalid_parameter", parameter=parameter, detail=detail)


def _date(args: Mapping[str, str], name: str) -> dt.date | None:
    raw = (args.get(name) or "").strip()
    if not raw:
        return None
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise _invalid(
            name, Msg("must be a date like 2025-01-31, not {value!r}", value=raw)
        ) from None


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), dt.UTC)


def _year_before(day: dt.date, years: int = 1) -> dt.date:
    """The same date ``years`` earlier (28 February for a 29 February)."""
    try:
        return day.replace(year=day.year - years)
    except ValueError:
        return day.replace(year=day.year - years, day=28)


def _add_months(day: dt.date, months: int) -> dt.date:
    month = day.month - 1 + months
    return day.replace(year=day.year + month // 12, month=month % 12 + 1, day=1)


def _share(numerator, denominator, digits: int) -> float | None:
    return round(numerator / denominator, digits) if denominator else None


def _pct(numerator, denominator) -> float | None:
    return round(100.0 * numerator / denominator, 1) if denominator else None


def _round(value, digits: int) -> float | None:
    return None if value is None else round(float(value), digits)


def _words(values) -> str:
    if not values:
        return ""
    if isinstance(values, str):
        return values
    return " ".join(str(v) for v in values if v not in (None, ""))


__all__ = [
    "CATEGORIES",
    "CHILD_LABOUR",
    "CHILD_VISIT_COLUMNS",
    "GROUPS",
    "KpiFilters",
    "KpiReport",
    "MONITOR_FIGURES",
    "SCALAR_FIGURES",
    "child_visit_rows",
    "classified_in_windows",
    "compute_everything",
    "current_classifications_in_windows",
    "empty_figures",
    "empty_report",
    "filter_choices",
    "first_remediation",
    "haversine_km",
    "kpi_report",
    "kpi_table",
    "parse_filters",
    "service_names",
    "take_kpi_snapshot",
    "time_windows",
    "visit_dims",
]
