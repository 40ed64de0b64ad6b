"""Results record the user features that applied; results are found by user and time

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("moderation_results") as batch:
        batch.add_column(sa.Column("user_features", sa.JSON(), nullable=True))
    op.create_index(
        "ix_moderation_results_user_decided", "moderation_results", ["user_id", "decided_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_moderation_results_user_decided", table_name="moderation_results")
    with op.batch_alter_table("moderation_results") as batch:
        batch.drop_column("user_features")
