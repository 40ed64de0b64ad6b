"""A/B experiments, their variants and assignments; review outcomes

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "experiments",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("description", sa.String(2000), nullable=False),
        sa.Column("unit", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("planned_sample_size", sa.Integer(), nullable=True),
        sa.Column("alpha", sa.Float(), nullable=False),
        sa.Column("created_by", sa.String(256), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("stopped_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("stop_reason", sa.String(2000), nullable=True),
    )
    op.create_index("ix_experiments_state", "experiments", ["state"])
    op.create_table(
        "experiment_variants",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "experiment_id",
            sa.String(64),
            sa.ForeignKey("experiments.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("model_uri", sa.String(512), nullable=False),
        sa.Column("policy_version", sa.String(64), nullable=False),
        sa.Column("weight", sa.Float(), nullable=False),
        sa.Column("shadow", sa.Boolean(), nullable=False),
        sa.UniqueConstraint("experiment_id", "name", name="uq_variant_experiment_name"),
    )
    op.create_index(
        "ix_experiment_variants_experiment_id", "experiment_variants", ["experiment_id"]
    )
    op.create_table(
        "ab_assignments",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("experiment_id", sa.String(64), nullable=False),
        sa.Column("variant", sa.String(64), nullable=False),
        sa.Column("shadow", sa.Boolean(), nullable=False),
        sa.Column("unit", sa.String(512), nullable=False),
        sa.Column("content_id", sa.String(512), nullable=False),
        sa.Column("decision", sa.String(16), nullable=False),
        sa.Column("scores", sa.JSON(), nullable=False),
        sa.Column("latency_ms", sa.Float(), nullable=False),
        sa.Column("model_name", sa.String(128), nullable=False),
        sa.Column("model_version", sa.String(64), nullable=False),
        sa.Column("policy_version", sa.String(64), nullable=False),
        sa.Column("cache_hit", sa.Boolean(), nullable=False),
        sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint(
            "experiment_id", "content_id", "variant", name="uq_assignment_experiment_content"
        ),
    )
    op.create_index("ix_ab_assignments_experiment_id", "ab_assignments", ["experiment_id"])
    op.create_index("ix_ab_assignments_content_id", "ab_assignments", ["content_id"])
    op.create_index("ix_ab_assignments_assigned_at", "ab_assignments", ["assigned_at"])
    op.create_table(
        "review_outcomes",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("content_id", sa.String(512), nullable=False),
        sa.Column("category", sa.String(32), nullable=False),
        sa.Column("violation", sa.Boolean(), nullable=False),
        sa.Column("source", sa.String(256), nullable=False),
        sa.Column("reviewer", sa.String(256), nullable=True),
        sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("content_id", "category", name="uq_review_content_category"),
    )
    op.create_index("ix_review_outcomes_content_id", "review_outcomes", ["content_id"])


def downgrade() -> None:
    op.drop_table("review_outcomes")
    op.drop_table("ab_assignments")
    op.drop_table("experiment_variants")
    op.drop_table("experiments")
