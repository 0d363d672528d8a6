"""One reconcile tick with its I/O: Snowflake on one side, a Job backend on the other."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime

from snowflake_worker.queue import LeaseRecovery, QueueClient, QueueCounts

from .backends import JobBackend
from .idle import IdleGate, full_poll_due, is_idle
from .reconcile import Observation, TickPlan, plan_tick
from .spec import ProcessorSpec

log = logging.getLogger("snowflake_operator")


@dataclass(frozen=True)
class TickResult:
    observation: Observation
    plan: TickPlan
    launched: list[str]


@dataclass(frozen=True)
class QueueView:
    recovery: LeaseRecovery | None = None
    counts: QueueCounts | None = None
    error: str | None = None
    idle: bool = False  # asleep: only warehouse-free statements ran


def observe_queue(
    queue: QueueClient,
    spec: ProcessorSpec,
    unfinished_jobs: int,
    gate: IdleGate | None = None,
    clock: float | None = None,
) -> QueueView:
    """Recover expired leases and count, unless the idle gate says nothing changed."""
    clock = time.monotonic() if clock is None else clock
    try:
        candidate = gate is not None and unfinished_jobs == 0
        if gate is not None and gate.asleep and candidate and gate.signature is not None:
            current = queue.table_signature()
            since = clock - gate.last_full_poll
            if not full_poll_due(gate.signature, current, since, spec.idle_poll_seconds):
                return QueueView(counts=gate.counts, idle=True)
            gate.wake()
        # Read before counting: a row added in between then shows as a change later.
        signature = queue.table_signature() if candidate else None
        recovery = queue.recover_expired_leases(
            lease_seconds=spec.queue.lease_seconds, max_attempts=spec.queue.max_attempts
        )
        counts = queue.counts(max_attempts=spec.queue.max_attempts)
    except Exception as exc:  # any driver error: report it as a condition, keep ticking
        message = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
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


def reconcile_once(
    name: str,
    spec: ProcessorSpec,
    queue: QueueClient | None,
    backend: JobBackend,
    now: datetime,
    *,
    certificates_ready: bool = True,
    certificates_message: str = "certificates present",
    snowflake_error: str | None = None,
    idle_gate: IdleGate | None = None,
) -> TickResult:
    """Recover leases, measure, decide, launch. Suspended: no Snowflake statement at all.

    ``queue`` is None when no connection could be made; ``snowflake_error`` says why.
    With an ``idle_gate``, an idle queue costs only warehouse-free statements.
    """
    unfinished = backend.unfinished_count()
    view = QueueView(error=snowflake_error)
    if not spec.suspend and queue is not None:
        view = observe_queue(queue, spec, unfinished, idle_gate)
    seen = Observation(
        now=now,
        unfinished_jobs=unfinished,
        counts=view.counts,
        recovery=view.recovery,
        snowflake_error=view.error,
        certificates_ready=certificates_ready,
        certificates_message=certificates_message,
        idle=view.idle,
    )
    plan = plan_tick(name, spec, seen)
    launched = [job for job in plan.launch if backend.launch(job, spec)]
    return TickResult(seen, plan, launched)
