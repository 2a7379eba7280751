"""cases as ODK entities: each case's entity and its versions (offline update conflicts)

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-07 16:40:00

Issue 18: the follow-up form updates the case on the phone as an ODK entity of the list ``cases``;
the server keeps each case's entity (a stable UUID, its version, the properties the follow-ups
saved) and the history of its versions, with the conflicts of offline updates made from the same
version, until an officer resolves them.
"""

import sqlalchemy as sa
from alembic import op

import clms.models

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

_WHEN = clms.models.UTCDateTime(timezone=True)
_JSON = clms.models.JSONType


def upgrade() -> None:
    op.create_table(
        "case_entities",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("properties", _JSON, nullable=False),
        sa.Column("conflict", sa.String(length=10), nullable=True),
        sa.Column("created_at", _WHEN, nullable=False),
        sa.Column("updated_at", _WHEN, nullable=False),
        sa.CheckConstraint(
            "conflict IS NULL OR conflict IN ('soft','hard')", name="ck_case_entities_conflict"
        ),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("case_id"),
        sa.UniqueConstraint("uuid"),
    )
    op.create_table(
        "case_entity_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("entity_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("base_version", sa.Integer(), nullable=True),
        sa.Column("submission_id", sa.Integer(), nullable=True),
        sa.Column("submitter_id", sa.Integer(), nullable=True),
        sa.Column("at", _WHEN, nullable=False),
        sa.Column("received", _JSON, nullable=False),
        sa.Column("properties", _JSON, nullable=False),
        sa.Column("branch_id", sa.String(length=64), nullable=True),
        sa.Column("trunk_version", sa.Integer(), nullable=True),
        sa.Column("branch_base_version", sa.Integer(), nullable=True),
        sa.Column("conflict", sa.String(length=10), nullable=True),
        sa.Column("conflicting", _JSON, nullable=False),
        sa.Column("resolved_at", _WHEN, nullable=True),
        sa.Column("resolved_by_id", sa.Integer(), nullable=True),
        sa.Column("resolution_note", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "conflict IS NULL OR conflict IN ('soft','hard')",
            name="ck_case_entity_versions_conflict",
        ),
        sa.ForeignKeyConstraint(["entity_id"], ["case_entities.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["submission_id"], ["submissions.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["submitter_id"], ["users.id"]),
        sa.ForeignKeyConstraint(["resolved_by_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("entity_id", "version", name="uq_case_entity_versions_version"),
    )
    op.create_index("ix_case_entity_versions_entity_id", "case_entity_versions", ["entity_id"])
    op.create_index(
        "ix_case_entity_versions_submission_id", "case_entity_versions", ["submission_id"]
    )


def downgrade() -> None:
    op.drop_index("ix_case_entity_versions_submission_id", table_name="case_entity_versions")
    op.drop_index("ix_case_entity_versions_entity_id", table_name="case_entity_versions")
    op.drop_table("case_entity_versions")
    op.drop_table("case_entities")
