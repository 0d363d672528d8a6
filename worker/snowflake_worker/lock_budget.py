"""How many Jobs one queue table's lock can take without Snowflake refusing statements.

Snowflake runs UPDATE, DELETE and MERGE on one table one at a time, and fails a statement
with error 000625 when it would make more than 20 statements wait for the table's lock.
Who can have a statement on the queue table at once:

- each worker: one. A worker holds one connection and runs its statements one after the
  other (drain.py gives Snowflake a single thread), so it never has two on the table;
- the operator: one per SnowflakeProcessor (a poll runs its statements one after the other);
- an ops command (enqueue, requeue, purge) run by hand meanwhile: one.

One statement holds the lock and the rest wait, so with J Jobs at most J + 1 wait. Within
Snowflake's 20 that is 19 Jobs for one table (one SnowflakeProcessor per table). How fast
they drain is a separate bound: the table completes 1 / (lock hold time) statements a
second whatever the number of Jobs, which is why batches are large (docs/operations.md,
"Scale limits").
"""

from __future__ import annotations

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
