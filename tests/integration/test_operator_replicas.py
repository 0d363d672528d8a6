"""Two operator replicas (`snowflake-processor operator --leader-elect`, each a process of
its own) against the Kubernetes emulator, the Snowflake emulator and moto's S3: one acts,
the other stands by; when the acting one stops, the other takes over and launches nothing
the first one had launched; a holder cut off from the API server exits to stand by again.
(Takeover on the real cluster, with real pods deleted: tests/e2e/test_drain_on_cluster.py.)"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from snowflake_operator.constants import LAUNCHED_BY_ANNOTATION
from tests.support.operator_world import NAMESPACE, POLLS, OperatorWorld, scrape
from tests.support.polling import wait_for
from tests.support.ports import free_port
from tests.support.queues import fill

pytestmark = pytest.mark.integration

LEASE = "snowflake-processor-operator"
ELECTION = [
    "--leader-elect",
    "--leader-elect-resource-namespace",
    NAMESPACE,
    "--leader-elect-lease-duration",
    "3",
    "--leader-elect-renew-deadline",
    "2",
    "--leader-elect-retry-period",
    "0.5",
]


@contextmanager
def replica(name: str, logs: Path, metrics_port: int) -> Iterator[subprocess.Popen[bytes]]:
    """`snowflake-processor operator --leader-elect` as pod ``name`` would run it, its
    /metrics on ``metrics_port`` (probes off)."""
    env = {
        **os.environ,
        "POD_ID": name,
        "SFP_OPERATOR_METRICS_PORT": str(metrics_port),
        "SFP_OPERATOR_HEALTH_PORT": "0",
    }
    executable = str(Path(sys.executable).with_name("snowflake-processor"))
    command = [executable, "operator", *ELECTION, "--development-emulator-login"]
    with (logs / f"{name}.log").open("wb") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            yield process
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(10)


def lease_holder(world: OperatorWorld) -> str:
    try:
        lease = client.CoordinationV1Api(world.api).read_namespaced_lease(LEASE, NAMESPACE)
    except client.exceptions.ApiException:
        return ""
    return str(lease.spec.holder_identity or "")


def polls_at(port: int, processor: str) -> int:
    """How many polls of ``processor`` the replica whose /metrics is on ``port`` ran."""
    return int(scrape(port, processor).get(POLLS, 0))


def launchers(jobs: list[Any]) -> dict[str, str]:
    return {
        j.metadata.name: (j.metadata.annotations or {}).get(LAUNCHED_BY_ANNOTATION) for j in jobs
    }


def test_one_replica_acts_and_the_other_takes_over_when_it_stops(
    world: OperatorWorld, tmp_path: Path
) -> None:
    fill(world.queue, 250)
    orders = world.create("orders", pollIntervalSeconds=1)
    ports = {"replica-a": free_port(), "replica-b": free_port()}
    with (
        replica("replica-a", tmp_path, ports["replica-a"]) as a,
        replica("replica-b", tmp_path, ports["replica-b"]) as b,
    ):
        first = wait_for(lambda: len(orders.jobs()) == 3 and orders.jobs(), 60, what="3 Jobs")
        acting = wait_for(lambda: lease_holder(world), 10, what="a holder")
        assert set(launchers(first).values()) == {acting}, launchers(first)
        old, standby = (a, b) if acting.startswith("replica-a_") else (b, a)
        holder_port = ports.pop(acting.split("_")[0])
        (standby_port,) = ports.values()
        # More polls by the holder, none by the standby: still 3 Jobs.
        start = polls_at(holder_port, "orders")
        wait_for(lambda: polls_at(holder_port, "orders") >= start + 2, 30, what="holder polls")
        assert polls_at(standby_port, "orders") == 0
        assert len(orders.jobs()) == 3

        old.send_signal(signal.SIGTERM)
        stopped = time.monotonic()
        assert old.wait(30) == 0
        taken = wait_for(
            lambda: (holder := lease_holder(world)) not in ("", acting) and holder,
            10,
            what="the standby to take the lease",
        )
        takeover = time.monotonic() - stopped
        assert taken.startswith("replica-b_" if old is a else "replica-a_")
        # The first Jobs finish, each with its worker's summary (a finished Job without one
        # keeps its place until its summary has had time to arrive); the new holder counts
        # and deletes them, and launches the next ones for the same backlog.
        first_names = {job.metadata.name for job in first}
        for job in first:
            world.worker_pod(job, {"completed": 0, "failed": 0})
            world.finish(job)

        def next_jobs() -> list[Any]:
            later = [j for j in orders.jobs() if j.metadata.name not in first_names]
            return later if len(later) == 3 else []

        jobs = wait_for(next_jobs, 30, what="3 more")
        assert set(launchers(first).values()) == {acting}
        assert set(launchers(jobs).values()) == {taken}, launchers(jobs)
        assert takeover < 5, takeover  # released on SIGTERM: the next try takes it

        # The holder cut off from the API server stops and exits to stand by again.
        world.kube.server.stop()
        assert standby.wait(30) == 1
    log = (tmp_path / f"{taken.split('_')[0]}.log").read_text()
    assert "leader election lost" in log, log[-2000:]
