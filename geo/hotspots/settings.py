"""The settings a brand's hotspot figures depend on (:class:`HotspotSettings`): the privacy
thresholds (:mod:`geo.privacy`) and the reporting grid (:class:`geo.periods.ReportingGrid`).

The roof (a view, a job, a command) reads them from the application with
:meth:`HotspotSettings.from_config` and passes them down as ``settings=``; nothing below it reads
the application. Pure: a mapping in, plain values out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from geo import privacy
from geo.periods import ReportingGrid


@dataclass(frozen=True)
class HotspotSettings:
    """``min_children``/``min_households``: the settings ``PRIVACY_MIN_CHILDREN`` and
    ``PRIVACY_MIN_HOUSEHOLDS`` (None: the defaults of :mod:`geo.privacy`; they can only raise
    them); ``grid``: the reporting grid of the ``BRAND_PERIOD_*`` settings.

    The defaults are those of :mod:`geo.privacy` and :class:`geo.periods.ReportingGrid`:

    >>> HotspotSettings().thresholds()
    (10, 5)
    >>> HotspotSettings.from_config({"PRIVACY_MIN_CHILDREN": 20}).thresholds(None, 8)
    (20, 8)
    """

    min_children: int | None = None
    min_households: int | None = None
    grid: ReportingGrid = ReportingGrid()

    @classmethod
    def from_config(cls, config: Mapping) -> HotspotSettings:
        """The settings of an application's configuration (the defaults where one is missing)."""
        return cls(
            config.get("PRIVACY_MIN_CHILDREN"),
            config.get("PRIVACY_MIN_HOUSEHOLDS"),
            ReportingGrid.from_config(config),
        )

    def thresholds(
        self, min_children: int | None = None, min_households: int | None = None
    ) -> tuple[int, int]:
        """``(min_children, min_households)`` in force: the defaults, raised by the settings and
        by the given values (a request's), never lowered (:func:`geo.privacy.thresholds`)."""
        return privacy.thresholds(
            self.min_children, self.min_households, min_children, min_households
        )
