"""A SnowflakeProcessor's life on the real cluster around the drain: `suspend: true`
launches nothing; on a cordoned node the Jobs' pods stay Pending and the operator counts
them against maxActiveJobs; deleting the resource garbage-collects its Jobs (and their
pods) and its certificates Secret, and nothing else."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from snowflake_devtools.cluster import Cluster
from tests.e2e import figures
from tests.e2e.commands import Commands
from tests.e2e.helpers import job_manifest, wait_until
from tests.e2e.host_services import HostServices
from tests.e2e.processors import (
    condition,
    jobs_of,
    new_queue,
    operator_polls,
    pods_of,
    processor_manifest,
    read_processor,
)
from tests.e2e.release import Release
from tests.support.queues import fill

NAME = "e2e-lifecycle"
MAX_ACTIVE = 2
POLL_SECONDS = 3


def unschedulable(pod: Any) -> bool:
    return pod.status.phase == "Pending" and any(
        c.type == "PodScheduled" and c.status == "False" and c.reason == "Unschedulable"
        for c in pod.status.conditions or []
    )


def wait_for_polls(api_client: Any, release: Release, more: int = 3) -> None:
    """Until the acting operator has run ``more`` polls of the resource after this call."""
    start = operator_polls(api_client, release, NAME)
    wait_until(
        lambda: operator_polls(api_client, release, NAME) >= start + more,
        (more + 2) * POLL_SECONDS * 4,
        f"{more} more polls of {NAME}",
    )


def exists(read: Any, *args: str) -> bool:
    try:
        read(*args)
    except ApiException as error:
        if error.status == 404:
            return False
        raise
    return True


@pytest.mark.timeout(900)
def test_suspend_cordon_and_delete(
    operator_release: Release,
    services: HostServices,
    commands: Commands,
    api_client: Any,
    real_cluster: Cluster,
) -> None:
    namespace = operator_release.jobs_namespace
    core: Any = client.CoreV1Api(api_client)
    batch: Any = client.BatchV1Api(api_client)
    queue = new_queue(services)
    fill(queue, 500)
    bucket = services.certificates_bucket()
    # Bystanders in the same namespace that deleting the resource must leave alone.
    core.create_namespaced_secret(namespace, {"metadata": {"name": "e2e-bystander"}})
    batch.create_namespaced_job(namespace, job_manifest("e2e-bystander", "pass", suspend=True))

    manifest = processor_manifest(
        NAME, namespace, queue, services, bucket, suspend=True, job={"maxActiveJobs": MAX_ACTIVE}
    )
    commands.apply(manifest)
    wait_until(
        lambda: condition(read_processor(api_client, namespace, NAME), "Suspended") == "True",
        120,
        "the Suspended condition",
    )
    wait_for_polls(api_client, operator_release)  # several polls: still nothing launched
    assert jobs_of(api_client, namespace, NAME) == []
    figures.record(suspend_stops_launches=True)

    commands.kubectl("cordon", real_cluster.node_name)
    try:
        commands.kubectl(
            "patch", "sfp", NAME, "-n", namespace, "--type", "merge",
            "-p", '{"spec": {"suspend": false}}',
        )  # fmt: skip
        wait_until(
            lambda: (
                len(pods_of(api_client, namespace, NAME)) == MAX_ACTIVE
                and all(unschedulable(p) for p in pods_of(api_client, namespace, NAME))
            ),
            180,
            f"{MAX_ACTIVE} Pending, unschedulable worker pods",
        )
        wait_for_polls(api_client, operator_release)  # polls with a backlog of 500: no more Jobs
        assert len(jobs_of(api_client, namespace, NAME)) == MAX_ACTIVE
        status = read_processor(api_client, namespace, NAME)["status"]
        assert status["activeJobs"] == MAX_ACTIVE, status
        figures.record(pending_counted_against_max_active=True)

        secret = status["certificates"]["secretName"]
        assert exists(core.read_namespaced_secret, secret, namespace)
        commands.kubectl("delete", "sfp", NAME, "-n", namespace, "--wait=true", "--timeout=120s")

        def collected() -> bool:
            return (
                not jobs_of(api_client, namespace, NAME)
                and not pods_of(api_client, namespace, NAME)
                and not exists(core.read_namespaced_secret, secret, namespace)
            )

        wait_until(collected, 180, "the garbage collector to delete the Jobs, pods and Secret")
        assert exists(core.read_namespaced_secret, "e2e-bystander", namespace)
        assert exists(batch.read_namespaced_job, "e2e-bystander", namespace)
        figures.record(gc_ok=True)
    finally:
        commands.kubectl("uncordon", real_cluster.node_name)
        batch.delete_namespaced_job("e2e-bystander", namespace, propagation_policy="Background")
        core.delete_namespaced_secret("e2e-bystander", namespace)
