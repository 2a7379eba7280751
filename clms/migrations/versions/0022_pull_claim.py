"""one pull of a source at a time: the claim of the pull running now

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-07 17:30:00

The scheduler's pull and an admin's "Pull now" could run on the same source at once, and both
withdraw the same submission (two flags, two notices). A pull now claims its source with a
conditional update of ``pulling_since`` and releases it at its end (clms.intake.pull).
"""

import sqlalchemy as sa
from alembic import op

import clms.models

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("pull_sources") as batch:
        batch.add_column(
            sa.Column("pulling_since", clms.models.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("pull_sources") as batch:
        batch.drop_column("pulling_since")
