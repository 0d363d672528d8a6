"""The acting operator replica lost without a goodbye, mid-drain, on the real cluster:

- killed: its process gets SIGKILL from the node (a crash, an OOM kill): it cannot release
  the Lease, so the standby takes it once it has seen it unrenewed for the lease duration;
- cut off: the node drops its traffic to the API server (a partition): it stops launching
  after the renew deadline, before the standby may take the Lease, and exits to be
  restarted as a standby.

Either way the other replica acts within the lease duration plus a retry period and a
poll, nothing is lost, and no Job is launched twice (`failover` in `make e2e`'s JSON
line). The handover on a deleted pod is in test_drain_on_cluster.py.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from snowflake_operator.constants import LAUNCHED_BY_ANNOTATION
from tests.e2e.commands import Commands
from tests.e2e.failover import launched_twice, measure_takeover, record_failover
from tests.e2e.helpers import wait_until
from tests.e2e.host_services import HostServices
from tests.e2e.processors import jobs_of, new_queue, processor_manifest
from tests.e2e.release import Release
from tests.e2e.test_chart_install import acting_operator_pod, lease, operator_pods
from tests.support.queues import fill, statuses

ENTRIES, ENTRIES_PER_JOB, MAX_ACTIVE = 300, 50, 3
LEASE_SECONDS, RETRY_SECONDS = 15, 2  # the chart's operator.leaderElection defaults
API_SERVER_PORT = 6443  # where the kubernetes Service sends the pods (docs/cluster.md)
CUT_TABLE = "sfp_e2e_partition"


def operator_process(pod: str) -> int:
    """The pid, on this node, of the operator process of ``pod`` (its POD_ID variable)."""
    wanted = f"POD_ID={pod}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
            command = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if wanted in environ and b"operator" in command:
            return int(entry.name)
    raise AssertionError(f"no operator process of pod {pod} on this node")


@contextmanager
def cut_off_from_the_api_server(pod_ip: str) -> Iterator[None]:
    """Drop what the pod sends to the API server (after kube-proxy's DNAT: the node's port
    6443), in a table of our own; removed afterwards whatever happens."""
    rules = (
        f"add table inet {CUT_TABLE}\n"
        f"add chain inet {CUT_TABLE} input {{ type filter hook input priority -10; }}\n"
        f"add rule inet {CUT_TABLE} input ip saddr {pod_ip} tcp dport {API_SERVER_PORT} drop\n"
    )
    subprocess.run(["nft", "-f", "-"], input=rules, text=True, check=True)
    try:
        yield
    finally:
        subprocess.run(["nft", "delete", "table", "inet", CUT_TABLE], check=False)


def launches(api_client: Any, namespace: str, name: str) -> dict[str, tuple[str, datetime]]:
    return {
        job.metadata.name: (
            (job.metadata.annotations or {}).get(LAUNCHED_BY_ANNOTATION, ""),
            job.metadata.creation_timestamp,
        )
        for job in jobs_of(api_client, namespace, name)
    }


@pytest.mark.timeout(900)
@pytest.mark.parametrize("how", ["killed", "cut_off"])
def test_the_standby_takes_over_when_the_acting_replica_is_lost_mid_drain(
    how: str,
    operator_release: Release,
    services: HostServices,
    commands: Commands,
    api_client: Any,
) -> None:
    namespace, name = operator_release.jobs_namespace, f"e2e-failover-{how.replace('_', '-')}"
    queue = new_queue(services)
    fill(queue, ENTRIES)
    before = services.service_stats()
    job = {"entriesPerJob": ENTRIES_PER_JOB, "maxActiveJobs": MAX_ACTIVE}
    commands.apply(
        processor_manifest(
            name, namespace, queue, services, services.certificates_bucket(), job=job
        )
    )
    # Both replicas Ready (after the drain test's deletion, its replacement may be starting).
    wait_until(
        lambda: (
            sum(
                any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or [])
                for p in operator_pods(api_client, operator_release)
                if p.metadata.deletion_timestamp is None
            )
            == 2
        ),
        240,
        "two Ready operator replicas",
    )
    acting = acting_operator_pod(api_client, operator_release)
    old_holder = lease(api_client, operator_release).spec.holder_identity
    seen: dict[str, tuple[str, datetime]] = {}
    wait_until(lambda: seen.update(launches(api_client, namespace, name)) or seen, 180, "Jobs")

    if how == "killed":
        os.kill(operator_process(acting.metadata.name), signal.SIGKILL)
        lost_at = datetime.now(UTC)
        takeover = measure_takeover(
            api_client, operator_release, namespace, name, old_holder, lost_at
        )
    else:
        with cut_off_from_the_api_server(acting.status.pod_ip):
            lost_at = datetime.now(UTC)
            takeover = measure_takeover(
                api_client, operator_release, namespace, name, old_holder, lost_at
            )
            # The cut-off replica gives up: its process exits and the kubelet restarts it.
            wait_until(
                lambda: any(
                    (s.restart_count or 0) > 0
                    for p in operator_pods(api_client, operator_release)
                    if p.metadata.name == acting.metadata.name
                    for s in p.status.container_statuses or []
                ),
                120,
                "the cut-off replica to exit (leader election lost) and restart",
            )

    def drained() -> bool:
        seen.update(launches(api_client, namespace, name))
        counts = Counter(statuses(queue).values())
        return counts.get("completed", 0) + counts.get("failed", 0) == ENTRIES

    wait_until(drained, 600, "every entry to be completed or dead-lettered", interval=2)
    duplicate_launches = launched_twice(seen, old_holder, takeover.acquired)
    duplicates = services.service_stats()["duplicates"] - before["duplicates"]
    lost = ENTRIES - Counter(statuses(queue).values()).get("completed", 0)
    record_failover(how, takeover, duplicate_launches, **{f"lost_{how}": lost})
    assert lost == 0 and duplicates == 0
    assert duplicate_launches == 0, seen
    assert {by for by, _ in seen.values()} <= {old_holder, takeover.holder}
    # Without a release the standby waits the lease out: at most the lease duration plus a
    # retry period (and jitter) after it last saw the Lease renewed.
    assert takeover.lease_seconds <= LEASE_SECONDS + RETRY_SECONDS * 1.2 + 5, takeover
    # The lost replica is back as a standby: Ready once it reaches the API server again.
    wait_until(
        lambda: (
            lease(api_client, operator_release).spec.holder_identity == takeover.holder
            and len(operator_pods(api_client, operator_release)) == 2
        ),
        120,
        "two replicas again, the new holder still acting",
    )
    commands.kubectl("delete", "sfp", name, "-n", namespace, "--wait=false")
