"""The real worker process against the Snowflake emulator and a real mTLS service."""

from __future__ import annotations

import signal
import time

from snowflake_devtools.certificates import write_untrusted_client
from snowflake_devtools.mtls_service import fetch_stats
from tests.support.polling import wait_for
from tests.support.queues import fetch_rows, fill, steady_processing_count
from tests.support.worker_runs import WorkerWorld


def test_several_workers_drain_the_queue_without_duplicates(workers: WorkerWorld) -> None:
    fill(workers.queue, 600)
    service = workers.start_service(latency_ms=5)
    spec = workers.spec(service.port, claim_batch=40)
    runs = [workers.start(spec, name=f"job-{i}") for i in range(3)]
    for run in runs:
        code, stderr = run.wait()
        assert code == 0, stderr
    counts = workers.queue.counts(max_attempts=3)
    summaries = [run.summary() for run in runs]
    assert (counts.completed, counts.pending, counts.processing, counts.failed) == (600, 0, 0, 0), (
        summaries,
        [run.stderr for run in runs],
    )
    stats = fetch_stats(service.port, workers.certs)
    assert stats["distinct_successes"] == 600
    assert stats["duplicates"] == 0
    assert stats["missing_idempotency_key"] == 0
    assert sum(s["claimed"] for s in summaries) == 600, summaries
    assert sum(s["completed"] for s in summaries) == 600, str(summaries)
    assert all(s["stop_reason"] == "queue_empty" for s in summaries)
    # batching: 600 entries cost a few dozen statements, not one per entry
    assert sum(s["snowflake_statements"] for s in summaries) < 100


def test_malformed_and_rejected_entries_fail_while_the_batch_goes_on(
    workers: WorkerWorld,
) -> None:
    queue = workers.queue
    fill(queue, 40)
    queue.enqueue(
        [("bad-json", '{"n": 1, broken'), ("null-data", None), ("poison", {"poison": True})]
    )
    service = workers.start_service()
    run = workers.start(workers.spec(service.port))
    code, stderr = run.wait()
    assert code == 0, stderr
    failed = {r["id"]: r for r in fetch_rows(queue, "status = 'failed'")}
    assert set(failed) == {"bad-json", "null-data", "poison"}
    assert "not valid JSON" in failed["bad-json"]["error_message"]
    assert "NULL" in failed["null-data"]["error_message"]
    assert "HTTP 422" in failed["poison"]["error_message"]
    assert queue.counts(max_attempts=3).completed == 40


def test_transient_errors_are_retried_then_released_for_later(workers: WorkerWorld) -> None:
    queue = workers.queue
    fill(queue, 20)
    service = workers.start_service(transient_rate=1.0)
    spec = workers.spec(service.port, retries=2, retry_delay_seconds=600)
    code, stderr = workers.start(spec).wait()
    assert code == 0, stderr
    rows = fetch_rows(queue)
    assert all(r["status"] == "pending" and r["retry_count"] == 1 for r in rows)
    assert all("HTTP 503" in r["error_message"] for r in rows)
    assert fetch_stats(service.port, workers.certs)["requests"] == 20 * 3  # first try + 2 retries
    assert queue.counts(max_attempts=3).eligible == 0  # next attempt is 10 minutes away


def test_untrusted_client_certificate_is_a_clear_fatal_error(workers: WorkerWorld) -> None:
    fill(workers.queue, 30)
    service = workers.start_service()
    untrusted = write_untrusted_client(workers.certs.ca_cert.parent.parent)
    run = workers.start(workers.spec(service.port), cert_dir=untrusted)
    code, stderr = run.wait()
    assert code == 1
    assert "Traceback" not in stderr
    assert "rejected the TLS connection" in stderr
    # nothing changed state because of it: every entry is back, attempts not counted
    rows = fetch_rows(workers.queue)
    assert all(r["status"] == "pending" and r["retry_count"] == 0 for r in rows)
    assert run.summary()["event"] == "fatal"


def test_sigterm_mid_batch_finishes_or_releases_everything(workers: WorkerWorld) -> None:
    queue = workers.queue
    fill(queue, 400)
    service = workers.start_service(latency_ms=300)
    spec = workers.spec(service.port, concurrency=4, claim_batch=100, grace_seconds=5)
    run = workers.start(spec)
    wait_for(lambda: queue.counts(max_attempts=3).processing > 0, 60, "entries in processing")
    time.sleep(1.0)  # calls in flight
    run.process.send_signal(signal.SIGTERM)
    code, stderr = run.wait(timeout=60)
    assert code == 0, stderr
    counts = queue.counts(max_attempts=3)
    assert counts.processing == 0
    assert counts.completed + counts.pending == 400
    assert 0 < counts.completed < 400
    summary = run.summary()
    assert summary["stop_reason"] == "sigterm"
    assert summary["completed"] == counts.completed
    assert summary["released"] == summary["claimed"] - summary["completed"] > 0
    assert all(r["retry_count"] == 0 for r in fetch_rows(queue, "status = 'pending'"))


def test_kill_9_mid_batch_loses_nothing_after_lease_recovery(workers: WorkerWorld) -> None:
    queue = workers.queue
    fill(queue, 300)
    service = workers.start_service(latency_ms=200)
    victim = workers.start(workers.spec(service.port, concurrency=4), name="victim")
    wait_for(lambda: queue.counts(max_attempts=3).processing > 0, 60, "entries in processing")
    time.sleep(1.0)
    victim.process.kill()
    victim.wait()
    # A statement the victim sent just before it died still runs on the server (on
    # Snowflake too): count what it holds once the table has stopped changing.
    held = steady_processing_count(queue)
    assert held > 0  # the crash left leases behind
    recovery = queue.recover_expired_leases(lease_seconds=0, max_attempts=3)
    assert recovery.requeued == held
    rescue = workers.start(workers.spec(service.port, concurrency=32), name="rescue")
    code, stderr = rescue.wait()
    assert code == 0, stderr
    counts = queue.counts(max_attempts=3)
    assert (counts.completed, counts.pending, counts.processing, counts.failed) == (300, 0, 0, 0)
    assert fetch_stats(service.port, workers.certs)["distinct_successes"] == 300
