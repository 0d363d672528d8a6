"""The SnowflakeProcessor spec as a validated model: the operator, the demo and the ops
commands read the same fields, with the same defaults as the CRD."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator, model_validator
from pydantic.alias_generators import to_camel

from snowflake_worker.connection import AuthMode, SnowflakeSettings
from snowflake_worker.identifiers import SnowflakeIdentifier, TableRef


class _Model(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )


class SecretKeyRef(_Model):
    name: str = Field(min_length=1)
    key: str = Field(min_length=1)


class SnowflakeAuth(_Model):
    mode: AuthMode = AuthMode.WORKLOAD_IDENTITY
    private_key_secret: SecretKeyRef | None = None  # key_pair
    private_key_passphrase_secret: SecretKeyRef | None = None
    password_secret: SecretKeyRef | None = None  # password (legacy)

    @model_validator(mode="after")
    def _secret_for_mode(self) -> SnowflakeAuth:
        if self.mode is AuthMode.KEY_PAIR and self.private_key_secret is None:
            raise ValueError("auth.mode key_pair needs auth.privateKeySecret")
        if self.mode is AuthMode.PASSWORD and self.password_secret is None:
            raise ValueError("auth.mode password needs auth.passwordSecret")
        return self

    def secrets_in_use(self) -> dict[str, SecretKeyRef]:
        """The Secret references the login of this mode reads, by field name."""
        if self.mode is AuthMode.KEY_PAIR:
            refs = {
                "privateKeySecret": self.private_key_secret,
                "privateKeyPassphraseSecret": self.private_key_passphrase_secret,
            }
        elif self.mode is AuthMode.PASSWORD:
            refs = {"passwordSecret": self.password_secret}
        else:
            refs = {}
        return {field: ref for field, ref in refs.items() if ref is not None}


class SnowflakeTarget(_Model):
    account: str = Field(min_length=1)
    user: str | None = None
    role: SnowflakeIdentifier | None = None
    warehouse: SnowflakeIdentifier | None = None
    database: SnowflakeIdentifier
    schema_: SnowflakeIdentifier = Field(alias="schema")
    table: SnowflakeIdentifier
    auth: SnowflakeAuth = SnowflakeAuth()
    host: str | None = None  # private link or the local emulator
    port: int | None = Field(default=None, gt=0, lt=65536)

    @model_validator(mode="after")
    def _login_complete(self) -> SnowflakeTarget:
        # The same rules as the worker's SnowflakeSettings: catch them here, before any
        # Job is launched only to exit on a configuration error.
        if self.auth.mode in (AuthMode.KEY_PAIR, AuthMode.PASSWORD) and not self.user:
            raise ValueError(f"auth.mode {self.auth.mode.value} needs snowflake.user")
        if self.auth.mode is AuthMode.EMULATOR and (self.host is None or self.port is None):
            raise ValueError("auth.mode emulator needs snowflake.host and snowflake.port")
        return self

    @property
    def table_ref(self) -> TableRef:
        return TableRef(self.database, self.schema_, self.table)

    def connection_settings(self, **secrets: Any) -> SnowflakeSettings:
        """Settings for the operator's own connection (secrets passed in, never stored)."""
        return SnowflakeSettings(
            account=self.account,
            user=self.user,
            role=self.role,
            warehouse=self.warehouse,
            database=self.database,
            schema_name=self.schema_,
            table=self.table,
            auth=self.auth.mode,
            host=self.host,
            port=self.port,
            **secrets,
        )


FargateCpu = Literal["0.25", "0.5", "1", "2", "4", "8", "16"]
# Fargate task sizes: vCPU -> (min GiB, max GiB, step GiB); 0.25 vCPU also allows 0.5 GiB.
_FARGATE_MEMORY_GIB: dict[str, tuple[float, float, float]] = {
    "0.25": (1, 2, 1),
    "0.5": (1, 4, 1),
    "1": (2, 8, 1),
    "2": (4, 16, 1),
    "4": (8, 30, 1),
    "8": (16, 60, 4),
    "16": (32, 120, 8),
}
FARGATE_SIZES_HELP = (
    "0.25 vCPU: 512Mi, 1Gi, 2Gi; 0.5: 1-4Gi; 1: 2-8Gi; 2: 4-16Gi; 4: 8-30Gi; "
    "8: 16-60Gi in 4Gi steps; 16: 32-120Gi in 8Gi steps"
)


def fargate_size_allowed(cpu: str, memory: str) -> bool:
    """Whether a pod of this size maps onto a Fargate size without rounding up."""
    amount = int(memory[:-2])
    gib = amount / 1024 if memory.endswith("Mi") else float(amount)
    low, high, step = _FARGATE_MEMORY_GIB[cpu]
    if cpu == "0.25" and gib == 0.5:
        return True
    return low <= gib <= high and (gib - low) % step == 0


class QueueSettings(_Model):
    lease_seconds: int = Field(default=900, ge=60)
    max_attempts: int = Field(default=5, ge=1, le=100)
    claim_batch: int = Field(default=200, ge=1, le=10_000)
    retry_delay_seconds: int = Field(default=60, ge=0)


class JobSettings(_Model):
    entries_per_job: int = Field(default=2000, ge=1)
    max_active_jobs: int = Field(default=10, ge=1, le=500)
    concurrency: int = Field(default=32, ge=1, le=1024)
    # The Job's hard limit (Kubernetes kills it after this); None: 2/3 of the lease.
    active_deadline_seconds: int | None = Field(default=None, ge=60)
    grace_seconds: int = Field(default=20, ge=1)
    flush_every: int = Field(default=200, ge=1)
    flush_seconds: float = Field(default=2.0, gt=0)
    # Where and how the Job's pod runs (Kubernetes only; ignored by the local backend).
    image: str | None = Field(default=None, min_length=1)  # None: the operator's default
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"
    service_account_name: str = Field(default="snowflake-processor-worker", min_length=1)
    pod_labels: dict[str, str] = Field(default_factory=dict)  # e.g. what a Fargate profile selects
    cpu: FargateCpu = "0.5"
    memory: str = Field(default="1Gi", pattern=r"^[0-9]+(Mi|Gi)$")
    ttl_seconds_after_finished: int = Field(default=3600, ge=0)
    successful_jobs_history_limit: int = Field(default=3, ge=0)
    failed_jobs_history_limit: int = Field(default=5, ge=0)

    @model_validator(mode="after")
    def _fargate_size(self) -> JobSettings:
        if not fargate_size_allowed(self.cpu, self.memory):
            raise ValueError(
                f"job.cpu {self.cpu} with job.memory {self.memory} is not a Fargate size: "
                f"{FARGATE_SIZES_HELP}"
            )
        return self


class S3Certificates(_Model):
    bucket: str = Field(min_length=3, max_length=63, pattern=r"^[a-z0-9][a-z0-9.-]+[a-z0-9]$")
    prefix: str = ""  # e.g. "prod/": objects prefix + client.pem, client-key.pem, ca-cert.pem
    region: str | None = None


class Certificates(_Model):
    """Exactly one source: S3 (synced into a Secret owned by the resource) or a Secret."""

    s3: S3Certificates | None = None
    existing_secret: str | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _one_source(self) -> Certificates:
        if (self.s3 is None) == (self.existing_secret is None):
            raise ValueError("certificates needs exactly one of s3 or existingSecret")
        return self


class Endpoint(_Model):
    url: str
    timeout_seconds: float = Field(default=10, gt=0)
    retries: int = Field(default=3, ge=0, le=20)
    retry_backoff_seconds: float = Field(default=0.5, gt=0)

    @field_validator("url")
    @classmethod
    def _https_only(cls, value: str) -> str:
        if not value.startswith("https://"):
            raise ValueError(f"endpoint.url must be an https:// URL (mutual TLS), got {value!r}")
        return value


class ProcessorSpec(_Model):
    snowflake: SnowflakeTarget
    endpoint: Endpoint
    certificates: Certificates | None = None  # None only where certificates are local
    queue: QueueSettings = QueueSettings()
    job: JobSettings = JobSettings()
    poll_interval_seconds: int = Field(default=60, ge=1)
    # While idle, a full (warehouse-using) poll runs at least this often; 0: only on change.
    idle_poll_seconds: int = Field(default=1800, ge=0)
    suspend: StrictBool = False  # "yes" is not a boolean: refuse it like the CRD does
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @model_validator(mode="after")
    def _deadline_below_lease(self) -> ProcessorSpec:
        if self.job_active_deadline_seconds() >= self.queue.lease_seconds:
            raise ValueError(
                "job.activeDeadlineSeconds must stay below queue.leaseSeconds, "
                "or a lease could expire under a running Job"
            )
        if self.worker_claim_deadline_seconds() < 1:
            raise ValueError("job.activeDeadlineSeconds must exceed job.graceSeconds")
        return self

    def job_active_deadline_seconds(self) -> int:
        if self.job.active_deadline_seconds is not None:
            return self.job.active_deadline_seconds
        return self.queue.lease_seconds * 2 // 3

    def worker_claim_deadline_seconds(self) -> int:
        """A worker stops claiming early enough to finish within the Job's deadline."""
        return self.job_active_deadline_seconds() - self.job.grace_seconds
