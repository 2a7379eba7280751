"""The KPI report of one request: the figures a person may see (:func:`kpi_report`), the same
over everything for the nightly snapshot (:func:`compute_everything`), the filter form's choices,
and the report as a table for the CSV and XLSX exports (:func:`kpi_table`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field

from sqlalchemy import select, true
from sqlalchemy.orm import Session

from alerts.kpis.filters import TIME_GROUPS, KpiFilters, time_windows
from alerts.rules import CATEGORIES
from clms.config import gps_far_km
from clms.models import CASE_STATES, Area, ServiceType, Supplier, User, Village, Visit, utcnow
from clms.scope import area_ids_in_scope, village_scope_condition
from tests.alerts.kpis_oracle.dimensions import _SCOPE_VILLAGE, _Context, _resolve
from tests.alerts.kpis_oracle.figures import SCALAR_FIGURES, _figures, empty_figures
from tests.alerts.kpis_oracle.monitors import _monitor_quality


@dataclass
class KpiReport:
    """The figures of one request: the overall row, one row per group, the monitors' quality.

    Each row is a dict: ``key`` (a code, a username, a tier, ``2025-01``, ``2025-Q1``; None for
    the overall row and for a group not recorded), ``label`` (a name to show) and the figures
    named in the documentation of :mod:`alerts.kpis`.
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


def kpi_report(
    session: Session,
    user: User,
    filters: KpiFilters,
    *,
    now: dt.datetime | None = None,
    far_km: float | None = None,
) -> KpiReport:
    """The KPIs ``user`` may see for ``filters``: only the villages in their scope; the whole
    country's for an administrator without one (:func:`national`); empty figures for anyone else
    with no scope (a brand, a provider).
    ``far_km``: the ``GPS_FAR_METRES`` setting in km, beyond which a visit's GPS point counts
    as far from its village (None: the default, :func:`clms.config.gps_far_km`).

    Raises ``request.invalid_parameter`` for a code that names nothing (a village, an area, a
    supplier, a monitor's username). A code outside the user's scope filters to nothing.

    >>> report = kpi_report(session, officer, KpiFilters.default(dt.date.today()))  # doctest: +SKIP
    >>> report.overall["identification_rate"]  # doctest: +SKIP
    0.15
    """
    now = now or utcnow()
    resolved = _resolve(session, filters)
    scope = village_scope_condition(session, user, _SCOPE_VILLAGE.id)
    if scope is None and national(user):
        return _compute(session, filters, resolved, None, now, far_km)
    if scope is None:
        overall = _label(empty_figures(), None, "")
        return KpiReport(filters, now, overall, [], [], in_scope=False)
    return _compute(session, filters, resolved, scope, now, far_km)


def national(user: User) -> bool:
    """Whether ``user`` sees the whole country's indicators when no scope is given to them: an
    administrator does (figures only; the child-visit export keeps to a scope, so an
    administrator without one gets no child-level rows)."""
    return user.role == "admin"


def compute_everything(
    session: Session,
    filters: KpiFilters,
    *,
    now: dt.datetime | None = None,
    far_km: float | None = None,
) -> KpiReport:
    """The KPIs over every village and what has none: for the nightly snapshot only, never for
    a person (use :func:`kpi_report`); ``far_km`` as there."""
    resolved = _resolve(session, filters)
    return _compute(session, filters, resolved, None, now or utcnow(), far_km)


def filter_choices(session: Session, user: User) -> dict[str, list]:
    """What the filter form offers ``user``: the areas and villages of their scope, the
    suppliers buying there, the tiers, and the monitors who visited there.

    Lists of ``(code, name)`` (tiers: ints; monitors: usernames).
    """
    scope = village_scope_condition(session, user, _SCOPE_VILLAGE.id)
    if scope is None and national(user):
        scope, areas_seen = true(), select(Area.id)
    else:
        areas_seen = sorted(area_ids_in_scope(session, user))
    if scope is None:
        return {"areas": [], "villages": [], "suppliers": [], "tiers": [], "monitors": []}
    villages = session.execute(
        select(_SCOPE_VILLAGE.id, _SCOPE_VILLAGE.code, _SCOPE_VILLAGE.name)
        .where(scope)
        .order_by(_SCOPE_VILLAGE.code)
    ).all()
    areas = session.execute(
        select(Area.code, Area.name).where(Area.id.in_(areas_seen)).order_by(Area.code)
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


def _compute(session, filters, resolved, scope, now, far_km: float | None) -> KpiReport:
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
    monitors = _monitor_quality(ctx, gps_far_km() if far_km is None else far_km)
    return KpiReport(filters, now, overall, rows, monitors)


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
