"""``clms hotspots``: the aggregated figures brands and officers see, as files."""

from __future__ import annotations

import click


@click.group("hotspots")
def hotspots_group() -> None:
    """Hotspot figures by village, area, supplier and tier; exports and maps."""


# commands in other modules register on import, so this comes after the group exists
from geo import maps_cli  # noqa: E402,F401
