"""The operator's health, as its probes report it.

- Liveness: every resource's poll gets done. Each resource says when its next poll is
  due; a poll completes when its outcome is recorded (the status written, or unchanged).
  Once a poll has been due for longer than SFP_OPERATOR_LIVENESS_SECONDS without
  completing (a hung Snowflake or API call, a wedged event loop, status writes failing
  because the API server is unreachable), the operator is not alive: restarting it may
  help. With no resources there is nothing to be late for. Snowflake or S3 errors do not
  count: the poll reports them in conditions and completes.
- Readiness: the API server answers (GET /version, at most every few seconds).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

Verdict = tuple[bool, str]


def overdue(due: dict[str, float], now: float, limit: float) -> Verdict:
    """Alive unless a poll has been due for more than ``limit`` seconds. Pure."""
    if not due:
        return True, "no resources"
    key, since = min(due.items(), key=lambda item: item[1])
    late = now - since
    if late > limit:
        return False, f"the poll of {key} has been due for {late:.0f} s (limit {limit:.0f} s)"
    return True, f"{len(due)} resources, polls on time"


@dataclass
class Health:
    """Shared by every resource's loop (kopf's event loop) and the probe server's thread."""

    liveness_seconds: float
    api_check: Callable[[], str | None]  # None: the API server answered; else why not
    api_check_seconds: float = 5.0
    clock: Callable[[], float] = time.monotonic
    _due: dict[str, float] = field(default_factory=dict)
    _api: tuple[float, str | None] | None = None  # when checked, and the answer
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def due(self, key: str, at: float) -> None:
        """The resource's next poll is due at ``at`` (after a completed poll, or first)."""
        with self._lock:
            self._due[key] = at

    def forget(self, key: str) -> None:
        with self._lock:
            self._due.pop(key, None)

    def liveness(self) -> Verdict:
        with self._lock:
            due = dict(self._due)
        return overdue(due, self.clock(), self.liveness_seconds)

    def readiness(self) -> Verdict:
        now = self.clock()
        with self._lock:
            cached = self._api
        if cached is None or now - cached[0] >= self.api_check_seconds:
            cached = (now, self.api_check())
            with self._lock:
                self._api = cached
        problem = cached[1]
        return (True, "API server reachable") if problem is None else (False, problem)
