"""A poll's decisions: pure functions of what it observed. No I/O here.

poll/run.py observes, calls plan_poll() and applies its plan, for the operator and the demo.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from snowflake_operator.spec.model import ProcessorSpec
from snowflake_worker.queue_records import LeaseRecovery, QueueCounts

from .job_count import lock_status
from .launch_backoff import BackoffState, condition_fields

MAX_JOB_NAME = 63  # a Job name becomes a label value: 63 characters at most


def poll_slot(now: datetime, poll_interval_seconds: int) -> int:
    """Which poll interval ``now`` falls in; a retried poll in the same slot maps the same."""
    return int(now.timestamp()) // poll_interval_seconds


def job_names(processor: str, slot: int, count: int) -> list[str]:
    """Deterministic per (processor, poll slot): re-running a poll cannot add Jobs twice,
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
    """What one poll saw. counts is None when Snowflake could not be reached."""

    now: datetime
    unfinished_jobs: int
    counts: QueueCounts | None = None
    recovery: LeaseRecovery | None = None
    snowflake_error: str | None = None
    certificates_ready: bool = True
    certificates_message: str = "certificates present"
    certificates_reason: str = ""  # empty: Synced when ready, else Invalid
    certificates_checked: bool = True  # False while suspended: the condition stays as it was
    idle: bool = False  # the counts are the last full poll's: the table has not changed
    # After the Jobs that finished by this poll.
    backoff: BackoffState = field(default_factory=BackoffState)
    # Finished Jobs whose worker's summary is not in yet (it follows the Job's status by a
    # moment): they keep their place until counted, or a failed one could be replaced
    # before it counts towards the launch backoff.
    uncounted_jobs: int = 0
    # How many Jobs the backlog calls for (job_count.launches_allowed, decided once per
    # poll, before certificates are looked at); launched only if they are ready.
    wanted_jobs: int = 0

    @property
    def occupied(self) -> int:
        """The Jobs launches are planned around: unfinished and not yet counted."""
        return self.unfinished_jobs + self.uncounted_jobs


@dataclass(frozen=True)
class PollPlan:
    launch: list[str]
    status: dict[str, Any]
    conditions: list[Condition] = field(default_factory=list)
    events: list[tuple[str, str, str]] = field(default_factory=list)  # (type, reason, message)


def plan_poll(name: str, spec: ProcessorSpec, seen: Observation) -> PollPlan:
    """Decide which Jobs to launch, the conditions to report and the events to emit.

    A suspended processor runs no Snowflake statement and looks at no certificate, so its
    SnowflakeReachable and CertificatesSynced conditions are not re-reported (the last
    known ones stay).
    """
    conditions = _conditions(spec, seen)
    events = _recovery_events(spec, seen)
    reachable = seen.counts is not None
    if not reachable and not spec.suspend:
        events.append(("Warning", "SnowflakeUnreachable", seen.snowflake_error or "query failed"))
    if not seen.certificates_ready and not spec.suspend:
        reason = seen.certificates_reason or "Invalid"
        kind = "CertificatesInvalid" if reason == "Invalid" else reason  # e.g. SecretConflict
        events.append(("Warning", kind, seen.certificates_message))
    launch: list[str] = []
    if seen.counts is not None and seen.certificates_ready and not spec.suspend:
        slot = poll_slot(seen.now, spec.poll_interval_seconds)
        launch = job_names(name, slot, seen.wanted_jobs)
        if launch:
            events.append(("Normal", "JobsLaunched", _launched(spec, seen, len(launch))))
    status = status_fields(seen, len(launch))
    status.update(lock_status(spec, status["activeJobs"]))
    return PollPlan(launch, status, conditions, events)


def _launched(spec: ProcessorSpec, seen: Observation, count: int) -> str:
    assert seen.counts is not None
    why = ""
    if seen.backoff.active(spec.job.launch_backoff):
        why = " (one at a time: the launch backoff waits for a Job to succeed)"
    elif seen.counts.eligible == 0:
        why = f" (minActiveJobs {spec.job.min_active_jobs} while entries are processing)"
    return (
        f"launched {count} Jobs for {seen.counts.eligible} eligible entries "
        f"({seen.unfinished_jobs} already unfinished){why}"
    )


def _conditions(spec: ProcessorSpec, seen: Observation) -> list[Condition]:
    """Ready, Suspended, CertificatesSynced, SnowflakeReachable, LaunchBackoff and
    StrandedEntries (only when the queue was counted: otherwise it stays as it was). A
    suspended processor is Ready (reason Suspended): it does what its spec asks, and must
    not look like a broken one in `kubectl get sfp` (its SUSPENDED column says true)."""
    reachable = seen.counts is not None
    backing_off, backoff_reason, backoff_message = condition_fields(
        seen.backoff, spec.job.launch_backoff, seen.now
    )
    if spec.suspend:
        ready = Condition(
            "Ready", True, "Suspended", "spec.suspend is true: nothing is polled or launched"
        )
    elif not (reachable and seen.certificates_ready):
        ready = Condition(
            "Ready", False, "Blocked", "see SnowflakeReachable and CertificatesSynced"
        )
    elif backing_off:
        ready = Condition("Ready", False, "LaunchBackoff", backoff_message)
    else:
        ready = Condition("Ready", True, "Polling", "queue polled and Jobs sized")
    conditions = [
        ready,
        Condition(
            "Suspended",
            spec.suspend,
            "Suspended" if spec.suspend else "Active",
            "spec.suspend is true" if spec.suspend else "launching as needed",
        ),
    ]
    if seen.certificates_checked:
        conditions.append(
            Condition(
                "CertificatesSynced",
                seen.certificates_ready,
                seen.certificates_reason or ("Synced" if seen.certificates_ready else "Invalid"),
                seen.certificates_message,
            )
        )
    if not spec.suspend:
        conditions.append(
            Condition(
                "SnowflakeReachable",
                reachable,
                "Connected" if reachable else "QueryFailed",
                "queue table answered" if reachable else (seen.snowflake_error or "unknown"),
            )
        )
        conditions.append(Condition("LaunchBackoff", backing_off, backoff_reason, backoff_message))
    if not spec.suspend and seen.counts is not None:
        conditions.append(_stranded(spec, seen.counts))
    return conditions


def _stranded(spec: ProcessorSpec, counts: QueueCounts) -> Condition:
    """Pending rows with every attempt used: no claim ever takes them, and the idle gate
    does not wait for them. True is no failure of the operator (Ready stays as it is)."""
    attempts = spec.queue.max_attempts
    if not counts.stranded:
        return Condition(
            "StrandedEntries", False, "NoneStranded", "no pending entry has used all its attempts"
        )
    return Condition(
        "StrandedEntries",
        True,
        "AttemptsUsed",
        f"{counts.stranded} pending entries have used all {attempts} attempts "
        "(spec.queue.maxAttempts) and will never be claimed: raise maxAttempts, or set "
        "their status to 'failed' to keep them as dead letters",
    )


def _recovery_events(spec: ProcessorSpec, seen: Observation) -> list[tuple[str, str, str]]:
    events: list[tuple[str, str, str]] = []
    if seen.recovery and seen.recovery.requeued:
        message = f"{seen.recovery.requeued} expired leases returned to pending"
        events.append(("Normal", "LeasesRecovered", message))
    if seen.recovery and seen.recovery.dead_lettered:
        message = (
            f"{seen.recovery.dead_lettered} entries failed for good: their leases expired "
            f"and they had used {spec.queue.max_attempts} attempts"
        )
        events.append(("Warning", "DeadLettered", message))
    return events


def merge_conditions(
    previous: list[dict[str, Any]], current: list[Condition], now: datetime
) -> list[dict[str, Any]]:
    """Kubernetes-style conditions: lastTransitionTime moves only when status changes;
    conditions not re-evaluated this poll are kept as they were."""
    old = {str(c.get("type")): c for c in previous if isinstance(c, dict)}
    merged: dict[str, dict[str, Any]] = dict(old)
    for condition in current:
        fresh = condition.as_dict(now)
        before = old.get(condition.type)
        if before is not None and before.get("status") == fresh["status"]:
            fresh["lastTransitionTime"] = before.get(
                "lastTransitionTime", fresh["lastTransitionTime"]
            )
        merged[condition.type] = fresh
    order = [
        "Ready",
        "Suspended",
        "CertificatesSynced",
        "SnowflakeReachable",
        "LaunchBackoff",
        "StrandedEntries",
    ]
    return sorted(
        merged.values(),
        key=lambda c: (
            order.index(c["type"]) if c.get("type") in order else 99,
            str(c.get("type")),
        ),
    )


def status_fields(seen: Observation, launched: int) -> dict[str, Any]:
    """The counters a user sees in `kubectl get sfp` (only what this poll measured)."""
    status: dict[str, Any] = {
        "activeJobs": seen.unfinished_jobs + launched,
        "idle": seen.idle,
        "lastPollTime": seen.now.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        **seen.backoff.as_status(),
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
