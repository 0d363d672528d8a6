"""Kubernetes itself fails under a running drain, one fault after another, on the real
cluster with the chart installed as users install it (two operator replicas), and nothing
is lost (`chaos` in `make e2e`'s JSON line; alone: `make e2e ARGS="-k chaos"`).

The faults (chaos.py): the API server SIGKILLed and back after 20 s; etcd SIGKILLed and
restarted; the kubelet stopped for 60 s; containerd restarted; two worker pods
force-deleted and a third one's process SIGKILLed; the node drained (PodDisruptionBudget
honoured) and uncordoned; one worker's traffic to the Snowflake emulator, then another's to
the mTLS service, dropped for 60 s; the acting operator replica cut off from the API server
for longer than its lease; and its process SIGKILLed (the standby takes over: the `failover`
figures).

Each fault starts while Jobs run (the queue is topped up when it runs low). For each: the
seconds from its end until the operator polls again and until entries complete again, the
service's duplicate calls, which must be entries the killed or cut-off workers held (the
protocol's promise), and Jobs launched twice (none). At the end every entry is completed or
dead-lettered once, none stayed in processing past its lease, no Job is left running, and
status.totals equals the table's counts. Each fault leaves the cluster's processes, packet
filter tables and node as it found them.
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from snowflake_devtools.cluster import Cluster
from snowflake_devtools.mtls_service import fetch_stats, start_mtls_service
from snowflake_devtools.processes import ServerProcess
from snowflake_worker.queue import QueueClient
from tests.e2e import figures
from tests.e2e.chaos import (
    Drain,
    Fault,
    JobLaunches,
    api_server_killed,
    containerd_restarted,
    etcd_killed,
    kubelet_stopped,
    nft_tables,
    node_drained,
    now,
    operator_cut_off,
    operator_killed,
    service_cut_off,
    snowflake_cut_off,
    worker_pods_killed,
)
from tests.e2e.commands import Commands
from tests.e2e.failover import record_failover
from tests.e2e.helpers import wait_until
from tests.e2e.host_services import HostServices
from tests.e2e.processors import jobs_of, new_queue, processor_manifest, read_processor
from tests.e2e.release import Release
from tests.support.queues import fetch_rows

NAME = "e2e-chaos"
ENTRIES, TOP_UP, LOW_WATER = 2_000, 400, 300
CALL_SECONDS = 0.3  # each call waits this long at the service: the drain outlasts the faults
MAX_ATTEMPTS, LEASE_SECONDS = 5, 300
# Lease recovery runs on the operator's polls; a minute past the lease is its slack.
OVERDUE_SLACK = timedelta(seconds=60)

FAULTS: tuple[tuple[str, Fault], ...] = (
    ("api_server_killed", api_server_killed),
    ("etcd_killed", etcd_killed),
    ("kubelet_stopped", kubelet_stopped),
    ("containerd_restarted", containerd_restarted),
    ("worker_pods_killed", worker_pods_killed),
    ("node_drained", node_drained),
    ("snowflake_cut_off", snowflake_cut_off),
    ("service_cut_off", service_cut_off),
    ("operator_cut_off", operator_cut_off),
    ("operator_killed", operator_killed),
)


def enqueue(queue: QueueClient, start: int, count: int) -> list[str]:
    ids = [f"c{i:05d}" for i in range(start, start + count)]
    data = {"delay_seconds": CALL_SECONDS}
    assert queue.enqueue((entry_id, {"n": i, **data}) for i, entry_id in enumerate(ids)) == count
    return ids


def overdue_processing(queue: QueueClient) -> int:
    """Entries still in processing a minute past their lease (lease recovery missed them)."""
    cursor = queue._connection.cursor()
    cursor.execute(f"SELECT claimed_at FROM {queue.table.sql} WHERE status = 'processing'")
    limit = datetime.now(UTC).replace(tzinfo=None) - timedelta(seconds=LEASE_SECONDS)
    return sum(claimed < limit - OVERDUE_SLACK for (claimed,) in cursor.fetchall() if claimed)


def cluster_as_found(cluster: Cluster, api_client: Any, tables: set[str]) -> list[str]:
    """What a fault left different: a dead component, a packet filter table, the node."""
    problems = []
    if (dead := cluster.dead_component()) is not None:
        problems.append(f"{dead} is not running")
    if (now_tables := nft_tables()) != tables:
        problems.append(f"nftables tables {sorted(now_tables ^ tables)} differ")
    node = client.CoreV1Api(api_client).read_node(cluster.node_name)
    if node.spec.unschedulable:
        problems.append("the node is still cordoned")
    return problems


def seconds_until(check: Any, what: str, since: datetime, timeout: float = 420) -> float:
    wait_until(check, timeout, what, interval=0.5)
    return round((now() - since).total_seconds(), 1)


@pytest.fixture
def chaos_service(services: HostServices, tmp_path: Path) -> Iterator[ServerProcess]:
    """An mTLS service of its own with the usual transient errors: one call in 20 answers
    503. Stopped whatever the test did."""
    service = start_mtls_service(
        services.certs,
        tmp_path / "service.log",
        latency_ms=20,
        transient_rate=0.05,
        seed=28,
        host=services.address,
    )
    yield service
    service.stop()


@pytest.mark.timeout(3600)
def test_nothing_is_lost_when_kubernetes_fails_under_a_drain(
    real_cluster: Cluster,
    operator_release: Release,
    services: HostServices,
    commands: Commands,
    api_client: Any,
    chaos_service: ServerProcess,
) -> None:
    began = time.monotonic()
    service = chaos_service
    queue = new_queue(services)
    ids = enqueue(queue, 0, ENTRIES)
    manifest = processor_manifest(
        NAME,
        operator_release.jobs_namespace,
        queue,
        services,
        services.certificates_bucket(),
        job={"entriesPerJob": 60, "maxActiveJobs": 3, "concurrency": 2},
    )
    manifest["spec"]["queue"] = {
        "leaseSeconds": LEASE_SECONDS,
        "maxAttempts": MAX_ATTEMPTS,
        "claimBatch": 20,
    }
    manifest["spec"]["endpoint"]["url"] = f"https://{services.address}:{service.port}/process"
    drain = Drain(
        real_cluster,
        api_client,
        commands,
        operator_release,
        queue,
        NAME,
        services.snowflake_port,
        service.port,
    )
    launches = JobLaunches(api_client, drain.namespace, NAME)
    launches.start()
    held: dict[str, set[str]] = {}
    faults: dict[str, dict[str, Any]] = {}
    windows: list[tuple[str, datetime]] = []
    overdue = 0
    try:
        commands.apply(manifest)
        for fault_name, fault in FAULTS:
            if queue.counts(max_attempts=MAX_ATTEMPTS).pending < LOW_WATER:
                ids += enqueue(queue, len(ids), TOP_UP)
            drain.wait_for_workers(1)
            tables = nft_tables()
            drain.say(f"{fault_name}: begins")
            windows.append((fault_name, now()))
            held[fault_name] = fault(drain)
            ended, completed = now(), drain.completed()
            polled = seconds_until(
                lambda ended=ended: (last := drain.last_poll()) is not None and last >= ended,
                f"a poll after {fault_name}",
                ended,
            )
            completing = seconds_until(
                lambda completed=completed: drain.completed() > completed,
                f"entries completing after {fault_name}",
                ended,
            )
            faults[fault_name] = {
                "recovered_seconds": max(polled, completing),
                "polled_again_seconds": polled,
                "completing_again_seconds": completing,
            }
            drain.say(f"{fault_name}: {faults[fault_name]}")
            overdue += overdue_processing(queue)
            wait_until(
                lambda tables=tables: not cluster_as_found(real_cluster, api_client, tables),
                120,
                f"the cluster as {fault_name} found it (components, nftables tables, node)",
            )
        windows.append(("end", now() + timedelta(days=1)))

        def settled() -> bool:
            counts = Counter(row["status"] for row in fetch_rows(queue))
            return counts.get("completed", 0) + counts.get("failed", 0) == len(ids)

        wait_until(settled, 900, "every entry completed or dead-lettered", interval=2)
        wait_until(
            lambda: (
                not any(
                    (job.status.active or 0) for job in jobs_of(api_client, drain.namespace, NAME)
                )
            ),
            300,
            "no Job of the processor left running",
        )
    finally:
        launches.stop()
    stats = fetch_stats(service.port, services.certs, host=services.address, successes=True)

    rows = {row["id"]: row["status"] for row in fetch_rows(queue)}
    counts = Counter(rows.values())
    lost = len(ids) - counts.get("completed", 0) - counts.get("failed", 0)
    called = {key.rsplit("/", 1)[1]: n for key, n in stats["successes_by_key"].items()}
    never_called = [e for e, status in rows.items() if status == "completed" and e not in called]
    twice = {entry: n - 1 for entry, n in called.items() if n > 1}
    unexplained = dict(twice)
    for fault_name, _ in FAULTS:
        mine = {e: n for e, n in unexplained.items() if e in held[fault_name]}
        faults[fault_name]["duplicates"] = sum(mine.values())
        faults[fault_name]["duplicates_bound"] = len(held[fault_name])
        for entry in mine:
            del unexplained[entry]
    for (fault_name, since), (_, until) in pairwise(windows):
        faults[fault_name]["launches_twice"] = launches.twice(since, until)
    table_totals = {"completed": counts.get("completed", 0), "failed": counts.get("failed", 0)}

    def status_totals() -> dict[str, int]:
        status = read_processor(api_client, drain.namespace, NAME).get("status", {})
        return {key: int((status.get("totals") or {}).get(key) or 0) for key in table_totals}

    # The last Jobs are counted by the poll after they finish.
    with contextlib.suppress(AssertionError):
        wait_until(lambda: status_totals() == table_totals, 120, "every finished Job counted")
    totals = status_totals()
    for how, takeover in drain.takeovers.items():
        record_failover(
            how, takeover, faults[f"operator_{how}"]["launches_twice"], **{f"lost_{how}": lost}
        )
    chaos = {
        "entries": len(ids),
        "lost": lost,
        "duplicates": sum(twice.values()),
        "duplicates_bound": sum(len(h) for h in held.values()),
        "unexplained_duplicates": sum(unexplained.values()),
        "overdue_processing": overdue,
        "totals": totals,
        "table": table_totals,
        "cluster_left_as_found": True,  # checked after each fault (cluster_as_found)
        "faults": faults,
        "seconds": round(time.monotonic() - began, 1),
    }
    figures.record(chaos=chaos)
    print(f"chaos: {chaos}")
    assert lost == 0 and not never_called, (lost, never_called[:10])
    assert not unexplained, f"entries called twice that no fault's workers held: {unexplained}"
    assert all(f["launches_twice"] == 0 for f in faults.values()), faults
    assert all(f["duplicates"] <= f["duplicates_bound"] for f in faults.values()), faults
    assert overdue == 0
    # Without a release the standby waits the lease out: at most the lease duration plus a
    # retry period (2 s, and jitter) after it last saw the Lease renewed.
    for takeover in drain.takeovers.values():
        assert takeover.lease_seconds <= 15 + 2 * 1.2 + 5, takeover
    assert totals == table_totals
    commands.kubectl("delete", "sfp", NAME, "-n", drain.namespace, "--wait=false")
