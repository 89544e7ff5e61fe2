"""Waiting for something to happen, with a deadline: the one polling loop.

Servers become ready, InferenceServices turn Ready, processes exit: each caller
only says what "done" means and what to do when time runs out, so the loop
itself (always try once, never sleep past the deadline, try once more at it)
is written and tested here once. The clock and the sleep are arguments, so
tests run a whole wait on a fake clock without sleeping.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(
    check: Callable[[], T],
    *,
    timeout: float,
    interval: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Call ``check`` every ``interval`` seconds until it returns something truthy, and return that.

    When ``timeout`` seconds pass first, return ``check``'s last (falsy) answer:
    the caller decides whether that is an error, and knows best what to say.
    ``check`` runs at least once, and once more at the deadline. An exception
    from ``check`` ends the wait at once: that is how a caller gives up early
    (the server died, the model cannot load).
    """
    deadline = clock() + timeout
    while True:
        result = check()
        if result:
            return result
        remaining = deadline - clock()
        if remaining <= 0:
            return result
        sleep(min(interval, remaining))
