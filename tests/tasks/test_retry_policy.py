"""One retry policy for every task, whose delays can never add up to less than the budget."""

from __future__ import annotations

import random

import pytest

from modq.errors import RETRYABLE
from tasks.retry_policy import JITTER, RetrySchedule, current_schedule, describe

DEFAULT = RetrySchedule(base_s=1.0, max_s=60.0, budget_s=600.0)


def test_default_schedule_covers_a_ten_minute_outage_even_at_its_shortest() -> None:
    assert DEFAULT.max_retries == 25
    assert [DEFAULT.nominal_s(n) for n in range(8)] == [1, 2, 4, 8, 16, 32, 60, 60]
    assert DEFAULT.shortest_total_s() >= 600.0
    assert round(DEFAULT.longest_total_s()) == 1203
    assert DEFAULT.longest_delay_s() == 60.0
    assert describe(DEFAULT).startswith("25 retries")


@pytest.mark.parametrize("seed", range(20))
def test_no_draw_collapses_the_schedule(seed: int) -> None:
    """Celery's full jitter can draw every delay near zero; equal jitter never goes below half."""
    rng = random.Random(seed)
    delays = [DEFAULT.delay_s(n, rng.random) for n in range(DEFAULT.max_retries)]
    for n, delay in enumerate(delays):
        assert DEFAULT.nominal_s(n) * (1 - JITTER) <= delay <= DEFAULT.nominal_s(n)
    assert sum(delays) >= 600.0
    worst = [DEFAULT.delay_s(n, lambda: 1.0) for n in range(DEFAULT.max_retries)]
    assert sum(worst) >= 600.0  # the draw at its most unlucky


def test_celery_default_policy_could_not_cover_five_minutes() -> None:
    """What the three copies of the old policy did: 10 retries, full jitter, 60 s cap."""
    from celery.utils.time import get_exponential_backoff_interval

    random.seed(7)
    totals = [
        sum(get_exponential_backoff_interval(1, n, 60, full_jitter=True) for n in range(10))
        for _ in range(200)
    ]
    assert min(totals) < 300  # the failure the issue saw: retries spent inside the outage
    assert current_schedule().shortest_total_s() >= 300


def test_a_shorter_budget_comes_from_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODQ_RETRY_BUDGET_S", "10")
    monkeypatch.setenv("MODQ_RETRY_DELAY_MAX_S", "4")
    from modq.settings import get_settings

    get_settings.cache_clear()
    schedule = current_schedule()
    assert schedule.budget_s == 10 and schedule.max_s == 4
    assert schedule.shortest_total_s() >= 10
    from tasks.moderate import moderate

    assert moderate.max_retries == schedule.max_retries  # read when the task retries


def test_every_task_uses_the_one_policy() -> None:
    from tasks.moderate import moderate, moderate_many
    from tasks.reviews import record_review
    from tasks.shadow import moderate_shadow

    for task in (moderate, moderate_many, record_review, moderate_shadow):
        assert task.autoretry_for == RETRYABLE, task.name
        assert not task.retry_backoff, task.name  # the schedule, not Celery's full jitter
        assert task.max_retries == current_schedule().max_retries, task.name
        assert 0.5 <= task.default_retry_delay <= 1.0, task.name  # first retry: base 1 s


# --- a real worker, a real PostgreSQL behind a proxy: the budget from the settings ----------

SHORT_BUDGET = {"MODQ_RETRY_BUDGET_S": "12", "MODQ_RETRY_DELAY_MAX_S": "4"}
SHORT = RetrySchedule(base_s=1.0, max_s=4.0, budget_s=12.0)


@pytest.mark.long
@pytest.mark.integration
@pytest.mark.slow
def test_jobs_outlive_an_outage_shorter_than_the_budget_and_fail_typed_after_it(
    model_dir, tmp_path
) -> None:
    """Breaker off, so the retry schedule alone carries the jobs: a 10 s outage inside a 12 s
    budget loses nothing; a lasting one fails each job with StorageUnavailable once the budget
    is spent (not before, and not long after)."""
    import time

    from sqlalchemy.engine import make_url

    import migrations
    from bench.faults.tcp_proxy import tcp_proxy
    from db.session import make_engine
    from tasks import moderate
    from tests.conftest import postgres_database
    from tests.polling import wait_until
    from tests.workers import flush_private_redis, running_worker

    flush_private_redis()
    with postgres_database() as database:
        migrations.upgrade(database.url)
        real = make_url(database.url)
        with tcp_proxy(real.host or "127.0.0.1", real.port or 5432) as proxy:
            proxied = real.set(host="127.0.0.1", port=proxy.port).render_as_string(False)
            env = {
                **SHORT_BUDGET,
                "MODQ_DATABASE_URL": proxied,
                "MODQ_STORAGE_BREAKER_FAILURES": "0",
            }
            with running_worker(env, log_dir=tmp_path, threads=4):
                proxy.stop()
                jobs = [moderate.delay(content_id=f"rp-{i}", content=str(i)) for i in range(20)]
                wait_until(
                    lambda: any(job.state == "RETRY" for job in jobs),
                    timeout_s=30,
                    message="no job retried",
                )
                time.sleep(10)  # the outage
                proxy.resume()
                for job in jobs:
                    assert job.get(timeout=90)["content_id"].startswith("rp-")

                proxy.stop()  # now a lasting outage
                started = time.monotonic()
                doomed = moderate.delay(content_id="rp-doomed", content="never stored")
                wait_until(lambda: doomed.state == "FAILURE", timeout_s=90, message="never failed")
                elapsed_s = time.monotonic() - started
        engine = make_engine(database.url)
        with engine.connect() as connection:
            rows = connection.exec_driver_sql(
                "SELECT content_id, count(*) FROM moderation_results GROUP BY content_id"
            ).all()
        engine.dispose()
    flush_private_redis()
    assert dict(rows) == {f"rp-{i}": 1 for i in range(20)}
    assert type(doomed.result).__name__ == "StorageUnavailable"  # typed, after the budget
    assert SHORT.shortest_total_s() <= elapsed_s <= SHORT.longest_total_s() + 15, elapsed_s
