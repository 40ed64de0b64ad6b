"""`record_review` through a real worker: stored, idempotent, typed errors for bad input."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from redis import Redis

import migrations
from db.results import ResultRepository
from db.reviews import ReviewRepository
from db.session import make_engine
from modq.errors import InvalidReview, UnknownContent
from tasks import record_review
from tests.conftest import postgres_database
from tests.factories import make_result
from tests.workers import flush_private_redis, running_worker, wait_for_retry

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_reviews_from_apps(database: str, tmp_path, redis_url: str) -> None:  # type: ignore[no-untyped-def]
    engine = make_engine(database)
    ResultRepository(engine).store(make_result("rev-1"))
    reviews = ReviewRepository(engine)
    with running_worker({"MODQ_DATABASE_URL": database}, log_dir=tmp_path, threads=2):
        stored = record_review.delay(content_id="rev-1", label="violation", reviewer="ana")
        assert stored.get(timeout=60) == {
            "content_id": "rev-1", "new": 1, "unchanged": 0, "changed": 0,
        }  # fmt: skip
        again = record_review.delay(content_id="rev-1", label="violation").get(timeout=60)
        assert again["unchanged"] == 1
        when = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)  # a datetime travels as one
        per_category = record_review.delay(
            content_id="rev-1", labels={"spam": "no", "harassment": True}, reviewed_at=when
        ).get(timeout=60)
        assert per_category["new"] == 2
        corrected = record_review.delay(content_id="rev-1", labels={"spam": "yes"})
        assert corrected.get(timeout=60)["changed"] == 1

        unknown = record_review.delay(content_id="never-moderated", label="safe")
        with pytest.raises(UnknownContent, match="never-moderated"):
            unknown.get(timeout=60)
        assert unknown.state == "FAILURE"  # final: a typed error, not retried forever

        depth_before = Redis.from_url(redis_url).llen("normal")
        with pytest.raises(InvalidReview, match="'perhaps' is not a label"):
            record_review.delay(content_id="rev-1", label="perhaps")
        with pytest.raises(InvalidReview, match="unknown category"):
            record_review.delay(content_id="rev-1", labels={"gore": "yes"})
        assert Redis.from_url(redis_url).llen("normal") == depth_before  # nothing enqueued
    assert reviews.labels_for(["rev-1", "never-moderated"]) == {"rev-1": True}
    stored = {o.category: o for o in reviews.outcomes("rev-1")}
    assert stored["any"].reviewer == "ana" and stored["any"].source == "task"
    assert stored["harassment"].reviewed_at == when
    assert stored["spam"].violation is True and stored["spam"].reviewed_at is None
    engine.dispose()


def test_a_review_waits_out_a_database_outage(tmp_path) -> None:  # type: ignore[no-untyped-def]
    flush_private_redis()
    with postgres_database(create=False) as database:  # no database yet: that is the outage
        with running_worker({"MODQ_DATABASE_URL": database.url}, log_dir=tmp_path, threads=2):
            job = record_review.delay(content_id="outage-rev", label="violation")
            wait_for_retry(job)  # StorageUnavailable → retried with backoff
            database.create()
            migrations.upgrade(database.url)
            engine = make_engine(database.url)
            ResultRepository(engine).store(make_result("outage-rev"))
            assert job.get(timeout=90)["new"] == 1
        assert ReviewRepository(engine).labels_for(["outage-rev"]) == {"outage-rev": True}
        engine.dispose()
    flush_private_redis()
