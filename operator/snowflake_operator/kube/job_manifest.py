"""The Kubernetes Job for one worker run: a pure function of the spec and its names,
composed of small builders (labels, environment, volumes, security, container, pod).

The resource's pod template fields (spec.job: annotations, env, tolerations, nodeSelector,
affinity, priorityClassName, extra volumes and mounts; spec/pod_template.py) are added to what
the operator sets and can replace none of it: the security contexts, the certificate and
key mounts, /tmp and the SFP_* environment are built here alone."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel

from snowflake_operator.constants import (
    APP_NAME,
    CERT_MOUNT_PATH,
    COMPONENT_LABEL,
    ENDPOINT_HEADERS_MOUNT_PATH,
    FARGATE_PROFILE_LABEL,
    FARGATE_PROFILE_LABEL_VALUE,
    MANAGED_BY,
    MANAGED_BY_LABEL,
    NAME_LABEL,
    PROCESSOR_LABEL,
    SECRET_FILE_MODE,
    SNOWFLAKE_KEY_MOUNT_PATH,
    WORKER_COMMAND,
    WORKER_CONTAINER,
    WORKER_UID,
)
from snowflake_operator.spec.model import ProcessorSpec
from snowflake_worker.snowflake_settings import AuthMode

from .processor_ref import ProcessorRef
from .worker_environment import worker_environment, worker_secret_environment

TMP_DIR = "/tmp"  # noqa: S108 (an emptyDir: the root filesystem is read-only)


def pod_labels(spec: ProcessorSpec, processor: str, job_name: str) -> dict[str, str]:
    """spec.job.podLabels, then the operator's own: the common labels and, on Fargate, the
    label the worker Fargate profile selects, which a resource can neither drop nor change
    (a pod that no profile selects stays Pending forever on a cluster without EC2 nodes).
    With compute nodes that label is left off: EKS would send the pod to Fargate."""
    fargate = {FARGATE_PROFILE_LABEL: FARGATE_PROFILE_LABEL_VALUE}
    return {
        **spec.job.pod_labels,
        **common_labels(processor),
        **(fargate if spec.job.compute == "fargate" else {}),
        "job-name": job_name,
    }


def pod_metadata(spec: ProcessorSpec, processor: str, job_name: str) -> dict[str, Any]:
    metadata: dict[str, Any] = {"labels": pod_labels(spec, processor, job_name)}
    if spec.job.pod_annotations:
        metadata["annotations"] = dict(spec.job.pod_annotations)
    return metadata


def common_labels(processor: str) -> dict[str, str]:
    return {
        NAME_LABEL: APP_NAME,
        COMPONENT_LABEL: "worker",
        MANAGED_BY_LABEL: MANAGED_BY,
        PROCESSOR_LABEL: processor,
    }


def container_environment(
    spec: ProcessorSpec, job_name: str, launched_at: datetime
) -> list[dict[str, Any]]:
    """Plain values, Secret references (never the secrets themselves), and HOME."""
    plain = worker_environment(spec, job_name, launched_at=launched_at)
    env: list[dict[str, Any]] = [{"name": key, "value": value} for key, value in plain.items()]
    env += [
        {"name": key, "valueFrom": {"secretKeyRef": {"name": ref.name, "key": ref.key}}}
        for key, ref in worker_secret_environment(spec).items()
    ]
    env.append({"name": "HOME", "value": TMP_DIR})
    env += [_kubernetes(variable) for variable in spec.job.env or []]  # never SFP_* or HOME
    return env


def _kubernetes(section: BaseModel) -> dict[str, Any]:
    """A spec section as the Kubernetes object it mirrors (camelCase, unset fields out)."""
    return section.model_dump(by_alias=True, exclude_none=True, mode="json")


def volumes_and_mounts(
    spec: ProcessorSpec, certificates_secret: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The certificate Secret (read-only, 0400), a small /tmp, the Snowflake key file when
    the login is a key pair, and the Secret of extra request headers when there is one."""
    volumes: list[dict[str, Any]] = [
        {
            "name": "certificates",
            "secret": {"secretName": certificates_secret, "defaultMode": SECRET_FILE_MODE},
        },
        {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}},
    ]
    mounts: list[dict[str, Any]] = [
        {"name": "certificates", "mountPath": CERT_MOUNT_PATH, "readOnly": True},
        {"name": "tmp", "mountPath": TMP_DIR},
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
    headers_secret = spec.endpoint.headers_secret
    if headers_secret is not None:
        # Every key is one header file: the worker reads them at start and logs none.
        volumes.append(
            {
                "name": "endpoint-headers",
                "secret": {"secretName": headers_secret, "defaultMode": SECRET_FILE_MODE},
            }
        )
        mounts.append(
            {"name": "endpoint-headers", "mountPath": ENDPOINT_HEADERS_MOUNT_PATH, "readOnly": True}
        )
    # The resource's own: names and paths clear of the ones above (spec/pod_template.py).
    volumes += [_kubernetes(volume) for volume in spec.job.volumes or []]
    mounts += [_kubernetes(mount) for mount in spec.job.volume_mounts or []]
    return volumes, mounts


def pod_security_context() -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": WORKER_UID,
        "runAsGroup": WORKER_UID,
        "fsGroup": WORKER_UID,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container_security_context() -> dict[str, Any]:
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
    }


def worker_container(
    spec: ProcessorSpec,
    job_name: str,
    image: str,
    mounts: list[dict[str, Any]],
    launched_at: datetime,
) -> dict[str, Any]:
    """Requests equal limits (Fargate sizes the pod from them)."""
    resources = {"cpu": spec.job.cpu, "memory": spec.job.memory}
    return {
        "name": WORKER_CONTAINER,
        "image": image,
        "imagePullPolicy": spec.job.image_pull_policy,
        "command": list(WORKER_COMMAND),
        "env": container_environment(spec, job_name, launched_at),
        "resources": {"requests": resources, "limits": resources},
        "volumeMounts": mounts,
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "securityContext": container_security_context(),
    }


def pod_spec(
    spec: ProcessorSpec,
    job_name: str,
    image: str,
    certificates_secret: str,
    launched_at: datetime,
) -> dict[str, Any]:
    volumes, mounts = volumes_and_mounts(spec, certificates_secret)
    return {
        "restartPolicy": "Never",
        "serviceAccountName": spec.job.service_account_name,
        # IRSA's token is a projected volume the EKS webhook adds on its own.
        "automountServiceAccountToken": False,
        "terminationGracePeriodSeconds": spec.job.grace_seconds + 10,
        "securityContext": pod_security_context(),
        "containers": [worker_container(spec, job_name, image, mounts, launched_at)],
        "volumes": volumes,
        **placement(spec),
    }


def placement(spec: ProcessorSpec) -> dict[str, Any]:
    """Where the pod may run: the resource's nodeSelector, tolerations, affinity and
    priority class, those it sets (EKS Fargate applies none of them)."""
    job = spec.job
    fields: dict[str, Any] = {
        "nodeSelector": job.node_selector,
        "tolerations": [_kubernetes(t) for t in job.tolerations] if job.tolerations else None,
        "affinity": _kubernetes(job.affinity) if job.affinity else None,
        "priorityClassName": job.priority_class_name,
    }
    return {key: value for key, value in fields.items() if value}


def build_job(
    job_name: str,
    processor: ProcessorRef,
    spec: ProcessorSpec,
    *,
    image: str,
    certificates_secret: str,
    launched_at: datetime,
) -> dict[str, Any]:
    """A batch/v1 Job manifest: one pod, never retried by Kubernetes (the queue retries).
    ``launched_at`` is when it is created: the worker's deadline counts from it."""
    labels = common_labels(processor.name)
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
            "ttlSecondsAfterFinished": spec.job.ttl_seconds_after_finished,
            "template": {
                "metadata": pod_metadata(spec, processor.name, job_name),
                "spec": pod_spec(spec, job_name, image, certificates_secret, launched_at),
            },
        },
    }
