"""Kubernetes objects as test data."""

from __future__ import annotations

from typing import Any


def job_manifest(name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    """A minimal batch/v1 Job. No metadata.namespace: the server must take it from the URL."""
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "labels": labels or {}},
        "spec": {
            "parallelism": 1,
            "backoffLimit": 0,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "worker", "image": "worker:test"}],
                }
            },
        },
    }
