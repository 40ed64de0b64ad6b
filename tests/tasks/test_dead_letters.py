"""The dead-letter queue (issue 12 part 8): jobs whose retryable error outlasted their retries
are parked with their attempts and first and last error, their callers see a typed FAILURE,
and `modq dlq retry` sends them again through the producer."""

from __future__ import annotations

import json

import pytest

from modq.broker.dead_letters import (
    EXHAUSTED,
    DeadLetter,
    get_dead_letters,
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
