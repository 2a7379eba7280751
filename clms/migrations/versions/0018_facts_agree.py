"""the records written before issue 17's fixes say what they now say for new ones

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07 13:10:00

Data only, no change of schema:

- an alert whose case recorded the officer's verification visit no longer needs verification
  (the alert page said "needs verification" after the visit);
- a case still waiting for its verification visit is due within its category's time for a first
  visit counted from its opening, not on its alert's deadline (a new case was overdue at once).
"""

import datetime as dt

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

#: the first officer visit's time of each category (alerts.rules.RESPONSE_TIMES, as of 0018)
_VISIT_WITHIN = {
    "worst_form": dt.timedelta(hours=72),
    "hazardous": dt.timedelta(days=7),
    "child_labour": dt.timedelta(days=14),
}
_VERIFICATION_DAYS = dt.timedelta(days=7)  # the workflow's default for other categories


def upgrade() -> None:
    bind = op.get_bind()
    bind.execute(
        sa.text(
            "UPDATE alerts SET needs_verification = :no WHERE needs_verification = :yes"
            " AND id IN (SELECT alert_id FROM cases"
            " WHERE alert_id IS NOT NULL AND verified_at IS NOT NULL)"
        ),
        {"no": False, "yes": True},
    )
    cases = sa.table(
        "cases",
        sa.column("id", sa.Integer),
        sa.column("state", sa.String),
        sa.column("category", sa.String),
        sa.column("opened_at", sa.DateTime(timezone=True)),
        sa.column("step_due_at", sa.DateTime(timezone=True)),
    )
    rows = bind.execute(
        sa.select(cases.c.id, cases.c.category, cases.c.opened_at, cases.c.step_due_at).where(
            cases.c.state == "verification"
        )
    ).all()
    for case_id, category, opened_at, step_due_at in rows:
        if opened_at is None:
            continue
        due = opened_at + _VISIT_WITHIN.get(category, _VERIFICATION_DAYS)
        # only a case that was overdue the moment it opened (its alert's deadline had passed):
        # a deadline still running when the case opened is the child's and stays
        if step_due_at is None or _naive(step_due_at) < _naive(opened_at):
            bind.execute(sa.update(cases).where(cases.c.id == case_id).values(step_due_at=due))


def _naive(moment: dt.datetime) -> dt.datetime:
    """SQLite gives naive UTC datetimes, PostgreSQL aware ones: compare them as naive UTC."""
    return moment.astimezone(dt.UTC).replace(tzinfo=None) if moment.tzinfo else moment


def downgrade() -> None:
    """Nothing to undo: the rows say what is true."""
