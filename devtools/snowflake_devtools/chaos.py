"""`make chaos`: drain a queue while workers are SIGKILLed and Snowflake crashes.

What runs: the Snowflake emulator (fakesnow server, data on disk, fixed port), the local
mTLS service answering 5% transient 503s, 1% timeouts (held until the worker's 2 s request
timeout gives up) and 422 for a 0.5% set of poison entries, and the operator's real
poll (run_poll through local_poll, with LocalJobBackend, at most 4 Jobs, lease 60 s) launching
real worker processes. Meanwhile:

* a random running worker (alive at least ``min_worker_age_seconds``, so it holds
  entries) gets SIGKILL at random moments, until ``--kills`` is reached;
* once, when 30-60% of the entries are done, the emulator gets SIGKILL and is started
  again on the same port with the same data folder. Sessions do not survive it: workers
  holding one fail their statements and stop (their leases are recovered), the operator's
  tick fails once and the loop opens a new connection;
* as Kubernetes would, a Job running past activeDeadlineSeconds gets SIGTERM, and SIGKILL
  after its grace period (counted apart from the chaos kills).

At the end: ``lost`` (entries neither completed nor dead-lettered) must be 0, every dead
letter must carry its error, and every poison entry must be a dead letter.
``duplicates`` is what the service counted: successful calls beyond one per entry
(at-least-once delivery: a worker killed after a call but before its write-back).

The last line of output is one JSON object. Exit status 0 when the checks above hold.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import signal
import sys
import tempfile
import time
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from snowflake_devtools.backend import LocalJobBackend
from snowflake_devtools.certificates import DemoCertificates, write_demo_certificates
from snowflake_devtools.local_poll import local_poll
from snowflake_devtools.mtls_service import fetch_stats, start_mtls_service
from snowflake_devtools.processes import ServerProcess, start_snowflake_emulator
from snowflake_devtools.snowflake_emulator import free_port
from snowflake_devtools.specs import emulator_spec
from snowflake_operator.queue_schema import SchemaTarget, ensure_queue_table
from snowflake_operator.spec.model import ProcessorSpec
from snowflake_worker.connection import connect
from snowflake_worker.errors import FatalError
from snowflake_worker.identifiers import TableRef
from snowflake_worker.queue import QueueClient
from snowflake_worker.queue_records import QueueCounts
from snowflake_worker.snowflake_settings import SnowflakeSettings

CHAOS_TABLE = TableRef("CHAOS", "QUEUE", "WORK_QUEUE")
PROCESSOR_NAME = "chaos"


@dataclass
class ChaosConfig:
    entries: int = 10_000
    workers: int = 4  # maxActiveJobs
    kills: int = 20
    seed: int = 7
    poison_rate: float = 0.005
    transient_rate: float = 0.05
    timeout_rate: float = 0.01
    latency_ms: float = 20.0
    concurrency: int = 16
    claim_batch: int = 100
    entries_per_job: int = 500
    request_timeout_seconds: float = 2.0
    request_retries: int = 3
    lease_seconds: int = 60  # the spec's minimum: killed workers' leases come back in a minute
    max_attempts: int = 5
    grace_seconds: int = 10
    poll_seconds: float = 2.0
    kill_gap_seconds: tuple[float, float] = (0.5, 3.0)
    min_worker_age_seconds: float = 2.0
    restart_snowflake: bool = True
    restart_at_fraction: tuple[float, float] = (0.3, 0.6)
    snowflake_down_seconds: tuple[float, float] = (1.0, 3.0)
    timeout_seconds: float = 570.0
    work_dir: Path | None = None  # default: a temporary folder, removed at the end


def chaos_entries(total: int, poison_rate: float, rng: random.Random) -> list[tuple[str, Any]]:
    """Entries in queue order; a random ``poison_rate`` share of them is poison."""
    poison_count = min(total, max(1, round(total * poison_rate))) if poison_rate > 0 else 0
    poison = set(rng.sample(range(total), poison_count))
    return [
        (f"chaos-{i:06d}", {"n": i, "poison": True} if i in poison else {"n": i, "text": "x" * 32})
        for i in range(total)
    ]


def chaos_spec(config: ChaosConfig, snowflake_port: int, service_port: int) -> ProcessorSpec:
    return emulator_spec(
        CHAOS_TABLE,
        snowflake_port,
        service_port,
        endpoint={
            "timeout_seconds": config.request_timeout_seconds,
            "retries": config.request_retries,
            "retry_backoff_seconds": 0.1,
        },
        queue={
            "lease_seconds": config.lease_seconds,
            "max_attempts": config.max_attempts,
            "claim_batch": config.claim_batch,
            "retry_delay_seconds": 1,
            "lock_hold_seconds": 0.02,  # the local emulator's, not Snowflake's (demo.py)
        },
        job={
            "entries_per_job": config.entries_per_job,
            "max_active_jobs": config.workers,
            "concurrency": config.concurrency,
            "grace_seconds": config.grace_seconds,
            "flush_every": 100,
            "flush_seconds": 1.0,
        },  # activeDeadlineSeconds: 2/3 of the lease (40 s)
        poll_interval_seconds=max(1, round(config.poll_seconds)),
    )


@dataclass
class ChaosRun:
    config: ChaosConfig
    root: Path
    certs: DemoCertificates
    snowflake: ServerProcess
    service: ServerProcess
    spec: ProcessorSpec
    backend: LocalJobBackend
    rng: random.Random
    started: float = field(default_factory=time.monotonic)
    queue: QueueClient | None = None
    connection: Any = None
    connect_error: str | None = None
    operator_statements: int = 0
    kills: list[dict[str, Any]] = field(default_factory=list)
    snowflake_restarts: list[dict[str, Any]] = field(default_factory=list)
    deadline_terms: set[str] = field(default_factory=set)
    deadline_kills: int = 0
    jobs_launched: int = 0
    ticks: int = 0
    failed_ticks: int = 0
    reconnects: int = 0
    leases_requeued: int = 0
    leases_dead_lettered: int = 0
    last_counts: QueueCounts | None = None

    # -- the operator's connection, re-opened after a failed tick ---------------------

    def settings(self) -> SnowflakeSettings:
        # Short timeouts: a tick must not hang for minutes while the emulator is down (the
        # server's bounds stay below the client's, as the settings require).
        return self.spec.snowflake.connection_settings(
            login_timeout_seconds=10,
            lock_timeout_seconds=5,
            statement_timeout_seconds=15,
            network_timeout_seconds=20,
        )

    def open(self) -> None:
        try:
            self.connection = connect(self.settings())
        except FatalError as exc:
            self.queue, self.connect_error = None, str(exc)
            return
        self.queue = QueueClient(self.connection, self.spec.snowflake.table_ref)
        self.connect_error = None

    def reopen(self) -> None:
        if self.queue is not None:
            self.operator_statements += self.queue.statement_count
        if self.connection is not None:
            with contextlib.suppress(Exception):
                self.connection.close()
        self.connection = self.queue = None
        self.reconnects += 1
        self.open()

    def close(self) -> None:
        if self.queue is not None:
            self.operator_statements += self.queue.statement_count
            self.queue = None
        if self.connection is not None:
            with contextlib.suppress(Exception):
                self.connection.close()

    # -- one reconcile tick -----------------------------------------------------------

    def tick(self) -> QueueCounts | None:
        self.ticks += 1
        if self.queue is None:
            self.reopen()
        result = local_poll(
            PROCESSOR_NAME,
            self.spec,
            self.queue,
            self.backend,
            datetime.now(UTC),
            snowflake_error=self.connect_error,
        )
        self.jobs_launched += len(result.launched)
        recovery = result.observation.recovery
        if recovery is not None:
            self.leases_requeued += recovery.requeued
            self.leases_dead_lettered += recovery.dead_lettered
        if result.observation.snowflake_error is not None:
            self.failed_ticks += 1
            self.reopen()  # a lost session does not come back: open a new one
        counts = result.observation.counts
        if counts is not None:
            self.last_counts = counts
        return counts

    # -- faults -----------------------------------------------------------------------

    def elapsed(self) -> float:
        return round(time.monotonic() - self.started, 2)

    def kill_random_worker(self) -> bool:
        now = time.monotonic()
        candidates = [
            job
            for job in self.backend.running()
            if now - job.started >= self.config.min_worker_age_seconds
        ]
        if not candidates:
            return False
        job = self.rng.choice(candidates)
        job.process.kill()  # SIGKILL: no handler, no release, no write-back
        job.process.wait()
        self.kills.append(
            {"job": job.name, "at": self.elapsed(), "age": round(now - job.started, 1)}
        )
        return True

    def restart_snowflake(self) -> None:
        at = self.elapsed()
        port = self.snowflake.port
        self.snowflake.kill()
        down = self.rng.uniform(*self.config.snowflake_down_seconds)
        time.sleep(down)
        self.snowflake = start_snowflake_emulator(
            self.root / "snowflake", self.root / "logs/snowflake.log", port=port
        )
        self.snowflake_restarts.append(
            {"at": at, "down_seconds": round(time.monotonic() - self.started - at, 2)}
        )

    def enforce_deadlines(self) -> None:
        """What Kubernetes does to a Job past activeDeadlineSeconds: SIGTERM, then SIGKILL."""
        deadline = self.spec.job_active_deadline_seconds()
        grace = self.spec.job.grace_seconds + 10  # the pod's terminationGracePeriodSeconds
        now = time.monotonic()
        for job in self.backend.running():
            age = now - job.started
            if age > deadline and job.name not in self.deadline_terms:
                job.process.send_signal(signal.SIGTERM)
                self.deadline_terms.add(job.name)
            elif age > deadline + grace:
                job.process.kill()
                job.process.wait()
                self.deadline_kills += 1


def run_chaos(config: ChaosConfig) -> dict[str, Any]:
    """Run the whole fault-injection drain; returns the summary (see module docstring)."""
    rng = random.Random(config.seed)  # noqa: S311 (fault timing, not security)
    with ExitStack() as stack:
        if config.work_dir is None:
            root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="sfp-chaos-")))
        else:
            root = config.work_dir.resolve()
            root.mkdir(parents=True, exist_ok=True)
        snowflake = start_snowflake_emulator(
            root / "snowflake", root / "logs/snowflake.log", port=free_port()
        )
        certs = write_demo_certificates(root / "certs")
        service = start_mtls_service(
            certs,
            root / "logs/service.log",
            latency_ms=config.latency_ms,
            transient_rate=config.transient_rate,
            timeout_rate=config.timeout_rate,
            seed=config.seed,
        )
        stack.callback(service.stop)
        spec = chaos_spec(config, snowflake.port, service.port)
        run = ChaosRun(
            config,
            root,
            certs,
            snowflake,
            service,
            spec,
            LocalJobBackend(root / "jobs", certs.client_dir),
            rng,
        )
        stack.callback(lambda: run.snowflake.stop())  # the current one, after a restart
        entries = chaos_entries(config.entries, config.poison_rate, rng)
        poison_ids = {entry_id for entry_id, data in entries if data.get("poison")}
        _create_and_fill(run, entries)
        run.started = time.monotonic()
        run.open()
        stack.callback(run.close)
        stack.callback(run.backend.stop_all, 15)
        drained = _drive(run)
        seconds = run.elapsed()
        run.backend.stop_all(grace_seconds=15)
        return _verify(run, config, poison_ids, drained, seconds)


def _create_and_fill(run: ChaosRun, entries: list[tuple[str, Any]]) -> None:
    connection = connect(run.settings())
    try:
        target = SchemaTarget(table=CHAOS_TABLE)
        cursor = connection.cursor()
        cursor.execute(f"CREATE DATABASE IF NOT EXISTS {CHAOS_TABLE.database}")
        cursor.execute(f"CREATE SCHEMA IF NOT EXISTS {CHAOS_TABLE.database}.{CHAOS_TABLE.schema}")
        cursor.close()
        ensure_queue_table(connection, target)
        QueueClient(connection, CHAOS_TABLE).enqueue(entries)
    finally:
        connection.close()


def _drive(run: ChaosRun) -> bool:
    """Tick, kill and crash until the queue is drained; False on timeout."""
    config = run.config
    restart_after = config.entries * run.rng.uniform(*config.restart_at_fraction)
    next_tick = time.monotonic()
    next_kill = time.monotonic() + run.rng.uniform(*config.kill_gap_seconds)
    while time.monotonic() - run.started < config.timeout_seconds:
        now = time.monotonic()
        if now >= next_tick:
            next_tick = now + config.poll_seconds
            counts = run.tick()
            if counts is not None:
                done = counts.completed + counts.failed
                if (
                    config.restart_snowflake
                    and not run.snowflake_restarts
                    and done >= restart_after
                ):
                    run.restart_snowflake()
                    continue
                if (
                    counts.pending == 0
                    and counts.processing == 0
                    and run.backend.unfinished_count() == 0
                ):
                    return True
        run.enforce_deadlines()
        if len(run.kills) < config.kills and now >= next_kill and run.kill_random_worker():
            next_kill = now + run.rng.uniform(*config.kill_gap_seconds)
        time.sleep(0.05)
    return False


def _verify(
    run: ChaosRun, config: ChaosConfig, poison_ids: set[str], drained: bool, seconds: float
) -> dict[str, Any]:
    run.close()
    connection = connect(run.settings())
    try:
        queue = QueueClient(connection, CHAOS_TABLE)
        counts = queue.counts(max_attempts=config.max_attempts)
        cursor = connection.cursor()
        cursor.execute(
            f"SELECT id, error_message FROM {SchemaTarget(table=CHAOS_TABLE).dead_letter_view.sql}"
        )
        dead_letters = {str(row[0]): row[1] for row in cursor.fetchall()}
        cursor.close()
    finally:
        connection.close()
    stats = fetch_stats(run.service.port, run.certs)
    without_error = sorted(i for i, error in dead_letters.items() if not (error or "").strip())
    poison_missed = sorted(i for i in poison_ids if not (dead_letters.get(i) or "").strip())
    errors = Counter(_error_kind(error) for error in dead_letters.values())
    summaries = run.backend.summaries()
    exits = Counter(str(code) for code in run.backend.exit_codes().values())
    return {
        "entries": config.entries,
        "completed": counts.completed,
        "dead_lettered": counts.failed,
        "lost": config.entries - counts.completed - counts.failed,
        "duplicates": int(stats.get("duplicates", 0)),
        "kills": len(run.kills),
        "seconds": seconds,
        "drained": drained,
        "poison": len(poison_ids),
        "poison_dead_lettered": len(poison_ids) - len(poison_missed),
        "poison_not_dead_lettered": poison_missed[:20],
        "dead_letters_without_error": len(without_error),
        "dead_letter_errors": dict(errors.most_common()),
        "snowflake_restarts": len(run.snowflake_restarts),
        "snowflake_restart_detail": run.snowflake_restarts,
        "operator_failed_ticks": run.failed_ticks,
        "operator_reconnects": run.reconnects,
        "leases_recovered": run.leases_requeued + run.leases_dead_lettered,
        "leases_dead_lettered": run.leases_dead_lettered,
        "deadline_sigterms": len(run.deadline_terms),
        "deadline_sigkills": run.deadline_kills,
        "jobs_launched": run.jobs_launched,
        "worker_exit_codes": dict(exits),
        "worker_summaries": len(summaries),
        "http_calls": int(stats.get("requests", 0)),
        "http_status_counts": stats.get("status_counts", {}),
        "ticks": run.ticks,
        "kill_times": [kill["at"] for kill in run.kills],
    }


def _error_kind(error: str | None) -> str:
    text = (error or "").strip()
    if not text:
        return "(none)"
    if text.startswith("HTTP "):
        return text[:8]  # "HTTP 422"
    return text.split(":")[0][:40]


def passed(result: dict[str, Any]) -> bool:
    return bool(
        result["lost"] == 0
        and result["dead_letters_without_error"] == 0
        and result["poison_dead_lettered"] == result["poison"]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=10_000, help="entries (10000)")
    parser.add_argument("--workers", type=int, default=4, help="maxActiveJobs (4)")
    parser.add_argument("--kills", type=int, default=20, help="worker SIGKILLs (20)")
    parser.add_argument("--seed", type=int, default=7, help="random seed (7)")
    parser.add_argument("--no-snowflake-restart", action="store_true", help="skip the crash")
    parser.add_argument("--work-dir", type=Path, default=None, help="keep data and logs here")
    args = parser.parse_args(argv)
    config = ChaosConfig(
        entries=args.entries,
        workers=args.workers,
        kills=args.kills,
        seed=args.seed,
        restart_snowflake=not args.no_snowflake_restart,
        work_dir=args.work_dir,
    )
    print(
        f"chaos: {config.entries} entries, {config.workers} workers, {config.kills} SIGKILLs, "
        f"one Snowflake crash; service: {config.transient_rate:.0%} 503, "
        f"{config.timeout_rate:.0%} timeouts, {config.poison_rate:.1%} poison ...",
        flush=True,
    )
    result = run_chaos(config)
    ok = passed(result)
    lines = [
        f"{'PASS' if ok else 'FAIL'} in {result['seconds']} s: "
        f"{result['completed']} completed, {result['dead_lettered']} dead-lettered, "
        f"{result['lost']} lost, {result['duplicates']} duplicate successful calls",
        f"  faults: {result['kills']} worker SIGKILLs, {result['snowflake_restarts']} Snowflake "
        f"crash and restart, {result['leases_recovered']} leases recovered, "
        f"{result['operator_reconnects']} operator reconnects",
        f"  poison: {result['poison_dead_lettered']} of {result['poison']} dead-lettered; "
        f"dead letters without an error: {result['dead_letters_without_error']}",
        f"  dead letters by error: {result['dead_letter_errors']}",
        f"  Jobs launched: {result['jobs_launched']}, exit codes: {result['worker_exit_codes']}",
    ]
    print("\n".join(lines), flush=True)
    headline = ("entries", "completed", "dead_lettered", "lost", "duplicates", "kills", "seconds")
    print(json.dumps({**{k: result[k] for k in headline}, **result}), flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
