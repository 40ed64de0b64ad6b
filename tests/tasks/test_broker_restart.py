"""A redis-server (AOF) killed and restarted under load: producers send, callers wait in
``.get()``, a real worker stores rows in SQL (issue 12, part 2).

Before: every caller blocked in ``.get()`` got ``RuntimeError: Retry limit exceeded while
trying to reconnect to the Celery result store backend`` once Redis was down for more than
5 s. Now: 0 lost, 0 duplicate rows, and no caller error outside the documented window
(``BrokerUnavailable`` while Redis is down, and for ``MODQ_PUBLISH_RETRY_S`` after).
The scenario is ``bench.faults.redis_restart``, the same one ``make faults`` runs.
"""

from __future__ import annotations

import pytest

from bench.faults.redis_restart import FULL, Load, scenario

pytestmark = [pytest.mark.integration]

# down longer than stock Celery's 5 s of result-store reconnect tries
FAST = Load(jobs=150, producers=2, send_s=4, down_s=7, wait_s=45)


def _assert_nothing_lost(row, tmp_path, jobs):  # type: ignore[no-untyped-def]
    load_log = "".join(p.read_text() for p in tmp_path.glob("load-*.log"))
    assert "Retry limit exceeded" not in load_log
    assert row.sent == jobs, row
    assert row.extra["queued_at_kill"] > 0, row  # the AOF kept a backlog, not an empty queue
    assert (row.lost, row.duplicated, row.caller_errors) == (0, 0, 0), row
    assert row.stored == jobs, row


def test_callers_and_producers_ride_out_a_redis_restart(model_dir, tmp_path):
    row = scenario(tmp_path, "aof", FAST)
    _assert_nothing_lost(row, tmp_path, FAST.jobs)


@pytest.mark.long
@pytest.mark.slow
def test_a_long_redis_restart_under_full_load_loses_nothing(model_dir, tmp_path):
    row = scenario(tmp_path, "aof", FULL)
    _assert_nothing_lost(row, tmp_path, FULL.jobs)


@pytest.mark.long
@pytest.mark.slow
def test_a_volatile_redis_loses_the_queued_jobs_on_restart(model_dir, tmp_path):
    """Why a worker refuses a Redis with neither AOF nor RDB (docs/redis.md): the restart
    empties the queues and the unacked set, and those callers wait in vain."""
    row = scenario(tmp_path, "none", FAST)
    assert row.extra["queued_at_kill"] > 0, row  # the scenario queues a backlog first
    assert row.lost >= row.extra["queued_at_kill"], row  # every queued job is gone
    assert row.duplicated == 0, row
