"""A worker's memory over many jobs: RSS split anonymous/file, and Python objects, per chunk.

    python -m bench.memory [--jobs 200000] [--chunk 20000] [--per-message 100] [ENV=VALUE ...]

A real modq worker (threads pool, 32 task threads, production cache settings) on a private
Redis and its own SQLite file: 10,000 cold jobs (distinct texts, 100 per message), then cache
hits of 1,000 texts in chunks, reading ``/proc/PID/smaps_rollup``, the worker's
``python_objects`` and its open sockets after each. ``ENV=VALUE`` pairs go into the worker's
environment, to try an allocator setting
(``LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2``, ``MALLOC_MMAP_THRESHOLD_=131072``)
or another database (``MODQ_DATABASE_URL=...``, migrated).
Growth that stops is a plateau; growth that goes on with the objects count is a leak.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from bench import modq_paths
from bench.services import modq_workers
from bench.texts import bench_texts

COLD_JOBS = 10_000


def rollup_mib(pid: int) -> dict[str, int]:
    """Rss, Anonymous and file-backed (Pss_File) memory of ``pid``, MiB."""
    fields = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        key, _, value = line.partition(":")
        if key in ("Rss", "Anonymous", "Pss_File"):
            fields[key] = int(value.split()[0]) // 1024
    return fields


def open_sockets(pid: int) -> int:
    """Sockets ``pid`` holds open (its Redis and database connections, mostly)."""
    fds = Path(f"/proc/{pid}/fd")
    count = 0
    for fd in fds.iterdir():
        try:
            count += os.readlink(fd).startswith("socket:")
        except OSError:  # closed meanwhile
            continue
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=200_000, help="jobs in all (cold included)")
    parser.add_argument("--chunk", type=int, default=20_000)
    parser.add_argument("--per-message", type=int, default=100)
    parser.add_argument("--model-dir", type=Path, default=Path("models/current"))
    parser.add_argument("env", nargs="*", help="ENV=VALUE for the worker")
    args = parser.parse_args()
    worker_env = dict(pair.split("=", 1) for pair in args.env)
    with modq_workers("memory", args.model_dir, env=worker_env) as (worker,):
        pid = worker.process.pid
        print(f"model loaded: {rollup_mib(pid)}", flush=True)
        modq_paths.bulk(bench_texts(COLD_JOBS), per_message=args.per_message, producers=2)
        print(
            f"{COLD_JOBS:>8,} jobs (cold): {rollup_mib(pid)}, sockets {open_sockets(pid)}",
            flush=True,
        )
        texts, done = bench_texts(1000), COLD_JOBS
        while done < args.jobs:
            count = min(args.chunk, args.jobs - done)
            rate = modq_paths.repeat_bulk(texts, count, per_message=args.per_message, producers=2)
            done += count
            objects = worker.stats().get("python_objects")
            print(
                f"{done:>8,} jobs: {rollup_mib(pid)}, python objects {objects}, "
                f"sockets {open_sockets(pid)}, {rate:,.0f} jobs/s",
                flush=True,
            )


if __name__ == "__main__":
    main()
