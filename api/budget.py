"""How long a request's work may wait, in two parts: for a slot of its key (always within the
caller's deadline: past it 429, never enqueued) and for its result once enqueued (the caller's
deadline, or longer for work a retry can pick up: ``api.idempotency``)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field


@dataclass(slots=True)
class Budget:
    admit_s: float  # waiting for a slot of the key (``api.fairness``), from the start
    result_s: float  # waiting for the result, from the start
    # set once all of it is enqueued (every chunk of a batch): no 429 can come any more
    admitted: asyncio.Event = field(default_factory=asyncio.Event)

    @classmethod
    def within(cls, deadline_s: float) -> Budget:
        """All of it within the caller's deadline."""
        return cls(deadline_s, deadline_s)
