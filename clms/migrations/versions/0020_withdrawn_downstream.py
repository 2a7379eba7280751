"""what a withdrawn submission does downstream: withdrawn alerts, flags on cases

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-07 16:10:00

Issue 18: an open alert that only withdrawn visits raised is closed by the system with the status
``withdrawn`` (it stops counting anywhere); a case opened from such an alert, or one that took a
withdrawn visit, is never closed for it but flagged for its officer (``case_withdrawals``), who
acknowledges the flag with a note; a restore on the server clears it.
"""

import sqlalchemy as sa
from alembic import op

import clms.models

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

_WHEN = clms.models.UTCDateTime(timezone=True)
_OLD = "status IN ('new','acknowledged','dismissed','case_opened')"
_NEW = "status IN ('new','acknowledged','dismissed','case_opened','withdrawn')"


def upgrade() -> None:
    with op.batch_alter_table("alerts") as batch:
        batch.drop_constraint("ck_alerts_status", type_="check")
        batch.create_check_constraint("ck_alerts_status", _NEW)
    op.create_table(
        "case_withdrawals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("submission_id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=20), nullable=False),
        sa.Column("server", sa.String(length=200), nullable=False),
        sa.Column("withdrawn_at", _WHEN, nullable=False),
        sa.Column("flagged_at", _WHEN, nullable=False),
        sa.Column("acknowledged_at", _WHEN, nullable=True),
        sa.Column("acknowledged_by_id", sa.Integer(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("restored_at", _WHEN, nullable=True),
        sa.CheckConstraint(
            "reason IN ('deleted','rejected','not_approved')", name="ck_case_withdrawals_reason"
        ),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"]),
        sa.ForeignKeyConstraint(["submission_id"], ["submissions.id"]),
        sa.ForeignKeyConstraint(["acknowledged_by_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_case_withdrawals_case_id", "case_withdrawals", ["case_id"])


def downgrade() -> None:
    op.drop_index("ix_case_withdrawals_case_id", table_name="case_withdrawals")
    op.drop_table("case_withdrawals")
    op.execute("UPDATE alerts SET status = 'dismissed' WHERE status = 'withdrawn'")
    with op.batch_alter_table("alerts") as batch:
        batch.drop_constraint("ck_alerts_status", type_="check")
        batch.create_check_constraint("ck_alerts_status", _OLD)
