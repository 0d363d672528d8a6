"""Jobs with `spec.job.compute: nodes` and the pod template fields, run by a real kubelet
in a namespace that enforces Pod Security `restricted`: the fields reach the pod, the
security template stays, and the workers drain the queue.

The local cluster's one node is tainted like an EKS Fargate node, and this namespace gives
its pods no default toleration: only `spec.job.tolerations` lets them run, as on a
dedicated EC2 or Karpenter node pool. The operator runs as a process on this machine
(tests/e2e/local_operator.py); only the worker image is built.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from snowflake_devtools.cluster import Cluster
from snowflake_devtools.cluster.project_images import WORKER, current_tags, ensure_project_images
from snowflake_operator.constants import FARGATE_PROFILE_LABEL
from snowflake_worker.constants import CERT_FILES
from tests.e2e import figures
from tests.e2e.commands import Commands
from tests.e2e.helpers import FARGATE_TOLERATION, wait_until
from tests.e2e.host_services import HostServices
from tests.e2e.local_operator import local_operator
from tests.e2e.processors import new_queue, pods_of, processor_manifest, read_processor
from tests.support.queues import fill

ROOT = Path(__file__).resolve().parents[2]
NAME = "e2e-nodes"
SECRET = "nodes-mtls"
ENTRIES = 150
RESTRICTED = {"pod-security.kubernetes.io/enforce": "restricted"}


@pytest.fixture(scope="module")
def worker_image(real_cluster: Cluster) -> str:
    """The worker image of these sources (built unless up to date), in containerd."""
    ensure_project_images(ROOT, lambda message: print(f"[images] {message}"), images=[WORKER])
    tag = current_tags(ROOT, [WORKER])[WORKER.name]
    real_cluster.import_images([tag])
    return tag


@pytest.fixture
def nodes_namespace(
    new_namespace: Callable[..., str], commands: Commands, services: HostServices
) -> str:
    """Pod Security restricted, no default tolerations; the worker's service account, a
    ConfigMap to mount and the client certificates in a Secret."""
    namespace = new_namespace(RESTRICTED)
    commands.apply(
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": "snowflake-processor-worker", "namespace": namespace},
            "automountServiceAccountToken": False,
        }
    )
    commands.kubectl(
        "create", "configmap", "extra-config", "-n", namespace, "--from-literal=mode=on"
    )
    client_dir = services.certs.client_dir
    files = [f"--from-file={name}={client_dir / name}" for name in CERT_FILES]
    commands.kubectl("create", "secret", "generic", SECRET, "-n", namespace, *files)
    return namespace


@pytest.fixture
def operator_for(
    real_cluster: Cluster, nodes_namespace: str, worker_image: str, tmp_path: Path
) -> Iterator[None]:
    with local_operator(
        real_cluster.kubeconfig,
        nodes_namespace,
        tmp_path / "operator.log",
        allowed_secrets=[SECRET],
        allowed_env=[variable["name"] for variable in POD_TEMPLATE["env"]],  # exactly these
        worker_image=worker_image,
    ):
        yield


POD_TEMPLATE: dict[str, Any] = {
    "compute": "nodes",
    "cpu": "250m",  # not a Fargate size: allowed on nodes
    "memory": "320Mi",
    "podLabels": {},  # no Fargate label with compute nodes
    "imagePullPolicy": "Never",  # imported locally; there is no registry
    "tolerations": [FARGATE_TOLERATION],  # the only way onto this node
    "podAnnotations": {"example.com/owner": "data-platform"},
    "env": [
        {"name": "EXTRA_SETTING", "value": "on"},
        {"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
    ],
    "volumes": [{"name": "extra", "configMap": {"name": "extra-config"}}],
    "volumeMounts": [{"name": "extra", "mountPath": "/mnt/extra", "readOnly": True}],
}


def test_jobs_on_nodes_carry_the_pod_template_and_drain_the_queue(
    api_client: Any,
    commands: Commands,
    services: HostServices,
    nodes_namespace: str,
    worker_image: str,
    operator_for: None,
) -> None:
    queue = new_queue(services)
    fill(queue, ENTRIES)
    manifest = processor_manifest(
        NAME,
        nodes_namespace,
        queue,
        services,
        bucket="unused",
        job={**POD_TEMPLATE, "image": worker_image},
        certificates={"existingSecret": SECRET},
    )
    assert "created" in commands.apply(manifest)
    pods: dict[str, Any] = {}

    def drained() -> bool:
        for pod in pods_of(api_client, nodes_namespace, NAME):
            pods[pod.metadata.name] = pod
        return queue.counts(max_attempts=3).completed == ENTRIES

    wait_until(drained, 300, f"{ENTRIES} entries completed by Jobs on the node")
    # Every Job finished and counted (the operator then deletes it, pod and all).
    wait_until(
        lambda: _totals(api_client, nodes_namespace).get("completed") == ENTRIES,
        180,
        "the Jobs' summaries counted",
    )
    events = client.CoreV1Api(api_client).list_namespaced_event(nodes_namespace).items
    reasons = [e.reason for e in events if e.involved_object.name == NAME]
    assert "JobSucceeded" in reasons and "JobFailed" not in reasons, reasons
    assert pods, "no worker pod was seen"
    for pod in pods.values():
        assert FARGATE_PROFILE_LABEL not in pod.metadata.labels
        assert pod.metadata.annotations["example.com/owner"] == "data-platform"
        tolerations = {(t.key, t.value, t.effect) for t in pod.spec.tolerations}
        assert ("eks.amazonaws.com/compute-type", "fargate", "NoSchedule") in tolerations
        (container,) = pod.spec.containers
        assert container.resources.limits == {"cpu": "250m", "memory": "320Mi"}
        env = {e.name for e in container.env}
        assert {"EXTRA_SETTING", "NODE_NAME", "SFP_ENDPOINT_URL"} <= env
        mounts = {m.mount_path: m.read_only for m in container.volume_mounts}
        assert mounts["/mnt/extra"] is True
        # The security template, as without the extra fields.
        assert container.security_context.read_only_root_filesystem is True
        assert container.security_context.allow_privilege_escalation is False
        assert pod.spec.security_context.run_as_non_root is True
        assert pod.status.phase in ("Running", "Succeeded"), pod.status.phase
    figures.record(nodes_pods=len(pods), nodes_entries_completed=ENTRIES)


def _totals(api_client: Any, namespace: str) -> dict[str, Any]:
    return dict(read_processor(api_client, namespace, NAME).get("status", {}).get("totals") or {})
