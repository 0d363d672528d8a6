"""Pods and Jobs for the end-to-end tests: what an EKS Fargate pod of this project looks like."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from kubernetes import client

from snowflake_devtools.cluster.settings import BASE_IMAGE

FARGATE_TOLERATION = {
    "key": "eks.amazonaws.com/compute-type",
    "operator": "Equal",
    "value": "fargate",
    "effect": "NoSchedule",
}
APP_UID = 10001


def wait_until(check: Callable[[], Any], timeout: float, what: str, interval: float = 1.0) -> Any:
    """Poll until check() returns something truthy; fail with `what` otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def restricted_container(
    script: str, env: dict[str, str] | None = None, image: str = BASE_IMAGE
) -> dict[str, Any]:
    """The base image running a Python script as the project's images run: uid 10001,
    read-only root, no capabilities (what PodSecurity `restricted` demands)."""
    return {
        "name": "main",
        "image": image,
        "imagePullPolicy": "Never",  # imported locally; there is no registry
        "command": ["python3", "-c", script],
        "env": [{"name": k, "value": v} for k, v in (env or {}).items()],
        "terminationMessagePolicy": "File",
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": APP_UID,
            "runAsGroup": APP_UID,
            "readOnlyRootFilesystem": True,
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
        },
    }


def pod_spec(
    script: str,
    env: dict[str, str] | None = None,
    service_account: str | None = None,
    image: str = BASE_IMAGE,
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "tolerations": [FARGATE_TOLERATION],
        "enableServiceLinks": False,
        "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [restricted_container(script, env, image)],
    }
    if service_account:
        spec["serviceAccountName"] = service_account
    return spec


def job_manifest(name: str, script: str, **extra_spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {"backoffLimit": 0, "template": {"spec": pod_spec(script)}, **extra_spec},
    }


def run_pod(
    api: Any,
    namespace: str,
    name: str,
    script: str,
    *,
    env: dict[str, str] | None = None,
    service_account: str | None = None,
    image: str = BASE_IMAGE,
    timeout: float = 120,
) -> Any:
    """Run the script in a pod until it ends; return its container's terminated state."""
    core: Any = client.CoreV1Api(api)
    body = {"metadata": {"name": name}, "spec": pod_spec(script, env, service_account, image)}
    core.create_namespaced_pod(namespace, body)

    def finished() -> Any:
        pod = core.read_namespaced_pod(name, namespace)
        if pod.status.phase in ("Succeeded", "Failed"):
            return pod
        return None

    pod = wait_until(finished, timeout, f"pod {namespace}/{name} to finish")
    terminated = pod.status.container_statuses[0].state.terminated
    if pod.status.phase != "Succeeded":
        logs = core.read_namespaced_pod_log(name, namespace)
        raise AssertionError(
            f"pod {name} failed (exit {terminated.exit_code}): {terminated.message}\n{logs}"
        )
    return terminated
