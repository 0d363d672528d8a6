"""A rich progress bar on stderr while a long ops command runs on a terminal; else nothing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class Progress:
    """Tasks with a bar each (``task``), shown only when ``enabled``; a context manager."""

    def __init__(self, *, enabled: bool) -> None:
        self.enabled = enabled
        self._bar: Any = None

    def __enter__(self) -> Progress:
        if self.enabled:
            from rich.console import Console
            from rich.progress import Progress as RichProgress

            self._bar = RichProgress(console=Console(stderr=True), transient=True)
            self._bar.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def stop(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    def task(self, description: str, total: int | None) -> Callable[[int], None] | None:
        """A new bar (``total`` None: no end known); returns how to advance it, or None
        when nothing is shown."""
        if self._bar is None:
            return None
        bar = self._bar
        task_id = bar.add_task(description, total=total)

        def advance(amount: int) -> None:
            bar.advance(task_id, amount)

        return advance
