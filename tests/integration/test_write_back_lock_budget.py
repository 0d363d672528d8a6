"""Stored answers and the table's lock: a flush of 16 KB answers is many UPDATEs, each
holding the queue table's lock, and the operator's Job limit counts them.

The real worker process stores 16 KB answers of the real mTLS service into an emulator
whose every locking statement holds the table's lock at least 50 ms; the emulator's model
reports the statements that took the lock and how long they held it. Scaled from 5,000
outcomes per flush to 500 (two flushes of 1,000 entries): statements per flush scale with
the outcomes, lock time per statement does not.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from snowflake_devtools.processes import ServerProcess
from snowflake_operator.poll.job_count import (
    job_limit,
    jobs_within_lock_share,
    spec_write_backs_per_flush,
)
from snowflake_operator.spec.model import ProcessorSpec
from snowflake_worker.identifiers import TableRef
from tests.support.snowflake import emulator, model_stats, new_queue
from tests.support.worker_runs import WorkerWorld, make_spec

pytestmark = pytest.mark.integration

ENTRIES = 1000
FLUSH_EVERY = 500
ANSWER_BYTES = 16384
# How the operator plans a busy Job: a flush every 10 s, a claim every 15 s.
PLANNED_FLUSH_SECONDS = 10.0
LOCK_SHARE = 0.6


@pytest.fixture
def held_snowflake(tmp_path: Path) -> Iterator[ServerProcess]:
    """An emulator whose every UPDATE holds the table's lock at least 50 ms."""
    with emulator(tmp_path, "--lock-hold-ms", "50") as server:
        yield server


def _planned(spec: ProcessorSpec, hold_seconds: float) -> ProcessorSpec:
    """The run's spec as a Job of a busy fleet would be planned, with the lock hold time
    the emulator measured."""
    queue = spec.queue.model_copy(update={"lock_hold_seconds": hold_seconds})
    queue = queue.model_copy(update={"lock_share": LOCK_SHARE, "claim_seconds": 15.0})
    job = spec.job.model_copy(
        update={"flush_seconds": PLANNED_FLUSH_SECONDS, "max_active_jobs": 19}
    )
    return spec.model_copy(update={"queue": queue, "job": job})


def _lock_figures(port: int, table: TableRef) -> dict[str, Any]:
    figures: dict[str, Any] = model_stats(port)["locks"]["tables"][str(table)]
    return figures


def test_the_job_limit_counts_the_lock_time_of_stored_answers(
    workers: WorkerWorld, held_snowflake: ServerProcess
) -> None:
    table = TableRef("HELD", "QUEUE", "WORK_QUEUE")
    queue = new_queue(held_snowflake.port, table)
    data = {"response_bytes": ANSWER_BYTES}
    assert queue.enqueue((f"a{i:05d}", data) for i in range(ENTRIES)) == ENTRIES
    before = _lock_figures(held_snowflake.port, table)  # the table's setup and the enqueue
    service = workers.start_service()
    spec = make_spec(
        held_snowflake.port,
        service.port,
        table,
        endpoint={"store_response_bytes": ANSWER_BYTES},
        claim_batch=ENTRIES,
        claim_max=ENTRIES,
        flush_every=FLUSH_EVERY,
        flush_seconds=60,  # flushes of FLUSH_EVERY outcomes, not of whatever 0.5 s brings
    )
    run = workers.start(spec)
    code, stderr = run.wait(timeout=300)
    assert code == 0, stderr
    summary = run.summary()
    assert summary["completed"] == ENTRIES

    by_kind = summary["statements_by_kind"]
    write_backs = by_kind.get("write_back_result", 0) + by_kind.get("write_back", 0)
    flushes = summary["batches"]["write_backs"]
    after = _lock_figures(held_snowflake.port, table)
    lock = {key: after[key] - before[key] for key in ("acquired", "held_seconds")}
    hold = lock["held_seconds"] / lock["acquired"]
    # The worker's statements that took the lock: its claims and its write-backs.
    assert lock["acquired"] == write_backs + by_kind["claim"]
    # ASCII answers: 32 outcomes of about 16.6 KB per 512 KiB statement.
    per_flush = write_backs / flushes
    assert per_flush >= math.ceil(FLUSH_EVERY / 32) - 1  # many statements, not one
    print(
        f"\n{ENTRIES} outcomes of {ANSWER_BYTES}-byte answers: {write_backs} write-backs in "
        f"{flushes} flushes ({per_flush:.1f} per flush), {lock['acquired']} statements took "
        f"the lock for {lock['held_seconds']:.2f} s ({hold * 1000:.1f} ms each)"
    )

    # What the measured lock time allows: one Job holds a claim's hold every 15 s and a
    # flush's measured lock time every 10 s; lockShare of the lock admits this many Jobs.
    planned = _planned(spec, hold)
    flush_lock_seconds = hold * per_flush
    per_job = hold / planned.queue.claim_seconds + flush_lock_seconds / PLANNED_FLUSH_SECONDS
    allowed = max(1, math.floor(LOCK_SHARE / per_job))
    # The budget counts at least the statements a flush sent, so its Job limit stays
    # within what the measured lock time allows ...
    assert spec_write_backs_per_flush(planned) >= per_flush
    assert job_limit(planned) <= allowed
    # ... where one statement per flush (the budget before it counted bytes) admitted more.
    one_per_flush = jobs_within_lock_share(
        LOCK_SHARE, hold, planned.queue.claim_seconds, PLANNED_FLUSH_SECONDS
    )
    assert min(19, one_per_flush) > allowed
    print(
        f"measured lock per Job {per_job:.3f} -> {allowed} Jobs within {LOCK_SHARE}; "
        f"jobLimit {job_limit(planned)} (one write-back per flush: {min(19, one_per_flush)})"
    )
