"""How many Jobs: the one place that decides, once per poll.

A poll launches ``clamp(ceil(eligible / entriesPerJob) - occupied, 0, jobLimit - occupied)``
Jobs, at least minActiveJobs while the queue is busy, at most what the launch backoff allows
(:func:`launches_allowed`). ``jobLimit`` is maxActiveJobs, or fewer when more Jobs would
hold more of the table's lock than spec.queue.lockShare (:func:`job_limit`).

The table's lock:

Snowflake runs UPDATE, DELETE and MERGE on one table one at a time, and fails a statement
with error 000625 when it would make more than 20 statements wait for the table's lock.
Who can have a statement on the queue table at once:

- each worker: one. A worker holds one connection and runs its statements one after the
  other (drain.py gives Snowflake a single thread), so it never has two on the table;
- the operator: one per SnowflakeProcessor (a poll runs its statements one after the other);
- an ops command (enqueue, requeue, purge) run by hand meanwhile: one.

One statement holds the lock and the rest wait, so with J Jobs at most J + 1 wait. Within
Snowflake's 20 that is 19 Jobs for one table (one SnowflakeProcessor per table).

How fast they drain is a separate bound: the table completes 1 / (lock hold time)
statements a second whatever the number of Jobs. With batches of a fixed count the fleet
can never pass :func:`fixed_batch_ceiling`; with batches sized by time (batch_sizing.py)
each Job sends about one claim per claimSeconds and one flush per flushSeconds, so the
share of the lock a fleet holds grows with its Jobs, not with its speed
(:func:`lock_share_per_job`), and the operator launches no more Jobs than keep it within
the share it may plan for (:func:`jobs_within_lock_share`; docs/operations.md, "Scale
limits"). A flush is as many UPDATEs as its outcomes' JSON needs (the worker's
write_back_size.py: flushEvery outcomes of the widest size, stored answers escaped), each
holding the lock. MAX_ACTIVE_JOBS (constants.py) is the bound the CRD enforces.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from snowflake_operator.constants import OPERATOR_AND_OPS_STATEMENTS, STATEMENTS_PER_WORKER
from snowflake_operator.spec.model import ProcessorSpec
from snowflake_worker.queue_records import QueueCounts
from snowflake_worker.write_back_size import write_backs_per_flush

from .launch_backoff import BackoffState, launch_limit


def most_waiting(active_jobs: int) -> int:
    """The most statements that can wait for the table's lock with ``active_jobs`` Jobs."""
    return active_jobs * STATEMENTS_PER_WORKER + OPERATOR_AND_OPS_STATEMENTS - 1


def fixed_batch_ceiling(hold_seconds: float, claim_batch: int, flush_every: int) -> float:
    """Entries/s no fleet can pass when every claim of ``claim_batch`` and every write-back
    of ``flush_every`` outcomes holds the table's lock ``hold_seconds``."""
    return 1 / (hold_seconds * (1 / claim_batch + 1 / flush_every))


def lock_share_per_job(
    hold_seconds: float, claim_seconds: float, flush_seconds: float, write_backs: int = 1
) -> float:
    """The share of the table's lock one busy Job holds: a claim every ``claim_seconds`` and
    a flush of ``write_backs`` statements every ``flush_seconds`` (while its claims stay
    below claimMax), each statement held ``hold_seconds``."""
    return hold_seconds * (1 / claim_seconds + write_backs / flush_seconds)


def jobs_within_lock_share(
    share: float,
    hold_seconds: float,
    claim_seconds: float,
    flush_seconds: float,
    write_backs: int = 1,
) -> int:
    """The most Jobs whose statements together hold at most ``share`` of the lock (>= 1)."""
    per_job = lock_share_per_job(hold_seconds, claim_seconds, flush_seconds, write_backs)
    return max(1, math.floor(share / per_job + 1e-9))


def spec_write_backs_per_flush(spec: ProcessorSpec) -> int:
    """The most write-back statements one flush of this processor's Jobs sends: the worker's
    own chunking of flushEvery outcomes, with answers of storeResponseBytes escaped."""
    return write_backs_per_flush(spec.job.flush_every, spec.endpoint.store_response_bytes)


def spec_lock_share_per_job(spec: ProcessorSpec) -> float:
    """The share of the table's lock one busy Job of this processor holds."""
    return lock_share_per_job(
        spec.queue.lock_hold_seconds,
        spec.queue.claim_seconds,
        spec.job.flush_seconds,
        spec_write_backs_per_flush(spec),
    )


def job_limit(spec: ProcessorSpec) -> int:
    """Jobs at once: maxActiveJobs, or fewer if more would hold more of the table's lock
    than lockShare (at least 1)."""
    by_lock = jobs_within_lock_share(
        spec.queue.lock_share,
        spec.queue.lock_hold_seconds,
        spec.queue.claim_seconds,
        spec.job.flush_seconds,
        spec_write_backs_per_flush(spec),
    )
    return min(spec.job.max_active_jobs, by_lock)


def jobs_to_launch(backlog: int, entries_per_job: int, unfinished: int, max_active: int) -> int:
    """clamp(ceil(backlog / entriesPerJob) - unfinished, 0, jobLimit - unfinished), where
    jobLimit is maxActiveJobs or fewer (:func:`job_limit`: the table's lock).

    Unfinished Jobs (running or still Pending) are assumed to take their share of the
    backlog, like KEDA ScaledJob's "accurate" strategy.
    """
    if backlog <= 0:
        return 0
    wanted = math.ceil(backlog / entries_per_job) - unfinished
    return max(0, min(wanted, max_active - unfinished))


def queue_busy(counts: QueueCounts) -> bool:
    """Entries to claim now, or entries a worker holds: the queue has work in hand."""
    return counts.eligible > 0 or counts.processing > 0


def launches_wanted(
    spec: ProcessorSpec, counts: QueueCounts | None, unfinished: int, limit: int | None = None
) -> int:
    """How many Jobs the backlog calls for now (before certificates are looked at): its
    share of the backlog, at least enough for minActiveJobs unfinished while the queue is
    busy, within maxActiveJobs, and within ``limit`` (the launch backoff's) if given."""
    if counts is None or spec.suspend:
        return 0
    job = spec.job
    cap = job_limit(spec)  # maxActiveJobs, or fewer if the table's lock allows fewer
    wanted = jobs_to_launch(counts.eligible, job.entries_per_job, unfinished, cap)
    if queue_busy(counts):  # warm Jobs: min(...) keeps them within the cap too
        wanted = max(wanted, min(job.min_active_jobs, cap) - unfinished)
    if limit is not None:
        wanted = min(wanted, limit)
    return max(0, wanted)


def launches_allowed(
    spec: ProcessorSpec,
    counts: QueueCounts | None,
    occupied: int,
    backoff: BackoffState,
    now: datetime,
) -> int:
    """launches_wanted within the launch backoff's limit. ``occupied``: the unfinished Jobs
    and the finished ones not counted yet."""
    limit = launch_limit(backoff, spec.job.launch_backoff, now, occupied)
    return launches_wanted(spec, counts, occupied, limit)


def lock_status(spec: ProcessorSpec, active_jobs: int) -> dict[str, Any]:
    """How many Jobs the table's lock allows, and the share of it the Jobs now use."""
    return {
        "jobLimit": job_limit(spec),
        "tableLockShare": round(active_jobs * spec_lock_share_per_job(spec), 3),
    }
