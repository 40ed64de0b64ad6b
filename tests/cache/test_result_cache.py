import uuid

import pytest
from redis import Redis

from cache import ResultCache, cache_key, content_sha256, normalize_content


@pytest.fixture
def client(redis_url):
    client = Redis.from_url(redis_url)
    yield client
    client.close()


def test_normalization_makes_equivalent_texts_share_a_key():
    a = normalize_content("Caf\u0065\u0301  is\n open ")
    b = normalize_content("Café is open")
    assert a == b == "Café is open"
    assert content_sha256(a) == content_sha256(b)


def test_key_changes_with_model_and_policy_versions():
    digest = content_sha256("hello")
    base = cache_key("p:", digest, "m", "1", "v1")
    assert base != cache_key("p:", digest, "m", "2", "v1")
    assert base != cache_key("p:", digest, "m", "1", "v2")
    assert base != cache_key("p:", content_sha256("hello!"), "m", "1", "v1")


def test_redis_round_trip_with_ttl_and_counters(client):
    cache = ResultCache(client, ttl_s=60, lru_items=0)
    key = f"test:{uuid.uuid4().hex}"
    assert cache.get(key) is None
    cache.set(key, {"scores": {"spam": 0.5}})
    assert 0 < client.ttl(key) <= 60
    assert cache.get(key) == {"scores": {"spam": 0.5}}
    assert (cache.stats.misses, cache.stats.hits_redis, cache.stats.hits_local) == (1, 1, 0)
    client.delete(key)


def test_local_lru_answers_without_redis(client):
    cache = ResultCache(client, ttl_s=60, lru_items=10)
    key = f"test:{uuid.uuid4().hex}"
    cache.set(key, {"scores": {"spam": 0.1}})
    client.delete(key)  # only the in-process copy is left
    assert cache.get(key) == {"scores": {"spam": 0.1}}
    assert cache.stats.hits_local == 1


def test_a_redis_outage_degrades_to_misses():
    dead = Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    cache = ResultCache(dead, ttl_s=60, lru_items=0)
    cache.set("k", {"scores": {}})
    assert cache.get("k") is None
    assert cache.stats.errors == 2


def test_get_many_mixes_local_redis_and_misses_in_key_order(client):
    cache = ResultCache(client, ttl_s=60, lru_items=10)
    keys = [f"test:{uuid.uuid4().hex}" for _ in range(3)]
    cache.set_many({keys[0]: {"scores": {"spam": 0.1}}, keys[1]: {"scores": {"spam": 0.2}}})
    fresh = ResultCache(client, ttl_s=60, lru_items=10)  # empty LRU: keys[1] comes from Redis
    fresh.set(keys[0], {"scores": {"spam": 0.1}})
    assert fresh.get_many(keys) == [{"scores": {"spam": 0.1}}, {"scores": {"spam": 0.2}}, None]
    assert (fresh.stats.hits_local, fresh.stats.hits_redis, fresh.stats.misses) == (1, 1, 1)
    assert all(0 < client.ttl(k) <= 60 for k in keys[:2])
    client.delete(*keys)
