"""``clms places``: import administrative boundaries and villages, derive village cells, and find
each visit's village from its GPS point."""

from __future__ import annotations

import sys

import click
from flask.cli import with_appcontext

from clms.cli import refusals


@click.group("places")
def places_group() -> None:
    """Administrative boundaries, villages, village cells and where visits are."""


def _bar(label: str):
    """A progress callback ``(done, total)`` drawing a click progress bar on stderr."""
    state: dict = {}

    def update(done: int, total: int) -> None:
        bar = state.get("bar")
        if bar is None:
            bar = state["bar"] = click.progressbar(length=total, label=label, file=sys.stderr)
            bar.__enter__()
        bar.update(done - bar.pos)
        if done >= total:
            bar.__exit__(None, None, None)
            state.pop("bar")

    return update


def _finish(session, dry_run: bool) -> None:
    if dry_run:
        session.rollback()
        click.echo("Dry run: checked, nothing written.")
    else:
        session.commit()


@places_group.command("boundaries")
@with_appcontext
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--level", help="Level of every area: region, department, district...")
@click.option("--country", "country_code", help="ISO code, e.g. CIV (default: from the file).")
@click.option("--code-field", help="Field of each area's code (default shapeID or wof_id).")
@click.option("--name-field", help="Field of each area's name (default shapeName or wof_name).")
@click.option("--parent-field", help="Field of the parent's code (default wof_parent_id).")
@click.option("--level-field", help="Field of each area's level (default wof_placetype).")
@click.option("--layer", help="Layer of a GeoPackage holding several.")
@click.option("--crs", help="CRS of the coordinates when the file declares none or a wrong one.")
@click.option("--repair", is_flag=True, help="Repair invalid polygons (shapely make_valid).")
@click.option("--dry-run", is_flag=True, help="Check the file and say what would change.")
def boundaries_command(file, level, country_code, code_field, name_field, parent_field,
                       level_field, layer, crs, repair, dry_run) -> None:  # fmt: skip
    """Import administrative boundaries: GeoJSON, zipped shapefile or GeoPackage.

    Every feature is checked first (CRS, geometry, inside the country, fields); one bad feature
    and nothing is written. Areas that exist (same code, or same level and name) get the boundary.
    """
    from clms.db import session_scope
    from clms.places.areas import import_boundaries
    from geo.boundaries import country_outline, read_boundaries
    from geo.countries import PlaceError

    with session_scope() as session:
        with refusals(PlaceError):
            found = read_boundaries(
                file, level=level, country_code=country_code, code_field=code_field,
                name_field=name_field, parent_field=parent_field, level_field=level_field,
                layer=layer, crs=crs, repair=repair, known_country_geom=country_outline(session),
            )  # fmt: skip
            click.echo(f"{found.source}: {len(found.features)} features checked.", err=True)
            result = import_boundaries(session, found, _bar("Areas"))
        click.echo(("Would import " if dry_run else "Imported ") + result.summary() + ".")
        for note in result.notes:
            click.echo(f"  note: {note}")
        _finish(session, dry_run)


@places_group.command("villages")
@with_appcontext
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--country", "country_code", help="ISO code, e.g. GHA (default: column country).")
@click.option("--id-column", default="wof_id", show_default=True)
@click.option("--name-column", default="name", show_default=True)
@click.option("--lat-column", default="lat", show_default=True)
@click.option("--lon-column", default="lon", show_default=True)
@click.option("--wkt-column", help="Column of village polygons as WKT (instead of lat/lon).")
@click.option(
    "--area-column",
    help="Column of each village's area code; without it, areas come from where the points are.",
)
@click.option("--layer", help="Layer of a GeoPackage holding several.")
@click.option(
    "--snap-km",
    type=float,
    default=15.0,
    show_default=True,
    help="A point outside every area but this close to one gets the nearest.",
)
@click.option("--dry-run", is_flag=True, help="Check the file and say what would change.")
def villages_command(file, country_code, id_column, name_column, lat_column, lon_column,
                     wkt_column, area_column, layer, snap_km, dry_run) -> None:  # fmt: skip
    """Import villages: a CSV of points (lat/lon) or polygons (WKT), or a GeoJSON/GeoPackage.

    Each village's area comes from --area-column, or else from the deepest imported boundary
    that holds its point. One bad row and nothing is written. The village cells are derived
    again afterwards (as `clms places cells` does).
    """
    from clms.db import session_scope
    from clms.places.villages import import_villages
    from geo.countries import PlaceError

    with session_scope() as session:
        with refusals(PlaceError):
            result = import_villages(
                session, file, country_code=country_code, id_column=id_column,
                name_column=name_column, lat_column=lat_column, lon_column=lon_column,
                area_column=area_column, wkt_column=wkt_column, layer=layer, snap_km=snap_km,
                progress=_bar("Villages"),
            )  # fmt: skip
        click.echo(("Would import " if dry_run else "Imported ") + result.summary() + ".")
        snapped = result.snapped or []
        if snapped:
            more = f" and {len(snapped) - 10} more" if len(snapped) > 10 else ""
            click.echo(f"  outside every area, given the nearest: {', '.join(snapped[:10])}{more}")
        if not dry_run:
            # the maps draw villages by their cells: derive them now, not at the next command
            from geo.cells import derive_cells

            cells = derive_cells(session, progress=_bar("Cells"))
            click.echo(f"Cells: {cells.summary()}.")
        _finish(session, dry_run)


@places_group.command("cells")
@with_appcontext
@click.option("--area", "area_code", help="Only the villages of this area and the areas below.")
def cells_command(area_code) -> None:
    """Derive village cells (Voronoi polygons clipped to the areas' boundaries)."""
    from clms.db import session_scope
    from geo.cells import derive_cells

    with session_scope() as session:
        try:
            result = derive_cells(session, area_code, _bar("Areas"))
        except LookupError as e:
            raise click.ClickException(str(e)) from None
    click.echo(result.summary() + ".")
    for label, items in (("outside their area's boundary", result.outside),
                         ("at the point of another village (no cell)", result.duplicates),
                         ("left with no land (no cell)", result.empty),
                         ("areas cut to their villages' hull", result.hull_groups)):  # fmt: skip
        if items:
            more = f" and {len(items) - 10} more" if len(items) > 10 else ""
            click.echo(f"  {label}: {', '.join(items[:10])}{more}")


def _add_commands() -> None:
    """The group's commands written in other modules, added by name (nothing registers itself
    on import)."""
    from geo.join_cli import locate_command

    places_group.add_command(locate_command)


_add_commands()
