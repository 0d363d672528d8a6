"""A warm worker (spec.job.minActiveJobs; SFP_IDLE_WAIT_SECONDS) waits on an empty queue
for new entries instead of exiting, then exits on its own: the real worker process against
the Snowflake emulator and the mTLS service."""

from __future__ import annotations

import time

from snowflake_devtools.mtls_service import fetch_stats
from tests.support.polling import wait_for
from tests.support.queues import fill
from tests.support.worker_runs import WorkerWorld


def test_a_warm_worker_takes_entries_that_arrive_while_it_waits(workers: WorkerWorld) -> None:
    queue = workers.queue
    fill(queue, 10)
    service = workers.start_service(latency_ms=5)
    spec = workers.spec(service.port, min_active_jobs=1, idle_wait_seconds=6)
    run = workers.start(spec)
    wait_for(lambda: queue.counts(max_attempts=3).completed == 10, timeout=60, what="10 done")
    assert run.process.poll() is None  # the queue is empty, and the worker still there
    fill(queue, 5, prefix="late")
    wait_for(lambda: queue.counts(max_attempts=3).completed == 15, timeout=30, what="late ones")
    waiting_since = time.monotonic()
    code, stderr = run.wait(timeout=60)
    assert code == 0, stderr
    assert time.monotonic() - waiting_since < 30  # it left on its own after the wait
    summary = run.summary()
    assert (summary["claimed"], summary["completed"]) == (15, 15), summary
    assert summary["stop_reason"] == "queue_empty"
    assert fetch_stats(service.port, workers.certs)["distinct_successes"] == 15


def test_without_warm_jobs_a_worker_exits_at_the_first_empty_claim(workers: WorkerWorld) -> None:
    fill(workers.queue, 10)
    service = workers.start_service(latency_ms=5)
    spec = workers.spec(service.port, idle_wait_seconds=600)  # no minActiveJobs: not used
    began = time.monotonic()
    code, stderr = workers.start(spec).wait(timeout=120)
    assert code == 0, stderr
    assert time.monotonic() - began < 120
    assert workers.queue.counts(max_attempts=3).completed == 10
