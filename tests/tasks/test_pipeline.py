"""The worker-side pipeline in-process: real model, real Redis cache, real database."""

import uuid

import pytest

from modq.schemas import Priority, validate_request
from modq.settings import Settings
from tasks.pipeline import ModerationPipeline

pytestmark = pytest.mark.integration


def _request(text, content_id=None):
    return validate_request(
        content_id=content_id or uuid.uuid4().hex,
        content=text,
        priority=Priority.NORMAL,
        max_content_chars=20_000,
    )


@pytest.fixture
def settings_for(model_dir, database_url, redis_url, tmp_path):
    prefix = f"modq-test:{uuid.uuid4().hex[:8]}:"

    def make(policy_path=None, **overrides):
        fields = {
            "model_dir": model_dir,
            "database_url": database_url,
            "redis_url": redis_url,
            "cache_key_prefix": prefix,
            "cache_lru_items": 0,
            **overrides,
        }
        if policy_path is not None:
            fields["policy_path"] = policy_path
        return Settings(**fields)

    yield make
    from redis import Redis

    client = Redis.from_url(redis_url)
    for key in client.scan_iter(f"{prefix}*"):
        client.delete(key)
    client.close()


@pytest.fixture
def pipelines():
    made = []

    def make(settings):
        made.append(ModerationPipeline(settings))
        return made[-1]

    yield make
    for pipeline in made:
        pipeline.close()


def test_a_new_policy_version_misses_the_cache(settings_for, pipelines, tmp_path):
    text = f"you are all idiots {uuid.uuid4().hex[:8]}"  # one window (gpu_worker.windows)
    v1 = pipelines(settings_for())
    (first,) = v1.moderate([_request(text)])
    (again,) = v1.moderate([_request(text)])
    assert (first.cache_hit, again.cache_hit) == (False, True)

    stricter = tmp_path / "v2.toml"
    stricter.write_text('version = "v2-strict"\n[categories.harassment]\nremove = 0.01\n')
    v2 = pipelines(settings_for(policy_path=stricter))
    scored_before = v2.engine().backend.texts_scored
    (under_v2,) = v2.moderate([_request(text)])
    assert under_v2.cache_hit is False and under_v2.policy_version == "v2-strict"
    assert v2.engine().backend.texts_scored == scored_before + 1
    assert under_v2.decision.value == "remove"


def test_results_are_stored_before_the_call_returns(settings_for, pipelines):
    pipeline = pipelines(settings_for())
    requests = [_request(f"stored text {i}") for i in range(5)]
    results = pipeline.moderate(requests)
    for request, result in zip(requests, results, strict=True):
        (row,) = pipeline.results.find(request.content_id)
        assert row.decision == result.decision.value
