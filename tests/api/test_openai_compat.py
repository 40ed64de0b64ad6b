"""``POST /v1/moderations`` through OpenAI's own Python client, against a live uvicorn and a
real worker: its types validate strictly, modq's categories land on OpenAI's names, and its
automatic retries never enqueue a list twice."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from openai import OpenAI, PermissionDeniedError, UnprocessableEntityError
from openai.types import ModerationCreateResponse
from redis import Redis

from api.jobs import KEY_PREFIX as JOB_RECORD_PREFIX
from api.models import TIMEOUT_S_MAX, sync_deadline_s
from api.openai_compat import MODQ_NAME, openai_result
from modq.categories import CANONICAL_CATEGORIES, OPENAI_CATEGORIES, OPENAI_NAME
from modq.settings import Settings
from tests.api.conftest import ApiServer, api_env, make_key, running_api

pytestmark = pytest.mark.integration


def _client(api_server: ApiServer, key: str, max_retries: int = 0) -> OpenAI:
    return OpenAI(base_url=f"{api_server.url}/v1", api_key=key, max_retries=max_retries, timeout=60)


def _result(decision: str, scores: dict[str, float], tripped: list[str]) -> dict[str, object]:
    return {
        "content_id": "c",
        "decision": decision,
        "scores": scores,
        "tripped": [
            {"category": c, "score": scores[c], "threshold": 0.5, "action": decision}
            for c in tripped
        ],
        "unscored_categories": [c for c in CANONICAL_CATEGORIES if c not in scores],
        "model_name": "m",
        "model_version": "1",
        "policy_version": "v1",
        "variant": None,
        "cache_hit": False,
        "latency_ms": 1.0,
        "content_sha256": "0" * 64,
        "created_at": "2026-01-01T00:00:00Z",
        "priority": "normal",
    }


def _strict(response: dict[str, object]) -> ModerationCreateResponse:
    """OpenAI's own type, validated (not the client's lenient construct)."""
    return ModerationCreateResponse.model_validate(response)


def test_the_mapping_names_only_openai_categories_and_every_modq_one() -> None:
    assert set(OPENAI_NAME.values()) <= set(OPENAI_CATEGORIES)
    assert set(OPENAI_NAME) == set(CANONICAL_CATEGORIES)  # spam too: onto illicit
    assert OPENAI_NAME["spam"] == "illicit"
    assert len(MODQ_NAME) == len(OPENAI_NAME)  # one to one


def test_unscored_categories_are_zero_false_and_listed() -> None:
    scores = {"hate_speech": 0.9, "spam": 0.1}  # violence etc. not scored by this model
    mapped = openai_result(_result("flag", scores, ["hate_speech"]))
    assert mapped.flagged is True
    assert mapped.categories["hate"] is True and mapped.category_scores["hate"] == 0.9
    assert mapped.category_scores["illicit"] == 0.1 and mapped.categories["illicit"] is False
    assert mapped.categories["violence"] is False and mapped.category_scores["violence"] == 0.0
    assert mapped.category_applied_input_types["violence"] == []
    assert set(mapped.unscored_categories) == set(OPENAI_CATEGORIES) - {"hate", "illicit"}
    body = {"id": "modr-1", "model": "m:1", "results": [mapped.model_dump(mode="json")]}
    strict = _strict(body).results[0]
    assert strict.category_scores.violence == 0.0 and strict.categories.violence is False


@pytest.mark.parametrize("category", CANONICAL_CATEGORIES)
@pytest.mark.parametrize("decision", ["flag", "remove"])
def test_a_flagged_result_always_has_a_true_category(category: str, decision: str) -> None:
    """Whatever category trips modq's decision (spam included), OpenAI's view shows it."""
    scores = dict.fromkeys(CANONICAL_CATEGORIES, 0.01) | {category: 0.99}
    mapped = openai_result(_result(decision, scores, [category]))
    assert mapped.flagged is True
    assert [name for name, on in mapped.categories.items() if on] == [OPENAI_NAME[category]]
    _strict({"id": "modr-1", "model": "m:1", "results": [mapped.model_dump(mode="json")]})


def test_the_model_card_names_the_openai_categories_with_no_model(
    model_dir: Path, tmp_path: Path
) -> None:
    from gpu_worker.manifest import ModelManifest
    from modq.categories import openai_unscored
    from training.card import write_model_card

    manifest = ModelManifest.read(model_dir)
    write_model_card(tmp_path / "MODEL_CARD.md", manifest, {})
    card = (tmp_path / "MODEL_CARD.md").read_text()
    unscored = openai_unscored(manifest.categories)
    assert "sexual/minors" in unscored and "illicit" not in unscored  # spam stands behind it
    for name in unscored:
        assert f"`{name}`" in card


def test_a_list_gets_a_deadline_it_can_meet() -> None:
    settings = Settings(api_result_timeout_s=10, api_result_timeout_per_item_s=0.1)
    assert sync_deadline_s(settings, 1, None) == 10
    assert sync_deadline_s(settings, 1_000, None) == pytest.approx(10 + 99.9)
    assert sync_deadline_s(settings, 1_000, 5.0) == 5.0  # a caller's own timeout_s wins
    assert sync_deadline_s(Settings(api_result_timeout_per_item_s=1), 1_000, None) == (
        TIMEOUT_S_MAX
    )


def test_the_openai_client_parses_a_single_input(api_server: ApiServer, api_key: str) -> None:
    raw = _client(api_server, api_key).moderations.with_raw_response.create(
        input="I will find you and hurt you, you worthless idiot",
        model="omni-moderation-latest",
    )
    response = _strict(raw.http_response.json())  # every score a number, every flag a bool
    assert raw.parse().id == response.id and response.id.startswith("modr-")
    [result] = response.results
    scores = result.category_scores
    for attribute in ("harassment", "hate", "violence", "sexual", "illicit"):
        assert 0.0 <= getattr(scores, attribute) <= 1.0
    extra = result.model_extra or {}
    unscored = extra["unscored_categories"]
    assert "hate/threatening" in unscored and scores.hate_threatening == 0.0
    assert result.categories.sexual_minors is False and "sexual/minors" in unscored
    assert extra["modq"]["decision"] in ("allow", "flag", "remove")
    assert result.flagged == (extra["modq"]["decision"] != "allow")
    if result.flagged:
        assert any(result.categories.model_dump().values())
    assert response.model == f"{extra['modq']['model_name']}:{extra['modq']['model_version']}"


def test_the_openai_client_parses_a_list_in_order(api_server: ApiServer, api_key: str) -> None:
    texts = ["have a lovely day", "WINNER!! claim your free prize now, txt WIN to 80086", "thanks"]
    raw = _client(api_server, api_key).moderations.with_raw_response.create(input=texts)
    response = _strict(raw.http_response.json())
    assert len(response.results) == 3
    ids = [(r.model_extra or {})["modq"]["content_id"] for r in response.results]
    assert ids == [f"{response.id}-{i}" for i in range(3)]
    for result in response.results:
        assert not result.flagged or any(result.categories.model_dump().values())
    spam = response.results[1]
    assert spam.category_scores.illicit == (spam.model_extra or {})["modq"]["scores"]["spam"]
    parts = _client(api_server, api_key).moderations.create(
        input=[{"type": "text", "text": "hello there"}]
    )
    assert len(parts.results) == 1


def test_the_openai_client_sees_typed_errors(
    api_server: ApiServer, api_key: str, api_database_url: str
) -> None:
    with pytest.raises(UnprocessableEntityError):
        _client(api_server, api_key).moderations.create(
            input=[{"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}]
        )
    bulk_only = make_key(api_database_url, ("bulk",), may_review=False)
    with pytest.raises(PermissionDeniedError):
        _client(api_server, bulk_only).moderations.create(input="hello")


def _job_records(key: str) -> int:
    """Jobs the API enqueued for ``key`` (one record per job, naming its key)."""
    key_id = key.split("_")[1]
    with Redis.from_url(os.environ["MODQ_REDIS_URL"]) as redis:
        names = list(redis.scan_iter(f"{JOB_RECORD_PREFIX}*"))
        records = [json.loads(raw) for raw in redis.mget(names) if raw] if names else []
    return sum(1 for record in records if record.get("key_id") == key_id)


def _fresh_texts(count: int) -> list[str]:
    run = uuid.uuid4().hex[:12]
    return [f"retried list {run}, item {i}: have a nice day" for i in range(count)]


@pytest.fixture(scope="module")
def impatient_api(
    api_worker: object, api_database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ApiServer]:
    """An API whose sync deadline (10 ms, nothing per item) no list can meet: every first
    attempt answers 503, so OpenAI's client retries."""
    env = api_env(
        api_database_url,
        MODQ_API_RESULT_TIMEOUT_S="0.01",
        MODQ_API_RESULT_TIMEOUT_PER_ITEM_S="0",
    )
    with running_api(env, log_dir=Path(tmp_path_factory.mktemp("api-impatient"))) as server:
        yield server


@pytest.mark.slow
def test_the_openai_clients_retries_enqueue_a_list_once(
    api_server: ApiServer, impatient_api: ApiServer, api_database_url: str
) -> None:
    """The client retries a 503 by itself (Retry-After: 1 s), sending no idempotency header:
    each retry attaches to the first attempt's work instead of enqueuing the list again, and
    one of them gets its answer. The jobs it leaves are those of one plain run."""
    once = make_key(api_database_url, ("normal",), may_review=False)
    _client(api_server, once).moderations.create(input=_fresh_texts(40))
    key = make_key(api_database_url, ("normal",), may_review=False)
    texts = _fresh_texts(40)  # not in the result cache: the worker moderates them
    raw = _client(impatient_api, key, max_retries=60).moderations.with_raw_response.create(
        input=texts
    )
    assert raw.retries_taken >= 1  # the first attempt did miss its deadline
    response = _strict(raw.http_response.json())
    assert len(response.results) == 40
    assert _job_records(key) == _job_records(once) >= 1


def test_an_idempotency_key_answers_a_repeat_without_running_it_again(
    api_server: ApiServer, api_database_url: str
) -> None:
    key = make_key(api_database_url, ("normal", "bulk"), may_review=False)
    body = {"input": ["first of two", "second of two"]}
    with api_server.client(key) as client:
        headers = {"Idempotency-Key": "order-4711"}
        first = client.post("/v1/moderations", json=body, headers=headers)
        enqueued = _job_records(key)
        again = client.post("/v1/moderations", json=body, headers=headers)
        other = client.post("/v1/moderations", json={"input": "another"}, headers=headers)
        assert _job_records(key) == enqueued >= 1  # the repeat enqueued nothing
        batch = {"items": [{"content": "x"}, {"content": "y"}]}
        batch_headers = {"Idempotency-Key": "batch-1"}
        batches = [
            client.post("/v1/moderate/batch", json=batch, headers=batch_headers) for _ in range(2)
        ]
        single = [
            client.post("/v1/moderate", json={"content": "one"}, headers={"Idempotency-Key": "s"})
            for _ in range(2)
        ]
    assert first.status_code == again.status_code == 200, (first.text, again.text)
    assert again.json() == first.json()  # the same answer, same id
    assert other.status_code == 422 and other.json()["field"] == "Idempotency-Key"
    assert [r.status_code for r in batches + single] == [200] * 4
    assert batches[0].json() == batches[1].json()
    assert single[0].json() == single[1].json()


@pytest.mark.slow
@pytest.mark.long
def test_a_list_of_1000_strings_meets_its_deadline(api_server: ApiServer, api_key: str) -> None:
    """The issue's case, with the API's default deadline and the client's default retries: a
    1,000-string list is answered (it waited 10 s and failed 3 times before)."""
    texts = [f"list item number {i}: thanks for the order, see you soon" for i in range(1_000)]
    client = OpenAI(base_url=f"{api_server.url}/v1", api_key=api_key, timeout=300)
    raw = client.moderations.with_raw_response.create(input=texts)
    response = _strict(raw.http_response.json())
    assert len(response.results) == 1_000
