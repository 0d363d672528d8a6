"""What the service answered and how long its calls took, counted for the run's summary.

A worker lives minutes, too short to be scraped; its summary (the termination message the
operator folds into the resource's totals and metrics) carries these counts instead. The
kubelet keeps at most 4096 bytes of that message, so the latency histogram is compact:
fixed bucket bounds and one count per bucket, never the observations themselves.
"""

from __future__ import annotations

import bisect
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

# Upper bounds (seconds) of the call-latency buckets; one more bucket holds the rest (+Inf).
# The summary carries the bounds with the counts, so an operator of another version can
# still place each count (operator/snowflake_operator/poll/worker_report.py).
CALL_SECONDS_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

# How a call ended: the class of the status the service answered, or "error" when no
# answer came (timeout, refused or dropped connection, TLS failure).
STATUS_CLASSES = ("2xx", "3xx", "4xx", "5xx", "other", "error")
NO_ANSWER = "error"


def status_class(status_code: int | None) -> str:
    """ "2xx" for 200-299 and so on; "other" outside 200-599; "error" for no answer."""
    if status_code is None:
        return NO_ANSWER
    if 200 <= status_code <= 599:
        return f"{status_code // 100}xx"
    return "other"


@dataclass
class CallStats:
    """Counts of one run's calls (every attempt, retries included)."""

    by_class: Counter[str] = field(default_factory=Counter)
    bucket_counts: list[int] = field(default_factory=lambda: [0] * (len(CALL_SECONDS_BUCKETS) + 1))
    seconds_sum: float = 0.0

    def record(self, status_code: int | None, seconds: float) -> None:
        self.by_class[status_class(status_code)] += 1
        # bisect_left: a call of exactly a bound's length belongs to that bucket (le).
        self.bucket_counts[bisect.bisect_left(CALL_SECONDS_BUCKETS, seconds)] += 1
        self.seconds_sum += seconds

    @property
    def calls(self) -> int:
        return sum(self.bucket_counts)

    def summary(self) -> dict[str, Any]:
        """The summary's ``responses`` (non-zero classes only) and ``call_seconds``."""
        return {
            "responses": {c: self.by_class[c] for c in STATUS_CLASSES if self.by_class[c]},
            "call_seconds": {
                "le": list(CALL_SECONDS_BUCKETS),
                "counts": list(self.bucket_counts),
                "sum": round(self.seconds_sum, 3),
            },
        }
