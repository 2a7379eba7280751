"""submissions withdrawn by their server, where a pulled submission lives there, the retry list

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07 16:20:00

Issue 18: a submission deleted or rejected on ODK Central, or "not approved" on KoboToolbox, is
withdrawn here (never erased); a pulled submission remembers its source and its id there (Central's
rootId, Kobo's _id); Central sources get a second cursor for edits, review states and deletions;
a submission a pull could not take waits in ``pull_retries`` instead of being skipped.
"""

import sqlalchemy as sa
from alembic import op

import clms.models

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

_WHEN = clms.models.UTCDateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("submissions") as batch:
        batch.add_column(sa.Column("withdrawn_at", _WHEN, nullable=True))
        batch.add_column(sa.Column("withdrawn_reason", sa.String(length=20), nullable=True))
        batch.add_column(sa.Column("pull_source_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("remote_id", sa.String(length=255), nullable=True))
        batch.add_column(sa.Column("remote_review_state", sa.String(length=40), nullable=True))
        batch.create_foreign_key(
            "fk_submissions_pull_source", "pull_sources",
            ["pull_source_id"], ["id"], ondelete="SET NULL",
        )  # fmt: skip
        batch.create_check_constraint(
            "ck_submissions_withdrawn_reason",
            "withdrawn_reason IN ('deleted','rejected','not_approved')",
        )
        batch.create_index("ix_submissions_remote", ["pull_source_id", "remote_id"])
    with op.batch_alter_table("pull_sources") as batch:
        batch.add_column(sa.Column("changes_cursor", sa.String(length=64), nullable=True))
    op.create_table(
        "pull_retries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source_id", sa.Integer(), nullable=False),
        sa.Column("remote_id", sa.String(length=255), nullable=False),
        sa.Column("instance_id", sa.String(length=255), nullable=True),
        sa.Column("submitted_at", sa.String(length=64), nullable=True),
        sa.Column("code", sa.String(length=60), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("first_failed_at", _WHEN, nullable=False),
        sa.Column("last_tried_at", _WHEN, nullable=False),
        sa.ForeignKeyConstraint(["source_id"], ["pull_sources.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("source_id", "remote_id", name="uq_pull_retries_remote"),
    )
    op.create_index("ix_pull_retries_source_id", "pull_retries", ["source_id"])


def downgrade() -> None:
    op.drop_index("ix_pull_retries_source_id", table_name="pull_retries")
    op.drop_table("pull_retries")
    with op.batch_alter_table("pull_sources") as batch:
        batch.drop_column("changes_cursor")
    with op.batch_alter_table("submissions") as batch:
        batch.drop_index("ix_submissions_remote")
        batch.drop_constraint("ck_submissions_withdrawn_reason", type_="check")
        batch.drop_constraint("fk_submissions_pull_source", type_="foreignkey")
        for column in ("remote_review_state", "remote_id", "pull_source_id", "withdrawn_reason",
                       "withdrawn_at"):  # fmt: skip
            batch.drop_column(column)
