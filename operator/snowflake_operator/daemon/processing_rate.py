"""Entries settled per second, from the queue's counts the polls read anyway. Pure.

The workers' summaries arrive only when a Job ends, minutes after its entries were done,
so a rate from them lags and comes in steps. The poll already counts completed and failed
rows (no extra statement); their growth over the last few minutes is the processor's rate
as it happens, whichever worker did the work. Rows that leave those states (a purge of
completed rows, a requeue of dead letters) start the window again instead of counting as
negative work.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

RATE_WINDOW_SECONDS = 300.0


@dataclass
class RateWindow:
    window_seconds: float = RATE_WINDOW_SECONDS
    samples: deque[tuple[float, int]] = field(default_factory=deque)  # (time, settled)

    def add(self, at: float, settled: int) -> float | None:
        """Record ``settled`` (completed + failed rows) at ``at`` (seconds); return the
        entries settled per second over the last ``window_seconds`` or so, or None until
        two samples span some time."""
        if self.samples and (settled < self.samples[-1][1] or at < self.samples[-1][0]):
            self.samples.clear()
        self.samples.append((at, settled))
        # Keep one sample at least a window old, so the rate spans the whole window.
        while len(self.samples) > 2 and at - self.samples[1][0] >= self.window_seconds:
            self.samples.popleft()
        first_at, first = self.samples[0]
        if at <= first_at:
            return None
        return (settled - first) / (at - first_at)
