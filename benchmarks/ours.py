"""Our pipeline on the comparison workload: the real reconcile loop with local Jobs.

The same loop as `make demo` (snowflake_operator.poll.run.run_poll through local_poll, with
LocalJobBackend, every ``POLL_SECONDS`` like the legacy design baseline's tick), with
production-like settings: 1,000 entries per Job, at most 4 Jobs, 32 calls in flight per
Job, the production defaults otherwise (claim and flush 200, lease 900 s). Figures come
from the workers' termination messages and the operator's own QueueClient; the enqueue
is not counted (neither is the legacy design's).
"""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime
from typing import Any

from snowflake_devtools.backend import LocalJobBackend
from snowflake_devtools.local_poll import local_poll
from snowflake_devtools.mtls_service import fetch_stats
from snowflake_devtools.specs import emulator_spec
from snowflake_worker.connection import connect
from snowflake_worker.queue import QueueClient

from .fargate_model import OURS_JOB, OURS_JOB_BEFORE, fargate_cost
from .harness import Bench

ENTRIES_PER_JOB = 1000
MAX_ACTIVE_JOBS = 4
CONCURRENCY = 32
POLL_SECONDS = 2


def run(
    bench: Bench,
    entries: list[tuple[str, Any]],
    *,
    table: str = "OURS_BENCH",
    timeout_seconds: float = 300.0,
) -> dict[str, Any]:
    """Drain ``entries`` with the operator's reconcile loop; the comparison's figures."""
    setup = bench.fresh_queue(table)
    setup.enqueue(entries)
    spec = emulator_spec(
        setup.table,
        bench.snowflake.port,
        bench.service.port,
        job={
            "entries_per_job": ENTRIES_PER_JOB,
            "max_active_jobs": MAX_ACTIVE_JOBS,
            "concurrency": CONCURRENCY,
            "cpu": OURS_JOB["cpu"],
            "memory": OURS_JOB["memory"],
        },
        poll_interval_seconds=POLL_SECONDS,
    )
    connection = connect(spec.snowflake.connection_settings())
    queue = QueueClient(connection, spec.snowflake.table_ref)  # the operator's, counted
    backend = LocalJobBackend(bench.root / f"jobs-{table.lower()}", bench.certs.client_dir)
    stats_before = fetch_stats(bench.service.port, bench.certs)
    started = time.monotonic()
    ticks = 0
    drained = False
    try:
        while time.monotonic() - started < timeout_seconds:
            tick_started = time.monotonic()
            ticks += 1
            result = local_poll("bench", spec, queue, backend, datetime.now(UTC))
            counts = result.observation.counts
            if (
                counts is not None
                and counts.pending == 0
                and counts.processing == 0
                and backend.unfinished_count() == 0
            ):
                drained = True
                break
            time.sleep(max(0.0, POLL_SECONDS - (time.monotonic() - tick_started)))
        wall = time.monotonic() - started
    finally:
        backend.stop_all(grace_seconds=30)
        connection.close()
    final = setup.counts(max_attempts=spec.queue.max_attempts)
    stats_after = fetch_stats(bench.service.port, bench.certs)
    summaries = backend.summaries()
    total = len(entries)
    starts = len(backend.jobs)
    worker_statements = sum(int(s.get("snowflake_statements", 0)) for s in summaries)
    statements = worker_statements + queue.statement_count
    by_kind: dict[str, int] = dict(queue.statements)
    for summary in summaries:
        for kind, n in summary.get("statements_by_kind", {}).items():
            by_kind[kind] = by_kind.get(kind, 0) + int(n)
    run_seconds = sum(float(s.get("seconds", 0.0)) for s in summaries)
    terminal = final.completed + final.failed
    return {
        "design": "ours",
        "entries": total,
        "drained": drained,
        "completed": final.completed,
        "failed": final.failed,
        "seconds": round(wall, 2),
        "entries_per_second": round(terminal / wall, 2),
        "snowflake_statements": statements,
        "statements_per_1000_entries": round(statements * 1000 / total, 1),
        "statements_by_kind": dict(sorted(by_kind.items())),
        "operator_statements": queue.statement_count,
        "worker_statements": worker_statements,
        "pod_starts": starts,
        "pod_starts_per_1000_entries": round(starts * 1000 / total, 1),
        "expected_pod_starts": math.ceil(total / ENTRIES_PER_JOB),
        "ticks": ticks,
        "tick_seconds": POLL_SECONDS,
        "http_calls": stats_after["requests"] - stats_before["requests"],
        "duplicates": stats_after["duplicates"] - stats_before["duplicates"],
        "fargate": fargate_cost(starts=starts, run_seconds=run_seconds, entries=total, **OURS_JOB),
        # The same run billed at the former default request (0.5 vCPU / 1Gi: 2 GB billed).
        "fargate_before": fargate_cost(
            starts=starts, run_seconds=run_seconds, entries=total, **OURS_JOB_BEFORE
        ),
    }
