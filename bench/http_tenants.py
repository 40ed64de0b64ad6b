"""The tenant row of ``python -m bench.http_api``: one key's latency while another key floods.

A victim key sends ``victim_requests`` small ``POST /v1/moderate`` requests one after another,
first alone, then while a flood key keeps ``flood_clients`` requests of its own in flight on the
same priority (``normal``: the hard case, no queue order helps the victim). The row is the
victim's p99 with the flood ÷ its p99 alone; the target is ≤ 2 (issue 20: the flood's jobs must
not queue ahead of the victim's, ``api.fairness``). ``runs`` repeats alone/flood pairs, so the
spread of the ratio shows whether the count of requests makes it stable; within a run the two
phases alternate in ``BLOCKS`` blocks, so both sample the same background load.
"""

from __future__ import annotations

import asyncio
import itertools
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bench.report import percentile

TARGET_RATIO = 2.0
BLOCKS = 3  # each run alternates alone / beside the flood this many times
DEADLINE_S = 60.0


@dataclass(frozen=True)
class TenantSizes:
    victim_requests: int  # per phase (alone, with the flood), per run
    flood_clients: int  # the flood key's requests in flight
    runs: int

    @classmethod
    def full(cls) -> TenantSizes:
        return cls(300, 32, 3)

    @classmethod
    def quick(cls) -> TenantSizes:
        return cls(40, 16, 1)


async def _victim(
    client: Any, key: str, texts: Sequence[str], count: int, tag: str, failures: list[str]
) -> list[float]:
    """``count`` requests one after another: their latencies in ms. A failed request (e.g. 503
    past its 10 s deadline) counts with the time it took, and its answer goes to ``failures``."""
    latencies: list[float] = []
    headers = {"Authorization": f"Bearer {key}"}
    for index in range(count):
        body = {"content": f"{texts[index % len(texts)]} [{tag}-{index}]", "priority": "normal"}
        started = time.perf_counter()
        try:
            response = await client.post("/v1/moderate", json=body, headers=headers)
            if response.status_code != 200:
                failures.append(f"{response.status_code} {response.json().get('code')}")
        except Exception as exc:  # counted, never fatal to the run
            failures.append(type(exc).__name__)
        latencies.append((time.perf_counter() - started) * 1000)
    return latencies


async def _flood(
    client: Any,
    key: str,
    texts: Sequence[str],
    tag: str,
    stop: asyncio.Event,
    tally: dict[int, int],
) -> None:
    headers = {"Authorization": f"Bearer {key}"}
    for index in itertools.count():
        if stop.is_set():
            return
        body = {
            "content": f"{texts[index % len(texts)]} [{tag}-{index}]",
            "priority": "normal",
            "timeout_s": DEADLINE_S,
        }
        try:
            response = await client.post("/v1/moderate", json=body, headers=headers)
        except Exception:  # a dropped connection: counted as 0
            tally[0] = tally.get(0, 0) + 1
            continue
        tally[response.status_code] = tally.get(response.status_code, 0) + 1
        if response.status_code == 429:  # refused past its share: back off as told
            await asyncio.sleep(float(response.headers.get("Retry-After", "1")))


async def measure_tenants(
    url: str, victim_key: str, flood_key: str, texts: Sequence[str], sizes: TenantSizes
) -> dict[str, Any]:
    import httpx2 as httpx

    limits = httpx.Limits(max_connections=sizes.flood_clients + 4)
    runs: list[dict[str, Any]] = []
    async with httpx.AsyncClient(
        base_url=url, limits=limits, timeout=DEADLINE_S + 10, trust_env=False
    ) as client:
        await _victim(client, victim_key, texts, 10, "warm", [])
        for run in range(sizes.runs):
            # alone and beside the flood in alternating blocks, so both phases sample the
            # same background (a shared machine's load comes and goes)
            alone: list[float] = []
            with_flood: list[float] = []
            tally: dict[int, int] = {}
            failed_alone: list[str] = []
            failed_flood: list[str] = []
            per_block = max(1, sizes.victim_requests // BLOCKS)
            for block in range(BLOCKS):
                alone += await _victim(
                    client, victim_key, texts, per_block, f"a{run}-{block}", failed_alone
                )
                stop = asyncio.Event()
                flood = [
                    asyncio.create_task(
                        _flood(client, flood_key, texts, f"f{run}-{block}-{n}", stop, tally)
                    )
                    for n in range(sizes.flood_clients)
                ]
                started = sum(tally.values())
                while sum(tally.values()) < started + sizes.flood_clients:  # under way
                    await asyncio.sleep(0.05)
                with_flood += await _victim(
                    client, victim_key, texts, per_block, f"v{run}-{block}", failed_flood
                )
                stop.set()
                await asyncio.gather(*flood)
            row: dict[str, Any] = {
                "victim_requests": len(alone),
                "alone_p50_ms": statistics.median(alone),
                "alone_p99_ms": percentile(alone, 0.99),
                "flood_p50_ms": statistics.median(with_flood),
                "flood_p99_ms": percentile(with_flood, 0.99),
                "flood_responses": {str(k): v for k, v in sorted(tally.items())},
                "victim_failed_alone": len(failed_alone),
                "victim_failed_with_flood": len(failed_flood),
                "victim_failure_samples": sorted(set(failed_alone + failed_flood))[:5],
            }
            row["ratio_p99"] = row["flood_p99_ms"] / row["alone_p99_ms"]
            runs.append(row)
            print(
                f"tenants run {run + 1}/{sizes.runs}: victim p99 alone "
                f"{row['alone_p99_ms']:.0f} ms, with flood {row['flood_p99_ms']:.0f} ms, "
                f"ratio {row['ratio_p99']:.2f}; victim failures {len(failed_alone)} alone, "
                f"{len(failed_flood)} with flood; flood answers {row['flood_responses']}",
                flush=True,
            )
    ratios = [row["ratio_p99"] for row in runs]
    return {
        "sizes": {
            "victim_requests": sizes.victim_requests,
            "flood_clients": sizes.flood_clients,
            "runs": sizes.runs,
        },
        "runs": runs,
        "ratio_median": statistics.median(ratios),
        "ratio_min": min(ratios),
        "ratio_max": max(ratios),
        "target": TARGET_RATIO,
        "met": max(ratios) <= TARGET_RATIO,
    }


def tenant_markdown(result: dict[str, Any]) -> str:
    sizes = result["sizes"]
    lines = [
        f"Victim: {sizes['victim_requests']} sequential requests per phase; flood: "
        f"{sizes['flood_clients']} requests of another key in flight; {sizes['runs']} runs.",
        "",
        "| run | victim p50 alone ms | p99 alone ms | p50 with flood ms | p99 with flood ms "
        "| p99 ratio | victim failed (alone / with flood) |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for number, row in enumerate(result["runs"], 1):
        lines.append(
            f"| {number} | {row['alone_p50_ms']:.0f} | {row['alone_p99_ms']:.0f} | "
            f"{row['flood_p50_ms']:.0f} | {row['flood_p99_ms']:.0f} | {row['ratio_p99']:.2f} | "
            f"{row['victim_failed_alone']} / {row['victim_failed_with_flood']} |"
        )
    state = "met" if result["met"] else "MISSED"
    lines.append(
        f"\nTenant row: victim p99 with a flood key ÷ alone = {result['ratio_median']:.2f} "
        f"(min {result['ratio_min']:.2f}, max {result['ratio_max']:.2f}); target ≤ "
        f"{result['target']:g}: {state}."
    )
    return "\n".join(lines) + "\n"


def run_tenants(
    url: str, victim_key: str, flood_key: str, texts: Sequence[str], sizes: TenantSizes
) -> dict[str, Any]:
    return asyncio.run(measure_tenants(url, victim_key, flood_key, texts, sizes))
