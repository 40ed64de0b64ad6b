"""A database that is down when the job runs: the job is retried, not lost, and stored once
when the database comes back."""

import time
import uuid

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

import migrations
from db.results import ResultRepository
from db.session import make_engine
from tasks import moderate
from tests.conftest import POSTGRES_ADMIN_URL
from tests.workers import flush_private_redis, running_worker

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_job_waits_out_a_database_outage_and_is_stored_once(model_dir, tmp_path):
    flush_private_redis()
    name = f"modq_test_late_{uuid.uuid4().hex[:8]}"  # does not exist yet: the "outage"
    url = make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with running_worker({"MODQ_DATABASE_URL": url}, log_dir=tmp_path, threads=4):
            job = moderate.delay(content_id="outage-1", content="stored after the outage")
            deadline = time.monotonic() + 60
            while job.state != "RETRY":  # StorageUnavailable → retried with backoff
                assert time.monotonic() < deadline, f"job state {job.state}"
                assert job.state == "PENDING", f"job state {job.state}"
                time.sleep(0.1)

            with admin.connect() as connection:
                connection.execute(text(f'CREATE DATABASE "{name}"'))
            migrations.upgrade(url)
            result = job.get(timeout=90)  # the retry (backoff) finds the database back
        assert result["content_id"] == "outage-1"
        engine = make_engine(url)
        assert len(ResultRepository(engine).find("outage-1")) == 1
        engine.dispose()
    finally:
        with admin.connect() as connection:
            connection.execute(
                text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"),
                {"n": name},
            )
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()
        flush_private_redis()
