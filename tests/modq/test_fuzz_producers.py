"""Typed errors everywhere: generated inputs to each producer API of the modq client
(``moderate``, ``moderate_many``, ``record_review``) are either accepted, and then the worker
can decode and validate the very message that was published, or refused with a
``modq.errors`` type. Nothing else escapes (the issue saw kombu's ``EncodeError`` for a set,
a tuple key, a complex number or an object in ``context``, and ``AttributeError`` for
``labels`` that was not a mapping; lone surrogates were accepted and parked by the worker).

The default run sends a few hundred inputs per API; ``-m slow`` sends 10,000 each, and stores
a sample of the accepted ones through a real worker.
"""

from __future__ import annotations

import base64
import contextlib
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kombu.utils.json import loads

from modq import client
from modq.broker.queues import BrokerQueues
from modq.errors import ModerationError
from modq.reviews import CATEGORIES, SAFE_WORDS, VIOLATION_WORDS, review_outcomes
from modq.settings import get_settings
from tests.workers import flush_private_redis, running_worker

DEFAULT_EXAMPLES = 300
SLOW_EXAMPLES = 10_000
QUEUES = ("urgent", "normal", "bulk")

# every code point, lone surrogates included (hypothesis's default text leaves them out)
any_char = st.characters(codec=None, exclude_categories=())
any_text = st.text(any_char, max_size=40)
ids = st.one_of(st.text(min_size=1, max_size=20), any_text, st.text(min_size=500, max_size=600))
hashable = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), any_text, st.tuples(st.integers())
)
scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=2**63, max_value=2**80),
    st.floats(),
    any_text,
    st.binary(max_size=20),
    st.complex_numbers(allow_nan=False),
    st.datetimes(),
    st.decimals(allow_nan=False),
    st.builds(object),
    st.frozensets(st.integers(), max_size=3),
)
anything = st.recursive(
    scalar,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.tuples(inner, inner),
        st.sets(st.integers(), max_size=3),
        st.dictionaries(st.one_of(any_text, hashable), inner, max_size=4),
    ),
    max_leaves=12,
)
json_like = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), any_text),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(any_text, inner, max_size=4)
    ),
    max_leaves=12,
)
contexts = st.one_of(
    st.none(),
    st.dictionaries(st.text(max_size=10), json_like, max_size=4),
    st.dictionaries(st.one_of(any_text, hashable), anything, max_size=4),
    st.builds(lambda n: {"blob": "x" * n}, st.integers(60_000, 70_000)),  # the size limit
    anything,
)
priorities = st.one_of(st.sampled_from(["urgent", "normal", "bulk"]), anything)
contents = st.one_of(st.text(min_size=1, max_size=50), any_text, anything)


plain_text = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=20)
good_ids = plain_text.map(lambda t: f"id-{t}")


def hostile_or(draw: st.DrawFn, good: st.SearchStrategy[Any], bad: st.SearchStrategy[Any]) -> Any:
    """Mostly a plausible value, one time in four a hostile one: every field is reached."""
    return draw(bad) if draw(st.integers(0, 3)) == 0 else draw(good)


@st.composite
def jobs(draw: st.DrawFn) -> dict[str, Any]:
    """One ``moderate`` call's keyword arguments: mostly plausible, some hostile."""
    job: dict[str, Any] = {}
    if draw(st.integers(0, 19)):
        job["content_id"] = hostile_or(draw, good_ids, st.one_of(ids, anything))
    if draw(st.integers(0, 19)):
        job["content"] = hostile_or(draw, plain_text.map(lambda t: f"x{t}"), contents)
    for name, values in (
        ("content_type", st.one_of(st.sampled_from(["text", "image"]), anything)),
        ("user_id", st.one_of(st.none(), ids, anything)),
        ("context", contexts),
        ("priority", priorities),
        ("surprise", anything),
    ):
        if draw(st.integers(0, 1 if name != "surprise" else 30)) == 0:
            job[name] = draw(values)
    return job


labels_values = st.one_of(
    st.sampled_from(sorted(VIOLATION_WORDS | SAFE_WORDS)), st.booleans(), st.none(), anything
)
reviews = st.fixed_dictionaries(
    {"content_id": st.one_of(good_ids, ids, anything)},
    optional={
        "label": labels_values,
        "labels": st.one_of(
            st.dictionaries(st.sampled_from(CATEGORIES), labels_values, max_size=3),
            st.dictionaries(st.one_of(any_text, hashable), labels_values, max_size=3),
            anything,
        ),
        "reviewer": st.one_of(st.none(), any_text, st.text(min_size=250, max_size=300), anything),
        "reviewed_at": st.one_of(st.datetimes(), st.datetimes().map(str), any_text, anything),
        "source": st.one_of(any_text, st.text(min_size=250, max_size=300), anything),
    },
)
many = st.fixed_dictionaries(
    {"items": st.one_of(st.lists(jobs(), min_size=1, max_size=4), anything)},
    optional={"priority": priorities},
)


def published(broker: BrokerQueues) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """Pop every waiting message; yield its headers and the kwargs the worker will decode."""
    for queue in QUEUES:
        for key in broker.keys(queue):
            while (raw := broker.redis.rpop(key)) is not None:
                envelope = json.loads(raw)
                body = base64.b64decode(envelope["body"])
                args, kwargs, _ = loads(body)  # kombu's decoder: what the worker runs
                assert args == [] or args == ()
                yield envelope["headers"], kwargs


def worker_accepts(task_name: str, kwargs: dict[str, Any]) -> None:
    """The worker-side check of one decoded message passes (raises if not)."""
    from tasks.moderate import moderate_many, validate_message

    if task_name == "modq.moderate":
        kwargs = dict(kwargs)
        kwargs.pop("enqueued_at_s")
        validate_message(kwargs)
    elif task_name == "modq.moderate_many":
        message, _ = moderate_many.prepare(
            {"items": kwargs["items"], "priority": kwargs["priority"]}
        )
        for item in message["items"]:
            validate_message(item)
    else:
        review_outcomes(**kwargs)


def call(send: Callable[..., Any], kwargs: dict[str, Any], broker: BrokerQueues) -> bool:
    """Send; True when accepted (and the published message checked), False when refused with
    a typed error. Anything else propagates and fails the test."""
    try:
        send(**kwargs)
    except ModerationError:
        assert not list(published(broker)), "a refused call published something"
        return False
    messages = list(published(broker))
    assert len(messages) == 1
    headers, decoded = messages[0]
    worker_accepts(headers["task"], decoded)
    return True


@pytest.fixture(scope="module")
def broker() -> Iterator[BrokerQueues]:
    flush_private_redis()
    get_settings.cache_clear()
    yield BrokerQueues.from_app(client.app)
    flush_private_redis()


SENDERS = {
    "moderate": (lambda **kw: client.moderate.delay(**kw), jobs()),
    "moderate_many": (lambda **kw: client.moderate_many.delay(**kw), many),
    "record_review": (lambda **kw: client.record_review.delay(**kw), reviews),
}


def fuzz(name: str, broker: BrokerQueues, examples: int) -> list[bool]:
    send, strategy = SENDERS[name]
    outcomes: list[bool] = []

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def one(kwargs: dict[str, Any]) -> None:
        outcomes.append(call(send, kwargs, broker))

    one()
    return outcomes


@pytest.mark.parametrize("name", sorted(SENDERS))
def test_every_call_is_accepted_and_decodable_or_refused_with_a_typed_error(name, broker):
    outcomes = fuzz(name, broker, DEFAULT_EXAMPLES)
    assert any(outcomes) and not all(outcomes)  # the strategies reach both sides


@pytest.mark.slow
@pytest.mark.long  # 100-150 s per API: make test-all
@pytest.mark.parametrize("name", sorted(SENDERS))
def test_ten_thousand_calls_each(name, broker):
    outcomes = fuzz(name, broker, SLOW_EXAMPLES)
    assert len(outcomes) >= SLOW_EXAMPLES * 0.95 and any(outcomes) and not all(outcomes)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"content_id": "c", "content": "x", "context": {"a": "\ud800"}},
        {"content_id": "c", "content": "x", "context": {"\udfff": 1}},
        {"content_id": "c", "content": "x", "context": {"a": {1, 2}}},
        {"content_id": "c", "content": "x", "context": {(1, 2): 1}},
        {"content_id": "c", "content": "x", "context": {"a": 1j}},
        {"content_id": "c", "content": "x", "context": {"a": object()}},
        {"content_id": "c", "content": "x", "context": {"a": float("nan")}},
        {"content_id": "c", "content": "x", "context": {"a": "x" * 70_000}},
        {"content_id": "c\x00", "content": "x"},
        {"content_id": "c", "content": "x", "user_id": "u\x00"},
        {"content_id": "c\ud800", "content": "x"},
        {"content_id": "c", "content": "x\udc00"},
    ],
)
def test_the_issues_leaks_are_typed_refusals(kwargs, broker):
    with pytest.raises(ModerationError):
        client.moderate.delay(**kwargs)
    assert not list(published(broker))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"content_id": "c", "labels": ["violence"]},
        {"content_id": "c", "labels": "violence"},
        {"content_id": "c\ud800", "label": "safe"},
        {"content_id": "c\x00", "label": "safe"},
        {"content_id": "c", "label": "safe", "reviewer": "\ud800"},
        {"content_id": "c", "label": "safe", "source": "s\udfff"},
        {"content_id": "c", "label": "safe", "reviewer": "r" * 257},
        {"content_id": "c", "label": "safe", "source": "s" * 257},
    ],
)
def test_the_issues_review_leaks_are_typed_refusals(kwargs, broker):
    with pytest.raises(ModerationError):
        client.record_review.delay(**kwargs)
    assert not list(published(broker))


def test_a_context_at_the_limit_is_accepted_and_one_byte_more_is_not(broker, monkeypatch):
    monkeypatch.setenv("MODQ_MAX_CONTEXT_BYTES", "100")
    get_settings.cache_clear()
    try:
        fits = {"k": "é" * 46}  # {"k":"…"} is 8 bytes + 46 two-byte characters = 100
        assert call(
            lambda **kw: client.moderate.delay(**kw),
            {"content_id": "c", "content": "x", "context": fits},
            broker,
        )
        over = {"k": "é" * 46 + "x"}
        assert not call(
            lambda **kw: client.moderate.delay(**kw),
            {"content_id": "c", "content": "x", "context": over},
            broker,
        )
    finally:
        monkeypatch.delenv("MODQ_MAX_CONTEXT_BYTES")
        get_settings.cache_clear()


def collect_accepted(send: Callable[..., Any], strategy: Any, examples: int) -> list[Any]:
    """The results of the generated calls that were accepted."""
    accepted: list[Any] = []

    @settings(
        max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    @given(strategy)
    def one(kwargs: dict[str, Any]) -> None:
        with contextlib.suppress(ModerationError):
            accepted.append(send(**kwargs))

    one()
    return accepted


@pytest.fixture
def database(tmp_path):
    """A migrated SQLite file for the worker, on an empty private broker."""
    import migrations

    url = f"sqlite:///{tmp_path / 'results.db'}"
    migrations.upgrade(url)
    flush_private_redis()
    yield url
    flush_private_redis()


@pytest.mark.integration
@pytest.mark.slow
def test_a_sample_of_accepted_calls_is_stored_by_a_real_worker(database, tmp_path):
    """Accepted calls end stored or with a typed failure on a real worker (never waiting)."""
    flush_private_redis()
    get_settings.cache_clear()
    accepted: list[Any] = []
    for name in ("moderate", "moderate_many"):
        send, strategy = SENDERS[name]
        accepted += collect_accepted(send, strategy, 150)
    assert len(accepted) > 20
    stored = typed = 0
    with running_worker({"MODQ_DATABASE_URL": database}, log_dir=tmp_path, threads=4):
        for result in accepted:
            try:
                result.get(timeout=120)
                stored += 1
            except ModerationError:
                typed += 1
    assert stored == len(accepted), f"{typed} of {len(accepted)} accepted jobs failed"
