"""The worker's own HTTP endpoint: ``/metrics`` for Prometheus, ``/healthz`` and ``/livez`` for
an orchestrator's probes. One server per worker process, on ``MODQ_WORKER_METRICS_PORT``
(0 = off) at ``MODQ_WORKER_METRICS_HOST``.

- threads (default) and solo pools: the worker process serves the metrics it updates itself.
- prefork pool: before the pool forks, the parent makes a fresh folder for prometheus-client's
  multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``); each child writes its metrics there and the
  parent serves their sum, so a worker has one port whatever its concurrency. A child that exits
  drops its live gauges; the folder goes when the worker stops.

``/healthz`` answers 200 when the process is up, its model is loaded (under prefork: in at least
one child), the broker answers a ping, no circuit breaker is open (``model_breaker``: the
model failed repeatedly or a call hung; under prefork: open in any child; ``storage_breaker``:
writes to the database failed repeatedly, tasks/storage_breaker.py) and no model call that hung
is still stuck (``model_calls``: threads pool); otherwise 503, with every check and
the reason of each failure as JSON. A policy calibrated for another model version than the one
served (``policy``: threads pool; prefork children say it in ``modq_stats``) leaves it 200 with
status ``degraded`` and the reason. ``/livez`` answers 200 while the process serves HTTP at all
(a liveness probe must not restart workers for a broker outage).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer
from prometheus_client.multiprocess import MultiProcessCollector

log = logging.getLogger(__name__)

PROBE_TIMEOUT_S = 0.5  # a probe answers within an orchestrator's default 1 s timeout
SHUTDOWN_POLL_S = 0.1  # the server notices a stop this fast (a warm shutdown waits on it)
REDIS_SCHEMES = frozenset({"redis", "rediss", "unix"})
OK = "ok"

StartResponse = Callable[[str, list[tuple[str, str]]], Any]
BreakerCheck = Callable[[], tuple[str, str]]  # () -> (check name, "ok" or why it is open)


@dataclass(frozen=True, slots=True)
class Health:
    """Each check's outcome: ``"ok"`` or why it failed."""

    checks: dict[str, str]
    advisory: frozenset[str] = frozenset()  # checks that degrade the worker, never fail it

    @property
    def ok(self) -> bool:
        return all(o == OK for name, o in self.checks.items() if name not in self.advisory)

    def to_dict(self) -> dict[str, Any]:
        degraded = any(self.checks[name] != OK for name in self.advisory if name in self.checks)
        status = ("degraded" if degraded else "ok") if self.ok else "unhealthy"
        return {"status": status, "checks": self.checks}


class BrokerPing:
    """Whether the broker answers: a Redis PING, or a connection for any other transport."""

    def __init__(self, url: str, *, timeout_s: float = PROBE_TIMEOUT_S) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self._redis: Any = None
        if urlsplit(url).scheme in REDIS_SCHEMES:
            from redis import Redis

            self._redis = Redis.from_url(
                url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s
            )

    def __call__(self) -> str:
        try:
            if self._redis is not None:
                self._redis.ping()
            else:
                from kombu import Connection

                with Connection(self.url, connect_timeout=self.timeout_s) as connection:
                    connection.ensure_connection(max_retries=1, timeout=self.timeout_s)
        except Exception as exc:  # any failure is the answer, never a crash of the probe
            return f"unreachable ({type(exc).__name__}: {str(exc)[:200]})"
        return OK


class HealthProbe:
    """Process up (it answers), model loaded, broker reachable, no circuit breaker open."""

    def __init__(
        self,
        model_loaded: Callable[[], bool],
        broker: Callable[[], str],
        breakers: Sequence[BreakerCheck] = (),
        advisories: Sequence[BreakerCheck] = (),
    ) -> None:
        self.model_loaded = model_loaded
        self.broker = broker
        self.breakers = list(breakers)
        self.advisories = list(advisories)  # reported as "degraded", still 200

    def check(self) -> Health:
        model = OK if self.model_loaded() else "not loaded"
        checks = {"process": OK, "model": model, "broker": self.broker()}
        for breaker in self.breakers:
            name, outcome = breaker()
            checks[name] = outcome
        advisory = set()
        for check in self.advisories:
            name, outcome = check()
            checks[name] = outcome
            advisory.add(name)
        return Health(checks, frozenset(advisory))


def make_app(
    registry: CollectorRegistry, probe: HealthProbe
) -> Callable[[dict[str, Any], StartResponse], Iterable[bytes]]:
    """The WSGI app: /metrics, /healthz, /livez; anything else 404."""
    metrics_app = make_wsgi_app(registry)

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/metrics":
            return metrics_app(environ, start_response)
        if path == "/healthz":
            health = probe.check()
            status = "200 OK" if health.ok else "503 Service Unavailable"
            return _json(start_response, status, health.to_dict())
        if path == "/livez":
            return _json(start_response, "200 OK", {"status": "ok"})
        return _json(start_response, "404 Not Found", {"error": "not_found", "path": path})

    return app


def _json(start_response: StartResponse, status: str, body: dict[str, Any]) -> list[bytes]:
    data = json.dumps(body).encode()
    start_response(
        status,
        [("Content-Type", "application/json"), ("Content-Length", str(len(data)))],
    )
    return [data]


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes and probes every few seconds are not news."""


class WorkerServer:
    """The running HTTP server of one worker process."""

    def __init__(self, host: str, port: int, app: Any, multiproc_dir: str | None) -> None:
        self.multiproc_dir = multiproc_dir
        self._httpd: WSGIServer = make_server(
            host, port, app, ThreadingWSGIServer, handler_class=_QuietHandler
        )
        self.port = int(self._httpd.server_port)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": SHUTDOWN_POLL_S},
            name="modq-metrics",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        if self.multiproc_dir is not None:
            shutil.rmtree(self.multiproc_dir, ignore_errors=True)


def multiprocess_registry(path: str) -> CollectorRegistry:
    """A registry that sums what every child wrote under ``path`` at each scrape."""
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=path)
    return registry


def children_gauge_max(path: str, name: str) -> float:
    """The highest value live children wrote for gauge ``name`` under ``path`` (0 if none)."""
    for family in MultiProcessCollector(None, path=path).collect():
        if family.name == name:
            return max((sample.value for sample in family.samples), default=0.0)
    return 0.0


def model_breaker_check() -> tuple[str, str]:
    """This process's model breaker: ``ok`` while closed (or before any job), else why."""
    from gpu_worker.runtime import model_guard

    guard = model_guard()
    if guard is None or guard.breaker.closed:
        return "model_breaker", OK
    snapshot = guard.snapshot()
    serving = "serving on the cpu fallback" if guard.fallback_exists() else "jobs parked (retried)"
    return "model_breaker", (
        f"{snapshot.state.value} after {snapshot.consecutive_failures} failures "
        f"(last: {snapshot.last_error}); {serving}; next probe in {snapshot.retry_after_s:.1f} s"
    )


def stuck_model_calls() -> list[float]:
    """How long (s) each model call of this process that hung (no answer within
    ``MODQ_MODEL_CALL_TIMEOUT_S``) has been stuck, primary and fallback engines alike."""
    from gpu_worker.runtime import current_engine, model_guard

    guard = model_guard()
    engines = [current_engine(), guard.serving_fallback() if guard is not None else None]
    return [s for engine in engines if engine is not None for s in engine.batcher.hung_now()]


def model_calls_check() -> tuple[str, str]:
    """``ok`` unless a model call hung and has not returned (its jobs were retried, its
    thread is still stuck in the model: the worker is degraded until it returns)."""
    stuck = stuck_model_calls()
    if not stuck:
        return "model_calls", OK
    return "model_calls", (
        f"{len(stuck)} hung model call(s) not returned, the oldest for {max(stuck):.0f} s "
        "(their jobs were retried)"
    )


def policy_check() -> tuple[str, str]:
    """``ok`` unless the policy served was calibrated for another model version than the one
    served (policy/carried.py): the worker serves, degraded, and says why."""
    from modq.errors import ModerationError
    from tasks.pipeline import current_pipeline

    pipeline = current_pipeline()
    try:
        served = pipeline.current_policy() if pipeline is not None else None
    except ModerationError as exc:  # an unreadable policy file: its jobs fail, typed
        return "policy", f"{exc.code}: {exc.message}"
    if served is None or served.mismatch is None:
        return "policy", OK
    return "policy", served.mismatch


def children_breaker_check(path: str) -> BreakerCheck:
    """Under prefork: the model breaker of every live child, from their gauges."""

    def check() -> tuple[str, str]:
        value = children_gauge_max(path, "modq_worker_model_breaker_state")
        if value < 1:
            return "model_breaker", OK
        state = "open" if value >= 2 else "half_open"
        return "model_breaker", f"{state} in a child (see its log for the last error)"

    return check


def children_loaded(path: str) -> bool:
    """True if a live child wrote ``modq_worker_model_loaded`` 1 under ``path``."""
    for family in MultiProcessCollector(None, path=path).collect():
        if family.name == "modq_worker_model_loaded":
            return any(sample.value >= 1 for sample in family.samples)
    return False


def new_multiprocess_dir() -> str:
    """A fresh folder for this worker's children (stale files would add to the sums)."""
    return tempfile.mkdtemp(prefix="modq-metrics-")


def start(*, host: str, port: int, broker_url: str, prefork: bool) -> WorkerServer:
    """Serve this worker's /metrics, /healthz and /livez on ``host:port`` (0 = a free port).
    ``prefork``: this is the pool's parent, the children do the work (see the module doc)."""
    from tasks.worker_metrics import MULTIPROC_ENV, metrics, multiprocess_dir, registry

    owned = None
    if prefork and multiprocess_dir() is None:
        owned = os.environ[MULTIPROC_ENV] = new_multiprocess_dir()  # before the pool forks
    shared = multiprocess_dir()
    if shared is not None:
        served = multiprocess_registry(shared)
    else:
        metrics()  # registered now, so the first scrape shows every metric
        served = registry()
    from tasks.dead_letters import register_gauge

    register_gauge(served)  # modq_dead_letters, read from the store at each scrape
    model_loaded = _children_loaded(shared) if prefork and shared else _engine_loaded
    model_breaker = children_breaker_check(shared) if prefork and shared else model_breaker_check
    from tasks.storage_breaker import readiness_check as storage_breaker

    checks = [model_breaker, storage_breaker]
    if not (prefork and shared):  # under prefork a child's hung call opens its breaker gauge
        checks.append(model_calls_check)
    advisories = [] if prefork and shared else [policy_check]  # prefork: see modq_stats
    probe = HealthProbe(model_loaded, BrokerPing(broker_url), checks, advisories)
    server = WorkerServer(host, port, make_app(served, probe), owned)
    log.info("modq: worker metrics and health on http://%s:%d", host, server.port)
    return server


def _engine_loaded() -> bool:
    from gpu_worker.runtime import current_engine

    return current_engine() is not None


def _children_loaded(path: str) -> Callable[[], bool]:
    return lambda: children_loaded(path)
