"""partial indexes of the escalated alerts, case steps and referrals, for the supervisor's home

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07 11:00:00

A supervisor's "Escalated to you" (clms.workday.home) asks for the escalated rows of their
villages; without these indexes it reads every active alert and open case of the scope to find
the few escalated ones (bench.cases: the whole country's supervisor at 50,000 cases).
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

_INDEXES = (
    ("ix_alerts_escalated", "alerts", ["status", "village_id"], "escalated_at"),
    ("ix_cases_step_escalated", "cases", ["village_id", "state"], "step_escalated_at"),
    ("ix_referrals_escalated", "referrals", ["case_id"], "escalated_at"),
)


def upgrade() -> None:
    for name, table, columns, escalated in _INDEXES:
        where = sa.text(f"{escalated} IS NOT NULL")
        op.create_index(
            name, table, columns, unique=False, sqlite_where=where, postgresql_where=where
        )


def downgrade() -> None:
    for name, table, _columns, _escalated in reversed(_INDEXES):
        op.drop_index(name, table_name=table)
