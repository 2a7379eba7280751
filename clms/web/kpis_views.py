"""The KPI page (filters, headline figures, charts, the table, the monitors' quality) and the
streamed exports: the KPI table, and the child visits behind it (pseudonymous, audited).

Every view reads only, from :func:`clms.db.read_session`: the read replica when there is one fit
to be read, else the primary in a read-only transaction (:func:`clms.db.read_only`), so on SQLite
a long export never holds the write lock that submissions wait for. The audit entries of the
downloads are written on the primary (:func:`clms.audit.record_read`).
"""

from __future__ import annotations

from flask import current_app, g, render_template, request

from alerts.kpis import (
    CATEGORIES,
    CHILD_VISIT_COLUMNS,
    GROUPS,
    MONITOR_FIGURES,
    KpiFilters,
    KpiReport,
    child_visit_table,
    empty_report,
    filter_choices,
    kpi_report,
    kpi_table,
    parse_filters,
    service_names,
)
from clms.audit import record_read
from clms.auth import allow
from clms.charts import Bar, Series, StackedBar, bar_chart, stacked_bar_chart
from clms.config import gps_far_km
from clms.db import db, read_session
from clms.errors import Problem
from clms.export_sql import table_chunks
from clms.exports import csv_chunks, xlsx_chunks
from clms.i18n import N_, Msg
from clms.locale import current_locale, gettext, localize, number, percent
from clms.models import CASE_STATES, utcnow
from clms.vocabulary import say
from clms.web import bp, flash_problem
from clms.web.downloads import download

KPI_ROLES = ("officer", "supervisor", "admin")

GROUP_WORDS = {
    "none": N_("No grouping (overall only)"),
    "village": N_("Village"),
    "area": N_("Area"),
    "supplier": N_("Supplier"),
    "tier": N_("Tier"),
    "monitor": N_("Monitor"),
    "month": N_("Month"),
    "quarter": N_("Quarter"),
}
# the category of a child's latest classification, in the chart's legend (the rest: say())
NO_FINDING = N_("no child labour found")


#: the name of each figure, as headings and labels show it
FIGURE_WORDS = {
    "households_covered": N_("Households covered"),
    "children_monitored": N_("Children monitored"),
    "children_identified": N_("Children identified in child labour"),
    "identification_rate": N_("Identification rate"),
    "sdg_871": N_("SDG 8.7.1 (latest visit)"),
    "pct_identified_remediated": N_("Identified children remediated"),
    "pct_identified_no_longer_in_child_labour": N_(
        "No longer in child labour at the latest follow-up"
    ),
    "median_days_alert_to_first_action": N_("Median days from alert to first action"),
    "median_days_case_open_to_close": N_("Median days from case opening to closure"),
    "alerts_open": N_("Alerts open now"),
    "alerts_overdue": N_("Alerts overdue now"),
    "followups_per_case": N_("Follow-up visits per case"),
    "services_delivered": N_("Services delivered"),
    "visits": N_("Visits"),
    "area_identification_rate": N_("Rate in the monitor's areas"),
    "median_visit_minutes": N_("Median visit length (minutes)"),
    "share_short_visits": N_("Visits under 10 minutes"),
    "share_far_gps": N_("GPS more than 5 km from the village"),
}
#: the columns of the KPI table (figure, how to show it)
TABLE_FIGURES = (
    ("households_covered", "int"),
    ("children_monitored", "int"),
    ("children_identified", "int"),
    ("identification_rate", "share"),
    ("sdg_871", "int"),
    ("pct_identified_remediated", "pct"),
    ("pct_identified_no_longer_in_child_labour", "pct"),
    ("median_days_alert_to_first_action", "days"),
    ("median_days_case_open_to_close", "days"),
    ("alerts_open", "int"),
    ("alerts_overdue", "int"),
    ("followups_per_case", "ratio"),
    ("services_delivered", "int"),
)
#: the headline figures above the charts (of the overall row)
HEADLINE_FIGURES = (
    ("households_covered", "int"),
    ("children_monitored", "int"),
    ("children_identified", "int"),
    ("identification_rate", "share"),
    ("pct_identified_remediated", "pct"),
    ("pct_identified_no_longer_in_child_labour", "pct"),
    ("median_days_alert_to_first_action", "days"),
    ("median_days_case_open_to_close", "days"),
    ("alerts_overdue", "int"),
    ("followups_per_case", "ratio"),
)
#: the columns of the monitors' quality table
MONITOR_COLUMNS = (
    ("visits", "int"),
    ("children_monitored", "int"),
    ("identification_rate", "share"),
    ("area_identification_rate", "share"),
    ("median_visit_minutes", "minutes"),
    ("share_short_visits", "share"),
    ("share_far_gps", "share"),
)


# --- the page ------------------------------------------------------------------------------------


@bp.route("/kpis")
@allow(*KPI_ROLES)
def kpis_index():
    """The KPIs of the person's areas for the filters of the query string (GET form)."""
    session = read_session()
    today = utcnow().date()
    status = 200
    try:
        filters = parse_filters(request.args, today)
        report = kpi_report(session, g.user, filters, far_km=gps_far_km(current_app.config))
    except Problem as p:
        if p.status != 400:
            raise
        flash_problem(p)
        filters = KpiFilters.default(today)
        report, status = empty_report(filters), 400
    services = _service_words(session)
    return render_template(
        "kpis_index.html",
        report=report,
        filters=filters,
        choices=filter_choices(session, g.user),
        groups=GROUPS,
        group_words=GROUP_WORDS,
        category_word=category_word,
        say=say,
        categories=CATEGORIES,
        case_states=CASE_STATES,
        table_figures=TABLE_FIGURES,
        headline_figures=HEADLINE_FIGURES,
        monitor_columns=MONITOR_COLUMNS,
        figure_words=FIGURE_WORDS,
        services=services,
        charts=_charts(report, services),
        show=show,
        row_label=row_label,
    ), status


# --- exports -------------------------------------------------------------------------------------


@bp.route("/kpis/export.<any(csv, xlsx):fmt>")
@allow(*KPI_ROLES)
def kpis_export(fmt: str):
    """The KPI table of the current filters as CSV or XLSX (the XLSX adds the monitors' quality)."""
    session = read_session()
    filters = parse_filters(request.args, utcnow().date())
    report = kpi_report(session, g.user, filters, far_km=gps_far_km(current_app.config))
    _audit("kpis.export", fmt, filters)
    header, rows = kpi_table(report)
    if fmt == "csv":
        chunks = csv_chunks(header, rows)
    else:
        chunks = xlsx_chunks(
            [
                (gettext("Indicators"), header, rows),
                (gettext("Monitor quality"), ["monitor", *MONITOR_FIGURES], _monitor_rows(report)),
            ]
        )
    return download(chunks, fmt, f"clms-kpis-{filters.date_from}-{filters.date_to}")


@bp.route("/exports/child-visits.<any(csv, xlsx):fmt>")
@allow(*KPI_ROLES)
def child_visits_export(fmt: str):
    """Every current child visit of the person's areas and filters, one row each, by the
    pseudonymous child id: no names, no coordinates, no free text. Written to the audit log."""
    session = read_session()
    filters = parse_filters(request.args, utcnow().date())
    table = child_visit_table(session, g.user, filters)
    _audit("child_visits.export", fmt, filters)
    chunks = table_chunks(session, table, CHILD_VISIT_COLUMNS, fmt, gettext("Child visits"))
    return download(chunks, fmt, f"clms-child-visits-{filters.date_from}-{filters.date_to}")


# --- helpers -------------------------------------------------------------------------------------


def _audit(what: str, fmt: str, filters: KpiFilters) -> None:
    record_read(db(), g.user, what, "kpis", format=fmt, filters=filters.query())


def _monitor_rows(report: KpiReport):
    for m in report.monitors:
        yield [m["key"], *(m[name] for name in MONITOR_FIGURES)]


def _service_words(session) -> dict[str, str]:
    """The name of each service code in the reader's language."""
    french = current_locale() == "fr"
    return {code: (fr if french else en) for code, (en, fr) in service_names(session).items()}


def show(value, kind: str = "int") -> str:
    """A figure as the page shows it, in the reader's language: ``share`` (0-1) and ``pct``
    (0-100) as percentages, ``days``, ``minutes`` and ``ratio`` with decimals, ``int`` whole."""
    if value is None:
        return "—"
    if kind == "share":
        return percent(value)
    if kind == "pct":
        return percent(value / 100)
    if kind in ("days", "minutes"):
        return number(value, decimals=1)
    if kind == "ratio":
        return number(value, decimals=2)
    return number(int(value))


def row_label(row: dict, group: str) -> str:
    """The name of a group row (translated where it is a word of ours)."""
    if row["key"] is None:
        return gettext("Not recorded")
    if group == "tier":
        return localize(Msg("Tier {tier}", tier=row["key"]))
    if group in ("village", "area", "supplier") and row["label"] != row["key"]:
        return f"{row['label']} ({row['key']})"
    return str(row["label"])


def category_word(category: str) -> str:
    """The word for a category, as the KPIs say it."""
    return gettext(NO_FINDING) if category == "none" else say(category)


def _charts(report: KpiReport, services: dict[str, str]) -> list:
    """The charts of the page, each with what it shows in words."""
    group = report.filters.group
    overall = report.overall
    charts = []
    rows = report.rows
    if rows:
        charts.append(
            bar_chart(
                "chart-rate",
                localize(
                    Msg("Identification rate by {group}", group=gettext(GROUP_WORDS[group]).lower())
                ),
                gettext(
                    "Share of the children monitored who were found in child labour at least "
                    "once in the period, for each group; the same figures are in the table below."
                ),
                [
                    Bar(
                        row_label(r, group),
                        None
                        if r["identification_rate"] is None
                        else 100 * r["identification_rate"],
                        show(r["identification_rate"], "share"),
                    )
                    for r in rows
                ],
                max_value=100,
            )
        )
    series = [Series(c, category_word(c)) for c in CATEGORIES]
    stacked_rows = rows or [overall | {"key": "", "label": gettext("All")}]
    charts.append(
        stacked_bar_chart(
            "chart-categories",
            gettext("Children by the category of their latest visit"),
            gettext(
                "For each group, the children monitored divided by the category of their latest "
                "classification in the period; the numbers are in the table of categories."
            ),
            [
                StackedBar(
                    row_label(r, group) if rows else gettext("All"),
                    [r["by_category"][c] for c in CATEGORIES],
                    show(r["children_monitored"]),
                )
                for r in stacked_rows
            ],
            series,
        )
    )
    delivered = overall["services_delivered_by_type"]
    if delivered:
        charts.append(
            bar_chart(
                "chart-services",
                gettext("Services delivered by type"),
                gettext(
                    "Planned services delivered in the period, by type of service; the numbers "
                    "are in the table of services."
                ),
                [
                    Bar(services.get(code, code), n, show(n))
                    for code, n in sorted(delivered.items())
                ],
            )
        )
    if report.monitors:
        charts.append(
            bar_chart(
                "chart-monitors",
                gettext("Identification rate of each monitor"),
                gettext(
                    "Each bar is the share of the children a monitor visited who were found in "
                    "child labour; the mark across it is the rate of all the visits in the "
                    "monitor's areas. A bar far from its mark deserves a look."
                ),
                [
                    Bar(
                        m["label"],
                        None
                        if m["identification_rate"] is None
                        else 100 * m["identification_rate"],
                        show(m["identification_rate"], "share"),
                        None
                        if m["area_identification_rate"] is None
                        else 100 * m["area_identification_rate"],
                    )
                    for m in report.monitors
                ],
                max_value=100,
                reference_label=gettext(FIGURE_WORDS["area_identification_rate"]),
            )
        )
    return charts
