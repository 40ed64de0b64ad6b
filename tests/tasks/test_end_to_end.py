"""The whole path through a real worker process: delay() → queue → batch → model → policy →
SQL + cache → result. Runs once against SQLite and once against PostgreSQL."""

import uuid

import pytest

from db.results import ResultRepository
from db.session import make_engine
from modq.schemas import ModerationResult
from tasks import moderate, moderate_many
from tests.conftest import postgres_database
from tests.workers import flush_private_redis, running_worker

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def stack(request, model_dir, tmp_path_factory):
    """A migrated database and a worker process bound to it (one at a time)."""
    import contextlib

    import migrations

    flush_private_redis()
    root = tmp_path_factory.mktemp(f"e2e-{request.param}")
    with contextlib.ExitStack() as stack:
        if request.param == "sqlite":
            url = f"sqlite:///{root / 'results.db'}"
        else:
            url = stack.enter_context(postgres_database()).url
        migrations.upgrade(url)
        worker = stack.enter_context(
            running_worker(
                {"MODQ_DATABASE_URL": url, "MODQ_MAX_WAIT_MS": "10", "MODQ_MAX_BATCH_SIZE": "16"},
                log_dir=root,
                threads=16,
            )
        )
        engine = make_engine(url)
        stack.callback(engine.dispose)
        yield worker, ResultRepository(engine)
    flush_private_redis()


def _id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def test_delay_returns_a_full_result_that_is_stored(stack, model_dir):
    from gpu_worker.manifest import ModelManifest
    from modq.settings import get_settings
    from policy.carried import policy_for_model

    _, repository = stack
    content_id = _id("one")
    raw = moderate.delay(
        content_id=content_id,
        content="I will find you and break your legs",
        user_id="u-1",
        priority="normal",
    ).get(timeout=60)
    result = ModerationResult.from_dict(raw)
    assert result.content_id == content_id and result.user_id == "u-1"
    assert set(result.scores) == {"violence", "adult", "hate_speech", "harassment", "spam"}
    assert result.unscored_categories == ["self_harm"]
    assert result.model_name == ModelManifest.read(model_dir).name and result.model_version
    served = policy_for_model(  # the policy the model's folder carries (policy/carried.py)
        model_dir,
        ModelManifest.read(model_dir).version,
        configured=None,
        default=get_settings().policy_path,
    )
    assert served.mismatch is None
    assert result.policy_version == served.policy.version and result.cache_hit is False
    assert result.latency_ms > 0
    assert result.scores["violence"] > 0.5 and result.decision.value in {"flag", "remove"}
    assert any(r.category == "violence" for r in result.tripped)
    (row,) = repository.find(content_id)
    assert row.decision == result.decision.value and row.model_version == result.model_version


def test_decisions_separate_clear_cases(stack):
    clean = moderate.delay(
        content_id=_id("clean"), content="Thanks, the lemon cake recipe turned out great!"
    )
    spam = moderate.delay(
        content_id=_id("spam"),
        content=(
            "CONGRATULATIONS you won a $1000 gift card!!! claim now at bit.ly/prize-now, "
            "limited time offer"
        ),
    )
    assert clean.get(timeout=60)["decision"] == "allow"
    spam_result = spam.get(timeout=60)
    assert spam_result["decision"] in {"flag", "remove"}
    assert spam_result["tripped"][0]["category"] == "spam"


def test_moderate_many_returns_one_result_per_item_in_order(stack):
    _, repository = stack
    prefix = _id("many")
    items = [
        {"content_id": f"{prefix}-{i}", "content": f"bulk comment number {i} about cats"}
        for i in range(40)
    ]
    results = moderate_many.delay(items=items).get(timeout=120)
    assert [r["content_id"] for r in results] == [i["content_id"] for i in items]
    assert all(r["priority"] == "bulk" for r in results)
    assert repository.count(prefix) == 40


def test_a_repeated_text_never_reaches_the_model_again(stack):
    worker, repository = stack
    text = f"a unique sentence about gardening {uuid.uuid4().hex}"
    first = moderate.delay(content_id=_id("c1"), content=text).get(timeout=60)
    before = worker.stats()
    second = moderate.delay(content_id=_id("c2"), content=f"  {text}  ").get(timeout=60)
    after = worker.stats()
    assert first["cache_hit"] is False and second["cache_hit"] is True
    assert after["texts_scored"] == before["texts_scored"]  # the model never saw it
    assert after["cache_hits"] == before["cache_hits"] + 1
    assert second["scores"] == first["scores"] and second["decision"] == first["decision"]
    assert len(repository.find(second["content_id"])) == 1  # a hit is still recorded


def test_urgent_job_finishes_before_a_bulk_backlog_drains(stack):
    _, repository = stack
    prefix = _id("backlog")
    backlog = [
        moderate.delay(
            content_id=f"{prefix}-{i}",
            priority="bulk",
            content=f"bulk backlog item {i} " + "filler words " * (i % 20),
        )
        for i in range(400)
    ]
    urgent = moderate.delay(
        content_id=_id("urgent"),
        priority="urgent",
        content="urgent: a credible threat to hurt someone tonight",
    )
    urgent.get(timeout=120)
    done_when_urgent_finished = repository.count(prefix)
    for job in backlog:
        job.get(timeout=300)
    assert repository.count(prefix) == 400
    assert done_when_urgent_finished < 200, done_when_urgent_finished


def test_identical_texts_in_flight_reach_the_model_fewer_times_than_sent(stack):
    """In-batch de-duplication and the cache together (each alone: tests/gpu_worker)."""
    worker, _ = stack
    text = f"same text in flight {uuid.uuid4().hex[:8]}"  # one window (gpu_worker.windows)
    before = worker.stats()
    jobs = [moderate.delay(content_id=_id("dup"), content=text) for _ in range(8)]
    results = [j.get(timeout=60) for j in jobs]
    after = worker.stats()
    assert len({r["content_id"] for r in results}) == 8
    assert after["texts_scored"] - before["texts_scored"] < 8
    assert after["texts_scored"] - before["texts_scored"] >= 1


# benign filler written for this test; the threat sits at the end of a long post
LONG_FILLER = (
    "We walked along the river after lunch and counted the boats.\n\n"
    "The library opens at nine on weekdays and at ten on Saturdays.  "
    "My sister planted tomatoes, basil and two kinds of peppers this spring. "
)
THREAT = "I am going to find where you live and I will kill you."


def test_a_threat_at_the_end_of_a_long_post_is_caught_and_its_span_named(stack):
    _, repository = stack
    content = LONG_FILLER * 60 + THREAT  # ~2,000 words, blank lines and double spaces
    content_id = _id("long")
    result = ModerationResult.from_dict(
        moderate.delay(content_id=content_id, content=content).get(timeout=120)
    )
    assert result.decision.value in {"flag", "remove"}
    violence = next(r for r in result.tripped if r.category == "violence")
    start, end = violence.span
    # offsets into the content as sent (not the whitespace-collapsed text the model read)
    assert "kill you" in content[start:end] and end > content.index(THREAT)
    assert end - start < 400
    assert result.language == "en"
    (row,) = repository.find(content_id)
    assert row.language == "en"
    stored = next(r for r in row.tripped if r["category"] == "violence")
    assert stored["span"] == [start, end]
    again = ModerationResult.from_dict(
        moderate.delay(content_id=_id("long-again"), content=content).get(timeout=120)
    )
    assert again.cache_hit and again.tripped == result.tripped  # spans come back from the cache


def test_text_in_a_language_the_model_was_not_built_for_is_marked_not_allowed(stack):
    _, repository = stack
    content_id = _id("es")
    content = "Eres una persona horrible y todos en este barrio te odian, vete de aquí."
    result = ModerationResult.from_dict(
        moderate.delay(content_id=content_id, content=content).get(timeout=60)
    )
    assert result.language == "es"
    # the default policy's [language] rule, carried by the model's folder
    assert result.decision.value != "allow"
    assert any(r.category == "unsupported_language" for r in result.tripped)
    (row,) = repository.find(content_id)
    assert row.language == "es"
