"""The operator's own settings (environment prefix SFP_OPERATOR_), set by the Helm chart.

List settings are JSON in the environment: SFP_OPERATOR_ALLOWED_SECRETS='["snowflake-key"]'.
"""

from __future__ import annotations

import re
from functools import cached_property

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .image_reference import repository_pattern
from .reference_policy import (
    DEFAULT_ALLOWED_VOLUME_TYPES,
    VOLUME_TYPES,
    ReferencePolicy,
    allowed,
)

# The worker environment variables a resource may set unless the operator's settings say
# otherwise: proxies (an HTTP CONNECT tunnel keeps TLS end to end) and the time zone.
DEFAULT_ALLOWED_ENV = (
    "HTTPS_PROXY",
    "HTTP_PROXY",
    "NO_PROXY",
    "https_proxy",
    "http_proxy",
    "no_proxy",
    "TZ",
)


class OperatorSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SFP_OPERATOR_", extra="ignore")

    # The worker image for resources that do not set spec.job.image.
    worker_image: str = "snowflake-processor-worker:latest"
    # Errors (Snowflake, S3) double the wait before the next poll, up to this.
    max_backoff_seconds: float = Field(default=300.0, gt=0)
    # A repeated warning event with the same reason and message is re-posted after this.
    event_repeat_seconds: float = Field(default=600.0, gt=0)
    # Prometheus /metrics port; 0 disables the endpoint.
    metrics_port: int = Field(default=9090, ge=0, lt=65536)
    # Only for tests and local S3 emulators; production uses AWS's endpoints.
    s3_endpoint_url: str | None = None

    # -- What a SnowflakeProcessor may reference (docs/security.md). Each entry is a
    # regular expression that must match the whole value.
    # spec.job.image; empty: the repository of worker_image, with any tag or digest.
    allowed_images: list[str] = Field(default_factory=list)
    # spec.job.serviceAccountName.
    allowed_service_accounts: list[str] = Field(
        default_factory=lambda: ["snowflake-processor-worker"]
    )
    # Secret names in spec.certificates.existingSecret and spec.snowflake.auth.*Secret;
    # empty: none (workload identity and certificates from S3 need no Secret reference).
    allowed_secrets: list[str] = Field(default_factory=list)
    # Names of spec.job.env (case-sensitive; the reserved names stay refused whatever this
    # says): proxies and the time zone by default. Anything else a resource sets in the
    # worker's environment can change what its libraries do.
    allowed_env: list[str] = Field(default_factory=lambda: list(DEFAULT_ALLOWED_ENV))
    # Types of spec.job.volumes (and sources of a projected volume), by field name, not
    # regular expressions: configMap, secret, emptyDir, downwardAPI, persistentVolumeClaim and
    # projected by default; csi and ephemeral only when listed.
    allowed_volume_types: list[str] = Field(
        default_factory=lambda: list(DEFAULT_ALLOWED_VOLUME_TYPES)
    )

    # -- How often the operator talks to S3 and the API server while nothing changes.
    # The S3 listing that tells whether the certificates changed runs at most this often,
    # unless a poll is about to launch Jobs (then it always runs first).
    certificates_recheck_seconds: float = Field(default=300.0, ge=0)
    # A poll whose outcome equals the status already written writes nothing; the status
    # (its lastPollTime) is still rewritten at least this often.
    status_heartbeat_seconds: float = Field(default=600.0, gt=0)

    # -- Probes (docs/operations.md, "Health"): /healthz and /readyz on this port; 0: none.
    health_port: int = Field(default=8080, ge=0, lt=65536)
    # /healthz fails once a resource's poll has been due this long without completing.
    liveness_seconds: float = Field(default=600.0, gt=0)

    @field_validator("allowed_images", "allowed_service_accounts", "allowed_secrets", "allowed_env")
    @classmethod
    def _regular_expressions(cls, patterns: list[str]) -> list[str]:
        for pattern in patterns:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"{pattern!r} is not a regular expression: {exc}") from None
        return patterns

    @field_validator("allowed_volume_types")
    @classmethod
    def _volume_types(cls, types: list[str]) -> list[str]:
        for name in types:
            if name not in VOLUME_TYPES:
                raise ValueError(
                    f"{name!r} is not a volume type: one of {', '.join(VOLUME_TYPES)} "
                    "(spelt as the field of spec.job.volumes)"
                )
        return types

    @cached_property
    def image_patterns(self) -> list[str]:
        """The allowed images; the operator's own default image is always among them."""
        return [*self.allowed_images, repository_pattern(self.worker_image)]

    def image_allowed(self, image: str) -> bool:
        return allowed(image, self.image_patterns)

    def reference_policy(self) -> ReferencePolicy:
        return ReferencePolicy(
            images=tuple(self.image_patterns),
            service_accounts=tuple(self.allowed_service_accounts),
            secrets=tuple(self.allowed_secrets),
            env_names=tuple(self.allowed_env),
            volume_types=tuple(self.allowed_volume_types),
        )
