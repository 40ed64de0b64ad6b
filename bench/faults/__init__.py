"""The fault suite: each scenario drives real processes through one failure and counts.

A scenario is a module in this package with a ``run(workdir: Path, *, quick: bool) -> FaultRow``
function; ``python -m bench.faults`` (``make faults``) runs them all and prints one table.
``quick=True`` is the subset CI runs (tests call it); the full run is ``quick=False``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class FaultRow:
    """What one scenario saw, counted from the outside (the database, the callers)."""

    scenario: str
    broker: str  # "redis (AOF)", "redis (volatile)", "rabbitmq", ...
    sent: int  # jobs (items) the callers had accepted
    stored: int  # distinct result rows found afterwards
    lost: int  # accepted and neither stored, failed with a typed reason, nor dead-lettered
    duplicated: int  # result rows beyond one per job
    caller_errors: int  # errors callers saw beyond the documented window
    dead_lettered: int = 0  # parked in the dead-letter queue with a reason
    failed_typed: int = 0  # ended FAILURE with a modq.errors type
    seconds: float = 0.0
    notes: str = ""
    extra: dict[str, object] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return asdict(self)
