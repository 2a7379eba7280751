"""a brand's figures of a reporting period are released once and never change

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 14:00:00

hotspot_releases replaces hotspot_cache: instead of tables kept for an hour and aggregated again,
each brand's period is aggregated once, when it is first published, and every answer reads it
(geo.hotspot_releases). The kept tables are dropped: they are computed again as releases.
"""

import sqlalchemy as sa
from alembic import op

import clms.models

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("hotspot_cache", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_hotspot_cache_brand_id"))
    op.drop_table("hotspot_cache")
    op.create_table(
        "hotspot_releases",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("brand_id", sa.Integer(), nullable=False),
        sa.Column("start", sa.Date(), nullable=False),
        sa.Column("months", sa.Integer(), nullable=False),
        sa.Column("released_at", clms.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["brand_id"], ["brands.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("brand_id", "start", "months", name="uq_hotspot_releases_period"),
    )
    with op.batch_alter_table("hotspot_releases", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_hotspot_releases_brand_id"), ["brand_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("hotspot_releases", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_hotspot_releases_brand_id"))
    op.drop_table("hotspot_releases")
    op.create_table(
        "hotspot_cache",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("brand_id", sa.Integer(), nullable=False),
        sa.Column("computed_at", clms.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["brand_id"], ["brands.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key"),
    )
    with op.batch_alter_table("hotspot_cache", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_hotspot_cache_brand_id"), ["brand_id"], unique=False)
