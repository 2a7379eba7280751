"""The KPIs of domain.md section 7: one definition for the page, the API, the exports and the
nightly snapshot.

:func:`kpi_report` computes the figures a person may see (their scope, their filters);
:func:`take_kpi_snapshot` writes the same figures per area, every night, for trends;
:func:`child_visit_rows` streams the child visits behind them for the exports. Every figure is
set-based SQL (``GROUP BY``, window functions, ``UNION ALL``) that SQLite and PostgreSQL both run;
where the dialects differ (time arithmetic, reading a JSON list) the code branches on
``session.get_bind().dialect.name``. Nothing loops over children in Python: only the monitor
quality's GPS distances are measured in Python, over the visit rows.

The package, by purpose: :mod:`alerts.kpis.filters` (the period, the filters and the grouping of
a request), :mod:`alerts.kpis.dimensions` (where each kind of row is placed and filtered),
:mod:`alerts.kpis.figures` (the indicators of a row), :mod:`alerts.kpis.monitors` (monitor
quality), :mod:`alerts.kpis.report` (a request's report and its table), :mod:`alerts.kpis.snapshot`
(the nightly snapshot) and :mod:`alerts.kpis.export` (the child-visit export). Their public names
are imported here: ``from alerts.kpis import kpi_report``.

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

from alerts.kpis.dimensions import (
    classified_in_windows,
    current_classifications_in_windows,
    visit_dims,
)
from alerts.kpis.export import CHILD_VISIT_COLUMNS, child_visit_rows, child_visit_table
from alerts.kpis.figures import CHILD_LABOUR, SCALAR_FIGURES, empty_figures, first_remediation
from alerts.kpis.filters import GROUPS, KpiFilters, parse_filters, time_windows
from alerts.kpis.monitors import MONITOR_FIGURES
from alerts.kpis.report import (
    KpiReport,
    compute_everything,
    empty_report,
    filter_choices,
    kpi_report,
    kpi_table,
    service_names,
)
from alerts.kpis.snapshot import take_kpi_snapshot
from alerts.rules import CATEGORIES
from geo.countries import haversine_km

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
    "child_visit_table",
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
