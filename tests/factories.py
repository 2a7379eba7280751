"""Rows for tests, written straight to the database: a child in a household, an alert.

Shared by the notification, escalation, scheduler, case and KPI tests.
"""

from __future__ import annotations

import datetime as dt
import itertools

from sqlalchemy import select

from clms.models import Alert, Child, Household, Supplier, Village

NOW = dt.datetime(2025, 3, 3, 9, 0, tzinfo=dt.UTC)
CHILD_NAME = "Aya Traoré"
HEAD_NAME = "Issa Traoré"

SEVERITY = {
    "worst_form": "critical",
    "hazardous": "high",
    "child_labour": "medium",
    "at_risk": "low",
}
RANK = {"critical": 4, "high": 3, "medium": 2, "low": 1}
# acknowledge within, first visit within (domain.md section 4)
DEADLINES = {
    "worst_form": (dt.timedelta(hours=24), dt.timedelta(hours=72)),
    "hazardous": (dt.timedelta(days=3), dt.timedelta(days=7)),
    "child_labour": (dt.timedelta(days=7), dt.timedelta(days=14)),
    "at_risk": (dt.timedelta(days=30), None),
}
_codes = itertools.count(1)


def village_id(s, code: str) -> int:
    return s.scalar(select(Village.id).where(Village.code == code))


def add_child(s, village: str = "V1", *, name: str = CHILD_NAME, head: str = HEAD_NAME) -> Child:
    """A household in ``village`` (selling to T2-COOP) with one child."""
    supplier = s.scalar(select(Supplier.id).where(Supplier.code == "T2-COOP"))
    household = Household(
        code=f"HH-{next(_codes)}", village_id=village_id(s, village), supplier_id=supplier,
        head_name=head,
    )  # fmt: skip
    s.add(household)
    s.flush()
    child = Child(household_id=household.id, name=name, name_key=name.lower(), birth_year=2013)
    s.add(child)
    s.flush()
    return child


def add_alert(
    s,
    village: str = "V1",
    *,
    category: str = "worst_form",
    child: Child | bool | None = True,
    created_at: dt.datetime = NOW,
    **fields,
) -> Alert:
    """An alert raised at ``created_at`` with the default deadlines of its category."""
    if child is True:
        child = add_child(s, village)
    severity = SEVERITY[category]
    ack, visit = DEADLINES[category]
    values = {
        "source": "visit" if child else "reported",
        "status": "new",
        "child_id": child.id if child else None,
        "household_id": child.household_id if child else None,
        "village_id": village_id(s, village) if village else None,
        "supplier_id": s.scalar(select(Supplier.id).where(Supplier.code == "T2-COOP")),
        "category": category,
        "severity": severity,
        "severity_rank": RANK[severity],
        "reasons": [{"rule": "TEST", "facts": {"age": 11}}],
        "created_at": created_at,
        "updated_at": created_at,
        "last_seen_at": created_at,
        "ack_due_at": created_at + ack,
        "visit_due_at": created_at + visit if visit else None,
    }
    values.update(fields)
    alert = Alert(**values)
    s.add(alert)
    s.flush()
    return alert
