"""device tokens issued before they had a lifetime get one: 180 days from the upgrade

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 12:00:00

A device token issued without an expiry (before CLMS_DEVICE_TOKEN_DAYS) would never stop
working; every such token still live now expires 180 days after the upgrade, as a token issued
today would (``clms users renew-token`` extends one still in use).
"""

import datetime as dt

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

DAYS = 180


def upgrade() -> None:
    tokens = sa.table(
        "api_tokens",
        sa.column("kind", sa.String),
        sa.column("expires_at", sa.DateTime(timezone=True)),
        sa.column("revoked_at", sa.DateTime(timezone=True)),
    )
    expires = dt.datetime.now(dt.UTC) + dt.timedelta(days=DAYS)
    if op.get_bind().dialect.name == "sqlite":
        expires = expires.replace(tzinfo=None)  # stored naive in UTC (clms.models.UTCDateTime)
    op.execute(
        tokens.update()
        .where(
            tokens.c.kind == "device",
            tokens.c.expires_at.is_(None),
            tokens.c.revoked_at.is_(None),
        )
        .values(expires_at=expires)
    )


def downgrade() -> None:
    pass  # the lifetimes given stay: removing them would make lost phones' tokens eternal again
