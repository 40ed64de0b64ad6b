"""The generic circuit breaker, on a fake clock."""

import pytest

from modq.circuit import BreakerState, CircuitBreaker


class Clock:
    def __init__(self) -> None:
        self.now_s = 100.0

    def __call__(self) -> float:
        return self.now_s


def breaker(clock: Clock, **kwargs: float) -> CircuitBreaker:
    options = {"failure_threshold": 3, "window_s": 10.0, "reset_s": 5.0, **kwargs}
    return CircuitBreaker("test", clock=clock, **options)  # type: ignore[arg-type]


def test_opens_after_consecutive_failures_and_rests():
    clock = Clock()
    b = breaker(clock)
    for _ in range(2):
        b.record_failure("boom")
        assert b.allow()
    b.record_failure("boom")
    assert b.state is BreakerState.OPEN
    assert not b.allow()
    assert b.retry_after_s() == pytest.approx(5.0)
    assert b.snapshot().last_error == "boom"


def test_a_success_resets_the_count():
    clock = Clock()
    b = breaker(clock)
    b.record_failure("a")
    b.record_failure("b")
    b.record_success()
    b.record_failure("c")
    b.record_failure("d")
    assert b.state is BreakerState.CLOSED


def test_failures_spread_beyond_the_window_do_not_open():
    clock = Clock()
    b = breaker(clock)
    for _ in range(5):
        b.record_failure("slow drip")
        clock.now_s += 6.0  # two failures span 6 s; a third would span 12 s > window
    assert b.state is BreakerState.CLOSED


def test_one_trial_after_reset_then_closed_or_open_again():
    clock = Clock()
    b = breaker(clock)
    b.trip("down")
    clock.now_s += 5.0
    assert b.allow()  # the trial
    assert b.state is BreakerState.HALF_OPEN
    assert not b.allow()  # one at a time
    b.record_failure("still down")
    assert b.state is BreakerState.OPEN
    assert not b.begin_trial()  # the timer started again
    clock.now_s += 5.0
    assert b.begin_trial()
    b.record_success()
    assert b.state is BreakerState.CLOSED and b.allow()
    assert not b.begin_trial()  # nothing to probe when closed


def test_a_lost_trial_is_forgotten():
    clock = Clock()
    b = breaker(clock, trial_timeout_s=30.0)
    b.trip("down")
    clock.now_s += 5.0
    assert b.allow()
    clock.now_s += 31.0
    assert b.allow()


def test_listeners_see_every_change():
    clock = Clock()
    b = breaker(clock, failure_threshold=1)
    seen = []
    b.add_listener(lambda name, old, new: seen.append((name, old.value, new.value)))
    b.add_listener(lambda *_: 1 / 0)  # a failing observer changes nothing
    b.record_failure("x")
    clock.now_s += 5.0
    b.begin_trial()
    b.record_success()
    assert seen == [
        ("test", "closed", "open"),
        ("test", "open", "half_open"),
        ("test", "half_open", "closed"),
    ]
    assert [s.gauge_value for s in BreakerState] == [0, 1, 2]


def test_bad_knobs_are_refused():
    with pytest.raises(ValueError):
        CircuitBreaker("x", failure_threshold=0, window_s=1, reset_s=1)
    with pytest.raises(ValueError):
        CircuitBreaker("x", failure_threshold=1, window_s=0, reset_s=1)
