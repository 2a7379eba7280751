"""Digest nonces in use: a (nonce, nc) pair is accepted once, in every worker

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 09:00:00
"""

import sqlalchemy as sa
from alembic import op

import clms.models

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "digest_nonces",
        sa.Column("nonce", sa.String(length=200), nullable=False),
        sa.Column("nc", sa.Integer(), nullable=False),
        sa.Column("expires_at", clms.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("nonce"),
    )
    with op.batch_alter_table("digest_nonces", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_digest_nonces_expires_at"), ["expires_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("digest_nonces", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_digest_nonces_expires_at"))
    op.drop_table("digest_nonces")
