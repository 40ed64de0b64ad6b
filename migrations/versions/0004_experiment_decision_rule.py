"""Experiments declare their decision rule; a promotion forced past the verdict is recorded

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("experiments") as batch:
        batch.add_column(sa.Column("decision_rule", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("forced_promotion", sa.String(2000), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("experiments") as batch:
        batch.drop_column("forced_promotion")
        batch.drop_column("decision_rule")
