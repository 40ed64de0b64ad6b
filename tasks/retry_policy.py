"""The one retry policy of every modq task: how long a job outlives an outage.

A job that fails with a retryable error (``modq.errors.RETRYABLE``: the database or the model
is unavailable) goes back on its queue after a delay, and is retried until a *time budget*
(``MODQ_RETRY_BUDGET_S``, default 600 s) is spent, not for a fixed count of tries.

The delay before retry ``n`` (0-based) is ``nominal(n) = min(max_s, base_s * 2**n)`` shrunk by
an "equal jitter": a uniform draw in ``[nominal/2, nominal]``. Jobs that failed together spread
out, yet no draw can collapse the schedule: the count of retries is chosen so that even the
shortest draws add up to the budget. Celery's own ``retry_jitter`` draws in ``[0, nominal]``:
ten retries could all land near zero and a job was lost in a 90 s outage (issue 12).

Defaults (base 1 s, max 60 s, budget 600 s): 25 retries; nominal delays 1, 2, 4, 8, 16, 32,
then 60 s (19 times); any run waits between 602 s and 1,203 s in all (about 900 s on average)
before the job ends FAILURE. ``python -m tasks.retry_policy`` prints the schedule.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from modq.errors import RETRYABLE
from modq.settings import Settings, get_settings

JITTER = 0.5  # a delay is drawn from [nominal * (1 - JITTER), nominal]


@dataclass(frozen=True, slots=True)
class RetrySchedule:
    """Bounded exponential backoff with equal jitter, sized to cover ``budget_s``."""

    base_s: float
    max_s: float
    budget_s: float

    @classmethod
    def from_settings(cls, settings: Settings) -> RetrySchedule:
        return cls(settings.retry_delay_base_s, settings.retry_delay_max_s, settings.retry_budget_s)

    def nominal_s(self, retries: int) -> float:
        """The undrawn delay before retry number ``retries`` (0 = the first retry)."""
        return min(self.max_s, self.base_s * 2.0 ** min(retries, 64))

    def delay_s(self, retries: int, draw: Callable[[], float] = random.random) -> float:
        """The delay before retry number ``retries``: in ``[nominal/2, nominal]``."""
        return self.nominal_s(retries) * (1.0 - JITTER * draw())

    @property
    def max_retries(self) -> int:
        """Fewest retries whose shortest possible delays add up to at least the budget."""
        count, shortest_s = 0, 0.0
        while shortest_s < self.budget_s:
            shortest_s += self.nominal_s(count) * (1.0 - JITTER)
            count += 1
        return count

    def shortest_total_s(self) -> float:
        """The least time a job can be retried for (every draw at its minimum)."""
        return sum(self.nominal_s(n) * (1.0 - JITTER) for n in range(self.max_retries))

    def longest_total_s(self) -> float:
        """The most time a job can be retried for (every draw at its maximum)."""
        return sum(self.nominal_s(n) for n in range(self.max_retries))

    def longest_delay_s(self) -> float:
        """The longest single delay: a retried job's ETA is at most this far ahead."""
        return self.max_s


def current_schedule() -> RetrySchedule:
    """The schedule of this process's settings."""
    return RetrySchedule.from_settings(get_settings())


class _ScheduledDelay:
    """``Task.default_retry_delay`` as a descriptor: the drawn delay for the task's current
    retry count (Celery uses it when a retry names no countdown)."""

    def __get__(self, task: Any, owner: type | None = None) -> float:
        retries = int(getattr(getattr(task, "request", None), "retries", 0) or 0)
        return current_schedule().delay_s(retries)


class _BudgetRetries:
    """``Task.max_retries`` as a descriptor: the count that covers the budget of the settings
    read now (so a worker started with a shorter budget uses it)."""

    def __get__(self, task: Any, owner: type | None = None) -> int:
        return current_schedule().max_retries


# Splat into @app.task(...): Celery's autoretry catches RETRYABLE and calls task.retry()
# without a countdown (retry_backoff off), so the delay comes from the schedule above.
RETRY_POLICY: dict[str, Any] = {
    "autoretry_for": RETRYABLE,
    "retry_backoff": False,
    "retry_jitter": False,
    "default_retry_delay": _ScheduledDelay(),
    "max_retries": _BudgetRetries(),
}


def describe(schedule: RetrySchedule) -> str:
    """The schedule in words: what docs/storage-faults.md quotes."""
    nominal = [schedule.nominal_s(n) for n in range(schedule.max_retries)]
    return (
        f"{schedule.max_retries} retries, nominal delays "
        f"{', '.join(f'{d:g}' for d in nominal)} s; "
        f"in all {schedule.shortest_total_s():.0f}-{schedule.longest_total_s():.0f} s"
    )


if __name__ == "__main__":
    print(describe(current_schedule()))
