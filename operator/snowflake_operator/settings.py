"""The operator's own settings (environment prefix SFP_OPERATOR_), set by the Helm chart."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class OperatorSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SFP_OPERATOR_", extra="ignore")

    # The worker image for resources that do not set spec.job.image.
    worker_image: str = "snowflake-processor-worker:latest"
    # How often each resource's timer wakes to see whether its poll is due; the poll
    # itself follows spec.pollIntervalSeconds. A wake-up that is not due costs nothing.
    tick_seconds: float = Field(default=2.0, gt=0)
    # Errors (Snowflake, S3) double the wait before the next poll, up to this.
    max_backoff_seconds: float = Field(default=300.0, gt=0)
    # A repeated warning event with the same reason and message is re-posted after this.
    event_repeat_seconds: float = Field(default=600.0, gt=0)
    # Prometheus /metrics port; 0 disables the endpoint.
    metrics_port: int = Field(default=9090, ge=0, lt=65536)
    # Only for tests and local S3 emulators; production uses AWS's endpoints.
    s3_endpoint_url: str | None = None
