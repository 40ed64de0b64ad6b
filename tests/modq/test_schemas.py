import dataclasses
import json

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
from tests.factories import make_result


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
    result = make_result(
        "c",
        decision=Decision.FLAG,
        scores={"spam": 0.7},
        tripped=[Reason("spam", 0.7, 0.63, Decision.FLAG)],
        unscored_categories=["self_harm"],
    )
    data = result.to_dict()
    assert data["decision"] == "flag" and data["tripped"][0]["action"] == "flag"
    assert ModerationResult.from_dict(data) == result


def test_result_dict_has_every_field_and_shares_nothing_mutable():
    """``to_dict`` is written by hand (speed): it must follow the dataclass's fields."""
    result = make_result(
        "c",
        decision=Decision.REMOVE,
        scores={"violence": 0.9},
        tripped=[Reason("violence", 0.9, 0.8, Decision.REMOVE)],
        variant="b",
        cache_hit=True,
        priority=Priority.URGENT,
        user_id="u",
        extra={"experiment": "e", "nested": {"k": [1]}},
    )
    data = result.to_dict()
    assert list(data) == [f.name for f in dataclasses.fields(ModerationResult)]
    expected = dataclasses.asdict(result)
    expected.update(decision="remove", priority="urgent")
    expected["tripped"] = [{**expected["tripped"][0], "action": "remove"}]
    assert data == expected
    assert json.loads(json.dumps(data)) == data
    data["scores"]["violence"] = 0.0
    data["extra"]["nested"]["k"].append(2)
    assert result.scores == {"violence": 0.9} and result.extra["nested"] == {"k": [1]}
