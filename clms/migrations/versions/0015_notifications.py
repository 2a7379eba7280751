"""notices in the application (what happened that concerns a person) and email preferences

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 10:00:00

notices: one row a recipient, codes only (the words are written when the page is read, in the
reader's language). notice_preferences: which kinds a person also wants by email (a kind without
a row keeps its default).
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import clms.models

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "notices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("subject", sa.String(length=12), nullable=False),
        sa.Column("subject_id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column(
            "detail",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("created_at", clms.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("read_at", clms.models.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["actor_id"], ["users.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("notices", schema=None) as batch_op:
        batch_op.create_index("ix_notices_user_read", ["user_id", "read_at"], unique=False)
        batch_op.create_index(
            "ix_notices_user_created", ["user_id", "created_at", "id"], unique=False
        )
    op.create_table(
        "notice_preferences",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("by_email", sa.Boolean(), nullable=False),
        sa.Column("updated_at", clms.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("user_id", "kind"),
    )


def downgrade() -> None:
    op.drop_table("notice_preferences")
    with op.batch_alter_table("notices", schema=None) as batch_op:
        batch_op.drop_index("ix_notices_user_created")
        batch_op.drop_index("ix_notices_user_read")
    op.drop_table("notices")
