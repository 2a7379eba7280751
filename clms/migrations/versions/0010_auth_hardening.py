"""sign-in hardening: login throttles (lockout, per-address limit) and per-user session epochs

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 13:00:00
"""

import sqlalchemy as sa
from alembic import op

import clms.models

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "login_throttles",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("scope", sa.String(length=10), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("window_start", clms.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("locked_until", clms.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("updated_at", clms.models.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("scope IN ('user','address')", name="ck_login_throttles_scope"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("scope", "key", name="uq_login_throttles_scope_key"),
    )
    with op.batch_alter_table("login_throttles", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_login_throttles_updated_at"), ["updated_at"], unique=False
        )
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("session_epoch", sa.Integer(), server_default="0", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("session_epoch")
    with op.batch_alter_table("login_throttles", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_login_throttles_updated_at"))
    op.drop_table("login_throttles")
