"""The SnowflakeProcessor spec as a validated model: the operator, the demo and the ops
commands read the same fields, with the same defaults as the CRD."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import Field, StrictBool, field_validator, model_validator

from snowflake_operator.constants import FARGATE_PROFILE_LABEL, MAX_ACTIVE_JOBS
from snowflake_worker.endpoint import endpoint_url_problem
from snowflake_worker.identifiers import SnowflakeIdentifier, TableRef
from snowflake_worker.response_storage import STORE_RESPONSE_MAX_BYTES
from snowflake_worker.retry_after import MAX_RELEASE_SECONDS
from snowflake_worker.service_request import Payload
from snowflake_worker.snowflake_settings import AuthMode, SnowflakeSettings

from .base import SpecModel as _Model
from .fargate_sizes import FARGATE_CPUS, FARGATE_SIZES_HELP, fargate_size_problem
from .pod_template import (
    DNS_SUBDOMAIN_PATTERN,
    MAX_ANNOTATIONS,
    MAX_ENV,
    MAX_TOLERATIONS,
    MAX_VOLUMES,
    Affinity,
    EnvVar,
    Toleration,
    Volume,
    VolumeMount,
    check_annotations,
    check_extra_volumes,
    check_priority_class,
    check_unique_env,
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


class QueueSettings(_Model):
    lease_seconds: int = Field(default=900, ge=60, le=86_400)
    max_attempts: int = Field(default=5, ge=1, le=100)
    claim_batch: int = Field(default=200, ge=1, le=10_000)  # the first claim's size
    claim_seconds: float = Field(default=15.0, ge=1, le=600)  # of work per later claim
    claim_max: int = Field(default=10_000, ge=1, le=100_000)
    retry_delay_seconds: int = Field(default=60, ge=0)
    # Snowflake runs DML on one table one statement at a time: how long one holds the
    # table's lock, and the share of the lock the fleet's statements may plan to use.
    lock_hold_seconds: float = Field(default=0.35, gt=0, le=60)
    lock_share: float = Field(default=0.6, gt=0, le=1)


class LaunchBackoff(_Model):
    """Stop launching after this many Jobs in a row failed (each failed Job is a billed pod
    start that did nothing, e.g. during a service outage); poll/launch_backoff.py."""

    after_failed_jobs: int = Field(default=3, ge=0, le=100)  # 0: never back off
    initial_seconds: int = Field(default=60, ge=1, le=86_400)
    max_seconds: int = Field(default=1800, ge=1, le=86_400)

    @model_validator(mode="after")
    def _ordered(self) -> LaunchBackoff:
        if self.max_seconds < self.initial_seconds:
            raise ValueError("launchBackoff.maxSeconds must be at least initialSeconds")
        return self


Compute = Literal["fargate", "nodes"]
# Kubernetes quantities, kept to the forms people write: 0.5, 2, 1.5, 500m; 768Mi, 2Gi,
# 1.5Gi, 512M. Zero is refused (a pod limited to nothing never runs).
CPU_PATTERN = r"^(0\.[0-9]*[1-9][0-9]*|[1-9][0-9]*(\.[0-9]+)?|[1-9][0-9]*m)$"
MEMORY_PATTERN = r"^([1-9][0-9]*(\.[0-9]+)?|0\.[0-9]*[1-9][0-9]*)(Ki|Mi|Gi|Ti|k|M|G|T)$"
FARGATE_MEMORY_PATTERN = r"^[0-9]+(Mi|Gi)$"


class JobSettings(_Model):
    entries_per_job: int = Field(default=2000, ge=1)
    # At most MAX_ACTIVE_JOBS (19): their statements never make more than Snowflake's 20
    # waiters for the table's lock (poll/job_count.py).
    max_active_jobs: int = Field(default=10, ge=1, le=MAX_ACTIVE_JOBS)
    # Kept running while the queue is busy (job_count.launches_wanted): warm workers for
    # latency-sensitive queues, where a Fargate pod takes about a minute to start.
    min_active_jobs: int = Field(default=0, ge=0, le=MAX_ACTIVE_JOBS)
    # With minActiveJobs: how long a worker keeps claiming an empty queue before it exits.
    idle_wait_seconds: int = Field(default=60, ge=1, le=3600)
    launch_backoff: LaunchBackoff = LaunchBackoff()
    concurrency: int = Field(default=32, ge=1, le=1024)
    # The Job's hard limit (Kubernetes kills it after this); None: 2/3 of the lease.
    active_deadline_seconds: int | None = Field(default=None, ge=60)
    grace_seconds: int = Field(default=20, ge=1)
    flush_seconds: float = Field(default=10.0, gt=0)  # the write-back rhythm
    flush_every: int = Field(default=5000, ge=1)  # sooner when this many outcomes wait
    # Where and how the Job's pod runs (Kubernetes only; ignored by the local backend).
    image: str | None = Field(default=None, min_length=1)  # None: the operator's default
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"
    service_account_name: str = Field(default="snowflake-processor-worker", min_length=1)
    # fargate: sizes checked against what Fargate bills, pods labelled for the Fargate
    # profile; nodes: EC2 or Karpenter nodes, any size, no Fargate label.
    compute: Compute = "fargate"
    cpu: str = Field(default="0.5", max_length=8, pattern=CPU_PATTERN)
    # 768Mi + the 256Mi Fargate adds = 0.5 vCPU / 1 GB, the smallest size for 0.5 vCPU.
    memory: str = Field(default="768Mi", max_length=12, pattern=MEMORY_PATTERN)
    pod_labels: dict[str, str] = Field(default_factory=dict)  # e.g. what a Fargate profile selects
    # The usual pod template fields (spec/pod_template.py): none of them can loosen the
    # security template or touch the operator's own volumes and variables.
    pod_annotations: dict[str, str] | None = Field(default=None, max_length=MAX_ANNOTATIONS)
    env: list[EnvVar] | None = Field(default=None, max_length=MAX_ENV)
    node_selector: dict[str, str] | None = None
    tolerations: list[Toleration] | None = Field(default=None, max_length=MAX_TOLERATIONS)
    affinity: Affinity | None = None
    priority_class_name: str | None = Field(
        default=None, max_length=253, pattern=DNS_SUBDOMAIN_PATTERN
    )
    volumes: list[Volume] | None = Field(default=None, max_length=MAX_VOLUMES)
    volume_mounts: list[VolumeMount] | None = Field(default=None, max_length=MAX_VOLUMES)
    # A safety net only: the operator deletes a finished Job as soon as its summary is
    # counted (a finished pod on Fargate is billed until it is removed).
    ttl_seconds_after_finished: int = Field(default=300, ge=0)
    # Finished Jobs kept (with their pods) after counting: 0, since on Fargate each one
    # keeps billing; raise them only where a finished pod costs nothing (EC2 nodes).
    successful_jobs_history_limit: int = Field(default=0, ge=0)
    failed_jobs_history_limit: int = Field(default=0, ge=0)

    _annotations = field_validator("pod_annotations")(check_annotations)
    _priority_class = field_validator("priority_class_name")(check_priority_class)

    @model_validator(mode="after")
    def _sizes_for_the_compute(self) -> JobSettings:
        if self.compute == "fargate":
            problem = fargate_request_problem(self.cpu, self.memory)
            if problem is not None:
                raise ValueError(problem)
        elif FARGATE_PROFILE_LABEL in self.pod_labels:
            raise ValueError(
                f"podLabels {FARGATE_PROFILE_LABEL} is the label the worker Fargate profile "
                "selects: with compute nodes the pods would still go to Fargate"
            )
        return self

    @model_validator(mode="after")
    def _pod_template(self) -> JobSettings:
        if self.min_active_jobs > self.max_active_jobs:
            raise ValueError("job.minActiveJobs must not exceed job.maxActiveJobs")
        check_unique_env(self.env or [])
        check_extra_volumes(self.volumes or [], self.volume_mounts or [])
        return self


def fargate_request_problem(cpu: str, memory: str) -> str | None:
    """Why a Fargate pod of these requests would not be billed as exactly that size (or
    would not start), or None."""
    if cpu not in FARGATE_CPUS:
        return (
            f"job.cpu {cpu} is not a Fargate size: one of {', '.join(FARGATE_CPUS)} (any "
            "quantity with job.compute nodes)"
        )
    if re.fullmatch(FARGATE_MEMORY_PATTERN, memory) is None:
        return (
            f"job.memory {memory}: on Fargate give it in Mi or Gi ({FARGATE_SIZES_HELP}); "
            "any quantity with job.compute nodes"
        )
    return fargate_size_problem(cpu, memory)


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
    (kube/worker_environment.py), the header Secret as a mounted folder (kube/job_manifest.py)."""

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
