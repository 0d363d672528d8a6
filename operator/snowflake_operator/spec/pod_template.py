"""The pod template fields of spec.job: what a resource may add to its Jobs' pods
(annotations, environment, tolerations, node selector, affinity, priority class, extra
volumes and mounts), and what it may not touch: the security template the operator puts on
every Job (non-root, read-only root filesystem, no privilege escalation, the mounted
certificates and key, /tmp, the service account token). Pure; kube/job_manifest.py copies them
into the Job, spec/reference_policy.py holds the Secrets and volume types they use against the
allow-lists.

Kubernetes' own objects (affinity, tolerations, volume sources) are typed here with the
fields of the core/v1 API that a worker's pod can use, and bounded: every list has a most
items, every map a most entries and every string a most characters, so the API server
refuses an oversized resource and the typed schema bounds its depth (nothing in spec.job
keeps unknown fields). The API server checks the values themselves when a Job is created.

Each rule here has a CEL twin (the *_RULE constants and the models' cel_rules), which
scripts/gen_crd.py writes into the CRD, so the API server refuses the same resources.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Annotated, Any, Literal

from pydantic import Field, StrictBool, field_validator, model_validator

from .base import Rule, SpecModel, cel_list, cel_rules, described_fields, string_map

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
# Bounds keep the CEL rules' cost estimate within the API server's budget, and every
# resource small enough to read back.
MAX_ENV, MAX_VOLUMES, MAX_TOLERATIONS, MAX_ANNOTATIONS = 64, 32, 32, 64
MAX_LABELS = 64  # entries of a map (labels, annotations, attributes) or a list of names
MAX_TERMS = 32  # node selector terms, (anti-)affinity terms, projected sources
MAX_EXPRESSIONS = 64  # requirements of one term or label selector
MAX_VALUES = 256  # values of one requirement
MAX_ITEMS = 64  # files of one configMap, secret or downward API volume
MAX_RESOURCES = 8  # entries of a claim's requests or limits
LABEL_KEY_LENGTH = 317  # a DNS subdomain prefix (253), "/", a name (63)
LABEL_VALUE_LENGTH = 63
DNS_LABEL_LENGTH = 63
NAME_LENGTH = 253  # an object's name, a key of a ConfigMap or Secret
PATH_LENGTH = 1024
TEXT_LENGTH = 32_768  # free text: an env or annotation value
QUANTITY_LENGTH = 64
# A Kubernetes quantity as a string, in the forms people write: 1, 0.5, 500m, 64Mi, 1Gi.
QUANTITY_PATTERN = r"^[0-9]+(\.[0-9]+)?([KMGTPE]i|[mkMGTPE])?$"
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


def exactly_one(what: str, choices: dict[str, object], suffix: str = "") -> None:
    """ValueError unless exactly one of ``choices`` (alias -> value) is set."""
    if sum(value is not None for value in choices.values()) != 1:
        raise ValueError(f"{what} needs exactly one of {', '.join(choices)}{suffix}")


def exactly_one_rule(what: str, aliases: Sequence[str], suffix: str = "") -> Rule:
    """The CEL twin of exactly_one on an object with these fields."""
    count = " + ".join(f"(has(self.{alias}) ? 1 : 0)" for alias in aliases)
    return f"{count} == 1", f"{what} needs exactly one of {', '.join(aliases)}{suffix}"


# Strings of Kubernetes' own objects, by what they hold.
LabelKey = Annotated[str, Field(min_length=1, max_length=LABEL_KEY_LENGTH)]
LabelValue = Annotated[str, Field(max_length=LABEL_VALUE_LENGTH)]
ObjectName = Annotated[str, Field(min_length=1, max_length=NAME_LENGTH)]
Quantity = Annotated[str, Field(max_length=QUANTITY_LENGTH, pattern=QUANTITY_PATTERN)]
FileMode = Annotated[int, Field(ge=0, le=0o777)]


class KeySelector(SpecModel):
    """A key of a Secret or ConfigMap; each use says which."""

    name: str = Field(min_length=1, max_length=NAME_LENGTH, description="Name of the object.")
    key: str = Field(min_length=1, max_length=NAME_LENGTH, description="The key within the object.")
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
    field_path: str = Field(
        min_length=1,
        max_length=PATH_LENGTH,
        description="The field's path, e.g. metadata.namespace.",
    )
    api_version: str | None = Field(
        default=None,
        max_length=DNS_LABEL_LENGTH,
        description="Version of the field path's schema. Unset: v1.",
    )


class ResourceFieldSelector(SpecModel):
    resource: str = Field(
        min_length=1,
        max_length=NAME_LENGTH,
        description="The resource, e.g. limits.cpu or requests.memory.",
    )
    container_name: str | None = Field(
        default=None,
        max_length=DNS_LABEL_LENGTH,
        description="The container, worker (the only one).",
    )
    divisor: Quantity | None = Field(
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
    value: str | None = Field(
        default=None,
        max_length=TEXT_LENGTH,
        description="Its value, at most 32768 characters. Unset with valueFrom.",
    )
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


# -- scheduling: tolerations and affinity (core/v1), for compute nodes ------------------


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
        default=None,
        max_length=LABEL_KEY_LENGTH,
        description="The taint's key; empty with operator Exists matches every taint.",
    )
    operator: Literal["Exists", "Equal"] | None = Field(
        default=None, description="Exists or Equal (the Kubernetes default is Equal)."
    )
    value: str | None = Field(
        default=None,
        max_length=LABEL_VALUE_LENGTH,
        description="The taint's value (operator Equal).",
    )
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


class NodeSelectorRequirement(SpecModel):
    """A rule on a node's label (matchExpressions) or field (matchFields)."""

    key: LabelKey = Field(description="The label key, or in matchFields the field (metadata.name).")
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt"] = Field(
        description="How the node's value relates to values: In, NotIn, Exists, DoesNotExist, "
        "Gt or Lt."
    )
    values: list[Annotated[str, Field(max_length=NAME_LENGTH)]] | None = Field(
        default=None,
        max_length=MAX_VALUES,
        description=(
            "The values, at most 256: some for In and NotIn, none for Exists and DoesNotExist, "
            "one integer for Gt and Lt."
        ),
    )


class NodeSelectorTerm(SpecModel):
    """Requirements that must all hold for a node to match."""

    match_expressions: list[NodeSelectorRequirement] | None = Field(
        default=None,
        max_length=MAX_EXPRESSIONS,
        description="Requirements on the node's labels, at most 64.",
    )
    match_fields: list[NodeSelectorRequirement] | None = Field(
        default=None,
        max_length=MAX_EXPRESSIONS,
        description="Requirements on the node's fields (metadata.name), at most 64.",
    )


class NodeSelector(SpecModel):
    node_selector_terms: list[NodeSelectorTerm] = Field(
        max_length=MAX_TERMS,
        description="Terms of which the node must match at least one, at most 32.",
    )


class PreferredSchedulingTerm(SpecModel):
    weight: int = Field(
        ge=1,
        le=100,
        description="Its weight, 1-100: the scheduler prefers the nodes with the highest sum.",
    )
    preference: NodeSelectorTerm = Field(description="The term a preferred node matches.")


class NodeAffinity(SpecModel):
    required_during_scheduling_ignored_during_execution: NodeSelector | None = Field(
        default=None, description="The nodes the pod may run on."
    )
    preferred_during_scheduling_ignored_during_execution: list[PreferredSchedulingTerm] | None = (
        Field(
            default=None,
            max_length=MAX_TERMS,
            description="The nodes the pod prefers, by weight, at most 32 terms.",
        )
    )


class LabelSelectorRequirement(SpecModel):
    key: LabelKey = Field(description="The label key the rule applies to.")
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"] = Field(
        description="How the label relates to values: In, NotIn, Exists or DoesNotExist."
    )
    values: list[LabelValue] | None = Field(
        default=None,
        max_length=MAX_VALUES,
        description="The values, at most 256: some for In and NotIn, none otherwise.",
    )


class LabelSelector(SpecModel):
    """Labels an object must have: all of matchLabels and of matchExpressions."""

    match_labels: dict[str, LabelValue] | None = Field(
        default=None,
        max_length=MAX_LABELS,
        description="Labels the object must have, key and value, at most 64.",
        json_schema_extra=string_map("The label's value."),
    )
    match_expressions: list[LabelSelectorRequirement] | None = Field(
        default=None,
        max_length=MAX_EXPRESSIONS,
        description="Requirements on the object's labels, at most 64.",
    )


class PodAffinityTerm(SpecModel):
    """The pods (by labels and namespaces) this pod is placed with or apart from, within one
    topology domain (a node, a zone)."""

    label_selector: LabelSelector | None = Field(
        default=None, description="The pods, by their labels. Unset: none."
    )
    namespace_selector: LabelSelector | None = Field(
        default=None,
        description="The namespaces of those pods, by their labels; {} is every namespace.",
    )
    namespaces: list[Annotated[str, Field(max_length=DNS_LABEL_LENGTH)]] | None = Field(
        default=None,
        max_length=MAX_LABELS,
        description=(
            "The namespaces of those pods, by name, at most 64. Unset, with no "
            "namespaceSelector: the pod's own."
        ),
    )
    topology_key: LabelKey = Field(
        description="The node label whose value is the domain, e.g. topology.kubernetes.io/zone."
    )
    match_label_keys: list[LabelKey] | None = Field(
        default=None,
        max_length=MAX_LABELS,
        description="Keys of this pod's labels whose values the pods must also have, at most 64.",
    )
    mismatch_label_keys: list[LabelKey] | None = Field(
        default=None,
        max_length=MAX_LABELS,
        description="Keys of this pod's labels whose values the pods must not have, at most 64.",
    )


class WeightedPodAffinityTerm(SpecModel):
    weight: int = Field(
        ge=1,
        le=100,
        description="Its weight, 1-100: the scheduler prefers the nodes with the highest sum.",
    )
    pod_affinity_term: PodAffinityTerm = Field(description="The term a preferred node meets.")


class PodAffinity(SpecModel):
    """Pods to run near (podAffinity) or away from (podAntiAffinity)."""

    required_during_scheduling_ignored_during_execution: list[PodAffinityTerm] | None = Field(
        default=None,
        max_length=MAX_TERMS,
        description="Terms the pod's node must meet, all of them, at most 32.",
    )
    preferred_during_scheduling_ignored_during_execution: list[WeightedPodAffinityTerm] | None = (
        Field(
            default=None,
            max_length=MAX_TERMS,
            description="Terms the scheduler prefers the node to meet, by weight, at most 32.",
        )
    )


class Affinity(SpecModel):
    """Kubernetes' core/v1 Affinity, passed to the pod as written (the API server checks its
    values when a Job is created). EKS Fargate does not apply it."""

    node_affinity: NodeAffinity | None = Field(
        default=None, description="The nodes the pod may run on or prefers."
    )
    pod_affinity: PodAffinity | None = Field(
        default=None, description="Pods the pod runs near (same node, zone ...)."
    )
    pod_anti_affinity: PodAffinity | None = Field(
        default=None,
        description="Pods the pod keeps away from (another node, zone ...).",
        json_schema_extra=described_fields(
            requiredDuringSchedulingIgnoredDuringExecution=(
                "Terms the pod's node must not meet, none of them, at most 32."
            ),
            preferredDuringSchedulingIgnoredDuringExecution=(
                "Terms the scheduler prefers the node not to meet, by weight, at most 32."
            ),
        ),
    )


# -- volume sources (core/v1): the types Pod Security's restricted profile allows --------


class KeyToPath(SpecModel):
    key: str = Field(min_length=1, max_length=NAME_LENGTH, description="The key within the object.")
    path: str = Field(
        min_length=1,
        max_length=PATH_LENGTH,
        description="The file's path, relative to the mount.",
    )
    mode: FileMode | None = Field(
        default=None, description="The file's mode, 0-0777 (decimal 0-511)."
    )


_ITEMS_DESCRIPTION = (
    "Which keys, at which paths, at most 64. Unset: every key, in a file named after it."
)


class SecretVolume(SpecModel):
    secret_name: str = Field(
        min_length=1,
        max_length=NAME_LENGTH,
        description="Name of a Secret in the processor's namespace.",
    )
    items: list[KeyToPath] | None = Field(
        default=None, max_length=MAX_ITEMS, description=_ITEMS_DESCRIPTION
    )
    default_mode: FileMode | None = Field(
        default=None, description="The files' mode, 0-0777 (decimal 0-511). Unset: 0644."
    )
    optional: StrictBool | None = Field(
        default=None, description="Whether the Secret may be missing."
    )


class ConfigMapVolumeSource(SpecModel):
    name: ObjectName = Field(description="Name of a ConfigMap in the processor's namespace.")
    items: list[KeyToPath] | None = Field(
        default=None, max_length=MAX_ITEMS, description=_ITEMS_DESCRIPTION
    )
    default_mode: FileMode | None = Field(
        default=None, description="The files' mode, 0-0777 (decimal 0-511). Unset: 0644."
    )
    optional: StrictBool | None = Field(
        default=None, description="Whether the ConfigMap may be missing."
    )


_FILE_SOURCES = ("fieldRef", "resourceFieldRef")


class DownwardAPIVolumeFile(SpecModel):
    """A file holding a field of the pod or a resource of the container."""

    model_config = cel_rules(exactly_one_rule("a downward API file", _FILE_SOURCES))

    path: str = Field(
        min_length=1,
        max_length=PATH_LENGTH,
        description="The file's path, relative to the mount.",
    )
    field_ref: FieldSelector | None = Field(
        default=None,
        description="A field of the pod: metadata.name, metadata.namespace, metadata.labels ...",
    )
    resource_field_ref: ResourceFieldSelector | None = Field(
        default=None, description="A resource of the container, e.g. limits.memory."
    )
    mode: FileMode | None = Field(
        default=None, description="The file's mode, 0-0777 (decimal 0-511)."
    )

    @model_validator(mode="after")
    def _one_source(self) -> DownwardAPIVolumeFile:
        exactly_one(
            "a downward API file",
            dict(zip(_FILE_SOURCES, (self.field_ref, self.resource_field_ref), strict=True)),
        )
        return self


class DownwardAPIVolumeSource(SpecModel):
    items: list[DownwardAPIVolumeFile] | None = Field(
        default=None, max_length=MAX_ITEMS, description="The files, at most 64."
    )
    default_mode: FileMode | None = Field(
        default=None, description="The files' mode, 0-0777 (decimal 0-511). Unset: 0644."
    )


class EmptyDirVolumeSource(SpecModel):
    medium: Literal["", "Memory"] | None = Field(
        default=None,
        description=(
            "Memory (a tmpfs, counted against the pod's memory) or \"\" (the node's disk). "
            'Unset: "".'
        ),
    )
    size_limit: Quantity | None = Field(
        default=None, description='Most the volume may hold, a quantity, e.g. "1Gi".'
    )


class PersistentVolumeClaimVolumeSource(SpecModel):
    claim_name: ObjectName = Field(
        description="Name of a PersistentVolumeClaim in the processor's namespace."
    )
    read_only: StrictBool | None = Field(
        default=None, description="Mount it read-only. Unset: read-write."
    )


class ConfigMapProjection(SpecModel):
    name: ObjectName = Field(description="Name of a ConfigMap in the processor's namespace.")
    items: list[KeyToPath] | None = Field(
        default=None, max_length=MAX_ITEMS, description=_ITEMS_DESCRIPTION
    )
    optional: StrictBool | None = Field(
        default=None, description="Whether the ConfigMap may be missing."
    )


class SecretProjection(SpecModel):
    name: ObjectName = Field(
        description=(
            "Name of a Secret in the processor's namespace (on the operator's allow-list of "
            "Secrets)."
        )
    )
    items: list[KeyToPath] | None = Field(
        default=None, max_length=MAX_ITEMS, description=_ITEMS_DESCRIPTION
    )
    optional: StrictBool | None = Field(
        default=None, description="Whether the Secret may be missing."
    )


class DownwardAPIProjection(SpecModel):
    items: list[DownwardAPIVolumeFile] | None = Field(
        default=None, max_length=MAX_ITEMS, description="The files, at most 64."
    )


# The sources a projected volume may combine: not serviceAccountToken (the pod mounts no
# token of its service account), clusterTrustBundle or podCertificate.
PROJECTION_SOURCES = (
    ("config_map", "configMap"),
    ("secret", "secret"),
    ("downward_api", "downwardAPI"),
)
PROJECTION_HELP = "serviceAccountToken, clusterTrustBundle and podCertificate are not allowed"


class VolumeProjection(SpecModel):
    """One source of a projected volume: a ConfigMap, a Secret or the downward API."""

    model_config = cel_rules(
        exactly_one_rule(
            "a projected source",
            [alias for _, alias in PROJECTION_SOURCES],
            suffix=f" ({PROJECTION_HELP})",
        )
    )

    config_map: ConfigMapProjection | None = Field(
        default=None, description="Keys of a ConfigMap as files."
    )
    secret: SecretProjection | None = Field(
        default=None,
        description="Keys of a Secret as files (on the operator's allow-list of Secrets).",
    )
    downward_api: DownwardAPIProjection | None = Field(
        default=None, alias="downwardAPI", description="Fields of the pod as files."
    )

    @model_validator(mode="after")
    def _one_source(self) -> VolumeProjection:
        sources = {alias: getattr(self, name) for name, alias in PROJECTION_SOURCES}
        exactly_one("a projected source", sources, suffix=f" ({PROJECTION_HELP})")
        return self

    def source_type(self) -> str:
        """The alias of its source: configMap, secret or downwardAPI."""
        return next(alias for name, alias in PROJECTION_SOURCES if getattr(self, name) is not None)


class ProjectedVolumeSource(SpecModel):
    sources: list[VolumeProjection] | None = Field(
        default=None,
        max_length=MAX_TERMS,
        description=(
            "The sources, at most 32, each one of configMap, secret or downwardAPI (no service "
            "account token)."
        ),
    )
    default_mode: FileMode | None = Field(
        default=None, description="The files' mode, 0-0777 (decimal 0-511). Unset: 0644."
    )


class LocalObjectReference(SpecModel):
    name: ObjectName = Field(description="Name of an object in the processor's namespace.")


class CSIVolumeSource(SpecModel):
    driver: str = Field(
        min_length=1,
        max_length=DNS_LABEL_LENGTH,
        description="The CSI driver's name, e.g. secrets-store.csi.k8s.io.",
    )
    fs_type: str | None = Field(
        default=None, max_length=DNS_LABEL_LENGTH, description="Filesystem type, e.g. ext4."
    )
    read_only: StrictBool | None = Field(
        default=None, description="Mount it read-only. Unset: read-write."
    )
    volume_attributes: dict[str, Annotated[str, Field(max_length=PATH_LENGTH)]] | None = Field(
        default=None,
        max_length=MAX_LABELS,
        description="The driver's own settings, at most 64.",
        json_schema_extra=string_map("A setting's value."),
    )
    node_publish_secret_ref: LocalObjectReference | None = Field(
        default=None,
        description="A Secret passed to the driver (on the operator's allow-list of Secrets).",
        json_schema_extra=described_fields(name="Name of a Secret in the processor's namespace."),
    )


class ClaimMetadata(SpecModel):
    labels: dict[str, LabelValue] | None = Field(
        default=None,
        max_length=MAX_LABELS,
        description="Labels of the claim, at most 64.",
        json_schema_extra=string_map("A label value."),
    )
    annotations: dict[str, Annotated[str, Field(max_length=PATH_LENGTH)]] | None = Field(
        default=None,
        max_length=MAX_LABELS,
        description="Annotations of the claim, at most 64.",
        json_schema_extra=string_map("An annotation value."),
    )


class VolumeResourceRequirements(SpecModel):
    requests: dict[str, Quantity] | None = Field(
        default=None,
        max_length=MAX_RESOURCES,
        description='The least the volume needs, e.g. storage: "10Gi".',
        json_schema_extra=string_map("A quantity."),
    )
    limits: dict[str, Quantity] | None = Field(
        default=None,
        max_length=MAX_RESOURCES,
        description="The most the volume may have.",
        json_schema_extra=string_map("A quantity."),
    )


class TypedLocalObjectReference(SpecModel):
    api_group: str | None = Field(
        default=None,
        max_length=NAME_LENGTH,
        description="The object's API group, e.g. snapshot.storage.k8s.io. Unset: core.",
    )
    kind: str = Field(
        min_length=1,
        max_length=DNS_LABEL_LENGTH,
        description="The object's kind, e.g. VolumeSnapshot or PersistentVolumeClaim.",
    )
    name: ObjectName = Field(description="The object's name, in the processor's namespace.")


class PersistentVolumeClaimSpec(SpecModel):
    access_modes: (
        list[Literal["ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany", "ReadWriteOncePod"]] | None
    ) = Field(
        default=None,
        max_length=4,
        description="ReadWriteOnce, ReadOnlyMany, ReadWriteMany or ReadWriteOncePod.",
    )
    resources: VolumeResourceRequirements | None = Field(
        default=None, description="The volume's size: requests.storage."
    )
    storage_class_name: str | None = Field(
        default=None,
        max_length=NAME_LENGTH,
        description='The StorageClass. Unset: the cluster\'s default; "": none.',
    )
    volume_mode: Literal["Filesystem", "Block"] | None = Field(
        default=None, description="Filesystem or Block. Unset: Filesystem."
    )
    selector: LabelSelector | None = Field(
        default=None, description="The persistent volumes the claim may bind, by label."
    )
    data_source: TypedLocalObjectReference | None = Field(
        default=None,
        description="A VolumeSnapshot or PersistentVolumeClaim to fill the volume from.",
    )
    data_source_ref: TypedLocalObjectReference | None = Field(
        default=None,
        description=(
            "An object of the processor's namespace to fill the volume from, of any kind a "
            "volume populator handles."
        ),
    )


class PersistentVolumeClaimTemplate(SpecModel):
    metadata: ClaimMetadata | None = Field(
        default=None, description="Labels and annotations of the claim."
    )
    spec: PersistentVolumeClaimSpec = Field(description="The claim, as a PersistentVolumeClaim's.")


class EphemeralVolumeSource(SpecModel):
    volume_claim_template: PersistentVolumeClaimTemplate = Field(
        description="The claim made for each pod and deleted with it."
    )


class Volume(SpecModel):
    """One extra volume of a type Pod Security's restricted profile allows (the operator's
    settings say which of them resources may use), typed as Kubernetes' own source."""

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
    config_map: ConfigMapVolumeSource | None = Field(
        default=None, description="A ConfigMap's keys as files."
    )
    csi: CSIVolumeSource | None = Field(
        default=None,
        description=(
            "A volume of a CSI driver; its nodePublishSecretRef must be on the operator's "
            "allow-list of Secrets."
        ),
    )
    downward_api: DownwardAPIVolumeSource | None = Field(
        default=None, alias="downwardAPI", description="Fields of the pod as files."
    )
    empty_dir: EmptyDirVolumeSource | None = Field(
        default=None, description="An empty directory for the pod's life, e.g. sizeLimit 1Gi."
    )
    ephemeral: EphemeralVolumeSource | None = Field(
        default=None,
        description="A generic ephemeral volume: a claim made for the pod, deleted with it.",
    )
    persistent_volume_claim: PersistentVolumeClaimVolumeSource | None = Field(
        default=None, description="A PersistentVolumeClaim of the processor's namespace."
    )
    projected: ProjectedVolumeSource | None = Field(
        default=None,
        description=(
            "ConfigMaps, Secrets and fields of the pod in one directory; each Secret must be on "
            "the operator's allow-list. No service account token."
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

    def source_type(self) -> str:
        """The alias of its source: configMap, csi, ... (exactly one is set)."""
        return next(alias for name, alias in VOLUME_SOURCES if getattr(self, name) is not None)

    def secret_names(self) -> Iterator[tuple[str, str]]:
        """(where below the volume, Secret name) for every Secret the volume mounts."""
        if self.secret is not None:
            yield "secret.secretName", self.secret.secret_name
        if self.projected is not None:
            for index, source in enumerate(self.projected.sources or []):
                if source.secret is not None:
                    yield f"projected.sources[{index}].secret.name", source.secret.name
        if self.csi is not None and self.csi.node_publish_secret_ref is not None:
            yield "csi.nodePublishSecretRef.name", self.csi.node_publish_secret_ref.name


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
        default=None,
        max_length=PATH_LENGTH,
        description="A path within the volume to mount instead of its root.",
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
