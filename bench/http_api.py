"""HTTP front vs ``moderate.delay()``: one worker behind both, at 1, 10 and 50 clients.

    python -m bench.http_api [--quick] [--write-docs] [--tenants | --tenants-only]

Starts a private redis-server, one migrated SQLite file, one real modq worker (threads pool,
the served model) and ``modq api`` under uvicorn (one process, rate limit off), and makes an
API key. A spawned driver process then runs, per concurrency level N and alternating the two
paths: N asyncio tasks on one httpx AsyncClient looping ``POST /v1/moderate`` (sync, with a
deadline), and N threads looping ``modq.moderate.delay(...).get()`` (the client apps import,
the producer path the API itself uses). Every request carries its own text (the mix of
``bench.texts`` plus a unique tag), so the result cache never answers. Prints requests/s, p50
and p99 per path and level, the HTTP/Celery ratios against the targets (throughput ≥ 0.8×,
p99 < 2×) and each process's CPU per request; writes JSON and a plot.

``--tenants`` adds the tenant row (``bench.http_tenants``): a victim key's p99 while a flood key
keeps 32 requests in flight ÷ its p99 alone, over 3 runs (target ≤ 2); ``--tenants-only`` runs
that row alone.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import multiprocessing
import os
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from bench.http_tenants import TenantSizes, run_tenants, tenant_markdown
from bench.report import machine, percentile, update_docs, write_json

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
SCRATCH = REPO / "var" / "bench"  # --quick runs (git-ignored)
DOCS = REPO / "docs" / "benchmarks.md"
DOCS_BEGIN = "<!-- bench:http-api:begin (written by python -m bench.http_api --write-docs) -->"
DOCS_END = "<!-- bench:http-api:end -->"

HTTP, CELERY = "http", "celery"
PATHS = (HTTP, CELERY)
LABELS = {HTTP: "HTTP POST /v1/moderate", CELERY: "moderate.delay().get()"}
DEADLINE_S = 60.0  # each request's timeout_s (HTTP) and .get(timeout=) (Celery)
WORKER_THREADS = 32  # as `modq worker` (MODQ_WORKER_THREADS) and the suite
TARGET_THROUGHPUT = 0.8  # HTTP req/s ≥ 0.8 × Celery's: the front costs at most 20%
TARGET_P99 = 2.0  # HTTP p99 < 2 × Celery's


@dataclass(frozen=True)
class Sizes:
    levels: tuple[int, ...]  # concurrent clients
    requests: tuple[int, ...]  # timed requests per path at each level (all rounds together)
    rounds: int  # each level's requests split in rounds, paths alternated ABBA
    warm_up: int  # untimed requests per path before the first level (4 clients)

    @classmethod
    def full(cls) -> Sizes:
        return cls((1, 10, 50), (400, 1000, 1500), 2, 40)

    @classmethod
    def quick(cls) -> Sizes:
        return cls((1, 10, 50), (40, 40, 50), 1, 10)


@dataclass
class PathRun:
    """One path at one level: what the driver timed (merged over rounds)."""

    path: str
    clients: int
    ok: int = 0
    errors: int = 0
    elapsed_s: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    error_samples: list[str] = field(default_factory=list)
    cpu_s: dict[str, float] = field(default_factory=dict)  # process -> CPU seconds used

    def merge(self, other: PathRun) -> None:
        self.ok += other.ok
        self.errors += other.errors
        self.elapsed_s += other.elapsed_s
        self.latencies_ms += other.latencies_ms
        self.error_samples = (self.error_samples + other.error_samples)[:5]
        for name, value in other.cpu_s.items():
            self.cpu_s[name] = self.cpu_s.get(name, 0.0) + value

    def summary(self) -> dict[str, Any]:
        requests = self.ok + self.errors
        return {
            "path": self.path,
            "clients": self.clients,
            "requests": requests,
            "errors": self.errors,
            "elapsed_s": round(self.elapsed_s, 3),
            "requests_per_s": self.ok / self.elapsed_s if self.elapsed_s else 0.0,
            "p50_ms": percentile(self.latencies_ms, 0.50),
            "p99_ms": percentile(self.latencies_ms, 0.99),
            "mean_ms": sum(self.latencies_ms) / len(self.latencies_ms) if self.ok else 0.0,
            "cpu_ms_per_request": {
                name: 1000 * value / requests if requests else 0.0
                for name, value in self.cpu_s.items()
            },
            "error_samples": self.error_samples,
        }


# --- the driver: a spawned process, as an app beside the API would be ------------------------


def cpu_seconds(pid: int) -> float:
    """User + system CPU a process has used (``/proc/PID/stat``); 0.0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _cpu_snapshot(pids: Mapping[str, int]) -> dict[str, float]:
    return {name: cpu_seconds(pid) for name, pid in pids.items()}


def _text(texts: Sequence[str], index: int, tag: str) -> str:
    return f"[{tag}-{index}] {texts[index % len(texts)]}"  # first: truncation keeps it


def _failure(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:300]


class _Tally:
    """Latencies and failures of one run (appends are thread-safe under the GIL)."""

    def __init__(self) -> None:
        self.latencies_ms: list[float] = []
        self.failures: list[str] = []

    def add(self, outcome: float | str) -> None:
        if isinstance(outcome, str):
            self.failures.append(outcome)
        else:
            self.latencies_ms.append(outcome * 1000)


async def _http_run(
    url: str,
    key: str,
    texts: Sequence[str],
    clients: int,
    requests: int,
    tag: str,
    on_start: Callable[[], None],
) -> tuple[_Tally, _Tally, float, float]:
    """(warm-up tally, timed tally, timed start, timed end): ``clients`` tasks on one client."""
    import httpx2 as httpx

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(
        base_url=url,
        headers={"Authorization": f"Bearer {key}"},
        limits=limits,
        timeout=DEADLINE_S + 10,
        trust_env=False,
    ) as client:

        async def one(index: int, label: str) -> float | str:
            body = {
                "content": _text(texts, index, label),
                "content_id": f"bench-{label}-{index}",
                "priority": "normal",
                "timeout_s": DEADLINE_S,
            }
            started = time.perf_counter()
            try:
                response = await client.post("/v1/moderate", json=body)
                if response.status_code != 200:
                    return f"HTTP {response.status_code}: {response.text[:200]}"
                response.json()["result"]["decision"]
            except Exception as exc:
                return _failure(exc)
            return time.perf_counter() - started

        warm, timed = _Tally(), _Tally()
        for outcome in await asyncio.gather(*(one(i, f"w{tag}") for i in range(clients))):
            warm.add(outcome)
        counter = itertools.count()

        async def loop() -> None:
            while (index := next(counter)) < requests:
                timed.add(await one(index, tag))

        on_start()
        started = time.perf_counter()
        await asyncio.gather(*(loop() for _ in range(clients)))
        return warm, timed, started, time.perf_counter()


def _celery_run(
    texts: Sequence[str], clients: int, requests: int, tag: str, on_start: Callable[[], None]
) -> tuple[_Tally, _Tally, float, float]:
    """The same with ``clients`` threads, each sending and waiting as an app does."""
    from modq import moderate

    def one(index: int, label: str) -> float | str:
        started = time.perf_counter()
        try:
            result = moderate.delay(
                content_id=f"bench-{label}-{index}",
                content=_text(texts, index, label),
                priority="normal",
            ).get(timeout=DEADLINE_S)
            result["decision"]
        except Exception as exc:
            return _failure(exc)
        return time.perf_counter() - started

    warm, timed = _Tally(), _Tally()
    counter = itertools.count()
    ready = threading.Barrier(clients + 1)

    def caller(number: int) -> None:
        warm.add(one(number, f"w{tag}"))  # this thread's own result consumer, connected
        ready.wait()
        while (index := next(counter)) < requests:
            timed.add(one(index, tag))

    threads = [threading.Thread(target=caller, args=(n,), daemon=True) for n in range(clients)]
    for thread in threads:
        thread.start()
    ready.wait(timeout=DEADLINE_S * 2)
    on_start()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    return warm, timed, started, time.perf_counter()


def _run_order(
    order: tuple[str, int, int, str],
    url: str,
    key: str,
    texts: Sequence[str],
    pids: Mapping[str, int],
) -> PathRun:
    path, clients, requests, tag = order
    marks: dict[str, dict[str, float]] = {}

    def on_start() -> None:
        marks["before"] = _cpu_snapshot(pids)

    if path == HTTP:
        warm, timed, started, ended = asyncio.run(
            _http_run(url, key, texts, clients, requests, tag, on_start)
        )
    else:
        warm, timed, started, ended = _celery_run(texts, clients, requests, tag, on_start)
    after = _cpu_snapshot(pids)
    run = PathRun(path, clients)
    run.ok = len(timed.latencies_ms)
    run.errors = len(timed.failures) + len(warm.failures)
    run.elapsed_s = ended - started
    run.latencies_ms = timed.latencies_ms
    run.error_samples = (warm.failures + timed.failures)[:5]
    run.cpu_s = {name: after[name] - marks["before"][name] for name in after}
    return run


def _drive(link: Connection, url: str, key: str, texts: list[str], pids: dict[str, int]) -> None:
    """The driver's loop: an order ``(path, clients, requests, tag)`` in, a PathRun out."""
    import httpx2  # noqa: F401  (imported before "ready": no import in the timed part)

    import modq

    modq.moderate  # noqa: B018  (the client app, loaded)
    pids = {**pids, "driver": os.getpid()}
    link.send("ready")
    while (order := link.recv()) is not None:
        try:
            link.send(_run_order(order, url, key, texts, pids))
        except Exception as exc:
            link.send(_failure(exc))


class Driver:
    """The spawned driver process and its pipe."""

    def __init__(self, url: str, key: str, texts: list[str], pids: dict[str, int]) -> None:
        context = multiprocessing.get_context("spawn")
        self.link, child = context.Pipe()
        self.process = context.Process(
            target=_drive, args=(child, url, key, texts, pids), daemon=True
        )
        self.process.start()
        if self._receive(timeout_s=120) != "ready":
            raise RuntimeError("the driver did not start")

    def _receive(self, *, timeout_s: float) -> Any:
        deadline = time.monotonic() + timeout_s
        while not self.link.poll(1.0):
            if not self.process.is_alive():
                raise RuntimeError(f"the driver died (exit {self.process.exitcode})")
            if time.monotonic() > deadline:
                raise RuntimeError(f"no answer from the driver in {timeout_s:.0f} s")
        return self.link.recv()

    def run(self, path: str, clients: int, requests: int, tag: str) -> PathRun:
        self.link.send((path, clients, requests, tag))
        answer = self._receive(timeout_s=DEADLINE_S * (2 + requests / clients))
        if isinstance(answer, str):
            raise RuntimeError(f"the driver failed: {answer}")
        run: PathRun = answer
        return run

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.link.send(None)
        self.process.join(10)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(5)


def measure(
    url: str,
    key: str,
    texts: list[str],
    sizes: Sizes,
    pids: Mapping[str, int] | None = None,
) -> list[dict[str, Any]]:
    """Both paths at every level (alternated, ABBA over rounds), from one spawned driver:
    one ``{"clients", "http", "celery", "ratios"}`` per level. ``pids``: processes whose CPU
    per request is reported (the driver's own is added)."""
    run_id = uuid.uuid4().hex[:6]
    driver = Driver(url, key, texts, dict(pids or {}))
    try:
        for path in PATHS:
            if sizes.warm_up:
                warm = driver.run(path, min(4, sizes.warm_up), sizes.warm_up, f"{run_id}{path[0]}w")
                if warm.errors:
                    raise RuntimeError(f"warm-up of {path} failed: {warm.error_samples}")
        levels = []
        for clients, requests in zip(sizes.levels, sizes.requests, strict=True):
            merged = {path: PathRun(path, clients) for path in PATHS}
            for round_ in range(sizes.rounds):
                share = requests // sizes.rounds + (
                    requests % sizes.rounds if round_ == sizes.rounds - 1 else 0
                )
                order = PATHS if round_ % 2 == 0 else PATHS[::-1]
                for path in order:
                    tag = f"{run_id}{path[0]}{clients}.{round_}"
                    merged[path].merge(driver.run(path, clients, share, tag))
            http, celery = merged[HTTP].summary(), merged[CELERY].summary()
            level = {"clients": clients, HTTP: http, CELERY: celery}
            level["ratios"] = _ratios(http, celery)
            levels.append(level)
            print(_progress(level), file=sys.stderr, flush=True)
        return levels
    finally:
        driver.close()


def _ratios(http: dict[str, Any], celery: dict[str, Any]) -> dict[str, float | None]:
    def over(a: float, b: float) -> float | None:
        return a / b if b else None

    return {
        "throughput": over(http["requests_per_s"], celery["requests_per_s"]),
        "p50": over(http["p50_ms"], celery["p50_ms"]),
        "p99": over(http["p99_ms"], celery["p99_ms"]),
    }


def _progress(level: dict[str, Any]) -> str:
    parts = [f"  c={level['clients']}:"]
    for path in PATHS:
        s = level[path]
        parts.append(
            f"{path} {s['requests_per_s']:.1f} req/s p50 {s['p50_ms']:.0f} "
            f"p99 {s['p99_ms']:.0f} ms ({s['requests']} req, {s['errors']} errors);"
        )
    ratio = level["ratios"]["throughput"]
    parts.append(f"HTTP/Celery {ratio:.2f}×" if ratio else "HTTP/Celery n/a")
    return " ".join(parts)


# --- the run: services, figures, table, files -------------------------------------------------


def targets(levels: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One verdict per level and target (a level with errors meets nothing)."""
    out = []
    for level in levels:
        clean = level[HTTP]["errors"] == 0 and level[CELERY]["errors"] == 0
        throughput, p99 = level["ratios"]["throughput"], level["ratios"]["p99"]
        out += [
            {
                "clients": level["clients"],
                "target": f"HTTP throughput ≥ {TARGET_THROUGHPUT}× Celery's",
                "value": throughput,
                "met": bool(clean and throughput is not None and throughput >= TARGET_THROUGHPUT),
            },
            {
                "clients": level["clients"],
                "target": f"HTTP p99 < {TARGET_P99:g}× Celery's",
                "value": p99,
                "met": bool(clean and p99 is not None and p99 < TARGET_P99),
            },
        ]
    return out


def _fmt(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def markdown(levels: list[dict[str, Any]], verdicts: list[dict[str, Any]]) -> str:
    """The figures as Markdown tables: both paths per level, ratios, verdicts, CPU."""
    lines = [
        "| clients | path | requests | errors | req/s | p50 ms | p99 ms |",
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for level in levels:
        for path in PATHS:
            s = level[path]
            lines.append(
                f"| {level['clients']} | {LABELS[path]} | {s['requests']} | {s['errors']} | "
                f"{s['requests_per_s']:.1f} | {s['p50_ms']:.1f} | {s['p99_ms']:.1f} |"
            )
    lines += [
        "",
        "| clients | HTTP/Celery req/s (target ≥ 0.8) | HTTP/Celery p50 "
        "| HTTP/Celery p99 (target < 2) | verdict |",
        "| ---: | ---: | ---: | ---: | --- |",
    ]
    by_level: dict[int, list[bool]] = {}
    for verdict in verdicts:
        by_level.setdefault(verdict["clients"], []).append(verdict["met"])
    for level in levels:
        ratios = level["ratios"]
        met = by_level[level["clients"]]
        said = ", ".join(
            f"{name} {'met' if ok else 'MISSED'}"
            for name, ok in zip(("throughput", "p99"), met, strict=True)
        )
        lines.append(
            f"| {level['clients']} | {_fmt(ratios['throughput'])}× | {_fmt(ratios['p50'])}× | "
            f"{_fmt(ratios['p99'])}× | {said} |"
        )
    processes = sorted({name for level in levels for name in level[HTTP]["cpu_ms_per_request"]})
    if processes:
        lines += [
            "",
            "CPU per request (ms, user + system, each process over the timed part):",
            "",
            "| clients | path | " + " | ".join(processes) + " | total |",
            "| ---: | --- |" + " ---: |" * (len(processes) + 1),
        ]
        for level in levels:
            for path in PATHS:
                cpu = level[path]["cpu_ms_per_request"]
                cells = [f"{cpu.get(name, 0.0):.1f}" for name in processes]
                total = sum(cpu.values())
                lines.append(
                    f"| {level['clients']} | {path} | " + " | ".join(cells) + f" | {total:.1f} |"
                )
        shares = []
        for level in levels:
            http, celery = (sum(level[p]["cpu_ms_per_request"].values()) for p in PATHS)
            shares.append(f"{celery / http:.2f} at c={level['clients']}" if http else "—")
        lines += [
            "",
            "Celery's total CPU per request over HTTP's: " + ", ".join(shares) + ". Where every "
            "process shares the same cores, the front's own CPU is roughly what it costs in "
            "throughput.",
        ]
    return "\n".join(lines) + "\n"


def plot(levels: list[dict[str, Any]], path: Path, title: str) -> None:
    """Throughput and p99 against concurrency, both paths (log x)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    clients = [level["clients"] for level in levels]
    colours = {HTTP: "#2a7", CELERY: "#777"}
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    for axes, figure_key in ((left, "requests_per_s"), (right, "p99_ms")):
        for name in PATHS:
            other = CELERY if name == HTTP else HTTP
            values = [level[name][figure_key] for level in levels]
            axes.plot(clients, values, "o-", color=colours[name], label=LABELS[name])
            for level, x, y in zip(levels, clients, values, strict=True):
                theirs = level[other][figure_key]
                above = y > theirs or (y == theirs and name == HTTP)
                axes.annotate(
                    f"{y:.0f}",
                    (x, y),
                    textcoords="offset points",
                    xytext=(4, 5) if above else (4, -12),  # the higher point's label above
                    fontsize=8,
                )
    for axes, label in ((left, "requests/s"), (right, "p99 latency, ms")):
        axes.set_xscale("log")
        axes.set_xticks(clients, [str(c) for c in clients])
        axes.set_xlabel("concurrent clients")
        axes.set_ylabel(label)
        axes.set_ylim(0, axes.get_ylim()[1] * 1.08)  # room for the top labels
        axes.grid(alpha=0.3)
        axes.legend(fontsize=8)
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    print(f"wrote {path}")


def docs_section(payload: dict[str, Any], plot_link: str) -> str:
    """The run as a Markdown section of docs/benchmarks.md, between this module's markers."""
    run = payload["run"]
    machine_ = run["machine"]
    load_start = ", ".join(f"{x:.2f}" for x in run["load_average_at_start"])
    load_end = ", ".join(f"{x:.2f}" for x in machine_["load_average"])
    sizes = run["sizes"]
    per_level = ", ".join(
        f"{r} at c={c}" for c, r in zip(sizes["levels"], sizes["requests"], strict=True)
    )
    return "\n".join(
        [
            DOCS_BEGIN,
            f"## HTTP front vs moderate.delay(): {run['date']}",
            "",
            f"One real worker (threads pool, {run['worker_threads']} task threads, model "
            f"`{run['model']}`) behind both "
            "paths, on a private redis-server and one SQLite file; `modq api` (one uvicorn "
            "process, rate limit off) in front of it for the HTTP path. A spawned driver "
            "process runs N asyncio tasks on one httpx client looping `POST /v1/moderate` "
            "(sync, with a deadline), then N threads looping `moderate.delay(...).get()` "
            "(`from modq import moderate`, the producer path the API itself uses); the two "
            f"alternate at each level ({sizes['rounds']} round(s), the order flipped each "
            "round). Timed requests per "
            f"path: {per_level}, after a warm-up; every request has its own text (no cache "
            "hit). Ratios are within this run. The API's CPU per request is its HTTP stack "
            "(uvicorn on the pure-Python h11 parser and the asyncio loop: `uvicorn[standard]`'s "
            "httptools and uvloop are not installed; FastAPI routing, pydantic), the same "
            "publish as the client's (in a thread), and its Redis round trips: the job record "
            "(SET) and the result waiter's SUBSCRIBE, GET and UNSUBSCRIBE on one pub/sub "
            "connection (no polling); the key lookup is cached (`MODQ_API_KEY_CACHE_S`).",
            "",
            f"Machine: {machine_['cpu']}, {machine_['cpu_count']} cores, "
            f"{machine_['memory_gib']} GiB, Python {machine_['python']}, no GPU. "
            f"Load average (1, 5, 15 min) at start {load_start}; at end {load_end}.",
            f"Command: `{run['command'].strip()}`; run time {run['elapsed_s'] / 60:.1f} min.",
            "",
            payload["markdown"],
            f"![HTTP front vs moderate.delay()]({plot_link})",
            DOCS_END,
        ]
    )


def make_key(database_url: str, name: str = "bench-http-api") -> str:
    """An API key with every priority (stored hashed in ``database_url``)."""
    from db.api_keys import ApiKeyRepository
    from db.session import make_engine

    engine = make_engine(database_url)
    try:
        _, key = ApiKeyRepository(engine).create(name, ("urgent", "normal", "bulk"))
    finally:
        engine.dispose()
    return key


def served_model(model_dir: Path) -> str:
    """``name:version (precision)`` from the model folder's manifest."""
    manifest = json.loads((model_dir / "manifest.json").read_text())
    precision = manifest.get("extra", {}).get("precision", "fp32")
    return f"{manifest['name']}:{manifest['version']} ({precision})"


def redis_pid(redis_url: str) -> int:
    from redis import Redis

    client = Redis.from_url(redis_url)
    try:
        return int(client.info("server")["process_id"])
    finally:
        client.close()


def run_services(
    model_dir: Path,
    sizes: Sizes | None,
    texts: list[str],
    tenants: TenantSizes | None = None,
) -> tuple[list[dict[str, Any]], dict[str, int], dict[str, Any] | None]:
    """Redis, SQLite, a worker and the API up; both paths measured (unless ``sizes`` is None),
    then the tenant row (with ``tenants``); everything stopped. Also what the worker did
    meanwhile: texts its model scored, cache hits (0: no short cut)."""
    from bench.services import ModqWorker, modq_worker_env
    from cli.services import private_redis, running_api

    folder = Path(tempfile.mkdtemp(prefix="modq-bench-http-"))
    print(f"logs: {folder}", file=sys.stderr, flush=True)
    with private_redis() as redis_url:
        # before anything imports modq's client: every process talks to this Redis only
        os.environ["MODQ_REDIS_URL"] = redis_url
        for name in ("MODQ_BROKER_URL", "MODQ_RESULT_BACKEND_URL"):
            os.environ.pop(name, None)
        env = modq_worker_env(redis_url, folder, model_dir, "http-api")
        worker = ModqWorker(env, folder / "worker.log", "http-api", WORKER_THREADS)
        try:
            api_env = {
                "MODQ_DATABASE_URL": env["MODQ_DATABASE_URL"],
                "MODQ_RATE_LIMIT_PER_MIN": "0",
            }
            with running_api(api_env, log_dir=folder) as api:
                key = make_key(env["MODQ_DATABASE_URL"])
                pids = {
                    "worker": worker.process.pid,
                    "api": api.process.pid,
                    "redis": redis_pid(redis_url),
                }
                before = worker.stats()
                levels = measure(api.url, key, texts, sizes, pids) if sizes else []
                tenant_row = None
                if tenants is not None:
                    victim = make_key(env["MODQ_DATABASE_URL"], "bench-victim")
                    flood = make_key(env["MODQ_DATABASE_URL"], "bench-flood")
                    tenant_row = run_tenants(api.url, victim, flood, texts, tenants)
                after = worker.stats()
                counts = {k: int(after[k] - before[k]) for k in ("texts_scored", "cache_hits")}
                return levels, counts, tenant_row
        finally:
            worker.stop()


def parse(argv: list[str] | None) -> tuple[argparse.Namespace, Sizes]:
    doc = __doc__ or ""
    parser = argparse.ArgumentParser(
        prog="python -m bench.http_api", description=doc.split("\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="~40 requests per level (smoke run)")
    parser.add_argument("--model-dir", type=Path, default=None, help="default: MODQ_MODEL_DIR")
    parser.add_argument(
        "--out", type=Path, help="folder for JSON and PNG (default bench/results, var/bench quick)"
    )
    parser.add_argument(
        "--write-docs", action="store_true", help="put the section in docs/benchmarks.md"
    )
    parser.add_argument(
        "--tenants", action="store_true", help="add the tenant row (victim p99 with a flood key)"
    )
    parser.add_argument("--tenants-only", action="store_true", help="only the tenant row")
    args = parser.parse_args(argv)
    return args, Sizes.quick() if args.quick else Sizes.full()


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args, sizes = parse(argv)
    started_s = time.monotonic()
    load_at_start = machine()["load_average"]
    model_dir = args.model_dir or Path(os.environ.get("MODQ_MODEL_DIR", REPO / "models/current"))
    model_dir = model_dir.resolve()
    from bench.texts import bench_texts

    texts = bench_texts(max(sizes.requests))
    print(
        f"levels {sizes.levels}, requests {sizes.requests}, rounds {sizes.rounds}, "
        f"model {model_dir}",
        file=sys.stderr,
        flush=True,
    )
    tenant_sizes = None
    if args.tenants or args.tenants_only:
        tenant_sizes = TenantSizes.quick() if args.quick else TenantSizes.full()
    levels, worker_counts, tenant_row = run_services(
        model_dir, None if args.tenants_only else sizes, texts, tenant_sizes
    )
    if tenant_row is not None:
        print("\n### Tenants: one key's latency while another floods\n")
        print(tenant_markdown(tenant_row))
    if args.tenants_only:
        stem = "http_api-tenants-quick" if args.quick else "http_api-tenants"
        write_json(
            (args.out or (SCRATCH if args.quick else RESULTS)) / f"{stem}.json",
            {
                "run": {
                    "command": "python -m bench.http_api "
                    + " ".join(argv if argv is not None else sys.argv[1:]),
                    "machine": machine(),
                    "model": served_model(model_dir),
                    "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                },
                "tenants": tenant_row,
            },
        )
        return {"tenants": tenant_row}
    verdicts = targets(levels)
    table = markdown(levels, verdicts)
    if tenant_row is not None:
        table += "\n" + tenant_markdown(tenant_row)
    table += (
        f"\nThe worker's model scored {worker_counts['texts_scored']:,} texts during the run; "
        f"cache hits: {worker_counts['cache_hits']}.\n"
    )
    print("\n### HTTP front vs moderate.delay()\n\n" + table)
    for verdict in verdicts:
        state = "met" if verdict["met"] else "MISSED"
        print(f"c={verdict['clients']}: {verdict['target']}: {_fmt(verdict['value'])} {state}")
    elapsed_s = time.monotonic() - started_s
    run = {
        "command": "python -m bench.http_api "
        + " ".join(argv if argv is not None else sys.argv[1:]),
        "quick": args.quick,
        "sizes": asdict(sizes),
        "machine": machine(),
        "load_average_at_start": load_at_start,
        "elapsed_s": round(elapsed_s, 1),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "model_dir": str(model_dir),
        "model": served_model(model_dir),
        "worker_threads": WORKER_THREADS,
        "api_workers": 1,
    }
    payload = {
        "run": run,
        "levels": levels,
        "targets": verdicts,
        "worker": worker_counts,
        "tenants": tenant_row,
        "markdown": table,
    }
    out = args.out or (SCRATCH if args.quick else RESULTS)
    stem = "http_api-quick" if args.quick else "http_api"
    write_json(out / f"{stem}.json", payload)
    plot(
        levels,
        out / f"{stem}.png",
        f"HTTP front vs moderate.delay(), one worker, {run['machine']['cpu_count']} CPU cores",
    )
    if args.write_docs:
        link = os.path.relpath(out / f"{stem}.png", DOCS.parent)
        update_docs(DOCS, docs_section(payload, link), begin=DOCS_BEGIN, end=DOCS_END)
    print(f"elapsed {elapsed_s / 60:.1f} min; load average {run['machine']['load_average']}")
    return payload


if __name__ == "__main__":
    main()
