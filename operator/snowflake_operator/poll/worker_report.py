"""What a worker's summary says about the service: its answers by status class and the
latency of its calls, read defensively. Pure.

A summary comes from a worker image that may be older or newer than the operator, or may
be cut short: anything malformed counts as nothing, never as an error. The latency
histogram arrives as bucket bounds and counts (snowflake_worker/call_stats.py); each count
is placed in the operator's first bucket whose bound holds the worker's bound, so a
worker with other bounds still adds up (its counts can only move to a wider bucket).
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from snowflake_worker.call_stats import CALL_SECONDS_BUCKETS, STATUS_CLASSES

OTHER = "other"


@dataclass(frozen=True)
class CallLatency:
    """Calls per operator bucket (CALL_SECONDS_BUCKETS, then +Inf) and their total time."""

    counts: tuple[int, ...] = (0,) * (len(CALL_SECONDS_BUCKETS) + 1)
    seconds: float = 0.0

    @property
    def calls(self) -> int:
        return sum(self.counts)


@dataclass(frozen=True)
class ServiceReport:
    responses: Mapping[str, int] = field(default_factory=dict)  # status class -> calls
    latency: CallLatency = CallLatency()


def service_report(summary: Mapping[str, Any]) -> ServiceReport:
    return ServiceReport(
        responses(summary.get("responses")), call_latency(summary.get("call_seconds"))
    )


def responses(value: Any) -> dict[str, int]:
    """Calls by status class; a class this operator does not know counts as "other"."""
    found: dict[str, int] = {}
    if not isinstance(value, Mapping):
        return found
    for kind, count in value.items():
        if _count(count) is None:
            continue
        key = kind if kind in STATUS_CLASSES else OTHER
        found[key] = found.get(key, 0) + int(count)
    return found


def call_latency(value: Any) -> CallLatency:
    """The worker's histogram re-bucketed onto the operator's bounds; empty if malformed."""
    if not isinstance(value, Mapping):
        return CallLatency()
    bounds, counts, seconds = value.get("le"), value.get("counts"), value.get("sum", 0)
    if not isinstance(bounds, list) or not isinstance(counts, list):
        return CallLatency()
    if len(counts) != len(bounds) + 1 or not all(_number(b) for b in bounds):
        return CallLatency()
    if any(_count(c) is None for c in counts) or not _number(seconds):
        return CallLatency()
    if any(later <= earlier for earlier, later in itertools.pairwise(bounds)):
        return CallLatency()
    placed = [0] * (len(CALL_SECONDS_BUCKETS) + 1)
    for bound, count in zip([*bounds, math.inf], counts, strict=True):
        placed[bisect.bisect_left(CALL_SECONDS_BUCKETS, bound)] += int(count)
    return CallLatency(tuple(placed), float(seconds))


def _count(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return value


def _number(value: Any) -> bool:
    return (
        not isinstance(value, bool)
        and isinstance(value, int | float)
        and math.isfinite(value)
        and value >= 0
    )
