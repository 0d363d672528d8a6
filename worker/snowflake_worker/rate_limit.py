"""When the next call to the service may start: a per-Job request rate, and a pause for
every caller while the service asked to wait (``Retry-After``).

The rate limit spaces call starts ``1 / per_second`` apart (no bursts): with
``maxActiveJobs`` Jobs the fleet sends at most ``maxActiveJobs x per_second`` calls per
second. Retries count like first attempts. A ``Retry-After`` answer pauses every caller of
the Job, not only the one that got it: a service that says "slow down" means the client.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


class RequestPacer:
    def __init__(
        self, per_second: float | None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._interval = 1.0 / per_second if per_second else 0.0
        self._clock = clock
        self._next_free = float("-inf")  # the earliest start of the next call
        self._hold_until = float("-inf")  # no call starts before this (Retry-After)

    def reserve(self) -> float:
        """Take the next free start time; return how long to wait for it (0: go now)."""
        now = self._clock()
        start = max(now, self._next_free, self._hold_until)
        self._next_free = start + self._interval
        return start - now

    def hold(self, seconds: float) -> None:
        """No call starts within ``seconds`` from now."""
        self._hold_until = max(self._hold_until, self._clock() + seconds)

    def held(self) -> bool:
        return self._hold_until > self._clock()

    async def wait_turn(self, stopping: asyncio.Event) -> bool:
        """Wait until this call may start; False when ``stopping`` was set meanwhile."""
        if not self._interval and self._hold_until == float("-inf"):
            return not stopping.is_set()  # no limit and never held: every call, no clock
        while True:
            delay = self.reserve()
            if delay > 0 and await stopped_within(delay, stopping):
                return False
            if not self.held():  # a pause that began while waiting: take a slot after it
                return not stopping.is_set()


async def stopped_within(seconds: float, stopping: asyncio.Event) -> bool:
    """Sleep ``seconds``, or less if ``stopping`` is set first; True when it was."""
    try:
        await asyncio.wait_for(stopping.wait(), timeout=seconds)
    except TimeoutError:
        return False
    return True
