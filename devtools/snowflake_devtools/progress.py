"""Live progress of a local run: a rich table on a terminal, plain lines otherwise."""

from __future__ import annotations

import sys
from types import TracebackType

from rich.console import Console
from rich.live import Live
from rich.table import Table

from snowflake_worker.queue import QueueCounts


class ProgressView:
    def __init__(self, enabled_live: bool) -> None:
        self._live: Live | None = None
        self._enabled_live = enabled_live
        self._console = Console(file=sys.stderr)

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
        if self._live is not None:
            self._live.update(self._table(counts, active_jobs, launched, seconds))
            return
        self._console.print(
            f"[{seconds:6.1f}s] backlog {counts.eligible:>6}  pending {counts.pending:>6}  "
            f"processing {counts.processing:>5}  completed {counts.completed:>6}  "
            f"failed {counts.failed:>4}  active Jobs {active_jobs:>2}  launched {launched:>3}",
            highlight=False,
        )

    @staticmethod
    def _table(counts: QueueCounts, active_jobs: int, launched: int, seconds: float) -> Table:
        table = Table(title=f"snowflake-processor demo - {seconds:.0f} s")
        for column in (
            "backlog",
            "pending",
            "processing",
            "completed",
            "failed",
            "active Jobs",
            "Jobs launched",
        ):
            table.add_column(column, justify="right")
        table.add_row(
            *(
                str(v)
                for v in (
                    counts.eligible,
                    counts.pending,
                    counts.processing,
                    counts.completed,
                    counts.failed,
                    active_jobs,
                    launched,
                )
            )
        )
        return table
