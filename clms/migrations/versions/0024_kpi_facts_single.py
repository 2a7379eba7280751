"""kept facts: whether each child's rows have one supplier, one tier, one monitor

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-08 02:10:00

Issue 19: a filter by a supplier, a tier or a monitor over figures grouped by place keeps all of
a child's facts or none when the child's rows all have the same supplier (tier, monitor), or none
has one; then the kept pointers answer, as ``single_village`` lets them for a filter by villages,
instead of a look at the child's other facts for every row. The facts are made again from the
rows (the statement of ``clms kpis rebuild-facts``), which also fills the table of migration 0022.
"""

import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None

_FLAGS = ("single_supplier", "single_tier", "single_monitor")


def upgrade() -> None:
    with op.batch_alter_table("kpi_child_facts") as batch_op:
        for name in _FLAGS:
            batch_op.add_column(
                sa.Column(name, sa.Boolean(), server_default=sa.false(), nullable=False)
            )
    from sqlalchemy.orm import Session

    from clms.facts import rebuild

    rebuild(Session(bind=op.get_bind()))


def downgrade() -> None:
    with op.batch_alter_table("kpi_child_facts") as batch_op:
        for name in _FLAGS:
            batch_op.drop_column(name)
