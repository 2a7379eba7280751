"""the officer's alert queue: a covering index on scope and order

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 10:40:00
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

COLUMNS = [
    "status", "village_id", "severity_rank", "ack_due_at", "acknowledged_at", "visit_due_at",
    "first_visit_at",
]  # fmt: skip


def upgrade() -> None:
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.create_index("ix_alerts_scope_queue", COLUMNS, unique=False)


def downgrade() -> None:
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.drop_index("ix_alerts_scope_queue")
