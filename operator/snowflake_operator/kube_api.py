"""Kubernetes I/O with the official client: Jobs, Secrets. Called from worker threads.

Thin calls only: what to create is decided elsewhere (job_manifest.py, certificate_bundle.py).
"""

from __future__ import annotations

import base64
import logging
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

log = logging.getLogger("snowflake_operator")

CONFLICT, NOT_FOUND = 409, 404


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


def apply_secret(api: client.ApiClient, manifest: dict[str, Any], exists: bool) -> None:
    """Create the Secret, or replace its data and metadata in one patch."""
    core = client.CoreV1Api(api)
    namespace, name = manifest["metadata"]["namespace"], manifest["metadata"]["name"]
    if not exists:
        try:
            core.create_namespaced_secret(namespace, manifest)  # type: ignore[arg-type]
            return
        except ApiException as exc:
            if exc.status != CONFLICT:
                raise
    core.patch_namespaced_secret(name, namespace, manifest)
