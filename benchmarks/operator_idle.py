"""Operator idle cost: 100 idle SnowflakeProcessors, each on its own empty queue table.

The real operator (`snowflake-processor operator`, a process of its own, so that its CPU
is its own) against the Kubernetes emulator of the tests, the Snowflake emulator and
moto's S3, with its default settings.

- ``operator_cpu_percent_100_resources``: the operator process's CPU time (user + system)
  during a window of steady state, polls every 60 s, as a percentage of one core.
- ``operator_api_writes_per_idle_poll``: POST/PUT/PATCH/DELETE requests the API server
  served during a window, divided by the polls the operator made in it (its reconcile
  counter). A window at 60 s would hold no status heartbeat at all (one every 600 s), so
  this is measured with time compressed tenfold (polls every 6 s, heartbeat 60 s: the
  defaults' ratio), for 20 resources, over a window that holds one heartbeat of each.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from snowflake_devtools.snowflake_emulator import free_port
from snowflake_operator.queue_schema import SchemaTarget, ensure_queue_table
from snowflake_worker.connection import connect

from .harness import Bench, bench_environment, process_cpu_seconds
from .operator_world import KubeWorld, kube_world, metric_total, processor_body, wait

NAMESPACE = "bench-idle"
POLLS = "snowflake_processor_reconcile_duration_seconds_count"
IDLE = "snowflake_processor_idle"
COMPRESSION = 10  # polls every 6 s instead of 60, heartbeat 60 s instead of 600


def operator_command() -> list[str]:
    """The whole cluster is watched: the emulator cannot watch namespaces, which kopf
    needs for --namespace (the cost per resource is the same)."""
    executable = Path(sys.executable).with_name("snowflake-processor")
    return [str(executable), "operator", "--development-emulator-login"]


def idle_cost(
    resources: int = 100,
    window: float = 120.0,
    writes_resources: int = 20,
    writes_window: float = 65.0,
    command: Sequence[str] | None = None,
    environment: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Both figures, each from its own Kubernetes emulator (the same Snowflake emulator
    and tables); ``command`` and ``environment`` run another operator (the one before a
    change, say) the same way. Writes per idle poll do not depend on how many resources
    there are: that phase uses fewer, to start faster."""
    command = list(command or operator_command())
    with (
        bench_environment(latency_ms=1) as bench,
        tempfile.TemporaryDirectory(prefix="sfp-operator-idle-") as tmp,
    ):
        tables = _idle_tables(bench, resources)
        root, base = Path(tmp), dict(environment or {})
        with kube_world(_directory(root / "cpu")) as world:
            _create_processors(bench, world, tables, poll_seconds=60)
            log = root / "operator-60s.log"
            with _operator(command, {**world.environment(), **base}, log) as (pid, port):
                _settle(port, resources, timeout=600, poll_seconds=60)
                cpu = _cpu_share(world, port, pid, window)
        print(f"  operator CPU, {resources} idle resources: {cpu}", flush=True)
        with kube_world(_directory(root / "writes")) as world:
            _create_processors(bench, world, tables[:writes_resources], poll_seconds=6)
            heartbeat = {"SFP_OPERATOR_STATUS_HEARTBEAT_SECONDS": str(600 // COMPRESSION)}
            compressed = {**world.environment(), **base, **heartbeat}
            with _operator(command, compressed, root / "operator-6s.log") as (_, port):
                _settle(port, writes_resources, timeout=300, poll_seconds=6)
                writes = _writes_per_poll(world, port, writes_window)
    return {
        "resources": resources,
        "operator_cpu_percent_100_resources": cpu["cpu_percent"],
        "operator_api_writes_per_idle_poll": writes["writes_per_poll"],
        "cpu_window": cpu,
        "writes_window": writes,
    }


def _directory(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def _idle_tables(bench: Bench, count: int) -> list[str]:
    """``count`` empty queue tables in the Snowflake emulator."""
    connection = connect(bench.settings("IDLE_000"))
    cursor = connection.cursor()
    cursor.execute("CREATE DATABASE IF NOT EXISTS BENCH")
    cursor.execute("CREATE SCHEMA IF NOT EXISTS BENCH.QUEUE")
    tables = [f"IDLE_{index:03d}" for index in range(count)]
    for table in tables:
        ensure_queue_table(connection, SchemaTarget(table=bench.settings(table).table_ref))
    connection.close()
    return tables


def _create_processors(
    bench: Bench, world: KubeWorld, tables: list[str], poll_seconds: int
) -> None:
    for table in tables:
        name = table.lower().replace("_", "-")
        port = bench.snowflake.port
        body = processor_body(
            name, NAMESPACE, table, port, world.bucket, pollIntervalSeconds=poll_seconds
        )
        world.create_processor(NAMESPACE, body)


@contextmanager
def _operator(
    command: list[str], environment: dict[str, str], log: Path
) -> Iterator[tuple[int, int]]:
    """The operator as a process; yields its pid and metrics port."""
    port = free_port()
    env = {
        **os.environ,
        **environment,
        "SFP_OPERATOR_METRICS_PORT": str(port),
        "SFP_OPERATOR_HEALTH_PORT": "0",
    }
    with open(log, "wb") as output:
        process = subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT)
    try:
        yield process.pid, port
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _settle(metrics_port: int, resources: int, timeout: float, poll_seconds: float) -> None:
    """Every resource has polled, found its queue idle and written that down, and one
    more interval has passed: the polls that queued up behind the first ones (every
    resource is due at once when the operator starts) are over."""

    def idle() -> bool:
        try:
            return metric_total(metrics_port, IDLE) >= resources
        except OSError:  # not listening yet
            return False

    wait(idle, timeout=timeout, what=f"{resources} idle resources")
    time.sleep(poll_seconds + 5)


def _cpu_share(world: KubeWorld, metrics_port: int, pid: int, window: float) -> dict[str, Any]:
    world.reset_requests()
    polls, cpu, started = (
        metric_total(metrics_port, POLLS),
        process_cpu_seconds(pid),
        time.monotonic(),
    )
    time.sleep(window)
    seconds = time.monotonic() - started
    cpu_used = process_cpu_seconds(pid) - cpu
    polls_made = metric_total(metrics_port, POLLS) - polls
    writes = len(world.writes())
    return {
        "seconds": round(seconds, 1),
        "cpu_seconds": round(cpu_used, 2),
        "cpu_percent": round(100 * cpu_used / seconds, 2),
        "polls": int(polls_made),
        "cpu_ms_per_poll": round(1000 * cpu_used / polls_made, 2) if polls_made else None,
        "api_writes": writes,
    }


def _writes_per_poll(world: KubeWorld, metrics_port: int, window: float) -> dict[str, Any]:
    world.reset_requests()
    polls = metric_total(metrics_port, POLLS)
    time.sleep(window)
    writes = world.writes()
    polls_made = metric_total(metrics_port, POLLS) - polls
    kinds: dict[str, int] = {}
    for request in writes:
        kind = f"{request['method']} {request.get('resource')}/{request.get('subresource') or ''}"
        kinds[kind] = kinds.get(kind, 0) + 1
    return {
        "seconds": window,
        "poll_seconds": 60 // COMPRESSION,
        "heartbeat_seconds": 600 // COMPRESSION,
        "polls": int(polls_made),
        "api_writes": len(writes),
        "writes_per_poll": round(len(writes) / polls_made, 3) if polls_made else None,
        "writes_by_kind": kinds,
    }
