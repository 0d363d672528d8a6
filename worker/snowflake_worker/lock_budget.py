"""How many Jobs one queue table's lock can take without Snowflake refusing statements.

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
each Job sends about one claim per claimSeconds and one write-back per flushSeconds, so
the share of the lock a fleet holds grows with its Jobs, not with its speed
(:func:`lock_share_per_job`), and the operator launches no more Jobs than keep it within
the share it may plan for (:func:`jobs_within_lock_share`; docs/operations.md, "Scale
limits").
"""

from __future__ import annotations

import math

SNOWFLAKE_LOCK_WAITERS_LIMIT = 20  # "exceeds the 20 statements limit" (error 000625)
STATEMENTS_PER_WORKER = 1
OPERATOR_AND_OPS_STATEMENTS = 2


def most_waiting(active_jobs: int) -> int:
    """The most statements that can wait for the table's lock with ``active_jobs`` Jobs."""
    return active_jobs * STATEMENTS_PER_WORKER + OPERATOR_AND_OPS_STATEMENTS - 1


# The largest maxActiveJobs whose statements never exceed Snowflake's waiter limit.
MAX_ACTIVE_JOBS = (
    SNOWFLAKE_LOCK_WAITERS_LIMIT + 1 - OPERATOR_AND_OPS_STATEMENTS
) // STATEMENTS_PER_WORKER


def fixed_batch_ceiling(hold_seconds: float, claim_batch: int, flush_every: int) -> float:
    """Entries/s no fleet can pass when every claim of ``claim_batch`` and every write-back
    of ``flush_every`` outcomes holds the table's lock ``hold_seconds``."""
    return 1 / (hold_seconds * (1 / claim_batch + 1 / flush_every))


def lock_share_per_job(hold_seconds: float, claim_seconds: float, flush_seconds: float) -> float:
    """The share of the table's lock one busy Job holds: a claim every ``claim_seconds`` and
    a write-back every ``flush_seconds`` (while its claims stay below claimMax), each held
    ``hold_seconds``."""
    return hold_seconds * (1 / claim_seconds + 1 / flush_seconds)


def jobs_within_lock_share(
    share: float, hold_seconds: float, claim_seconds: float, flush_seconds: float
) -> int:
    """The most Jobs whose statements together hold at most ``share`` of the lock (>= 1)."""
    per_job = lock_share_per_job(hold_seconds, claim_seconds, flush_seconds)
    return max(1, math.floor(share / per_job + 1e-9))
