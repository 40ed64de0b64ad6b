"""The dead-letter queue (issue 12 part 8): jobs whose retryable error outlasted their retries
are parked with their attempts and first and last error, their callers see a typed FAILURE,
and `modq dlq retry` sends them again through the producer."""

from __future__ import annotations

import base64
import json
import time

import pytest
from redis import Redis

from modq.broker.dead_letters import (
    ENTRIES_KEY,
    EXHAUSTED,
    INDEX_KEY,
    DeadLetter,
    DeadLetters,
    get_dead_letters,
    poison_entry,
    read_raw,
)
from modq.errors import ModelUnavailable, UnknownJob
from tasks import app, moderate
from tests.cli.runner import modq
from tests.polling import wait_until
from tests.workers import running_worker

# retries spent in about two seconds: a job out of retries without a ten-minute wait
SHORT_RETRIES = {
    "MODQ_RETRY_BUDGET_S": "1",
    "MODQ_RETRY_DELAY_BASE_S": "0.05",
    "MODQ_RETRY_DELAY_MAX_S": "0.2",
}


@pytest.fixture
def store(redis_url):
    dead_letters = get_dead_letters()
    dead_letters.purge()
    yield dead_letters
    dead_letters.purge()


def test_an_entry_is_stored_listed_oldest_first_and_removed(store):
    first = DeadLetter(kind="poison", reason="bad_envelope", error="ValueError: x", queue="normal")
    second = DeadLetter(
        kind=EXHAUSTED, reason="storage_unavailable", error="db down", parked_at_s=2e9
    )
    store.park(second)
    store.park(first)
    assert [e.id for e in store.entries()] == [first.id, second.id] and store.size() == 2
    assert store.get(first.id).summary() == first.summary()
    assert "message" not in first.summary()
    assert store.remove(first.id) and not store.remove(first.id)
    with pytest.raises(UnknownJob):
        store.get(first.id)
    assert store.purge() == 1 and store.size() == 0


def test_the_first_retryable_error_of_a_job_is_kept_until_it_ends(store):
    store.note_attempt("job-1", "StorageUnavailable: first")
    store.note_attempt("job-1", "StorageUnavailable: second")
    error, at_s = store.first_attempt("job-1")
    assert error == "StorageUnavailable: first" and at_s > 0
    assert store.first_attempt("job-1") is None  # forgotten once read


def test_a_raw_message_that_is_not_json_is_read_as_far_as_it_goes():
    assert read_raw(b"\xffnot json").problem.startswith("not JSON")
    assert read_raw(b'{"headers": {"id": "a", "task": "t"}, "body": "x"}').task_id == "a"
    lua_only = read_raw(b'{"headers": {"id": "b", "task": "t", "x": nan}, "body": "x"}')
    assert (lua_only.task_id, lua_only.task) == ("b", "t")  # its caller can be answered


def test_reading_a_raw_message_never_raises_however_deep_it_nests():
    """``read_raw`` is the dead-letter path's reader: a ``RecursionError`` out of it killed the
    worker that was parking the message."""
    deep = b"[" * 5_000 + b"]" * 5_000
    assert read_raw(deep).problem.startswith("not JSON: RecursionError")
    body = base64.b64encode(deep).decode()
    envelope = {"headers": {"id": "c"}, "properties": {"body_encoding": "base64"}, "body": body}
    job = read_raw(json.dumps(envelope))
    assert job.task_id == "c" and job.problem.startswith("body does not decode: RecursionError")


def test_an_entry_keeps_at_most_its_cap_of_the_message_and_says_how_big_it_was(redis_url):
    store = DeadLetters(Redis.from_url(redis_url), max_entry_bytes=1_024)
    store.client.delete(ENTRIES_KEY, INDEX_KEY)
    big = b'{"body": "' + b"x" * 5_000 + b'"}'
    entry_id = store.park(poison_entry(big, queue="normal", reason="t", error="e"))
    kept = store.get(entry_id)
    assert kept.truncated and kept.message_bytes == len(big)
    assert kept.raw() == big[:1_024] and len(store.client.hget(ENTRIES_KEY, entry_id)) < 2_048
    store.purge()


def test_the_store_keeps_the_newest_entries_within_its_count_and_age(redis_url):
    """A flood of poison cannot grow Redis without limit: the oldest beyond the count and
    every entry past the age are dropped as new ones are parked."""
    store = DeadLetters(Redis.from_url(redis_url), max_entries=3, max_age_s=3_600)
    store.purge()
    now = time.time()
    stale = DeadLetter(kind="poison", reason="t", error="e", parked_at_s=now - 7_200)
    store.park(stale)
    assert store.size() == 0  # past the age at once
    parked = [
        store.park(DeadLetter(kind="poison", reason="t", error="e", parked_at_s=now + i))
        for i in range(5)
    ]
    assert store.ids() == parked[-3:]
    assert store.client.hlen(ENTRIES_KEY) == 3
    store.purge()


@pytest.mark.slow
def test_a_job_out_of_retries_is_dead_lettered_its_caller_sees_failure_and_it_can_be_retried(
    model_dir, database, tmp_path, store
):
    env = {"MODQ_DATABASE_URL": database, "MODQ_MODEL_DIR": str(tmp_path / "no-model")}
    with running_worker({**env, **SHORT_RETRIES}, log_dir=tmp_path, threads=2, expect_model=False):
        job = moderate.delay(content_id="dlq-1", content="retried until it gives up")
        with pytest.raises(ModelUnavailable):
            job.get(timeout=90)
        assert job.state == "FAILURE"
        (entry,) = wait_until(lambda: list(store.entries()), timeout_s=10, message="not parked")

    assert (entry.kind, entry.task, entry.task_id) == (EXHAUSTED, "modq.moderate", job.id)
    assert entry.attempts > 2 and entry.queue == "normal"
    assert entry.first_error.startswith("ModelUnavailable") and entry.last_at_s >= entry.first_at_s
    assert json.loads(entry.message)["kwargs"]["content_id"] == "dlq-1"

    status, output = modq("dlq", "retry", entry.id)
    assert status == 0, output
    assert store.size() == 0
    with running_worker({"MODQ_DATABASE_URL": database}, log_dir=tmp_path, threads=2):
        result = app.AsyncResult(job.id).get(timeout=60)  # the same id, served this time
    assert result["content_id"] == "dlq-1"
