"""Administrative areas and villages from public locality lists (Who's On First, shared/data).

The Côte d'Ivoire file (``shared/data/localities/wof_ci_localities.csv``) gives every locality a
``region_name`` and a ``county_name``. They become areas ``country > region > department``:

* ``CI``                     the country
* ``CI-<REGION>``            from ``region_name``, e.g. ``CI-BAS-SASSANDRA``
* ``CI-<REGION>-<COUNTY>``   from ``county_name``, e.g. ``CI-BAS-SASSANDRA-NAWA``

Codes are upper-case ASCII slugs of the names exactly as the file spells them, so they are stable
whatever display names are used. (In WOF's file, ``region`` is the former region, now mostly a
district, and ``county`` the present-day région; the file's county names are cut at ten characters
by the shapefile they come from, e.g. ``Haut-Sassa``; :func:`county_names_from_geoboundaries`
recovers the full names for display from the geoBoundaries ADM2 file.)

A village's code is ``V`` + its WOF id written in base 36 (``V1209251639`` would be ten digits;
``VJZYGJB`` is seven characters, and ``int(code[1:], 36)`` gives the WOF id back). WOF ids are
unique worldwide, so codes from different countries' files never collide.

:func:`load_localities` is idempotent: an area or village whose code exists is left as it is.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from clms.models import Area, Village
from geo.countries import PlaceError, slug, village_code

COUNTRY_CODE = "CI"
COUNTRY_ISO3 = "CIV"
COUNTRY_NAME = "Côte d'Ivoire"

# Côte d'Ivoire's extent (about 4.36-10.74 N, 8.60-2.49 W) with a small margin for points on the
# border or the coast: (west, south, east, north) in degrees.
CI_BBOX = (-8.65, 4.30, -2.45, 10.78)

# The cocoa belt of the south-west and centre-west, as the WOF file names its regions
# (Bas-Sassandra holds the present-day régions Nawa, San-Pédro and Gbôklé; Fromager is Gôh;
# Sud-Bandama is Lôh-Djiboua; Moyen-Comoe is Indénié-Djuablin).
COCOA_BELT_REGIONS = ["Bas-Sassandra", "Haut-Sassandra", "Fromager", "Sud-Bandama", "Moyen-Comoe"]

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class BadRow:
    """A CSV row that was not loaded: its line number in the file, id, name and the reason."""

    line: int
    wof_id: str
    name: str
    reason: str

    def __str__(self) -> str:
        where = f"wof_id {self.wof_id or '?'}, {self.name or 'no name'!r}"
        return f"line {self.line} ({where}): {self.reason}"


class LoadResult(tuple):
    """``(n_areas, n_villages)`` created, with ``.skipped``: the :class:`BadRow` list left out."""

    skipped: list[BadRow]

    def __new__(cls, n_areas: int, n_villages: int, skipped: list[BadRow]):
        obj = super().__new__(cls, (n_areas, n_villages))
        obj.skipped = skipped
        return obj

    @property
    def areas(self) -> int:
        return self[0]

    @property
    def villages(self) -> int:
        return self[1]


def county_names_from_geoboundaries(
    geojson_path: str | Path, names: Iterable[str]
) -> dict[str, str]:
    """Full names for county names the WOF file cut at ten characters (``Haut-Sassa``).

    ``geojson_path`` is geoBoundaries' CIV-ADM2 file (present-day régions, ``shapeName``). A name
    is completed only when exactly one shapeName starts with it; others are left out.
    """
    with open(geojson_path, encoding="utf-8") as fh:
        shape_names = [f["properties"]["shapeName"] for f in json.load(fh)["features"]]
    full: dict[str, str] = {}
    for name in names:
        if len(name) != 10:  # DBF cuts at exactly ten characters
            continue
        matches = [s for s in shape_names if slug(s).startswith(slug(name)) and s != name]
        if len(matches) == 1:
            full[name] = matches[0]
    return full


@dataclass
class _Row:
    line: int
    wof_id: str
    name: str
    lat: float
    lon: float
    region: str
    county: str


def _read_rows(csv_path: str | Path) -> tuple[list[dict], list[int]]:
    with open(csv_path, encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        missing = {"wof_id", "name", "lat", "lon", "region_name", "county_name"} - set(
            reader.fieldnames or []
        )
        if missing:
            raise PlaceError(f"{csv_path}: missing column(s) {', '.join(sorted(missing))}.")
        rows, lines = [], []
        for row in reader:
            rows.append(row)
            lines.append(reader.line_num)
    return rows, lines


def _check_row(raw: dict, line: int) -> _Row | BadRow:
    wof_id = (raw.get("wof_id") or "").strip()
    name = (raw.get("name") or "").strip()

    def bad(reason: str) -> BadRow:
        return BadRow(line, wof_id, name, reason)

    if not wof_id.isdigit() or int(wof_id) <= 0:
        return bad(f"wof_id {wof_id!r} is not a positive whole number")
    if not name:
        return bad("no name")
    lat_text, lon_text = (raw.get("lat") or "").strip(), (raw.get("lon") or "").strip()
    if not lat_text or not lon_text:
        return bad("coordinates missing")
    try:
        lat, lon = float(lat_text), float(lon_text)
    except ValueError:
        return bad(f"coordinates {lat_text!r}, {lon_text!r} are not numbers")
    west, south, east, north = CI_BBOX
    if not (south <= lat <= north and west <= lon <= east):
        return bad(
            f"coordinates lat {lat}, lon {lon} are outside Côte d'Ivoire "
            f"(lat {south} to {north}, lon {west} to {east})"
        )
    return _Row(
        line,
        wof_id,
        name,
        lat,
        lon,
        (raw.get("region_name") or "").strip(),
        (raw.get("county_name") or "").strip(),
    )


def _select_regions(raws: list[dict], regions: list[str] | None) -> set[str] | None:
    """The slugs asked for, after checking each names a region or department in the file."""
    if regions is None:
        return None
    region_names = sorted({(r.get("region_name") or "").strip() for r in raws} - {""})
    county_names = sorted({(r.get("county_name") or "").strip() for r in raws} - {""})
    known = {slug(n) for n in region_names} | {slug(n) for n in county_names}
    wanted = {slug(n) for n in regions}
    unknown = [n for n in regions if slug(n) not in known or not slug(n)]
    if unknown:
        raise PlaceError(
            f"Unknown region name(s): {', '.join(repr(n) for n in unknown)}. "
            f"Regions in the file: {', '.join(region_names)}. "
            f"Departments (also accepted): {', '.join(county_names)}."
        )
    return wanted


def _pick(rows: list[_Row], max_villages: int | None) -> list[_Row]:
    """At most ``max_villages`` rows, spread evenly over departments (round robin, by WOF id)."""
    if max_villages is None or len(rows) <= max_villages:
        return rows
    groups: dict[tuple[str, str], list[_Row]] = {}
    for row in sorted(rows, key=lambda r: int(r.wof_id)):
        groups.setdefault((slug(row.region), slug(row.county)), []).append(row)
    queues = [groups[k] for k in sorted(groups)]
    picked: list[_Row] = []
    index = 0
    while len(picked) < max_villages:
        for queue in queues:
            if index < len(queue) and len(picked) < max_villages:
                picked.append(queue[index])
        index += 1
    return picked


def load_localities(
    session: Session,
    csv_path: str | Path,
    regions: list[str] | None = None,
    max_villages: int | None = None,
    progress: Progress | None = None,
    *,
    on_error: str = "raise",
    county_names: dict[str, str] | None = None,
) -> LoadResult:
    """Create the areas and villages of ``regions`` from a WOF localities CSV.

    Parameters
    ----------
    regions:
        Region names as the file spells them (``region_name``; accents and case ignored); a
        department name (``county_name``) is accepted too and loads that department only.
        ``None`` loads the whole file (rows without a region go straight under the country).
    max_villages:
        Load at most this many villages, spread evenly over the departments; the choice is stable.
    progress:
        Called as ``progress(done, total)`` while villages are added.
    on_error:
        ``"raise"`` (default): a row with missing or out-of-country coordinates (or no id/name)
        raises :class:`PlaceError` naming every such row, before anything is added.
        ``"skip"``: such rows are left out and listed in the result's ``.skipped``.
    county_names:
        Display names for county names (see :func:`county_names_from_geoboundaries`).

    Returns ``(n_areas, n_villages)`` newly created (a :class:`LoadResult`). Running it again adds
    nothing. Unknown region names raise :class:`PlaceError` listing the names the file has.
    """
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    if max_villages is not None and max_villages < 0:
        raise ValueError("max_villages must not be negative")
    county_names = county_names or {}
    raws, lines = _read_rows(csv_path)
    wanted = _select_regions(raws, regions)

    good: list[_Row] = []
    bad: list[BadRow] = []
    for raw, line in zip(raws, lines, strict=True):
        if wanted is not None:
            region = slug((raw.get("region_name") or "").strip())
            county = slug((raw.get("county_name") or "").strip())
            if region not in wanted and county not in wanted:
                continue
        checked = _check_row(raw, line)
        (bad if isinstance(checked, BadRow) else good).append(checked)
    if bad and on_error == "raise":
        shown = "; ".join(str(b) for b in bad[:10])
        more = f" (and {len(bad) - 10} more)" if len(bad) > 10 else ""
        raise PlaceError(
            f"{csv_path}: {len(bad)} row(s) cannot be loaded: {shown}{more}. "
            "Fix them, or skip them (on_error='skip')."
        )
    chosen = _pick(good, max_villages)

    existing_areas = {a.code: a for a in session.scalars(select(Area))}
    existing_villages = set(session.scalars(select(Village.code)))
    new_areas = 0

    def area(code: str, name: str, level: str, parent: Area | None) -> Area:
        nonlocal new_areas
        found = existing_areas.get(code)
        if found is not None:
            if found.level != level or (parent is not None and found.parent_id != parent.id):
                raise PlaceError(
                    f"Area code {code} already exists as a {found.level} elsewhere in the "
                    f"hierarchy; it cannot also be the {level} {name!r}."
                )
            return found
        created = Area(code=code, name=name, level=level, country_code=COUNTRY_ISO3, parent=parent)
        session.add(created)
        session.flush()
        existing_areas[code] = created
        new_areas += 1
        return created

    country = area(COUNTRY_CODE, COUNTRY_NAME, "country", None)
    new_villages = 0
    total = len(chosen)
    for done, row in enumerate(chosen, start=1):
        parent = country
        if row.region:
            region_code = f"{COUNTRY_CODE}-{slug(row.region)}"
            parent = area(region_code, row.region, "region", country)
            if row.county:
                name = county_names.get(row.county, row.county)
                parent = area(f"{region_code}-{slug(row.county)}", name, "department", parent)
        code = village_code(row.wof_id)
        if code not in existing_villages:
            session.add(
                Village(code=code, name=row.name, area_id=parent.id, lat=row.lat, lon=row.lon)
            )
            existing_villages.add(code)
            new_villages += 1
        if progress is not None and (done % 50 == 0 or done == total):
            progress(done, total)
    session.flush()
    return LoadResult(new_areas, new_villages, bad)
