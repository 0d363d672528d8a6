"""One reconcile tick with its I/O: Snowflake on one side, a Job backend on the other."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from snowflake_worker.queue import LeaseRecovery, QueueClient, QueueCounts

from .backends import JobBackend
from .reconcile import Observation, TickPlan, plan_tick
from .spec import ProcessorSpec

log = logging.getLogger("snowflake_operator")


@dataclass(frozen=True)
class TickResult:
    observation: Observation
    plan: TickPlan
    launched: list[str]


def observe_queue(
    queue: QueueClient, spec: ProcessorSpec
) -> tuple[LeaseRecovery | None, QueueCounts | None, str | None]:
    """Recover expired leases, then count: returns (recovery, counts, error)."""
    try:
        recovery = queue.recover_expired_leases(
            lease_seconds=spec.queue.lease_seconds, max_attempts=spec.queue.max_attempts
        )
        counts = queue.counts(max_attempts=spec.queue.max_attempts)
    except Exception as exc:  # any driver error: report it as a condition, keep ticking
        message = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        log.warning("Snowflake query failed", extra={"error": message})
        return None, None, message
    return recovery, counts, None


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
) -> TickResult:
    """Recover leases, measure, decide, launch. Suspended: no Snowflake statement at all.

    ``queue`` is None when no connection could be made; ``snowflake_error`` says why.
    """
    recovery = counts = None
    error = snowflake_error
    if not spec.suspend and queue is not None:
        recovery, counts, error = observe_queue(queue, spec)
    seen = Observation(
        now=now,
        unfinished_jobs=backend.unfinished_count(),
        counts=counts,
        recovery=recovery,
        snowflake_error=error,
        certificates_ready=certificates_ready,
        certificates_message=certificates_message,
    )
    plan = plan_tick(name, spec, seen)
    launched = [job for job in plan.launch if backend.launch(job, spec)]
    return TickResult(seen, plan, launched)
