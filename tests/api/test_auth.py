"""API keys on a real uvicorn server: 401 without a valid key, 403 outside its scopes, and a
revoked key refused within the cache bound."""

from __future__ import annotations

import time

import pytest

import migrations
from api.auth import KeyAuthenticator, Principal, require_priority
from db.api_keys import ApiKeyRepository
from db.session import make_engine
from modq.errors import Forbidden
from modq.settings import get_settings
from tests.api.keys_support import call, keys_app, serving
from tests.polling import wait_until


def test_only_a_valid_bearer_key_gets_in(database_url):
    engine = make_engine(database_url)
    repository = ApiKeyRepository(engine)
    record, key = repository.create("shop", ["normal"])
    app = keys_app()
    app.state.key_authenticator = KeyAuthenticator(repository, cache_s=5)
    with serving(app) as base:
        status, _, body = call(f"{base}/whoami", key=key)
        assert status == 200 and body == {
            "key_id": record.key_id,
            "name": "shop",
            "priorities": ["normal"],
        }
        for headers in ({}, {"Authorization": key}, {"Authorization": "Basic abc"}):
            status, _, body = call(f"{base}/whoami", headers=headers)
            assert status == 401 and body["code"] == "unauthenticated", headers
            assert "missing API key" in body["message"]
        status, _, body = call(f"{base}/whoami", key=key[:-2] + "zz")
        assert (status, body["code"], body["message"]) == (
            401,
            "unauthenticated",
            "unknown or revoked API key",
        )
        assert key not in str(body)
    used = repository.lookup(key, touch=False)
    assert used is not None and used.last_used_at is not None
    engine.dispose()


def test_scopes_refuse_other_priorities_and_reviews(tmp_path):
    url = f"sqlite:///{tmp_path / 'keys.db'}"
    migrations.upgrade(url)
    repository = ApiKeyRepository(make_engine(url))
    _, bulk_only = repository.create("batch", ["bulk"])
    _, reviewer = repository.create(
        "moderators", ["urgent", "normal"], may_review=True, rate_limit_per_min=30
    )
    app = keys_app()
    app.state.key_authenticator = KeyAuthenticator(repository, cache_s=5)
    principal = app.state.key_authenticator.principal(reviewer)
    assert principal.may_review and principal.rate_limit_per_min == 30
    assert app.state.key_authenticator.principal(bulk_only).rate_limit_per_min is None
    with serving(app) as base:
        assert call(f"{base}/jobs/bulk", method="POST", key=bulk_only)[0] == 200
        for priority in ("urgent", "normal"):
            status, _, body = call(f"{base}/jobs/{priority}", method="POST", key=bulk_only)
            assert status == 403 and body["code"] == "forbidden" and body["priority"] == priority
        status, _, body = call(f"{base}/reviews", method="POST", key=bulk_only)
        assert status == 403 and body["code"] == "forbidden"
        assert call(f"{base}/reviews", method="POST", key=reviewer)[0] == 200
        assert call(f"{base}/jobs/urgent", method="POST", key=reviewer)[0] == 200
        assert call(f"{base}/jobs/bulk", method="POST", key=reviewer)[0] == 403


def test_require_priority_refuses_rather_than_downgrades():
    principal = Principal("k", "n", frozenset({"bulk"}), may_review=False)
    require_priority(principal, "bulk")
    with pytest.raises(Forbidden, match="allowed: bulk"):
        require_priority(principal, "urgent")


def test_a_revoked_key_stops_working_within_the_cache_bound(tmp_path, monkeypatch):
    """Settings only (no authenticator set on the app): the key store is MODQ_DATABASE_URL."""
    url = f"sqlite:///{tmp_path / 'keys.db'}"
    migrations.upgrade(url)
    monkeypatch.setenv("MODQ_DATABASE_URL", url)
    monkeypatch.setenv("MODQ_API_KEY_CACHE_S", "1.0")
    get_settings.cache_clear()
    repository = ApiKeyRepository(make_engine(url))
    record, key = repository.create("leaked", ["normal"])
    with serving(keys_app()) as base:
        assert call(f"{base}/whoami", key=key)[0] == 200
        repository.revoke(record.key_id)
        revoked_at = time.monotonic()
        wait_until(
            lambda: call(f"{base}/whoami", key=key)[0] == 401,
            timeout_s=5,
            message="a revoked key kept working",
        )
        assert time.monotonic() - revoked_at < 1.0 + 0.5  # the documented bound, plus slack
        revoked = call(f"{base}/whoami", key=key)
        unknown = call(f"{base}/whoami", key=key[:-2] + "zz")
        # one wording: a caller cannot tell a revoked key from one never issued
        assert revoked[0] == unknown[0] == 401
        wording = {"code": "unauthenticated", "message": "unknown or revoked API key"}
        assert revoked[2] == unknown[2] == wording
