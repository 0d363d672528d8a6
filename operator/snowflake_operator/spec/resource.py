"""The rest of the SnowflakeProcessor resource, beside its spec (spec/model.py): what the
kind is, the status the operator writes and the columns of `kubectl get sfp`.

Like the spec model, these are the CRD's source (scripts/gen_crd.py). The status model
describes the status's schema only: the operator builds the status as a plain mapping
(poll/planning.py, poll/launch_backoff.py, ...), and tests/deploy/test_crd.py checks that what
it writes fits the schema (the API server silently drops status fields it does not declare).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, NamedTuple

from pydantic import Field

from .base import SpecModel, list_map

RESOURCE_DESCRIPTION = (
    "A SnowflakeProcessor drains one Snowflake work-queue table: the operator polls the table "
    "and launches Kubernetes Jobs whose workers claim entries and POST each one to an HTTPS "
    "service with mutual TLS, writing the outcome back."
)

CONDITION_TYPES = "Ready, Suspended, SnowflakeReachable, CertificatesSynced"
NULLABLE: dict[str, Any] = {"nullable": True}  # written as null, not left out
INT64: dict[str, Any] = {"format": "int64"}


class Condition(SpecModel):
    type: str = Field(description=f"{CONDITION_TYPES}, LaunchBackoff or StrandedEntries.")
    status: Literal["True", "False", "Unknown"] = Field(description="True, False or Unknown.")
    reason: str | None = Field(
        default=None, description="One CamelCase word saying why, e.g. Polling or QueryFailed."
    )
    message: str | None = Field(
        default=None, description="What a person should know, e.g. the Snowflake error."
    )
    last_transition_time: datetime | None = Field(
        default=None, description="When the condition last changed (UTC)."
    )


class Totals(SpecModel):
    completed: int | None = Field(
        default=None, description="Entries completed by this processor's Jobs since it was created."
    )
    failed: int | None = Field(
        default=None,
        description=(
            "Entries failed for good by this processor's Jobs, or dead-lettered by lease "
            "recovery, since it was created."
        ),
    )


class CertificateStatus(SpecModel):
    fingerprint: str | None = Field(
        default=None, description="SHA-256 fingerprint of the client certificate."
    )
    not_after: datetime | None = Field(
        default=None, description="When the client certificate expires (UTC)."
    )
    secret_name: str | None = Field(
        default=None, description="The Secret holding the certificates, mounted by each Job."
    )


class ProcessorStatus(SpecModel):
    """What the operator saw at its last poll. Written by the operator only."""

    backlog: int | None = Field(
        default=None,
        description=(
            "Entries eligible to be claimed now (pending, attempts left, next attempt due)."
        ),
    )
    pending: int | None = Field(
        default=None, description="Entries with status pending, due or not."
    )
    processing: int | None = Field(
        default=None, description="Entries claimed by a worker, under a lease."
    )
    completed: int | None = Field(default=None, description="Entries in the table that completed.")
    failed: int | None = Field(
        default=None, description="Entries in the table that failed for good (dead letters)."
    )
    active_jobs: int | None = Field(
        default=None,
        description="Unfinished Jobs of this processor, including those launched by the last poll.",
    )
    job_limit: int | None = Field(
        default=None,
        description=(
            "The most unfinished Jobs the operator runs: job.maxActiveJobs, or fewer when more "
            "would hold more of the table's lock than queue.lockShare."
        ),
    )
    table_lock_share: float | None = Field(
        default=None,
        description=(
            "The share of the table's lock the unfinished Jobs hold by the operator's estimate: "
            "activeJobs x lockHoldSeconds x (1/claimSeconds + 1/flushSeconds)."
        ),
    )
    idle: bool | None = Field(
        default=None,
        description=(
            "True while the queue is idle and polls use only warehouse-free checks; the counts "
            "are then those of the last full poll."
        ),
    )
    oldest_pending_age_seconds: int | None = Field(
        default=None,
        description="Age in seconds of the oldest pending entry; null when none is pending.",
        json_schema_extra=NULLABLE,
    )
    consecutive_failed_jobs: int | None = Field(
        default=None,
        description=(
            "Finished Jobs that failed in a row since the last one that succeeded "
            "(spec.job.launchBackoff counts them)."
        ),
    )
    launch_backoff_until: datetime | None = Field(
        default=None,
        description=(
            "While launches back off after failed Jobs: no Job is launched before this time "
            "(UTC); null otherwise."
        ),
        json_schema_extra=NULLABLE,
    )
    last_poll_time: datetime | None = Field(
        default=None, description="When the operator last polled the queue table (UTC)."
    )
    observed_generation: int | None = Field(
        default=None,
        description="The metadata.generation of the spec the last poll used.",
        json_schema_extra=INT64,
    )
    totals: Totals | None = Field(
        default=None,
        description=(
            "Lifetime counts: the entries each finished Job settled, read from the queue "
            "table when the Job is counted (its worker's summary when the table cannot be "
            "read), and those lease recovery dead-lettered."
        ),
    )
    certificates: CertificateStatus | None = Field(
        default=None, description="The client certificate the Jobs mount."
    )
    conditions: list[Condition] | None = Field(
        default=None,
        description=(
            f"{CONDITION_TYPES}, LaunchBackoff and StrandedEntries, each True or False with a "
            "reason."
        ),
        json_schema_extra=list_map("type"),
    )


class PrinterColumn(NamedTuple):
    """One column of `kubectl get sfp`; priority 1: with -o wide only."""

    name: str
    type: Literal["integer", "number", "string", "boolean", "date"]
    json_path: str
    description: str = ""
    priority: int = 0


_READY = '.status.conditions[?(@.type=="Ready")]'
PRINTER_COLUMNS = (
    PrinterColumn(
        "Backlog",
        "integer",
        ".status.backlog",
        "Entries eligible to be claimed now (pending, attempts left, next attempt due).",
    ),
    PrinterColumn(
        "Active", "integer", ".status.activeJobs", "Unfinished worker Jobs of this processor."
    ),
    PrinterColumn(
        "Failed",
        "integer",
        ".status.failed",
        "Entries in the queue table that failed for good (dead letters).",
    ),
    PrinterColumn(
        "Ready",
        "string",
        f"{_READY}.status",
        "Whether the processor does what its spec asks: True when its last poll reached "
        "Snowflake with the certificates in place, or when it is suspended.",
    ),
    # A suspended processor is not a broken one: KEDA shows PAUSED, we SUSPENDED.
    PrinterColumn(
        "Suspended",
        "boolean",
        ".spec.suspend",
        "spec.suspend; a suspended processor is Ready with reason Suspended.",
    ),
    PrinterColumn(
        "Reason",
        "string",
        f"{_READY}.reason",
        "Why Ready is what it is: Polling, Suspended, Blocked, LaunchBackoff, InvalidSpec, "
        "NotAllowed, DuplicateTable or ReconcileFailed.",
        priority=1,
    ),
    PrinterColumn(
        "Pending",
        "integer",
        ".status.pending",
        "Entries with status pending, due or not.",
        priority=1,
    ),
    PrinterColumn(
        "Processing",
        "integer",
        ".status.processing",
        "Entries claimed by a worker, under a lease.",
        priority=1,
    ),
    PrinterColumn(
        "Completed",
        "integer",
        ".status.completed",
        "Entries in the table that completed.",
        priority=1,
    ),
    PrinterColumn(
        "Oldest",
        "integer",
        ".status.oldestPendingAgeSeconds",
        "Age in seconds of the oldest pending entry.",
        priority=1,
    ),
    PrinterColumn(
        "Polled",
        "date",
        ".status.lastPollTime",
        "When the operator last polled the queue table.",
        priority=1,
    ),
    PrinterColumn(
        "Table",
        "string",
        ".spec.snowflake.table",
        "The queue table (in spec.snowflake's database and schema).",
        priority=1,
    ),
    PrinterColumn("Age", "date", ".metadata.creationTimestamp"),
)
