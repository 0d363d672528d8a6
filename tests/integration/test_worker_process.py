"""The real worker process against the Snowflake emulator and a real mTLS service."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable

from snowflake_devtools.certificates import DemoCertificates, write_untrusted_client
from snowflake_devtools.mtls_service import fetch_stats
from snowflake_devtools.processes import ServerProcess
from snowflake_worker.identifiers import TableRef
from snowflake_worker.queue import QueueClient

from .conftest import WorkerRun, fetch_rows, make_spec


def _fill(queue: QueueClient, count: int) -> None:
    queue.enqueue((f"e{i:05d}", {"n": i}) for i in range(count))


def _wait_until(predicate: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.1)


def test_several_workers_drain_the_queue_without_duplicates(
    queue: QueueClient,
    queue_table: TableRef,
    snowflake_server: ServerProcess,
    start_service: Callable[..., ServerProcess],
    start_worker: Callable[..., WorkerRun],
    certs: DemoCertificates,
) -> None:
    _fill(queue, 600)
    service = start_service(latency_ms=5)
    spec = make_spec(snowflake_server.port, service.port, queue_table, claim_batch=40)
    runs = [start_worker(spec, name=f"job-{i}") for i in range(3)]
    for run in runs:
        code, stderr = run.wait()
        assert code == 0, stderr
    counts = queue.counts(max_attempts=3)
    summaries = [run.summary() for run in runs]
    assert (counts.completed, counts.pending, counts.processing, counts.failed) == (600, 0, 0, 0), (
        summaries,
        [run.stderr for run in runs],
    )
    stats = fetch_stats(service.port, certs)
    assert stats["distinct_successes"] == 600
    assert stats["duplicates"] == 0
    assert stats["missing_idempotency_key"] == 0
    assert sum(s["claimed"] for s in summaries) == 600, summaries
    assert sum(s["completed"] for s in summaries) == 600, str(summaries)
    assert all(s["stop_reason"] == "queue_empty" for s in summaries)
    # batching: 600 entries cost a few dozen statements, not one per entry
    assert sum(s["snowflake_statements"] for s in summaries) < 100


def test_malformed_and_rejected_entries_fail_while_the_batch_goes_on(
    queue: QueueClient,
    queue_table: TableRef,
    snowflake_server: ServerProcess,
    start_service: Callable[..., ServerProcess],
    start_worker: Callable[..., WorkerRun],
) -> None:
    _fill(queue, 40)
    queue.enqueue(
        [("bad-json", '{"n": 1, broken'), ("null-data", None), ("poison", {"poison": True})]
    )
    service = start_service()
    run = start_worker(make_spec(snowflake_server.port, service.port, queue_table))
    code, stderr = run.wait()
    assert code == 0, stderr
    failed = {r["id"]: r for r in fetch_rows(queue, "status = 'failed'")}
    assert set(failed) == {"bad-json", "null-data", "poison"}
    assert "not valid JSON" in failed["bad-json"]["error_message"]
    assert "NULL" in failed["null-data"]["error_message"]
    assert "HTTP 422" in failed["poison"]["error_message"]
    assert queue.counts(max_attempts=3).completed == 40


def test_transient_errors_are_retried_then_released_for_later(
    queue: QueueClient,
    queue_table: TableRef,
    snowflake_server: ServerProcess,
    start_service: Callable[..., ServerProcess],
    start_worker: Callable[..., WorkerRun],
    certs: DemoCertificates,
) -> None:
    _fill(queue, 20)
    service = start_service(transient_rate=1.0)
    spec = make_spec(
        snowflake_server.port, service.port, queue_table, retries=2, retry_delay_seconds=600
    )
    code, stderr = start_worker(spec).wait()
    assert code == 0, stderr
    rows = fetch_rows(queue)
    assert all(r["status"] == "pending" and r["retry_count"] == 1 for r in rows)
    assert all("HTTP 503" in r["error_message"] for r in rows)
    assert fetch_stats(service.port, certs)["requests"] == 20 * 3  # first try + 2 retries
    assert queue.counts(max_attempts=3).eligible == 0  # next attempt is 10 minutes away


def test_untrusted_client_certificate_is_a_clear_fatal_error(
    queue: QueueClient,
    queue_table: TableRef,
    snowflake_server: ServerProcess,
    start_service: Callable[..., ServerProcess],
    start_worker: Callable[..., WorkerRun],
    certs: DemoCertificates,
) -> None:
    _fill(queue, 30)
    service = start_service()
    untrusted = write_untrusted_client(certs.ca_cert.parent.parent)
    run = start_worker(
        make_spec(snowflake_server.port, service.port, queue_table), cert_dir=untrusted
    )
    code, stderr = run.wait()
    assert code == 1
    assert "Traceback" not in stderr
    assert "rejected the TLS connection" in stderr
    # nothing changed state because of it: every entry is back, attempts not counted
    rows = fetch_rows(queue)
    assert all(r["status"] == "pending" and r["retry_count"] == 0 for r in rows)
    assert run.summary()["event"] == "fatal"


def test_sigterm_mid_batch_finishes_or_releases_everything(
    queue: QueueClient,
    queue_table: TableRef,
    snowflake_server: ServerProcess,
    start_service: Callable[..., ServerProcess],
    start_worker: Callable[..., WorkerRun],
) -> None:
    _fill(queue, 400)
    service = start_service(latency_ms=300)
    spec = make_spec(
        snowflake_server.port,
        service.port,
        queue_table,
        concurrency=4,
        claim_batch=100,
        grace_seconds=5,
    )
    run = start_worker(spec)
    _wait_until(lambda: queue.counts(max_attempts=3).processing > 0)
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


def test_kill_9_mid_batch_loses_nothing_after_lease_recovery(
    queue: QueueClient,
    queue_table: TableRef,
    snowflake_server: ServerProcess,
    start_service: Callable[..., ServerProcess],
    start_worker: Callable[..., WorkerRun],
    certs: DemoCertificates,
) -> None:
    _fill(queue, 300)
    service = start_service(latency_ms=200)
    spec = make_spec(snowflake_server.port, service.port, queue_table, concurrency=4)
    victim = start_worker(spec, name="victim")
    _wait_until(lambda: queue.counts(max_attempts=3).processing > 0)
    time.sleep(1.0)
    victim.process.kill()
    victim.wait()
    held = queue.counts(max_attempts=3).processing
    assert held > 0  # the crash left leases behind
    recovery = queue.recover_expired_leases(lease_seconds=0, max_attempts=3)
    assert recovery.requeued == held
    rescue = start_worker(
        make_spec(snowflake_server.port, service.port, queue_table, concurrency=32), name="rescue"
    )
    code, stderr = rescue.wait()
    assert code == 0, stderr
    counts = queue.counts(max_attempts=3)
    assert (counts.completed, counts.pending, counts.processing, counts.failed) == (300, 0, 0, 0)
    assert fetch_stats(service.port, certs)["distinct_successes"] == 300
