"""A child in a household, an alert: the rows the notification, escalation, scheduler, case and
KPI tests share, made with the builders of ``tests/builders.py`` (its constants re-exported).
"""

from __future__ import annotations

import datetime as dt

from clms.models import Alert, Child
from tests import builders
from tests.builders import DEADLINES, NOW, RANK, SEVERITY, village_id  # noqa: F401

CHILD_NAME = "Aya Traoré"
HEAD_NAME = "Issa Traoré"


def add_child(s, village: str = "V1", *, name: str = CHILD_NAME, head: str = HEAD_NAME) -> Child:
    """A household in ``village`` (selling to T2-COOP) with one child."""
    home = builders.household(s, village, supplier="T2-COOP", head_name=head)
    return builders.child(s, home, name)


def add_alert(
    s,
    village: str = "V1",
    *,
    category: str = "worst_form",
    child: Child | bool | None = True,
    created_at: dt.datetime = NOW,
    **fields,
) -> Alert:
    """An alert raised at ``created_at`` in ``village`` with the default deadlines of its
    category (of a new child there unless ``child`` is given, or None: a reported concern)."""
    kid = add_child(s, village) if child is True else child or None
    fields.setdefault("village_id", village_id(s, village) if village else None)
    return builders.alert(s, kid, supplier="T2-COOP", category=category, created_at=created_at,
                          **fields)  # fmt: skip
