"""Prometheus metrics of the operator, labelled by the resource they describe.

The chart's PrometheusRule alerts on these names, and its Grafana dashboard charts them;
keep them stable. Workers live minutes, too short to be scraped: what they did (entries,
the service's answers, call latency) comes from their summaries, added here once per
finished Job when the poll folds them into the resource's totals.
"""

from __future__ import annotations

import contextlib
import threading
from collections import Counter as Tally
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from prometheus_client import REGISTRY, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import HistogramMetricFamily
from prometheus_client.registry import Collector

from snowflake_operator.poll.job_history import JobReport
from snowflake_operator.poll.worker_report import CallLatency
from snowflake_worker.call_stats import CALL_SECONDS_BUCKETS, STATUS_CLASSES
from snowflake_worker.queue_records import LeaseRecovery, QueueCounts

from .processing_rate import RateWindow

LABELS = ("namespace", "processor")

BACKLOG = Gauge("snowflake_processor_backlog", "Entries eligible to be claimed now", LABELS)
PENDING = Gauge("snowflake_processor_pending", "Entries with status pending", LABELS)
PROCESSING = Gauge("snowflake_processor_processing", "Entries claimed, not finished", LABELS)
DEAD_LETTERS = Gauge(
    "snowflake_processor_dead_letters", "Entries that failed for good (status failed)", LABELS
)
STRANDED = Gauge(
    "snowflake_processor_stranded_entries",
    "Pending entries that have used all maxAttempts attempts: never claimed again",
    LABELS,
)
ACTIVE_JOBS = Gauge(
    "snowflake_processor_active_jobs", "Unfinished Jobs whose pod is running (ready)", LABELS
)
PENDING_JOBS = Gauge(
    "snowflake_processor_pending_jobs",
    "Unfinished Jobs whose pod is not ready yet (Fargate still starting it)",
    LABELS,
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
# From the summaries of finished Jobs: the batch sizes their workers chose.
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

# -- what the workers did, from their summaries ---------------------------------------------

ENTRIES_COMPLETED = Counter(
    "snowflake_processor_entries_completed",
    "Entries completed by workers (from the summaries of finished Jobs)",
    LABELS,
)
ENTRIES_FAILED = Counter(
    "snowflake_processor_entries_failed",
    "Entries dead-lettered by workers (from the summaries of finished Jobs)",
    LABELS,
)
ENTRIES_RELEASED = Counter(
    "snowflake_processor_entries_released",
    "Entries workers handed back to the queue for a later attempt (from their summaries)",
    LABELS,
)
SERVICE_RESPONSES = Counter(
    "snowflake_processor_service_responses",
    "Calls to the service by how they ended: 2xx, 3xx, 4xx, 5xx, other, or error (no "
    "answer: timeout, connection or TLS failure); retries included",
    (*LABELS, "status_class"),
)
CALL_SECONDS_NAME = "snowflake_processor_service_call_duration_seconds"
CALL_SECONDS_HELP = "Wall time of one call to the service, answer included (from the workers)"
PROCESSING_RATE = Gauge(
    "snowflake_processor_entries_per_second",
    "Entries settled (completed or failed) per second over the last 5 minutes, from the "
    "queue's counts at each poll",
    LABELS,
)


class CallLatencyCollector(Collector):
    """The workers' call latency as a Prometheus histogram. prometheus_client's Histogram
    takes one observation at a time; workers send bucket counts, added here as they are."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._series: dict[tuple[str, str], CallLatency] = {}

    def add(self, labels: tuple[str, str], latency: CallLatency) -> None:
        with self._lock:
            before = self._series.get(labels, CallLatency())
            counts = tuple(a + b for a, b in zip(before.counts, latency.counts, strict=True))
            self._series[labels] = CallLatency(counts, before.seconds + latency.seconds)

    def forget(self, labels: tuple[str, str]) -> None:
        with self._lock:
            self._series.pop(labels, None)

    def describe(self) -> Iterable[HistogramMetricFamily]:
        return [HistogramMetricFamily(CALL_SECONDS_NAME, CALL_SECONDS_HELP, labels=LABELS)]

    def collect(self) -> Iterator[HistogramMetricFamily]:
        family = HistogramMetricFamily(CALL_SECONDS_NAME, CALL_SECONDS_HELP, labels=LABELS)
        with self._lock:
            series = dict(self._series)
        for labels, latency in sorted(series.items()):
            cumulative, buckets = 0, []
            bounds = [*CALL_SECONDS_BUCKETS, float("inf")]
            for bound, count in zip(bounds, latency.counts, strict=True):
                cumulative += count
                buckets.append((_le(bound), float(cumulative)))
            family.add_metric(list(labels), buckets, latency.seconds)
        yield family


def _le(bound: float) -> str:
    """A bucket's bound as prometheus_client writes it: 0.01, 1.0, +Inf."""
    return "+Inf" if bound == float("inf") else repr(float(bound))


CALL_SECONDS = CallLatencyCollector()
REGISTRY.register(CALL_SECONDS)

_rates: dict[tuple[str, str], RateWindow] = {}
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
    reports: Iterable[JobReport] = (),
) -> None:
    labels = (namespace, name)
    if job_limit is not None:
        JOB_LIMIT.labels(*labels).set(job_limit)
    record_worker_reports(labels, reports)
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
        STRANDED.labels(*labels).set(counts.stranded)
        LAST_SUCCESSFUL_POLL.labels(*labels).set(now)
        rate = _rates.setdefault(labels, RateWindow()).add(now, counts.completed + counts.failed)
        if rate is not None:
            PROCESSING_RATE.labels(*labels).set(rate)
    elif suspended:
        _rates.pop(labels, None)
        PROCESSING_RATE.labels(*labels).set(0)


def record_worker_reports(labels: tuple[str, str], reports: Iterable[JobReport]) -> None:
    """Add each counted Job's summary once. Every series exists from the first poll on, at
    0, so that rate() and increase() see the first Job's counts too."""
    completed, failed, released = (
        m.labels(*labels) for m in (ENTRIES_COMPLETED, ENTRIES_FAILED, ENTRIES_RELEASED)
    )
    responses = {kind: SERVICE_RESPONSES.labels(*labels, kind) for kind in STATUS_CLASSES}
    CALL_SECONDS.add(labels, CallLatency())
    for report in reports:
        completed.inc(report.completed)
        failed.inc(report.failed)
        released.inc(report.released)
        for kind, calls in report.service.responses.items():
            responses[kind].inc(calls)
        CALL_SECONDS.add(labels, report.service.latency)
        _record_batch_sizes(labels, report.batches)


def _record_batch_sizes(labels: tuple[str, str], batches: Mapping[str, Any]) -> None:
    """The sizes the last counted Job's worker chose (reports come in counting order)."""
    if batches.get("claims"):
        WORKER_CLAIM_SIZE.labels(*labels).set(batches.get("claim_size_last") or 0)
    if batches.get("write_backs"):
        WORKER_WRITE_BACK_SIZE.labels(*labels).set(batches.get("write_back_size_mean") or 0)


def forget(namespace: str, name: str) -> None:
    """Drop a deleted resource's series."""
    for metric in (
        BACKLOG,
        PENDING,
        PROCESSING,
        DEAD_LETTERS,
        STRANDED,
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
        ENTRIES_COMPLETED,
        ENTRIES_FAILED,
        ENTRIES_RELEASED,
        PROCESSING_RATE,
    ):
        with contextlib.suppress(KeyError):
            metric.remove(namespace, name)
    for kind in STATUS_CLASSES:
        with contextlib.suppress(KeyError):
            SERVICE_RESPONSES.remove(namespace, name, kind)
    CALL_SECONDS.forget((namespace, name))
    _rates.pop((namespace, name), None)
