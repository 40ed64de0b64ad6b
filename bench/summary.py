"""Ratios and targets of one run, printed as Markdown tables and returned for the JSON."""

from __future__ import annotations

from typing import Any

from bench.report import Figures, print_table, ratio, table_rows

# issue 4's targets on a 2-core CPU: (name, ratio key, bound, "min" = at least / "max" = at most)
TARGETS = (
    ("per-item ≥ 80% of ceiling", "per_item_vs_ceiling", 0.80, "min"),
    ("bulk ≥ 90% of ceiling", "bulk_vs_ceiling", 0.90, "min"),
    ("per-item ≥ 3× seed design", "per_item_vs_seed", 3.0, "min"),
    ("per-item ≥ 1.3× same model, no batching", "per_item_vs_nobatch", 1.3, "min"),
    ("urgent p99 under backlog ≤ 2× idle p99", "urgent_p99_busy_vs_idle", 2.0, "max"),
    ("cache hits ≥ 20× ceiling", "cache_vs_ceiling", 20.0, "min"),
    ("worker RSS flat (±5%) from 10k to 100k jobs", "rss_last_vs_first", 0.05, "abs"),
    # issue 11: a stock Celery producer's round trip on an idle worker
    ("stock producer p50 ≤ 1.5× modq's own", "stock_vs_modq_p50", 1.5, "max"),
)


def _best(figures: Figures, prefix: str) -> str | None:
    keys = [k for k in figures.items if k.startswith(prefix)]
    return max(keys, key=lambda k: figures.items[k].median) if keys else None


def _ratios(figures: Figures, extra: dict[str, Any], ceiling_key: str | None) -> dict[str, Any]:
    ceiling = figures.median(ceiling_key) if ceiling_key else None
    per_item = figures.median("modq:per-item")
    bulk_key = _best(figures, "modq:bulk")
    bulk = figures.median(bulk_key) if bulk_key else None
    ratios: dict[str, Any] = {
        "ceiling_texts_per_s": ceiling,
        "per_item_vs_ceiling": ratio(per_item, ceiling),
        "bulk_vs_ceiling": ratio(bulk, ceiling),
        "bulk_best": bulk_key,
        "per_item_vs_seed": ratio(per_item, figures.median("seed")),
        "per_item_vs_nobatch": ratio(per_item, figures.median("nobatch")),
        "bulk_vs_seed": ratio(bulk, figures.median("seed")),
        "bulk_vs_nobatch": ratio(bulk, figures.median("nobatch")),
        "cache_vs_ceiling": ratio(figures.median("modq:cache"), ceiling),
        "int8_vs_fp32": ratio(figures.median("precision:int8"), figures.median("precision:fp32")),
    }
    tokenizer = extra.get("tokenizer_texts_per_s", {}).get("one_text_per_call")
    ratios["tokenize_cost_vs_ceiling"] = ratio(ceiling, tokenizer)
    urgency = extra.get("urgency")
    if urgency:
        ratios["urgent_p99_busy_vs_idle_one_worker"] = ratio(
            urgency["busy_p99_ms"], urgency["idle_p99_ms"]
        )
        ratios["urgent_p99_busy_vs_idle"] = ratios["urgent_p99_busy_vs_idle_one_worker"]
    dedicated = extra.get("urgency_dedicated")
    if dedicated:  # the production layout is what the target is read on
        ratios["urgent_p99_busy_vs_idle"] = ratio(
            dedicated["busy_p99_ms"], dedicated["idle_p99_ms"]
        )
    stock = extra.get("stock_producer")
    if stock:
        ratios["stock_vs_modq_p50"] = stock["ratio_p50"]
        ratios["stock_vs_modq_p99"] = stock["ratio_p99"]
    memory = extra.get("memory", {})
    readings = sorted((int(jobs), mib) for jobs, mib in memory.get("after_jobs", {}).items())
    if len(readings) >= 2:
        # the target's legs: the first reading (~10k jobs) and the one at ``target_jobs`` (100k)
        by_jobs = dict(readings)
        target_jobs = int(memory.get("target_jobs", readings[-1][0]))
        at_target = target_jobs if target_jobs in by_jobs else readings[-1][0]
        ratios["rss_last_vs_first"] = by_jobs[at_target] / readings[0][1] - 1.0
        ratios["rss_legs_jobs"] = [readings[0][0], at_target]
        if readings[-1][0] > at_target:  # beyond the target: does the growth stop?
            ratios["rss_beyond_target"] = readings[-1][1] / by_jobs[at_target] - 1.0
            ratios["rss_beyond_target_jobs"] = [at_target, readings[-1][0]]
    return ratios


def _targets(ratios: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for name, key, bound, kind in TARGETS:
        value = ratios.get(key)
        if value is None:
            met = None
        elif kind == "min":
            met = value >= bound
        elif kind == "max":
            met = value <= bound
        else:
            met = abs(value) <= bound
        out.append({"target": name, "value": value, "met": met})
    return out


def _fmt(value: float | None, suffix: str = "×") -> str:
    return "n/a" if value is None else f"{value:.2f}{suffix}"


def summarize(figures: Figures, extra: dict[str, Any], run: dict[str, Any]) -> dict[str, Any]:
    """Print the tables; return the JSON payload (figures, ratios, targets, extra, markdown)."""
    ceiling_key = _best(figures, "ceiling:") or ""
    ratios = _ratios(figures, extra, ceiling_key or None)
    targets = _targets(ratios)
    markdown = print_table(
        "Throughput (texts/s)",
        ("path", "median", "spread (min–max)", "vs ceiling"),
        table_rows(figures, ceiling_key),
    )
    layouts = [
        ("one worker on urgent,normal,bulk", extra.get("urgency")),
        ("bulk worker (nice) + dedicated urgent worker", extra.get("urgency_dedicated")),
    ]
    urgent_rows: list[tuple[str, ...]] = []
    for layout, urgency in layouts:
        if not urgency:
            continue
        urgent_rows += [
            (
                layout,
                "idle queue",
                f"{urgency['idle_p50_ms']:.0f}",
                f"{urgency['idle_p99_ms']:.0f}",
            ),
            (
                layout,
                f"{urgency['backlog_items']:,} bulk items queued "
                f"({urgency['backlog_per_message']} per message)",
                f"{urgency['busy_p50_ms']:.0f}",
                f"{urgency['busy_p99_ms']:.0f}",
            ),
        ]
    if urgent_rows:
        jobs = next(len(u["idle_ms"]) for _, u in layouts if u)
        markdown += "\n" + print_table(
            f"(7) Urgent latency, {jobs} jobs sent one at a time (ms)",
            ("workers", "queue", "p50", "p99"),
            urgent_rows,
        )
    memory = extra.get("memory")
    if memory:
        memory_rows: list[tuple[str, ...]] = [("model loaded", f"{memory['loaded_mib']:.0f}")]
        legs = memory["after_jobs"].items()
        memory_rows += [(f"after {jobs:,} jobs", f"{mib:.0f}") for jobs, mib in legs]
        if "peak_mib" in memory:
            memory_rows.append(("peak (VmHWM)", f"{memory['peak_mib']:.0f}"))
        markdown += "\n" + print_table("(9) Worker RSS (MiB)", ("when", "RSS"), memory_rows)
    stock = extra.get("stock_producer")
    if stock:
        stock_rows: list[tuple[str, ...]] = [
            (
                "modq's producer (rings the doorbell)",
                f"{stock['modq_p50_ms']:.1f}",
                f"{stock['modq_p99_ms']:.1f}",
                "1.00×",
            ),
            (
                "stock Celery send_task(queue=)",
                f"{stock['stock_p50_ms']:.1f}",
                f"{stock['stock_p99_ms']:.1f}",
                f"{stock['ratio_p50']:.2f}×",
            ),
        ]
        markdown += "\n" + print_table(
            f"(10) Round trip on an idle worker, look interval "
            f"{stock['look_interval_ms']:.0f} ms (ms)",
            ("producer", "p50", "p99", "p50 vs modq"),
            stock_rows,
        )
    rows = [
        (
            t["target"],
            "n/a" if t["value"] is None else f"{t['value']:.2f}",
            {True: "met", False: "MISSED", None: "n/a"}[t["met"]],
        )
        for t in targets
    ]
    markdown += "\n" + print_table("Targets", ("target", "measured", "verdict"), rows)
    for note in figures.notes.values():
        print(note)
        markdown += f"\n{note}\n"
    return {
        "run": run,
        "ceiling_key": ceiling_key,
        "figures": {
            key: {
                "label": f.label,
                "unit": f.unit,
                "median": f.median,
                "min": min(f.runs),
                "max": max(f.runs),
                "runs": f.runs,
            }
            for key, f in figures.items.items()
        },
        "ratios": ratios,
        "targets": targets,
        "notes": figures.notes,
        "extra": extra,
        "markdown": markdown,
    }
