"""A brand's figures of a reporting period, released once and never changed.

A brand sees only closed reporting periods (:mod:`geo.periods`). Their figures would still move
after publication, as a late submission, a service recorded afterwards, a change of the supply
chain or a reclassification reaches them, and a brand that kept the answers of Monday and of
Friday could subtract them: a difference of one child slips under every threshold. So the first
time a brand's period is asked for (or when the ``hotspots_refresh`` job publishes it), every
count it is made of is aggregated once (:func:`geo.hotspots.aggregate.release_inputs`: every
level, every tier's and every supplier's layer, each village's part of each supplier, with the
chain and the villages' areas as they are then) and kept in ``hotspot_releases``; from then on
every answer, on every route, is made from that release, through the privacy gate with the
thresholds in force (:func:`geo.hotspots.gate.gate_release`; a stricter threshold hides more of
the same counts, it never reveals new ones). The previous figures of a period come from the
release of the period before.

Officers' and supervisors' figures are exact and always live (they may see every child anyway).
A release is final, like a published statistic: correcting the data changes the next periods and
the officers' figures, not what brands were already told.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import zlib

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from clms.db import READ_ONLY, primary_bind
from clms.models import Brand, HotspotRelease, User, utcnow
from geo.hotspots.aggregate import release_inputs
from geo.hotspots.figures import HotspotTables
from geo.hotspots.gate import Chain, gate_release
from geo.hotspots.settings import HotspotSettings
from geo.periods import Period, months_before

log = logging.getLogger(__name__)

#: gated tables of recent answers, per worker: (release ids and times, thresholds) -> tables
_GATED: dict = {}
_GATED_MAX = 16


class Release:
    """One brand's released period: when, and what the gate needs (``chain``, ``cells``,
    ``parts``; see :func:`geo.hotspots.aggregate.release_inputs`)."""

    def __init__(self, row_id, period: Period, released_at, chain: Chain, cells, parts):
        self.id = row_id
        self.period = period
        self.released_at = released_at
        self.chain = chain
        self.cells = cells
        self.parts = parts

    @property
    def key(self) -> tuple:
        return (self.id, self.released_at.isoformat())


def release(session: Session, brand_id: int, period: Period, now=None) -> Release:
    """The release of ``brand_id``'s ``period``, made now from the data if there is none yet.

    A request's read-only session keeps it through a connection of its own to the primary
    (committed at once; :func:`clms.db.primary_bind`: the session may be on a read replica); any
    other session (a command, a job) adds it to its own transaction. Two requests making the
    same release at once keep the first: the second answers with it, read on the primary (a
    replica may not have it yet)."""
    row = _stored(session, brand_id, period)
    primary = primary_bind(session)
    if row is None and primary is not session.get_bind():
        # read on a replica that may not have replayed a release made a moment ago: the primary
        # has it (one small query, not a second aggregation)
        with Session(bind=primary) as own:
            row = _stored(own, brand_id, period)
            if row is not None:
                return _load(row)
    if row is not None:
        return _load(row)
    now = now or utcnow()
    chain, cells, parts = release_inputs(session, brand_id, period)
    payload = _dump(chain, cells, parts)
    values = {"brand_id": brand_id, "start": period.start, "months": period.months,
              "released_at": now, "payload": payload}  # fmt: skip
    if session.connection().get_execution_options().get(READ_ONLY):
        try:
            with primary.connect() as conn, conn.begin():
                conn.execute(HotspotRelease.__table__.insert().values(**values))
        except IntegrityError:  # another request released it meanwhile: answer with that one
            with Session(bind=primary) as own:
                return _load(_stored(own, brand_id, period))
        log.info("released brand %s's figures of %s to %s", brand_id, period.start, period.end)
        return Release(None, period, now, chain, cells, parts)
    try:
        with session.begin_nested():
            row = HotspotRelease(**values)
            session.add(row)
            session.flush()
    except IntegrityError:
        return _load(_stored(session, brand_id, period))
    log.info("released brand %s's figures of %s to %s", brand_id, period.start, period.end)
    return Release(row.id, period, now, chain, cells, parts)


def gated(now: Release, before: Release | None, thresholds) -> HotspotTables:
    """The tables of release ``now`` through the privacy gate, with the previous figures of
    ``before``; the gated tables of the last few answers are kept in this worker."""
    key = (now.key, before.key if before else None, tuple(thresholds))
    if key in _GATED and now.id is not None:
        return _GATED[key]
    previous = (before.chain, before.cells, before.parts) if before is not None else None
    tables = gate_release(now.chain, now.cells, now.parts, previous, now.period, thresholds)
    tables.computed_at = now.released_at
    if now.id is not None:
        if len(_GATED) >= _GATED_MAX:
            _GATED.pop(next(iter(_GATED)))
        _GATED[key] = tables
    return tables


def refresh(session: Session, *, now: dt.datetime | None = None,
            settings: HotspotSettings, progress=None) -> int:  # fmt: skip
    """Release the latest published period (and the one before it, for its previous figures) of
    every brand with an active user, where not yet released, so that the first page view does
    not wait for the aggregation. The periods are those of the reporting grid of ``settings``
    (the defaults when not given). Returns how many releases were made."""
    now = now or utcnow()
    offered = settings.grid.offered(now.date())
    latest = offered[0]
    previous = Period.ending(latest.previous_end, latest.months)
    brands = sorted(
        set(
            session.scalars(
                select(User.brand_id)
                .join(Brand, Brand.id == User.brand_id)
                .where(User.role == "brand", User.active.is_(True))
            )
        )
    )
    made = 0
    for done, brand_id in enumerate(brands, start=1):
        for period in (previous, latest):
            if _stored(session, brand_id, period) is None:
                release(session, brand_id, period, now)
                made += 1
        if progress is not None:
            progress(done, len(brands))
    return made


def _stored(session: Session, brand_id: int, period: Period) -> HotspotRelease | None:
    return session.scalar(
        select(HotspotRelease).where(
            HotspotRelease.brand_id == brand_id,
            HotspotRelease.start == period.start,
            HotspotRelease.months == period.months,
        )
    )


def _dump(chain: Chain, cells: dict, parts: dict) -> bytes:
    data = {
        "chain": {
            "brand_ids": chain.brand_ids,
            "tiers": [[k, v] for k, v in chain.tiers.items()],
            "sellers": [[k, v] for k, v in chain.sellers.items()],
            "village_area": [[k, v] for k, v in chain.village_area.items()],
        },
        "cells": [[kind, cell_id, cell] for (kind, cell_id), cell in cells.items()],
        "parts": [[village, supplier, list(v)] for (village, supplier), v in parts.items()],
    }
    return zlib.compress(json.dumps(data, separators=(",", ":")).encode(), 6)


def _load(row: HotspotRelease) -> Release:
    data = json.loads(zlib.decompress(row.payload))
    c = data["chain"]
    chain = Chain(
        brand_ids=list(c["brand_ids"]),
        tiers={k: v for k, v in c["tiers"]},
        sellers={k: v for k, v in c["sellers"]},
        village_area={k: v for k, v in c["village_area"]},
    )
    cells = {(kind, cell_id): cell for kind, cell_id, cell in data["cells"]}
    parts = {(village, supplier): tuple(values) for village, supplier, values in data["parts"]}
    end = months_before(row.start, -row.months) - dt.timedelta(days=1)
    return Release(row.id, Period.ending(end, row.months), row.released_at, chain, cells, parts)
