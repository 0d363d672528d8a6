"""`helm install` of the chart on the real cluster: the operator runs from the image built
from operator/Dockerfile, under the chart's ServiceAccount and RBAC, in namespaces that
enforce Pod Security `restricted`, and its probes pass."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client

from tests.e2e import figures
from tests.e2e.commands import Commands
from tests.e2e.helpers import APP_UID, wait_until
from tests.e2e.release import Release, release_status

OPERATOR_SELECTOR = (
    "app.kubernetes.io/name=snowflake-processor,app.kubernetes.io/component=operator"
)


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
    assert deployment.status.available_replicas == 1

    spec = pod.spec
    (container,) = spec.containers
    assert container.image == "localhost/snowflake-processor-operator:e2e"
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


def test_operator_is_refused_nothing_under_the_charts_namespace_rbac(
    operator_release: Release, commands: Commands, api_client: Any
) -> None:
    """Namespace-scoped RBAC grants no list on namespaces or CRDs: the operator must not
    spend its start retrying those lists with error lines (kopf's scanning is off). (A
    retried 429 while the API server initializes a new CRD's storage is not refused.)"""
    pod = ready_operator_pod(api_client, operator_release)
    logs = commands.kubectl("logs", "-n", operator_release.namespace, pod.metadata.name)
    refused = [line for line in logs.splitlines() if "Forbidden" in line or "status=403" in line]
    assert refused == [], "\n".join(refused[:5])
