"""`helm install` of the chart on the real cluster: the operator runs from the image built
from operator/Dockerfile, under the chart's ServiceAccount and RBAC, in namespaces that
enforce Pod Security `restricted`, and its probes pass; of its two replicas, the one
holding the Lease acts and the other stands by, Ready too."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from snowflake_devtools.cluster.project_images import current_tags
from tests.e2e import figures
from tests.e2e.commands import Commands
from tests.e2e.helpers import APP_UID, wait_until
from tests.e2e.release import CHART, ROOT, Release, namespace_manifest, release_status

OPERATOR_SELECTOR = (
    "app.kubernetes.io/name=snowflake-processor,app.kubernetes.io/component=operator"
)
LEASE = "snowflake-processor-operator"  # named like the Deployment, in the release namespace
REPLICAS = 2  # the chart's default: the production setting


def operator_pods(api_client: Any, release: Release) -> list[Any]:
    core: Any = client.CoreV1Api(api_client)
    pods: list[Any] = core.list_namespaced_pod(
        release.namespace, label_selector=OPERATOR_SELECTOR
    ).items
    return pods


def ready_operator_pod(api_client: Any, release: Release, timeout: float = 180) -> Any:
    def ready() -> Any:
        for pod in operator_pods(api_client, release):
            conditions = {c.type: c.status for c in pod.status.conditions or []}
            if pod.metadata.deletion_timestamp is None and conditions.get("Ready") == "True":
                return pod
        return None

    return wait_until(ready, timeout, "a Ready operator pod")


def lease(api_client: Any, release: Release) -> Any:
    coordination: Any = client.CoordinationV1Api(api_client)
    return coordination.read_namespaced_lease(LEASE, release.namespace)


def holder_pod_name(holder: str | None) -> str:
    """The pod of a Lease holder identity (<pod name>_<random>; operator's replica_identity)."""
    return (holder or "").rpartition("_")[0]


def acting_operator_pod(api_client: Any, release: Release, timeout: float = 180) -> Any:
    """The Ready operator pod that holds the Lease (the one replica that acts)."""

    def acting() -> Any:
        name = holder_pod_name(lease(api_client, release).spec.holder_identity)
        pods = {p.metadata.name: p for p in operator_pods(api_client, release)}
        return pods.get(name)

    return wait_until(acting, timeout, "an operator pod holding the Lease")


# The first test to ask for the release pays for its setup: the cluster's start (when
# none runs), the images' import and `helm install --wait`.
@pytest.mark.timeout(900)
def test_helm_release_is_deployed_and_operator_ready(
    operator_release: Release, commands: Commands, api_client: Any
) -> None:
    status = release_status(commands, operator_release)
    figures.record(helm=status["info"]["status"])
    assert status["info"]["status"] == "deployed"

    apps: Any = client.AppsV1Api(api_client)
    (deployment,) = apps.list_namespaced_deployment(
        operator_release.namespace, label_selector=OPERATOR_SELECTOR
    ).items
    pod = ready_operator_pod(api_client, operator_release)
    figures.record(operator_ready=True)
    wait_until(
        lambda: (
            apps.read_namespaced_deployment(
                deployment.metadata.name, operator_release.namespace
            ).status.available_replicas
            == REPLICAS
        ),
        180,
        f"{REPLICAS} available operator replicas",
    )
    # Both Ready (the standby answers its probes), exactly one of them holds the Lease.
    acting = acting_operator_pod(api_client, operator_release)
    names = {p.metadata.name for p in operator_pods(api_client, operator_release)}
    assert len(names) == REPLICAS and acting.metadata.name in names

    spec = pod.spec
    (container,) = spec.containers
    assert container.image == current_tags(ROOT)["operator"]  # built from operator/Dockerfile
    assert spec.service_account_name == operator_release.operator_service_account
    assert container.security_context.read_only_root_filesystem is True
    assert container.security_context.run_as_user == APP_UID
    # Probes answered: Ready and never restarted by the liveness probe.
    (state,) = pod.status.container_statuses
    assert state.ready and state.restart_count == 0, state
    assert state.image_id, "the kubelet reports the image it ran"


def can_i(commands: Commands, release: Release, verb: str, resource: str, namespace: str) -> bool:
    account = f"system:serviceaccount:{release.namespace}:{release.operator_service_account}"
    result = commands.run(
        "kubectl", "auth", "can-i", verb, resource, "-n", namespace, "--as", account, check=False
    )
    return result.stdout.strip() == "yes"


def test_operator_service_account_has_the_charts_rights_and_no_more(
    operator_release: Release, commands: Commands
) -> None:
    jobs_ns = operator_release.jobs_namespace
    allowed = [
        ("create", "jobs.batch"),
        ("delete", "jobs.batch"),
        ("watch", "pods"),
        ("create", "secrets"),
        ("patch", "snowflakeprocessors.snowflake-processor.dev/status"),
    ]
    refused = [
        ("list", "secrets"),
        ("watch", "secrets"),
        ("create", "pods"),
        ("delete", "pods"),
        ("delete", "snowflakeprocessors.snowflake-processor.dev"),
        ("create", "rolebindings.rbac.authorization.k8s.io"),
    ]
    assert {r for r in allowed if not can_i(commands, operator_release, *r, jobs_ns)} == set()
    assert {r for r in refused if can_i(commands, operator_release, *r, jobs_ns)} == set()
    # The Lease in the release namespace, and no other Lease anywhere.
    own = operator_release.namespace
    assert can_i(commands, operator_release, "patch", f"leases/{LEASE}", own)
    assert can_i(commands, operator_release, "create", "leases", own)
    assert not can_i(commands, operator_release, "patch", "leases/kube-scheduler", own)
    assert not can_i(commands, operator_release, "patch", f"leases/{LEASE}", jobs_ns)
    assert not can_i(commands, operator_release, "get", "secrets", own)


def test_operator_is_refused_nothing_under_the_charts_namespace_rbac(
    operator_release: Release, commands: Commands, api_client: Any
) -> None:
    """Namespace-scoped RBAC grants no list on namespaces or CRDs: the operator must not
    spend its start retrying those lists with error lines (kopf's scanning is off). (A
    retried 429 while the API server initializes a new CRD's storage is not refused.) The
    acting replica is the one that runs kopf."""
    pod = acting_operator_pod(api_client, operator_release)
    logs = commands.kubectl("logs", "-n", operator_release.namespace, pod.metadata.name)
    refused = [line for line in logs.splitlines() if "Forbidden" in line or "status=403" in line]
    assert refused == [], "\n".join(refused[:5])


def test_a_second_release_is_refused_unless_it_serves_namespaces_of_its_own(
    installed_release: tuple[Release, Path],
    operator_release: Release,
    commands: Commands,
    new_namespace: Callable[..., str],
) -> None:
    """Another operator-mode release beside the installed one, checked by the API server
    (`--dry-run=server`, so the chart's lookups see the cluster): with the CRD or the
    installed release's namespace it is refused, naming what to set; with namespaces of
    its own and crds.install=false it is accepted (docs/install.md, "More than one release")."""
    _, values = installed_release
    labels = namespace_manifest("x")["metadata"]["labels"]
    # Its own release namespace too: the chart's ServiceAccount names are fixed values.
    release_namespace, own_namespace = new_namespace(labels), new_namespace(labels)

    def second(*sets: str) -> subprocess.CompletedProcess[str]:
        return commands.run(
            "helm", "install", "second", str(CHART), "-n", release_namespace,
            "-f", str(values), "--dry-run=server", *(f"--set={s}" for s in sets),
            check=False, timeout=420,
        )  # fmt: skip

    same = second()
    assert same.returncode != 0
    assert f"belongs to release {operator_release.name}" in same.stderr, same.stderr
    assert "crds.install=false" in same.stderr
    overlapping = second("crds.install=false")
    assert overlapping.returncode != 0
    assert f"serves {operator_release.jobs_namespace}" in overlapping.stderr, overlapping.stderr
    everywhere = second("crds.install=false", "rbac.scope=cluster")
    assert everywhere.returncode != 0 and "another release" in everywhere.stderr
    own = second("crds.install=false", f"jobs.namespace={own_namespace}")
    assert own.returncode == 0, own.stderr
