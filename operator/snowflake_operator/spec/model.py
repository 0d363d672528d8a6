"""The SnowflakeProcessor spec as a validated model: the operator, the demo and the ops
commands read the same fields. It is also the CRD's source: scripts/gen_crd.py generates
crds/snowflakeprocessors.yaml from it, every field's description (what `kubectl explain`
shows), bound and default, and each model's CEL rules, the API server's twins of the model's
validators (spec/base.py)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import Field, StrictBool, field_validator, model_validator

from snowflake_operator.constants import FARGATE_PROFILE_LABEL, MAX_ACTIVE_JOBS
from snowflake_worker.endpoint import endpoint_url_problem
from snowflake_worker.identifiers import UNQUOTED_IDENTIFIER, SnowflakeIdentifier, TableRef
from snowflake_worker.response_storage import STORE_RESPONSE_MAX_BYTES
from snowflake_worker.retry_after import MAX_RELEASE_SECONDS
from snowflake_worker.service_request import Payload
from snowflake_worker.snowflake_settings import AuthMode, SnowflakeSettings

from .base import SpecModel as _Model
from .base import cel, cel_list, cel_rules, described_fields, list_map, string_map
from .fargate_sizes import (
    FARGATE_CPUS,
    FARGATE_MEMORY_OVERHEAD_MIB,
    FARGATE_SIZES_HELP,
    FARGATE_SIZES_MIB,
    fargate_billed_size,
    fargate_size_problem,
)
from .pod_template import (
    ANNOTATIONS_RULE,
    DNS_SUBDOMAIN_PATTERN,
    LABEL_VALUE_LENGTH,
    MAX_ANNOTATIONS,
    MAX_ENV,
    MAX_LABELS,
    MAX_TOLERATIONS,
    MAX_VOLUMES,
    PRIORITY_CLASS_RULE,
    TEXT_LENGTH,
    Affinity,
    EnvVar,
    LabelValue,
    Toleration,
    Volume,
    VolumeMount,
    check_annotations,
    check_extra_volumes,
    check_priority_class,
    check_unique_env,
)

# What the schema says of a SnowflakeIdentifier (its validator is opaque to JSON Schema).
IDENTIFIER_SCHEMA: dict[str, Any] = {"pattern": UNQUOTED_IDENTIFIER.pattern}


class SecretKeyRef(_Model):
    """A key of a Secret in the processor's namespace; each use says what the value is."""

    name: str = Field(min_length=1, description="Name of a Secret in the processor's namespace.")
    key: str = Field(min_length=1, description="Key within that Secret.")


def _secret_holding(what: str) -> dict[str, Any]:
    return described_fields(key=f"Key within that Secret whose value is {what}.")


class SnowflakeAuth(_Model):
    # has(self.mode): the API server also checks these rules against the default {} itself,
    # before mode's own default is applied.
    model_config = cel_rules(
        (
            "!has(self.mode) || self.mode != 'key_pair' || has(self.privateKeySecret)",
            "auth.mode key_pair needs auth.privateKeySecret",
        ),
        (
            "!has(self.mode) || self.mode != 'password' || has(self.passwordSecret)",
            "auth.mode password needs auth.passwordSecret",
        ),
    )

    mode: AuthMode = Field(
        default=AuthMode.WORKLOAD_IDENTITY,
        description=(
            "workload_identity (the IAM role of job.serviceAccountName through IRSA), key_pair "
            "(needs privateKeySecret and snowflake.user), password (legacy, needs passwordSecret "
            "and snowflake.user: Snowflake blocks passwords for service users) or emulator (the "
            "local fakesnow server, needs snowflake.host and snowflake.port). Default "
            "workload_identity."
        ),
    )
    private_key_secret: SecretKeyRef | None = Field(
        default=None,
        description=(
            "The Secret key holding the PEM private key for key_pair, mounted read-only into each "
            "Job. Required when mode is key_pair."
        ),
        json_schema_extra=_secret_holding("the PEM private key"),
    )
    private_key_passphrase_secret: SecretKeyRef | None = Field(
        default=None,
        description=(
            "The Secret key holding the passphrase of an encrypted private key (key_pair only). "
            "Unset: the private key is not encrypted."
        ),
        json_schema_extra=_secret_holding("the passphrase"),
    )
    password_secret: SecretKeyRef | None = Field(
        default=None,
        description=(
            "The Secret key holding the password (password mode only, legacy; prefer "
            "workload_identity or key_pair)."
        ),
        json_schema_extra=_secret_holding("the password"),
    )

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
    model_config = cel_rules(
        (
            "!(self.auth.mode in ['key_pair', 'password']) || "
            "(has(self.user) && size(self.user) > 0)",
            "auth.mode key_pair and password need snowflake.user",
        ),
        (
            "self.auth.mode != 'emulator' || (has(self.host) && has(self.port))",
            "auth.mode emulator needs snowflake.host and snowflake.port",
        ),
    )

    account: str = Field(
        min_length=1,
        description=(
            "Snowflake account identifier, e.g. myorg-myaccount (what comes before "
            ".snowflakecomputing.com). Required."
        ),
    )
    user: str | None = Field(
        default=None,
        description=(
            "Snowflake user to log in as. Required for auth.mode key_pair and password; with "
            "workload_identity Snowflake finds the user from the pod's IAM role, so it can stay "
            "unset."
        ),
    )
    role: SnowflakeIdentifier | None = Field(
        default=None,
        description=(
            "Role to use after login, an unquoted identifier (letters, digits, _ and $, starting "
            "with a letter or _). Unset: the user's default role."
        ),
        json_schema_extra=IDENTIFIER_SCHEMA,
    )
    warehouse: SnowflakeIdentifier | None = Field(
        default=None,
        description=(
            "Warehouse that runs the queue statements, an unquoted identifier. Unset: the user's "
            "default warehouse."
        ),
        json_schema_extra=IDENTIFIER_SCHEMA,
    )
    database: SnowflakeIdentifier = Field(
        description=(
            "Database of the queue table, an unquoted identifier (letters, digits, _ and $, "
            "starting with a letter or _, at most 255 characters); upper-cased as Snowflake does. "
            "Required."
        ),
        json_schema_extra=IDENTIFIER_SCHEMA,
    )
    schema_: SnowflakeIdentifier = Field(
        alias="schema",
        description=(
            "Schema of the queue table, an unquoted identifier; upper-cased as Snowflake does. "
            "Required."
        ),
        json_schema_extra=IDENTIFIER_SCHEMA,
    )
    table: SnowflakeIdentifier = Field(
        description=(
            "The queue table (created by sql/001_queue_table.sql), an unquoted identifier; "
            "upper-cased as Snowflake does. Required."
        ),
        json_schema_extra=IDENTIFIER_SCHEMA,
    )
    auth: SnowflakeAuth = Field(
        default=SnowflakeAuth(),
        description=(
            "How to log in. Default: workload_identity, the pod's IAM role through IRSA, with no "
            "stored secret."
        ),
    )
    host: str | None = Field(
        default=None,
        description=(
            "Host to connect to instead of <account>.snowflakecomputing.com: a PrivateLink host "
            "name, or the emulator's address. Required for auth.mode emulator."
        ),
    )
    port: int | None = Field(
        default=None,
        gt=0,
        lt=65536,
        description=(
            "Port to connect to on host, 1-65535. Unset: the connector's default (443). Required "
            "for auth.mode emulator."
        ),
    )

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
# How long a Job on EKS Fargate may take to start (a pod gets its own microVM and pulls its
# image with no cache: often more than a minute). A Job whose worker would have less than
# this before its deadline may be killed before its first claim: refused on Fargate.
FARGATE_START_SECONDS = 120
# What EKS Fargate cannot run (the EKS user guide's "AWS Fargate considerations"): no image
# cache, so a pod must pull; no CSI node driver (DaemonSets do not run), and no dynamic
# volume provisioning.
FARGATE_PULL_POLICY_MESSAGE = (
    "job.imagePullPolicy Never cannot run on Fargate: each pod starts without an image "
    "cache and must pull (Always or IfNotPresent; Never only with job.compute nodes)"
)
FARGATE_DEADLINE_MESSAGE = (
    "job.activeDeadlineSeconds (unset: 2/3 of queue.leaseSeconds) on Fargate must be at "
    f"least job.graceSeconds + {WRITE_BACK_MARGIN_SECONDS + FARGATE_START_SECONDS}: a Fargate "
    f"pod may take {FARGATE_START_SECONDS} s to start, and Kubernetes counts the deadline "
    "from the Job's start"
)
FARGATE_VOLUMES_MESSAGE = (
    "job.volumes of type csi or ephemeral cannot be mounted on Fargate (no CSI node driver, "
    "no dynamic provisioning): use a persistentVolumeClaim of a statically provisioned "
    "volume (EFS), or job.compute nodes"
)


class QueueSettings(_Model):
    lease_seconds: int = Field(
        default=900,
        ge=60,
        le=86_400,
        description=(
            "Seconds a claim holds an entry; after that the operator returns it to pending. 60 to "
            "86400 (a day), and above job.activeDeadlineSeconds. Default 900."
        ),
    )
    max_attempts: int = Field(
        default=5,
        ge=1,
        le=100,
        description=(
            "Attempts at an entry before it is dead-lettered (status failed), 1-100. Default 5."
        ),
    )
    claim_batch: int = Field(
        default=200,
        ge=1,
        le=10_000,
        description=(
            "Entries of a worker's first claim, before it knows its pace, 1-10000. Default 200."
        ),
    )
    claim_seconds: float = Field(
        default=15.0,
        ge=1,
        le=600,
        description=(
            "Seconds of work each later claim holds, at the pace the worker measured (more when "
            "claims wait long for the table's lock; at most a quarter of the lease's worth), "
            "1-600. Each claim is an UPDATE that holds the table's lock, so a worker claims about "
            "once per this many seconds however fast it goes. Default 15."
        ),
    )
    claim_max: int = Field(
        default=10_000,
        ge=1,
        le=100_000,
        description="The most entries one claim takes, 1-100000. Default 10000.",
    )
    retry_delay_seconds: int = Field(
        default=60,
        ge=0,
        description=(
            "Base delay in seconds before a failed entry is tried again: the next attempt is due "
            "after this x 2^attempts (capped at 1 h); 0 retries at once. Default 60."
        ),
    )
    # Snowflake runs DML on one table one statement at a time: how long one holds the
    # table's lock, and the share of the lock the fleet's statements may plan to use.
    lock_hold_seconds: float = Field(
        default=0.35,
        gt=0,
        le=60,
        description=(
            "How long one UPDATE holds the queue table's lock on your account (Snowflake runs "
            "UPDATEs on one table one at a time; typically 0.2-0.5 s, see QUERY_HISTORY). The "
            "operator plans with it. Default 0.35."
        ),
    )
    lock_share: float = Field(
        default=0.6,
        gt=0,
        le=1,
        description=(
            "The share of the table's lock this processor's Jobs may plan to hold: the operator "
            "launches no more Jobs than lockShare / (lockHoldSeconds x (1/claimSeconds + "
            "W/job.flushSeconds)), W the write-back UPDATEs one flush of job.flushEvery outcomes "
            "takes (one per 512 KiB of their JSON, stored answers included; docs/operations.md, "
            '"Scale limits"), at most job.maxActiveJobs and at least 1 (status.jobLimit). '
            "Leave room for the producers' MERGEs. Default 0.6 (6 Jobs with the defaults)."
        ),
    )


class LaunchBackoff(_Model):
    """Stop launching after this many Jobs in a row failed (each failed Job is a billed pod
    start that did nothing, e.g. during a service outage); poll/launch_backoff.py."""

    model_config = cel_rules(
        (
            "!has(self.initialSeconds) || !has(self.maxSeconds) || "
            "self.maxSeconds >= self.initialSeconds",
            "launchBackoff.maxSeconds must be at least initialSeconds",
        )
    )

    after_failed_jobs: int = Field(
        default=3,
        ge=0,
        le=100,
        description=(
            "Failed Jobs in a row that start the backoff, 0-100; 0 never backs off. Default 3."
        ),
    )
    initial_seconds: int = Field(
        default=60,
        ge=1,
        le=86_400,
        description=(
            "Seconds without launches once afterFailedJobs Jobs failed in a row. Default 60."
        ),
    )
    max_seconds: int = Field(
        default=1800,
        ge=1,
        le=86_400,
        description=(
            "Longest wait: the wait doubles with each further failed Job up to this. Default 1800."
        ),
    )

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

# The CEL twins of the Fargate size checks. has(): the API server also checks these rules
# against the job's default {} itself, before cpu's and memory's own defaults are applied.
# They apply with compute fargate (the default) only.
_ON_NODES = "(has(self.compute) && self.compute == 'nodes')"
_MEMORY_MIB = (
    "int(self.memory.substring(0, size(self.memory) - 2)) * (self.memory.endsWith('Gi') ? 1024 : 1)"
)


def _gigabytes(mib: int) -> str:
    return f"{mib / 1024:g}"


def _fargate_size_rule(cpu: str) -> tuple[str, str]:
    """The CEL rule (and its message) allowing exactly the memory requests that Fargate bills
    as ``cpu`` vCPU with the requested memory plus its overhead, as fargate_size_allowed."""
    sizes = FARGATE_SIZES_MIB[cpu]
    requests = [size - FARGATE_MEMORY_OVERHEAD_MIB for size in sizes]
    guard = (
        f"!has(self.cpu) || !has(self.memory) || {_ON_NODES} || "
        f"!self.memory.matches('{FARGATE_MEMORY_PATTERN}') || self.cpu != '{cpu}' || "
    )
    if len(sizes) <= 4:  # a few sizes: listed
        rule = f"{guard}{_MEMORY_MIB} in [{', '.join(map(str, requests))}]"
        allowed = _or_list([f"{request}Mi" for request in requests])
        billed = _or_list([_gigabytes(size) for size in sizes])
    else:  # many, evenly spaced: a range and a step
        step = sizes[1] - sizes[0]
        rule = (
            f"{guard}(({_MEMORY_MIB} + {FARGATE_MEMORY_OVERHEAD_MIB}) % {step} == 0 && "
            f"{_MEMORY_MIB} >= {requests[0]} && {_MEMORY_MIB} <= {requests[-1]})"
        )
        allowed = f"{requests[0]}Mi to {requests[-1]}Mi in {step}Mi steps"
        billed = f"{_gigabytes(sizes[0])} to {_gigabytes(sizes[-1])}"
    # The smallest size requested as it is: billed as the next size up.
    example = sizes[0]
    spelled = f"{example // 1024}Gi" if example % 1024 == 0 else f"{example}Mi"
    example_billed = fargate_billed_size(cpu, example)
    assert example_billed is not None
    message = (
        f"job.cpu {cpu} allows job.memory {allowed}, billed as {cpu} vCPU with {billed} GB "
        f"(Fargate adds {FARGATE_MEMORY_OVERHEAD_MIB}Mi to every pod and bills the next size "
        f"up: {spelled} would bill {_gigabytes(example_billed[1])} GB)"
    )
    return rule, message


def _or_list(items: list[str]) -> str:
    return f"{', '.join(items[:-1])} or {items[-1]}"


class JobSettings(_Model):
    model_config = cel_rules(
        (
            f"!has(self.cpu) || {_ON_NODES} || self.cpu in {cel_list(FARGATE_CPUS)}",
            f"job.cpu on Fargate is one of {_or_list(list(FARGATE_CPUS))} (any quantity with "
            "job.compute nodes)",
        ),
        (
            f"!has(self.memory) || {_ON_NODES} || self.memory.matches('{FARGATE_MEMORY_PATTERN}')",
            "job.memory on Fargate is given in Mi or Gi, e.g. 768Mi (any quantity with "
            "job.compute nodes)",
        ),
        (
            "!has(self.compute) || self.compute != 'nodes' || !has(self.podLabels) || "
            f"!('{FARGATE_PROFILE_LABEL}' in self.podLabels)",
            f"podLabels {FARGATE_PROFILE_LABEL} is the label the worker Fargate profile "
            "selects: with compute nodes the pods would still go to Fargate",
        ),
        (
            "!has(self.minActiveJobs) || !has(self.maxActiveJobs) || "
            "self.minActiveJobs <= self.maxActiveJobs",
            "job.minActiveJobs must not exceed job.maxActiveJobs",
        ),
        (
            f"!has(self.imagePullPolicy) || {_ON_NODES} || self.imagePullPolicy != 'Never'",
            FARGATE_PULL_POLICY_MESSAGE,
        ),
        (
            f"!has(self.volumes) || {_ON_NODES} || "
            "self.volumes.all(v, !has(v.csi) && !has(v.ephemeral))",
            FARGATE_VOLUMES_MESSAGE,
        ),
        (
            "!has(self.volumeMounts) || self.volumeMounts.all(m, has(self.volumes) && "
            "self.volumes.exists(v, v.name == m.name))",
            "every volumeMounts name must be the name of one of spec.job.volumes",
        ),
        *(_fargate_size_rule(cpu) for cpu in FARGATE_CPUS),
    )

    entries_per_job: int = Field(
        default=2000,
        ge=1,
        description=(
            "Entry budget of one Job: the operator launches one Job per this many eligible "
            "entries, and a Job stops claiming after this many. Default 2000."
        ),
    )
    # At most MAX_ACTIVE_JOBS (19): their statements never make more than Snowflake's 20
    # waiters for the table's lock (poll/job_count.py).
    max_active_jobs: int = Field(
        default=10,
        ge=1,
        le=MAX_ACTIVE_JOBS,
        description=(
            "Most unfinished Jobs of this processor at once, 1-19; bounds the load on Snowflake "
            "and on the service. Each Job has at most one statement on the queue table at a time, "
            "so 19 Jobs, the operator and one ops command never make more than the 20 statements "
            "Snowflake lets wait for a table's lock (error 000625). The operator runs fewer when "
            "more would hold more of the table's lock than queue.lockShare (status.jobLimit). "
            "Raise concurrency for more calls in flight. Default 10."
        ),
    )
    min_active_jobs: int = Field(
        default=0,
        ge=0,
        le=MAX_ACTIVE_JOBS,
        description=(
            "Jobs kept unfinished while the queue is busy (entries eligible now, or held by a "
            "worker), at most maxActiveJobs: warm workers for latency-sensitive queues, since a "
            "Fargate pod takes about a minute to start. Their workers do not exit at the first "
            "empty claim but keep claiming for idleWaitSeconds. 0 keeps none. Default 0."
        ),
    )
    idle_wait_seconds: int = Field(
        default=60,
        ge=1,
        le=3600,
        description=(
            "With minActiveJobs above 0: how long a worker that finds the queue empty keeps "
            "claiming (every 2 s, one small statement each) before it exits, 1-3600. With "
            "minActiveJobs 0 workers exit at the first empty claim. Default 60."
        ),
    )
    launch_backoff: LaunchBackoff = Field(
        default=LaunchBackoff(),
        description=(
            "After afterFailedJobs Jobs in a row failed (the Job failed, e.g. its worker found the "
            "service unreachable, or every call it made failed for a passing reason), no Job is "
            "launched for initialSeconds, doubled for each further failure up to maxSeconds; then "
            "one Job at a time until one succeeds, which ends it. Shown as the LaunchBackoff "
            "condition, a LaunchBackoff event and Ready False."
        ),
    )
    concurrency: int = Field(
        default=32,
        ge=1,
        le=1024,
        description="HTTPS calls in flight at once within one Job, 1-1024. Default 32.",
    )
    active_deadline_seconds: int | None = Field(
        default=None,
        ge=60,
        description=(
            "Hard limit in seconds of a Job's run, counted by Kubernetes from the Job's start (pod "
            "scheduling and image pull included), after which it kills the pod; at least 60, below "
            "queue.leaseSeconds and above graceSeconds + 15. The worker gets an absolute deadline "
            "(SFP_DEADLINE_AT) of the Job's creation + this - graceSeconds - 15, so it stops "
            "claiming and writes back first. Unset: 2/3 of queue.leaseSeconds."
        ),
    )
    grace_seconds: int = Field(
        default=20,
        ge=1,
        description=(
            "Seconds a worker gives calls in flight after SIGTERM or its deadline before releasing "
            "their entries; the pod's termination grace period is this plus 10. Default 20."
        ),
    )
    flush_seconds: float = Field(
        default=10.0,
        gt=0,
        description=(
            "Seconds after the first unwritten outcome at which outcomes are written back (one "
            "UPDATE per 512 KiB of their JSON, each holding the table's lock), if flushEvery is "
            "not reached first. After a "
            "worker crash the calls whose outcomes were not written back are made again: at most "
            "about min(entries/s x flushSeconds, flushEvery) + concurrency entries per Job (see "
            'docs/operations.md, "Crash exposure"). Default 10.0.'
        ),
    )
    flush_every: int = Field(
        default=5000,
        ge=1,
        description=(
            "Outcomes are written back once this many wait, if flushSeconds has not passed first. "
            "Default 5000."
        ),
    )
    # Where and how the Job's pod runs (Kubernetes only; ignored by the local backend).
    image: str | None = Field(
        default=None,
        min_length=1,
        max_length=1024,
        description=(
            "Worker container image. Unset: the operator's default worker image (the operator's "
            "own version)."
        ),
    )
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = Field(
        default="IfNotPresent", description="Pull policy of the worker image. Default IfNotPresent."
    )
    service_account_name: str = Field(
        default="snowflake-processor-worker",
        min_length=1,
        max_length=253,
        description=(
            "Service account of the Job's pod; for workload_identity annotate it with "
            "eks.amazonaws.com/role-arn. Default snowflake-processor-worker."
        ),
    )
    compute: Compute = Field(
        default="fargate",
        description=(
            "Where the pods run. fargate: EKS Fargate; cpu and memory must be a size Fargate bills "
            "exactly, and every pod carries the label the worker Fargate profile selects. nodes: "
            "EC2 or Karpenter nodes; cpu and memory are any Kubernetes quantities, the Fargate "
            "label is left off (podLabels may not add it), and tolerations, nodeSelector and "
            "affinity choose the nodes (the namespace must not be one a Fargate profile selects "
            "without labels). Default fargate."
        ),
    )
    cpu: str = Field(
        default="0.5",
        max_length=8,
        pattern=CPU_PATTERN,
        description=(
            'vCPU of the pod (request and limit); quote it in YAML ("1", not 1). With compute '
            "fargate one of 0.25, 0.5, 1, 2, 4, 8, 16 that fits memory; with compute nodes any "
            "quantity above 0 (0.5, 1.5, 500m). Default 0.5."
        ),
    )
    # 768Mi + the 256Mi Fargate adds = 0.5 vCPU / 1 GB, the smallest size for 0.5 vCPU.
    memory: str = Field(
        default="768Mi",
        max_length=12,
        pattern=MEMORY_PATTERN,
        description=(
            "Memory of the pod (request and limit). With compute fargate in Mi or Gi: EKS Fargate "
            "adds 256Mi to every pod and bills the smallest size that holds the sum, so the "
            "request must be a Fargate size less 256Mi (1Gi would be billed as 2 GB): "
            f"{FARGATE_SIZES_HELP}. With compute nodes any quantity above 0 with a unit "
            "(1.5Gi, 512M). Default 768Mi (billed as 0.5 vCPU / 1 GB with the default cpu)."
        ),
    )
    pod_labels: dict[str, LabelValue] = Field(
        default_factory=dict,
        max_length=MAX_LABELS,
        description=(
            "Extra labels on each Job's pod, at most 64. The operator always adds its own labels, "
            'which win on a clash, among them snowflake-processor.dev/fargate: "true", the label '
            "the worker EKS Fargate profile selects (terraform/eks): nothing here is needed for "
            "Fargate. Default none."
        ),
        json_schema_extra={
            "default": {},
            **string_map("A label value.", maxLength=LABEL_VALUE_LENGTH),
        },
    )
    # The usual pod template fields (spec/pod_template.py): none of them can loosen the
    # security template or touch the operator's own volumes and variables.
    pod_annotations: dict[str, Annotated[str, Field(max_length=TEXT_LENGTH)]] | None = Field(
        default=None,
        max_length=MAX_ANNOTATIONS,
        description=(
            "Extra annotations on each Job's pod (Karpenter's do-not-disrupt, a log router's, "
            "...), at most 64, each value at most 32768 characters; none may change its AppArmor "
            "or seccomp profile. Unset: none."
        ),
        json_schema_extra={**string_map("An annotation value."), **cel(ANNOTATIONS_RULE)},
    )
    env: list[EnvVar] | None = Field(
        default=None,
        max_length=MAX_ENV,
        description=(
            "Extra environment variables of the worker container (HTTPS_PROXY, SSL_CERT_FILE for a "
            "proxy's CA, ...), at most 64, each with a value or a valueFrom like a pod's env; a "
            "Secret it names must be on the operator's allow-list. Reserved, refused: SFP_* and "
            "HOME (the operator's own), PATH, PYTHON*, LD_*, OPENSSL_* and GCONV_PATH (they would "
            "choose the code the worker runs). Unset: none."
        ),
        json_schema_extra=list_map("name"),
    )
    node_selector: dict[str, LabelValue] | None = Field(
        default=None,
        max_length=MAX_LABELS,
        description=(
            "Node labels the pod's node must have, e.g. karpenter.sh/capacity-type: on-demand, at "
            "most 64 (compute nodes; EKS Fargate applies none). Unset: any node."
        ),
        json_schema_extra=string_map("The label value the node must have."),
    )
    tolerations: list[Toleration] | None = Field(
        default=None,
        max_length=MAX_TOLERATIONS,
        description=(
            "Taints the pod tolerates, like a pod's tolerations, at most 32 (compute nodes: "
            "dedicated node groups, spot capacity). Unset: none."
        ),
        json_schema_extra={"x-kubernetes-list-type": "atomic"},
    )
    affinity: Affinity | None = Field(
        default=None,
        description=(
            "The pod's node and pod (anti-)affinity, as in a pod spec (core/v1 Affinity; lists "
            "and maps bounded), its values checked by the API server when a Job is created "
            "(compute nodes; EKS Fargate applies none). Unset: none."
        ),
    )
    priority_class_name: str | None = Field(
        default=None,
        max_length=253,
        pattern=DNS_SUBDOMAIN_PATTERN,
        description=(
            "PriorityClass of the pod (compute nodes: which pods a full cluster evicts first); not "
            "system-*. Unset: the cluster's default."
        ),
        json_schema_extra=cel(PRIORITY_CLASS_RULE),
    )
    volumes: list[Volume] | None = Field(
        default=None,
        max_length=MAX_VOLUMES,
        description=(
            "Extra volumes of the pod, at most 32, each of one of the types Pod Security's "
            "restricted profile allows (configMap, csi, downwardAPI, emptyDir, ephemeral, "
            "persistentVolumeClaim, projected, secret) that the operator's allow-list of volume "
            "types lists: by default all but csi and ephemeral. A Secret they name must be on the "
            "operator's allow-list of Secrets; a projected volume takes configMap, secret and "
            "downwardAPI sources only (no service account token). EKS Fargate mounts only "
            "configMap, secret, projected, downwardAPI, emptyDir and EFS persistent volumes. The "
            "names certificates, tmp, snowflake-key and endpoint-headers are the operator's. "
            "Unset: none."
        ),
        json_schema_extra=list_map("name"),
    )
    volume_mounts: list[VolumeMount] | None = Field(
        default=None,
        max_length=MAX_VOLUMES,
        description=(
            "Where the worker container mounts volumes of spec.job.volumes, at most 32. A "
            "mountPath at, under or above /bin, /dev, /etc, /lib*, /opt, /proc, /run, /sbin, /sys, "
            "/tmp, /usr or /var/run is refused: the image's code, the mounted certificates and "
            "key, /tmp and the service account token stay as the operator sets them. Mount under "
            "/mnt, say. Unset: none."
        ),
        json_schema_extra=list_map("mountPath"),
    )
    ttl_seconds_after_finished: int = Field(
        default=300,
        ge=0,
        description=(
            "A safety net: Kubernetes deletes a finished Job (and its pod) this many seconds after "
            "it ends (0: at once). The operator deletes it sooner, as soon as the worker's summary "
            "is counted in status.totals. Default 300."
        ),
    )
    successful_jobs_history_limit: int = Field(
        default=0,
        ge=0,
        description=(
            "Succeeded Jobs kept, with their pods, after their summary is counted; older ones are "
            "deleted. On Fargate a finished pod is billed until it is removed, so keep 0 there; "
            "each counted Job is reported by an Event (JobSucceeded) instead. Default 0."
        ),
    )
    failed_jobs_history_limit: int = Field(
        default=0,
        ge=0,
        description=(
            "Failed Jobs kept, with their pods, after their summary is counted; older ones are "
            "deleted. On Fargate keep 0 (a finished pod is billed until it is removed; pod logs "
            "are in CloudWatch); each counted Job is reported by an Event (JobFailed) instead. "
            "Default 0."
        ),
    )

    _annotations = field_validator("pod_annotations")(check_annotations)
    _priority_class = field_validator("priority_class_name")(check_priority_class)

    @model_validator(mode="after")
    def _sizes_for_the_compute(self) -> JobSettings:
        if self.compute == "fargate":
            problem = fargate_request_problem(self.cpu, self.memory)
            if problem is not None:
                raise ValueError(problem)
            if self.image_pull_policy == "Never":
                raise ValueError(FARGATE_PULL_POLICY_MESSAGE)
            if any(v.csi is not None or v.ephemeral is not None for v in self.volumes or []):
                raise ValueError(FARGATE_VOLUMES_MESSAGE)
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
    bucket: str = Field(
        min_length=3,
        max_length=63,
        pattern=r"^[a-z0-9][a-z0-9.-]+[a-z0-9]$",
        description=(
            "S3 bucket name: 3-63 lower-case letters, digits, '.' and '-', starting and ending "
            "with a letter or digit."
        ),
    )
    prefix: str = Field(
        default="",
        description=(
            "Key prefix of the objects, e.g. prod/: the operator reads <prefix>client.pem, "
            '<prefix>client-key.pem and <prefix>ca-cert.pem. Default "" (the bucket\'s root).'
        ),
    )
    region: str | None = Field(
        default=None,
        description=(
            "AWS region of the bucket, e.g. us-east-1. Unset: the operator's default region."
        ),
    )


class Certificates(_Model):
    """Exactly one source: S3 (synced into a Secret owned by the resource) or a Secret."""

    model_config = cel_rules(
        (
            "has(self.s3) != has(self.existingSecret)",
            "certificates needs exactly one of s3 or existingSecret",
        )
    )

    s3: S3Certificates | None = Field(
        default=None,
        description=(
            "Copy the certificates from S3, with the operator's IAM role, into a Secret owned by "
            "this processor; the copy is refreshed while the processor runs."
        ),
    )
    existing_secret: str | None = Field(
        default=None,
        min_length=1,
        description=(
            "Name of a Secret in the processor's namespace that you manage (with cert-manager or "
            "External Secrets, say) holding client.pem, client-key.pem and ca-cert.pem."
        ),
    )

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

    url: str = Field(
        description=(
            "The https:// URL each entry is sent to. Plain http is refused: the client certificate "
            "is what authenticates the caller. Required."
        ),
        json_schema_extra={"pattern": "^https://"},
    )
    method: Literal["POST", "PUT", "PATCH"] = Field(
        default="POST", description="The HTTP method of each call. Default POST."
    )
    payload: Payload = Field(
        default=Payload.ENVELOPE,
        description=(
            "The body of each call: envelope (a JSON object of entry_id, data, processor_id and "
            "timestamp, as the legacy design sent) or data (the entry's data alone, as JSON). "
            "Default envelope."
        ),
    )
    headers_secret: str | None = Field(
        default=None,
        min_length=1,
        max_length=253,
        pattern=DNS_SUBDOMAIN,
        description=(
            "A Secret in the resource's namespace whose keys are extra request headers (API keys, "
            "tokens): each key is a header's name, its value the header's value (one line). "
            "Mounted read-only into every Job and read by the worker at start; the operator never "
            "reads it, and no value reaches a log, the status or an event. Must match the "
            "operator's allow-list (SFP_OPERATOR_ALLOWED_SECRETS). Idempotency-Key, Content-Type, "
            "Host and the other headers HTTP or the worker set are refused (the Job exits 2 naming "
            "the key)."
        ),
    )
    timeout_seconds: float = Field(
        default=10,
        gt=0,
        description=(
            "Time limit of one call in seconds, the whole exchange (connect, request, the answer's "
            "status and body); fractions allowed. Default 10."
        ),
    )
    retries: int = Field(
        default=3,
        ge=0,
        le=20,
        description=(
            "In-Job retries of a transient failure (timeout, connection error, 408, 425, 429, "
            "5xx), 0-20; other 4xx answers fail the entry at once. Default 3."
        ),
    )
    retry_backoff_seconds: float = Field(
        default=0.5,
        gt=0,
        description=(
            "Base delay in seconds of the full-jitter exponential backoff between those retries "
            "(doubles per retry, capped at 30 s). Default 0.5."
        ),
    )
    retry_after_max_seconds: float = Field(
        default=60,
        ge=0,
        le=MAX_RELEASE_SECONDS,
        description=(
            "A transient answer's Retry-After (seconds or an HTTP date) up to this many seconds "
            "pauses every call of the Job that long, and the entry's retry waits for it; a longer "
            "one pauses the Job this long and sends the entry back to the queue with "
            "next_attempt_at that far ahead (at most 1 h). 0 ignores the header. Default 60."
        ),
    )
    requests_per_second: float | None = Field(
        default=None,
        gt=0,
        description=(
            "At most this many calls per second from each Job, retries included (fractions "
            "allowed; calls are spaced evenly, no bursts). The fleet sends at most "
            "job.maxActiveJobs times this. Unset: no limit but job.concurrency."
        ),
    )
    store_response_bytes: int = Field(
        default=0,
        ge=0,
        le=STORE_RESPONSE_MAX_BYTES,
        description=(
            "Keep the first this many bytes (at most 16384) of the answer that completes an entry "
            "in the queue table's result column, which sql/005_result_column.sql adds "
            "(`snowflake-processor sql apply`); a longer body is cut there. A Job whose table "
            "lacks the column exits 2 before claiming. 0 keeps nothing. Default 0."
        ),
    )

    @field_validator("url")
    @classmethod
    def _https_only(cls, value: str) -> str:
        # The worker's own check: a URL it would refuse is refused here, before any Job.
        problem = endpoint_url_problem(value)
        if problem is not None:
            raise ValueError(f"endpoint.url {problem}")
        return value


class ProcessorSpec(_Model):
    """What to drain and how. Only snowflake (the queue table) and endpoint (the service) are
    required; every other section has production defaults."""

    model_config = cel_rules(
        (
            "!has(self.job.activeDeadlineSeconds) || "
            "self.job.activeDeadlineSeconds < self.queue.leaseSeconds",
            "job.activeDeadlineSeconds must stay below queue.leaseSeconds, or a lease could "
            "expire under a running Job",
        ),
        (
            "(has(self.job.activeDeadlineSeconds) ? self.job.activeDeadlineSeconds : "
            "self.queue.leaseSeconds * 2 / 3) > "
            f"self.job.graceSeconds + {WRITE_BACK_MARGIN_SECONDS}",
            "job.activeDeadlineSeconds (unset: 2/3 of queue.leaseSeconds) must exceed "
            f"job.graceSeconds + {WRITE_BACK_MARGIN_SECONDS} (the worker's time to write back "
            "and exit)",
        ),
        (
            "(has(self.job.compute) && self.job.compute == 'nodes') || "
            "(has(self.job.activeDeadlineSeconds) ? self.job.activeDeadlineSeconds : "
            "self.queue.leaseSeconds * 2 / 3) >= "
            f"self.job.graceSeconds + {WRITE_BACK_MARGIN_SECONDS + FARGATE_START_SECONDS}",
            FARGATE_DEADLINE_MESSAGE,
        ),
    )

    snowflake: SnowflakeTarget = Field(
        description=(
            "Where the queue table lives and how the operator and its Jobs log in to Snowflake."
        )
    )
    endpoint: Endpoint = Field(
        description=(
            "The HTTPS service each queue entry is sent to, with mutual TLS: by default a POST of "
            "a JSON object (entry_id, data, processor_id, timestamp) with an Idempotency-Key "
            "header stable per entry."
        )
    )
    certificates: Certificates | None = Field(
        default=None,
        description=(
            "Where the client certificate, its key and the service's CA come from: exactly one of "
            "s3 or existingSecret. Leave it unset only where the certificates are local files (the "
            "demo); a cluster deployment needs it."
        ),
    )
    queue: QueueSettings = Field(
        default=QueueSettings(),
        description="How entries are claimed, leased and retried. Every field has a default.",
    )
    job: JobSettings = Field(
        default=JobSettings(),
        description=(
            "The worker Jobs: how many, how big and where they run. Every field has a default."
        ),
    )
    poll_interval_seconds: int = Field(
        default=60,
        ge=1,
        description=(
            "Seconds between polls of the queue table (count eligible entries, recover expired "
            "leases, launch Jobs), at least 1. Default 60."
        ),
    )
    idle_poll_seconds: int = Field(
        default=1800,
        ge=0,
        description=(
            "While the queue is idle (nothing eligible or processing and no unfinished Jobs), "
            "polls only compare a signature of the table read without a warehouse (SHOW TABLES "
            "and a metadata COUNT(*)) and skip the statements that resume the warehouse; a full "
            "poll runs when the signature changes, when the first entry waiting out a retry "
            "delay becomes claimable, and at least this often, in seconds, as a safety net. 0 "
            "disables the safety net. Default 1800."
        ),
    )
    # "yes" is not a boolean: refuse it like the CRD does
    suspend: StrictBool = Field(
        default=False,
        description=(
            "true stops launching Jobs and runs no Snowflake statement, S3 call or Secret read "
            "(running Jobs finish their work; the status keeps its last counts). A suspended "
            "processor stays Ready (reason Suspended); kubectl get sfp shows it in the SUSPENDED "
            "column. Default false."
        ),
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="Log level of the worker Jobs. Default INFO."
    )

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
        if self.job.compute == "fargate" and (
            self.worker_claim_deadline_seconds() < FARGATE_START_SECONDS
        ):
            raise ValueError(FARGATE_DEADLINE_MESSAGE)
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
