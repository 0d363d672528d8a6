"""`snowflake-processor demo`: the whole pipeline on one machine.

Starts the Snowflake emulator and a local mTLS service, fills the queue, then runs the
operator's reconcile tick every few seconds with Jobs as local worker processes, until
the queue is drained.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import signal
import sys
import time
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from snowflake_operator.ops.output import truncate
from snowflake_operator.poll.idle_gate import WAREHOUSE_FREE_KINDS, IdleGate
from snowflake_operator.queue_schema import SchemaTarget, ensure_queue_table
from snowflake_operator.spec.model import (
    ProcessorSpec,
)
from snowflake_processor.cli import Command
from snowflake_worker.connection import connect
from snowflake_worker.errors import FatalError
from snowflake_worker.identifiers import TableRef
from snowflake_worker.queue import QueueClient
from snowflake_worker.queue_records import DeadLetter, QueueCounts

from .backend import LocalJobBackend
from .certificates import write_demo_certificates
from .local_poll import local_poll
from .mtls_service import fetch_stats, start_mtls_service
from .processes import ServerProcess, start_snowflake_emulator
from .progress import ProgressView
from .specs import emulator_spec

PROCESSOR_NAME = "demo"
DEMO_TABLE = TableRef("DEMO", "QUEUE", "WORK_QUEUE")
SHOWN_DEAD_LETTERS = 5  # in the summary; the printed status command lists them all
log = logging.getLogger("snowflake_operator.demo")


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive whole number, got {text}")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be zero or more, got {text}")
    return value


def _rate(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def _non_negative_float(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be zero or more, got {text}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def add_demo_arguments(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--entries", type=_positive_int, default=2000, help="entries to enqueue (2000)")
    add(
        "--poison",
        type=_non_negative_int,
        default=5,
        help="entries the service always rejects with 422 (5)",
    )
    add(
        "--malformed",
        type=_non_negative_int,
        default=3,
        help="entries whose data is not valid JSON (3)",
    )
    add("--max-jobs", type=_positive_int, default=4, help="maxActiveJobs (4)")
    add("--entries-per-job", type=_positive_int, default=250, help="entriesPerJob (250)")
    add("--concurrency", type=_positive_int, default=16, help="calls in flight per Job (16)")
    add("--latency-ms", type=float, default=20.0, help="service latency per call (20)")
    add("--transient-rate", type=_rate, default=0.02, help="share of calls answered 503 (0.02)")
    add("--poll-seconds", type=_positive_float, default=2.0, help="reconcile interval (2)")
    add(
        "--timeout-seconds",
        type=_positive_float,
        default=900.0,
        help="give up if the queue is not drained by then (900)",
    )
    add("--work-dir", type=Path, default=Path(".demo"), help="data, certificates, logs (.demo)")
    add("--seed", type=int, default=7, help="random seed of the service (7)")
    add(
        "--idle-seconds",
        type=_non_negative_float,
        default=0.0,
        help="keep polling this long after the queue drains, to measure idle cost (0)",
    )
    add(
        "--idle-poll-seconds",
        type=_non_negative_int,
        default=1800,
        help="idlePollSeconds: the safety-net full poll while idle, 0 = never (1800)",
    )
    add(
        "--no-idle-gate",
        action="store_true",
        help="poll an idle queue with the warehouse-using statements, as without the gate",
    )
    add(
        "--keep-running",
        action="store_true",
        help="after the summary, keep the Snowflake emulator (and the service) up until "
        "Ctrl-C, to look at the queue with the ops commands it prints",
    )
    add("--json", action="store_true", help="end with one JSON line on stdout")


@dataclass
class DemoRun:
    args: argparse.Namespace
    started: float

    def __post_init__(self) -> None:
        self.jobs_launched = 0
        self.idle_gate = None if self.args.no_idle_gate else IdleGate()


def demo_spec(args: argparse.Namespace, snowflake_port: int, service_port: int) -> ProcessorSpec:
    return emulator_spec(
        DEMO_TABLE,
        snowflake_port,
        service_port,
        endpoint={"timeout_seconds": 5, "retries": 3, "retry_backoff_seconds": 0.1},
        # The local emulator holds the table's lock for milliseconds, not Snowflake's
        # 0.35 s: write-backs every second stay far from it, and maxActiveJobs binds.
        queue={
            "lease_seconds": 120,
            "claim_batch": 100,
            "retry_delay_seconds": 1,
            "lock_hold_seconds": 0.02,
        },
        job={
            "entries_per_job": args.entries_per_job,
            "max_active_jobs": args.max_jobs,
            "concurrency": args.concurrency,
            "active_deadline_seconds": 90,
            "grace_seconds": 10,
            "flush_every": 100,
            "flush_seconds": 1.0,
        },
        poll_interval_seconds=max(1, round(args.poll_seconds)),
        idle_poll_seconds=args.idle_poll_seconds,
    )


def demo_entries(total: int, poison: int, malformed: int) -> list[tuple[str, Any]]:
    """Ordinary entries plus a few crafted to fail permanently, spread through the queue."""
    special = min(total, poison + malformed)
    step = max(1, total // max(1, special))
    entries: list[tuple[str, Any]] = []
    poison_left, malformed_left = poison, malformed
    for index in range(total):
        entry_id = f"demo-{index:06d}"
        if index % step == 0 and poison_left:
            entries.append((entry_id, {"n": index, "poison": True}))
            poison_left -= 1
        elif index % step == 0 and malformed_left:
            entries.append((entry_id, '{"n": ' + str(index) + ", broken"))  # a string, not JSON
            malformed_left -= 1
        else:
            entries.append((entry_id, {"n": index, "text": f"entry {index}"}))
    return entries


def run_demo(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    # Ctrl-C stops the demo, even when it was started where SIGINT is ignored (a shell's
    # background job): Python keeps an inherited "ignore" unless told otherwise.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    # `kill` (SIGTERM) stops it the same way, so the emulator and service never outlive it.
    signal.signal(signal.SIGTERM, _interrupt)
    run = DemoRun(args, time.monotonic())
    root: Path = args.work_dir.resolve()
    shutil.rmtree(root / "snowflake", ignore_errors=True)
    shutil.rmtree(root / "jobs", ignore_errors=True)
    progress = ProgressView(enabled_live=not args.json and sys.stdout.isatty())
    backend: LocalJobBackend | None = None
    reported = False
    with ExitStack() as stack:
        try:
            snowflake = _start(
                stack, start_snowflake_emulator(root / "snowflake", root / "logs/snowflake.log")
            )
            certs = write_demo_certificates(root / "certs")
            service = _start(
                stack,
                start_mtls_service(
                    certs,
                    root / "logs/service.log",
                    latency_ms=args.latency_ms,
                    transient_rate=args.transient_rate,
                    seed=args.seed,
                ),
            )
            spec = demo_spec(args, snowflake.port, service.port)
            _say(
                f"Snowflake emulator on 127.0.0.1:{snowflake.port} (data in {root / 'snowflake'}), "
                f"mTLS service on 127.0.0.1:{service.port}",
                args.json,
            )
            connection = connect(spec.snowflake.connection_settings())
            stack.callback(connection.close)
            _create_table(connection, spec)
            queue = QueueClient(connection, spec.snowflake.table_ref)
            entries = demo_entries(args.entries, args.poison, args.malformed)
            queue.enqueue(entries)
            backend = LocalJobBackend(root / "jobs", certs.client_dir)
            with progress:  # closed before the summary: a live table would swallow it
                counts = _drain(run, spec, queue, backend, progress)
                drained_at = time.monotonic()
                idle = (
                    _idle_tail(run, spec, queue, backend, progress) if args.idle_seconds else None
                )
            stats = fetch_stats(service.port, certs)
            dead_letters = queue.recent_dead_letters(SHOWN_DEAD_LETTERS)
            summary = _summary(run, counts, stats, backend, args.entries, queue.statement_count)
            summary["seconds"] = round(drained_at - run.started, 2)
            summary["snowflake_port"] = snowflake.port
            summary["dead_letters_command"] = dead_letters_command(snowflake.port, counts.failed)
            if idle is not None:
                _add_idle(summary, run, idle)
            # The run is over once its summary starts: a Ctrl-C that lands while it is being
            # printed (right after the JSON line, say) ends the demo, not the run.
            reported = True
            _print_summary(summary, dead_letters, args.json)
            if args.keep_running:
                _keep_running(snowflake.port)
        except KeyboardInterrupt:
            if reported:  # the run is over and told; Ctrl-C only ends the --keep-running wait
                print("stopping the emulator and the service", file=sys.stderr, flush=True)
            else:
                if backend is not None:
                    backend.stop_all(grace_seconds=15)
                print(
                    "interrupted: workers stopped, entries they held were released",
                    file=sys.stderr,
                )
                return 130
        except (FatalError, DemoTimeout) as exc:
            if backend is not None:
                backend.stop_all(grace_seconds=15)
            print(f"error: {exc}", file=sys.stderr)
            return 1
    return 0 if summary["lost"] == 0 else 1


class DemoTimeout(Exception):
    pass


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _say(text: str, as_json: bool) -> None:
    """A message for the person watching: stdout, or stderr when stdout is for JSON."""
    print(text, file=sys.stderr if as_json else sys.stdout, flush=True)


def dead_letters_command(snowflake_port: int, failed: int) -> str:
    """The ops command that lists this run's dead letters in the emulator."""
    return (
        f"snowflake-processor status --dead-letters {max(10, min(failed, 1000))} "
        f"--auth emulator --host 127.0.0.1 --port {snowflake_port} --account local "
        f"--database {DEMO_TABLE.database} --schema {DEMO_TABLE.schema} "
        f"--table {DEMO_TABLE.table}"
    )


def _keep_running(snowflake_port: int) -> None:
    """Keep the emulator (and the service) up until Ctrl-C or SIGTERM."""
    print(
        f"the Snowflake emulator stays up on 127.0.0.1:{snowflake_port} until Ctrl-C",
        file=sys.stderr,
        flush=True,
    )
    while True:
        time.sleep(3600)


def _add_idle(summary: dict[str, Any], run: DemoRun, idle: Counter[str]) -> None:
    summary["idle_seconds"] = run.args.idle_seconds
    summary["idle_gate"] = run.idle_gate is not None
    summary["idle_warehouse_statements"] = sum(
        n for kind, n in idle.items() if kind not in WAREHOUSE_FREE_KINDS
    )
    summary["idle_warehouse_free_statements"] = sum(
        n for kind, n in idle.items() if kind in WAREHOUSE_FREE_KINDS
    )


def _start(stack: ExitStack, server: ServerProcess) -> ServerProcess:
    stack.callback(server.stop)
    return server


def _create_table(connection: Any, spec: ProcessorSpec) -> None:
    target = SchemaTarget(table=spec.snowflake.table_ref)
    cursor = connection.cursor()
    cursor.execute(f"CREATE DATABASE IF NOT EXISTS {target.table.database}")
    cursor.execute(f"CREATE SCHEMA IF NOT EXISTS {target.table.database}.{target.table.schema}")
    cursor.close()
    ensure_queue_table(connection, target)


def _drain(
    run: DemoRun,
    spec: ProcessorSpec,
    queue: QueueClient,
    backend: LocalJobBackend,
    progress: ProgressView,
) -> QueueCounts:
    deadline = run.started + run.args.timeout_seconds
    while True:
        tick_started = time.monotonic()
        counts = _tick(run, spec, queue, backend, progress)
        drained = counts is not None and counts.pending == counts.processing == 0
        if drained and backend.unfinished_count() == 0:
            assert counts is not None
            return counts
        if time.monotonic() > deadline:
            raise DemoTimeout(f"queue not drained within {run.args.timeout_seconds:.0f} s")
        time.sleep(max(0.0, run.args.poll_seconds - (time.monotonic() - tick_started)))


def _tick(
    run: DemoRun,
    spec: ProcessorSpec,
    queue: QueueClient,
    backend: LocalJobBackend,
    progress: ProgressView,
) -> QueueCounts | None:
    result = local_poll(
        PROCESSOR_NAME, spec, queue, backend, datetime.now(UTC), idle_gate=run.idle_gate
    )
    run.jobs_launched += len(result.launched)
    counts = result.observation.counts
    if counts is not None:
        unfinished = backend.unfinished_count()
        progress.update(counts, unfinished, run.jobs_launched, time.monotonic() - run.started)
    return counts


def _idle_tail(
    run: DemoRun,
    spec: ProcessorSpec,
    queue: QueueClient,
    backend: LocalJobBackend,
    progress: ProgressView,
) -> Counter[str]:
    """Keep polling an idle queue; return the statements issued meanwhile, by kind."""
    before = Counter(queue.statements)
    end = time.monotonic() + run.args.idle_seconds
    while time.monotonic() < end:
        tick_started = time.monotonic()
        _tick(run, spec, queue, backend, progress)
        time.sleep(max(0.0, min(end, tick_started + run.args.poll_seconds) - time.monotonic()))
    return Counter(queue.statements) - before


def _summary(
    run: DemoRun,
    counts: QueueCounts,
    stats: dict[str, Any],
    backend: LocalJobBackend | None,
    entries: int,
    operator_statements: int,
) -> dict[str, Any]:
    worker_summaries = backend.summaries() if backend else []
    worker_statements = sum(int(s.get("snowflake_statements", 0)) for s in worker_summaries)
    return {
        "entries": entries,
        "completed": counts.completed,
        "failed": counts.failed,
        "lost": entries - counts.completed - counts.failed,
        "duplicates": int(stats.get("duplicates", 0)),
        "jobs_launched": run.jobs_launched,
        "snowflake_statements": operator_statements + worker_statements,
        "worker_statements": worker_statements,
        "http_calls": int(stats.get("requests", 0)),
        "seconds": round(time.monotonic() - run.started, 2),
    }


def _print_summary(summary: dict[str, Any], dead_letters: list[DeadLetter], as_json: bool) -> None:
    lines = [
        f"drained {summary['entries']} entries in {summary['seconds']} s:",
        f"  completed {summary['completed']}, failed {summary['failed']} "
        f"(dead letters), lost {summary['lost']}",
        f"  duplicate successful calls: {summary['duplicates']}",
        f"  Jobs launched: {summary['jobs_launched']}, "
        f"Snowflake statements: {summary['snowflake_statements']}",
    ]
    if summary["failed"]:
        lines.append(f"dead letters, the {len(dead_letters)} most recent:")
        lines.extend(f"  {dead.id}: {truncate(dead.error_message, 90)}" for dead in dead_letters)
        lines += [
            "list them all, with their errors, while the emulator runs (make demo "
            'ARGS="--keep-running" keeps it up after the summary):',
            f"  {summary['dead_letters_command']}",
        ]
    print("\n".join(lines), file=sys.stderr if as_json else sys.stdout, flush=True)
    if as_json:
        print(json.dumps(summary), flush=True)


# Registered as the `demo` subcommand of `snowflake-processor` (devtools/pyproject.toml).
COMMAND = Command(
    "demo",
    "run the whole pipeline on this machine against local emulators",
    add_demo_arguments,
    run_demo,
)
