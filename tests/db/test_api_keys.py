"""The API key store on SQLite and PostgreSQL: hashed keys, scopes, revocation."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text

from db.api_keys import ApiKeyRepository, hash_key
from db.models import ApiKeyRow
from db.session import make_engine, make_session_factory
from modq.errors import InvalidContent, StorageUnavailable


def test_a_key_is_stored_only_as_its_hash_and_found_by_it(database_url):
    engine = make_engine(database_url)
    repository = ApiKeyRepository(engine)
    record, key = repository.create("mobile app", ["urgent", "normal"], may_review=True)
    assert key.startswith(f"modq_{record.key_id}_") and len(key) > 50
    with engine.connect() as connection:
        dumped = " ".join(
            str(value)
            for row in connection.execute(text("SELECT * FROM api_keys"))
            for value in row
        )
    assert key not in dumped and key.split("_", 2)[2] not in dumped  # the secret is nowhere
    assert hash_key(key) in dumped

    found = repository.lookup(key)
    assert found is not None and found.key_id == record.key_id and found.active
    assert found.priorities == frozenset({"urgent", "normal"}) and found.may_review
    assert found.last_used_at is not None and found.created_at.tzinfo is not None
    assert found.rate_limit_per_min is None  # the server's limit
    _, slow_key = repository.create("crawler", ["bulk"], rate_limit_per_min=12.5)
    slow = repository.lookup(slow_key)
    assert slow is not None and slow.rate_limit_per_min == 12.5
    assert repository.lookup(key + "x") is None
    assert repository.lookup(f"modq_{record.key_id}_guess") is None  # the id alone is not a key
    engine.dispose()


def test_revoked_keys_stay_listed_and_are_found_revoked(database_url):
    engine = make_engine(database_url)
    repository = ApiKeyRepository(engine)
    first, first_key = repository.create("a", ["bulk"])
    second, _ = repository.create("b", ["normal"])
    assert repository.revoke(first.key_id) is True
    assert repository.revoke(first.key_id) is False  # already revoked
    assert repository.revoke("nope") is False
    listed = {r.key_id: r for r in repository.list()}
    assert set(listed) == {first.key_id, second.key_id}
    assert not listed[first.key_id].active and listed[second.key_id].active
    found = repository.lookup(first_key)
    assert found is not None and not found.active and found.last_used_at is None
    engine.dispose()


def test_each_key_is_unique(database_url):
    engine = make_engine(database_url)
    repository = ApiKeyRepository(engine)
    keys = {repository.create(f"k{i}", ["normal"])[1] for i in range(20)}
    assert len(keys) == 20
    with make_session_factory(engine)() as session:
        assert len(set(session.scalars(select(ApiKeyRow.key_sha256)).all())) == 20
    engine.dispose()


def test_bad_scopes_are_refused(tmp_path):
    import migrations

    url = f"sqlite:///{tmp_path / 'keys.db'}"
    migrations.upgrade(url)
    repository = ApiKeyRepository(make_engine(url))
    with pytest.raises(InvalidContent, match="unknown priorities"):
        repository.create("x", ["urgent", "asap"])
    with pytest.raises(InvalidContent, match="at least one"):
        repository.create("x", [])
    with pytest.raises(InvalidContent, match="name"):
        repository.create(" ", ["normal"])
    for rate in (-1.0, float("nan"), float("inf")):
        with pytest.raises(InvalidContent, match="rate limit"):
            repository.create("x", ["normal"], rate_limit_per_min=rate)
    assert repository.list() == []


def test_database_down_is_a_typed_error():
    engine = make_engine("postgresql+psycopg://postgres@127.0.0.1:1/nowhere?connect_timeout=2")
    with pytest.raises(StorageUnavailable):
        ApiKeyRepository(engine).lookup("modq_x_y")
