"""Throughput and service metrics, end to end: real workers drain a queue in the Snowflake
emulator through the real mTLS service (transient 503s, poison entries), as the Jobs the
operator launched; their termination messages reach the operator as the kubelet would
hand them over (on the pods in the Kubernetes emulator); the operator's /metrics is
scraped and checked against the summaries, the queue table and the service's own count."""

from __future__ import annotations

from typing import Any

import pytest

from snowflake_devtools.mtls_service import fetch_stats
from tests.support.operator_world import OperatorWorld
from tests.support.polling import wait_for
from tests.support.queues import fill
from tests.support.worker_runs import WorkerWorld

pytestmark = pytest.mark.integration

M = "snowflake_processor_"


def _total(summaries: list[dict[str, Any]], key: str) -> int:
    return sum(int(s[key]) for s in summaries)


def test_operator_metrics_after_real_worker_runs(
    world: OperatorWorld, workers: WorkerWorld
) -> None:
    queue = world.queue
    assert queue.table == workers.table
    fill(queue, 150)
    queue.enqueue([(f"poison-{i}", {"poison": True}) for i in range(3)])
    service = workers.start_service(latency_ms=15, transient_rate=0.2, seed=5)
    drained = world.create("drained", job={"entriesPerJob": 100, "maxActiveJobs": 2})
    with world.run():
        jobs = wait_for(lambda: len(drained.jobs()) == 2 and drained.jobs(), what="2 Jobs")
        # Each Job's worker, run here as the kubelet would run its pod.
        spec = workers.spec(service.port, retries=3)
        runs = [workers.start(spec, name=job.metadata.name) for job in jobs]
        for run in runs:
            code, stderr = run.wait()
            assert code == 0, stderr
        summaries = [run.summary() for run in runs]
        for job, summary in zip(jobs, summaries, strict=True):
            world.worker_pod(job, summary)
            world.finish(job)
        completed = _total(summaries, "completed")
        wait_for(
            lambda: drained.status().get("totals", {}).get("completed") == completed,
            what="the summaries counted",
        )
        values = wait_for(
            lambda: (
                (v := world.metrics("drained")).get(M + "entries_completed_total") == completed
                and v
            ),
            what="the metrics",
        )
        rate = wait_for(lambda: world.metrics("drained").get(M + "entries_per_second"))

    counts = queue.counts(max_attempts=3)
    assert completed == counts.completed
    # An entry whose four calls all met a 503 went back to pending (retried by a later Job).
    assert counts.completed + counts.pending == 150
    assert values[M + "entries_failed_total"] == _total(summaries, "failed") == counts.failed == 3
    released = _total(summaries, "released")
    assert values[M + "entries_released_total"] == released >= counts.pending
    assert drained.status()["totals"] == {"completed": completed, "failed": 3}

    # The service's answers, as the workers saw them and as the service itself counted them.
    stats = fetch_stats(service.port, workers.certs)
    by_class: dict[str, int] = {}
    for status, calls in stats["status_counts"].items():
        by_class[f"{status[0]}xx"] = by_class.get(f"{status[0]}xx", 0) + calls
    assert by_class["5xx"] > 0 and by_class["4xx"] == 3
    for kind in ("2xx", "3xx", "4xx", "5xx", "other", "error"):
        exported = values[M + f"service_responses_total[{kind}]"]
        assert exported == by_class.get(kind, 0), kind

    # Every call timed once, in the right buckets: the service took 15 ms or more each time.
    calls = _total(summaries, "http_calls")
    assert calls == stats["requests"]
    histogram = M + "service_call_duration_seconds"
    assert values[histogram + "_count"] == values[histogram + "_bucket[+Inf]"] == calls
    assert values[histogram + "_bucket[0.01]"] == 0
    assert values[histogram + "_sum"] == pytest.approx(
        sum(s["call_seconds"]["sum"] for s in summaries), abs=0.01
    )
    assert values[histogram + "_sum"] >= 0.015 * calls
    buckets = [v for k, v in values.items() if k.startswith(histogram + "_bucket")]
    assert buckets == sorted(buckets)  # cumulative

    # Entries settled per second: growth of completed + failed while the workers ran.
    assert 0 < rate <= 153
