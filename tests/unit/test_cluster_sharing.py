"""Two test sessions on one machine share the cluster; the last one out stops it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from snowflake_devtools.cluster import Cluster
from snowflake_devtools.cluster.sharing import STARTED_BY_TESTS, ClusterLease


@pytest.fixture
def running(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """What Cluster.attach finds: no real cluster here, the lock logic is under test."""
    found: dict[str, Any] = {}
    monkeypatch.setattr(Cluster, "attach", classmethod(lambda cls, state_dir=None: found.get("c")))
    return found


def test_the_last_session_out_stops_a_cluster_a_test_session_started(
    tmp_path: Path, running: dict[str, Any]
) -> None:
    state = tmp_path / "cluster"

    def start() -> Any:
        state.mkdir()
        running["c"] = object()
        return running["c"]

    first, second = ClusterLease(state), ClusterLease(state)
    cluster_a, started_a = first.acquire(start)
    cluster_b, started_b = second.acquire(start)
    assert started_a and not started_b and cluster_a is cluster_b
    stopped: list[str] = []
    assert first.release(lambda: stopped.append("first") or []) == []
    assert stopped == []  # the second session still runs tests on it
    second.release(lambda: stopped.append("second") or ["left over"])
    assert stopped == ["second"]


def test_a_cluster_make_cluster_up_started_stays_up(
    tmp_path: Path, running: dict[str, Any]
) -> None:
    state = tmp_path / "cluster"
    state.mkdir()
    running["c"] = object()
    lease = ClusterLease(state)
    _cluster, started = lease.acquire(lambda: pytest.fail("must attach, not start"))
    assert not started and not (state / STARTED_BY_TESTS).exists()
    assert lease.release(lambda: pytest.fail("must not stop it")) == []
