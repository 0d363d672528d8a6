"""The service's ``Retry-After``: how long it asks the worker to wait. Pure.

RFC 9110, section 10.2.3: either a number of seconds (``delay-seconds = 1*DIGIT``) or an
HTTP-date. Anything else (a negative or fractional number, a date that does not parse) is
ignored, and the worker's own backoff applies.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

# Never wait longer than this for one entry, whatever the service asks: past it the entry
# goes back to the queue (next_attempt_at) instead, like any released entry.
MAX_RELEASE_SECONDS = 3600
# A delay longer than this many digits stands for FOREVER (a year): far past any limit.
LONGEST_DELAY_DIGITS = 9
FOREVER = 365 * 24 * 3600


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """Seconds from ``now`` the service asks to wait (0 for a date already past), or None
    when there is no usable header."""
    if value is None:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():
        # Any number of digits: more than a float holds is still "wait as long as allowed".
        digits = text.lstrip("0") or "0"
        return float(int(digits)) if len(digits) <= LONGEST_DELAY_DIGITS else float(FOREVER)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # an HTTP-date is always GMT
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


@dataclass(frozen=True)
class RetryAfter:
    """What to do about one transient answer."""

    pause_seconds: float  # no call of the Job starts for this long (0: no pause)
    wait_seconds: float | None  # this entry's wait before its next attempt; None: release it
    release_seconds: int  # when released: next_attempt_at at least this far ahead


def honour_retry_after(seconds: float | None, backoff: float, limit: float) -> RetryAfter:
    """The service asked to wait ``seconds`` (None: it did not say), the worker's own
    ``backoff`` is drawn, and ``limit`` is SFP_RETRY_AFTER_MAX_SECONDS (0 ignores the
    header).

    Within the limit every call of the Job pauses that long and the entry's next attempt
    waits for the longer of the two. Beyond it the Job pauses for the limit only and the
    entry goes back to the queue with ``next_attempt_at`` that far ahead (capped at
    MAX_RELEASE_SECONDS), so a Job never sits idle for long because a service said so.
    An entry released after its last in-Job retry also waits at least ``seconds``.
    """
    if seconds is None or limit <= 0:
        return RetryAfter(pause_seconds=0.0, wait_seconds=backoff, release_seconds=0)
    release = int(min(math.ceil(seconds), MAX_RELEASE_SECONDS))
    if seconds <= limit:
        return RetryAfter(seconds, max(backoff, seconds), release)
    return RetryAfter(limit, None, release)
