"""moderation results

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "moderation_results",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("content_id", sa.String(512), nullable=False),
        sa.Column("content_sha256", sa.String(64), nullable=False),
        sa.Column("user_id", sa.String(512), nullable=True),
        sa.Column("priority", sa.String(16), nullable=False),
        sa.Column("decision", sa.String(16), nullable=False),
        sa.Column("scores", sa.JSON(), nullable=False),
        sa.Column("tripped", sa.JSON(), nullable=False),
        sa.Column("unscored_categories", sa.JSON(), nullable=False),
        sa.Column("model_name", sa.String(128), nullable=False),
        sa.Column("model_version", sa.String(64), nullable=False),
        sa.Column("policy_version", sa.String(64), nullable=False),
        sa.Column("variant", sa.String(64), nullable=True),
        sa.Column("cache_hit", sa.Boolean(), nullable=False),
        sa.Column("latency_ms", sa.Float(), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("stored_at", sa.DateTime(timezone=True), server_default=sa.func.now(),
                  nullable=False),
        sa.UniqueConstraint("content_id", "model_version", "policy_version",
                            name="uq_result_content_model_policy"),
    )
    op.create_index("ix_moderation_results_content_id", "moderation_results", ["content_id"])
    op.create_index("ix_moderation_results_content_sha256", "moderation_results",
                    ["content_sha256"])
    op.create_index("ix_moderation_results_decision", "moderation_results", ["decision"])


def downgrade() -> None:
    op.drop_table("moderation_results")
