"""Live progress of a local run: a rich table on a terminal, plain lines otherwise, with the
drain rate over the last few seconds and the time left at that rate."""

from __future__ import annotations

import math
import sys
from collections import deque
from dataclasses import dataclass
from types import TracebackType

from rich.console import Console
from rich.live import Live
from rich.table import Table

from snowflake_worker.queue_records import QueueCounts

RATE_WINDOW_SECONDS = 10.0  # long enough to smooth the 2 s ticks, short enough to follow


@dataclass(frozen=True)
class Pace:
    rate: float | None  # finished entries per second; None until two samples apart
    eta_seconds: float | None  # at that rate; None without a rate, 0 when nothing is left

    @property
    def rate_text(self) -> str:
        return "-" if self.rate is None else f"{self.rate:.1f}/s"

    @property
    def eta_text(self) -> str:
        if self.eta_seconds is None:
            return "-"
        seconds = math.ceil(self.eta_seconds)
        return f"{seconds} s" if seconds < 120 else f"{seconds // 60} min {seconds % 60:02d} s"


class RateMeter:
    """Finished entries (completed + failed) over time -> the recent rate and the ETA."""

    def __init__(self, window_seconds: float = RATE_WINDOW_SECONDS) -> None:
        self._window = window_seconds
        self._samples: deque[tuple[float, int]] = deque()

    def observe(self, seconds: float, finished: int, remaining: int) -> Pace:
        self._samples.append((seconds, finished))
        # Keep one sample at or before the window's start, so the window is always covered.
        while len(self._samples) > 2 and self._samples[1][0] <= seconds - self._window:
            self._samples.popleft()
        first_seconds, first_finished = self._samples[0]
        if seconds <= first_seconds:
            return Pace(None, 0.0 if remaining == 0 else None)
        rate = max(0, finished - first_finished) / (seconds - first_seconds)
        if remaining == 0:
            return Pace(rate, 0.0)
        return Pace(rate, remaining / rate if rate > 0 else None)


class ProgressView:
    def __init__(self, enabled_live: bool) -> None:
        self._live: Live | None = None
        self._enabled_live = enabled_live
        self._console = Console(file=sys.stderr)
        self._meter = RateMeter()

    def __enter__(self) -> ProgressView:
        if self._enabled_live:
            self._live = Live(console=Console(), refresh_per_second=4, transient=False)
            self._live.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._live is not None:
            self._live.__exit__(exc_type, exc, tb)
            self._live = None

    def update(self, counts: QueueCounts, active_jobs: int, launched: int, seconds: float) -> None:
        pace = self._meter.observe(
            seconds, counts.completed + counts.failed, counts.pending + counts.processing
        )
        if self._live is not None:
            self._live.update(self._table(counts, active_jobs, launched, seconds, pace))
            return
        self._console.print(
            f"[{seconds:6.1f}s] backlog {counts.eligible:>6}  pending {counts.pending:>6}  "
            f"processing {counts.processing:>5}  completed {counts.completed:>6}  "
            f"failed {counts.failed:>4}  active Jobs {active_jobs:>2}  launched {launched:>3}  "
            f"entries/s {pace.rate_text:>8}  ETA {pace.eta_text}",
            highlight=False,
            markup=False,
            soft_wrap=True,  # one line per tick, whatever the width
        )

    @staticmethod
    def _table(
        counts: QueueCounts, active_jobs: int, launched: int, seconds: float, pace: Pace
    ) -> Table:
        table = Table(title=f"snowflake-processor demo - {seconds:.0f} s")
        cells = {
            "backlog": counts.eligible,
            "pending": counts.pending,
            "processing": counts.processing,
            "completed": counts.completed,
            "failed": counts.failed,
            "active Jobs": active_jobs,
            "Jobs launched": launched,
            "entries/s": pace.rate_text,
            "ETA": pace.eta_text,
        }
        for column in cells:
            table.add_column(column, justify="right")
        table.add_row(*(str(value) for value in cells.values()))
        return table
