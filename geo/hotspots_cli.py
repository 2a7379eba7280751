"""``clms hotspots``: the aggregated figures brands and officers see, as files."""

from __future__ import annotations

import json

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import select

from clms.db import session_scope
from clms.errors import Problem
from clms.models import Brand, User, utcnow


@click.group("hotspots")
def hotspots_group() -> None:
    """Hotspot figures by village, area, supplier and tier; exports and maps."""


@hotspots_group.command("export")
@click.option("--brand", "brand_code", help="As a brand (its code) sees them: the privacy gate.")
@click.option(
    "--user", "username", help="As this person (a brand, officer or supervisor) sees them."
)
@click.option(
    "--level",
    required=True,
    type=click.Choice(["village", "area", "supplier", "tier"]),
    help="One row per village, area, supplier or tier.",
)
@click.option(
    "--format", "fmt", type=click.Choice(["csv", "geojson"]), default="csv", show_default=True
)
@click.option(
    "-o", "--output", required=True, type=click.Path(dir_okay=False, writable=True),
    help="The file to write (replaced if it exists).",
)  # fmt: skip
@click.option(
    "--end",
    help="Last day of the period, YYYY-MM-DD (default: today; for a brand, the last day of one "
    "of its reporting periods, default the latest).",
)
@click.option(
    "--months",
    help="Length of the period (default 12; for a brand, that of its reporting periods).",
)
@click.option("--area-level", help="Only the areas of this level (e.g. department).")
@click.option("--tier", help="Only the visits of this tier's suppliers.")
@click.option("--supplier", help="Only the visits of this supplier's sub-chain (its code).")
@with_appcontext
def export_command(brand_code, username, level, fmt, output, end, months, area_level, tier,
                   supplier) -> None:  # fmt: skip
    """Write the hotspot figures of LEVEL as CSV or GeoJSON, exactly as the brand (--brand) or
    the person (--user) would download them: a brand's pass the privacy gate, an officer's are
    limited to their areas."""
    from geo.hotspots.request import parse_request, table_csv, table_geojson
    from geo.hotspots.settings import HotspotSettings

    if bool(brand_code) == bool(username):
        raise click.UsageError("give exactly one of --brand CODE and --user NAME")
    args = {"level": level, "format": fmt, "end": end, "months": months,
            "area_level": area_level, "tier": tier, "supplier": supplier}  # fmt: skip
    settings = HotspotSettings.from_config(current_app.config)
    with session_scope(current_app) as session:
        if brand_code:
            brand = session.scalar(select(Brand).where(Brand.code == brand_code))
            if brand is None:
                raise click.BadParameter(
                    f"no brand has the code {brand_code!r}", param_hint="--brand"
                )
            # the figures a user of this brand would get (never added to the session)
            viewer = User(username=f"cli:{brand.code}", role="brand", brand_id=brand.id)
        else:
            viewer = session.scalar(select(User).where(User.username == username))
            if viewer is None:
                raise click.BadParameter(f"no user is named {username!r}", param_hint="--user")
            if viewer.role not in ("brand", "officer", "supervisor", "admin"):
                raise click.BadParameter(
                    f"{username!r} is a {viewer.role}, who sees no hotspot figures",
                    param_hint="--user",
                )
        try:
            asked = parse_request(
                session,
                viewer,
                {k: v for k, v in args.items() if v},
                utcnow().date(),
                settings=settings,
            )
        except Problem as e:
            hint = e.details.get("parameter", "supplier").replace("_", "-")
            raise click.BadParameter(
                e.message if e.status != 404 else f"no supplier {supplier!r} in this scope",
                param_hint=f"--{hint}",
            ) from None
        click.echo(f"Computing the {level} figures ({asked.months} months to {asked.end})...",
                   err=True)  # fmt: skip
        table = asked.table(session, viewer, settings=settings)
        if fmt == "csv":
            body = table_csv(table)
        else:
            body = json.dumps(table_geojson(session, table), ensure_ascii=False).encode()
    with open(output, "wb") as f:
        f.write(body)
    click.echo(f"Wrote {len(table.rows)} rows and the total to {output}.", err=True)


def _add_commands() -> None:
    """The group's commands written in other modules, added by name (nothing registers itself
    on import)."""
    from geo.maps_cli import hotspots_map

    hotspots_group.add_command(hotspots_map)


_add_commands()
