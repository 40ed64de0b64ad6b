"""`record_review` through a real worker: stored, idempotent, typed errors for bad input."""

from __future__ import annotations

import pytest
from redis import Redis

from db.results import ResultRepository
from db.reviews import ReviewRepository
from db.session import make_engine
from modq.errors import InvalidReview, UnknownContent
from tasks import record_review
from tests.factories import make_result
from tests.workers import running_worker

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
        per_category = record_review.delay(
            content_id="rev-1", labels={"spam": "no", "harassment": True}
        ).get(timeout=60)
        assert per_category["new"] == 2

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
    assert reviews.outcomes("rev-1")[0].reviewer == "ana"
    engine.dispose()
