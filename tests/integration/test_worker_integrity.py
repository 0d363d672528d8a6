"""The worker under abuse: every entry it holds ends written back or released, whatever the
service does and however the run ends: an entry left held stays stuck until its lease
expires, and an outcome counted but not applied makes the summary lie.

Each test runs the real worker process against the Snowflake emulator and the local mTLS
service, which misbehaves on request: slow answers, trickled or huge bodies."""

from __future__ import annotations

import signal

from snowflake_devtools.mtls_service import fetch_stats
from snowflake_worker.constants import ERROR_TEXT_LIMIT
from tests.support.polling import wait_for
from tests.support.queues import fetch_rows, fill
from tests.support.worker_runs import WorkerWorld


def _all_released_untouched(workers: WorkerWorld, count: int) -> None:
    """Every entry back to pending, no claim token, no attempt charged, claimable now."""
    rows = fetch_rows(workers.queue)
    assert len(rows) == count
    held = [r for r in rows if r["status"] != "pending" or r["claim_token"] is not None]
    assert held == [], held
    assert all(r["retry_count"] == 0 for r in rows), rows
    assert workers.queue.counts(max_attempts=3).eligible == count


# -- SIGTERM with calls still in flight when the grace period ends ----------------------


def test_sigterm_releases_calls_still_in_flight_when_the_grace_period_ends(
    workers: WorkerWorld,
) -> None:
    fill(workers.queue, 8)
    service = workers.start_service(latency_ms=30_000)  # no call finishes in the grace period
    spec = workers.spec(service.port, concurrency=4, claim_batch=8, timeout_seconds=60)
    run = workers.start(spec, SFP_GRACE_SECONDS="1")
    wait_for(
        lambda: fetch_stats(service.port, workers.certs)["requests"] >= 4, 60, "calls in flight"
    )
    run.process.send_signal(signal.SIGTERM)
    code, stderr = run.wait(timeout=60)
    assert code == 0, stderr
    _all_released_untouched(workers, 8)
    summary = run.summary()
    assert summary["stop_reason"] == "sigterm"
    assert (summary["claimed"], summary["released"], summary["completed"]) == (8, 8, 0)


# -- the deadline bounds calls already in flight ----------------------------------------


def test_deadline_cuts_calls_in_flight_after_the_grace_period(workers: WorkerWorld) -> None:
    fill(workers.queue, 12)
    service = workers.start_service(latency_ms=8_000)  # slower than deadline + grace
    spec = workers.spec(service.port, concurrency=4, claim_batch=4, timeout_seconds=60)
    run = workers.start(spec, SFP_DEADLINE_SECONDS="2", SFP_GRACE_SECONDS="1")
    code, stderr = run.wait(timeout=120)
    assert code == 0, stderr
    summary = run.summary()
    assert summary["stop_reason"] == "deadline"
    # Nothing finished by deadline + grace: what it claimed went back, nothing more was done.
    assert summary["completed"] == 0, summary
    assert summary["released"] == summary["claimed"] > 0, summary
    _all_released_untouched(workers, 12)


# -- a total time limit per call --------------------------------------------------------


def test_a_trickling_answer_is_a_timeout_not_a_hold(workers: WorkerWorld) -> None:
    queue = workers.queue
    fill(queue, 5)
    queue.enqueue([("drip", {"trickle_seconds": 1})])  # 200, then a byte a second for 30 s
    service = workers.start_service()
    spec = workers.spec(service.port, timeout_seconds=2, retries=0, retry_delay_seconds=600)
    code, stderr = workers.start(spec).wait(timeout=120)
    assert code == 0, stderr
    rows = {r["id"]: r for r in fetch_rows(queue)}
    drip = rows.pop("drip")
    assert (drip["status"], drip["retry_count"], drip["claim_token"]) == ("pending", 1, None)
    assert "2 s" in drip["error_message"], drip
    assert all(r["status"] == "completed" for r in rows.values())


# -- response bodies are read only as far as they are kept -------------------------------


def test_a_huge_error_body_is_not_read_whole(workers: WorkerWorld) -> None:
    queue = workers.queue
    fill(queue, 5)
    huge = 200 * 1024 * 1024
    queue.enqueue([("huge", {"error_body_bytes": huge})])
    service = workers.start_service()
    code, stderr = workers.start(workers.spec(service.port)).wait(timeout=120)
    assert code == 0, stderr
    (row,) = fetch_rows(queue, "id = 'huge'")
    assert row["status"] == "failed"
    assert row["error_message"].startswith("HTTP 422: xxx")
    assert len(row["error_message"]) <= len("HTTP 422: ") + ERROR_TEXT_LIMIT
    # The worker hung up after what it keeps; the rest of the 200 MiB was never sent.
    sent = fetch_stats(service.port, workers.certs)["streamed_body_bytes"]
    assert sent < 20 * 1024 * 1024, sent
    assert queue.counts(max_attempts=3).completed == 5


# -- an unexpected error while preparing an entry counts as an attempt -----------------


def test_data_nested_too_deeply_is_a_dead_letter(workers: WorkerWorld) -> None:
    queue = workers.queue
    fill(queue, 5)
    queue.enqueue([("deep", "[" * 5000 + "]" * 5000)])  # a string holding JSON, 5000 deep
    service = workers.start_service()
    code, stderr = workers.start(workers.spec(service.port)).wait()
    assert code == 0, stderr
    (row,) = fetch_rows(queue, "id = 'deep'")
    assert (row["status"], row["claim_token"]) == ("failed", None), row
    assert "nested" in row["error_message"], row
    assert queue.counts(max_attempts=3).completed == 5


def test_an_unexpected_error_counts_as_an_attempt_and_can_dead_letter(
    workers: WorkerWorld,
) -> None:
    """NaN parses as Python JSON but cannot be sent as JSON: httpx refuses to encode it,
    an error the drain loop does not expect. With one attempt allowed, that attempt is the
    last: the entry is a dead letter with the error, not pending with attempts exhausted."""
    queue = workers.queue
    fill(queue, 5)
    queue.enqueue([("nan", '{"reading": NaN}')])
    service = workers.start_service()
    code, stderr = workers.start(workers.spec(service.port, max_attempts=1)).wait()
    assert code == 0, stderr
    (row,) = fetch_rows(queue, "id = 'nan'")
    assert (row["status"], row["retry_count"], row["claim_token"]) == ("failed", 1, None), row
    assert "ValueError" in row["error_message"], row
    assert queue.counts(max_attempts=1).completed == 5


# -- summaries count only outcomes that were applied ------------------------------------


def test_summaries_count_only_outcomes_that_were_applied(workers: WorkerWorld) -> None:
    """Worker A's slow half is taken over (lease recovered, worker B completes it) before
    A writes it back: A's write-back of those changes nothing, and its summary says so."""
    queue = workers.queue
    fast = fill(queue, 10, prefix="fast")
    queue.enqueue((f"slow{i:02d}", {"delay_seconds": 12}) for i in range(10))
    service = workers.start_service()
    spec = workers.spec(service.port, concurrency=20, claim_batch=20, timeout_seconds=30)
    first = workers.start(spec, name="job-a")
    wait_for(lambda: queue.counts(max_attempts=3).completed == len(fast), 60, "fast half done")
    assert queue.recover_expired_leases(lease_seconds=0, max_attempts=3).requeued == 10
    second = workers.start(spec, name="job-b")
    for run in (first, second):
        code, stderr = run.wait()
        assert code == 0, stderr
    a, b = first.summary(), second.summary()
    counts = queue.counts(max_attempts=3)
    assert (counts.completed, counts.pending, counts.processing) == (20, 0, 0)
    assert (a["claimed"], a["completed"], a["not_applied"]) == (20, 10, 10), a
    assert (b["claimed"], b["completed"], b["not_applied"]) == (10, 10, 0), b
    assert a["completed"] + b["completed"] == counts.completed
