"""How much a worker claims, and when: sized by time at its observed pace, not by count.

Every claim and every write-back is an UPDATE, and Snowflake runs UPDATEs on one table one
at a time, each holding the table's lock for roughly 0.2-0.5 s. A fleet's ceiling is set
by how many such statements it sends per second, not by how many entries each carries:
``1 / (d * (1/claim + 1/flush))`` entries/s with fixed batches. So a worker claims
``claim_seconds`` of work at the pace it observes and writes back on a time rhythm
(drain.py): its statements per second stay the same however fast it goes, and a fleet of
N Jobs sends about ``N * (1/claim_seconds + 1/flush_seconds)`` of them per second.

The next claim is made before the inbox runs dry (the low-water mark): early enough that
the calls in flight never wait for it, whatever the lock makes it wait. A claim's entries
are held in memory until called, so a claim is also capped by their data's size, as the
last claim's entries measured it (the first claim, SFP_CLAIM_BATCH entries, is not).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

# A claim is finished long before its lease ends: at most this share of the lease's worth.
LEASE_SHARE = 0.25
# Claim again when the inbox holds less than this much work, or LEAD_CLAIMS claims' time.
MIN_LEAD_SECONDS = 2.0
LEAD_CLAIMS = 3.0
# Weight of the newest entry in the running mean of how long one entry takes.
PACE_SMOOTHING = 0.02


@dataclass(frozen=True)
class ClaimPolicy:
    """The worker's claim settings (SFP_CLAIM_BATCH, SFP_CLAIM_SECONDS, SFP_CLAIM_MAX,
    SFP_CLAIM_BYTES)."""

    first: int  # the first claim's size, before any pace is known
    seconds: float  # of work per claim at the observed pace
    maximum: int
    lease_seconds: float
    concurrency: int
    data_bytes: int | None = None  # SFP_CLAIM_BYTES: entry data one claim may bring in

    def size(
        self,
        pace: float | None,
        *,
        budget: int,
        seconds_left: float,
        claim_seconds: float = 0.0,
        entry_bytes: float | None = None,
    ) -> int:
        """Entries to claim now: ``seconds`` of work (more when claims are slow, see
        :meth:`lead_seconds`: a claim must outlast the next one's wait), never more than the
        lease allows, than can be done before the worker stops, than ``maximum`` or its
        entry budget, nor more data than ``data_bytes`` at ``entry_bytes`` an entry (the
        mean of the last claim; unknown before the first)."""
        if pace is None:
            wanted = self.first
        else:
            work = max(self.seconds, 2 * lead_seconds(claim_seconds))
            wanted = min(
                math.ceil(pace * work),
                math.floor(pace * self.lease_seconds * LEASE_SHARE),
                math.ceil(pace * max(0.0, seconds_left)) + self.concurrency,
            )
        if self.data_bytes is not None and entry_bytes is not None and entry_bytes > 0:
            wanted = min(wanted, math.floor(self.data_bytes / entry_bytes))
        return max(1, min(wanted, self.maximum, budget))

    def low_water(self, pace: float | None, claim_seconds: float) -> int:
        """Claim again once fewer entries than this wait to be called: enough to keep every
        caller busy while the next claim (``claim_seconds`` last time) is under way."""
        if pace is None:
            return self.concurrency
        return max(self.concurrency, math.ceil(pace * lead_seconds(claim_seconds)))


def mean_data_bytes(data: Sequence[Any]) -> float | None:
    """Characters of entry data per entry in a claim (the connector returns each VARIANT as
    JSON text); None for an empty claim."""
    if not data:
        return None
    return sum(len(item) if isinstance(item, str) else len(str(item)) for item in data) / len(data)


def lead_seconds(claim_seconds: float) -> float:
    """Work to keep in hand when a claim starts: the claim's own time (waits for the table's
    lock included) a few times over."""
    return max(MIN_LEAD_SECONDS, LEAD_CLAIMS * claim_seconds)


class Pace:
    """Entries per second this worker settles with every caller busy: concurrency over the
    mean time one entry takes (Little's law). A worker that sat idle waiting for a claim
    does not mistake the wait for its pace and claim too little next time."""

    def __init__(self, concurrency: int, smoothing: float = PACE_SMOOTHING) -> None:
        self.concurrency = concurrency
        self.smoothing = smoothing
        self._mean_seconds: float | None = None

    def record(self, seconds: float) -> None:
        """One entry settled after ``seconds`` (its retries included)."""
        if self._mean_seconds is None:
            self._mean_seconds = seconds
        else:
            self._mean_seconds += self.smoothing * (seconds - self._mean_seconds)

    @property
    def per_second(self) -> float | None:
        if self._mean_seconds is None:
            return None
        return self.concurrency / max(self._mean_seconds, 1e-3)


@dataclass
class BatchStats:
    """The sizes this worker chose, for its summary (and the operator's metrics)."""

    claims: int = 0
    claim_first: int = 0
    claim_last: int = 0
    claim_max: int = 0
    write_backs: int = 0
    written: int = 0
    write_back_max: int = 0

    def claimed(self, size: int) -> None:
        self.claims += 1
        self.claim_first = self.claim_first or size
        self.claim_last = size
        self.claim_max = max(self.claim_max, size)

    def wrote_back(self, size: int) -> None:
        self.write_backs += 1
        self.written += size
        self.write_back_max = max(self.write_back_max, size)

    def as_summary(self, pace: float | None) -> dict[str, float | int | None]:
        return {
            "claims": self.claims,
            "claim_size_first": self.claim_first,
            "claim_size_last": self.claim_last,
            "claim_size_max": self.claim_max,
            "write_backs": self.write_backs,
            "write_back_size_mean": round(self.written / self.write_backs, 1)
            if self.write_backs
            else 0,
            "write_back_size_max": self.write_back_max,
            "entries_per_second": None if pace is None else round(pace, 1),
        }
