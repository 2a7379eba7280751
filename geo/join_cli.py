"""``clms places locate``: find the village of every visit again from its GPS point."""

from __future__ import annotations

import sys

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import func, select

from clms.config import gps_far_km
from clms.db import session_scope
from clms.models import Visit
from geo.join import forget, locate_visits


@click.command("locate")
@click.option(
    "--missing/--all",
    "only_missing",
    default=True,
    show_default=True,
    help="Only the visits whose village did not come from their GPS point, or every visit.",
)
@click.option("--batch", default=5000, show_default=True, help="Visits read at a time.")
@with_appcontext
def locate_command(only_missing: bool, batch: int) -> None:
    """Find each household visit's village again from its GPS point.

    Run it after importing or deriving village cells: a visit whose point lies in a village's
    cell moves to that village (unless that village is outside its monitor's villages: the
    village chosen in the form is kept), and the distance to the chosen village is stored again.
    Households follow their latest visit. Running it twice changes nothing the second time.
    """
    if batch < 1:
        raise click.BadParameter("must be at least 1", param_hint="--batch")
    far_km = gps_far_km(current_app.config)
    with session_scope() as session:
        forget(session)  # cells may have been imported by another process a moment ago
        query = select(func.count(Visit.id)).where(
            Visit.kind == "household", Visit.lat.is_not(None), Visit.lon.is_not(None)
        )
        if only_missing:
            query = query.where(Visit.village_source.is_(None) | (Visit.village_source != "gps"))
        total = session.scalar(query)
        if not total:
            click.echo("No visit with a GPS point to locate.")
            return
        # one transaction: the visits are either all located again or not at all
        with click.progressbar(length=total, label="Locating visits", file=sys.stderr) as bar:
            result = locate_visits(
                session, only_missing=only_missing, batch=batch, far_km=far_km,
                progress=bar.update,
            )  # fmt: skip
    click.echo(
        f"Checked {result.checked} visits: {result.changed} changed, {result.by_gps} in the "
        f"village of their GPS point, {result.out_of_scope} kept in the chosen village (the "
        f"point's village is outside the monitor's villages), {result.unusable} with an unusable "
        f"point, {result.far} more than {far_km:g} km from the chosen village; "
        f"{result.households} households moved."
    )
