"""The pod template fields of spec.job: what a resource may add to its Jobs' pods
(annotations, environment, tolerations, node selector, affinity, priority class, extra
volumes and mounts), and what it may not touch: the security template the operator puts on
every Job (non-root, read-only root filesystem, no privilege escalation, the mounted
certificates and key, /tmp, the service account token). Pure; kube/job_manifest.py copies them
into the Job, spec/reference_policy.py holds the Secrets they name against the allow-list.

Each rule here has a CEL twin (the *_RULE constants and the models' cel_rules), which
scripts/gen_crd.py writes into the CRD, so the API server refuses the same resources.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Literal

from pydantic import Field, StrictBool, field_validator, model_validator

from .base import Rule, SpecModel, cel_list, cel_rules, described_fields

# The operator's own variables (SFP_*, HOME) and those that choose which code the worker's
# interpreter loads (PATH, PYTHON*, LD_*, OPENSSL_*, GCONV_PATH): with one of those and a
# mounted volume a resource could run code that the image allow-list never admitted.
RESERVED_ENV_PREFIXES = ("SFP_", "PYTHON", "LD_", "OPENSSL_")
RESERVED_ENV_NAMES = ("HOME", "PATH", "GCONV_PATH")
RESERVED_ENV_HELP = (
    "the operator sets SFP_* and HOME, and PATH, PYTHON*, LD_*, OPENSSL_* and GCONV_PATH "
    "would choose the code the worker runs (in any case: sfp_x is SFP_X to the worker)"
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
# The volume types of Pod Security's restricted profile: (field, alias).
VOLUME_SOURCES = (
    ("config_map", "configMap"),
    ("csi", "csi"),
    ("downward_api", "downwardAPI"),
    ("empty_dir", "emptyDir"),
    ("ephemeral", "ephemeral"),
    ("persistent_volume_claim", "persistentVolumeClaim"),
    ("projected", "projected"),
    ("secret", "secret"),
)

# The CEL twins of the checks of spec.job's own fields (check_annotations,
# check_priority_class below).
ANNOTATIONS_RULE: Rule = (
    "self.all(k, "
    + " && ".join(f"!k.startsWith('{prefix}')" for prefix in RESERVED_ANNOTATION_PREFIXES)
    + ")",
    "podAnnotations may not set the pod's AppArmor or seccomp profile (the operator sets "
    "seccomp RuntimeDefault)",
)
PRIORITY_CLASS_RULE: Rule = (
    f"!self.startsWith('{RESERVED_PRIORITY_CLASS_PREFIX}')",
    "system-* priority classes are reserved for the cluster's own critical pods",
)


def reserved_env_name(name: str) -> bool:
    """In any case: settings libraries match names ignoring case (sfp_x is read as SFP_X)."""
    upper = name.upper()
    return upper in RESERVED_ENV_NAMES or upper.startswith(RESERVED_ENV_PREFIXES)


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


def exactly_one_rule(what: str, aliases: Sequence[str], suffix: str = "") -> Rule:
    """The CEL twin of exactly_one on an object with these fields."""
    count = " + ".join(f"(has(self.{alias}) ? 1 : 0)" for alias in aliases)
    return f"{count} == 1", f"{what} needs exactly one of {', '.join(aliases)}{suffix}"


class KeySelector(SpecModel):
    """A key of a Secret or ConfigMap; each use says which."""

    name: str = Field(min_length=1, max_length=253, description="Name of the object.")
    key: str = Field(min_length=1, max_length=253, description="The key within the object.")
    optional: StrictBool | None = Field(
        default=None, description="Whether the object or its key may be missing."
    )


def _key_of(kind: str) -> dict[str, Any]:
    return described_fields(
        name=f"Name of the {kind}.",
        key=f"The key within the {kind}.",
        optional=f"Whether the {kind} or its key may be missing.",
    )


class FieldSelector(SpecModel):
    field_path: str = Field(min_length=1, description="The field's path, e.g. metadata.namespace.")
    api_version: str | None = Field(
        default=None, description="Version of the field path's schema. Unset: v1."
    )


class ResourceFieldSelector(SpecModel):
    resource: str = Field(
        min_length=1, description="The resource, e.g. limits.cpu or requests.memory."
    )
    container_name: str | None = Field(
        default=None, description="The container, worker (the only one)."
    )
    divisor: str | None = Field(
        default=None, description='The unit, a quantity as a string, e.g. "1Mi".'
    )


_ENV_SOURCES = ("secretKeyRef", "configMapKeyRef", "fieldRef", "resourceFieldRef")


class EnvVarSource(SpecModel):
    model_config = cel_rules(exactly_one_rule("valueFrom", _ENV_SOURCES))

    secret_key_ref: KeySelector | None = Field(
        default=None,
        description=(
            "A key of a Secret in the processor's namespace (on the operator's allow-list of "
            "Secrets)."
        ),
        json_schema_extra=_key_of("Secret"),
    )
    config_map_key_ref: KeySelector | None = Field(
        default=None,
        description="A key of a ConfigMap in the processor's namespace.",
        json_schema_extra=_key_of("ConfigMap"),
    )
    field_ref: FieldSelector | None = Field(
        default=None, description="A field of the pod, e.g. metadata.name or spec.nodeName."
    )
    resource_field_ref: ResourceFieldSelector | None = Field(
        default=None, description="A resource of the container, e.g. limits.memory."
    )

    @model_validator(mode="after")
    def _one_source(self) -> EnvVarSource:
        sources = (
            self.secret_key_ref,
            self.config_map_key_ref,
            self.field_ref,
            self.resource_field_ref,
        )
        exactly_one("valueFrom", dict(zip(_ENV_SOURCES, sources, strict=True)))
        return self


class EnvVar(SpecModel):
    model_config = cel_rules(
        (
            f"!(self.name.upperAscii() in {cel_list(RESERVED_ENV_NAMES)}) && "
            + " && ".join(
                f"!self.name.upperAscii().startsWith('{prefix}')"
                for prefix in RESERVED_ENV_PREFIXES
            ),
            f"env name is reserved: {RESERVED_ENV_HELP}",
        ),
        (
            "!has(self.value) || !has(self.valueFrom)",
            "an env variable has value or valueFrom, not both",
        ),
    )

    name: str = Field(
        max_length=128,
        pattern=ENV_NAME_PATTERN,
        description="The variable's name (letters, digits, _, . and -).",
    )
    value: str | None = Field(default=None, description="Its value. Unset with valueFrom.")
    value_from: EnvVarSource | None = Field(
        default=None, description="Where its value comes from, exactly one source."
    )

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
    model_config = cel_rules(
        (
            "!has(self.operator) || self.operator != 'Exists' || !has(self.value) || "
            "self.value == ''",
            "a toleration with operator Exists has no value",
        ),
        (
            "(has(self.key) && self.key != '') || "
            "(has(self.operator) && self.operator == 'Exists')",
            "a toleration without a key needs operator Exists",
        ),
    )

    key: str | None = Field(
        default=None, description="The taint's key; empty with operator Exists matches every taint."
    )
    operator: Literal["Exists", "Equal"] | None = Field(
        default=None, description="Exists or Equal (the Kubernetes default is Equal)."
    )
    value: str | None = Field(default=None, description="The taint's value (operator Equal).")
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = Field(
        default=None, description="The taint effect matched; unset matches all effects."
    )
    toleration_seconds: int | None = Field(
        default=None,
        description="With NoExecute, how long the pod stays after the taint appears.",
        json_schema_extra={"format": "int64"},
    )

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

    node_affinity: dict[str, Any] | None = Field(
        default=None, description="A core/v1 NodeAffinity, as in a pod spec."
    )
    pod_affinity: dict[str, Any] | None = Field(
        default=None, description="A core/v1 PodAffinity, as in a pod spec."
    )
    pod_anti_affinity: dict[str, Any] | None = Field(
        default=None, description="A core/v1 PodAntiAffinity, as in a pod spec."
    )


class KeyToPath(SpecModel):
    key: str = Field(min_length=1, description="The key within the Secret.")
    path: str = Field(min_length=1, description="The file's path, relative to the mount.")
    mode: int | None = Field(
        default=None, ge=0, le=0o777, description="The file's mode, 0-0777 (decimal 0-511)."
    )


class SecretVolume(SpecModel):
    secret_name: str = Field(
        min_length=1, max_length=253, description="Name of a Secret in the processor's namespace."
    )
    items: list[KeyToPath] | None = Field(
        default=None, description="Which keys, at which paths. Unset: every key, named after it."
    )
    default_mode: int | None = Field(
        default=None,
        ge=0,
        le=0o777,
        description="The files' mode, 0-0777 (decimal 0-511). Unset: 0644.",
    )
    optional: StrictBool | None = Field(
        default=None, description="Whether the Secret may be missing."
    )


class Volume(SpecModel):
    """One extra volume of a type Pod Security's restricted profile allows. Every source
    but secret is Kubernetes' own object, passed to the pod as it is."""

    model_config = cel_rules(
        (
            f"!(self.name in {cel_list(RESERVED_VOLUME_NAMES)})",
            "volume name is reserved for the operator's own volumes "
            f"({', '.join(RESERVED_VOLUME_NAMES)})",
        ),
        exactly_one_rule(
            "a volume",
            [alias for _, alias in VOLUME_SOURCES],
            suffix=" (the volume types of Pod Security's restricted profile)",
        ),
    )

    name: str = Field(
        max_length=63,
        pattern=DNS_LABEL_PATTERN,
        description="The volume's name, a DNS label, named by volumeMounts.",
    )
    config_map: dict[str, Any] | None = Field(
        default=None, description="A core/v1 ConfigMapVolumeSource."
    )
    csi: dict[str, Any] | None = Field(
        default=None,
        description=(
            "A core/v1 CSIVolumeSource; its nodePublishSecretRef must be on the operator's "
            "allow-list of Secrets."
        ),
    )
    downward_api: dict[str, Any] | None = Field(
        default=None, alias="downwardAPI", description="A core/v1 DownwardAPIVolumeSource."
    )
    empty_dir: dict[str, Any] | None = Field(
        default=None, description="A core/v1 EmptyDirVolumeSource, e.g. sizeLimit 1Gi."
    )
    ephemeral: dict[str, Any] | None = Field(
        default=None, description="A core/v1 EphemeralVolumeSource (a generic ephemeral volume)."
    )
    persistent_volume_claim: dict[str, Any] | None = Field(
        default=None, description="A core/v1 PersistentVolumeClaimVolumeSource (claimName)."
    )
    projected: dict[str, Any] | None = Field(
        default=None,
        description=(
            "A core/v1 ProjectedVolumeSource; each Secret among its sources must be on the "
            "operator's allow-list."
        ),
    )
    secret: SecretVolume | None = Field(
        default=None,
        description="A Secret's keys as files (on the operator's allow-list of Secrets).",
    )

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
        sources = {alias: getattr(self, name) for name, alias in VOLUME_SOURCES}
        exactly_one(
            f"volume {self.name} (the volume types of Pod Security's restricted profile)", sources
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
    model_config = cel_rules(
        (
            f"!{cel_list(RESERVED_MOUNT_ROOTS)}.exists(r, self.mountPath == r || "
            "self.mountPath.startsWith(r + '/') || r.startsWith(self.mountPath + '/'))",
            "mountPath is at, under or above a reserved directory (/bin, /dev, /etc, /lib*, "
            "/opt, /proc, /run, /sbin, /sys, /tmp, /usr, /var/run): the image's code, the "
            "certificates, /tmp and the service account token; mount elsewhere, e.g. under /mnt",
        )
    )

    name: str = Field(
        max_length=63, pattern=DNS_LABEL_PATTERN, description="The name of one of spec.job.volumes."
    )
    mount_path: str = Field(
        max_length=256,
        pattern=MOUNT_PATH_PATTERN,
        description=(
            'Absolute path in the container, without "." or ".." segments or a trailing slash.'
        ),
    )
    read_only: StrictBool | None = Field(
        default=None,
        description="Mount it read-only. Unset: read-write (the files' own modes apply).",
    )
    sub_path: str | None = Field(
        default=None, description="A path within the volume to mount instead of its root."
    )

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
