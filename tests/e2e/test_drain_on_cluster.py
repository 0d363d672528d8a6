"""A SnowflakeProcessor drained on the real cluster, end to end.

The operator (installed by helm, running from its image) syncs the certificates from S3
into a Secret, launches Jobs; the Job controller creates pods, the scheduler places them,
the kubelet runs the worker image; the workers drain the emulator's queue through the
mTLS service. Midway the acting operator pod (the Lease's holder; the chart runs two
replicas) is deleted: the other replica must take over within seconds and launch nothing
the first one launched (`failover` in `make e2e`'s JSON line). At the end every entry is
completed or dead-lettered, the Jobs completed, status.totals adds up, the acting
operator's /metrics (read through the API server's proxy) counts the entries and the
service's answers from the workers' termination messages, and the finished Jobs are
removed (by the operator once counted; the TTL controller is the safety net, checked on
its own in test_cluster_smoke).
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from snowflake_devtools.cluster.project_images import current_tags
from snowflake_operator.constants import LAUNCHED_BY_ANNOTATION
from snowflake_worker.call_stats import STATUS_CLASSES
from snowflake_worker.queue import QueueClient
from tests.e2e import figures
from tests.e2e.commands import Commands
from tests.e2e.failover import launched_twice, measure_takeover, record_failover
from tests.e2e.helpers import wait_until
from tests.e2e.host_services import HostServices
from tests.e2e.processors import (
    job_finished,
    jobs_of,
    new_queue,
    operator_metrics,
    pods_of,
    processor_manifest,
    read_processor,
)
from tests.e2e.release import ROOT, Release
from tests.e2e.test_chart_install import (
    acting_operator_pod,
    holder_pod_name,
    lease,
    operator_pods,
    ready_operator_pod,
)
from tests.support.queues import fill, statuses
from tests.support.terraform_config import TF_DIR, fargate_selectors, load_config

NAME = "e2e-drain"
ENTRIES = 400
POISON = 5  # the service answers 422 for these: dead-lettered at once
MAX_ACTIVE = 3
ENTRIES_PER_JOB = 100


@dataclass
class Observed:
    """What sampling the cluster during the drain saw."""

    jobs: dict[str, str | None] = field(default_factory=dict)  # name -> Complete/Failed/None
    launches: dict[str, tuple[str, datetime]] = field(default_factory=dict)  # by, when
    pods: dict[str, tuple[str, dict[str, str]]] = field(default_factory=dict)
    pod_phases: dict[str, str] = field(default_factory=dict)
    summaries: dict[str, dict[str, Any]] = field(default_factory=dict)
    images: set[str] = field(default_factory=set)
    most_unfinished: int = 0
    deleted_operator: str | None = None

    def sample(self, api_client: Any, namespace: str) -> None:
        jobs = jobs_of(api_client, namespace, NAME)
        unfinished = 0
        for job in jobs:
            by = (job.metadata.annotations or {}).get(LAUNCHED_BY_ANNOTATION, "")
            self.launches[job.metadata.name] = (by, job.metadata.creation_timestamp)
            state = job_finished(job)
            self.jobs[job.metadata.name] = state or self.jobs.get(job.metadata.name)
            unfinished += state is None
        self.most_unfinished = max(self.most_unfinished, unfinished)
        # The operator deletes a Job once it has counted its summary: a Job gone before a
        # sample saw it end is known by the Event that records it.
        for job_name, state in recorded_job_outcomes(api_client, namespace).items():
            if self.jobs.get(job_name) is None:
                self.jobs[job_name] = state
        for pod in pods_of(api_client, namespace, NAME):
            name = pod.metadata.name
            self.pods[name] = (pod.metadata.namespace, dict(pod.metadata.labels or {}))
            self.pod_phases[name] = pod.status.phase
            self.images.update(c.image for c in pod.spec.containers)
            for status in pod.status.container_statuses or []:
                terminated = status.state.terminated
                if terminated is not None and terminated.message:
                    self.summaries[name] = json.loads(terminated.message)


RECORDED_OUTCOMES = {"JobSucceeded": "Complete", "JobFailed": "Failed"}


def recorded_job_outcomes(api_client: Any, namespace: str) -> dict[str, str]:
    """Job name -> Complete/Failed, from the operator's Events on the resource
    ("Job NAME succeeded: ...")."""
    core: Any = client.CoreV1Api(api_client)
    events = core.list_namespaced_event(
        namespace, field_selector=f"involvedObject.name={NAME}"
    ).items
    return {
        event.message.split()[1]: RECORDED_OUTCOMES[event.reason]
        for event in events
        if event.reason in RECORDED_OUTCOMES and (event.message or "").startswith("Job ")
    }


def terminal_counts(queue: QueueClient) -> dict[str, int]:
    return dict(Counter(statuses(queue).values()))


@pytest.mark.timeout(1500)
def test_processor_drains_its_queue_through_real_jobs_and_pods(
    operator_release: Release,
    services: HostServices,
    commands: Commands,
    api_client: Any,
) -> None:
    namespace = operator_release.jobs_namespace
    queue = new_queue(services)
    fill(queue, ENTRIES - POISON)
    queue.enqueue((f"poison{i}", {"poison": True}) for i in range(POISON))
    bucket = services.certificates_bucket()
    before = services.service_stats()
    started = time.monotonic()
    commands.apply(processor_manifest(NAME, namespace, queue, services, bucket))

    # The certificates Secret, synced from S3 by the operator, owned by the resource.
    resource = wait_until(
        lambda: (
            (r := read_processor(api_client, namespace, NAME))
            .get("status", {})
            .get("certificates", {})
            .get("secretName")
            and r
        ),
        120,
        "the certificates Secret to be synced",
    )
    secret_name = resource["status"]["certificates"]["secretName"]
    core: Any = client.CoreV1Api(api_client)
    secret = core.read_namespaced_secret(secret_name, namespace)
    assert sorted(secret.data) == ["ca-cert.pem", "client-key.pem", "client.pem"]
    assert [o.uid for o in secret.metadata.owner_references] == [resource["metadata"]["uid"]]

    observed = Observed()
    acting = acting_operator_pod(api_client, operator_release)
    old_operator, old_holder = (
        acting.metadata.name,
        lease(api_client, operator_release).spec.holder_identity,
    )
    standby = {p.metadata.name for p in operator_pods(api_client, operator_release)} - {
        old_operator
    }
    wait_until(lambda: observed.sample(api_client, namespace) or observed.jobs, 300, "Jobs")
    # Mid-run: the acting pod goes (SIGTERM, as a node drain or rollout does it).
    core.delete_namespaced_pod(old_operator, operator_release.namespace)
    deleted_at = datetime.now(UTC)
    observed.deleted_operator = old_operator
    takeover = measure_takeover(
        api_client, operator_release, namespace, NAME, old_holder, deleted_at
    )
    assert holder_pod_name(takeover.holder) in standby  # the standby took over, not a new pod

    def drained() -> bool:
        observed.sample(api_client, namespace)
        counts = terminal_counts(queue)
        return counts.get("completed", 0) + counts.get("failed", 0) == ENTRIES

    wait_until(drained, 1200, "every entry to be completed or dead-lettered", interval=2)
    drain_seconds = time.monotonic() - started
    replacement = ready_operator_pod(api_client, operator_release)
    assert old_operator not in {
        p.metadata.name for p in operator_pods(api_client, operator_release)
    }
    assert replacement.metadata.name != old_operator

    counts = terminal_counts(queue)
    after = services.service_stats()
    duplicates = after["duplicates"] - before["duplicates"]
    lost = ENTRIES - counts.get("completed", 0) - counts.get("failed", 0)
    figures.record(
        entries=ENTRIES,
        completed=counts.get("completed", 0),
        failed=counts.get("failed", 0),
        lost=lost,
        duplicates=duplicates,
        drain_seconds=round(drain_seconds, 1),
    )
    assert counts == {"completed": ENTRIES - POISON, "failed": POISON}
    assert duplicates == 0

    # Every Job completes (watched until it is removed).
    def all_jobs_finished() -> bool:
        observed.sample(api_client, namespace)
        return all(state is not None for state in observed.jobs.values())

    wait_until(all_jobs_finished, 300, "every Job to finish", interval=2)
    completed_jobs = [name for name, state in observed.jobs.items() if state == "Complete"]
    figures.record(jobs_completed=len(completed_jobs), jobs=len(observed.jobs))
    assert len(completed_jobs) == len(observed.jobs), observed.jobs
    # The replica that took over launched nothing twice: never more than maxActiveJobs at
    # once, and no more Jobs than the backlog asked for (deterministic names per poll);
    # the deleted one launched nothing once the other held the Lease.
    duplicate_launches = launched_twice(observed.launches, old_holder, takeover.acquired)
    record_failover(
        "deleted",
        takeover,
        duplicate_launches,
        replicas=len(standby) + 1,
        launched_before=sum(by == old_holder for by, _ in observed.launches.values()),
        launched_after=sum(by == takeover.holder for by, _ in observed.launches.values()),
    )
    assert duplicate_launches == 0, observed.launches
    assert observed.most_unfinished <= MAX_ACTIVE
    assert len(observed.jobs) <= math.ceil(ENTRIES / ENTRIES_PER_JOB) + MAX_ACTIVE
    assert {by for by, _ in observed.launches.values()} <= {old_holder, takeover.holder}

    # The kubelet really ran the worker image: pods succeeded with their summaries. The
    # operator deletes a Job (and its pod) once it has counted it, so a pod may be gone
    # before a sample saw it end: its Job's recorded outcome stands for it (the totals,
    # checked below, are the sum of every summary).
    assert observed.pods and "Failed" not in set(observed.pod_phases.values())
    assert {observed.jobs.get(labels.get("job-name")) for _, labels in observed.pods.values()} == {
        "Complete"
    }
    assert observed.summaries  # termination messages: the workers ran and reported
    assert sum(s.get("completed", 0) for s in observed.summaries.values()) <= ENTRIES - POISON
    assert observed.images == {current_tags(ROOT)["worker"]}  # built from worker/Dockerfile
    figures.record(kubelet=True)

    # Every worker pod would run on Fargate: terraform/eks's worker profile selects it.
    selectors = fargate_selectors(load_config(TF_DIR))
    unmatched = {
        name: labels
        for name, (pod_namespace, labels) in observed.pods.items()
        if not any(s.matches(pod_namespace, labels) for s in selectors)
    }
    figures.record(
        pods=len(observed.pods), pods_matching_fargate_profiles=len(observed.pods) - len(unmatched)
    )
    assert not unmatched, f"pods no Fargate profile selects (Pending forever on EKS): {unmatched}"

    # status.totals adds up to what the queue table says.
    def totals_add_up() -> dict[str, int] | None:
        totals = read_processor(api_client, namespace, NAME).get("status", {}).get("totals", {})
        wanted = {"completed": ENTRIES - POISON, "failed": POISON}
        return totals if {k: totals.get(k) for k in wanted} == wanted else None

    try:
        wait_until(totals_add_up, 120, "status.totals to add up to the queue's counts")
    except AssertionError:
        status = read_processor(api_client, namespace, NAME).get("status", {})
        events = client.CoreV1Api(api_client).list_namespaced_event(namespace).items
        counted = [f"{e.reason}: {e.message}" for e in events if e.reason.startswith("Job")]
        raise AssertionError(
            f"status.totals {status.get('totals')} do not add up to the queue's counts; "
            f"the Jobs' events: {counted}; summaries seen: {observed.summaries}"
        ) from None

    # The workers' calls reached the operator whole, in their termination messages; the
    # operator that counted the Jobs (the standby that took over: the first was deleted
    # before any Job could finish) exports them. It counted nothing while it stood by.
    summaries = list(observed.summaries.values())
    for summary in summaries:
        assert sum(summary["call_seconds"]["counts"]) == summary["http_calls"], summary
        assert sum(summary["responses"].values()) == summary["http_calls"], summary
    assert sum(s["responses"].get("4xx", 0) for s in summaries) == POISON
    m = "snowflake_processor_"

    def metrics_counted() -> dict[str, float] | None:
        values = operator_metrics(api_client, operator_release, NAME)
        return values if values.get(m + "entries_completed_total") == ENTRIES - POISON else None

    values = wait_until(metrics_counted, 120, "the operator's metrics to count every Job")
    assert values[m + "entries_failed_total"] == POISON
    assert values[m + "service_responses_total[4xx]"] == POISON
    calls = sum(values[m + f"service_responses_total[{kind}]"] for kind in STATUS_CLASSES)
    assert values[m + "service_call_duration_seconds_count"] == calls
    assert calls == sum(s["http_calls"] for s in summaries)
    figures.record(
        metrics_entries_completed=values[m + "entries_completed_total"],
        metrics_service_calls=calls,
    )
    row = commands.kubectl("get", "sfp", NAME, "-n", namespace, "--no-headers").split()
    assert row[:5] == [NAME, "0", "0", str(POISON), "True"], row

    # The finished Jobs go: the operator deletes each once counted (the TTL controller,
    # ttlSecondsAfterFinished 150, would take any it missed).
    def jobs_removed() -> bool:
        return not jobs_of(api_client, namespace, NAME)

    wait_until(jobs_removed, 240, "the finished Jobs to be deleted")
    _delete(commands, namespace)


def _delete(commands: Commands, namespace: str) -> None:
    # The release's uninstall removes the namespace anyway.
    with contextlib.suppress(AssertionError, ApiException):
        commands.kubectl("delete", "sfp", NAME, "-n", namespace, "--wait=true", "--timeout=120s")


def test_a_resource_without_pod_labels_still_launches_pods_a_fargate_profile_selects(
    operator_release: Release, services: HostServices, commands: Commands, api_client: Any
) -> None:
    namespace = operator_release.jobs_namespace
    queue = new_queue(services)
    fill(queue, 1)
    manifest = processor_manifest(
        "e2e-no-labels", namespace, queue, services, services.certificates_bucket()
    )
    del manifest["spec"]["job"]["podLabels"]  # as in examples/processor-minimal.yaml
    commands.apply(manifest)
    try:
        (job, *_) = wait_until(
            lambda: jobs_of(api_client, namespace, "e2e-no-labels"), 120, "a Job to be launched"
        )
        labels = job.spec.template.metadata.labels
        selectors = fargate_selectors(load_config(TF_DIR))
        assert any(s.matches(namespace, labels) for s in selectors), labels
    finally:
        commands.kubectl("delete", "sfp", "e2e-no-labels", "-n", namespace, "--wait=false")
