"""What a SnowflakeProcessor may reference: the operator's allow-lists. Pure.

Creating a resource makes the operator run pods with its image and service account, mount
the Secrets it names, and read those Secrets itself to log in to Snowflake (docs/security.md).
So the image, the service account, every Secret reference, every environment variable
of the worker and every volume type must be allowed by the operator's settings
(SFP_OPERATOR_ALLOWED_*); a resource with anything else is refused before any of it is used.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from .model import ProcessorSpec
from .pod_template import VOLUME_SOURCES

# Every volume type spec.job.volumes can hold (the restricted profile's), and those a
# resource may use unless the operator's settings say otherwise: not csi (a driver may
# mount what the namespace's own objects do not hold, such as a cloud secret store) nor
# ephemeral (a new claim, and so new storage, per pod).
VOLUME_TYPES = tuple(alias for _, alias in VOLUME_SOURCES)
DEFAULT_ALLOWED_VOLUME_TYPES = (
    "configMap",
    "secret",
    "emptyDir",
    "downwardAPI",
    "persistentVolumeClaim",
    "projected",
)


@dataclass(frozen=True)
class ReferencePolicy:
    """Regular expressions, each matching a whole value; volume types by name."""

    images: tuple[str, ...]
    service_accounts: tuple[str, ...]
    secrets: tuple[str, ...]
    env_names: tuple[str, ...] = ()  # names of spec.job.env; none unless listed
    # spec.job.volumes' types (configMap, csi, ...), and the sources of a projected volume.
    volume_types: tuple[str, ...] = DEFAULT_ALLOWED_VOLUME_TYPES


def allowed(value: str, patterns: Sequence[str]) -> bool:
    return any(re.fullmatch(pattern, value) for pattern in patterns)


def secret_references(spec: ProcessorSpec) -> dict[str, str]:
    """Secret names the resource makes the operator read or a Job mount or pass in, by
    field: the login's, the certificates', and those of spec.job's env and volumes."""
    refs = {
        f"spec.snowflake.auth.{field}": ref.name
        for field, ref in spec.snowflake.auth.secrets_in_use().items()
    }
    if spec.certificates is not None and spec.certificates.existing_secret is not None:
        refs["spec.certificates.existingSecret"] = spec.certificates.existing_secret
    for index, variable in enumerate(spec.job.env or []):
        ref = variable.value_from.secret_key_ref if variable.value_from else None
        if ref is not None:
            refs[f"spec.job.env[{index}].valueFrom.secretKeyRef.name"] = ref.name
    for index, volume in enumerate(spec.job.volumes or []):
        for where, name in volume.secret_names():
            refs[f"spec.job.volumes[{index}].{where}"] = name
    if spec.endpoint.headers_secret is not None:
        refs["spec.endpoint.headersSecret"] = spec.endpoint.headers_secret
    return refs


def refusals(spec: ProcessorSpec, policy: ReferencePolicy) -> list[str]:
    """One message per reference outside the policy, naming the field and its setting."""
    problems = []
    if spec.job.image is not None and not allowed(spec.job.image, policy.images):
        problems.append(
            f"spec.job.image {spec.job.image!r} is not an allowed worker image "
            "(SFP_OPERATOR_ALLOWED_IMAGES)"
        )
    account = spec.job.service_account_name
    if not allowed(account, policy.service_accounts):
        problems.append(
            f"spec.job.serviceAccountName {account!r} is not an allowed service account "
            "(SFP_OPERATOR_ALLOWED_SERVICE_ACCOUNTS)"
        )
    for index, variable in enumerate(spec.job.env or []):
        if not allowed(variable.name, policy.env_names):
            problems.append(
                f"spec.job.env[{index}].name {variable.name!r} is not an environment variable "
                "resources may set (SFP_OPERATOR_ALLOWED_ENV)"
            )
    for field, name in secret_references(spec).items():
        if not allowed(name, policy.secrets):
            problems.append(
                f"{field} {name!r} is not a Secret resources may reference "
                "(SFP_OPERATOR_ALLOWED_SECRETS)"
            )
    for field in volume_type_fields(spec):
        if field.rsplit(".", 1)[-1] not in policy.volume_types:
            problems.append(
                f"{field} is not a volume type resources may use "
                "(SFP_OPERATOR_ALLOWED_VOLUME_TYPES)"
            )
    return problems


def volume_type_fields(spec: ProcessorSpec) -> list[str]:
    """The field of each volume's type, ``spec.job.volumes[0].csi``, and of each source of
    a projected volume, ``spec.job.volumes[1].projected.sources[0].secret`` (so a type
    left off the list cannot come in as a projected source either)."""
    fields = []
    for index, volume in enumerate(spec.job.volumes or []):
        where = f"spec.job.volumes[{index}]"
        fields.append(f"{where}.{volume.source_type()}")
        if volume.projected is not None:
            fields += [
                f"{where}.projected.sources[{number}].{source.source_type()}"
                for number, source in enumerate(volume.projected.sources or [])
            ]
    return fields
