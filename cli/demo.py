"""`modq demo`: a private stack on this machine (a redis-server of its own, with AOF) and a
sample set with mixed priorities."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click

from cli.services import private_redis, start_worker, stop_worker, wait_for_worker

SAMPLES: list[tuple[str, str, str]] = [  # (content_id, priority, text)
    ("demo-01", "urgent", "I will find where you live and hurt your whole family."),
    ("demo-02", "normal", "Thanks for the recipe, the lemon cake turned out great!"),
    ("demo-03", "normal", "You are a pathetic idiot and nobody here wants you."),
    (
        "demo-04",
        "bulk",
        "CONGRATULATIONS!!! You won a $1000 gift card, claim it now at "
        "bit.ly/free-prize before it expires",
    ),
    ("demo-05", "bulk", "Earn $5,000 a week from home with this one crypto trick, DM me now."),
    ("demo-06", "urgent", "Someone should shoot every one of them, they deserve to die."),
    (
        "demo-07",
        "normal",
        "The match last night was brilliant, what a comeback in the second half.",
    ),
    ("demo-08", "bulk", "Does anyone know when the library opens on Sundays?"),
    ("demo-09", "normal", "Shut up you stupid moron, go back to your cave."),
    (
        "demo-10",
        "bulk",
        "Buy cheap followers and likes, 10k for $5, fast delivery, visit cheap-followers.biz",
    ),
    ("demo-11", "normal", "This movie killed me, I laughed the whole time."),
    ("demo-12", "urgent", "I'm going to beat you until you can't stand up again."),
]


def _row(result: dict[str, Any], priority: str) -> str:
    reasons = (
        ", ".join(
            f"{r['category']} {r['score']:.2f}≥{r['threshold']:.2f}" for r in result["tripped"][:2]
        )
        or "-"
    )
    return (
        f"{result['content_id']:<14} {priority:<7} {result['decision']:<7} "
        f"{'yes' if result['cache_hit'] else 'no':<5} {result['latency_ms']:>8.1f}  {reasons}"
    )


def run_demo(threads: int) -> None:
    import migrations
    from modq.redact_urls import mask_url
    from modq.settings import get_settings

    settings = get_settings()
    migrations.upgrade(settings.database_url)
    # always a Redis of its own, which keeps its queues on disk (AOF: a restart loses no job)
    # and goes away with the demo: a Redis the demo did not start never gets a key from it
    with private_redis(appendonly=True) as redis_url:
        os.environ["MODQ_REDIS_URL"] = redis_url
        os.environ.pop("MODQ_BROKER_URL", None)
        os.environ.pop("MODQ_RESULT_BACKEND_URL", None)
        get_settings.cache_clear()
        click.echo(
            f"redis: a private redis-server for this demo at {mask_url(redis_url)} (AOF, "
            f"stopped and removed at the end; {mask_url(settings.redis_url)} is not touched)"
        )
        Path("var").mkdir(exist_ok=True)
        demo_env = {"MODQ_REDIS_URL": redis_url}
        worker = start_worker(demo_env, threads=threads, log_path=Path("var/demo-worker.log"))
        try:
            from tasks import moderate, moderate_many

            try:
                wait_for_worker(worker)
            except RuntimeError as exc:
                raise click.ClickException(f"{exc}; see var/demo-worker.log") from exc
            click.echo("worker up; moderating the sample set (mixed priorities)\n")
            header = (
                f"{'id':<14} {'prio':<7} {'decision':<7} {'cache':<5} {'ms':>8}  "
                "reasons (score ≥ threshold)"
            )
            for round_name in ("first pass", "same texts again (served by the cache)"):
                pending = [
                    (
                        p,
                        moderate.delay(
                            content_id=f"{cid}-{round_name[:5]}", content=text, priority=p
                        ),
                    )
                    for cid, p, text in SAMPLES
                ]
                click.echo(f"-- {round_name}\n{header}")
                for priority, async_result in pending:
                    click.echo(_row(async_result.get(timeout=60), priority))
                click.echo("")
            items = [
                {"content_id": f"bulk-{i}", "content": text}
                for i, (_, _, text) in enumerate(SAMPLES)
            ]
            many = moderate_many.delay(items=items, priority="bulk").get(timeout=60)
            counts: dict[str, int] = {}
            for result in many:
                counts[result["decision"]] = counts.get(result["decision"], 0) + 1
            click.echo(f"moderate_many: {len(many)} items in one message → {counts}")
            first = many[0]
            click.echo(
                f"model {first['model_name']} {first['model_version']}, "
                f"policy {first['policy_version']}; results stored in "
                f"{mask_url(settings.database_url)}"
            )
            from cli.api_demo import show_http_call

            show_http_call(settings.database_url)  # `modq api` and one curl call
        finally:
            stop_worker(worker)
