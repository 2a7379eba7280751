"""A brand's hotspot tables, kept for a while so that its pages do not aggregate every child again.

A brand's map page shows the tables of :data:`geo.maps.PAGE_LEVELS` beside a map drawn from the
same tables; each is one aggregation over every child's latest classified visit, about 3 s at a
million children (README, *Benchmarks*). :func:`brand_tables` keeps the result, as it came out of
the privacy gate, in ``hotspot_cache`` for ``HOTSPOT_CACHE_MINUTES`` (60): the page and its map
frame, and every user of the brand, read it; the ``hotspots_refresh`` job (alerts.jobs) aggregates
each brand's default page again every ``HOTSPOT_CACHE_MINUTES / 2`` minutes, so that a page view
rarely waits for an aggregation. The page says how old its figures are.

Only brands' tables are kept: they are the same for every user of a brand and are aggregates
that passed the privacy gate. Officers' figures, exports and API answers are always live.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from clms.models import Brand, HotspotCache, User, utcnow
from geo.hotspots import HotspotTables, Period, brand_period, hotspot_tables

log = logging.getLogger(__name__)

#: how long kept tables are served, when the application does not say (HOTSPOT_CACHE_MINUTES)
DEFAULT_MINUTES = 60


def cache_minutes() -> int:
    """``HOTSPOT_CACHE_MINUTES`` of the application (0 turns the cache off)."""
    from flask import current_app, has_app_context

    if has_app_context():
        return int(current_app.config.get("HOTSPOT_CACHE_MINUTES", DEFAULT_MINUTES))
    return DEFAULT_MINUTES


def brand_tables(
    session: Session,
    user: User,
    levels,
    *,
    end: dt.date | None = None,
    months: int | None = None,
    now: dt.datetime | None = None,
    again: bool = False,
    **options,
) -> HotspotTables:
    """:func:`geo.hotspots.hotspot_tables` for ``user``, from the cache when ``user`` is a brand's
    and the same tables were aggregated less than :func:`cache_minutes` ago; aggregated and kept
    otherwise (always with ``again``). Anyone else's tables are aggregated every time.

    A brand's period is resolved first (one of the reporting grid's, :func:`brand_period`; a
    period not offered is refused here as it is live), and the tables are kept under it."""
    minutes = cache_minutes()
    now = now or utcnow()
    if user.role != "brand" or not user.brand_id or minutes <= 0:
        return hotspot_tables(
            session, user, levels, end=end, months=months, today=now.date(), **options
        )
    period = brand_period(end, months, now.date())
    key = _key(user.brand_id, period.end, period.months, tuple(levels), options)
    kept = session.scalar(select(HotspotCache).where(HotspotCache.key == key))
    if not again and kept is not None and kept.computed_at > now - dt.timedelta(minutes=minutes):
        return _load(kept.payload, kept.computed_at)
    tables = hotspot_tables(
        session, user, levels, end=period.end, months=period.months, today=now.date(), **options
    )
    tables.computed_at = now
    _keep(session, user.brand_id, key, tables, kept)
    return tables


def refresh(session: Session, levels, *, now: dt.datetime | None = None, progress=None) -> int:
    """Aggregate again the default page (``levels``, the latest period of the reporting grid) of
    every brand with an active user, and keep it; entries older than twice the cache's life are
    deleted. Returns the number of brands refreshed."""
    now = now or utcnow()
    too_old = now - dt.timedelta(minutes=2 * cache_minutes())
    session.execute(delete(HotspotCache).where(HotspotCache.computed_at < too_old))
    users = session.scalars(
        select(User)
        .join(Brand, Brand.id == User.brand_id)
        .where(User.role == "brand", User.active.is_(True))
        .order_by(User.brand_id, User.id)
    ).all()
    # one user per brand: every user of a brand sees the same tables
    first = list({u.brand_id: u for u in reversed(users)}.values())
    for done, user in enumerate(first, start=1):
        brand_tables(session, user, levels, now=now, again=True)
        if progress is not None:
            progress(done, len(first))
    return len(first)


def _key(brand_id: int, day: dt.date, months: int, levels: tuple, options: dict) -> str:
    from geo import privacy
    from geo.hotspots import _configured_thresholds

    options = dict(options)
    asked = {
        "brand": brand_id,
        "end": day.isoformat(),
        "months": months,
        "levels": list(levels),
        # the thresholds in force: a stricter setting must not be served older, looser tables
        "thresholds": list(privacy.thresholds(*_configured_thresholds(), None, None)),
        # the layers, as hotspot_tables reads its defaults: the same question, the same key
        "layer_levels": list(options.pop("layer_levels", ("village",))),
        "tiers": bool(options.pop("tiers", False)),
        "supplier_ids": sorted(options.pop("supplier_ids", ()) or ()),
        **{name: _plain(value) for name, value in sorted(options.items())},
    }
    return hashlib.sha256(json.dumps(asked, sort_keys=True).encode()).hexdigest()


def _plain(value):
    if isinstance(value, tuple | list | set | frozenset):
        return sorted(value, key=str) if isinstance(value, set | frozenset) else list(value)
    return value


def _keep(session: Session, brand_id: int, key: str, tables: HotspotTables, kept) -> None:
    payload = _dump(tables)
    if kept is not None:
        kept.payload, kept.computed_at = payload, tables.computed_at
    else:
        # two page views at once may both aggregate: the second one's row is simply not kept
        with session.begin_nested() as nested:
            session.add(
                HotspotCache(
                    key=key, brand_id=brand_id, computed_at=tables.computed_at, payload=payload
                )
            )
            try:
                session.flush()
            except Exception:  # noqa: BLE001 - a unique-key race; the tables are returned anyway
                nested.rollback()
                log.info("hotspot cache: %s kept by another request meanwhile", key[:12])


def _dump(tables: HotspotTables) -> str:
    return json.dumps(
        {
            "period": [tables.period.end.isoformat(), tables.period.months],
            "brand": tables.brand,
            "min_children": tables.min_children,
            "min_households": tables.min_households,
            "cells": [[kind, cell_id, cell] for (kind, cell_id), cell in tables.cells.items()],
            "levels": list(tables.levels),
            "layer_levels": list(tables.layer_levels),
            "tiers": tables.tiers,
            "supplier_ids": list(tables.supplier_ids),
        },
        separators=(",", ":"),
    )


def _load(payload: str, computed_at: dt.datetime) -> HotspotTables:
    data = json.loads(payload)
    end, months = data["period"]
    return HotspotTables(
        Period.ending(dt.date.fromisoformat(end), months),
        data["brand"],
        data["min_children"],
        data["min_households"],
        {(kind, cell_id): cell for kind, cell_id, cell in data["cells"]},
        tuple(data["levels"]),
        tuple(data["layer_levels"]),
        data["tiers"],
        tuple(data["supplier_ids"]),
        computed_at,
    )
