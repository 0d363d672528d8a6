"""A fleet of Jobs on one queue table under Snowflake's table lock.

Snowflake runs UPDATE, DELETE and MERGE on one table one statement at a time, each holding
the lock for roughly 0.2-0.5 s; fakesnow answers in milliseconds and runs them side by
side. Here the emulator's model of Snowflake (snowflake_devtools/snowflake_model.py and
table_locks.py) puts the lock back: ``--lock-hold-ms 350`` makes every claim, write-back
and lease recovery hold the queue table's lock 0.35 s, one at a time; SELECTs and INSERTs
do not wait for it.

For 1, 2 and 4 Jobs (worker processes with the production defaults but concurrency 16)
on a fresh table, the drain rate is measured in steady state, read from the service's
success counter: from the moment 10% of the entries have been served until 90% have or
the first Job ends, whichever comes first (process starts excluded, and the end where a
Job that took its last claim early has run out of work while others still drain theirs:
a claim holds claimSeconds of work, so Jobs end up to that far apart). The lock's
utilization is the share of that window the table's lock was held (the model's held
seconds). The fixed-batch ceiling is what any fleet could reach with claims and
write-backs of a fixed ``FIXED_BATCH`` entries each (the defaults before batches were
sized by time): ``1 / (d * (1/B + 1/F))``.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from snowflake_devtools.mtls_service import STATS_PATH, client_ssl_context, fetch_stats
from snowflake_devtools.snowflake_emulator import fetch_model_stats
from snowflake_operator.poll.job_count import fixed_batch_ceiling

from .harness import Bench, bench_environment

LOCK_HOLD_SECONDS = 0.35
CONCURRENCY = 16
LATENCY_MS = 50.0
JOBS = (1, 2, 4)
FIXED_BATCH = 200  # the former defaults: claim 200, write back every 200 results
WINDOW = (0.1, 0.9)  # the share of the entries between which the rate is measured
POLL_SECONDS = 0.2


def run(entries_per_job: int = 10_000, hold_seconds: float = LOCK_HOLD_SECONDS) -> dict[str, Any]:
    locked = ("--lock-hold-ms", str(hold_seconds * 1000))
    with bench_environment(LATENCY_MS, snowflake_options=locked) as bench:
        runs = {str(jobs): _drain(bench, jobs, entries_per_job) for jobs in JOBS}
    ceiling = fixed_batch_ceiling(hold_seconds, FIXED_BATCH, FIXED_BATCH)
    most = runs[str(JOBS[-1])]
    return {
        "lock_hold_seconds": hold_seconds,
        "concurrency": CONCURRENCY,
        "latency_ms": LATENCY_MS,
        "jobs": {jobs: run["entries_per_second"] for jobs, run in runs.items()},
        "lock_utilization": most["lock_utilization"],
        "fixed_batch_ceiling": round(ceiling, 1),
        "ratio_to_fixed_batch_ceiling": round(most["entries_per_second"] / ceiling, 2),
        "ratio_to_one_job": round(most["entries_per_second"] / runs["1"]["entries_per_second"], 2),
        "runs": runs,
    }


def _drain(bench: Bench, jobs: int, entries_per_job: int) -> dict[str, Any]:
    total = jobs * entries_per_job
    # every Job may drain it all: the queue running dry ends them, not a budget
    queue, spec = bench.drain_setup(f"FLEET_{jobs}", total, CONCURRENCY)
    served_before = fetch_stats(bench.service.port, bench.certs)["successes"]
    names = [f"fleet-{jobs}-{k}" for k in range(jobs)]
    cpu_before = bench.server_cpu_seconds()
    started = time.monotonic()
    workers = [bench.start_worker(spec, name) for name in names]
    try:
        window = _steady_window(bench, workers, str(queue.table), served_before, total)
        codes = [worker.wait(timeout=600) for worker in workers]
        server_cpu = bench.server_cpu_shares(cpu_before, time.monotonic() - started)
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
    counts = queue.counts(max_attempts=5)
    if any(codes) or counts.completed != total or window is None:
        raise RuntimeError(f"fleet run with {jobs} Jobs failed: exits {codes}, {counts}")
    start, end = window
    seconds = end.time - start.time
    summaries = [bench.termination(name) for name in names]
    statements = sum(s["snowflake_statements"] for s in summaries)
    lock = _table_lock(bench, str(queue.table))
    return {
        "jobs": jobs,
        "entries": total,
        "entries_per_second": round((end.served - start.served) / seconds, 1),
        "lock_utilization": round((end.lock_held - start.lock_held) / seconds, 3),
        "window": {"served": [start.served, end.served], "seconds": round(seconds, 2)},
        "lock_statements": lock.get("acquired", 0),
        "lock_most_waiting": lock.get("most_waiting", 0),
        "statements_per_1000_entries": round(statements * 1000 / total, 2),
        "worker_seconds": [s["seconds"] for s in summaries],
        "worker_cpu_seconds": [s.get("cpu_seconds") for s in summaries],
        **server_cpu,
        "batches": [s.get("batches") for s in summaries],
    }


@dataclass(frozen=True)
class Mark:
    time: float
    served: int
    lock_held: float  # seconds the table's lock had been held


def _steady_window(
    bench: Bench,
    workers: Sequence[subprocess.Popen[bytes]],
    table: str,
    served_before: int,
    total: int,
) -> tuple[Mark, Mark] | None:
    """The marks where 10% of the entries had been served and where 90% had or the first
    worker ended; None if the run never got there."""
    low, high = (int(total * share) for share in WINDOW)
    # One kept-alive connection for the polls: a new mTLS handshake every poll would cost
    # the service (and this process) CPU the workers are measured for.
    url = f"https://127.0.0.1:{bench.service.port}{STATS_PATH}"
    with httpx.Client(verify=client_ssl_context(bench.certs), timeout=10.0) as stats:
        start: Mark | None = None
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline:
            served = int(stats.get(url).json()["successes"]) - served_before
            ended = any(worker.poll() is not None for worker in workers)
            if start is not None and (served >= high or ended):
                return start, _mark(bench, table, served)
            if ended:
                return None
            if start is None and served >= low:
                start = _mark(bench, table, served)
            time.sleep(POLL_SECONDS)
    return None


def _mark(bench: Bench, table: str, served: int) -> Mark:
    held = float(_table_lock(bench, table).get("held_seconds", 0.0))
    return Mark(time.monotonic(), served, held)


def _table_lock(bench: Bench, table: str) -> dict[str, Any]:
    """The model's lock figures for ``table`` (DATABASE.SCHEMA.TABLE)."""
    tables: dict[str, dict[str, Any]] = fetch_model_stats(bench.snowflake.port)["locks"]["tables"]
    return tables.get(table, {})
