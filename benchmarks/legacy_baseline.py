"""The legacy protocol, reimplemented as faithfully as Snowflake allows.

This is a benchmark baseline, not part of the product: its queue SQL lives here only, and
it repeats the legacy design's defects on purpose (docs/legacy-design.md lists them). What it
keeps from the legacy design document:

* A poller (the legacy design's Lambda) runs every tick: it resets stale entries, counts pending
  entries with ``SELECT COUNT(*) ... WHERE status = 'pending'``, and launches
  ``min(ceil(pending / 8), 25)`` new task processes, ignoring the tasks already running
  (the legacy design never looks at them). It opens a new Snowflake connection per tick, as a
  Lambda invocation does.
* A task (the legacy design's ECS task) is a new process that claims 8 entries and exits. The
  legacy claim was ``UPDATE ... RETURNING`` (not Snowflake SQL), so it claims by
  processor id and reads the rows back: ``UPDATE ... SET status = 'processing',
  processor_id = %s WHERE id IN (SELECT ... LIMIT 8)`` then ``SELECT id, data ... WHERE
  processor_id = %s AND status = 'processing'``. It calls the service for its entries
  concurrently, and every finished call makes a blocking ``UPDATE`` of its own right inside
  the coroutine, stalling the event loop as the legacy design did. The first HTTP error marks an
  entry failed for good. It calls ``commit()`` after each UPDATE like the legacy design; under
  autocommit those are no-op ``COMMIT`` statements, counted apart (``commits``) and left
  out of the headline statement count.
* The legacy design used aiohttp; it is not installed here, so the task uses httpx.AsyncClient
  (one client, like the legacy design's one session) with the same three certificate files.

Time compression: the legacy design's poller runs every 60 s; here a tick is ``TICK_SECONDS`` = 2 s,
30x faster, and the stale threshold (30 min in the legacy design) is compressed the same way to
60 s. This favours the legacy design: a 60 s tick leaves most of each minute idle between launches
(on Fargate a task also takes about a minute to start), so a real legacy deployment drains
far slower than this baseline. Its process starts here cost about 1 s of CPU each,
not a Fargate start; the Fargate model (fargate_model.py) prices starts separately. One
figure the short tick inflates for the legacy design: the poller's 2 statements per tick, counted
in its statements (poller + tasks) and reported apart by kind (``count``, ``reset_stale``).

Other ways this baseline favours the legacy design: the certificates are local files
(the legacy design downloads them from S3 in every task); the tasks log only their own
INFO lines, not the connector's; statements per 1,000 entries leave out the COMMITs; the poller's
"is it finished" check (``processing`` count) is harness-only and not counted. And one
guard the legacy design lacks: at most ``MAX_ALIVE_TASKS`` task processes are kept alive at once,
so the 2-core machine does not run out of memory (launches beyond it are skipped and
reported as ``launches_skipped``). On Fargate a task starts in about one tick, so about two
ticks' launches (2 x 25) are alive at once there as well; skipped launches are starts
the legacy design would have paid for and this baseline does not count.
"""

from __future__ import annotations

import json
import logging
import math
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the task process must stay light: imports below run in the poller only
    from .harness import Bench

REPO_ROOT = Path(__file__).resolve().parent.parent

ENTRIES_PER_CONTAINER = 8  # legacy: ENTRIES_PER_CONTAINER
MAX_CONTAINERS = 25  # legacy: MAX_CONTAINERS, launches per tick
TICK_SECONDS = 2.0  # legacy: rate(1 minute); 30x time compression
STALE_SECONDS = 60  # legacy: STALE_THRESHOLD_MINUTES = 30, compressed 30x
MAX_ALIVE_TASKS = 2 * MAX_CONTAINERS  # machine guard, not the legacy design's (see above)
HTTP_TIMEOUT_SECONDS = 30.0  # legacy: aiohttp.ClientTimeout(total=30)
# The legacy design sets none; 120 s (the worker's default when this baseline was first
# measured) keeps a hung statement from stalling the benchmark.
NETWORK_TIMEOUT_SECONDS = 120
TABLE_STATEMENT_KINDS = ("claim", "claim_select", "complete", "fail", "reset_stale", "count")

# -- the legacy design's SQL (table name formatted in, as it did; here it comes from a
#    validated TableRef, so it is at least a safe quoted identifier) ---------------------

CLAIM_SQL = (
    "UPDATE {t} SET status = 'processing', processor_id = %s, claimed_at = SYSDATE() "
    "WHERE id IN (SELECT id FROM {t} WHERE status = 'pending' "
    "AND (retry_count < 3 OR retry_count IS NULL) ORDER BY created_at ASC LIMIT %s)"
)
CLAIM_SELECT_SQL = "SELECT id, data FROM {t} WHERE processor_id = %s AND status = 'processing'"
COMPLETE_SQL = (
    "UPDATE {t} SET status = 'completed', completed_at = SYSDATE() "
    "WHERE id = %s AND processor_id = %s"
)
FAIL_SQL = (
    "UPDATE {t} SET status = 'failed', failed_at = SYSDATE(), error_message = %s "
    "WHERE id = %s AND processor_id = %s"
)
RESET_STALE_SQL = (
    "UPDATE {t} SET status = 'pending', processor_id = NULL, claimed_at = NULL, "
    "retry_count = retry_count + 1 "
    "WHERE status = 'processing' AND claimed_at < DATEADD(second, -%s, SYSDATE())"
)
COUNT_PENDING_SQL = (
    "SELECT COUNT(*) FROM {t} WHERE status = 'pending' AND (retry_count < 3 OR retry_count IS NULL)"
)
# Harness only (not the legacy design's, not counted): is anything still in flight?
PROCESSING_SQL = "SELECT COUNT(*) FROM {t} WHERE status = 'processing'"


def connection_params(port: int, database: str, schema: str) -> dict[str, Any]:
    """The emulator's connection parameters, in the style of snowflake_worker.connection."""
    return {
        "user": "legacy",
        "password": "legacy",  # the legacy design used password auth; the emulator accepts any
        "account": "legacy",
        "host": "127.0.0.1",
        "port": port,
        "protocol": "http",
        "database": database,
        "schema": schema,
        "login_timeout": 60,
        "network_timeout": NETWORK_TIMEOUT_SECONDS,
        "session_parameters": {"CLIENT_OUT_OF_BAND_TELEMETRY_ENABLED": False},
    }


# =========================================================================================
# The task: one process per 8 entries (run as `python -m benchmarks.legacy_baseline task`)
# =========================================================================================


class _LegacyTask:
    """The legacy design's SnowflakeProcessor, minus S3: same calls in the same order."""

    def __init__(self) -> None:
        self.processor_id = os.environ["PROCESSOR_ID"]
        self.max_entries = int(os.environ.get("MAX_ENTRIES", str(ENTRIES_PER_CONTAINER)))
        self.table = os.environ["SNOWFLAKE_TABLE"]
        self.url = os.environ["EXTERNAL_SERVICE_URL"]
        self.cert_dir = Path(os.environ["CERT_DIR"])
        self.summary_path = Path(os.environ["LEGACY_SUMMARY_PATH"])
        self.statements: Counter[str] = Counter()
        self.conn: Any = None
        self.shutdown = False  # set on SIGTERM and, as in the legacy design, never read
        self.log = logging.getLogger("legacy_task")

    # -- Snowflake, blocking ----------------------------------------------------------

    def _execute(self, kind: str, sql: str, params: tuple[Any, ...], fetch: bool = False) -> Any:
        self.statements[kind] += 1
        cursor = self.conn.cursor()
        try:
            cursor.execute(sql.format(t=self.table), params)
            return cursor.fetchall() if fetch else cursor.rowcount
        finally:
            cursor.close()

    def _commit(self) -> None:
        self.statements["commit"] += 1
        self.conn.commit()

    def _rollback(self) -> None:
        self.statements["rollback"] += 1
        try:
            self.conn.rollback()
        except Exception as exc:
            self.log.error("rollback failed: %s", exc)

    def claim_entries(self, count: int) -> list[dict[str, Any]]:
        try:
            self._execute("claim", CLAIM_SQL, (self.processor_id, count))
            rows = self._execute("claim_select", CLAIM_SELECT_SQL, (self.processor_id,), True)
            entries = [
                {"id": row[0], "data": json.loads(row[1]) if isinstance(row[1], str) else row[1]}
                for row in rows
            ]
            self._commit()
            self.log.info("Claimed %d entries", len(entries))
            return entries
        except Exception as exc:
            self._rollback()
            self.log.error("Failed to claim entries: %s", exc)
            return []

    def mark_entry_completed(self, entry_id: str) -> None:
        try:
            self._execute("complete", COMPLETE_SQL, (entry_id, self.processor_id))
            self._commit()
        except Exception as exc:
            self._rollback()
            self.log.error("Failed to mark entry %s as completed: %s", entry_id, exc)

    def mark_entry_failed(self, entry_id: str, error_message: str) -> None:
        try:
            self._execute("fail", FAIL_SQL, (error_message[:1000], entry_id, self.processor_id))
            self._commit()
        except Exception as exc:
            self._rollback()
            self.log.error("Failed to mark entry %s as failed: %s", entry_id, exc)

    # -- HTTP, async; the UPDATEs above block the event loop, as in the legacy design ------------

    async def process_entry(self, client: Any, entry: dict[str, Any]) -> dict[str, Any]:
        import httpx

        entry_id = entry["id"]
        try:
            self.log.info("Processing entry %s", entry_id)
            payload = {
                "entry_id": entry_id,
                "data": entry["data"],
                "processor_id": self.processor_id,
                "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()),
            }
            response = await client.post(self.url, json=payload)
            if response.status_code == 200:
                result = response.json()
                self.mark_entry_completed(entry_id)  # blocking, inside the coroutine
                return {"entry_id": entry_id, "status": "success", "result": result}
            error_msg = f"External service returned status {response.status_code}"
            self.mark_entry_failed(entry_id, error_msg)  # the first error is final
            return {"entry_id": entry_id, "status": "failed", "error": error_msg}
        except httpx.TimeoutException:
            self.mark_entry_failed(entry_id, "External service timeout")
            return {"entry_id": entry_id, "status": "failed", "error": "timeout"}
        except Exception as exc:
            self.mark_entry_failed(entry_id, str(exc))
            return {"entry_id": entry_id, "status": "failed", "error": str(exc)}

    async def process_batch(self, entries: list[dict[str, Any]]) -> list[Any]:
        import asyncio
        import ssl

        import httpx

        context = ssl.create_default_context(cafile=str(self.cert_dir / "ca-cert.pem"))
        context.load_cert_chain(
            str(self.cert_dir / "client.pem"), str(self.cert_dir / "client-key.pem")
        )
        async with httpx.AsyncClient(verify=context, timeout=HTTP_TIMEOUT_SECONDS) as client:
            tasks = [self.process_entry(client, entry) for entry in entries]
            return list(await asyncio.gather(*tasks, return_exceptions=True))

    def run(self) -> int:
        import asyncio

        import snowflake.connector

        signal.signal(signal.SIGTERM, self._on_signal)
        summary: dict[str, Any] = {"processor_id": self.processor_id, "claimed": 0}
        work_started = time.monotonic()
        code = 0
        try:
            self.conn = snowflake.connector.connect(
                **connection_params(
                    int(os.environ["SNOWFLAKE_PORT"]),
                    os.environ["SNOWFLAKE_DATABASE"],
                    os.environ["SNOWFLAKE_SCHEMA"],
                )
            )
            work_started = time.monotonic()
            entries = self.claim_entries(self.max_entries)
            summary["claimed"] = len(entries)
            if entries:
                results = asyncio.run(self.process_batch(entries))
                ok = sum(1 for r in results if isinstance(r, dict) and r["status"] == "success")
                summary.update(completed=ok, failed=len(results) - ok)
        except Exception as exc:
            self.log.error("Fatal error: %s", exc)
            summary["error"] = str(exc)[:300]
            code = 1
        finally:
            if self.conn is not None:
                self.conn.close()
        summary.update(
            seconds=round(time.monotonic() - work_started, 3),
            statements_by_kind=dict(self.statements),
            statements=sum(self.statements[k] for k in TABLE_STATEMENT_KINDS),
            commits=self.statements["commit"] + self.statements["rollback"],
            exit_code=code,
        )
        self.summary_path.write_text(json.dumps(summary))
        return code

    def _on_signal(self, signum: int, frame: Any) -> None:
        self.shutdown = True


# =========================================================================================
# The poller (the legacy design's Lambda), in the benchmark process
# =========================================================================================


@dataclass
class _Launched:
    processor_id: str
    process: subprocess.Popen[bytes]
    summary_path: Path
    launched_at: float = field(default_factory=time.monotonic)


class _Poller:
    def __init__(self, bench: Bench, table: Any, root: Path, run_id: str) -> None:
        self.bench = bench
        self.table = table  # TableRef
        self.root = root
        self.run_id = run_id
        self.statements: Counter[str] = Counter()
        self.tasks: list[_Launched] = []
        self.launches_skipped = 0
        self.max_alive = 0
        self.log_file = open(root / "tasks.log", "ab")  # noqa: SIM115 (closed in close())

    def close(self) -> None:
        self.log_file.close()

    def alive(self) -> list[_Launched]:
        return [task for task in self.tasks if task.process.poll() is None]

    def _execute(self, conn: Any, kind: str | None, sql: str, params: tuple[Any, ...]) -> Any:
        if kind is not None:
            self.statements[kind] += 1
        cursor = conn.cursor()
        try:
            cursor.execute(sql.format(t=self.table.sql), params)
            return cursor.fetchall()
        finally:
            cursor.close()

    def tick(self) -> tuple[int, int | None]:
        """One Lambda invocation; returns (pending, processing or None if not checked)."""
        import snowflake.connector

        conn = snowflake.connector.connect(
            **connection_params(self.bench.snowflake.port, self.table.database, self.table.schema)
        )
        try:
            self._execute(conn, "reset_stale", RESET_STALE_SQL, (STALE_SECONDS,))
            self.statements["commit"] += 1
            conn.commit()
            pending = int(self._execute(conn, "count", COUNT_PENDING_SQL, ())[0][0] or 0)
            wanted = min(math.ceil(pending / ENTRIES_PER_CONTAINER), MAX_CONTAINERS)
            for _ in range(wanted):
                self.launch()
            processing = None
            if pending == 0:  # harness-only check, not counted
                processing = int(self._execute(conn, None, PROCESSING_SQL, ())[0][0] or 0)
            return pending, processing
        finally:
            conn.close()

    def launch(self) -> None:
        if len(self.alive()) >= MAX_ALIVE_TASKS:
            self.launches_skipped += 1
            return
        # legacy: f"{ENVIRONMENT}-{%Y%m%d%H%M%S}-{uuid8}"
        processor_id = f"bench-{time.strftime('%Y%m%d%H%M%S')}-{uuid.uuid4().hex[:8]}"
        summary_path = self.root / f"{processor_id}.json"
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PROCESSOR_ID": processor_id,
            "MAX_ENTRIES": str(ENTRIES_PER_CONTAINER),
            "SNOWFLAKE_PORT": str(self.bench.snowflake.port),
            "SNOWFLAKE_DATABASE": self.table.database,
            "SNOWFLAKE_SCHEMA": self.table.schema,
            "SNOWFLAKE_TABLE": self.table.sql,
            "EXTERNAL_SERVICE_URL": f"https://127.0.0.1:{self.bench.service.port}/process",
            "CERT_DIR": str(self.bench.certs.client_dir),
            "LEGACY_SUMMARY_PATH": str(summary_path),
        }
        process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.legacy_baseline", "task"],
            cwd=REPO_ROOT,
            env=env,
            stdout=self.log_file,
            stderr=subprocess.STDOUT,
        )
        self.tasks.append(_Launched(processor_id, process, summary_path))
        self.max_alive = max(self.max_alive, len(self.alive()))

    def stop_all(self, grace: float) -> None:
        """Wait for tasks to exit on their own (they claim nothing now); kill stragglers."""
        deadline = time.monotonic() + grace
        for task in self.tasks:
            try:
                task.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                task.process.kill()
                task.process.wait()

    def summaries(self) -> list[dict[str, Any]]:
        found = []
        for task in self.tasks:
            try:
                found.append(json.loads(task.summary_path.read_text()))
            except (OSError, ValueError):
                continue
        return found


def run(
    bench: Bench,
    entries: list[tuple[str, Any]],
    *,
    table: str = "LEGACY_BENCH",
    tick_seconds: float = TICK_SECONDS,
    timeout_seconds: float = 480.0,
) -> dict[str, Any]:
    """Drain ``entries`` with the legacy design; the figures the comparison reports."""
    from snowflake_devtools.mtls_service import fetch_stats

    from .fargate_model import LEGACY_TASK, fargate_cost

    queue = bench.fresh_queue(table)
    queue.enqueue(entries)
    root = bench.root / f"legacy-{table.lower()}"
    root.mkdir(parents=True, exist_ok=True)
    poller = _Poller(bench, queue.table, root, table)
    stats_before = fetch_stats(bench.service.port, bench.certs)
    started = time.monotonic()
    ticks = 0
    drained = False
    try:
        while time.monotonic() - started < timeout_seconds:
            tick_started = time.monotonic()
            ticks += 1
            pending, processing = poller.tick()
            if pending == 0 and processing == 0:
                drained = True
                break
            time.sleep(max(0.0, tick_seconds - (time.monotonic() - tick_started)))
        wall = time.monotonic() - started
    finally:
        poller.stop_all(grace=60.0 if drained else 5.0)
        poller.close()
    counts = queue.counts(max_attempts=3)
    stats_after = fetch_stats(bench.service.port, bench.certs)
    summaries = poller.summaries()
    total = len(entries)
    starts = len(poller.tasks)
    task_statements = sum(int(s.get("statements", 0)) for s in summaries)
    poller_statements = sum(poller.statements[k] for k in TABLE_STATEMENT_KINDS)
    statements = task_statements + poller_statements
    commits = sum(int(s.get("commits", 0)) for s in summaries) + poller.statements["commit"]
    by_kind: Counter[str] = Counter(poller.statements)
    for summary in summaries:
        by_kind.update(summary.get("statements_by_kind", {}))
    run_seconds = sum(float(s.get("seconds", 0.0)) for s in summaries)
    terminal = counts.completed + counts.failed
    return {
        "design": "legacy",
        "entries": total,
        "drained": drained,
        "completed": counts.completed,
        "failed": counts.failed,
        "seconds": round(wall, 2),
        "entries_per_second": round(terminal / wall, 2),
        "snowflake_statements": statements,
        "statements_per_1000_entries": round(statements * 1000 / total, 1),
        "statements_by_kind": dict(sorted(by_kind.items())),
        "commits_not_counted": commits,
        "pod_starts": starts,
        "pod_starts_per_1000_entries": round(starts * 1000 / total, 1),
        "tasks_claiming_nothing": sum(1 for s in summaries if not s.get("claimed")),
        "tasks_without_summary": starts - len(summaries),
        "launches_skipped": poller.launches_skipped,
        "max_alive_tasks": poller.max_alive,
        "ticks": ticks,
        "tick_seconds": tick_seconds,
        "http_calls": stats_after["requests"] - stats_before["requests"],
        "duplicates": stats_after["duplicates"] - stats_before["duplicates"],
        # ECS bills the task size as written: no pod overhead.
        "fargate": fargate_cost(
            starts=starts, run_seconds=run_seconds, entries=total, overhead=False, **LEGACY_TASK
        ),
    }


def main(argv: list[str]) -> int:
    if argv[:1] == ["task"]:
        logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
        logging.getLogger("legacy_task").setLevel(logging.INFO)
        return _LegacyTask().run()
    print("usage: python -m benchmarks.legacy_baseline task  (run by the benchmark's poller)")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
