"""Worker configuration from environment variables (prefix SFP_), validated up front.

Every variable is documented in docs/worker-environment.md; the operator's Job
template and the local Job backend set them from the SnowflakeProcessor spec.
"""

from __future__ import annotations

import socket
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .constants import CERT_MOUNT_PATH, TERMINATION_MESSAGE_PATH
from .endpoint import endpoint_url_problem
from .errors import ConfigError
from .response_storage import STORE_RESPONSE_MAX_BYTES
from .retry_after import MAX_RELEASE_SECONDS
from .service_request import Payload
from .validation_errors import settings_error_message

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


class WorkerSettings(BaseSettings):
    # allow_inf_nan: "inf" is a float to pydantic, and an infinite timeout is no limit.
    model_config = SettingsConfigDict(env_prefix="SFP_", extra="ignore", allow_inf_nan=False)

    # Each description is the variable's line in `--help` and in docs/worker-environment.md
    # (scripts/gen_worker_environment.py writes its tables from them).
    endpoint_url: str = Field(
        min_length=1,
        description="the service URL: https://, a host, a port (if any) of 1-65535; a URL "
        "that does not parse is refused at start",
    )
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
        description="entries of the first claim (one UPDATE + one SELECT), before the worker "
        "knows its pace",
    )
    claim_seconds: float = Field(
        default=15,
        ge=1,
        le=600,
        description="each later claim holds this many seconds of work at the pace the worker "
        "measured (more when claims wait long for the table's lock), at most a quarter of "
        "the lease's worth",
    )
    claim_max: int = Field(
        default=10_000,
        gt=0,
        le=100_000,
        description="the most entries one claim takes",
    )
    claim_bytes: int = Field(
        default=64 * 1024 * 1024,
        gt=0,
        description="each later claim takes at most this many characters of entry data, "
        "counted at the mean size of the last claim's entries, so a claim of large entries "
        "fits the pod's memory",
    )
    max_entries: int = Field(
        default=10_000,
        gt=0,
        description="entry budget of this Job: it stops claiming after this many",
    )
    deadline_seconds: float = Field(  # see drain.py
        default=1800,
        gt=0,
        description="this long after it starts claiming, the worker stops as on SIGTERM",
    )
    # The operator sets it from the Job's start, which on Fargate is a minute or so before
    # this process starts.
    deadline_at: datetime | None = Field(
        default=None,
        description="it stops (as with SFP_DEADLINE_SECONDS) at this time (RFC 3339, e.g. "
        "2026-11-25T10:09:25Z; no offset means UTC) if that comes before "
        "SFP_DEADLINE_SECONDS. The operator sets it to the Job's creation + "
        "activeDeadlineSeconds - graceSeconds - 15 s, because Kubernetes counts "
        "activeDeadlineSeconds from the Job's start (on Fargate a minute or more before the "
        "worker starts); a worker that starts after it claims nothing and exits 0",
    )
    idle_wait_seconds: float = Field(
        default=0,
        ge=0,
        le=3600,
        description="when a claim finds nothing, keep claiming (every 2 s) for this long "
        "before exiting, so the Job is there when new entries arrive (the operator sets it "
        "for spec.job.minActiveJobs); 0 exits at the first empty claim",
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
    request_timeout_seconds: float = Field(
        default=10,
        gt=0,
        description="one attempt's whole time: connect, send, the answer's status and body; "
        "past it the attempt is a timeout (transient), however steadily the service trickles "
        "bytes",
    )
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
    endpoint_method: Literal["POST", "PUT", "PATCH"] = Field(
        default="POST", description="the HTTP method of each call: POST, PUT or PATCH"
    )
    endpoint_payload: Payload = Field(
        default=Payload.ENVELOPE,
        description="the body of each call: envelope (the legacy design's JSON object of entry_id, "
        "data, processor_id and timestamp) or data (the entry's data alone, as JSON)",
    )
    endpoint_headers_dir: Path | None = Field(
        default=None,
        description="folder of extra request headers, one file per header: the file's name "
        "is the header's name, its text (one line; a trailing newline is dropped) the value. "
        "The operator mounts spec.endpoint.headersSecret there. Values are never logged; "
        "Idempotency-Key, Content-Type, Host and the other headers HTTP or the worker set are "
        "refused",
    )
    store_response_bytes: int = Field(
        default=0,
        ge=0,
        le=STORE_RESPONSE_MAX_BYTES,
        description=f"keep the first this many bytes (at most {STORE_RESPONSE_MAX_BYTES}) of "
        "the answer that completes an entry in its result column (sql/005, checked at start); "
        "0 keeps nothing",
    )
    retry_after_max_seconds: float = Field(
        default=60,
        ge=0,
        le=MAX_RELEASE_SECONDS,
        description="a transient answer's Retry-After (seconds or an HTTP date) up to this "
        "long pauses every call of the Job that long before the next attempt; a longer one "
        "releases the entry with next_attempt_at that far ahead (at most 1 h) instead; 0 "
        "ignores the header",
    )
    requests_per_second: float = Field(
        default=0,
        ge=0,
        description="at most this many calls per second from this Job, retries included "
        "(fractions allowed); 0 means no limit but SFP_CONCURRENCY",
    )
    release_delay_seconds: int = Field(
        default=60,
        ge=0,
        description="after the in-Job retries run out the entry goes back to pending with "
        "next_attempt_at = now + this x 2^attempts (capped at 1 h); 0 releases it at once",
    )
    flush_seconds: float = Field(
        default=10.0,
        gt=0,
        description="outcomes are written back this long after the first unwritten one (one "
        "UPDATE per 512 KiB of their JSON, each holding the table's lock)...",
    )
    flush_every: int = Field(
        default=5000,
        gt=0,
        description="...or once this many wait, whichever comes first. After a crash, the "
        "calls whose outcomes were not yet written back are made again: at most about "
        "min(pace x SFP_FLUSH_SECONDS, SFP_FLUSH_EVERY) + SFP_CONCURRENCY entries",
    )
    grace_seconds: float = Field(
        default=20,
        gt=0,
        description="after SIGTERM, the deadline or a fatal error: time for calls in flight "
        "to finish; then they are cut off and their entries released",
    )
    termination_message_path: Path = Field(
        default=Path(TERMINATION_MESSAGE_PATH),
        description="the run's summary is written there, only if the file exists",
    )
    log_level: str = Field(
        default="INFO",
        description="JSON log lines on stderr: DEBUG, INFO, WARNING or ERROR (any case); "
        "anything else is refused",
    )

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
