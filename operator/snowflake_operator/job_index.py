"""What the operator knows about its Jobs, from the watch-backed index: pure functions."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class JobRecord:
    name: str
    created: str  # RFC 3339; sorts in time order
    finished: bool
    succeeded: bool
    finished_at: str | None
    running: bool = False  # a pod is active; unfinished and not running means Pending


def job_record(name: str, meta: Mapping[str, Any], status: Mapping[str, Any] | None) -> JobRecord:
    """A Job is unfinished until it completes or fails, so one whose pod is still Pending
    (Fargate may take a minute to start it) counts as unfinished."""
    status = status or {}
    conditions = {
        c.get("type"): c for c in status.get("conditions") or [] if c.get("status") == "True"
    }
    succeeded = "Complete" in conditions or int(status.get("succeeded") or 0) > 0
    failed = "Failed" in conditions or int(status.get("failed") or 0) > 0  # backoffLimit is 0
    finished_at = status.get("completionTime") or next(
        (c.get("lastTransitionTime") for c in conditions.values()), None
    )
    return JobRecord(
        name=name,
        created=str(meta.get("creationTimestamp") or ""),
        finished=succeeded or failed,
        succeeded=succeeded,
        finished_at=finished_at if (succeeded or failed) else None,
        running=not (succeeded or failed) and int(status.get("active") or 0) > 0,
    )


def unfinished_names(records: Iterable[JobRecord]) -> set[str]:
    return {r.name for r in records if not r.finished}


def jobs_beyond_history(
    records: Iterable[JobRecord], successful_limit: int, failed_limit: int
) -> list[str]:
    """Finished Jobs to delete, oldest first, keeping the newest of each kind (like CronJob)."""
    finished = sorted(
        (r for r in records if r.finished), key=lambda r: (r.finished_at or r.created, r.name)
    )
    succeeded = [r.name for r in finished if r.succeeded]
    failed = [r.name for r in finished if not r.succeeded]
    return (
        succeeded[: max(0, len(succeeded) - successful_limit)]
        + failed[: max(0, len(failed) - failed_limit)]
    )
