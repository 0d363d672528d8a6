"""One worker process against the local mTLS service at 50 ms latency.

The ceiling is concurrency / latency (640 entries/s at concurrency 32, 2,560 at 128);
worker_efficiency is the share of it reached while draining. Statements per 1,000
entries come from the worker's own statement counter; CPU per entry from the CPU time
the worker reports for its drain (process start and imports excluded).

What else limits the rate on a shared machine is measured beside it: the CPU the service
and the emulator used meanwhile (as shares of a core), and ``service_floor_efficiency``,
the share of the ceiling a minimal aiohttp client (no Snowflake, no httpx) reaches right
after against the same service at the same concurrency: what the machine allowed then.
"""

from __future__ import annotations

import time
from typing import Any

from . import http_transports
from .harness import bench_environment

CONCURRENCY = 32
LATENCY_MS = 50.0


def run(entries: int = 6000, concurrency: int = CONCURRENCY) -> dict[str, Any]:
    with bench_environment(LATENCY_MS) as bench:
        queue, spec = bench.drain_setup("WORKER_BENCH", entries, concurrency)
        cpu_before = bench.server_cpu_seconds()
        started = time.monotonic()
        worker = bench.start_worker(spec, "bench-worker")
        code = worker.wait(timeout=600)
        wall = time.monotonic() - started
        server_cpu = bench.server_cpu_shares(cpu_before, wall)
        summary = bench.termination("bench-worker")
        counts = queue.counts(max_attempts=5)
        floor = http_transports.measure(
            "aiohttp", bench.service.port, bench.certs.client_dir, entries // 2, concurrency
        )
    if code != 0 or counts.completed != entries:
        raise RuntimeError(f"benchmark run failed: exit {code}, {counts}")
    ceiling = concurrency / (LATENCY_MS / 1000)
    drain_rate = summary["completed"] / summary["seconds"]
    cpu = summary.get("cpu_seconds")
    return {
        "entries": entries,
        "concurrency": concurrency,
        "latency_ms": LATENCY_MS,
        "drain_seconds": summary["seconds"],
        "process_wall_seconds": round(wall, 2),
        "entries_per_second": round(drain_rate, 1),
        "entries_per_second_incl_start": round(entries / wall, 1),
        "ceiling_entries_per_second": ceiling,
        "worker_efficiency": round(drain_rate / ceiling, 3),
        "cpu_seconds": cpu,
        "cpu_ms_per_entry": None if cpu is None else round(cpu * 1000 / entries, 3),
        "cpu_share_of_a_core": None if cpu is None else round(cpu / summary["seconds"], 2),
        **server_cpu,
        "service_floor_efficiency": round(floor["requests_per_second"] / ceiling, 3),
        "snowflake_statements": summary["snowflake_statements"],
        "statements_per_1000_entries": round(summary["snowflake_statements"] * 1000 / entries, 2),
        "statements_by_kind": summary["statements_by_kind"],
        "batches": summary.get("batches"),
    }
