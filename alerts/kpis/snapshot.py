"""The nightly KPI snapshot (:mod:`alerts.kpis`, *The nightly snapshot*): the figures of the
report per area, every night, for trends.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from alerts.kpis.figures import empty_figures
from alerts.kpis.filters import KpiFilters, _midnight
from alerts.kpis.report import compute_everything
from clms.models import KpiSnapshot, Village, utcnow

_ROW_IDENTITY = ("key", "label", "area_id")


def take_kpi_snapshot(
    session: Session,
    day: dt.date,
    *,
    now: dt.datetime | None = None,
    far_km: float | None = None,
    reads: Session | None = None,
) -> int:
    """Write the KPI snapshot of ``day`` (one row per area with villages, one overall), replacing
    that day's rows; returns how many rows were written.

    The figures are those of the default period of ``day`` (the 12 months up to and including
    it), the "now" figures as at ``now`` when given (the nightly job passes the time it runs),
    else as at the end of ``day`` (UTC); ``far_km`` is the ``GPS_FAR_METRES`` setting in km
    (None: the default). The figures are read through ``reads`` when given (the nightly job's
    session on the read replica), else through ``session``. Flushes; the caller commits.

    >>> take_kpi_snapshot(session, dt.date(2025, 3, 1))  # doctest: +SKIP
    5
    """
    as_of = now or _midnight(day + dt.timedelta(days=1))
    filters = KpiFilters.default(day, group="area")
    reads = reads if reads is not None else session
    report = compute_everything(reads, filters, now=as_of, far_km=far_km)
    by_area = {row["area_id"]: row for row in report.rows if row["area_id"] is not None}
    area_ids = sorted(reads.scalars(select(Village.area_id).distinct()).all())
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
