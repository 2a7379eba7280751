"""data protection: when and why a child's personal data was removed (clms.dataprotection)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 13:00:00
"""

import sqlalchemy as sa
from alembic import op

import clms.models

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("children", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("anonymised_at", clms.models.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("anonymised_why", sa.String(length=10), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("children", schema=None) as batch_op:
        batch_op.drop_column("anonymised_why")
        batch_op.drop_column("anonymised_at")
