"""The worker's re-validation (``tasks.moderate.validate_message``) of a job that skipped the
producer: every failure is a ``modq.errors`` type, never a bare ``TypeError``."""

import pytest

from modq.errors import InvalidContent
from tasks.moderate import validate_message


@pytest.mark.parametrize(
    "fields",
    [
        {"content_id": "c"},  # no content: the issue saw a bare TypeError
        {"content": "x"},
        {},
        ["c", "x"],
        "c",
        None,
        {"content_id": "c", "content": "x", "context": {"k": "\ud800"}},
        {"content_id": "c", "content": "x", "context": [1, 2]},
        {"content_id": "c", "content": "x", 1: "int key"},
        {"content_id": "c", "content": "x", "surprise": 1},
        {"content_id": "c\x00", "content": "x"},
    ],
)
def test_a_bad_job_is_invalid_content(fields):
    with pytest.raises(InvalidContent):
        validate_message(fields)


def test_a_good_job_passes():
    request = validate_message({"content_id": "c", "content": "x", "context": {"k": [1, "v"]}})
    assert request.context == {"k": [1, "v"]}
