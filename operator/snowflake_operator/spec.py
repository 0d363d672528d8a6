"""The SnowflakeProcessor spec as a validated model: the operator, the demo and the ops
commands read the same fields, with the same defaults as the CRD."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator, model_validator
from pydantic.alias_generators import to_camel

from snowflake_worker.connection import AuthMode, SnowflakeSettings
from snowflake_worker.endpoint import endpoint_url_problem
from snowflake_worker.identifiers import SnowflakeIdentifier, TableRef
from snowflake_worker.lock_budget import MAX_ACTIVE_JOBS
from snowflake_worker.response_storage import STORE_RESPONSE_MAX_BYTES
from snowflake_worker.retry_after import MAX_RELEASE_SECONDS
from snowflake_worker.service_request import Payload


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


# What a worker needs after its grace period to release and write back what it holds and
# exit, plus clock skew between the operator and the node.
WRITE_BACK_MARGIN_SECONDS = 15

FargateCpu = Literal["0.25", "0.5", "1", "2", "4", "8", "16"]
# Fargate pod sizes: vCPU -> the memory sizes (MiB) that vCPU comes with.
FARGATE_SIZES_MIB: dict[str, tuple[int, ...]] = {
    "0.25": (512, 1024, 2048),
    "0.5": tuple(range(1024, 4097, 1024)),
    "1": tuple(range(2048, 8193, 1024)),
    "2": tuple(range(4096, 16385, 1024)),
    "4": tuple(range(8192, 30721, 1024)),
    "8": tuple(range(16384, 61441, 4096)),
    "16": tuple(range(32768, 122881, 8192)),
}
# EKS Fargate adds this to the pod's memory request (kubelet, kube-proxy, containerd) and
# then bills the smallest size that holds the sum: a request of 1Gi is billed as 2 GB.
FARGATE_MEMORY_OVERHEAD_MIB = 256
FARGATE_SIZES_HELP = (
    "a Fargate size less the 256Mi Fargate adds to every pod: 0.25 vCPU: 256Mi, 768Mi, "
    "1792Mi; 0.5: 768Mi-3840Mi; 1: 1792Mi-7936Mi; 2: 3840Mi-16128Mi; 4: 7936Mi-30464Mi, "
    "in 1024Mi steps; 8: 16128Mi-61184Mi in 4096Mi steps; 16: 32512Mi-122624Mi in 8192Mi "
    "steps"
)


def memory_mib(memory: str) -> int:
    """A quantity of the form the CRD allows (``<digits>Mi`` or ``<digits>Gi``) in MiB."""
    amount = int(memory[:-2])
    return amount * 1024 if memory.endswith("Gi") else amount


def fargate_billed_size(cpu: str, request_mib: int) -> tuple[str, int] | None:
    """The (vCPU, MiB) size Fargate bills for a pod with these requests, or None when the
    pod fits no size (it never starts). Fargate takes the smallest size whose vCPU and
    memory hold the requests, memory plus FARGATE_MEMORY_OVERHEAD_MIB."""
    needed = request_mib + FARGATE_MEMORY_OVERHEAD_MIB
    for vcpu, sizes in FARGATE_SIZES_MIB.items():
        if float(vcpu) < float(cpu):
            continue
        for size in sizes:
            if size >= needed:
                return vcpu, size
    return None


def describe_size(size: tuple[str, int]) -> str:
    vcpu, mib = size
    return f"{vcpu} vCPU / {mib / 1024:g} GB"


def exact_fargate_requests(cpu: str) -> list[str]:
    """The memory requests that bill exactly ``cpu`` vCPU and one of its memory sizes."""
    return [f"{size - FARGATE_MEMORY_OVERHEAD_MIB}Mi" for size in FARGATE_SIZES_MIB[cpu]]


def fargate_size_allowed(cpu: str, memory: str) -> bool:
    """Whether a pod of these requests is billed as exactly ``cpu`` vCPU and the requested
    memory plus the Fargate overhead, with nothing rounded up."""
    request = memory_mib(memory)
    return fargate_billed_size(cpu, request) == (cpu, request + FARGATE_MEMORY_OVERHEAD_MIB)


def fargate_size_problem(cpu: str, memory: str) -> str | None:
    """Why these requests do not fit a Fargate size exactly (naming what would be billed),
    or None when they do."""
    if fargate_size_allowed(cpu, memory):
        return None
    billed = fargate_billed_size(cpu, memory_mib(memory))
    outcome = (
        "fits no Fargate size, so the pod would never start"
        if billed is None
        else f"is billed as {describe_size(billed)}"
    )
    requests = exact_fargate_requests(cpu)
    choices = ", ".join(requests) if len(requests) <= 4 else f"{requests[0]} to {requests[-1]}"
    return (
        f"job.cpu {cpu} with job.memory {memory} {outcome} (Fargate adds "
        f"{FARGATE_MEMORY_OVERHEAD_MIB}Mi to every pod and rounds up); for {cpu} vCPU "
        f"request one of {choices} ({FARGATE_SIZES_HELP})"
    )


class QueueSettings(_Model):
    lease_seconds: int = Field(default=900, ge=60, le=86_400)
    max_attempts: int = Field(default=5, ge=1, le=100)
    claim_batch: int = Field(default=200, ge=1, le=10_000)
    retry_delay_seconds: int = Field(default=60, ge=0)


class JobSettings(_Model):
    entries_per_job: int = Field(default=2000, ge=1)
    # At most MAX_ACTIVE_JOBS (19): their statements never make more than Snowflake's 20
    # waiters for the table's lock (snowflake_worker/lock_budget.py).
    max_active_jobs: int = Field(default=10, ge=1, le=MAX_ACTIVE_JOBS)
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
    # 768Mi + the 256Mi Fargate adds = 0.5 vCPU / 1 GB, the smallest size for 0.5 vCPU.
    memory: str = Field(default="768Mi", max_length=8, pattern=r"^[0-9]+(Mi|Gi)$")
    # A safety net only: the operator deletes a finished Job as soon as its summary is
    # counted (a finished pod on Fargate is billed until it is removed).
    ttl_seconds_after_finished: int = Field(default=300, ge=0)
    # Finished Jobs kept (with their pods) after counting: 0, since on Fargate each one
    # keeps billing; raise them only where a finished pod costs nothing (EC2 nodes).
    successful_jobs_history_limit: int = Field(default=0, ge=0)
    failed_jobs_history_limit: int = Field(default=0, ge=0)

    @model_validator(mode="after")
    def _fargate_size(self) -> JobSettings:
        problem = fargate_size_problem(self.cpu, self.memory)
        if problem is not None:
            raise ValueError(problem)
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


# A Secret's name: a DNS subdomain (RFC 1123), as Kubernetes requires.
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"


class Endpoint(_Model):
    """The service call; every field reaches the worker as an SFP_* variable
    (worker_environment.py), the header Secret as a mounted folder (job_manifest.py)."""

    url: str
    method: Literal["POST", "PUT", "PATCH"] = "POST"
    payload: Payload = Payload.ENVELOPE  # the seed's four fields, or the entry's data alone
    headers_secret: str | None = Field(
        default=None, min_length=1, max_length=253, pattern=DNS_SUBDOMAIN
    )
    timeout_seconds: float = Field(default=10, gt=0)
    retries: int = Field(default=3, ge=0, le=20)
    retry_backoff_seconds: float = Field(default=0.5, gt=0)
    retry_after_max_seconds: float = Field(default=60, ge=0, le=MAX_RELEASE_SECONDS)
    requests_per_second: float | None = Field(default=None, gt=0)  # per Job; None: no limit
    store_response_bytes: int = Field(default=0, ge=0, le=STORE_RESPONSE_MAX_BYTES)

    @field_validator("url")
    @classmethod
    def _https_only(cls, value: str) -> str:
        # The worker's own check: a URL it would refuse is refused here, before any Job.
        problem = endpoint_url_problem(value)
        if problem is not None:
            raise ValueError(f"endpoint.url {problem}")
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
            raise ValueError(
                "job.activeDeadlineSeconds must exceed job.graceSeconds + "
                f"{WRITE_BACK_MARGIN_SECONDS} (the worker's time to write back and exit)"
            )
        return self

    def job_active_deadline_seconds(self) -> int:
        if self.job.active_deadline_seconds is not None:
            return self.job.active_deadline_seconds
        return self.queue.lease_seconds * 2 // 3

    def worker_claim_deadline_seconds(self) -> int:
        """Seconds after the Job's start at which its worker stops claiming: then it gives
        calls in flight graceSeconds and writes back within the margin, all before
        Kubernetes' activeDeadlineSeconds (counted from the Job's start) kills it."""
        return (
            self.job_active_deadline_seconds() - self.job.grace_seconds - WRITE_BACK_MARGIN_SECONDS
        )

    def worker_deadline_at(self, job_created: datetime) -> datetime:
        """The absolute time the worker stops claiming, for a Job created at ``job_created``.

        Kubernetes counts activeDeadlineSeconds from the Job's status.startTime, which the
        Job controller sets at or after the Job's creation; counting from creation (or
        from just before it) errs on the early side. A pod that takes a minute to start on
        Fargate then has a minute less, instead of being killed before it writes back."""
        return job_created + timedelta(seconds=self.worker_claim_deadline_seconds())
