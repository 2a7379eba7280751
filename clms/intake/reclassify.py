"""Reclassification, run after a rules or country-profile change (``clms reclassify``).

Every stored child visit is classified again, a chunk at a time, one transaction per chunk (the
boundary is here): :mod:`alerts.reclassify` compares and stores what changed, and the changes that
make a child's latest visit graver go through the last steps of the intake pipeline
(:func:`clms.intake.pipeline.route`), exactly as a visit on arrival: the child's case takes the
finding, or the child's alert is raised or made more severe.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping

from sqlalchemy.orm import Session

from alerts.reclassify import (
    ReclassifyReport,
    count_child_visits,
    profile_names,
    read_chunk,
    reclassify_chunk,
)
from clms.intake import pipeline
from clms.models import utcnow


def reclassify(
    sessions: Callable[[], Session],
    *,
    chunk: int = 2000,
    dry_run: bool = False,
    progress: Callable[[int, int], None] | None = None,
    now: dt.datetime | None = None,
    max_examples: int = 20,
    config: Mapping | None = None,
) -> ReclassifyReport:
    """Classify every child visit again with the current rules and profiles.

    ``progress(done, total)`` is called after each chunk. With ``dry_run`` nothing is written:
    the report says what would change. ``config``: the configuration the cases' step is given
    (the application's; None: the defaults).
    """
    now = now or utcnow()
    policy = pipeline.Settings.from_config(config).case_policy
    report = ReclassifyReport()
    with sessions() as session:
        total = count_child_visits(session)
        names = profile_names(session)
    after = 0
    while True:
        with sessions() as session:
            rows = read_chunk(session, after, chunk)
            if not rows:
                break
            after = rows[-1].id
            visits, classified = reclassify_chunk(
                session, rows, names, report, dry_run, now, max_examples
            )
            if visits:
                pipeline.route(session, visits, classified, [], now, report.alerts, policy)
            if dry_run:
                session.rollback()
            else:
                session.commit()
        if progress is not None:
            progress(report.examined, total)
    return report
