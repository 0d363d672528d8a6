"""Where Jobs run: the interface the reconcile loop talks to."""

from __future__ import annotations

from typing import Protocol


class JobBackend(Protocol):
    def unfinished_count(self) -> int:
        """Jobs launched for this processor that have not finished (running or Pending)."""
        ...

    def launch(self, name: str, environment: dict[str, str]) -> bool:
        """Start a Job; False when a Job of that name already exists (nothing launched)."""
        ...
