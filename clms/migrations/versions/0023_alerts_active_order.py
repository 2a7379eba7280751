"""the active alert queue in urgency order, for pages read by key

Revision ID: 0023
Revises: 0021
Create Date: 2026-12-07 20:05:00

Issue 19, point 4: the alert queue pages by key. The page after a row reads, within the row's
(overdue, severity) group, the active alerts after its acknowledgement deadline and id; this
partial index holds them in that order (with the scope's village and the overdue rule's columns,
so it covers the read), and the database reads the page's rows and stops, however deep the page
and whatever the scope. The predicate is the queue's own ``alerts.status IN ('new',
'acknowledged')``, so both databases can prove it usable.
"""

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None

_ACTIVE = sa.text("status IN ('new', 'acknowledged')")
_COLUMNS = ["severity_rank", "ack_due_at", "id", "village_id", "acknowledged_at", "visit_due_at",
            "first_visit_at"]  # fmt: skip


def upgrade() -> None:
    op.create_index(
        "ix_alerts_active_order",
        "alerts",
        _COLUMNS,
        unique=False,
        sqlite_where=_ACTIVE,
        postgresql_where=_ACTIVE,
    )


def downgrade() -> None:
    op.drop_index("ix_alerts_active_order", table_name="alerts")
