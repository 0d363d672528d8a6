"""SnowflakeProcessor resources whose queue lives in the Snowflake emulator and whose
certificates come from the S3 emulator, and what the tests read back from the cluster."""

from __future__ import annotations

import uuid
from typing import Any

from kubernetes import client
from prometheus_client.parser import text_string_to_metric_families

from snowflake_operator.constants import PROCESSOR_LABEL
from snowflake_operator.queue_schema import SchemaTarget, ensure_queue_table
from snowflake_worker.identifiers import TableRef
from snowflake_worker.queue import QueueClient
from tests.e2e.host_services import HostServices
from tests.e2e.release import Release
from tests.e2e.test_chart_install import acting_operator_pod
from tests.support.s3 import PREFIX, REGION
from tests.support.snowflake import location

GROUP, VERSION, PLURAL = "snowflake-processor.dev", "v1alpha1", "snowflakeprocessors"
# The count of the poll-duration histogram: one per poll the operator ran.
POLLS = "snowflake_processor_reconcile_duration_seconds_count"
# What terraform/eks's worker Fargate profile selects (checked against it by the tests).
FARGATE_POD_LABELS = {"snowflake-processor.dev/fargate": "true"}


def new_queue(services: HostServices) -> QueueClient:
    """A fresh queue table in the emulator, with a connection from the host."""
    database = f"E2E_{uuid.uuid4().hex[:8].upper()}"
    setup = services.snowflake()
    setup.cursor().execute(f"CREATE DATABASE IF NOT EXISTS {database}")
    setup.cursor().execute(f"CREATE SCHEMA IF NOT EXISTS {database}.QUEUE")
    table = TableRef(database, "QUEUE", "WORK_QUEUE")
    ensure_queue_table(setup, SchemaTarget(table=table))
    return QueueClient(services.snowflake(**location(table)), table)


def emulator_snowflake(queue: QueueClient, services: HostServices) -> dict[str, Any]:
    """spec.snowflake for ``queue``'s table in the emulator (the same in every release's
    CRD so far)."""
    table = queue.table
    return {
        "account": "local",
        "database": table.database,
        "schema": table.schema,
        "table": table.table,
        # The emulator takes any credentials: no Secret is involved.
        "auth": {"mode": "emulator"},
        "host": services.address,
        "port": services.snowflake_port,
    }


def processor_manifest(
    name: str,
    namespace: str,
    queue: QueueClient,
    services: HostServices,
    bucket: str,
    *,
    job: dict[str, Any] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "SnowflakeProcessor",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "snowflake": emulator_snowflake(queue, services),
            "endpoint": {"url": services.service_url, "timeoutSeconds": 5, "retries": 3},
            "certificates": {"s3": {"bucket": bucket, "prefix": PREFIX, "region": REGION}},
            "queue": {"leaseSeconds": 300, "maxAttempts": 3, "claimBatch": 50},
            "job": {
                "entriesPerJob": 100,
                "maxActiveJobs": 3,
                "concurrency": 8,
                "cpu": "0.25",  # the smallest Fargate size: 3 Jobs fit on 2 cores
                "memory": "768Mi",  # with Fargate's 256Mi: billed as 0.25 vCPU / 1 GB
                "podLabels": dict(FARGATE_POD_LABELS),
                # Longer than the operator takes to come back after the drain test deletes
                # its pod (Recreate: the old one stops first; minutes on a loaded machine):
                # the replacement must still find the Jobs that finished meanwhile to count
                # them. The operator deletes a Job once counted; this is the safety net.
                "ttlSecondsAfterFinished": 150,
                **(job or {}),
            },
            "pollIntervalSeconds": 3,
            **spec,
        },
    }


def read_processor(api_client: Any, namespace: str, name: str) -> dict[str, Any]:
    custom: Any = client.CustomObjectsApi(api_client)
    resource: dict[str, Any] = custom.get_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, name
    )
    return resource


def condition(resource: dict[str, Any], kind: str) -> str | None:
    for item in resource.get("status", {}).get("conditions", []):
        if item.get("type") == kind:
            return str(item.get("status"))
    return None


def jobs_of(api_client: Any, namespace: str, name: str) -> list[Any]:
    batch: Any = client.BatchV1Api(api_client)
    jobs: list[Any] = batch.list_namespaced_job(
        namespace, label_selector=f"{PROCESSOR_LABEL}={name}"
    ).items
    return jobs


def pods_of(api_client: Any, namespace: str, name: str) -> list[Any]:
    core: Any = client.CoreV1Api(api_client)
    pods: list[Any] = core.list_namespaced_pod(
        namespace, label_selector=f"{PROCESSOR_LABEL}={name}"
    ).items
    return pods


def job_finished(job: Any) -> str | None:
    """'Complete' or 'Failed' once the Job controller says so."""
    for item in job.status.conditions or []:
        if item.type in ("Complete", "Failed") and item.status == "True":
            return str(item.type)
    return None


def operator_metrics(api_client: Any, release: Release, processor: str) -> dict[str, float]:
    """The acting operator pod's /metrics samples of ``processor`` (``name[value]`` for a sample
    with one more label), read through the API server's pod proxy."""
    pod = acting_operator_pod(api_client, release).metadata.name
    core: Any = client.CoreV1Api(api_client)
    text = core.connect_get_namespaced_pod_proxy_with_path(
        f"{pod}:9090", release.namespace, "metrics"
    )
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.labels.get("processor") == processor:
                extra = [v for k, v in sample.labels.items() if k not in ("namespace", "processor")]
                found[sample.name + (f"[{extra[0]}]" if extra else "")] = sample.value
    return found


def operator_polls(api_client: Any, release: Release, processor: str) -> int:
    """How many polls of ``processor`` the acting operator pod has run."""
    return int(operator_metrics(api_client, release, processor).get(POLLS, 0))
