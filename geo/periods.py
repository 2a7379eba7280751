"""Periods of hotspot figures, and the fixed grid of reporting periods brands may ask for.

Officers and supervisors may ask for any period (``months`` months ending on any day): their
figures are exact and they may see every child in their areas anyway. A brand may not: the
figures of two periods that overlap can be subtracted from each other. Asked for the 4 and the 5
months ending on the same day, a village of 22 and of 23 children gives away the one child whose
only visit of the period fell in the fifth month, and whether that child was in hazardous work,
though that month alone is suppressed. The same holds for the same period asked for twice as
data arrives (a period still running grows, and the growth is the visits of the last hours).

So a brand sees only the periods of :class:`ReportingGrid`: periods of ``months`` months
(``BRAND_PERIOD_MONTHS``, default 3: calendar quarters) laid end to end from a first month
(``BRAND_PERIOD_FIRST_MONTH``, default January; a cocoa company may start its years in October),
and only once a period has ended and ``grace_days`` more have passed (``BRAND_PERIOD_GRACE_DAYS``,
default 30) for the visits phones kept offline to arrive. The periods of the grid never overlap,
so no published figure of one is a sum or a part of a figure of another. Why this suffices: a
child counted in a cell of period P is a child whose latest visit *of P* is there; the figures of
P are sums over (child, P) and each period's figures are protected on their own by the gate
(:mod:`geo.privacy`). A combination of figures of several periods is a sum of one function of the
cell each child is in during each period; a suppressed cell or a small group of one period is
recoverable only if a combination of that period's own figures already recovers it, because no
figure of another period says anything of the children it does *not* count ("not visited in P"
is never published). ``tests/hotspots/test_period_privacy.py`` checks this over every offered
period, with the published figures of every level and layer.

What the grid does not cover: figures of a closed period still change when a late submission,
an edit or a withdrawal reaches it (the grace period makes that rare); the setting must be chosen
once, since figures published under a grid of quarters and then of years would be nested.

Pure: dates in, dates out; no database, no Flask.
"""

from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass

from clms.errors import DomainProblem

#: the longest period anyone may ask for, and how far back a brand's grid reaches
MAX_MONTHS = 120
#: grid lengths that divide a year, so that the grid is the same every year
GRID_MONTHS = (1, 2, 3, 4, 6, 12)


@dataclass(frozen=True)
class Period:
    """Whole UTC days ``[start, end]`` (inclusive) and the previous period of the same length.

    >>> p = Period.ending(dt.date(2025, 3, 31), 3)
    >>> p.start.isoformat(), p.end.isoformat(), p.previous_start.isoformat()
    ('2025-01-01', '2025-03-31', '2024-10-01')
    """

    start: dt.date
    end: dt.date
    months: int
    previous_start: dt.date

    @classmethod
    def ending(cls, end: dt.date, months: int = 12) -> Period:
        """The ``months`` months ending on ``end`` (inclusive)."""
        after = end + dt.timedelta(days=1)
        start = months_before(after, months)
        return cls(start, end, months, months_before(start, months))

    @property
    def previous_end(self) -> dt.date:
        """The last day of the previous period."""
        return self.start - dt.timedelta(days=1)

    def as_dict(self) -> dict:
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "months": self.months,
            "previous_start": self.previous_start.isoformat(),
            "previous_end": self.previous_end.isoformat(),
        }


class PeriodNotOffered(DomainProblem, ValueError):
    """A brand asked for a period that is not one of the grid's published periods
    (``hotspots.period_not_offered``, saying which are): ``parameter`` is the one at fault
    (``months`` or ``end``), ``offered`` the periods that are (latest first), ``grid`` the grid.
    """

    KEY = "hotspots.period_not_offered"

    def __init__(self, grid: ReportingGrid, offered: list[Period], parameter: str = "end"):
        self.grid = grid
        self.offered = offered
        super().__init__(
            parameter=parameter,
            months=grid.months,
            grace=grid.grace_days,
            ends=", ".join(p.end.isoformat() for p in offered[:8])
            + (f", ... {offered[-1].end.isoformat()}" if len(offered) > 8 else ""),
            offered=[p.as_dict() for p in offered],
        )


@dataclass(frozen=True)
class ReportingGrid:
    """The periods a brand may see: ``months`` months long, the first of each year beginning on
    the 1st of ``first_month``, published ``grace_days`` days after they end.

    >>> grid = ReportingGrid(3, 1, 30)
    >>> [p.end.isoformat() for p in grid.offered(dt.date(2026, 12, 7))[:2]]
    ['2026-09-30', '2026-06-30']
    >>> grid.offered(dt.date(2026, 10, 30))[0].end.isoformat()  # 30 days after 30 September
    '2026-06-30'
    """

    months: int = 3
    first_month: int = 1
    grace_days: int = 30

    def __post_init__(self):
        if self.months not in GRID_MONTHS:
            raise ValueError(
                f"BRAND_PERIOD_MONTHS is {self.months}: it must divide a year "
                f"({', '.join(map(str, GRID_MONTHS))})"
            )
        if not 1 <= self.first_month <= 12:
            raise ValueError(f"BRAND_PERIOD_FIRST_MONTH is {self.first_month}: a month, 1 to 12")
        if self.grace_days < 0:
            raise ValueError(f"BRAND_PERIOD_GRACE_DAYS is {self.grace_days}: 0 or more")

    @classmethod
    def from_config(cls, config) -> ReportingGrid:
        """The grid of an application's settings (the defaults where one is missing)."""
        return cls(
            int(config.get("BRAND_PERIOD_MONTHS") or cls.months),
            int(config.get("BRAND_PERIOD_FIRST_MONTH") or cls.first_month),
            int(
                cls.grace_days
                if config.get("BRAND_PERIOD_GRACE_DAYS") in (None, "")
                else config["BRAND_PERIOD_GRACE_DAYS"]
            ),
        )

    def period_containing(self, day: dt.date) -> Period:
        """The period of the grid that holds ``day``."""
        index = day.year * 12 + day.month - 1 - (self.first_month - 1)
        first = index - index % self.months + (self.first_month - 1)
        year, month = divmod(first, 12)
        start = dt.date(year, month + 1, 1)
        end = months_before(start, -self.months) - dt.timedelta(days=1)
        return Period.ending(end, self.months)

    def published_on(self, period: Period) -> dt.date:
        """The first day a brand sees ``period``."""
        return period.end + dt.timedelta(days=self.grace_days + 1)

    def offered(self, today: dt.date) -> list[Period]:
        """The periods a brand may ask for on ``today``, latest first: those that ended at least
        ``grace_days`` days before, going back :data:`MAX_MONTHS` months."""
        periods = []
        period = self.period_containing(today)
        while len(periods) * self.months < MAX_MONTHS:
            if self.published_on(period) <= today:
                periods.append(period)
            period = self.period_containing(period.start - dt.timedelta(days=1))
        return periods

    def resolve(self, end: dt.date | None, months: int | None, today: dt.date) -> Period:
        """The period a brand asked for: ``end`` its last day and ``months`` its length, both
        optional (the latest offered period by default). Anything else raises
        :class:`PeriodNotOffered`, never a substitute."""
        offered = self.offered(today)
        if months is not None and months != self.months:
            raise PeriodNotOffered(self, offered, parameter="months")
        if end is None:
            return offered[0]
        for period in offered:
            if period.end == end:
                return period
        raise PeriodNotOffered(self, offered)


def months_before(day: dt.date, months: int) -> dt.date:
    """The same day ``months`` months earlier (the month's last day when it has fewer days);
    a negative ``months`` goes forward."""
    index = day.year * 12 + day.month - 1 - months
    year, month = divmod(index, 12)
    month += 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))
