"""Where Jobs run: the interface the reconcile loop talks to."""

from __future__ import annotations

from typing import Protocol

from .spec import ProcessorSpec


class JobBackend(Protocol):
    def unfinished_count(self) -> int:
        """Jobs launched for this processor that have not finished (running or Pending)."""
        ...

    def launch(self, name: str, spec: ProcessorSpec) -> bool:
        """Start a Job running the worker for ``spec``; False when a Job of that name
        already exists (nothing launched)."""
        ...
