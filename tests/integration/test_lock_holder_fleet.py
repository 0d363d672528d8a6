"""A fleet of real workers survives a statement that holds the queue table's lock for 150 s
(a purge of a large table, a migration's backfill, a queueing warehouse).

Time runs 60 times faster than on Snowflake: each worker waits 2.5 s for the lock, and every
Snowflake timeout the worker has is given to it at a sixtieth of its default (so the
connector's own timer, the server's LOCK_TIMEOUT and STATEMENT_TIMEOUT_IN_SECONDS keep
their proportions). The emulator's model bounds a lock wait by the session's parameters
and ends it with 000604 when the connector's timer cancels the statement, as Snowflake does.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from snowflake_worker.snowflake_settings import SnowflakeSettings
from tests.support.polling import wait_for
from tests.support.queues import fill
from tests.support.snowflake import location, model_stats
from tests.support.worker_runs import WorkerWorld

pytestmark = pytest.mark.integration

TIME_SCALE = 1 / 60
HOLD_SECONDS = 150 * TIME_SCALE
ENTRIES = 1500
WORKERS = 4


def scaled_snowflake_timeouts(scale: float) -> dict[str, str]:
    """The worker's Snowflake timeouts (all but the login's) at ``scale`` of their defaults,
    as the environment a Job gets; a timeout with no default (derived) is left to derive."""
    found = {}
    for name, field in SnowflakeSettings.model_fields.items():
        default = field.get_default(call_default_factory=False)
        if not name.endswith("_timeout_seconds") or name.startswith("login") or default is None:
            continue
        found[f"SFP_SNOWFLAKE_{name.upper()}"] = str(max(1, round(default * scale)))
    return found


def waiting_now(port: int, workers: WorkerWorld) -> int:
    """Statements waiting for the queue table's lock at this moment."""
    tables = model_stats(port)["locks"]["tables"]
    return int(tables.get(str(workers.table), {}).get("waiting", 0))


def lock_waits_timed_out(port: int) -> int:
    """Waits for a lock the emulator ended by LOCK_TIMEOUT or the statement timeout."""
    return int(model_stats(port)["locks"]["timed_out"])


def hold_lock(connect: Callable[..., Any], workers: WorkerWorld) -> Any:
    """Take the queue table's lock in an open transaction (COMMIT lets go of it)."""
    holder = connect(**location(workers.table), autocommit=False)
    holder.cursor().execute(
        f"UPDATE {workers.table.sql} SET processor_id = processor_id WHERE 1 = 0"
    )
    return holder


@pytest.mark.parametrize("when", ["at_start", "mid_run"])
def test_workers_survive_a_150_second_lock_holder(
    workers: WorkerWorld, snowflake_connect: Callable[..., Any], when: str
) -> None:
    """The holder keeps the lock until every worker has a statement waiting for it, then
    150 s (scaled) more: each worker waits the whole 150 s. ``at_start``: the Jobs start
    while it holds the lock (their first claim waits); ``mid_run``: they hold entries."""
    queue = workers.queue
    fill(queue, ENTRIES)
    service = workers.start_service(latency_ms=100)
    spec = workers.spec(service.port, claim_batch=40, claim_max=40)  # claims all along
    timeouts = scaled_snowflake_timeouts(TIME_SCALE)
    port = workers.snowflake_port
    timed_out_before = lock_waits_timed_out(port)
    holder = hold_lock(snowflake_connect, workers) if when == "at_start" else None
    started = time.monotonic()
    runs = [workers.start(spec, name=f"job-{i}", **timeouts) for i in range(WORKERS)]
    if holder is None:
        wait_for(lambda: queue.counts(max_attempts=3).completed >= 200, timeout=60)
        holder = hold_lock(snowflake_connect, workers)
    running = lambda: sum(run.process.poll() is None for run in runs)  # noqa: E731
    wait_for(lambda: waiting_now(port, workers) >= running(), 60, "every worker waits")
    time.sleep(HOLD_SECONDS)
    held = queue.counts(max_attempts=3).processing
    holder.cursor().execute("COMMIT")
    results = [run.wait(timeout=180) for run in runs]
    counts = queue.counts(max_attempts=3)
    summaries = [run.summary() for run in runs]
    record = {
        "when": when,
        "timeouts": timeouts,
        "rows_held_during_the_hold": held,
        "exit_codes": [code for code, _ in results],
        "stop_reasons": [s.get("stop_reason", s.get("event")) for s in summaries],
        "rows_held_after_exit": counts.processing,
        "completed": counts.completed,
        "pending": counts.pending,
        "seconds": round(time.monotonic() - started, 1),
        "cancelled_by_the_client": sum(err.count("000604") for _, err in results),
        "lock_waits_timed_out": lock_waits_timed_out(port) - timed_out_before,
    }
    print(json.dumps(record))  # the before/after numbers (pytest -s shows them)
    assert record["exit_codes"] == [0] * WORKERS, (record, [err[-2000:] for _, err in results])
    assert counts.processing == 0, record
    assert (counts.completed, counts.pending, counts.failed) == (ENTRIES, 0, 0), record


def test_a_worker_whose_claims_wait_out_every_retry_stops_cleanly(
    workers: WorkerWorld, snowflake_connect: Callable[..., Any]
) -> None:
    """A lock held longer than all of a claim's retries (each waiting LOCK_TIMEOUT) ends
    the Job with exit 0 and a reason, holding nothing, not as a fatal error."""
    queue = workers.queue
    fill(queue, 50)
    service = workers.start_service()
    holder = hold_lock(snowflake_connect, workers)
    run = workers.start(workers.spec(service.port), **scaled_snowflake_timeouts(TIME_SCALE))
    code, stderr = run.wait(timeout=120)
    holder.cursor().execute("COMMIT")
    summary = run.summary()
    assert code == 0, stderr[-2000:]
    assert summary["stop_reason"] == "table_busy", summary
    assert summary["claimed"] == 0
    counts = queue.counts(max_attempts=3)
    assert (counts.pending, counts.processing) == (50, 0)
