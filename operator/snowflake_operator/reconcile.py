"""The reconcile core: pure decisions from what was observed. No I/O here.

The kopf operator and the local demo both call plan_tick() and apply its plan.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from snowflake_worker.queue import LeaseRecovery, QueueCounts

from .spec import ProcessorSpec

MAX_JOB_NAME = 63  # a Job name becomes a label value: 63 characters at most


def jobs_to_launch(backlog: int, entries_per_job: int, unfinished: int, max_active: int) -> int:
    """clamp(ceil(backlog / entriesPerJob) - unfinished, 0, maxActiveJobs - unfinished).

    Unfinished Jobs (running or still Pending) are assumed to take their share of the
    backlog, like KEDA ScaledJob's "accurate" strategy.
    """
    if backlog <= 0:
        return 0
    wanted = math.ceil(backlog / entries_per_job) - unfinished
    return max(0, min(wanted, max_active - unfinished))


def tick_slot(now: datetime, poll_interval_seconds: int) -> int:
    """Which poll interval ``now`` falls in; a retried tick in the same slot maps the same."""
    return int(now.timestamp()) // poll_interval_seconds


def job_names(processor: str, slot: int, count: int) -> list[str]:
    """Deterministic per (processor, tick slot): re-running a tick cannot add Jobs twice,
    because creating an existing name fails instead of launching another Job."""
    names = []
    for index in range(count):
        suffix = f"-{slot:x}-{index}"
        base = processor[: MAX_JOB_NAME - len(suffix) - 7]
        if len(processor) > len(base):  # truncated: keep names of different CRs apart
            base += "-" + hashlib.sha256(processor.encode()).hexdigest()[:5]
        names.append(f"{base}{suffix}".lower())
    return names


@dataclass(frozen=True)
class Condition:
    type: str
    status: bool
    reason: str
    message: str

    def as_dict(self, now: datetime) -> dict[str, Any]:
        return {
            "type": self.type,
            "status": "True" if self.status else "False",
            "reason": self.reason,
            "message": self.message,
            "lastTransitionTime": now.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        }


@dataclass(frozen=True)
class Observation:
    """What one tick saw. counts is None when Snowflake could not be reached."""

    now: datetime
    unfinished_jobs: int
    counts: QueueCounts | None = None
    recovery: LeaseRecovery | None = None
    snowflake_error: str | None = None
    certificates_ready: bool = True
    certificates_message: str = "certificates present"


@dataclass(frozen=True)
class TickPlan:
    launch: list[str]
    status: dict[str, Any]
    conditions: list[Condition] = field(default_factory=list)
    events: list[tuple[str, str, str]] = field(default_factory=list)  # (type, reason, message)


def plan_tick(name: str, spec: ProcessorSpec, seen: Observation) -> TickPlan:
    """Decide which Jobs to launch, the status to report and the events to emit."""
    events: list[tuple[str, str, str]] = []
    reachable = seen.counts is not None
    conditions = [
        Condition(
            "SnowflakeReachable",
            reachable,
            "Connected" if reachable else "QueryFailed",
            "queue table answered" if reachable else (seen.snowflake_error or "unknown error"),
        ),
        Condition(
            "CertificatesSynced",
            seen.certificates_ready,
            "Synced" if seen.certificates_ready else "Invalid",
            seen.certificates_message,
        ),
        Condition(
            "Suspended",
            spec.suspend,
            "Suspended" if spec.suspend else "Active",
            "spec.suspend is true: no Jobs are launched" if spec.suspend else "launching as needed",
        ),
    ]
    if seen.recovery and seen.recovery.requeued:
        events.append(
            (
                "Normal",
                "LeasesRecovered",
                f"{seen.recovery.requeued} expired leases returned to pending",
            )
        )
    if seen.recovery and seen.recovery.dead_lettered:
        events.append(
            (
                "Warning",
                "DeadLettered",
                f"{seen.recovery.dead_lettered} entries failed for good: leases expired "
                f"{spec.queue.max_attempts} times",
            )
        )
    if not reachable:
        events.append(("Warning", "SnowflakeUnreachable", seen.snowflake_error or "query failed"))

    launch: list[str] = []
    if reachable and seen.certificates_ready and not spec.suspend:
        assert seen.counts is not None
        count = jobs_to_launch(
            seen.counts.eligible,
            spec.job.entries_per_job,
            seen.unfinished_jobs,
            spec.job.max_active_jobs,
        )
        launch = job_names(name, tick_slot(seen.now, spec.poll_interval_seconds), count)
        if launch:
            events.append(
                (
                    "Normal",
                    "JobsLaunched",
                    f"launched {len(launch)} Jobs for {seen.counts.eligible} eligible entries "
                    f"({seen.unfinished_jobs} already unfinished)",
                )
            )
    ready = reachable and seen.certificates_ready
    conditions.insert(
        0,
        Condition(
            "Ready",
            ready,
            "Polling" if ready else "Blocked",
            "queue polled and Jobs sized"
            if ready
            else "see SnowflakeReachable and CertificatesSynced",
        ),
    )
    return TickPlan(
        launch=launch,
        status=status_fields(seen, len(launch)),
        conditions=conditions,
        events=events,
    )


def status_fields(seen: Observation, launched: int) -> dict[str, Any]:
    """The counters a user sees in `kubectl get sfp` (only what this tick measured)."""
    status: dict[str, Any] = {
        "activeJobs": seen.unfinished_jobs + launched,
        "lastPollTime": seen.now.astimezone(UTC).isoformat().replace("+00:00", "Z"),
    }
    if seen.counts is not None:
        status.update(
            backlog=seen.counts.eligible,
            pending=seen.counts.pending,
            processing=seen.counts.processing,
            completed=seen.counts.completed,
            failed=seen.counts.failed,
            oldestPendingAgeSeconds=seen.counts.oldest_pending_age_seconds,
        )
    return status
