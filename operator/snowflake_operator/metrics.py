"""Prometheus metrics of the operator, labelled by the resource they describe.

The chart's PrometheusRule alerts on these names; keep them stable.
"""

from __future__ import annotations

import contextlib
from collections import Counter as Tally
from collections.abc import Iterable, Mapping
from typing import Any

from prometheus_client import Counter, Gauge, Histogram, start_http_server

from snowflake_worker.queue import LeaseRecovery, QueueCounts

LABELS = ("namespace", "processor")

BACKLOG = Gauge("snowflake_processor_backlog", "Entries eligible to be claimed now", LABELS)
PENDING = Gauge("snowflake_processor_pending", "Entries with status pending", LABELS)
PROCESSING = Gauge("snowflake_processor_processing", "Entries claimed, not finished", LABELS)
DEAD_LETTERS = Gauge(
    "snowflake_processor_dead_letters", "Entries that failed for good (status failed)", LABELS
)
ACTIVE_JOBS = Gauge(
    "snowflake_processor_active_jobs", "Unfinished Jobs whose pod is running", LABELS
)
PENDING_JOBS = Gauge(
    "snowflake_processor_pending_jobs", "Unfinished Jobs with no running pod yet", LABELS
)
JOBS_LAUNCHED = Counter("snowflake_processor_jobs_launched", "Jobs launched", LABELS)
LEASES_RECOVERED = Counter(
    "snowflake_processor_leases_recovered", "Expired leases returned to pending", LABELS
)
LEASES_DEAD_LETTERED = Counter(
    "snowflake_processor_leases_dead_lettered",
    "Entries dead-lettered by lease recovery (attempts exhausted)",
    LABELS,
)
RECONCILE_SECONDS = Histogram(
    "snowflake_processor_reconcile_duration_seconds",
    "Wall time of one poll, Snowflake and Kubernetes calls included",
    LABELS,
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
STATEMENTS = Counter(
    "snowflake_processor_snowflake_statements",
    "Snowflake statements the operator issued, by kind",
    (*LABELS, "kind"),
)
CERTIFICATE_EXPIRY = Gauge(
    "snowflake_processor_certificate_expiry_timestamp_seconds",
    "When client.pem expires (Unix time)",
    LABELS,
)
SUSPENDED = Gauge("snowflake_processor_suspended", "1 while spec.suspend is true", LABELS)
IDLE = Gauge(
    "snowflake_processor_idle", "1 while the queue is idle (warehouse-free polls only)", LABELS
)
# From the summaries of finished Jobs (issue 12): the batch sizes their workers chose.
WORKER_CLAIM_SIZE = Gauge(
    "snowflake_processor_worker_claim_size",
    "Entries of the last claim of the last finished Job (claims are sized by queue.claimSeconds)",
    LABELS,
)
WORKER_WRITE_BACK_SIZE = Gauge(
    "snowflake_processor_worker_write_back_size",
    "Mean outcomes per write-back of the last finished Job (one per job.flushSeconds)",
    LABELS,
)
JOB_LIMIT = Gauge(
    "snowflake_processor_job_limit",
    "Most unfinished Jobs: maxActiveJobs, or fewer to keep within queue.lockShare",
    LABELS,
)
LAST_SUCCESSFUL_POLL = Gauge(
    "snowflake_processor_last_successful_poll_timestamp_seconds",
    "When the last poll reached Snowflake (Unix time)",
    LABELS,
)

# Not per resource: 1 while this replica holds the leader election Lease and acts.
LEADING = Gauge(
    "snowflake_processor_operator_leading",
    "1 while this operator replica holds the leader election Lease and acts",
)

_server_started = False


def serve(port: int) -> None:
    """Start the /metrics endpoint once per process; port 0 disables it."""
    global _server_started
    if port and not _server_started:
        start_http_server(port)
        _server_started = True


def record_poll(
    namespace: str,
    name: str,
    *,
    counts: QueueCounts | None,
    recovery: LeaseRecovery | None,
    running_jobs: int,
    pending_jobs: int,
    launched: int,
    statements: Tally[str],
    seconds: float,
    now: float,
    certificate_expiry: float | None,
    suspended: bool = False,
    idle: bool = False,
    job_limit: int | None = None,
    job_batches: Iterable[Mapping[str, Any]] = (),
) -> None:
    labels = (namespace, name)
    if job_limit is not None:
        JOB_LIMIT.labels(*labels).set(job_limit)
    for batches in job_batches:  # in the order the Jobs were counted: the last one stays
        if batches.get("claims"):
            WORKER_CLAIM_SIZE.labels(*labels).set(batches.get("claim_size_last") or 0)
        if batches.get("write_backs"):
            WORKER_WRITE_BACK_SIZE.labels(*labels).set(batches.get("write_back_size_mean") or 0)
    SUSPENDED.labels(*labels).set(1 if suspended else 0)
    IDLE.labels(*labels).set(1 if idle else 0)
    ACTIVE_JOBS.labels(*labels).set(running_jobs)
    PENDING_JOBS.labels(*labels).set(pending_jobs)
    JOBS_LAUNCHED.labels(*labels).inc(launched)
    RECONCILE_SECONDS.labels(*labels).observe(seconds)
    for kind, count in statements.items():
        STATEMENTS.labels(*labels, kind).inc(count)
    if recovery is not None:
        LEASES_RECOVERED.labels(*labels).inc(recovery.requeued)
        LEASES_DEAD_LETTERED.labels(*labels).inc(recovery.dead_lettered)
    if certificate_expiry is not None:
        CERTIFICATE_EXPIRY.labels(*labels).set(certificate_expiry)
    if counts is not None:
        BACKLOG.labels(*labels).set(counts.eligible)
        PENDING.labels(*labels).set(counts.pending)
        PROCESSING.labels(*labels).set(counts.processing)
        DEAD_LETTERS.labels(*labels).set(counts.failed)
        LAST_SUCCESSFUL_POLL.labels(*labels).set(now)


def forget(namespace: str, name: str) -> None:
    """Drop a deleted resource's series."""
    for metric in (
        BACKLOG,
        PENDING,
        PROCESSING,
        DEAD_LETTERS,
        ACTIVE_JOBS,
        PENDING_JOBS,
        JOBS_LAUNCHED,
        LEASES_RECOVERED,
        LEASES_DEAD_LETTERED,
        RECONCILE_SECONDS,
        CERTIFICATE_EXPIRY,
        LAST_SUCCESSFUL_POLL,
        SUSPENDED,
        IDLE,
        WORKER_CLAIM_SIZE,
        WORKER_WRITE_BACK_SIZE,
        JOB_LIMIT,
    ):
        with contextlib.suppress(KeyError):
            metric.remove(namespace, name)
