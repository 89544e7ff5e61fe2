"""The one polling loop, on a fake clock: when it checks, how long it sleeps, what it returns."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from common.polling import wait_until


class Clock:
    """A fake monotonic clock: only sleeping moves it, and every sleep is recorded."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def answers(clock: Clock, results: list[object]) -> tuple[Callable[[], object], list[float]]:
    """A check that gives ``results`` in turn (the last one from then on), and the times it was called."""
    calls: list[float] = []

    def check() -> object:
        calls.append(clock.now - 100.0)
        return results[min(len(calls), len(results)) - 1]

    return check, calls


def test_returns_the_first_truthy_answer_after_sleeping_one_interval_between_checks() -> None:
    clock = Clock()
    check, calls = answers(clock, [None, "", "http://ready"])
    assert wait_until(check, timeout=60, interval=2, clock=clock, sleep=clock.sleep) == "http://ready"
    assert calls == [0, 2, 4]
    assert clock.sleeps == [2, 2]


def test_an_immediate_answer_means_no_sleep() -> None:
    clock = Clock()
    check, calls = answers(clock, [True])
    assert wait_until(check, timeout=60, interval=2, clock=clock, sleep=clock.sleep) is True
    assert calls == [0] and clock.sleeps == []


def test_gives_up_at_the_deadline_with_the_last_answer_after_a_last_check_at_it() -> None:
    clock = Clock()
    check, calls = answers(clock, [False])
    assert wait_until(check, timeout=5, interval=2, clock=clock, sleep=clock.sleep) is False
    assert calls == [0, 2, 4, 5], "the last sleep is cut short so the last check falls on the deadline"
    assert clock.sleeps == [2, 2, 1] and clock.now == 105


def test_checks_once_even_with_no_time_at_all() -> None:
    clock = Clock()
    check, calls = answers(clock, [None])
    assert wait_until(check, timeout=0, interval=2, clock=clock, sleep=clock.sleep) is None
    assert wait_until(check, timeout=-3, interval=2, clock=clock, sleep=clock.sleep) is None
    assert calls == [0, 0] and clock.sleeps == []


def test_time_spent_in_the_check_counts_against_the_deadline() -> None:
    clock = Clock()
    calls: list[float] = []

    def slow_check() -> bool:
        calls.append(clock.now - 100.0)
        clock.now += 3  # e.g. a request that waits for its own timeout
        return False

    assert wait_until(slow_check, timeout=10, interval=2, clock=clock, sleep=clock.sleep) is False
    assert calls == [0, 5, 10] and clock.sleeps == [2, 2]


def test_an_error_in_the_check_ends_the_wait_at_once() -> None:
    clock = Clock()
    calls: list[float] = []

    def dies_on_second_check() -> bool:
        calls.append(clock.now)
        if len(calls) == 2:
            raise RuntimeError("the server exited")
        return False

    with pytest.raises(RuntimeError, match="the server exited"):
        wait_until(dies_on_second_check, timeout=60, interval=1, clock=clock, sleep=clock.sleep)
    assert len(calls) == 2 and clock.sleeps == [1]
