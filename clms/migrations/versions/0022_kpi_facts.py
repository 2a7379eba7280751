"""kept facts: one row per current classified child visit, for the indicators (issue 19)

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-07 19:20:00

The indicators read these rows instead of joining visits, child visits, classifications,
households, villages and suppliers and ranking every child's classifications at each request.
The table is filled from the rows already stored (the same statement as ``clms kpis
rebuild-facts``) by migration 0024, which adds columns to it, so an upgraded database answers
at once.
"""

import sqlalchemy as sa
from alembic import op

import clms.models

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None

_WHEN = clms.models.UTCDateTime(timezone=True)


def upgrade() -> None:
    when = [
        f"{kind}{part}_at"
        for kind in ("next", "labour")
        for part in ("", "_village", "_area", "_supplier", "_tier", "_monitor")
    ]
    op.create_table(
        "kpi_child_facts",
        sa.Column("child_visit_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("classification_id", sa.Integer(), nullable=False),
        sa.Column("child_id", sa.Integer(), nullable=False),
        sa.Column("visit_id", sa.Integer(), nullable=False),
        sa.Column("household_id", sa.Integer(), nullable=True),
        sa.Column("visited_at", _WHEN, nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("village_id", sa.Integer(), nullable=True),
        sa.Column("area_id", sa.Integer(), nullable=True),
        sa.Column("supplier_id", sa.Integer(), nullable=True),
        sa.Column("visit_supplier_id", sa.Integer(), nullable=True),
        sa.Column("tier", sa.Integer(), nullable=True),
        sa.Column("monitor_id", sa.Integer(), nullable=True),
        sa.Column("sex", sa.String(length=10), nullable=True),
        sa.Column("age_band", sa.String(length=8), nullable=True),
        sa.Column("category", sa.String(length=20), nullable=False),
        sa.Column("sdg_871", sa.Boolean(), nullable=False),
        sa.Column("in_labour", sa.Boolean(), nullable=False),
        sa.Column("single_village", sa.Boolean(), nullable=False),
        *(sa.Column(name, _WHEN, nullable=True) for name in when),
        sa.PrimaryKeyConstraint("child_visit_id"),
    )
    with op.batch_alter_table("kpi_child_facts") as batch_op:
        batch_op.create_index("ix_kpi_child_facts_child", ["child_id", "visited_at"])
        batch_op.create_index("ix_kpi_child_facts_visited", ["visited_at"])
        batch_op.create_index("ix_kpi_child_facts_household", ["household_id"])
        batch_op.create_index("ix_kpi_child_facts_supplier", ["supplier_id"])
        batch_op.create_index("ix_kpi_child_facts_village", ["village_id"])
    # made from the rows already stored by the product's own statement (clms.facts), which
    # writes the columns of today's model: so by the newest migration that changes them
    # (0024), not here; 'clms kpis rebuild-facts' makes them again any time


def downgrade() -> None:
    op.drop_table("kpi_child_facts")
