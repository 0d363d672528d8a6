"""The Kubernetes Job for one worker run: a pure function of the spec and its names."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from snowflake_worker.connection import AuthMode

from .environment import (
    CERT_MOUNT_PATH,
    SNOWFLAKE_KEY_MOUNT_PATH,
    worker_environment,
    worker_secret_environment,
)
from .spec import ProcessorSpec

GROUP = "snowflake-processor.dev"
VERSION = "v1alpha1"
KIND = "SnowflakeProcessor"
PLURAL = "snowflakeprocessors"
PROCESSOR_LABEL = f"{GROUP}/processor"
WORKER_UID = 10001  # the numeric non-root user of the worker image
SECRET_FILE_MODE = 0o400


@dataclass(frozen=True)
class ProcessorRef:
    """The SnowflakeProcessor a Job belongs to."""

    name: str
    namespace: str
    uid: str

    def owner_reference(self) -> dict[str, Any]:
        return {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": KIND,
            "name": self.name,
            "uid": self.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }


def common_labels(processor: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "snowflake-processor",
        "app.kubernetes.io/component": "worker",
        "app.kubernetes.io/managed-by": "snowflake-processor-operator",
        PROCESSOR_LABEL: processor,
    }


def build_job(
    job_name: str,
    processor: ProcessorRef,
    spec: ProcessorSpec,
    *,
    image: str,
    certificates_secret: str,
) -> dict[str, Any]:
    """A batch/v1 Job manifest: one pod, never retried by Kubernetes (the queue retries)."""
    job = spec.job
    env: list[dict[str, Any]] = [
        {"name": key, "value": value} for key, value in worker_environment(spec, job_name).items()
    ]
    env += [
        {"name": key, "valueFrom": {"secretKeyRef": {"name": ref.name, "key": ref.key}}}
        for key, ref in worker_secret_environment(spec).items()
    ]
    env.append({"name": "HOME", "value": "/tmp"})  # noqa: S108 (an emptyDir: the root is read-only)
    volumes: list[dict[str, Any]] = [
        {
            "name": "certificates",
            "secret": {"secretName": certificates_secret, "defaultMode": SECRET_FILE_MODE},
        },
        {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}},
    ]
    mounts: list[dict[str, Any]] = [
        {"name": "certificates", "mountPath": CERT_MOUNT_PATH, "readOnly": True},
        {"name": "tmp", "mountPath": "/tmp"},  # noqa: S108
    ]
    key_secret = spec.snowflake.auth.private_key_secret
    if spec.snowflake.auth.mode is AuthMode.KEY_PAIR and key_secret is not None:
        volumes.append(
            {
                "name": "snowflake-key",
                "secret": {
                    "secretName": key_secret.name,
                    "defaultMode": SECRET_FILE_MODE,
                    "items": [{"key": key_secret.key, "path": key_secret.key}],
                },
            }
        )
        mounts.append(
            {"name": "snowflake-key", "mountPath": SNOWFLAKE_KEY_MOUNT_PATH, "readOnly": True}
        )
    resources = {"cpu": job.cpu, "memory": job.memory}
    labels = common_labels(processor.name)
    pod_labels = {**job.pod_labels, **labels, "job-name": job_name}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": job_name,
            "namespace": processor.namespace,
            "labels": labels,
            "ownerReferences": [processor.owner_reference()],
        },
        "spec": {
            "backoffLimit": 0,  # a failed pod is not retried: its entries go back via leases
            "completions": 1,
            "parallelism": 1,
            "activeDeadlineSeconds": spec.job_active_deadline_seconds(),  # below the lease
            "ttlSecondsAfterFinished": job.ttl_seconds_after_finished,
            "template": {
                "metadata": {"labels": pod_labels},
                "spec": {
                    "restartPolicy": "Never",
                    "serviceAccountName": job.service_account_name,
                    # IRSA's token is a projected volume the EKS webhook adds on its own.
                    "automountServiceAccountToken": False,
                    "terminationGracePeriodSeconds": job.grace_seconds + 10,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": WORKER_UID,
                        "runAsGroup": WORKER_UID,
                        "fsGroup": WORKER_UID,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [
                        {
                            "name": "worker",
                            "image": image,
                            "imagePullPolicy": job.image_pull_policy,
                            "command": ["snowflake-processor-worker"],
                            "env": env,
                            "resources": {"requests": resources, "limits": resources},
                            "volumeMounts": mounts,
                            "terminationMessagePolicy": "FallbackToLogsOnError",
                            "securityContext": {
                                "allowPrivilegeEscalation": False,
                                "readOnlyRootFilesystem": True,
                                "runAsNonRoot": True,
                                "capabilities": {"drop": ["ALL"]},
                            },
                        }
                    ],
                    "volumes": volumes,
                },
            },
        },
    }
