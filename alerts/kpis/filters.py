"""The period, the filters and the grouping of a KPI request, without the database:
:class:`KpiFilters`, read from a request's query parameters by :func:`parse_filters`, and the
months or quarters of its period (:func:`time_windows`). What they mean: :mod:`alerts.kpis`,
*Period and filters*.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

from clms.errors import problem
from clms.i18n import Msg

#: the ``group`` values: none gives the overall row only
GROUPS = ("none", "village", "area", "supplier", "tier", "monitor", "month", "quarter")
TIME_GROUPS = ("month", "quarter")
#: the longest period a request may ask for
MAX_PERIOD_YEARS = 10


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

    Codes are checked against the database by :func:`alerts.kpis.report.kpi_report`.

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


# --- helpers -------------------------------------------------------------------------------------


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
