"""One worker process, concurrency 32, against the local mTLS service at 50 ms latency.

The ceiling is concurrency / latency = 640 entries/s; worker_efficiency is the share of
it reached. Statements per 1,000 entries come from the worker's own statement counter.
"""

from __future__ import annotations

import time
from typing import Any

from snowflake_devtools.specs import emulator_spec

from .harness import bench_environment

CONCURRENCY = 32
LATENCY_MS = 50.0


def run(entries: int = 6000) -> dict[str, Any]:
    with bench_environment(LATENCY_MS) as bench:
        queue = bench.fresh_queue("WORKER_BENCH")
        queue.enqueue((f"b{i:06d}", {"n": i, "text": "x" * 64}) for i in range(entries))
        spec = emulator_spec(
            queue.table,
            bench.snowflake.port,
            bench.service.port,
            job={"entries_per_job": entries, "concurrency": CONCURRENCY},
        )  # otherwise the production defaults: claim and flush 200
        started = time.monotonic()
        worker = bench.start_worker(spec, "bench-worker")
        code = worker.wait(timeout=600)
        wall = time.monotonic() - started
        summary = bench.termination("bench-worker")
        counts = queue.counts(max_attempts=5)
    if code != 0 or counts.completed != entries:
        raise RuntimeError(f"benchmark run failed: exit {code}, {counts}")
    ceiling = CONCURRENCY / (LATENCY_MS / 1000)
    drain_rate = summary["completed"] / summary["seconds"]
    return {
        "entries": entries,
        "concurrency": CONCURRENCY,
        "latency_ms": LATENCY_MS,
        "drain_seconds": summary["seconds"],
        "process_wall_seconds": round(wall, 2),
        "entries_per_second": round(drain_rate, 1),
        "entries_per_second_incl_start": round(entries / wall, 1),
        "ceiling_entries_per_second": ceiling,
        "worker_efficiency": round(drain_rate / ceiling, 3),
        "snowflake_statements": summary["snowflake_statements"],
        "statements_per_1000_entries": round(summary["snowflake_statements"] * 1000 / entries, 2),
        "statements_by_kind": summary["statements_by_kind"],
    }
