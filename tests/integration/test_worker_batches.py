"""Claims sized by time and a pipelined worker: a claim holds the table's lock, so its
size follows the observed pace, and the next claim is under way before the inbox runs dry.

The real worker process against the Snowflake emulator; where the table's lock matters,
an emulator of the test's own whose model makes each UPDATE hold the lock (--lock-hold-ms).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from snowflake_devtools.mtls_service import fetch_stats
from snowflake_devtools.processes import ServerProcess
from snowflake_worker.identifiers import TableRef
from tests.support.queues import fill
from tests.support.snowflake import emulator, new_queue
from tests.support.worker_runs import WorkerRun, WorkerWorld, make_spec

pytestmark = pytest.mark.integration


@pytest.fixture
def locked_snowflake(tmp_path: Path) -> Iterator[ServerProcess]:
    """An emulator whose every UPDATE holds the table's lock 1 s."""
    with emulator(tmp_path, "--lock-hold-ms", "1000") as server:
        yield server


def test_claims_hold_claim_seconds_of_work_at_the_observed_pace(workers: WorkerWorld) -> None:
    """The first claim is claimBatch; later ones are sized by the pace the worker measured,
    so a fast worker sends few statements (fixed batches of 20 would need 100 claims)."""
    fill(workers.queue, 2000)
    service = workers.start_service()
    spec = workers.spec(
        service.port, claim_batch=20, claim_seconds=2, flush_seconds=1, flush_every=5000
    )
    run = workers.start(spec)
    code, stderr = run.wait()
    assert code == 0, stderr
    summary = run.summary()
    assert summary["completed"] == 2000
    batches = summary["batches"]
    assert batches["claim_size_first"] == 20
    assert batches["claim_size_max"] > 100, batches
    assert batches["claims"] < 20, batches
    assert batches["entries_per_second"] > 0, batches
    assert summary["statements_by_kind"]["claim"] < 2 * 20, summary  # one per claim (+ empty)
    # one UPDATE per write-back (two only past the bind limit, or retried)
    assert batches["write_backs"] <= summary["statements_by_kind"]["write_back"]
    assert batches["write_back_size_max"] > 100, batches  # on a time rhythm


def _stalls(run: WorkerRun, service: ServerProcess, workers: WorkerWorld, gap: float) -> int:
    """How often the service went ``gap`` seconds without a new call, from the worker's
    first call to its last."""
    stalls, last_count, last_change = 0, 0, None
    while run.process.poll() is None:
        count = fetch_stats(service.port, workers.certs)["requests"]
        now = time.monotonic()
        if count != last_count:
            if last_change is not None and now - last_change >= gap:
                stalls += 1
            last_count, last_change = count, now
        time.sleep(0.05)
    return stalls


def test_the_next_claim_is_under_way_before_the_inbox_runs_dry(
    workers: WorkerWorld, locked_snowflake: ServerProcess
) -> None:
    """Every claim and write-back holds the table's lock 1 s. 600 entries at 200 ms with 8
    callers are 15 s of work in claims of at most 150 (claimMax): a worker that claimed
    only once its inbox was nearly empty, on the thread its write-backs use, left the
    service idle for a claim's time at every batch. This one never does after its start."""
    table = TableRef("LOCKED", "QUEUE", "WORK_QUEUE")
    fill(new_queue(locked_snowflake.port, table), 600)
    service = workers.start_service(latency_ms=200)
    spec = make_spec(
        locked_snowflake.port,
        service.port,
        table,
        claim_batch=80,
        claim_max=150,
        claim_seconds=2,
        flush_seconds=2,
    )
    run = workers.start(spec)
    stalls = _stalls(run, service, workers, gap=0.6)
    code, stderr = run.wait()
    assert code == 0, stderr
    assert run.summary()["completed"] == 600
    assert stalls <= 1, stalls
