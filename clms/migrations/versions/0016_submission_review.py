"""the review of submissions held for review: decisions, and the reasons a reviewer accepted

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07 10:00:00

submission_reviews keeps each reviewer's decision on a held submission (a correction making a new
version, an acceptance as it is, a rejection), one per version; submissions.accepted_reasons the
codes of the reasons accepted, which the processing then no longer holds it for (forms.decisions).
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import clms.models

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("submissions", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("accepted_reasons", JSON, nullable=False, server_default="[]")
        )
    op.create_table(
        "submission_reviews",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("logical_id", sa.String(length=255), nullable=False),
        sa.Column("form_id", sa.Integer(), nullable=False),
        sa.Column("submission_id", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=10), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("field", sa.String(length=255), nullable=True),
        sa.Column("old_value", sa.Text(), nullable=True),
        sa.Column("new_value", sa.Text(), nullable=True),
        sa.Column("new_submission_id", sa.Integer(), nullable=True),
        sa.Column("accepted", JSON, nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("at", clms.models.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "action IN ('correct','accept','reject')", name="ck_submission_reviews_action"
        ),
        sa.ForeignKeyConstraint(["actor_id"], ["users.id"]),
        sa.ForeignKeyConstraint(["form_id"], ["forms.id"]),
        sa.ForeignKeyConstraint(["new_submission_id"], ["submissions.id"]),
        sa.ForeignKeyConstraint(["submission_id"], ["submissions.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("submission_id", name="uq_submission_reviews_submission"),
    )
    op.create_index(
        "ix_submission_reviews_logical", "submission_reviews", ["form_id", "logical_id"]
    )


def downgrade() -> None:
    op.drop_index("ix_submission_reviews_logical", table_name="submission_reviews")
    op.drop_table("submission_reviews")
    with op.batch_alter_table("submissions", schema=None) as batch_op:
        batch_op.drop_column("accepted_reasons")
