"""Kubernetes I/O with the official client: Jobs, Secrets, the resource's status. Called
from worker threads.

Thin calls only: what to create is decided elsewhere (kube/job_manifest.py,
poll/certificate_bundle.py).
"""

from __future__ import annotations

import base64
import hashlib
import logging
from collections.abc import Callable
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from snowflake_operator.constants import GROUP, PLURAL, VERSION
from snowflake_worker.errors import one_line

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
    return _read_or_none(api, client.CoreV1Api(api).read_namespaced_secret, name, namespace)


def _read_or_none(
    api: client.ApiClient, read: Callable[[str, str], Any], name: str, namespace: str
) -> dict[str, Any] | None:
    """The object as a plain dict, or None when it does not exist."""
    try:
        found = read(name, namespace)
    except ApiException as exc:
        if exc.status == NOT_FOUND:
            return None
        raise
    result: dict[str, Any] = api.sanitize_for_serialization(found)  # type: ignore[no-untyped-call]
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


# -- Without the CRD (cronjob/reconcile_once.py): Jobs found by label, status in a ConfigMap.


def list_labelled(
    api: client.ApiClient, kind: str, namespace: str, selector: str
) -> list[dict[str, Any]]:
    """Jobs (``kind`` "jobs") or pods ("pods") matching a label selector, as plain dicts."""
    if kind == "jobs":
        listed: Any = client.BatchV1Api(api).list_namespaced_job(namespace, label_selector=selector)
    else:
        listed = client.CoreV1Api(api).list_namespaced_pod(namespace, label_selector=selector)
    items: list[dict[str, Any]] = api.sanitize_for_serialization(listed.items)  # type: ignore[no-untyped-call]
    return items


def read_config_map(api: client.ApiClient, namespace: str, name: str) -> dict[str, Any] | None:
    return _read_or_none(api, client.CoreV1Api(api).read_namespaced_config_map, name, namespace)


def write_config_map(
    api: client.ApiClient, manifest: dict[str, Any], resource_version: str | None
) -> dict[str, Any]:
    """Create the ConfigMap (``resource_version`` None: there was none), or patch its data
    and annotations only if it is still the version that was read (409 otherwise)."""
    core = client.CoreV1Api(api)
    namespace, name = manifest["metadata"]["namespace"], manifest["metadata"]["name"]
    if resource_version is None:
        written: Any = core.create_namespaced_config_map(namespace, manifest)  # type: ignore[arg-type]
    else:
        metadata = {**manifest["metadata"], "resourceVersion": resource_version}
        written = core.patch_namespaced_config_map(
            name, namespace, {**manifest, "metadata": metadata}
        )
    result: dict[str, Any] = api.sanitize_for_serialization(written)  # type: ignore[no-untyped-call]
    return result


def post_event(
    api: client.ApiClient, involved: dict[str, Any], event: tuple[str, str, str], now: str
) -> None:
    """A core v1 Event about ``involved`` (an object reference). The same event again (type,
    reason and message) counts up on the first one, as kubectl describe shows it (x3)."""
    kind, reason, message = event
    namespace = involved["namespace"]
    digest = hashlib.sha256(f"{kind}\0{reason}\0{message}".encode()).hexdigest()[:16]
    name = f"{involved['name']}.{digest}"
    core = client.CoreV1Api(api)
    body = {
        "metadata": {"name": name, "namespace": namespace},
        "involvedObject": involved,
        "type": kind,
        "reason": reason,
        "message": message,
        "source": {"component": "snowflake-processor"},
        "reportingComponent": "snowflake-processor",
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    }
    try:
        core.create_namespaced_event(namespace, body)  # type: ignore[arg-type]
    except ApiException as exc:
        if exc.status != CONFLICT:
            raise
        earlier: Any = core.read_namespaced_event(name, namespace)
        count = int(earlier.count or 1) + 1
        core.patch_namespaced_event(name, namespace, {"count": count, "lastTimestamp": now})
