"""The places page for administrators: the areas with their boundaries and villages, the uploads
of a boundary file and of a villages file, and the button that derives village cells.

An upload is saved to a temporary folder (the readers want a file path: a zipped shapefile is
opened through GDAL's ``zip://``), read and checked whole, and removed; a file with any bad
feature or row is refused with the message (HTTP 422) and nothing is written.
"""

from __future__ import annotations

import os
import tempfile

from flask import flash, redirect, render_template, request, url_for
from werkzeug.utils import secure_filename

from clms.auth import allow
from clms.db import db
from clms.i18n import N_, Msg
from clms.locale import localize
from clms.places.areas import area_rows
from clms.places.villages import import_villages
from clms.web import bp
from geo.countries import PlaceError

BOUNDARY_TYPES = (".geojson", ".json", ".zip", ".gpkg")
VILLAGE_TYPES = (".csv", ".geojson", ".json", ".zip", ".gpkg")
LEVELS = (
    ("region", N_("Region")),
    ("department", N_("Department")),
    ("district", N_("District")),
    ("commune", N_("Commune")),
)
_BOUNDARY_FIELDS = ("level", "country", "code_field", "name_field", "parent_field",
                    "level_field", "layer", "crs")  # fmt: skip
_VILLAGE_FIELDS = ("country", "id_column", "name_column", "lat_column", "lon_column",
                   "wkt_column", "area_column", "layer")  # fmt: skip


@bp.route("/places")
@allow("admin")
def places_index():
    """The areas (level, parent, boundary, villages, cells) and the import forms."""
    return _page()


@bp.route("/places/boundaries", methods=["POST"])
@allow("admin")
def places_boundaries():
    """Import the uploaded boundary file: every feature or none."""
    from clms.places.areas import import_boundaries
    from geo.boundaries import country_outline, read_boundaries

    options = {k: (request.form.get(k) or "").strip() or None for k in _BOUNDARY_FIELDS}
    session = db()

    def run(path: str):
        found = read_boundaries(
            path, level=options["level"], country_code=options["country"],
            code_field=options["code_field"], name_field=options["name_field"],
            parent_field=options["parent_field"], level_field=options["level_field"],
            layer=options["layer"], crs=options["crs"], repair=bool(request.form.get("repair")),
            known_country_geom=country_outline(session),
        )  # fmt: skip
        return import_boundaries(session, found)

    outcome = _with_upload(BOUNDARY_TYPES, run)
    if isinstance(outcome, tuple):
        return outcome
    session.commit()
    flash(localize(Msg("Boundaries imported: {summary}.", summary=outcome.summary())), "success")
    for note in outcome.notes:
        flash(note, "warning")
    return redirect(url_for("web.places_index"), code=303)


@bp.route("/places/villages", methods=["POST"])
@allow("admin")
def places_villages():
    """Import the uploaded villages file: every row or none."""
    options = {k: (request.form.get(k) or "").strip() or None for k in _VILLAGE_FIELDS}
    defaults = {"id_column": "wof_id", "name_column": "name", "lat_column": "lat",
                "lon_column": "lon"}  # fmt: skip
    for key, value in defaults.items():
        options[key] = options[key] or value
    session = db()

    def run(path: str):
        return import_villages(
            session, path, country_code=options["country"], id_column=options["id_column"],
            name_column=options["name_column"], lat_column=options["lat_column"],
            lon_column=options["lon_column"], wkt_column=options["wkt_column"],
            area_column=options["area_column"], layer=options["layer"],
        )  # fmt: skip

    outcome = _with_upload(VILLAGE_TYPES, run)
    if isinstance(outcome, tuple):
        return outcome
    from geo.cells import derive_cells

    cells = derive_cells(session)  # the maps draw villages by their cells: derive them now
    session.commit()
    flash(localize(Msg("Villages imported: {summary}.", summary=outcome.summary())), "success")
    flash(localize(Msg("Cells derived: {summary}.", summary=cells.summary())), "success")
    return redirect(url_for("web.places_index"), code=303)


@bp.route("/places/cells", methods=["POST"])
@allow("admin")
def places_cells():
    """Derive the village cells (all, or those of one area)."""
    from geo.cells import derive_cells

    session = db()
    area = (request.form.get("area") or "").strip() or None
    try:
        result = derive_cells(session, area)
    except LookupError:
        session.rollback()
        return _page(localize(Msg("There is no area {code}.", code=area)), 422)
    session.commit()
    flash(localize(Msg("Cells derived: {summary}.", summary=result.summary())), "success")
    return redirect(url_for("web.places_index"), code=303)


def _with_upload(allowed: tuple[str, ...], run):
    """Save the upload in a temporary folder, ``run(path)``, remove it. Returns what ``run``
    returned, or the error page (a tuple) with nothing written."""
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        return _page(localize(Msg("Choose a file to import.")), 400)
    name = secure_filename(upload.filename) or "upload"
    if not name.lower().endswith(allowed):
        kinds = ", ".join(allowed)
        said = Msg("{name}: not a file this form reads ({kinds}).", name=name, kinds=kinds)
        return _page(localize(said), 400)
    session = db()
    with tempfile.TemporaryDirectory(prefix="clms-places-") as folder:
        path = os.path.join(folder, name)
        upload.save(path)
        try:
            return run(path)
        except PlaceError as p:  # shown in the page, above the forms (422)
            session.rollback()
            return _page(
                localize(Msg("Nothing was imported. {detail}", detail=p.message)), p.status
            )


def _page(error: str | None = None, status: int = 200):
    body = render_template(
        "places_index.html",
        areas=area_rows(db()),
        levels=LEVELS,
        error=error,
        values=request.form,
        boundary_types=", ".join(BOUNDARY_TYPES),
        village_types=", ".join(VILLAGE_TYPES),
    )
    return body, status
