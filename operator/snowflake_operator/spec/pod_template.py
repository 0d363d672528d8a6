"""The pod template fields of spec.job: what a resource may add to its Jobs' pods
(annotations, environment, tolerations, node selector, affinity, priority class, extra
volumes and mounts), and what it may not touch: the security template the operator puts on
every Job (non-root, read-only root filesystem, no privilege escalation, the mounted
certificates and key, /tmp, the service account token). Pure; kube/job_manifest.py copies them
into the Job, spec/reference_policy.py holds the Secrets they name against the allow-list.

Each rule here has a CEL twin in the CRD (crds/snowflakeprocessors.yaml), so the API
server refuses the same resources with the same words.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Literal

from pydantic import Field, StrictBool, field_validator, model_validator

from .base import SpecModel

# The operator's own variables (SFP_*, HOME) and those that choose which code the worker's
# interpreter loads (PATH, PYTHON*, LD_*, OPENSSL_*, GCONV_PATH): with one of those and a
# mounted volume a resource could run code that the image allow-list never admitted.
RESERVED_ENV_PREFIXES = ("SFP_", "PYTHON", "LD_", "OPENSSL_")
RESERVED_ENV_NAMES = ("HOME", "PATH", "GCONV_PATH")
RESERVED_ENV_HELP = (
    "the operator sets SFP_* and HOME, and PATH, PYTHON*, LD_*, OPENSSL_* and GCONV_PATH "
    "would choose the code the worker runs"
)
# The operator's own volumes (job_manifest.volumes_and_mounts).
RESERVED_VOLUME_NAMES = ("certificates", "tmp", "snowflake-key", "endpoint-headers")
# A mount at, under or above one of these would hide or replace the image's code and
# libraries (/usr, /opt/venv, /lib, /etc/ld.so.preload), the mounted certificates and key
# (/etc/snowflake-processor), /tmp, the termination log (/dev) or the service account tokens
# (/var/run/secrets; /var/run is /run in the image). Anywhere else is free: /mnt, /data ...
RESERVED_MOUNT_ROOTS = (
    "/bin", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/libx32", "/opt", "/proc", "/run",
    "/sbin", "/sys", "/tmp", "/usr", "/var/run",  # noqa: S108 (paths refused, not used)
)  # fmt: skip
# Annotations that would loosen the pod's AppArmor or seccomp profile.
RESERVED_ANNOTATION_PREFIXES = (
    "container.apparmor.security.beta.kubernetes.io/",
    "seccomp.security.alpha.kubernetes.io/",
    "container.seccomp.security.alpha.kubernetes.io/",
)
# Kubernetes reserves system-* priority classes for the cluster's own critical pods.
RESERVED_PRIORITY_CLASS_PREFIX = "system-"

ENV_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_.-]*$"
DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
# Absolute, no empty, "." or ".." segment, no trailing slash (every segment starts with a
# character other than a dot).
MOUNT_PATH_PATTERN = r"^(/[A-Za-z0-9_@:+-][A-Za-z0-9_.@:+-]*)+$"
# Bounds keep the CEL rules' cost estimate within the API server's budget.
MAX_ENV, MAX_VOLUMES, MAX_TOLERATIONS, MAX_ANNOTATIONS = 64, 32, 32, 64


def reserved_env_name(name: str) -> bool:
    return name in RESERVED_ENV_NAMES or name.startswith(RESERVED_ENV_PREFIXES)


def reserved_mount_root(path: str) -> str | None:
    """The reserved directory ``path`` is, lies under or lies above; None when free."""
    for root in RESERVED_MOUNT_ROOTS:
        if path == root or path.startswith(root + "/") or root.startswith(path + "/"):
            return root
    return None


def exactly_one(what: str, choices: dict[str, object]) -> None:
    """ValueError unless exactly one of ``choices`` (alias -> value) is set."""
    if sum(value is not None for value in choices.values()) != 1:
        raise ValueError(f"{what} needs exactly one of {', '.join(choices)}")


class KeySelector(SpecModel):
    name: str = Field(min_length=1, max_length=253)
    key: str = Field(min_length=1, max_length=253)
    optional: StrictBool | None = None


class FieldSelector(SpecModel):
    field_path: str = Field(min_length=1)
    api_version: str | None = None


class ResourceFieldSelector(SpecModel):
    resource: str = Field(min_length=1)
    container_name: str | None = None
    divisor: str | None = None


class EnvVarSource(SpecModel):
    secret_key_ref: KeySelector | None = None
    config_map_key_ref: KeySelector | None = None
    field_ref: FieldSelector | None = None
    resource_field_ref: ResourceFieldSelector | None = None

    @model_validator(mode="after")
    def _one_source(self) -> EnvVarSource:
        exactly_one(
            "valueFrom",
            {
                "secretKeyRef": self.secret_key_ref,
                "configMapKeyRef": self.config_map_key_ref,
                "fieldRef": self.field_ref,
                "resourceFieldRef": self.resource_field_ref,
            },
        )
        return self


class EnvVar(SpecModel):
    name: str = Field(max_length=128, pattern=ENV_NAME_PATTERN)
    value: str | None = None
    value_from: EnvVarSource | None = None

    @field_validator("name")
    @classmethod
    def _not_reserved(cls, name: str) -> str:
        if reserved_env_name(name):
            raise ValueError(f"{name} is reserved: {RESERVED_ENV_HELP}")
        return name

    @model_validator(mode="after")
    def _value_or_source(self) -> EnvVar:
        if self.value is not None and self.value_from is not None:
            raise ValueError(f"env {self.name} has value and valueFrom: give one")
        return self


class Toleration(SpecModel):
    key: str | None = None
    operator: Literal["Exists", "Equal"] | None = None
    value: str | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None
    toleration_seconds: int | None = None

    @model_validator(mode="after")
    def _kubernetes_rules(self) -> Toleration:
        if self.operator == "Exists" and self.value:
            raise ValueError("a toleration with operator Exists has no value")
        if not self.key and self.operator != "Exists":
            raise ValueError("a toleration without a key needs operator Exists")
        return self


class Affinity(SpecModel):
    """Kubernetes' own affinity sections, passed to the pod as they are (the API server
    checks them when the Job is created). EKS Fargate does not apply them."""

    node_affinity: dict[str, Any] | None = None
    pod_affinity: dict[str, Any] | None = None
    pod_anti_affinity: dict[str, Any] | None = None


class KeyToPath(SpecModel):
    key: str = Field(min_length=1)
    path: str = Field(min_length=1)
    mode: int | None = Field(default=None, ge=0, le=0o777)


class SecretVolume(SpecModel):
    secret_name: str = Field(min_length=1, max_length=253)
    items: list[KeyToPath] | None = None
    default_mode: int | None = Field(default=None, ge=0, le=0o777)
    optional: StrictBool | None = None


class Volume(SpecModel):
    """One extra volume of a type Pod Security's restricted profile allows. Every source
    but secret is Kubernetes' own object, passed to the pod as it is."""

    name: str = Field(max_length=63, pattern=DNS_LABEL_PATTERN)
    config_map: dict[str, Any] | None = None
    csi: dict[str, Any] | None = None
    downward_api: dict[str, Any] | None = Field(default=None, alias="downwardAPI")
    empty_dir: dict[str, Any] | None = None
    ephemeral: dict[str, Any] | None = None
    persistent_volume_claim: dict[str, Any] | None = None
    projected: dict[str, Any] | None = None
    secret: SecretVolume | None = None

    @field_validator("name")
    @classmethod
    def _not_reserved(cls, name: str) -> str:
        if name in RESERVED_VOLUME_NAMES:
            raise ValueError(
                f"{name} is reserved for the operator's own volumes "
                f"({', '.join(RESERVED_VOLUME_NAMES)})"
            )
        return name

    @model_validator(mode="after")
    def _one_source(self) -> Volume:
        sources = {
            alias: getattr(self, name)
            for name, alias in (
                ("config_map", "configMap"),
                ("csi", "csi"),
                ("downward_api", "downwardAPI"),
                ("empty_dir", "emptyDir"),
                ("ephemeral", "ephemeral"),
                ("persistent_volume_claim", "persistentVolumeClaim"),
                ("projected", "projected"),
                ("secret", "secret"),
            )
        }
        exactly_one(
            f"volume {self.name} (the volume types of Pod Security's restricted profile)",
            sources,
        )
        return self

    def secret_names(self) -> Iterator[tuple[str, str]]:
        """(where below the volume, Secret name) for every Secret the volume mounts."""
        if self.secret is not None:
            yield "secret.secretName", self.secret.secret_name
        for index, source in enumerate(_dicts((self.projected or {}).get("sources"))):
            name = _dict(source.get("secret")).get("name")
            if isinstance(name, str):
                yield f"projected.sources[{index}].secret.name", name
        name = _dict((self.csi or {}).get("nodePublishSecretRef")).get("name")
        if isinstance(name, str):
            yield "csi.nodePublishSecretRef.name", name


class VolumeMount(SpecModel):
    name: str = Field(max_length=63, pattern=DNS_LABEL_PATTERN)
    mount_path: str = Field(max_length=256, pattern=MOUNT_PATH_PATTERN)
    read_only: StrictBool | None = None
    sub_path: str | None = None

    @field_validator("mount_path")
    @classmethod
    def _not_reserved(cls, path: str) -> str:
        root = reserved_mount_root(path)
        if root is not None:
            raise ValueError(
                f"{path} is at, under or above {root}, which holds the image's code, the "
                "mounted certificates, /tmp or the service account token: mount elsewhere, "
                "e.g. under /mnt"
            )
        return path


def reserved_annotation(key: str) -> bool:
    return key.startswith(RESERVED_ANNOTATION_PREFIXES)


def check_annotations(annotations: dict[str, str] | None) -> dict[str, str] | None:
    for key in annotations or {}:
        if reserved_annotation(key):
            raise ValueError(
                f"{key} would change the pod's AppArmor or seccomp profile, which the operator sets"
            )
    return annotations


def check_priority_class(name: str | None) -> str | None:
    if name is not None and name.startswith(RESERVED_PRIORITY_CLASS_PREFIX):
        raise ValueError(
            f"{name}: system-* priority classes are reserved for the cluster's own critical pods"
        )
    return name


def check_extra_volumes(volumes: Sequence[Volume], mounts: Sequence[VolumeMount]) -> None:
    """Unique volume names and mount paths; every mount names one of the extra volumes."""
    names = [volume.name for volume in volumes]
    _unique("volumes name", names)
    _unique("volumeMounts mountPath", [mount.mount_path for mount in mounts])
    for mount in mounts:
        if mount.name not in names:
            raise ValueError(
                f"volumeMounts {mount.name} ({mount.mount_path}) names no volume of "
                "spec.job.volumes"
            )


def check_unique_env(env: Sequence[EnvVar]) -> None:
    _unique("env name", [variable.name for variable in env])


def _unique(what: str, values: list[str]) -> None:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise ValueError(f"{what} {value} appears twice")
        seen.add(value)


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []
