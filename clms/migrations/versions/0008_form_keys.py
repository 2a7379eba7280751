"""ODK form encryption: per-form key pairs and the manifests of encrypted submissions

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 13:00:00
"""

import sqlalchemy as sa
from alembic import op

import clms.models

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "form_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("form_id", sa.Integer(), nullable=False),
        sa.Column("public_key", sa.Text(), nullable=False),
        sa.Column("private_key_pem", sa.LargeBinary(), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", clms.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("retired_at", clms.models.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["created_by_id"], ["users.id"]),
        sa.ForeignKeyConstraint(["form_id"], ["forms.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("form_keys", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_form_keys_form_id"), ["form_id"], unique=False)
        # one active key per form: the one new versions carry
        batch_op.create_index(
            "uq_form_keys_one_active",
            ["form_id"],
            unique=True,
            sqlite_where=sa.text("active"),
            postgresql_where=sa.text("active"),
        )

    op.create_table(
        "encrypted_submissions",
        sa.Column("submission_id", sa.Integer(), nullable=False),
        sa.Column("form_id", sa.Integer(), nullable=False),
        sa.Column("manifest", sa.LargeBinary(), nullable=False),
        sa.Column("manifest_sha256", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("form_key_id", sa.Integer(), nullable=True),
        sa.Column("decrypted_at", clms.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("decrypted_by_id", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "state IN ('waiting','decrypted')", name="ck_encrypted_submissions_state"
        ),
        sa.ForeignKeyConstraint(["decrypted_by_id"], ["users.id"]),
        sa.ForeignKeyConstraint(["form_id"], ["forms.id"]),
        sa.ForeignKeyConstraint(["form_key_id"], ["form_keys.id"]),
        sa.ForeignKeyConstraint(["submission_id"], ["submissions.id"]),
        sa.PrimaryKeyConstraint("submission_id"),
    )
    with op.batch_alter_table("encrypted_submissions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_encrypted_submissions_form_state", ["form_id", "state"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("encrypted_submissions", schema=None) as batch_op:
        batch_op.drop_index("ix_encrypted_submissions_form_state")
    op.drop_table("encrypted_submissions")
    with op.batch_alter_table("form_keys", schema=None) as batch_op:
        batch_op.drop_index("uq_form_keys_one_active")
        batch_op.drop_index(batch_op.f("ix_form_keys_form_id"))
    op.drop_table("form_keys")
