"""When a poll writes the resource's status: only when something in it changed, or when
the heartbeat is due (so lastPollTime never grows older than that). Pure.

An idle resource's polls then write nothing to the API server: on a cluster with many
resources polled every minute, most status writes would only have moved lastPollTime.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

HEARTBEAT_FIELD = "lastPollTime"


def status_changed(written: Mapping[str, Any] | None, new: Mapping[str, Any]) -> bool:
    """Whether ``new`` differs from the status last written, lastPollTime aside."""
    if written is None:
        return True
    return any(written.get(key) != value for key, value in new.items() if key != HEARTBEAT_FIELD)


def write_due(
    written: Mapping[str, Any] | None,
    new: Mapping[str, Any],
    seconds_since_write: float,
    heartbeat_seconds: float,
) -> bool:
    return status_changed(written, new) or seconds_since_write >= heartbeat_seconds
