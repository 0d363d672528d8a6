"""Worker configuration from environment variables (prefix SFP_), validated up front.

Every variable is documented in docs/worker-environment.md; the operator's Job
template and the local Job backend set them from the SnowflakeProcessor spec.
"""

from __future__ import annotations

import socket
from datetime import UTC, datetime
from pathlib import Path

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .constants import CERT_MOUNT_PATH, TERMINATION_MESSAGE_PATH
from .endpoint import endpoint_url_problem
from .errors import ConfigError
from .validation_errors import settings_error_message

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


class WorkerSettings(BaseSettings):
    # allow_inf_nan: "inf" is a float to pydantic, and an infinite timeout is no limit.
    model_config = SettingsConfigDict(env_prefix="SFP_", extra="ignore", allow_inf_nan=False)

    endpoint_url: str = Field(min_length=1)
    cert_dir: Path = Path(CERT_MOUNT_PATH)
    processor_id: str = Field(default_factory=socket.gethostname, min_length=1, max_length=255)
    concurrency: int = Field(default=32, gt=0, le=1024)
    claim_batch: int = Field(default=200, gt=0, le=10_000)
    max_entries: int = Field(default=10_000, gt=0)  # the Job's entry budget
    deadline_seconds: float = Field(default=1800, gt=0)  # stop after this long (see drain.py)
    # Stop at this time (RFC 3339), if sooner: the operator sets it from the Job's start,
    # which on Fargate is a minute or so before this process starts.
    deadline_at: datetime | None = None
    lease_seconds: int = Field(default=3600, gt=0)
    max_attempts: int = Field(default=5, gt=0)
    request_timeout_seconds: float = Field(default=10, gt=0)  # a whole call, answer included
    request_retries: int = Field(default=3, ge=0, le=20)  # in-Job retries of transient errors
    retry_backoff_seconds: float = Field(default=0.5, gt=0)
    release_delay_seconds: int = Field(default=60, ge=0)  # next_attempt_at after giving up
    flush_every: int = Field(default=200, gt=0)  # write back after this many results...
    flush_seconds: float = Field(default=2.0, gt=0)  # ...or this long after the first
    grace_seconds: float = Field(default=20, gt=0)  # after a stop, time for in-flight calls
    termination_message_path: Path = Path(TERMINATION_MESSAGE_PATH)
    log_level: str = "INFO"

    @field_validator("endpoint_url")
    @classmethod
    def _callable(cls, url: str) -> str:
        problem = endpoint_url_problem(url)
        if problem is not None:
            raise ValueError(problem)
        return url

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, level: str) -> str:
        if level.upper() not in LOG_LEVELS:
            raise ValueError(f"{level!r} is not a log level: one of {', '.join(LOG_LEVELS)}")
        return level.upper()

    @model_validator(mode="after")
    def _consistent(self) -> WorkerSettings:
        if self.deadline_seconds + self.grace_seconds >= self.lease_seconds:
            raise ValueError(
                "SFP_DEADLINE_SECONDS + SFP_GRACE_SECONDS must stay below SFP_LEASE_SECONDS, "
                "or the operator may hand entries still held by this worker to another"
            )
        return self

    def seconds_to_deadline(self, now: datetime) -> float:
        """How long from ``now`` this worker may still claim (0 when the time has passed)."""
        if self.deadline_at is None:
            return self.deadline_seconds
        deadline_at = self.deadline_at
        if deadline_at.tzinfo is None:  # a time without an offset is UTC, as the operator writes
            deadline_at = deadline_at.replace(tzinfo=UTC)
        remaining = (deadline_at - now).total_seconds()
        return max(0.0, min(self.deadline_seconds, remaining))


def load_worker_settings() -> WorkerSettings:
    try:
        return WorkerSettings()
    except ValueError as exc:
        raise ConfigError(settings_error_message(exc, "SFP_")) from None
