"""``POST /v1/moderations`` through OpenAI's own Python client, against a live uvicorn and a
real worker: its typed response must parse, and modq's categories land on OpenAI's names."""

from __future__ import annotations

import pytest
from openai import OpenAI, PermissionDeniedError, UnprocessableEntityError
from openai.types import ModerationCreateResponse

from api.openai_compat import MODQ_NAME, OPENAI_CATEGORIES, OPENAI_NAME, openai_result
from modq.categories import CANONICAL_CATEGORIES, SPAM
from tests.api.conftest import ApiServer, make_key

pytestmark = pytest.mark.integration


def _client(api_server: ApiServer, key: str) -> OpenAI:
    return OpenAI(base_url=f"{api_server.url}/v1", api_key=key, max_retries=0, timeout=30)


def test_the_mapping_names_only_openai_categories_and_every_modq_one_but_spam() -> None:
    assert set(OPENAI_NAME.values()) <= set(OPENAI_CATEGORIES)
    assert set(OPENAI_NAME) == set(CANONICAL_CATEGORIES) - {SPAM}
    assert len(MODQ_NAME) == len(OPENAI_NAME)  # one to one


def test_unscored_categories_are_null_and_listed_never_zero() -> None:
    result = {
        "content_id": "c",
        "decision": "flag",
        "scores": {"hate_speech": 0.9, "spam": 0.1},  # violence etc. not scored by this model
        "tripped": [{"category": "hate_speech", "score": 0.9, "threshold": 0.5, "action": "flag"}],
        "unscored_categories": ["violence"],
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
    mapped = openai_result(result)
    assert mapped.flagged is True
    assert mapped.categories["hate"] is True and mapped.category_scores["hate"] == 0.9
    assert mapped.categories["violence"] is None and mapped.category_scores["violence"] is None
    assert mapped.category_applied_input_types["violence"] == []
    assert set(mapped.unscored_categories) == set(OPENAI_CATEGORIES) - {"hate"}


def test_the_openai_client_parses_a_single_input(api_server: ApiServer, api_key: str) -> None:
    response = _client(api_server, api_key).moderations.create(
        input="I will find you and hurt you, you worthless idiot",
        model="omni-moderation-latest",
    )
    assert isinstance(response, ModerationCreateResponse)
    assert response.id.startswith("modr-")
    [result] = response.results
    scores = result.category_scores
    for attribute in ("harassment", "hate", "violence", "sexual", "self_harm"):
        value = getattr(scores, attribute)
        assert value is None or 0.0 <= value <= 1.0
    assert scores.hate_threatening is None  # modq does not score it: null, not 0
    assert result.categories.sexual_minors is None
    extra = result.model_extra or {}
    assert "hate/threatening" in extra["unscored_categories"]
    assert extra["modq"]["decision"] in ("allow", "flag", "remove")
    assert result.flagged == (extra["modq"]["decision"] != "allow")
    assert response.model == f"{extra['modq']['model_name']}:{extra['modq']['model_version']}"


def test_the_openai_client_parses_a_list_in_order(api_server: ApiServer, api_key: str) -> None:
    texts = ["have a lovely day", "buy cheap pills now!!! click here", "thanks for the help"]
    response = _client(api_server, api_key).moderations.create(input=texts)
    assert len(response.results) == 3
    ids = [(r.model_extra or {})["modq"]["content_id"] for r in response.results]
    assert ids == [f"{response.id}-{i}" for i in range(3)]
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
