"""``clms hotspots map``: the brand map as one standalone HTML file."""

from __future__ import annotations

import datetime as dt
import sys

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import select

from clms.db import session_scope
from clms.errors import Problem
from clms.models import Brand, User


@click.command("map")
@click.option("--brand", "brand_code", required=True, help="The brand's code.")
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False, writable=True),
    help="The HTML file to write (replaced if it exists).",
)
@click.option(
    "--end",
    type=click.DateTime(["%Y-%m-%d"]),
    help="Last day of one of the brand's reporting periods (default: the latest).",
)
@click.option(
    "--months",
    type=click.IntRange(1, 120),
    help="Length of the period: that of the brand's reporting periods (CLMS_BRAND_PERIOD_MONTHS).",
)
@with_appcontext
def hotspots_map(brand_code: str, output: str, end, months: int | None) -> None:
    """Write the hotspot map brand CODE sees (its published figures only) to FILE.html.

    The file holds Leaflet itself and works offline; it shows exactly what the brand's /map page
    shows, suppressed cells included.
    """
    from geo.hotspots.settings import HotspotSettings
    from geo.maps.brand import brand_map_data
    from geo.maps.build import build_brand_map

    with session_scope(current_app) as session:
        brand = session.scalar(select(Brand).where(Brand.code == brand_code))
        if brand is None:
            raise click.BadParameter(f"no brand has the code {brand_code!r}", param_hint="--brand")
        # the figures a brand user of this brand would get: the privacy gate applies to the role
        # (never added to the session: nothing is written)
        viewer = User(username=f"cli:{brand.code}", role="brand", brand_id=brand.id)
        with click.progressbar(
            length=1, label="Reading the hotspot figures", file=sys.stderr
        ) as bar:

            def progress(done: int, steps: int) -> None:
                bar.length = steps
                bar.update(done - bar.pos)

            try:
                data = brand_map_data(
                    session,
                    viewer,
                    end=end.date() if isinstance(end, dt.datetime) else end,
                    months=months,
                    progress=progress,
                    settings=HotspotSettings.from_config(current_app.config),
                )
            except Problem as e:  # a period that is not one of the brand's reporting periods
                raise click.BadParameter(e.message, param_hint="--end/--months") from None
        click.echo(f"Building the map of {len(data.cells)} village cells...", err=True)
        html = build_brand_map(data, assets="inline").get_root().render()
    with open(output, "w", encoding="utf-8") as f:
        f.write(html)
    click.echo(f"Wrote {output} ({len(html.encode()) / 1e6:.1f} MB).", err=True)
