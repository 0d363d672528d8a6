"""Where Jobs run and what is known of finished ones: the interfaces a poll talks to.

The operator implements them on the Kubernetes API (kube/edges.py); the demo runs each
Job as a local process (snowflake_devtools).
"""

from __future__ import annotations

from typing import Protocol

from snowflake_operator.spec.model import ProcessorSpec

from .job_history import JobRecord


class JobBackend(Protocol):
    def unfinished_count(self) -> int:
        """Jobs launched for this processor that have not finished (running or Pending)."""
        ...

    def launch(self, name: str, spec: ProcessorSpec, certificates_secret: str) -> bool:
        """Start a Job running the worker for ``spec``; False when a Job of that name
        already exists (nothing launched)."""
        ...


class JobHistory(Protocol):
    """Finished Jobs: their records, their workers' summaries, and their cleanup."""

    def records(self) -> list[JobRecord]: ...

    def summaries(self) -> dict[str, str | None]:
        """Each finished, uncounted Job's worker summary (JSON text), None until seen."""
        ...

    def mark_counted(self, name: str) -> None:
        """Remember that a Job's summary is in status.totals (survives restarts)."""
        ...

    def delete(self, name: str) -> None: ...
