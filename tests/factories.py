"""Small builders of real domain objects for tests."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from modq.schemas import Decision, ModerationResult


def make_result(content_id: str, **fields: Any) -> ModerationResult:
    """A complete, storable result (an allow decision of model m v1 under policy v1)."""
    values: dict[str, Any] = {
        "content_id": content_id,
        "decision": Decision.ALLOW,
        "scores": {"spam": 0.01},
        "tripped": [],
        "unscored_categories": [],
        "model_name": "m",
        "model_version": "1",
        "policy_version": "v1",
        "variant": None,
        "cache_hit": False,
        "latency_ms": 1.0,
        "content_sha256": "0" * 64,
        "created_at": datetime.now(UTC).isoformat(),
        **fields,
    }
    return ModerationResult(**values)
