"""API keys, and the key that made each job and batch.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-08
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(100), nullable=False, unique=True),
        sa.Column("secret_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("quota_per_minute", sa.Integer(), nullable=True),
        sa.Column("admin", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("revoked_at", sa.Float(), nullable=True),
    )
    # Plain nullable columns: added in place on SQLite too (no copy of the table). No foreign key:
    # keys are revoked, never deleted, and one would make SQLite rebuild both tables.
    op.add_column("jobs", sa.Column("key_id", sa.Integer(), nullable=True))
    op.add_column("batches", sa.Column("key_id", sa.Integer(), nullable=True))
    op.create_index("ix_jobs_key", "jobs", ["key_id"])
    op.create_index("ix_batches_key", "batches", ["key_id"])


def downgrade() -> None:
    op.drop_index("ix_batches_key", "batches")
    op.drop_index("ix_jobs_key", "jobs")
    with op.batch_alter_table("batches") as batch:
        batch.drop_column("key_id")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("key_id")
    op.drop_table("api_keys")
