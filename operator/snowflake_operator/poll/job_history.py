"""What the operator knows about its Jobs, from the watch-backed index: pure functions."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from snowflake_operator.constants import COUNTED_ANNOTATION, WORKER_CONTAINER
from snowflake_worker.errors import one_line

from .worker_report import ServiceReport, service_report

# A finished Job whose pod is known but has not ended on the watch yet: its summary comes.
SUMMARY_WAIT_SECONDS = 300
# A finished Job with no pod known: the pod's deletion (an eviction, a forced delete) may
# reach the Job watch before the pod watch; past this its summary is gone with the pod.
POD_GONE_GRACE_SECONDS = 15


def termination_message(status: Mapping[str, Any] | None) -> str | None:
    """The worker container's termination message (its JSON summary) once it has ended;
    "" when it ended without one (killed by SIGKILL: none will come); None before."""
    for container in (status or {}).get("containerStatuses") or []:
        if container.get("name") == WORKER_CONTAINER:
            terminated = (container.get("state") or {}).get("terminated")
            if not terminated:
                return None
            message = terminated.get("message")
            return str(message) if message else ""
    return None


def best_summary(messages: Iterable[str | None]) -> str | None:
    """Of the messages of one Job's pods: a summary if any pod left one, else "" if a pod
    ended without one, else None (none has ended yet)."""
    found = list(messages)
    return next((m for m in found if m), "" if "" in found else None)


@dataclass(frozen=True)
class JobReport:
    """What one finished Job did, from its worker's summary (zeros when there was none)."""

    name: str
    succeeded: bool
    completed: int
    failed: int
    summary_seen: bool
    claimed: int = 0
    released: int = 0
    service: ServiceReport = field(default_factory=ServiceReport)  # its calls: classes, latency
    error: str | None = None  # a worker that stopped on a fatal error says why (one line)
    # The claim and write-back sizes its worker chose (the summary's "batches")
    batches: Mapping[str, Any] = field(default_factory=dict)
    # No pod of it was left to read: evicted, force-deleted or its node lost, so its
    # summary went with the pod (its entries come back through their leases).
    pod_gone: bool = False


@dataclass(frozen=True)
class Totals:
    completed: int = 0
    failed: int = 0
    counted_jobs: tuple[str, ...] = ()
    reports: tuple[JobReport, ...] = ()


def job_event(report: JobReport) -> tuple[str, str, str]:
    """The Event that records a counted Job once the Job itself is deleted: (type, reason,
    message). The history of finished Jobs lives in Events and status.totals, not in
    finished pods that Fargate keeps billing."""
    outcome = "succeeded" if report.succeeded else "failed"
    if report.error is not None:
        detail = f"its worker stopped: {report.error}"
    elif report.pod_gone and not report.summary_seen:
        detail = (
            "its pod was deleted before its summary was read (evicted, force-deleted or its "
            "node lost); the entries it held come back when their leases expire"
        )
    elif report.summary_seen:
        detail = f"{report.completed} entries completed, {report.failed} failed for good"
    else:
        detail = "no summary from its worker (see the pod's log)"
    kind, reason = ("Normal", "JobSucceeded") if report.succeeded else ("Warning", "JobFailed")
    return kind, reason, f"Job {report.name} {outcome}: {detail}"


def fold_summaries(
    records: Iterable[JobRecord], summaries: Mapping[str, str | None], now: datetime
) -> Totals:
    """Entries completed and failed by finished Jobs not yet counted, from their workers'
    summaries (``summaries`` has a key for each Job with a pod known: its summary, "" when
    its pod ended without one, None before it ended). A Job counts as zero at once when its
    pod ended silently, once POD_GONE_GRACE_SECONDS passed when no pod of it is known (it
    was evicted or deleted with its summary), and after SUMMARY_WAIT_SECONDS otherwise: a
    Job not counted keeps its place among the Jobs launches are planned around."""
    reports: list[JobReport] = []
    for record in records:
        if not record.finished or record.counted:
            continue
        text = summaries.get(record.name)
        wait = SUMMARY_WAIT_SECONDS if record.name in summaries else POD_GONE_GRACE_SECONDS
        if text is None and not _finished_before(record, now, wait):
            continue
        summary = _parse(text)
        reports.append(
            JobReport(
                name=record.name,
                succeeded=record.succeeded,
                completed=_whole(summary.get("completed")),
                failed=_whole(summary.get("failed")),
                summary_seen=bool(summary),
                claimed=_whole(summary.get("claimed")),
                released=_whole(summary.get("released")),
                service=service_report(summary),
                error=_error(summary),
                batches=_mapping(summary.get("batches")),
                pod_gone=record.name not in summaries,
            )
        )
    return Totals(
        completed=sum(r.completed for r in reports),
        failed=sum(r.failed for r in reports),
        counted_jobs=tuple(r.name for r in reports),
        reports=tuple(reports),
    )


def _whole(value: Any) -> int:
    """A count from the summary; anything else (a newer or broken worker) is 0."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _error(summary: Mapping[str, Any]) -> str | None:
    """The fatal error a worker's last word names: its messages never hold a secret."""
    error = summary.get("error")
    if summary.get("event") == "fatal" and isinstance(error, str) and error.strip():
        return one_line(error)
    return None


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _parse(text: str | None) -> dict[str, Any]:
    try:
        value = json.loads(text) if text else {}
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def _finished_before(record: JobRecord, now: datetime, seconds: float) -> bool:
    try:
        finished = datetime.fromisoformat(str(record.finished_at).replace("Z", "+00:00"))
    except ValueError:
        return True
    return (now - finished).total_seconds() > seconds


@dataclass(frozen=True)
class JobRecord:
    name: str
    created: str  # RFC 3339; sorts in time order
    finished: bool
    succeeded: bool
    finished_at: str | None
    running: bool = False  # a pod is ready; unfinished and not running means starting
    counted: bool = False  # its worker's summary is already in the resource's status totals


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
        running=not (succeeded or failed) and _pods_running(status),
        counted=COUNTED_ANNOTATION in (meta.get("annotations") or {}),
    )


def _pods_running(status: Mapping[str, Any]) -> bool:
    """The Job controller counts a Pending pod as active, and Fargate takes about a minute
    to start one: a pod runs once it is ready (status.ready, Kubernetes 1.24+; without it,
    active is all there is)."""
    if "ready" in status:
        return int(status.get("ready") or 0) > 0
    return int(status.get("active") or 0) > 0


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
