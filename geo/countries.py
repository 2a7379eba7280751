"""The countries whose places this project imports, and their extents.

An extent is ``(west, south, east, north)`` in degrees (EPSG:4326). It is a coarse check that
catches the usual mistakes (a file of the wrong country, projected metres declared as degrees,
longitude and latitude swapped), not a border: a feature passes when its bounding box lies inside
the country's extent widened by :data:`MARGIN_DEGREES`.

Source: the bounding boxes of Natural Earth's 1:10m admin-0 countries (public domain), rounded
outward to 0.01 degree; those of CIV, GHA and KHM checked against the geoBoundaries v2.0.1 files in
``shared/data/boundaries`` (their total bounds fall inside). Add a country here to import its
places.

Besides, the plain pieces that reading places (:mod:`geo.boundaries`) and storing them
(:mod:`clms.places`) share: :class:`PlaceError`, the codes of names and villages (:func:`slug`,
:func:`village_code`) and the great-circle distance (:func:`haversine_km`).
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass

from clms.errors import DomainProblem

# about 11 km: coastlines and border rivers drawn by different sources differ by a few km
MARGIN_DEGREES = 0.1


@dataclass(frozen=True)
class Country:
    """A country: ISO 3166 alpha-3 and alpha-2 codes, English name and extent."""

    iso3: str
    iso2: str
    name: str
    extent: tuple[float, float, float, float]

    def contains_bounds(self, bounds: tuple[float, float, float, float]) -> bool:
        """Whether ``(minx, miny, maxx, maxy)`` lies inside the extent widened by the margin."""
        west, south, east, north = self.extent
        minx, miny, maxx, maxy = bounds
        m = MARGIN_DEGREES
        return minx >= west - m and maxx <= east + m and miny >= south - m and maxy <= north + m


COUNTRIES: dict[str, Country] = {
    c.iso3: c
    for c in (
        Country("CIV", "CI", "Côte d'Ivoire", (-8.61, 4.34, -2.49, 10.74)),
        Country("GHA", "GH", "Ghana", (-3.27, 4.71, 1.20, 11.18)),
        Country("KHM", "KH", "Cambodia", (102.33, 9.91, 107.64, 14.70)),
        Country("BFA", "BF", "Burkina Faso", (-5.53, 9.39, 2.41, 15.09)),
        Country("LBR", "LR", "Liberia", (-11.50, 4.34, -7.36, 8.56)),
        Country("GIN", "GN", "Guinea", (-15.09, 7.19, -7.64, 12.68)),
        Country("MLI", "ML", "Mali", (-12.25, 10.14, 4.27, 25.01)),
        Country("TGO", "TG", "Togo", (-0.15, 6.10, 1.81, 11.14)),
        Country("NGA", "NG", "Nigeria", (2.67, 4.27, 14.68, 13.89)),
        Country("CMR", "CM", "Cameroon", (8.49, 1.65, 16.20, 13.08)),
    )
}
_BY_ISO2 = {c.iso2: c for c in COUNTRIES.values()}


def country(code: str) -> Country:
    """The country of an ISO alpha-3 or alpha-2 code (any case).

    >>> country("ci").iso3, country("GHA").name
    ('CIV', 'Ghana')
    """
    key = (code or "").strip().upper()
    found = COUNTRIES.get(key) or _BY_ISO2.get(key)
    if found is None:
        known = ", ".join(sorted(COUNTRIES))
        raise LookupError(f"Unknown country {code!r}; known countries: {known}.")
    return found


class PlaceError(DomainProblem, ValueError):
    """Places cannot be loaded as asked; the message says which rows or names and why
    (``places.refused``)."""

    KEY = "places.refused"


def slug(name: str) -> str:
    """Upper-case ASCII code part of a name: accents dropped, anything else becomes ``-``.

    >>> slug("N'zi-Comoé"), slug("San Pedro"), slug("  Gôh ")
    ('N-ZI-COMOE', 'SAN-PEDRO', 'GOH')
    """
    text = unicodedata.normalize("NFKD", name)
    text = "".join(c for c in text if not unicodedata.combining(c))
    text = text.encode("ascii", "ignore").decode("ascii").upper()
    return re.sub(r"[^A-Z0-9]+", "-", text).strip("-")


def village_code(wof_id: str | int) -> str:
    """The village code for a WOF id: ``V`` + the id in base 36.

    >>> village_code(1209251639), int(village_code(1209251639)[1:], 36)
    ('VJZYGJB', 1209251639)
    """
    number = int(wof_id)
    if number <= 0:
        raise ValueError(f"WOF id must be a positive integer, got {wof_id!r}")
    digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    out = ""
    while number:
        number, rest = divmod(number, 36)
        out = digits[rest] + out
    return "V" + out


#: the mean Earth radius (IUGG) of the great-circle distances
EARTH_RADIUS_KM = 6371.0088


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """The great-circle distance in km between two points (degrees).

    >>> round(haversine_km(5.78, -6.59, 5.70, -6.61), 2)
    9.17
    """
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))
