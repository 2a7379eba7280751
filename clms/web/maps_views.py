"""The map pages: the officer's map of households and open alerts, the brand's hotspot map with
its table of published figures, and the brand map as one standalone HTML file.

The map itself is a separate same-origin document (``/map/frame``) shown in an ``<iframe>``:
folium writes inline scripts and styles, which run there by the response's CSP nonce
(:mod:`clms.security` adds it to each of their tags); the frame is the one document our own pages
may frame. The frame loads Leaflet (and Leaflet.markercluster) from this server's static
files, never from a CDN; the basemap tiles come from ``MAP_TILES_URL`` when it is set (default:
none, see :func:`_tiles`).
"""

from __future__ import annotations

import datetime as dt

from flask import (
    Response,
    abort,
    current_app,
    g,
    jsonify,
    render_template,
    request,
    url_for,
)

from alerts.queue import queue_choices
from clms.audit import record_read
from clms.auth import allow
from clms.db import db, read_session
from clms.errors import Problem, problem
from clms.i18n import N_, Msg
from clms.locale import current_locale, gettext, number, percent
from clms.models import SEVERITIES, utcnow
from clms.scope import scope_parts
from clms.web import bp, flash_problem
from geo.hotspots.request import GEO_LEVELS
from geo.hotspots.settings import HotspotSettings
from geo.maps.brand import (
    PAGE_LEVELS,
    brand_map,
    carry_suppression,
    layer_figures,
    map_suppliers,
)
from geo.maps.build import build_officer_map
from geo.maps.officer import OfficerFilters, area_choices, officer_map_data

MAP_ROLES = ("officer", "supervisor", "admin", "brand")
STAFF_ROLES = ("officer", "supervisor", "admin")
#: the levels of the published figures' table, in the order the page shows them
TABLE_LEVELS = (
    ("area", N_("Areas")),
    ("village", N_("Villages")),
    ("tier", N_("Tiers")),
    ("supplier", N_("Suppliers")),
)
MAX_MONTHS = 120


@bp.route("/map")
@allow(*MAP_ROLES)
def map_index():
    """The officer map (filters above it), or the hotspot map and its table for a brand and for
    staff asking for the brand-style view (``?view=hotspots``)."""
    session = _reading()
    user = g.user
    if user.role != "brand" and scope_parts(session, user) is None:
        return render_template("map_officer.html", in_scope=False, filters=None), 200
    if user.role == "brand" or request.args.get("view") == "hotspots":
        return _hotspot_page(session, user)
    status = 200
    today = utcnow().date()
    try:
        filters = OfficerFilters.parse(request.args, today)
    except Problem as p:
        flash_problem(p)
        filters, status = OfficerFilters.default(today), 400
    villages, suppliers = queue_choices(session, user)
    areas = area_choices(session, user)
    return render_template(
        "map_officer.html",
        in_scope=True,
        filters=filters,
        areas=areas,
        villages=[(v.code, v.name) for v in villages],
        suppliers=[(s.code, s.name) for s in suppliers],
        severities=SEVERITIES,
        frame_url=url_for("web.map_frame", **filters.query()),
    ), status


@bp.route("/map/frame")
@allow(*MAP_ROLES)
def map_frame():
    """The map alone, as the page's ``<iframe>`` shows it (same parameters as the page)."""
    session = _reading()
    user = g.user
    assets = url_for("static", filename="vendor/node_modules").rstrip("/")
    tiles, attribution = _tiles()
    if user.role == "brand" or request.args.get("view") == "hotspots":
        end, months = _period(request.args)
        # one aggregation for the page: the tier, supplier and area layers come when chosen
        query = {
            **({"months": months} if months else {}),
            **({"end": end.isoformat()} if end else {}),
        }
        if user.role != "brand":
            query["view"] = "hotspots"
        fmap = brand_map(
            session,
            user,
            end=end,
            months=months,
            lazy=True,
            settings=_hotspot_settings(),
            layer_url=url_for("web.map_layer", **query),
            assets=assets,
            tiles=tiles,
            tiles_attribution=attribution,
            translate=gettext,
            locale=current_locale(),
        )
    else:
        filters = OfficerFilters.parse(request.args, utcnow().date())
        alert_url = url_for("web.alert_detail", alert_id=0).replace("/0", "/{id}")
        fmap = build_officer_map(
            officer_map_data(session, user, filters),
            alert_url=alert_url,
            assets=assets,
            tiles=tiles,
            tiles_attribution=attribution,
            translate=gettext,
        )
    # its Content-Security-Policy (only our own pages may frame it; folium's inline scripts and
    # styles run by the response's nonce) comes from clms.security, as every response's does
    response = Response(fmap.get_root().render(), mimetype="text/html")
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/map/layer.json")
@allow(*MAP_ROLES)
def map_layer():
    """The published figures of one layer of the hotspot map, fetched when it is chosen:
    ``kind`` village (with ``tier`` or ``supplier_id``) or area (with ``area_level``)."""
    from geo.hotspots.tables import hotspot_table, hotspot_tables

    session = _reading()
    user = g.user
    if user.role != "brand" and scope_parts(session, user) is None:
        raise problem("auth.forbidden")
    end, months = _period(request.args)
    settings = _hotspot_settings()
    args = request.args
    kind = args.get("kind", "village")
    options: dict = {}
    if kind == "area":
        options["area_level"] = args.get("area_level") or None
    elif kind != "village":
        detail = Msg("must be one of {choices}", choices="village, area")
        raise problem("request.invalid_parameter", parameter="kind", detail=detail)
    for name in ("tier", "supplier_id"):
        raw = args.get(name)
        if raw is None:
            continue
        if not raw.isdigit():
            detail = Msg("must be a whole number")
            raise problem("request.invalid_parameter", parameter=name, detail=detail)
        options[name] = int(raw)
    if "supplier_id" in options and options["supplier_id"] not in {
        s.id for s in map_suppliers(session, user)
    }:
        abort(404)  # not a supplier of this map (whether or not it exists)
    # a brand's filtered table is protected together with the unfiltered ones (geo.hotspots), so
    # a layer cannot undo the suppression of the all-suppliers map: one aggregation of the
    # page's tables and this layer
    tier, supplier_id = options.pop("tier", None), options.pop("supplier_id", None)
    if tier is not None and supplier_id is not None:  # not a layer the map offers
        rows = hotspot_table(
            session, user, kind, end=end, months=months, tier=tier, supplier_id=supplier_id,
            settings=settings, **options,
        ).rows  # fmt: skip
    else:
        tables = hotspot_tables(
            session,
            user,
            PAGE_LEVELS,
            end=end,
            months=months,
            layer_levels=(kind,),
            tiers=tier is not None,
            supplier_ids=() if supplier_id is None else (supplier_id,),
            settings=settings,
        )
        rows = tables.table(kind, tier=tier, supplier_id=supplier_id, **options).rows
        if kind == "village" and user.role == "brand" and (tier, supplier_id) != (None, None):
            rows = carry_suppression(rows, tables.table("village").rows)
    response = jsonify({"rows": layer_figures(rows)})
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/map/export.html")
@allow(*MAP_ROLES)
def map_export():
    """The hotspot map as one HTML file that works offline (Leaflet inlined), to download."""
    session = _reading()
    user = g.user
    if user.role != "brand" and scope_parts(session, user) is None:
        raise problem("auth.forbidden")
    end, months = _period(request.args)
    tiles, attribution = _tiles()
    html = (
        brand_map(
            session,
            user,
            end=end,
            months=months,
            settings=_hotspot_settings(),
            assets="inline",
            tiles=tiles,
            tiles_attribution=attribution,
            translate=gettext,
            locale=current_locale(),
        )
        .get_root()
        .render()
    )
    record_read(db(), user, "hotspots.map_export", "map", end=end, months=months)
    response = Response(html, mimetype="text/html")
    day = (end or utcnow().date()).isoformat()
    response.headers["Content-Disposition"] = f'attachment; filename="clms-hotspot-map-{day}.html"'
    response.headers["Cache-Control"] = "no-store"
    return response


# --- helpers -------------------------------------------------------------------------------------


def _hotspot_page(session, user):
    from geo.hotspots.tables import hotspot_tables, offered_periods

    status = 200
    settings = _hotspot_settings()
    # one aggregation and one privacy gate for every table, the same as the map's frame reads
    # (geo.maps.brand.PAGE_LEVELS): the page and its map publish the very same cells (a brand's come
    # from the release of its period: geo.hotspots.releases; the page says when it was made)
    try:
        end, months = _period(request.args)
        figures = hotspot_tables(
            session, user, PAGE_LEVELS, end=end, months=months, settings=settings
        )
    except Problem as p:  # a period that cannot be read, or not one a brand may see
        flash_problem(p)
        status = 400
        figures = hotspot_tables(session, user, PAGE_LEVELS, settings=settings)
    period = figures.period
    # the frame, its layers and the downloads ask for this very period, not "the latest" again
    query = {"months": period.months, "end": period.end.isoformat()}
    tables = [
        (label, figures.table(level), _downloads(user, level, query))
        for level, label in TABLE_LEVELS
    ]
    if user.role != "brand":
        query["view"] = "hotspots"
    return render_template(
        "map_brand.html",
        tables=tables,
        period=period,
        offered=offered_periods(utcnow().date(), settings=settings)
        if user.role == "brand"
        else None,
        grace_days=current_app.config["BRAND_PERIOD_GRACE_DAYS"],
        released_at=figures.computed_at,
        months=period.months,
        end=period.end,
        query=query,
        frame_url=url_for("web.map_frame", **query),
        export_url=url_for("web.map_export", **query),
        figure=figure,
    ), status


def _downloads(user, level: str, query: dict) -> list[tuple[str, str]]:
    """The files of one table of the page (``(format, address)``): the downloads of
    ``/hotspots/export.*`` for this level and period, which keep their own gate (the role, the
    brand's chain, the privacy thresholds); none for a role those downloads are not for."""
    from clms.web.hotspots_views import HOTSPOT_ROLES

    if user.role not in HOTSPOT_ROLES:
        return []
    formats = ("csv", "xlsx", "geojson") if level in GEO_LEVELS else ("csv", "xlsx")
    return [(f, url_for("web.hotspots_export", fmt=f, level=level, **query)) for f in formats]


def _hotspot_settings() -> HotspotSettings:
    """The application's reporting grid and privacy thresholds, passed down to geo.hotspots and
    geo.maps (which never read the application)."""
    return HotspotSettings.from_config(current_app.config)


def _reading():
    """The request's read session (:func:`clms.db.read_session`: the read replica when fit, else
    the primary in a read-only transaction): a brand's period released on first view is kept on
    the primary through a connection of its own (geo.hotspots.releases), and on SQLite no page of
    the map waits for the write lock."""
    return read_session()


def _period(args) -> tuple[dt.date | None, int | None]:
    """``end`` (a date) and ``months`` (1-120) from the query, each None when not given (for a
    brand: the latest reporting period; for staff: today and 12)."""
    text = (args.get("end") or "").strip()
    try:
        end = dt.date.fromisoformat(text) if text else None
    except ValueError:
        detail = Msg("is not a date (YYYY-MM-DD): {value}", value=text)
        raise problem("request.invalid_parameter", parameter="end", detail=detail) from None
    raw = (args.get("months") or "").strip()
    if not raw:
        return end, None
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_MONTHS:
        detail = Msg("must be a whole number of months from 1 to {most}", most=MAX_MONTHS)
        raise problem("request.invalid_parameter", parameter="months", detail=detail)
    return end, int(raw)


def _tiles() -> tuple[str, str]:
    """The basemap: ``MAP_TILES_URL`` (a Leaflet URL template) and its attribution.

    Off by default: a tile server learns which places are looked at (for an officer, where the
    households are), public OpenStreetMap tiles may not be used by an application at scale
    without agreement, and a closed network cannot reach them. The cells and areas are drawn
    whatever the setting.
    """
    config = current_app.config
    return str(config.get("MAP_TILES_URL") or ""), str(config.get("MAP_TILES_ATTRIBUTION") or "")


def figure(row: dict, key: str, kind: str = "int") -> str:
    """One figure of a published row as the table shows it, in the reader's language ("1 234",
    "12,5 %", "+1,5" in French; "1,234", "12.5%", "+1.5" in English)."""
    value = row.get(key)
    if value is None:
        return "—"
    if kind == "share":
        return percent(value, decimals=1)
    if kind == "points":
        return ("+" if value >= 0 else "") + number(value, decimals=1)
    return number(value)
