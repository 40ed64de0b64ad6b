"""What a worker does with jobs it cannot serve: clear errors, retries, nothing silently lost."""

import time

import pytest

from modq.errors import InvalidContent
from tasks import app, moderate
from tests.workers import running_worker

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_a_missing_model_is_retried_not_dropped(database, tmp_path):
    env = {"MODQ_DATABASE_URL": database, "MODQ_MODEL_DIR": str(tmp_path / "no-model-here")}
    with running_worker(env, log_dir=tmp_path, threads=2, expect_model=False) as worker:
        job = moderate.delay(content_id="nomodel-1", content="waiting for a model")
        deadline = time.monotonic() + 60
        while job.state != "RETRY":
            assert time.monotonic() < deadline, f"job state {job.state}"
            time.sleep(0.1)
        assert worker.stats()["model_loaded"] is False
        log = worker.log.read_text()
    assert "model not loaded at start" in log and "modq model build" in log


def test_a_bad_message_that_bypassed_the_producer_fails_with_a_typed_error(
    model_dir, database, tmp_path
):
    with running_worker({"MODQ_DATABASE_URL": database}, log_dir=tmp_path, threads=2):
        raw = app.send_task(  # a foreign producer: no client-side validation
            "modq.moderate", kwargs={"content_id": "raw-1", "content": ""}, queue="normal"
        )
        with pytest.raises(InvalidContent, match="content is empty"):
            raw.get(timeout=60)
        assert raw.state == "FAILURE"  # final: not retried
