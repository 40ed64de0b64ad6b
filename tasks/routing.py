"""A/B routing on the worker: which variant (model + policy) scores each job.

The running experiment is read from SQL and trusted for ``experiment_refresh_s``; `modq ab
start/stop` broadcast a wake-up so workers re-read it at once. Routing happens in the worker,
not the producer, so every way in (Celery, HTTP, streams) is routed alike and producers need no
database. Assignment itself is a pure function of (experiment id, unit): any process agrees.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine

from db.experiments import ExperimentRepository
from experiments.assignment import assign, unit_of
from modq.errors import ModerationError
from modq.experiment import Experiment, Variant
from modq.schemas import ModerationRequest
from policy import Policy, load_policy_version

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Route:
    """The requests one variant scores, with their units (by position in the job)."""

    variant: Variant | None  # None: no experiment, the worker's own model and policy
    positions: list[int] = field(default_factory=list)
    units: list[str] = field(default_factory=list)


class ExperimentRouter:
    """Caches the running experiment; splits a job's requests by variant."""

    def __init__(self, database: Engine, refresh_s: float) -> None:
        self._experiments = ExperimentRepository(database)
        self._refresh_s = refresh_s
        self._lock = threading.Lock()
        self._experiment: Experiment | None = None
        self._read_at = float("-inf")

    def invalidate(self) -> None:
        """Read the running experiment again on the next job."""
        self._read_at = float("-inf")

    def current(self) -> Experiment | None:
        """The running experiment, read at most every ``refresh_s`` seconds. A database
        outage keeps the last known experiment (routing goes on; storage will retry)."""
        if time.monotonic() - self._read_at < self._refresh_s:
            return self._experiment
        with self._lock:
            if time.monotonic() - self._read_at < self._refresh_s:
                return self._experiment
            try:
                self._experiment = self._experiments.running()
            except ModerationError as exc:
                log.warning("modq: cannot read the running experiment, keeping the last: %s", exc)
            self._read_at = time.monotonic()
            return self._experiment

    def routes(
        self, experiment: Experiment | None, requests: Sequence[ModerationRequest]
    ) -> list[Route]:
        """Requests grouped by the live variant they are assigned to (one route without an
        experiment), in the experiment's variant order."""
        if experiment is None:
            return [Route(None, list(range(len(requests))), [""] * len(requests))]
        by_name = {v.name: Route(v) for v in experiment.live_variants}
        for position, request in enumerate(requests):
            unit = unit_of(experiment, request.content_id, request.user_id)
            route = by_name[assign(experiment, unit).name]
            route.positions.append(position)
            route.units.append(unit)
        return [route for route in by_name.values() if route.positions]


class PolicyBook:
    """Policies by version, loaded once from the policy folder."""

    def __init__(self, default: Policy, folder: Path) -> None:
        self._folder = folder
        self._policies = {default.version: default}
        self._lock = threading.Lock()

    def get(self, version: str) -> Policy:
        policy = self._policies.get(version)
        if policy is None:
            with self._lock:
                policy = self._policies.get(version)
                if policy is None:
                    policy = load_policy_version(version, self._folder)
                    self._policies[version] = policy
        return policy
