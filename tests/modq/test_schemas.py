import pytest

from modq.errors import InvalidContent, ModerationError, UnsupportedContentType
from modq.schemas import (
    ContentType,
    Decision,
    ModerationResult,
    Priority,
    Reason,
    validate_request,
)


def _validate(**fields):
    base = {"content_id": "c1", "content": "hello", "max_content_chars": 50}
    return validate_request(**{**base, **fields})


def test_valid_request_round_trips_to_a_json_message():
    request = _validate(user_id="u1", context={"app": "forum"}, priority="urgent")
    assert request.priority is Priority.URGENT and request.content_type is ContentType.TEXT
    assert request.to_message() == {
        "content_id": "c1",
        "content": "hello",
        "content_type": "text",
        "user_id": "u1",
        "context": {"app": "forum"},
        "priority": "urgent",
    }


@pytest.mark.parametrize(
    "fields, error, field",
    [
        ({"content": ""}, InvalidContent, "content"),
        ({"content": "   \n"}, InvalidContent, "content"),
        ({"content": "x" * 51}, InvalidContent, "content"),
        ({"content": 42}, InvalidContent, "content"),
        ({"content": None}, InvalidContent, "content"),
        ({"content": b"\xff\xfe bad"}, InvalidContent, "content"),
        ({"content": "lone \udc80 surrogate"}, InvalidContent, "content"),
        ({"content_type": "image"}, UnsupportedContentType, "content_type"),
        ({"content_type": "video"}, UnsupportedContentType, "content_type"),
        ({"content_type": "audio"}, InvalidContent, "content_type"),
        ({"priority": "asap"}, InvalidContent, "priority"),
        ({"content_id": ""}, InvalidContent, "content_id"),
        ({"context": ["not", "a", "mapping"]}, InvalidContent, "context"),
    ],
)
def test_bad_inputs_raise_typed_errors(fields, error, field):
    with pytest.raises(error) as caught:
        _validate(**fields)
    assert isinstance(caught.value, ModerationError)
    assert caught.value.details["field"] == field
    assert caught.value.to_dict()["code"] == error.code


def test_valid_utf8_bytes_are_accepted():
    assert _validate(content="café".encode()).content == "café"


def test_result_dict_round_trip():
    result = ModerationResult(
        content_id="c",
        decision=Decision.FLAG,
        scores={"spam": 0.7},
        tripped=[Reason("spam", 0.7, 0.63, Decision.FLAG)],
        unscored_categories=["self_harm"],
        model_name="m",
        model_version="1",
        policy_version="v1",
        variant=None,
        cache_hit=False,
        latency_ms=1.5,
        content_sha256="ab",
        created_at="2026-11-24T00:00:00+00:00",
    )
    data = result.to_dict()
    assert data["decision"] == "flag" and data["tripped"][0]["action"] == "flag"
    assert ModerationResult.from_dict(data) == result
