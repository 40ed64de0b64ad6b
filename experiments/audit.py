"""A random audit sample of content an experiment did not action, for reviewers to label:
with it, recall and the violations the arms missed are estimable without bias.

The choice is a stable hash of (experiment id, content id) against the share, so it is random
with respect to the content, the same on every run, and the same for every arm.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from modq.errors import ExperimentError

_SCALE = 2**64


def in_audit_sample(experiment_id: str, content_id: str, share: float) -> bool:
    """Whether ``content_id`` belongs to the experiment's audit sample of ``share``."""
    digest = hashlib.sha256(f"audit\x00{experiment_id}\x00{content_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") < share * _SCALE


def audit_sample(experiment_id: str, allowed_content_ids: Iterable[str], share: float) -> list[str]:
    """The allowed content to send for review, sorted, each once."""
    if not 0 < share <= 1:
        raise ExperimentError(f"audit share must be in (0, 1], got {share}", field="share")
    return sorted({c for c in allowed_content_ids if in_audit_sample(experiment_id, c, share)})
