"""Faults injected into the real cluster under a running drain, and what is measured
around each (test_chaos_on_cluster.py).

Each fault is a function of a :class:`Drain` that breaks something, puts it back, and
returns the entries the workers it killed or cut off held: the protocol's promise is that
only those may be called twice. Around it the test measures how long the operator took to
poll again and the workers to complete entries again, and counts Jobs launched twice.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kubernetes import client

from snowflake_devtools.cluster import Cluster
from snowflake_operator.constants import LAUNCHED_BY_ANNOTATION
from snowflake_worker.queue import QueueClient
from tests.e2e.commands import Commands
from tests.e2e.failover import Takeover, measure_takeover
from tests.e2e.helpers import wait_until
from tests.e2e.processors import jobs_of, pods_of, read_processor
from tests.e2e.release import Release
from tests.e2e.test_chart_install import acting_operator_pod, lease, operator_pods

API_SERVER_PORT = 6443  # where the kubernetes Service sends the pods (docs/cluster.md)
FAULT_TABLE = "sfp_e2e_chaos"  # the nftables table a network fault adds, and removes


def now() -> datetime:
    return datetime.now(UTC)


@contextmanager
def dropping(source_ip: str, port: int) -> Iterator[None]:
    """Drop what ``source_ip`` (a pod) sends to this machine's TCP ``port`` (the API server
    after kube-proxy's DNAT, or a server on the bridge address), in a table of our own;
    removed afterwards whatever happens."""
    rules = (
        f"add table inet {FAULT_TABLE}\n"
        f"add chain inet {FAULT_TABLE} input {{ type filter hook input priority -10; }}\n"
        f"add rule inet {FAULT_TABLE} input ip saddr {source_ip} tcp dport {port} drop\n"
    )
    subprocess.run(["nft", "-f", "-"], input=rules, text=True, check=True)
    try:
        yield
    finally:
        subprocess.run(["nft", "delete", "table", "inet", FAULT_TABLE], check=False)


def nft_tables() -> set[str]:
    """The packet filter tables of this machine (family and name)."""
    listed = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True, check=True)
    return {line.removeprefix("table ").strip() for line in listed.stdout.splitlines() if line}


def processes_with_env(variable: bytes) -> list[int]:
    """Pids on this node whose environment holds ``variable`` (``NAME=value``)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if variable in environ:
            found.append(int(entry.name))
    return found


def operator_process(pod: str) -> int:
    """The pid, on this node, of the operator process of ``pod`` (its POD_ID variable)."""
    for pid in processes_with_env(f"POD_ID={pod}".encode()):
        with contextlib.suppress(OSError):
            if b"operator" in Path(f"/proc/{pid}/cmdline").read_bytes():
                return pid
    raise AssertionError(f"no operator process of pod {pod} on this node")


def kill_container_of(pod: str) -> int:
    """SIGKILL, from the node, every process of ``pod``'s containers (they see their pod's
    name as HOSTNAME); how many there were."""
    pids = processes_with_env(f"HOSTNAME={pod}".encode())
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return len(pids)


class JobLaunches(threading.Thread):
    """Every Job of one processor created while it runs, listed every half second: Job
    names are fixed per poll slot, so a name seen with two uids was launched twice. The
    API server may be away (a fault): a failed list is simply tried again."""

    def __init__(self, api_client: Any, namespace: str, processor: str) -> None:
        super().__init__(daemon=True)
        self.api_client, self.namespace, self.processor = api_client, namespace, processor
        self.uids: dict[str, set[str]] = {}
        self.first_seen: dict[str, datetime] = {}
        self.launched_by: dict[str, set[str]] = {}
        self._stopping = threading.Event()

    def run(self) -> None:
        while not self._stopping.wait(0.5):
            with contextlib.suppress(Exception):  # the API server is being broken on purpose
                for job in jobs_of(self.api_client, self.namespace, self.processor):
                    name = job.metadata.name
                    self.uids.setdefault(name, set()).add(job.metadata.uid)
                    self.first_seen.setdefault(name, now())
                    by = (job.metadata.annotations or {}).get(LAUNCHED_BY_ANNOTATION, "")
                    self.launched_by.setdefault(name, set()).add(by)

    def stop(self) -> None:
        self._stopping.set()
        self.join(10)

    def twice(self, since: datetime, until: datetime) -> int:
        """Jobs first seen in [since, until) created twice, or by two replicas."""
        return sum(
            len(self.uids[name]) > 1 or len(self.launched_by[name]) > 1
            for name, seen in list(self.first_seen.items())
            if since <= seen < until
        )


@dataclass
class Drain:
    """The processor being drained and what the faults act on."""

    cluster: Cluster
    api_client: Any
    commands: Commands
    release: Release
    queue: QueueClient
    name: str
    snowflake_port: int
    service_port: int
    log: list[str] = field(default_factory=list)
    takeovers: dict[str, Takeover] = field(default_factory=dict)  # by operator fault

    @property
    def namespace(self) -> str:
        return self.release.jobs_namespace

    def running_workers(self) -> list[Any]:
        """Worker pods whose container runs (not being deleted)."""
        return [
            pod
            for pod in pods_of(self.api_client, self.namespace, self.name)
            if pod.metadata.deletion_timestamp is None
            and pod.status.phase == "Running"
            and any(s.state.running for s in pod.status.container_statuses or [])
        ]

    def wait_for_workers(self, count: int, timeout: float = 240) -> list[Any]:
        """At least ``count`` running worker pods, those holding entries first (a pod that
        has started may not have claimed yet)."""

        def found() -> list[Any] | None:
            pods = self.running_workers()
            if len(pods) < count:
                return None
            holding = self.holding_jobs()
            busy = [pod for pod in pods if job_of(pod) in holding]
            return busy + [pod for pod in pods if pod not in busy] if len(busy) >= count else None

        return list(wait_until(found, timeout, f"{count} worker pod(s) holding entries", 0.5))

    def holding_jobs(self) -> set[str]:
        """The Jobs that hold entries in processing."""
        cursor = self.queue._connection.cursor()
        cursor.execute(
            f"SELECT DISTINCT processor_id FROM {self.queue.table.sql} WHERE status = 'processing'"
        )
        return {job for (job,) in cursor.fetchall()}

    def held_by(self, jobs: set[str]) -> set[str]:
        """Entries in processing claimed by these Jobs (processor_id is the Job's name)."""
        cursor = self.queue._connection.cursor()
        cursor.execute(
            f"SELECT id, processor_id FROM {self.queue.table.sql} WHERE status = 'processing'"
        )
        return {entry for entry, job in cursor.fetchall() if job in jobs}

    def completed(self) -> int:
        return self.queue.counts(max_attempts=1).completed

    def last_poll(self) -> datetime | None:
        with contextlib.suppress(Exception):
            status = read_processor(self.api_client, self.namespace, self.name).get("status", {})
            stamp = status.get("lastPollTime")
            if stamp:
                return datetime.fromisoformat(stamp.replace("Z", "+00:00"))
        return None

    def say(self, message: str) -> None:
        line = f"[chaos {now():%H:%M:%S}] {message}"
        self.log.append(line)
        print(line, flush=True)


def job_of(pod: Any) -> str:
    return str((pod.metadata.labels or {}).get("job-name") or pod.metadata.owner_references[0].name)


Fault = Callable[[Drain], set[str]]


def api_server_killed(drain: Drain) -> set[str]:
    drain.cluster.restart("kube-apiserver", signal.SIGKILL, down_seconds=20)
    return set()


def etcd_killed(drain: Drain) -> set[str]:
    drain.cluster.restart("etcd", signal.SIGKILL, down_seconds=5)
    return set()


def kubelet_stopped(drain: Drain) -> set[str]:
    drain.cluster.restart("kubelet", signal.SIGTERM, down_seconds=60)
    core: Any = client.CoreV1Api(drain.api_client)
    wait_until(
        lambda: any(
            c.type == "Ready" and c.status == "True"
            for c in core.read_node(drain.cluster.node_name).status.conditions or []
        ),
        120,
        "the node Ready again",
    )
    return set()


def containerd_restarted(drain: Drain) -> set[str]:
    drain.cluster.restart("containerd", signal.SIGTERM)
    return set()


def worker_pods_killed(drain: Drain) -> set[str]:
    """Two running worker pods force-deleted, and a third one's process SIGKILLed."""
    pods = drain.wait_for_workers(2)[:2]
    jobs = {job_of(pod) for pod in pods}
    held = drain.held_by(jobs)
    names = [pod.metadata.name for pod in pods]
    drain.commands.kubectl(
        "delete", "pod", *names, "-n", drain.namespace, "--grace-period=0", "--force"
    )
    drain.say(f"force-deleted {', '.join(names)} holding {len(held)} entries")
    others = wait_until(
        lambda: [
            p
            for p in drain.running_workers()
            if p.metadata.name not in names and job_of(p) in drain.holding_jobs()
        ],
        240,
        "another worker pod holding entries",
        interval=0.5,
    )
    victim = others[0]
    victim_held = drain.held_by({job_of(victim)})
    killed = kill_container_of(victim.metadata.name)
    drain.say(f"killed {killed} process(es) of {victim.metadata.name} holding {len(victim_held)}")
    assert killed, f"no process of {victim.metadata.name} found on the node"
    return held | victim_held


def node_drained(drain: Drain) -> set[str]:
    """`kubectl drain` with the PodDisruptionBudget honoured (it keeps one operator replica:
    the drain times out on it), then uncordon."""
    node = drain.cluster.node_name
    jobs = {job_of(pod) for pod in drain.running_workers()}
    held = drain.held_by(jobs)
    began = now()
    result = drain.commands.run(
        "kubectl", "drain", node, "--ignore-daemonsets", "--delete-emptydir-data", "--force",
        "--timeout=60s", check=False,
    )  # fmt: skip
    held |= drain.held_by(jobs)
    drain.commands.kubectl("uncordon", node)
    kept = [
        pod
        for pod in operator_pods(drain.api_client, drain.release)
        if pod.metadata.deletion_timestamp is None and pod.metadata.creation_timestamp < began
    ]
    drain.say(f"drain exit {result.returncode}; operator replicas kept: {len(kept)}")
    assert kept, "the drain evicted every operator replica: the PodDisruptionBudget was ignored"
    return held


def snowflake_cut_off(drain: Drain) -> set[str]:
    return _worker_cut_off(drain, drain.snowflake_port, "Snowflake emulator")


def service_cut_off(drain: Drain) -> set[str]:
    return _worker_cut_off(drain, drain.service_port, "mTLS service")


def _worker_cut_off(drain: Drain, port: int, what: str) -> set[str]:
    pod = drain.wait_for_workers(1)[0]
    job = job_of(pod)
    held = drain.held_by({job})
    drain.say(f"dropping {pod.metadata.name}'s traffic to the {what} for 60 s")
    with dropping(pod.status.pod_ip, port):
        time.sleep(60)
        held |= drain.held_by({job})
    return held | drain.held_by({job})


LEASE_SECONDS = 15  # the chart's operator.leaderElection default


def operator_cut_off(drain: Drain) -> set[str]:
    """The acting replica's traffic to the API server dropped for longer than its lease:
    it stops acting, the standby takes the Lease; the cut-off one exits and comes back."""
    acting = acting_operator_pod(drain.api_client, drain.release)
    old_holder = lease(drain.api_client, drain.release).spec.holder_identity
    with dropping(acting.status.pod_ip, API_SERVER_PORT):
        lost_at = now()
        drain.takeovers["cut_off"] = _takeover(drain, old_holder, lost_at)
        time.sleep(max(0.0, LEASE_SECONDS + 5 - (now() - lost_at).total_seconds()))
    wait_until(
        lambda: any(
            (s.restart_count or 0) > 0
            for p in operator_pods(drain.api_client, drain.release)
            if p.metadata.name == acting.metadata.name
            for s in p.status.container_statuses or []
        ),
        180,
        "the cut-off replica to exit (leader election lost) and restart",
    )
    return set()


def operator_killed(drain: Drain) -> set[str]:
    """The acting replica's process SIGKILLed from the node: it cannot release the Lease,
    so the standby takes it once it has seen it unrenewed for the lease duration."""
    acting = acting_operator_pod(drain.api_client, drain.release)
    old_holder = lease(drain.api_client, drain.release).spec.holder_identity
    os.kill(operator_process(acting.metadata.name), signal.SIGKILL)
    drain.takeovers["killed"] = _takeover(drain, old_holder, now())
    return set()


def _takeover(drain: Drain, old_holder: str, lost_at: datetime) -> Takeover:
    return measure_takeover(
        drain.api_client, drain.release, drain.namespace, drain.name, old_holder, lost_at
    )
