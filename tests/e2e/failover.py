"""The operator's replicas on the real cluster: measuring a handover of the Lease, and
counting Jobs launched twice across it. Used by test_drain_on_cluster.py (the acting pod
deleted) and test_chaos_on_cluster.py (its process killed, its API server cut off)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tests.e2e import figures
from tests.e2e.helpers import wait_until
from tests.e2e.processors import read_processor
from tests.e2e.release import Release
from tests.e2e.test_chart_install import lease


@dataclass(frozen=True)
class Takeover:
    holder: str  # the new holder's identity
    acquired: datetime  # its spec.acquireTime
    lease_seconds: float  # from the loss until the Lease named the other replica
    seconds: float  # from the loss until that replica had polled (a status write)


def measure_takeover(
    api_client: Any,
    release: Release,
    namespace: str,
    processor: str,
    old_holder: str,
    since: datetime,
    timeout: float = 120,
) -> Takeover:
    """Wait for the other replica to hold the Lease, then for its first poll of the
    resource (status.lastPollTime after it acquired the Lease); seconds from ``since`` (when
    the acting replica was deleted, killed or cut off)."""
    taken = wait_until(
        lambda: (
            (spec := lease(api_client, release).spec).holder_identity not in ("", old_holder)
            and spec
        ),
        timeout,
        "the standby replica to take the Lease",
        interval=0.2,
    )
    lease_seconds = (datetime.now(UTC) - since).total_seconds()

    def polled() -> bool:
        status = read_processor(api_client, namespace, processor).get("status", {})
        stamp = status.get("lastPollTime")
        if not stamp:
            return False
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")) >= taken.acquire_time

    wait_until(polled, 120, "the new holder's first poll", interval=0.2)
    seconds = (datetime.now(UTC) - since).total_seconds()
    return Takeover(taken.holder_identity, taken.acquire_time, lease_seconds, seconds)


def launched_twice(
    launches: dict[str, tuple[str, datetime]], old_holder: str, acquired: datetime
) -> int:
    """Jobs launched twice across the handover: by the old holder after the new one held
    the Lease, or in a poll slot where both launched (names are fixed per slot: one slot's
    Jobs come from one poll)."""
    late = sum(by == old_holder and when > acquired for by, when in launches.values())
    slots: dict[str, set[str]] = {}
    for name, (by, _) in launches.items():
        slots.setdefault(name.rsplit("-", 1)[0], set()).add(by)
    return late + sum(len(launchers) > 1 for launchers in slots.values())


def record_failover(how: str, takeover: Takeover, duplicate_launches: int, **more: Any) -> None:
    """Into `make e2e`'s `failover` figures: this handover's times; launches twice summed."""
    found = figures.FIGURES.setdefault("failover", {})
    found[f"takeover_seconds_{how}"] = round(takeover.seconds, 1)
    found[f"lease_moved_seconds_{how}"] = round(takeover.lease_seconds, 1)
    if how == "deleted":  # the headline: the acting pod deleted mid-drain
        found["takeover_seconds"] = found[f"takeover_seconds_{how}"]
    found["duplicate_launches"] = found.get("duplicate_launches", 0) + duplicate_launches
    found.update(more)
