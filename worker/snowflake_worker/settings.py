"""Worker configuration from environment variables (prefix SFP_), validated up front.

Every variable is documented in docs/worker-environment.md; the operator's Job
template and the local Job backend set them from the SnowflakeProcessor spec.
"""

from __future__ import annotations

import socket
from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .constants import CERT_MOUNT_PATH, TERMINATION_MESSAGE_PATH
from .errors import ConfigError
from .validation_errors import settings_error_message


class WorkerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SFP_", extra="ignore")

    # Each description is the variable's line in `--help` and in docs/worker-environment.md
    # (scripts/gen_worker_environment.py writes its tables from them).
    endpoint_url: str = Field(min_length=1, description="the service URL; must be https://")
    cert_dir: Path = Field(
        default=Path(CERT_MOUNT_PATH),
        description="folder holding client.pem, client-key.pem (must match client.pem) and "
        "ca-cert.pem (the CA of the service's certificate)",
    )
    processor_id: str = Field(
        default_factory=socket.gethostname,
        min_length=1,
        max_length=255,
        description="recorded in processor_id (the Job name in Kubernetes)",
        json_schema_extra={"default_text": "host name"},
    )
    concurrency: int = Field(
        default=32, gt=0, le=1024, description="calls in flight at once (1-1024)"
    )
    claim_batch: int = Field(
        default=200,
        gt=0,
        le=10_000,
        description="entries claimed per claim (one UPDATE + one SELECT)",
    )
    max_entries: int = Field(
        default=10_000,
        gt=0,
        description="entry budget of this Job: it stops claiming after this many",
    )
    deadline_seconds: float = Field(
        default=1800, gt=0, description="it stops claiming after this long"
    )
    lease_seconds: int = Field(
        default=3600,
        gt=0,
        description="the operator's lease; DEADLINE + GRACE must stay below it",
    )
    max_attempts: int = Field(
        default=5,
        gt=0,
        description="an entry whose attempt count reaches this is dead-lettered",
    )
    request_timeout_seconds: float = Field(default=10, gt=0, description="per call")
    request_retries: int = Field(
        default=3,
        ge=0,
        le=20,
        description="in-Job retries of a transient failure (timeout, connection error, 408, "
        "425, 429, 5xx), with full-jitter exponential backoff",
    )
    retry_backoff_seconds: float = Field(
        default=0.5,
        gt=0,
        description="base of that backoff (doubles per retry, capped at 30 s)",
    )
    release_delay_seconds: int = Field(
        default=60,
        ge=0,
        description="after the in-Job retries run out the entry goes back to pending with "
        "next_attempt_at = now + this x 2^attempts (capped at 1 h); 0 releases it at once",
    )
    flush_every: int = Field(
        default=200, gt=0, description="outcomes are written back after this many results..."
    )
    flush_seconds: float = Field(
        default=2.0,
        gt=0,
        description="...or this long after the first unwritten one, whichever comes first",
    )
    grace_seconds: float = Field(
        default=20,
        gt=0,
        description="after SIGTERM or the deadline, time for calls in flight; then they are "
        "released",
    )
    termination_message_path: Path = Field(
        default=Path(TERMINATION_MESSAGE_PATH),
        description="the run's summary is written there, only if the file exists",
    )
    log_level: str = Field(default="INFO", description="JSON log lines on stderr")

    @model_validator(mode="after")
    def _consistent(self) -> WorkerSettings:
        if not self.endpoint_url.lower().startswith("https://"):
            raise ValueError(
                f"endpoint URL must start with https:// (mutual TLS), got {self.endpoint_url!r}"
            )
        if self.deadline_seconds + self.grace_seconds >= self.lease_seconds:
            raise ValueError(
                "SFP_DEADLINE_SECONDS + SFP_GRACE_SECONDS must stay below SFP_LEASE_SECONDS, "
                "or the operator may hand entries still held by this worker to another"
            )
        return self


def load_worker_settings() -> WorkerSettings:
    try:
        return WorkerSettings()
    except ValueError as exc:
        raise ConfigError(settings_error_message(exc, "SFP_")) from None
