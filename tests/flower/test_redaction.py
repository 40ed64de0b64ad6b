"""What a worker shows of a job (events, `inspect` replies, log lines) and what Flower's
``format_task`` lets through: content ids, kinds and decisions; never texts or user ids."""

from __future__ import annotations

import json
import logging

import pytest
from celery.utils.saferepr import saferepr
from kombu.message import Message

from cli.flower_config import format_task
from tasks import app
from tasks.redaction import (
    HIDDEN,
    RedactedRequest,
    RedactedTraceLog,
    arguments_repr,
    is_redacted_args,
    is_redacted_kwargs,
    is_redacted_result,
    result_repr,
)
from tests.factories import make_result

TEXT, USER = "secret-text-17", "user-xyz-42"


def _task(name: str):
    app.finalize()
    return app.tasks[name]


def test_a_stock_producers_arguments_are_shown_by_name_without_text_or_user():
    moderate = _task("modq.moderate")
    by_position = arguments_repr(moderate, ["c1", TEXT, "text", USER, {"ip": USER}, "urgent"], {})
    by_name = arguments_repr(moderate, [], {"content_id": "c1", "content": TEXT, "user_id": USER})
    assert by_position[0] == by_name[0] == "()"
    assert "'content_id': 'c1'" in by_position[1] and "'priority': 'urgent'" in by_position[1]
    assert f"'<{len(TEXT)} chars>'" in by_name[1]
    for shown in (*by_position, *by_name):
        assert TEXT not in shown and USER not in shown
    assert is_redacted_args(by_position[0]) and is_redacted_kwargs(by_position[1])


def test_items_show_their_content_ids_and_calls_that_do_not_fit_show_names_only():
    many = arguments_repr(
        _task("modq.moderate_many"), [], {"items": [{"content_id": "a", "content": TEXT}]}
    )
    assert many == ("()", "{'items': ['a']}")
    misfit = arguments_repr(_task("modq.moderate"), [TEXT], {"nope": USER})
    chunk = arguments_repr(_task("celery.starmap"), [], {"task": {}, "it": [["c", TEXT]]})
    for args, kwargs in (misfit, chunk):
        assert TEXT not in args + kwargs and USER not in args + kwargs
        assert is_redacted_args(args) and is_redacted_kwargs(kwargs)


def test_a_result_shows_its_content_id_and_decision_only():
    one = make_result("c-1", user_id=USER).to_dict()
    assert result_repr(saferepr(one)) == "{'content_id': 'c-1', 'decision': 'allow'}"
    many = [make_result(f"c-{i}", user_id=USER).to_dict() for i in range(40)]
    cut = saferepr(many, 1024)  # Celery cuts a result's repr at resultrepr_maxsize
    shown = result_repr(cut)
    assert shown.startswith("[{'content_id': 'c-0', 'decision': 'allow'}") and ", ...]" in shown
    assert USER not in shown and is_redacted_result(shown)
    assert result_repr("None") == "None"
    assert result_repr(f"{{'reviewer': '{USER}'}}") == HIDDEN


@pytest.mark.parametrize(
    "kwargs",
    [
        f"{{'content_id': 'c', 'content': '{TEXT}'}}",
        f"{{'content_id': 'c', 'user_id': '{USER}'}}",
        f"{{'items': [{{'content_id': 'c', 'content': '{TEXT}'}}]}}",
        "not a repr at all",
    ],
)
def test_flower_hides_what_was_not_redacted_at_the_source(kwargs):
    class Shown:  # the fields of Flower's task record that format_task reads
        args = f"['{TEXT}']"
        result = f"{{'user_id': '{USER}'}}"

    shown = Shown()
    shown.kwargs = kwargs
    formatted = format_task(shown)
    assert (formatted.args, formatted.kwargs, formatted.result) == (HIDDEN, HIDDEN, HIDDEN)


def test_flower_shows_what_was_redacted_at_the_source():
    args, kwargs = arguments_repr(_task("modq.moderate"), [], {"content_id": "c", "content": "x"})

    class Shown:
        result = "{'content_id': 'c', 'decision': 'flag'}"

    shown = Shown()
    shown.args, shown.kwargs = args, kwargs
    assert format_task(shown).kwargs == kwargs and format_task(shown).result == Shown.result


def test_the_success_log_line_shows_the_redacted_result():
    context = {"id": "t1", "name": "modq.moderate", "runtime": 0.1}
    context["return_value"] = saferepr(make_result("c-9", user_id=USER).to_dict())
    record = logging.LogRecord(
        "celery.app.trace", logging.INFO, __file__, 1, "%(return_value)s", (context,), None
    )
    record.data = context
    assert RedactedTraceLog().filter(record)
    assert record.getMessage() == "{'content_id': 'c-9', 'decision': 'allow'}"
    assert USER not in repr(record.data)
    assert any(isinstance(f, RedactedTraceLog) for f in logging.getLogger(record.name).filters)


def _stock_request() -> RedactedRequest:
    """The worker's request for a message as a stock producer writes it (Celery's reprs)."""
    headers, properties, body, _ = app.amqp.as_task_v2(
        "t-1", "modq.moderate", args=["c1", TEXT], kwargs={"user_id": USER}
    )
    assert TEXT in headers["argsrepr"] and USER in headers["kwargsrepr"]
    message = Message(
        body=json.dumps(body),
        content_type="application/json",
        content_encoding="utf-8",
        headers=headers,
        properties=properties,
        delivery_info={"routing_key": "normal"},
    )
    return RedactedRequest(message, app=app, task=_task("modq.moderate"), hostname="w@h")


def test_the_workers_request_replaces_a_stock_messages_reprs():
    request = _stock_request()
    shown = [request.argsrepr, request.kwargsrepr, repr(request), json.dumps(request.info())]
    shown += [request.request_dict["argsrepr"], request.request_dict["kwargsrepr"]]  # the trace's
    for text in shown:
        assert TEXT not in text and USER not in text
    assert "'content_id': 'c1'" in request.kwargsrepr


def test_an_operator_can_turn_redaction_off(monkeypatch):
    from modq.settings import get_settings

    monkeypatch.setenv("MODQ_EVENTS_SHOW_CONTENT", "1")
    get_settings.cache_clear()
    request = _stock_request()
    assert TEXT in request.argsrepr and USER in request.kwargsrepr
    assert TEXT in json.dumps(request.info())
