"""A database that is down when the job runs: the job is retried, not lost, and stored once
when the database comes back."""

import pytest

import migrations
from db.results import ResultRepository
from db.session import make_engine
from tasks import moderate
from tests.conftest import postgres_database
from tests.workers import flush_private_redis, running_worker, wait_for_retry

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_job_waits_out_a_database_outage_and_is_stored_once(model_dir, tmp_path):
    flush_private_redis()
    # the database does not exist yet: that is the outage
    with postgres_database(create=False) as database:
        with running_worker({"MODQ_DATABASE_URL": database.url}, log_dir=tmp_path, threads=4):
            job = moderate.delay(content_id="outage-1", content="stored after the outage")
            wait_for_retry(job)  # StorageUnavailable → retried with backoff

            database.create()
            migrations.upgrade(database.url)
            result = job.get(timeout=90)  # the retry (backoff) finds the database back
        assert result["content_id"] == "outage-1"
        engine = make_engine(database.url)
        assert len(ResultRepository(engine).find("outage-1")) == 1
        engine.dispose()
    flush_private_redis()
