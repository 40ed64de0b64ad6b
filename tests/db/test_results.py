from datetime import UTC, datetime

import pytest
from sqlalchemy import inspect

from db.results import ResultRepository
from db.session import make_engine
from modq.errors import StorageUnavailable
from modq.schemas import Decision, ModerationResult, Reason


def _result(content_id="c1", model_version="1", policy_version="v1", decision=Decision.FLAG):
    return ModerationResult(
        content_id=content_id,
        decision=decision,
        scores={"spam": 0.7, "violence": 0.1},
        tripped=[Reason("spam", 0.7, 0.63, Decision.FLAG)],
        unscored_categories=["self_harm"],
        model_name="m",
        model_version=model_version,
        policy_version=policy_version,
        variant=None,
        cache_hit=False,
        latency_ms=3.2,
        content_sha256="ab" * 32,
        created_at=datetime.now(UTC).isoformat(),
    )


def test_migrations_create_the_results_table(database_url):
    engine = make_engine(database_url)
    tables = inspect(engine).get_table_names()
    assert "moderation_results" in tables and "alembic_version" in tables
    engine.dispose()


def test_storing_is_idempotent_on_content_model_and_policy(database_url):
    engine = make_engine(database_url)
    repository = ResultRepository(engine)
    assert repository.store(_result()) is True
    assert repository.store(_result(decision=Decision.REMOVE)) is False  # redelivery: no dup
    assert repository.store(_result(model_version="2")) is True
    assert repository.store(_result(policy_version="v2")) is True
    rows = repository.find("c1")
    assert len(rows) == 3
    first = next(r for r in rows if r.model_version == "1" and r.policy_version == "v1")
    assert first.decision == "flag" and first.scores["spam"] == 0.7
    assert first.tripped[0]["category"] == "spam"
    engine.dispose()


def test_store_many_counts_only_new_rows(database_url):
    engine = make_engine(database_url)
    repository = ResultRepository(engine)
    batch = [_result(f"m{i}") for i in range(5)]
    assert repository.store_many(batch) == 5
    assert repository.store_many([*batch, _result("m5")]) == 1
    assert repository.count("m") == 6
    engine.dispose()


def test_database_down_is_a_typed_error():
    engine = make_engine("postgresql+psycopg://postgres@127.0.0.1:1/nowhere?connect_timeout=2")
    with pytest.raises(StorageUnavailable, match="database unavailable"):
        ResultRepository(engine).store(_result())
