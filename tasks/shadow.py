"""Shadow variants: after the caller's result is stored, the same content is scored again on
the bulk queue by each shadow variant of the running experiment. A shadow result is recorded
as an assignment for analysis and never reaches a caller or the results table.

Shadow work is optional by nature: when the bulk queue is at its bound, or the broker refuses
the message, it is dropped and counted in the log, never raised into the caller's job.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from kombu.exceptions import OperationalError as KombuOperationalError
from redis.exceptions import RedisError

from modq.broker.backpressure import charge_headers, get_admission
from modq.broker.queues import ENQUEUED_AT_HEADER
from modq.contract import MODERATE_SHADOW
from modq.errors import ModerationError
from modq.schemas import Priority
from tasks.app import app
from tasks.retry_policy import RETRY_POLICY

if TYPE_CHECKING:  # the pipeline (models, SQL) loads in workers only
    from tasks.pipeline import ShadowWork

log = logging.getLogger(__name__)

SHADOW_TASK = MODERATE_SHADOW
SHADOW_QUEUE = Priority.BULK.value


def publish_shadow_work(shadows: Sequence[ShadowWork]) -> int:
    """Send each shadow's work to the bulk queue; returns how many messages went out."""
    sent = 0
    admission = get_admission(app) if shadows else None
    for work in shadows:
        enqueued_at_s = time.time()
        charged = 0
        try:
            if admission is not None:
                charged = admission.admit(SHADOW_QUEUE, len(work.requests))
            moderate_shadow.apply_async(
                kwargs={
                    "experiment_id": work.experiment_id,
                    "variant": work.variant,
                    "items": [r.to_message() for r in work.requests],
                    "units": work.units,
                    "enqueued_at_s": enqueued_at_s,
                },
                queue=SHADOW_QUEUE,
                headers={
                    ENQUEUED_AT_HEADER: enqueued_at_s,
                    **charge_headers(SHADOW_QUEUE, charged),
                },
            )
            sent += 1
        except (ModerationError, KombuOperationalError, RedisError) as exc:
            if admission is not None:
                admission.release(SHADOW_QUEUE, charged)  # nothing sent: give the places back
            log.warning(
                "modq: shadow work of %s/%s dropped (%d items): %s",
                work.experiment_id,
                work.variant,
                len(work.requests),
                exc,
            )
    return sent


@app.task(
    name=SHADOW_TASK,
    shared=False,
    **RETRY_POLICY,
)
def moderate_shadow(
    experiment_id: str,
    variant: str,
    items: list[dict[str, Any]],
    units: list[str],
    enqueued_at_s: float | None = None,
) -> int:
    """Score ``items`` on a shadow variant and record the assignments (no caller waits)."""
    from tasks.moderate import validate_message
    from tasks.pipeline import get_pipeline

    requests = [validate_message(item) for item in items]
    return get_pipeline().moderate_shadow(
        experiment_id, variant, requests, units, enqueued_at_s=enqueued_at_s
    )
