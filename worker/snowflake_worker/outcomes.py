"""Pure decisions about one entry: is its data usable, what does a response mean, what
becomes of it after a failed attempt."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from .queue import ClaimedEntry, Outcome, dead_lettered, released


class CallResult(Enum):
    SUCCESS = "success"
    TRANSIENT = "transient"  # worth another try: timeouts, lost connections, 408/429/5xx
    PERMANENT = "permanent"  # the entry is at fault: other 4xx
    FATAL = "fatal"  # this worker is at fault (TLS rejected): stop and release everything


TRANSIENT_STATUS = frozenset({408, 425, 429})


def classify_status(status_code: int) -> CallResult:
    if 200 <= status_code < 300:
        return CallResult.SUCCESS
    if status_code in TRANSIENT_STATUS or status_code >= 500:
        return CallResult.TRANSIENT
    return CallResult.PERMANENT


_TLS_REJECTIONS = (
    "CERTIFICATE_REQUIRED",
    "BAD_CERTIFICATE",
    "UNKNOWN_CA",
    "CERTIFICATE_UNKNOWN",
    "CERTIFICATE_VERIFY_FAILED",
    "HANDSHAKE_FAILURE",
    "ACCESS_DENIED",
)


def classify_exception(exc: BaseException) -> CallResult:
    """A TLS rejection is fatal (it is configuration); other transport errors are transient."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        text = str(current).upper()
        if any(marker in text for marker in _TLS_REJECTIONS):
            return CallResult.FATAL
        current = current.__cause__ or current.__context__
    return CallResult.TRANSIENT


class BadData(ValueError):
    """The entry's data cannot be sent: fail it for good."""


def parse_entry_data(raw: Any) -> Any:
    """The VARIANT comes back as JSON text; a JSON string holding JSON is unwrapped once.

    Producers often store serialised JSON in a VARIANT string. If that inner text is
    not JSON, the entry is malformed and fails permanently.
    """
    value = _loads(raw) if isinstance(raw, str) else raw
    if value is None:  # SQL NULL or a JSON null
        raise BadData("data is NULL")
    if isinstance(value, str):
        stripped = value.strip()
        if stripped[:1] in ("{", "["):
            return _loads(stripped)
    return value


def _loads(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadData(f"data is not valid JSON: {exc.msg} at position {exc.pos}") from None
    except RecursionError:  # the parser recurses once per level
        raise BadData("data is nested too deeply to parse") from None


def backoff_delay(attempt: int, base: float, cap: float = 30.0) -> float:
    """Upper bound of the full-jitter exponential backoff before retry ``attempt`` (1-based)."""
    return float(min(cap, base * (2 ** (attempt - 1))))


def release_delay(retry_count: int, base_seconds: int, cap_seconds: int = 3600) -> int:
    """Seconds until a released entry may be claimed again: grows with its attempts."""
    if base_seconds <= 0:
        return 0
    return int(min(cap_seconds, base_seconds * (2 ** max(0, retry_count))))


def failed_attempt(
    entry: ClaimedEntry,
    error: str,
    *,
    max_attempts: int,
    release_delay_seconds: int,
    at_least_seconds: int = 0,
) -> Outcome:
    """An attempt that failed without the service rejecting the entry (transient errors
    that outlasted the in-Job retries, or an error the worker did not expect): it counts.
    The last attempt allowed dead-letters the entry; an earlier one releases it for later,
    at least ``at_least_seconds`` later (the service's Retry-After).
    """
    if entry.retry_count + 1 >= max_attempts:
        return dead_lettered(entry, f"gave up after {max_attempts} attempts: {error}")
    delay = max(release_delay(entry.retry_count, release_delay_seconds), at_least_seconds)
    return released(entry, error=error, delay_seconds=delay)


@dataclass(frozen=True)
class Summary:
    processor_id: str
    stop_reason: str
    claimed: int
    completed: int
    failed: int
    released: int
    not_applied: int  # write-backs skipped because the lease had been taken over
    unwritten: int  # outcomes never written back (Snowflake down): their leases will expire
    http_calls: int
    http_retries: int
    snowflake_statements: int
    statements_by_kind: dict[str, int]
    seconds: float
    cpu_seconds: float  # this process's CPU time (user + system) during the run
    # The claim and write-back sizes chosen, and the pace they were sized by (batch_sizing.py)
    batches: dict[str, float | int | None] = field(default_factory=dict)
    # What the service answered (call_stats.CallStats.summary): calls by status class and
    # their latency histogram; the operator turns them into metrics.
    responses: dict[str, int] = field(default_factory=dict)
    call_seconds: dict[str, Any] = field(default_factory=dict)
