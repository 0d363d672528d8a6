"""From a worker's summary to the operator's metrics: reading it defensively, re-bucketing
its latency histogram, the processing rate, and the Prometheus exposition."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any

import pytest
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from snowflake_operator.daemon import metrics
from snowflake_operator.daemon.processing_rate import RateWindow
from snowflake_operator.poll.job_history import JobRecord, JobReport, fold_summaries, job_event
from snowflake_operator.poll.worker_report import (
    CallLatency,
    call_latency,
    responses,
    service_report,
)
from snowflake_worker.call_stats import CALL_SECONDS_BUCKETS, CallStats

BUCKETS = len(CALL_SECONDS_BUCKETS) + 1


def _stats(*calls: tuple[int | None, float]) -> dict[str, Any]:
    stats = CallStats()
    for status, seconds in calls:
        stats.record(status, seconds)
    return stats.summary()


# -- reading a summary ---------------------------------------------------------------------


def test_a_summary_from_this_worker_reads_back_exactly() -> None:
    summary = _stats((200, 0.02), (200, 0.3), (503, 1.2), (None, 10.0), (422, 0.05))
    report = service_report(json.loads(json.dumps(summary)))  # as the kubelet keeps it
    assert report.responses == {"2xx": 2, "5xx": 1, "error": 1, "4xx": 1}
    assert report.latency.calls == 5
    assert report.latency.seconds == pytest.approx(11.57)
    assert report.latency.counts[CALL_SECONDS_BUCKETS.index(0.025)] == 1
    assert report.latency.counts[CALL_SECONDS_BUCKETS.index(10.0)] == 1


def test_a_worker_with_other_bounds_lands_in_the_first_bucket_that_holds_each() -> None:
    latency = call_latency({"le": [0.02, 0.5, 120.0], "counts": [1, 2, 3, 4], "sum": 9.5})
    assert latency.calls == 10 and latency.seconds == 9.5
    assert latency.counts[CALL_SECONDS_BUCKETS.index(0.025)] == 1  # le 0.02 -> le 0.025
    assert latency.counts[CALL_SECONDS_BUCKETS.index(0.5)] == 2  # the same bound
    assert latency.counts[-1] == 3 + 4  # beyond the operator's last bound, and +Inf


@pytest.mark.parametrize(
    "value",
    [
        None,
        "5",
        {"le": [0.1], "counts": [1], "sum": 1.0},  # one count short
        {"le": [0.1, 0.05], "counts": [1, 1, 1], "sum": 1.0},  # bounds not ascending
        {"le": [0.1], "counts": [1, -2], "sum": 1.0},
        {"le": [0.1], "counts": [1, True], "sum": 1.0},
        {"le": ["x"], "counts": [1, 1], "sum": 1.0},
        {"le": [0.1], "counts": [1, 1], "sum": math.nan},
    ],
)
def test_a_malformed_histogram_counts_nothing(value: Any) -> None:
    assert call_latency(value) == CallLatency()


def test_unknown_status_classes_count_as_other_and_bad_counts_not_at_all() -> None:
    assert responses({"2xx": 3, "7xx": 2, "teapot": 1, "5xx": -1, "4xx": "9"}) == {
        "2xx": 3,
        "other": 3,
    }
    assert responses(["2xx"]) == {}


def test_folding_keeps_released_counts_the_service_part_and_a_fatal_error() -> None:
    now = "2026-11-26T12:00:00Z"
    records = [
        JobRecord("a", now, finished=True, succeeded=True, finished_at=now),
        JobRecord("b", now, finished=True, succeeded=False, finished_at=now),
    ]
    summary_a = {"event": "summary", "completed": 7, "failed": 1, "released": 2}
    summary_a.update(_stats((200, 0.01), (200, 0.01), (503, 2.0)))
    fatal = {"event": "fatal", "error": "header file 'Content-Type' is set by the worker"}
    folded = fold_summaries(
        records, {"a": json.dumps(summary_a), "b": json.dumps(fatal)}, datetime.now(UTC)
    )
    report_a, report_b = folded.reports
    assert (report_a.completed, report_a.failed, report_a.released) == (7, 1, 2)
    assert report_a.service.responses == {"2xx": 2, "5xx": 1}
    assert report_a.error is None
    assert report_b.error == fatal["error"]
    assert job_event(report_b) == (
        "Warning",
        "JobFailed",
        "Job b failed: its worker stopped: header file 'Content-Type' is set by the worker",
    )


# -- the processing rate -------------------------------------------------------------------


def test_the_rate_is_the_growth_of_settled_rows_over_the_window() -> None:
    window = RateWindow(window_seconds=60)
    assert window.add(0, 100) is None  # one sample: no rate yet
    assert window.add(10, 150) == 5.0
    assert window.add(20, 250) == 7.5  # (250 - 100) / 20
    for at in range(30, 200, 10):
        rate = window.add(at, 250)  # nothing more settled
    assert rate == 0.0  # the growth has slid out of the window
    assert window.add(210, 370) == 2.0  # since 150 s, the newest sample a window old


def test_rows_leaving_the_table_start_the_window_again() -> None:
    window = RateWindow(window_seconds=60)
    window.add(0, 1000)
    window.add(10, 1100)
    assert window.add(20, 40) is None  # a purge removed completed rows
    assert window.add(30, 60) == 2.0


# -- the exposition ------------------------------------------------------------------------


def _samples(processor: str) -> dict[str, float]:
    text = generate_latest(REGISTRY).decode()
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.labels.get("processor") != processor:
                continue
            extra = [v for k, v in sorted(sample.labels.items()) if k not in metrics.LABELS]
            found[sample.name + (f"[{','.join(extra)}]" if extra else "")] = sample.value
    return found


def _report(name: str, completed: int, summary: dict[str, Any]) -> JobReport:
    return JobReport(
        name,
        True,
        completed,
        failed=1,
        summary_seen=True,
        released=2,
        service=service_report(summary),
    )


def test_every_series_exists_at_zero_from_the_first_poll() -> None:
    metrics.record_worker_reports(("ns", "fresh"), [])
    values = _samples("fresh")
    assert values["snowflake_processor_entries_completed_total"] == 0
    assert values["snowflake_processor_service_responses_total[5xx]"] == 0
    assert values["snowflake_processor_service_call_duration_seconds_count"] == 0
    assert values["snowflake_processor_service_call_duration_seconds_bucket[+Inf]"] == 0


def test_reports_add_up_across_jobs_and_forget_removes_every_series() -> None:
    labels = ("ns", "summed")
    first = _stats((200, 0.02), (200, 0.02), (503, 3.0))
    second = _stats((200, 0.2), (None, 12.0))
    metrics.record_worker_reports(labels, [_report("a", 5, first)])
    metrics.record_worker_reports(labels, [_report("b", 4, second)])
    values = _samples("summed")
    assert values["snowflake_processor_entries_completed_total"] == 9
    assert values["snowflake_processor_entries_failed_total"] == 2
    assert values["snowflake_processor_entries_released_total"] == 4
    assert values["snowflake_processor_service_responses_total[2xx]"] == 3
    assert values["snowflake_processor_service_responses_total[5xx]"] == 1
    assert values["snowflake_processor_service_responses_total[error]"] == 1
    assert values["snowflake_processor_service_call_duration_seconds_count"] == 5
    assert values["snowflake_processor_service_call_duration_seconds_sum"] == pytest.approx(15.24)
    assert values["snowflake_processor_service_call_duration_seconds_bucket[0.025]"] == 2
    assert values["snowflake_processor_service_call_duration_seconds_bucket[2.5]"] == 3
    assert values["snowflake_processor_service_call_duration_seconds_bucket[10.0]"] == 4
    assert values["snowflake_processor_service_call_duration_seconds_bucket[+Inf]"] == 5
    metrics.forget(*labels)
    assert _samples("summed") == {}
