"""Kubernetes I/O with the official client: Jobs, Secrets, the resource's status. Called
from worker threads.

Thin calls only: what to create is decided elsewhere (job_manifest.py, certificate_bundle.py).
"""

from __future__ import annotations

import base64
import logging
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from snowflake_worker.errors import one_line

from .constants import GROUP, PLURAL, VERSION
from .processor_ref import ProcessorRef

log = logging.getLogger("snowflake_operator")

CONFLICT, NOT_FOUND = 409, 404


def patch_processor_status(
    api: client.ApiClient, processor: ProcessorRef, status: dict[str, Any]
) -> None:
    """Merge ``status`` into the resource's status subresource."""
    client.CustomObjectsApi(api).patch_namespaced_custom_object_status(
        GROUP, VERSION, processor.namespace, PLURAL, processor.name, {"status": status}
    )


def api_server_problem(api: client.ApiClient, timeout: float = 3.0) -> str | None:
    """None when the API server answers (GET /version), else why it does not."""
    try:
        client.VersionApi(api).get_code(_request_timeout=timeout)
    except Exception as exc:
        return f"the API server does not answer: {one_line(exc, limit=300)}"
    return None


def create_job(api: client.ApiClient, manifest: dict[str, Any]) -> bool:
    """Create the Job; False when one of that name exists already (nothing created)."""
    namespace = manifest["metadata"]["namespace"]
    try:
        # The client serialises plain dicts as they are; its stubs only name models.
        client.BatchV1Api(api).create_namespaced_job(namespace, manifest)  # type: ignore[arg-type]
    except ApiException as exc:
        if exc.status == CONFLICT:  # launched by an earlier try of this very poll slot
            return False
        raise
    return True


def mark_job_counted(api: client.ApiClient, namespace: str, name: str, annotation: str) -> None:
    """Remember on the Job itself that its summary is in the totals (survives restarts)."""
    body = {"metadata": {"annotations": {annotation: "true"}}}
    try:
        client.BatchV1Api(api).patch_namespaced_job(name, namespace, body)
    except ApiException as exc:
        if exc.status != NOT_FOUND:
            raise


def delete_job(api: client.ApiClient, namespace: str, name: str) -> None:
    try:
        client.BatchV1Api(api).delete_namespaced_job(
            name, namespace, propagation_policy="Background"
        )
    except ApiException as exc:
        if exc.status != NOT_FOUND:
            raise


def read_secret(api: client.ApiClient, namespace: str, name: str) -> dict[str, Any] | None:
    """The Secret as a plain dict (data still base64), or None when it does not exist."""
    core = client.CoreV1Api(api)
    try:
        secret = core.read_namespaced_secret(name, namespace)
    except ApiException as exc:
        if exc.status == NOT_FOUND:
            return None
        raise
    result: dict[str, Any] = api.sanitize_for_serialization(secret)  # type: ignore[no-untyped-call]
    return result


def secret_value(secret: dict[str, Any], key: str) -> str | None:
    encoded = (secret.get("data") or {}).get(key)
    return None if encoded is None else base64.b64decode(encoded).decode()


def write_secret(
    api: client.ApiClient, manifest: dict[str, Any], resource_version: str | None
) -> None:
    """Create the Secret (``resource_version`` None: there was none), or replace its data and
    metadata in one patch that applies only to the version that was read and checked; a
    Secret created or changed since then makes the call fail (409) and the next poll looks
    again."""
    core = client.CoreV1Api(api)
    namespace, name = manifest["metadata"]["namespace"], manifest["metadata"]["name"]
    if resource_version is None:
        core.create_namespaced_secret(namespace, manifest)  # type: ignore[arg-type]
        return
    metadata = {**manifest["metadata"], "resourceVersion": resource_version}
    core.patch_namespaced_secret(name, namespace, {**manifest, "metadata": metadata})
