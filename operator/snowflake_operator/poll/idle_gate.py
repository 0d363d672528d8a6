"""Idle cost control: no warehouse-using statement while a queue is idle.

A poll that finds nothing to do (nothing eligible, nothing processing, no unfinished Jobs)
puts the processor to sleep with a signature of the table read without a warehouse (see
TableSignature: SHOW TABLES IN SCHEMA and a metadata COUNT(*)). Later polls read the
signature first and run the warehouse-using statements only when it changed, when
``idlePollSeconds`` passed (0: never), or when the first row waiting out a retry delay
becomes claimable. Pending rows do not keep it awake: those waiting out a delay are
claimable only later (the poll after their ``next_attempt_at`` is a full one), and those
with every attempt used never are (the StrandedEntries condition reports them). A
signature that cannot be read is no reason to stop: that poll is a full one.

Where SHOW TABLES reports 0 rows and bytes for a table that has rows (fakesnow alone, with
the emulator's ``--fakesnow-only``; its model reports both, as Snowflake does), only the
metadata COUNT(*) is compared, which sees inserts and deletes but not an UPDATE such as a
requeue of dead letters: the safety-net interval covers that case, and any change the
signature misses.
"""

from __future__ import annotations

from dataclasses import dataclass

from snowflake_worker.queue_records import QueueCounts, TableSignature

# Statement kinds that need no running warehouse on Snowflake.
WAREHOUSE_FREE_KINDS = frozenset({"idle_show", "idle_count"})


def is_idle(counts: QueueCounts, unfinished_jobs: int) -> bool:
    """Nothing a Job could claim now and nothing a lease recovery could return."""
    return unfinished_jobs == 0 and counts.eligible == 0 and counts.processing == 0


def signature_changed(before: TableSignature, now: TableSignature) -> bool:
    if before.metadata_reliable and now.metadata_reliable:
        return (before.rows, before.bytes, before.count) != (now.rows, now.bytes, now.count)
    return before.count != now.count


def full_poll_due(
    before: TableSignature,
    now: TableSignature,
    seconds_since_full_poll: float,
    idle_poll: int,
    next_attempt_seconds: int | None = None,
) -> bool:
    """Whether a sleeping processor must run its warehouse-using statements now.
    ``next_attempt_seconds``: when the last full poll saw the first row waiting out a retry
    delay become claimable (seconds after it), None when none waited."""
    if signature_changed(before, now):
        return True
    if next_attempt_seconds is not None and seconds_since_full_poll >= next_attempt_seconds:
        return True
    return idle_poll > 0 and seconds_since_full_poll >= idle_poll


@dataclass
class IdleGate:
    """Per-processor idle state (kept between polls)."""

    signature: TableSignature | None = None  # set while asleep
    counts: QueueCounts | None = None  # what the last full poll found
    last_full_poll: float = 0.0

    @property
    def asleep(self) -> bool:
        return self.signature is not None

    def wake(self) -> None:
        self.signature = None
