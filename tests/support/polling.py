"""Waiting for something that happens in another process or thread."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(
    check: Callable[[], T],
    timeout: float = 30,
    what: str = "condition",
    *,
    interval: float = 0.2,
) -> T:
    """Call ``check`` until it returns something truthy and return that.

    ``check`` runs at least once, and once more after the deadline; then the wait fails
    with an AssertionError naming ``what`` and the last result. An assertion inside
    ``check`` fails the wait at once."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out after {timeout} s waiting for {what}; last: {result!r}"
            )
        time.sleep(interval)
