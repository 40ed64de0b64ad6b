"""The suite's phases: throughput rounds, then urgency + cache + memory, then precision."""

from __future__ import annotations

import contextlib
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bench import ceiling, models, modq_paths
from bench.producers import SEED_ONE, drive
from bench.report import Figures
from bench.services import (
    ModqWorker,
    modq_worker_env,
    start_seed_worker,
    stop_worker,
    warm_seed_worker,
)
from bench.texts import bench_texts

if TYPE_CHECKING:
    from bench.suite import Sizes

MODQ_THREADS = 32  # the worker's default task threads
URGENT_THREADS = 4  # a dedicated urgent worker: urgent jobs come one at a time
BULK_NICE = 5  # the bulk worker yields the CPU to the urgent one (CFS weight ~3:1)
CACHE_PER_MESSAGE = 250  # several messages in flight at once, each a real bulk size


@dataclass
class Context:
    model_dir: Path
    texts: list[str]
    sizes: Sizes
    folder: Path
    modq_redis: str
    figures: Figures
    extra: dict[str, Any]
    skip: set[str]
    worker_processes: int = 1  # modq workers behind the per-item and bulk rows


def _seed_services(context: Context, stack: contextlib.ExitStack) -> dict[str, str]:
    """Start the seed-design and no-batching workers, each on its own private Redis."""
    from cli.services import private_redis

    urls: dict[str, str] = {}
    scores = {}
    for backend in ("torch", "onnx"):
        if backend == "torch" and "seed" in context.skip:
            continue
        if backend == "onnx" and "nobatch" in context.skip:
            continue
        url = stack.enter_context(private_redis())
        process = start_seed_worker(
            backend, url, context.model_dir, context.folder / f"seed-{backend}.log"
        )
        stack.callback(stop_worker, process)
        scores[backend] = warm_seed_worker(url, context.texts)
        urls[backend] = url
    if len(scores) == 2:  # the seed row runs the same model (if the served one is fp32)
        diff = float(np.abs(scores["torch"] - scores["onnx"]).max())
        context.extra["seed_torch_vs_onnx_max_abs_diff"] = diff
    context.extra["served_precision"] = models.precision(context.model_dir)
    return urls


def throughput_rounds(context: Context) -> None:
    """Every throughput row once per round, ``repeats`` rounds; services stopped after."""
    with contextlib.ExitStack() as stack:
        _rounds(context, stack)


def _rounds(context: Context, stack: contextlib.ExitStack) -> None:
    sizes, texts, figures = context.sizes, context.texts, context.figures
    groups = {}
    if "ceiling" not in context.skip:
        for processes, threads in sizes.layouts:
            group = ceiling.ProcessGroup(context.model_dir, processes, threads, texts)
            stack.callback(group.close)
            groups[(processes, threads)] = group
    seed_urls = _seed_services(context, stack)
    cold = None
    if "modq" not in context.skip:
        env = modq_worker_env(
            context.modq_redis,
            context.folder,
            context.model_dir,
            "cold",
            MODQ_CACHE_LRU_ITEMS="0",  # cold cache every run: entries are deleted in Redis
        )
        count = context.worker_processes  # `modq worker --processes N`: N workers, one model each
        colds = [
            ModqWorker(
                env, context.folder / f"modq-cold{i}.log", f"cold{i}", max(1, MODQ_THREADS // count)
            )
            for i in range(count)
        ]
        for worker in colds:
            stack.callback(worker.stop)
        cold = colds[0]
    for round_ in range(sizes.repeats):
        print(f"round {round_ + 1}/{sizes.repeats}", flush=True)
        for index, ((processes, threads), group) in enumerate(groups.items()):
            for policy, description in ceiling.POLICIES.items():
                if not ceiling.policy_applies(policy, index, processes, threads):
                    continue
                figures.add(
                    f"ceiling:{processes}x{threads}:{policy}",
                    f"(1) in-process, {processes} proc × {threads} thr, {description}",
                    group.texts_per_s(policy),
                )
        if "torch" in seed_urls:
            figures.add(
                "seed",
                "(2) seed design: Celery task per text, PyTorch eager fp32, 2 children",
                drive(
                    SEED_ONE,
                    texts,
                    texts=len(texts),
                    producers=sizes.producers,
                    redis_url=seed_urls["torch"],
                ),
            )
        if "onnx" in seed_urls:
            figures.add(
                "nobatch",
                "(3) same ONNX model, Celery task per text, no batching, 2 children",
                drive(
                    SEED_ONE,
                    texts,
                    texts=len(texts),
                    producers=sizes.producers,
                    redis_url=seed_urls["onnx"],
                ),
            )
        if cold is not None:
            prefix = cold.env["MODQ_CACHE_KEY_PREFIX"]
            count = context.worker_processes
            layout = f", {count} worker processes" if count > 1 else ""
            modq_paths.clear_cache(context.modq_redis, prefix)
            figures.add(
                "modq:per-item",
                f"(4) modq per-item: moderate.delay(), {sizes.producers} producers" + layout,
                modq_paths.per_item(texts, producers=sizes.producers),
            )
            for per_message in sizes.bulk_sizes:
                modq_paths.clear_cache(context.modq_redis, prefix)
                figures.add(
                    f"modq:bulk{per_message}",
                    f"(5) modq bulk: moderate_many(), {per_message} items per message" + layout,
                    modq_paths.bulk(texts, per_message=per_message, producers=sizes.producers),
                )
    if cold is not None:
        context.extra["cold_worker_stats"] = cold.stats()  # the first, if there are several


def urgency_cache_memory(context: Context) -> None:
    """A fresh worker with production defaults: RSS loaded, urgency (whose backlog is the
    first memory leg), cache hits, then more cache-hit jobs up to ``memory_jobs`` and twice
    that; RSS at each."""
    sizes, texts, figures = context.sizes, context.texts, context.figures
    env = modq_worker_env(context.modq_redis, context.folder, context.model_dir, "warm")
    worker = ModqWorker(env, context.folder / "modq-warm.log", "warm", MODQ_THREADS)
    try:
        memory: dict[str, Any] = {"loaded_mib": worker.rss_mib()[0]}
        jobs_done = 0
        if "urgency" not in context.skip:
            backlog = bench_texts(sizes.backlog_items)
            urgent = texts[: sizes.urgent_jobs]
            result = modq_paths.urgency(
                worker,
                context.modq_redis,
                urgent,
                backlog,
                backlog_per_message=sizes.backlog_per_message,
            )
            context.extra["urgency"] = result
            jobs_done += len(backlog) + 2 * len(urgent)
            memory["after_jobs"] = {jobs_done: worker.rss_mib()[0]}
        if "cache" not in context.skip:
            modq_paths.bulk(texts, per_message=CACHE_PER_MESSAGE, producers=sizes.producers)  # fill
            jobs_done += len(texts)
            for _ in range(sizes.repeats):
                figures.add(
                    "modq:cache",
                    f"(6) modq cache hits: same texts again, moderate_many() "
                    f"{CACHE_PER_MESSAGE} per message",
                    modq_paths.bulk(
                        texts, per_message=CACHE_PER_MESSAGE, producers=sizes.producers
                    ),
                )
                jobs_done += len(texts)
        if "memory" not in context.skip:
            memory.setdefault("after_jobs", {})[jobs_done] = worker.rss_mib()[0]
            # the backlog's message size: RSS follows the jobs in flight (32 task threads x
            # items per message) up to a plateau, so the readings compare the same shape of work
            per_message = sizes.backlog_per_message
            memory["target_jobs"] = sizes.memory_jobs
            memory["filler_kind"] = (
                f"cache hits (same texts, moderate_many {per_message} per message)"
            )
            started = time.perf_counter()
            # to the 100k, then as many again: growth that stops is a plateau, a leak
            # keeps going
            for target in (sizes.memory_jobs, 2 * sizes.memory_jobs):
                if target > jobs_done:
                    modq_paths.repeat_bulk(
                        texts,
                        target - jobs_done,
                        per_message=per_message,
                        producers=sizes.producers,
                    )
                    jobs_done = target
                memory["after_jobs"][jobs_done] = worker.rss_mib()[0]
            memory["filler_s"] = time.perf_counter() - started
            memory["peak_mib"] = worker.rss_mib()[1]
        context.extra["memory"] = memory
        context.extra["warm_worker_stats"] = worker.stats()
    finally:
        worker.stop()


def urgency_dedicated(context: Context) -> None:
    """The production layout for urgency: a worker on normal,bulk at lower CPU priority and a
    dedicated urgent worker (`modq worker --queues urgent`). Urgent jobs then never wait for a
    task slot held by bulk messages; they only share the cores."""
    sizes = context.sizes
    bulk_env = modq_worker_env(context.modq_redis, context.folder, context.model_dir, "bulk")
    urgent_env = modq_worker_env(context.modq_redis, context.folder, context.model_dir, "urgent")
    bulk = ModqWorker(
        bulk_env,
        context.folder / "modq-bulk.log",
        "bulk",
        MODQ_THREADS,
        queues="normal,bulk",
        nice=BULK_NICE,
    )
    urgent = None
    try:
        urgent = ModqWorker(
            urgent_env,
            context.folder / "modq-urgent.log",
            "urgent",
            URGENT_THREADS,
            queues="urgent",
        )
        result = modq_paths.urgency(
            bulk,
            context.modq_redis,
            context.texts[: sizes.urgent_jobs],
            bench_texts(sizes.backlog_items),
            backlog_per_message=sizes.backlog_per_message,
            drain=False,  # the memory legs are measured on the other worker
        )
        result["layout"] = (
            f"`modq worker --queues normal,bulk --nice {BULK_NICE}` ({MODQ_THREADS} threads) + "
            f"`modq worker --queues urgent` ({URGENT_THREADS} threads)"
        )
        result["urgent_worker_rss_mib"] = urgent.rss_mib()[0]
        context.extra["urgency_dedicated"] = result
    finally:
        if urgent is not None:
            urgent.stop()
        bulk.stop()


def tokenization(context: Context) -> None:
    """Tokenizer texts/s as the worker calls it (``OnnxBackend.tokenize`` on a whole message):
    how much of the model's time it would cost if it were not overlapped."""
    from tokenizers import Tokenizer

    from gpu_worker.manifest import ModelManifest

    manifest = ModelManifest.read(context.model_dir)
    tokenizer = Tokenizer.from_file(str(context.model_dir / manifest.tokenizer_file))
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=manifest.max_length_tokens)
    one_by_one, whole = [], []
    for _ in range(context.sizes.repeats):
        started = time.perf_counter()
        for text in context.texts:
            tokenizer.encode_batch([text])
        one_by_one.append(len(context.texts) / (time.perf_counter() - started))
        started = time.perf_counter()
        tokenizer.encode_batch(context.texts)
        whole.append(len(context.texts) / (time.perf_counter() - started))
    context.extra["tokenizer_texts_per_s"] = {
        "one_text_per_call": statistics.median(one_by_one),
        "all_texts_in_one_call": statistics.median(whole),
    }


def precision(context: Context) -> None:
    """fp32 vs int8 at the ceiling's best layout and policy, interleaved; score agreement."""
    figures = context.figures
    fp32 = models.fp32_source(context.model_dir)
    int8 = models.int8_variant(fp32) if fp32 is not None else None
    if fp32 is None or int8 is None:
        missing = "fp32" if fp32 is None else "int8"
        where = models.models_root(context.model_dir)
        figures.missing("precision:int8", "(8) int8", f"no {missing} model folder under {where}")
        return
    best = max(
        (k for k in figures.items if k.startswith("ceiling:")),
        key=lambda k: figures.items[k].median,
        default="ceiling:2x1:batcher",
    )
    _, layout, policy = best.split(":")
    processes, threads = (int(x) for x in layout.split("x"))
    groups = {
        "fp32": ceiling.ProcessGroup(fp32, processes, threads, context.texts),
        "int8": ceiling.ProcessGroup(int8, processes, threads, context.texts),
    }
    try:
        for _ in range(context.sizes.repeats):
            for name, group in groups.items():
                figures.add(
                    f"precision:{name}",
                    f"(8) {name}, in-process, {processes} proc × {threads} thr, {policy}",
                    group.texts_per_s(policy),
                )
    finally:
        for group in groups.values():
            group.close()
    from gpu_worker.backends.onnx import OnnxBackend

    sample = context.texts[:200]
    full = OnnxBackend(fp32, device="cpu").score(sample)
    quantized = OnnxBackend(int8, device="cpu").score(sample)
    context.extra["precision"] = {
        "fp32_dir": str(fp32),
        "int8_dir": str(int8),
        "max_abs_score_diff": float(np.abs(full - quantized).max()),
        "mean_abs_score_diff": float(np.abs(full - quantized).mean()),
    }
