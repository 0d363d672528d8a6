"""Shared set-up for benchmarks: emulator, certificates, mTLS service and a fresh queue."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from snowflake_devtools.certificates import DemoCertificates, write_demo_certificates
from snowflake_devtools.mtls_service import start_mtls_service
from snowflake_devtools.processes import ServerProcess, start_snowflake_emulator
from snowflake_devtools.specs import emulator_spec
from snowflake_operator.kube.worker_environment import worker_environment
from snowflake_operator.queue_schema import SchemaTarget, ensure_queue_table
from snowflake_operator.spec.model import ProcessorSpec
from snowflake_worker.connection import connect
from snowflake_worker.queue import QueueClient
from snowflake_worker.snowflake_settings import SnowflakeSettings

# Set to a folder holding another checkout's snowflake_worker to run the workers from it
# (before/after comparisons); everything else still runs from this tree.
WORKER_PYTHONPATH = "BENCH_WORKER_PYTHONPATH"


def process_cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a process has used so far, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    user, system = int(fields[11]), int(fields[12])  # utime, stime (fields 14, 15)
    return (user + system) / os.sysconf("SC_CLK_TCK")


@dataclass
class Bench:
    root: Path
    snowflake: ServerProcess
    service: ServerProcess
    certs: DemoCertificates

    def settings(self, table: str) -> SnowflakeSettings:
        return SnowflakeSettings(
            account="bench",
            database="BENCH",
            schema_name="QUEUE",
            table=table,
            auth="emulator",
            host="127.0.0.1",
            port=self.snowflake.port,
        )

    def fresh_queue(self, table: str) -> QueueClient:
        settings = self.settings(table)
        connection = connect(settings)
        cursor = connection.cursor()
        cursor.execute("CREATE DATABASE IF NOT EXISTS BENCH")
        cursor.execute("CREATE SCHEMA IF NOT EXISTS BENCH.QUEUE")
        cursor.execute(f"DROP TABLE IF EXISTS {settings.table_ref.sql}")
        ensure_queue_table(connection, SchemaTarget(table=settings.table_ref))
        return QueueClient(connection, settings.table_ref)

    def drain_setup(
        self, table: str, entries: int, concurrency: int
    ) -> tuple[QueueClient, ProcessorSpec]:
        """A fresh queue of ``entries`` identical-sized entries, and the spec that drains it
        all in one Job: the production defaults but ``concurrency``."""
        queue = self.fresh_queue(table)
        queue.enqueue((f"b{i:06d}", {"n": i, "text": "x" * 64}) for i in range(entries))
        job = {"entries_per_job": entries, "concurrency": concurrency}
        return queue, emulator_spec(queue.table, self.snowflake.port, self.service.port, job=job)

    def start_worker(self, spec: ProcessorSpec, name: str) -> subprocess.Popen[bytes]:
        termination = self.root / f"{name}.termination"
        termination.write_text("")
        env = worker_environment(spec, name, cert_dir=str(self.certs.client_dir))
        env.update(
            SFP_TERMINATION_MESSAGE_PATH=str(termination),
            PATH=os.environ["PATH"],
            SFP_LOG_LEVEL="WARNING",
        )
        if other := os.environ.get(WORKER_PYTHONPATH):  # e.g. another commit's worker/
            env["PYTHONPATH"] = other
        log = open(self.root / f"{name}.log", "wb")  # noqa: SIM115 (closed with the process)
        return subprocess.Popen(
            [sys.executable, "-m", "snowflake_worker"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def server_cpu_seconds(self) -> dict[str, float]:
        """CPU time the service and the emulator have used so far."""
        return {
            "service": process_cpu_seconds(self.service.process.pid),
            "emulator": process_cpu_seconds(self.snowflake.process.pid),
        }

    def server_cpu_shares(self, before: dict[str, float], wall: float) -> dict[str, float]:
        """``service_cpu_share_of_a_core`` and the emulator's, since ``before``."""
        after = self.server_cpu_seconds()
        return {
            f"{name}_cpu_share_of_a_core": round((after[name] - before[name]) / wall, 2)
            for name in after
        }

    def termination(self, name: str) -> dict[str, Any]:
        import json

        return dict(json.loads((self.root / f"{name}.termination").read_text()))


@contextmanager
def bench_environment(
    latency_ms: float, snowflake_options: tuple[str, ...] | None = None, **service: Any
) -> Iterator[Bench]:
    """The emulator, certificates and the mTLS service. By default the emulator keeps the
    model's key and default handling (002 widens a key column, which DuckDB refuses while
    it enforces the key), not its table locks or length probes: the figures stay
    comparable with earlier runs and the legacy design baseline's. ``snowflake_options`` replace
    ``--no-table-locks`` (the fleet run: ``--lock-hold-ms 350``)."""
    options = ("--no-table-locks",) if snowflake_options is None else snowflake_options
    with ExitStack() as stack:
        root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="sfp-bench-")))
        snowflake = start_snowflake_emulator(
            root / "snowflake", root / "snowflake.log", options=(*options, "--no-length-checks")
        )
        stack.callback(snowflake.stop)
        certs = write_demo_certificates(root / "certs")
        server = start_mtls_service(certs, root / "service.log", latency_ms=latency_ms, **service)
        stack.callback(server.stop)
        yield Bench(root, snowflake, server, certs)
