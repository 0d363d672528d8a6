"""One poll of one SnowflakeProcessor, top to bottom, with its I/O in named steps.

    1. fold summaries    finished Jobs' worker summaries into status.totals, one Event each;
                         failed ones lengthen the launch backoff, a success ends it (pure:
                         the Jobs are marked counted in step 7, once the poll went through)
    2. open the queue    the operator's Snowflake connection (kept between polls)
    3. observe           lease recovery and counts, or the idle gate's warehouse-free check
    4. certificates      the Secret the Jobs mount: checked before Jobs are launched, and
                         otherwise at most every few minutes
    5. plan              pure: planning.plan_poll
    6. launch            the planned Jobs, with names fixed per poll slot
    7. clean up          the folded Jobs marked counted; counted Jobs beyond the history
                         limits deleted (0 by default: at once, since a finished pod on
                         Fargate is billed until it is removed)

The operator (daemon/handlers.py, through kube/edges.py) and the local demo (snowflake_devtools)
run this same function; what differs is behind PollEdges: where Jobs run and where
certificates and Snowflake credentials come from.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from snowflake_operator.spec.model import ProcessorSpec
from snowflake_worker.errors import one_line
from snowflake_worker.queue_records import LeaseRecovery, QueueCounts, TableSignature

from .certificate_bundle import CertificatesOutcome
from .idle_gate import IdleGate, full_poll_due, is_idle
from .job_backend import JobBackend, JobHistory
from .job_count import launches_allowed
from .job_history import JobReport, fold_summaries, job_event, jobs_beyond_history
from .launch_backoff import BackoffState, after_finished_jobs
from .planning import Condition, Observation, PollPlan, plan_poll

log = logging.getLogger("snowflake_operator")

Event = tuple[str, str, str]  # (type, reason, message)


class CertificateSource(Protocol):
    def ensure(self, spec: ProcessorSpec, now: datetime, *, launching: bool) -> CertificatesOutcome:
        """The Secret the Jobs mount: synced, checked, or why it cannot be used. With
        ``launching`` (Jobs are wanted now) it is looked at afresh."""
        ...


class QueueStatements(Protocol):
    """The queue statements a poll runs (snowflake_worker.queue.QueueClient has them)."""

    def table_signature(self) -> TableSignature: ...

    def recover_expired_leases(self, *, lease_seconds: int, max_attempts: int) -> LeaseRecovery: ...

    def counts(self, *, max_attempts: int) -> QueueCounts: ...

    def settled_by(self, jobs: Sequence[str]) -> dict[str, tuple[int, int]]: ...


class QueueSource(Protocol):
    def open(self, spec: ProcessorSpec) -> tuple[QueueStatements | None, str | None]:
        """(queue, None), or (None, why no connection could be made)."""
        ...

    def drop(self) -> None:
        """Forget the connection: the next poll opens a new one."""
        ...


@dataclass
class PollEdges:
    """The I/O one poll needs, for one processor."""

    certificates: CertificateSource
    queues: QueueSource
    jobs: JobBackend
    history: JobHistory | None = None  # None: no finished Jobs to fold or clean up
    idle_gate: IdleGate | None = None  # None: every poll runs the full statements


@dataclass(frozen=True)
class PollResult:
    observation: Observation
    plan: PollPlan
    launched: list[str]
    status: dict[str, Any]  # what to patch into .status, conditions apart
    conditions: list[Condition]
    events: list[Event]
    failed: bool  # Snowflake or the certificates failed: back off before the next poll
    certificates: CertificatesOutcome | None  # None while suspended: not looked at
    seconds: float = 0.0
    job_reports: tuple[JobReport, ...] = ()  # the Jobs this poll counted


@dataclass(frozen=True)
class QueueView:
    recovery: LeaseRecovery | None = None
    counts: QueueCounts | None = None
    error: str | None = None
    idle: bool = False  # asleep: only warehouse-free statements ran


@dataclass(frozen=True)
class FoldedTotals:
    totals: dict[str, int] = field(default_factory=dict)
    counted_jobs: tuple[str, ...] = ()
    events: tuple[Event, ...] = ()  # one per counted Job: its record once it is deleted
    reports: tuple[JobReport, ...] = ()  # what each counted Job did, oldest first


def run_poll(
    name: str,
    spec: ProcessorSpec,
    edges: PollEdges,
    now: datetime,
    previous: Mapping[str, Any] | None = None,
) -> PollResult:
    """One poll; blocking I/O (run it in a thread from async code). ``previous`` is the
    status the last poll left (its totals and launch backoff). Suspended, it looks at
    nothing but the Jobs it knows of."""
    started = time.monotonic()
    previous = previous or {}
    folded = fold_worker_summaries(edges.history, now, previous.get("totals") or {})
    backoff, backoff_events = after_finished_jobs(
        BackoffState.from_status(previous), folded.reports, spec.job.launch_backoff, now
    )
    queue, connect_error = (None, None) if spec.suspend else edges.queues.open(spec)
    unfinished = edges.jobs.unfinished_count()
    uncounted = uncounted_jobs(edges.history, folded.counted_jobs)
    view = QueueView(error=connect_error)
    if queue is not None and not spec.suspend:
        view = observe_queue(queue, spec, unfinished, edges.idle_gate)
    certificates = None
    wanted = 0
    if not spec.suspend:  # how many Jobs, decided here once for this poll
        wanted = launches_allowed(spec, view.counts, unfinished + uncounted, backoff, now)
        certificates = edges.certificates.ensure(spec, now, launching=wanted > 0)
    observation = Observation(
        now=now,
        unfinished_jobs=unfinished,
        counts=view.counts,
        recovery=view.recovery,
        snowflake_error=view.error,
        certificates_ready=certificates is not None and certificates.ready,
        certificates_message="" if certificates is None else certificates.message,
        certificates_reason="" if certificates is None else certificates.condition_reason,
        certificates_checked=certificates is not None,
        idle=view.idle,
        backoff=backoff,
        uncounted_jobs=uncounted,
        wanted_jobs=wanted,
    )
    plan = plan_poll(name, spec, observation)
    secret = "" if certificates is None else certificates.secret_name
    launched = launch_jobs(plan, spec, edges.jobs, secret)
    snowflake_failed = observation.counts is None and not spec.suspend
    if snowflake_failed:
        edges.queues.drop()  # reconnect on the next poll
    mark_counted(edges.history, folded.counted_jobs)  # their totals go out with this result
    clean_up_history(edges.history, spec, folded.counted_jobs)
    status = dict(plan.status)
    status["totals"] = counted_totals(
        previous.get("totals") or {}, folded, queue, view.recovery, spec.suspend
    )
    if certificates is not None and certificates.status:
        status["certificates"] = certificates.status
    return PollResult(
        observation=observation,
        plan=plan,
        launched=launched,
        status=status,
        conditions=plan.conditions,
        events=list(folded.events)
        + backoff_events
        + (certificates.events if certificates else [])
        + plan.events,
        failed=snowflake_failed or (certificates is not None and not certificates.ready),
        certificates=certificates,
        seconds=time.monotonic() - started,
        job_reports=folded.reports,
    )


def observe_queue(
    queue: QueueStatements,
    spec: ProcessorSpec,
    unfinished_jobs: int,
    gate: IdleGate | None = None,
    clock: float | None = None,
) -> QueueView:
    """Recover expired leases and count, unless the idle gate says nothing changed. A
    signature that cannot be read makes this a full poll, never a failed one."""
    clock = time.monotonic() if clock is None else clock
    candidate = gate is not None and unfinished_jobs == 0
    signature: TableSignature | None = None
    if gate is not None and candidate and gate.signature is not None and gate.counts is not None:
        signature = read_signature(queue)
        since = clock - gate.last_full_poll
        retry_due = gate.counts.next_attempt_seconds
        if signature is not None and not full_poll_due(
            gate.signature, signature, since, spec.idle_poll_seconds, retry_due
        ):
            return QueueView(counts=gate.counts, idle=True)
        gate.wake()
    elif candidate:
        # Read before counting: a row added in between then shows as a change later.
        signature = read_signature(queue)
    try:
        recovery = queue.recover_expired_leases(
            lease_seconds=spec.queue.lease_seconds, max_attempts=spec.queue.max_attempts
        )
        counts = queue.counts(max_attempts=spec.queue.max_attempts)
    except Exception as exc:  # any driver error: report it as a condition, keep polling
        message = one_line(exc)
        log.warning("Snowflake query failed", extra={"error": message})
        if gate is not None:
            gate.wake()
        return QueueView(error=message)
    if gate is not None:
        gate.counts, gate.last_full_poll = counts, clock
        if signature is not None and is_idle(counts, unfinished_jobs):
            gate.signature = signature
        else:
            gate.wake()
    return QueueView(recovery, counts)


def read_signature(queue: QueueStatements) -> TableSignature | None:
    """The table's warehouse-free signature, or None (logged) when it cannot be read: the
    poll then runs its full statements, and the gate stays awake."""
    try:
        return queue.table_signature()
    except Exception as exc:  # a refused SHOW must not stop counting and launching
        log.warning("table signature not read: full poll", extra={"error": one_line(exc)})
        return None


def launch_jobs(
    plan: PollPlan, spec: ProcessorSpec, jobs: JobBackend, certificates_secret: str
) -> list[str]:
    """The planned Jobs that were created now (an existing name launches nothing)."""
    return [job for job in plan.launch if jobs.launch(job, spec, certificates_secret)]


def fold_worker_summaries(
    history: JobHistory | None, now: datetime, totals: Mapping[str, Any]
) -> FoldedTotals:
    """Add finished Jobs' completed and failed counts to the totals, once per Job: the
    Jobs folded here are marked counted (mark_counted) only after the poll went through,
    so a poll that fails half-way leaves them to the next one."""
    before = {key: int(totals.get(key) or 0) for key in ("completed", "failed")}
    if history is None:
        return FoldedTotals(before)
    folded = fold_summaries(history.records(), history.summaries(), now)
    return FoldedTotals(
        {
            "completed": before["completed"] + folded.completed,
            "failed": before["failed"] + folded.failed,
        },
        folded.counted_jobs,
        tuple(job_event(report) for report in folded.reports),
        folded.reports,
    )


def counted_totals(
    before: Mapping[str, Any],
    folded: FoldedTotals,
    queue: QueueStatements | None,
    recovery: LeaseRecovery | None,
    suspended: bool,
) -> dict[str, int]:
    """Lifetime completed and failed entries: what the Jobs counted in this poll settled,
    read from the table (a worker killed before its summary still settled rows), plus the
    entries lease recovery dead-lettered. When the table cannot be read (suspended, or
    Snowflake away) the workers' summaries stand in for it."""
    settled: dict[str, tuple[int, int]] | None = None
    if queue is not None and not suspended and folded.counted_jobs:
        try:
            settled = queue.settled_by(folded.counted_jobs)
        except Exception as exc:  # a driver error: the summaries stand in this once
            log.warning("settled entries not read", extra={"error": one_line(exc)})
    if settled is None:
        totals = dict(folded.totals)
    else:
        totals = {
            "completed": int(before.get("completed") or 0) + sum(c for c, _ in settled.values()),
            "failed": int(before.get("failed") or 0) + sum(f for _, f in settled.values()),
        }
    if recovery is not None:
        totals["failed"] += recovery.dead_lettered
    return totals


def mark_counted(history: JobHistory | None, jobs: tuple[str, ...]) -> None:
    """Remember on each Job that its summary is in the totals (survives restarts)."""
    if history is None:
        return
    for job in jobs:
        history.mark_counted(job)


def uncounted_jobs(history: JobHistory | None, counted_now: tuple[str, ...]) -> int:
    """Finished Jobs whose summary is not counted yet (it has not arrived)."""
    if history is None:
        return 0
    return sum(
        1
        for record in history.records()
        if record.finished and not record.counted and record.name not in counted_now
    )


def clean_up_history(
    history: JobHistory | None, spec: ProcessorSpec, counted_now: tuple[str, ...]
) -> None:
    """Delete counted Jobs beyond the history limits (with their pods: propagation
    Background); never one whose summary is not yet in the totals. With the default limits
    of 0 a Job goes in the very poll that counts it."""
    if history is None:
        return
    records = history.records()
    counted = {r.name for r in records if r.counted} | set(counted_now)
    for job in jobs_beyond_history(
        [r for r in records if r.name in counted],
        spec.job.successful_jobs_history_limit,
        spec.job.failed_jobs_history_limit,
    ):
        history.delete(job)
