"""user administration on the web: when each person last signed in

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 10:00:00

``users.last_sign_in_at``: set on each successful sign-in on the web or the API
(``clms.auth.note_sign_in``), shown on the users page. Empty for everyone at the upgrade: the audit
log keeps the sign-ins before it (``auth.login``).
"""

import sqlalchemy as sa
from alembic import op

import clms.models

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("last_sign_in_at", clms.models.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("last_sign_in_at")
