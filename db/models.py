"""Tables: results, alias moves, A/B experiments and assignments, review outcomes, API keys."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class ModerationResultRow(Base):
    """One decision; idempotent on (content_id, model_version, policy_version)."""

    __tablename__ = "moderation_results"
    __table_args__ = (
        UniqueConstraint(
            "content_id", "model_version", "policy_version", name="uq_result_content_model_policy"
        ),
        Index("ix_moderation_results_user_decided", "user_id", "decided_at"),  # 0005
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    content_id: Mapped[str] = mapped_column(String(512), index=True)
    content_sha256: Mapped[str] = mapped_column(String(64), index=True)
    user_id: Mapped[str | None] = mapped_column(String(512), nullable=True)
    priority: Mapped[str] = mapped_column(String(16))
    decision: Mapped[str] = mapped_column(String(16), index=True)
    scores: Mapped[dict[str, float]] = mapped_column(JSON)
    tripped: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    unscored_categories: Mapped[list[str]] = mapped_column(JSON)
    model_name: Mapped[str] = mapped_column(String(128))
    model_version: Mapped[str] = mapped_column(String(64))
    policy_version: Mapped[str] = mapped_column(String(64))
    variant: Mapped[str | None] = mapped_column(String(64), nullable=True)
    cache_hit: Mapped[bool] = mapped_column(Boolean)
    latency_ms: Mapped[float] = mapped_column(Float)
    decided_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    stored_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # the user's recent outcomes and which of them changed the decision (policy user_history); 0005
    user_features: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    # ISO 639-1 code detected in the text (None: not detected, or stored before 0007)
    language: Mapped[str | None] = mapped_column(String(16), nullable=True)


class AliasMoveRow(Base):
    """One move of a registry alias: MLflow keeps only where an alias points now."""

    __tablename__ = "model_alias_moves"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model_name: Mapped[str] = mapped_column(String(256), index=True)
    alias: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(16))  # promote | rollback
    from_version: Mapped[str | None] = mapped_column(String(32), nullable=True)
    to_version: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(256))
    reason: Mapped[str] = mapped_column(String(2000))
    moved_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class ExperimentRow(Base):
    """An A/B experiment: its variants, unit of assignment, state and plan."""

    __tablename__ = "experiments"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    description: Mapped[str] = mapped_column(String(2000), default="")
    unit: Mapped[str] = mapped_column(String(16))  # content_id | user_id
    state: Mapped[str] = mapped_column(String(16), index=True)  # draft | running | stopped
    planned_sample_size: Mapped[int | None] = mapped_column(Integer, nullable=True)
    alpha: Mapped[float] = mapped_column(Float, default=0.05)
    created_by: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    stopped_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    stop_reason: Mapped[str | None] = mapped_column(String(2000), nullable=True)
    # the declared primary metric, direction and guardrails (experiments.decision); 0004
    decision_rule: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    forced_promotion: Mapped[str | None] = mapped_column(String(2000), nullable=True)


class ExperimentVariantRow(Base):
    """One arm of an experiment: a registry model (alias or version) under a policy version."""

    __tablename__ = "experiment_variants"
    __table_args__ = (UniqueConstraint("experiment_id", "name", name="uq_variant_experiment_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    experiment_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("experiments.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(64))
    position: Mapped[int] = mapped_column(Integer)  # 0 = control
    model_uri: Mapped[str] = mapped_column(String(512))
    policy_version: Mapped[str] = mapped_column(String(64))
    weight: Mapped[float] = mapped_column(Float)  # share of live traffic; 0 for shadow variants
    shadow: Mapped[bool] = mapped_column(Boolean, default=False)


class AssignmentRow(Base):
    """Which variant a unit got in an experiment, and the result that variant produced."""

    __tablename__ = "ab_assignments"
    __table_args__ = (
        UniqueConstraint(
            "experiment_id", "content_id", "variant", name="uq_assignment_experiment_content"
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    experiment_id: Mapped[str] = mapped_column(String(64), index=True)
    variant: Mapped[str] = mapped_column(String(64))
    shadow: Mapped[bool] = mapped_column(Boolean)
    unit: Mapped[str] = mapped_column(String(512))
    content_id: Mapped[str] = mapped_column(String(512), index=True)
    decision: Mapped[str] = mapped_column(String(16))
    scores: Mapped[dict[str, float]] = mapped_column(JSON)
    latency_ms: Mapped[float] = mapped_column(Float)
    model_name: Mapped[str] = mapped_column(String(128))
    model_version: Mapped[str] = mapped_column(String(64))
    policy_version: Mapped[str] = mapped_column(String(64))
    cache_hit: Mapped[bool] = mapped_column(Boolean)
    assigned_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class ReviewOutcomeRow(Base):
    """Ground truth from human review: one label per (content_id, category).

    ``category`` is a canonical category, or ``any`` for an overall violation/safe verdict.
    """

    __tablename__ = "review_outcomes"
    __table_args__ = (
        UniqueConstraint("content_id", "category", name="uq_review_content_category"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    content_id: Mapped[str] = mapped_column(String(512), index=True)
    category: Mapped[str] = mapped_column(String(32))
    violation: Mapped[bool] = mapped_column(Boolean)
    source: Mapped[str] = mapped_column(String(256))
    reviewer: Mapped[str | None] = mapped_column(String(256), nullable=True)
    reviewed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ApiKeyRow(Base):
    """An API key of the HTTP front: only its sha256 is stored, with its scopes (0006)."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key_id: Mapped[str] = mapped_column(String(32), unique=True)
    key_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(256))
    priorities: Mapped[list[str]] = mapped_column(JSON)
    may_review: Mapped[bool] = mapped_column(Boolean)
    # requests per minute for this key; NULL = MODQ_RATE_LIMIT_PER_MIN
    rate_limit_per_min: Mapped[float | None] = mapped_column(Float, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
