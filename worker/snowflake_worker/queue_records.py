"""What the queue's statements read, as plain records (pure: no connector), so the
operator's pure core can use them without loading the Snowflake connector."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class QueueCounts:
    eligible: int  # pending, below max attempts, next attempt due: what Jobs can claim now
    pending: int
    processing: int
    completed: int
    failed: int
    oldest_pending_age_seconds: int | None
    # Pending with every attempt used: never claimable again (e.g. maxAttempts lowered).
    stranded: int = 0
    # Seconds until the first pending row waiting out a retry delay is claimable; None:
    # none waits.
    next_attempt_seconds: int | None = None

    @property
    def total(self) -> int:
        return self.pending + self.processing + self.completed + self.failed


@dataclass(frozen=True)
class TableSignature:
    rows: int  # SHOW TABLES "rows"
    bytes: int  # SHOW TABLES "bytes": changes when micro-partitions are rewritten
    count: int  # COUNT(*) from metadata

    @property
    def metadata_reliable(self) -> bool:
        """False where SHOW TABLES reports 0 rows and 0 bytes for a table that has rows
        (fakesnow without the emulator's model of Snowflake)."""
        return not (self.count > 0 and self.rows == 0 and self.bytes == 0)


@dataclass(frozen=True)
class DeadLetter:
    """A failed row as the ops commands show it."""

    id: str
    error_message: str | None
    retry_count: int
    failed_at: datetime | None  # NULL on rows a legacy writer failed


@dataclass(frozen=True)
class LeaseRecovery:
    requeued: int
    dead_lettered: int
