"""Integration fixtures: a queue table in the emulator, demo certificates, the mTLS service,
and a way to run the real worker as a subprocess with the Job's environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from snowflake_devtools.certificates import DemoCertificates, write_demo_certificates
from snowflake_devtools.mtls_service import start_mtls_service
from snowflake_devtools.processes import ServerProcess
from snowflake_devtools.specs import emulator_spec
from snowflake_operator.queue_schema import SchemaTarget, ensure_queue_table
from snowflake_operator.spec import (
    ProcessorSpec,
)
from snowflake_operator.worker_environment import worker_environment
from snowflake_worker.identifiers import TableRef
from snowflake_worker.queue import QueueClient
from tests.support.kube_fixtures import kube_api, kube_client, kubeconfig  # noqa: F401 (shared fixtures)

pytestmark = pytest.mark.integration


@pytest.fixture
def queue_table(snowflake_connect: Callable[..., Any], database_name: str) -> TableRef:
    table = TableRef(database_name, "QUEUE", "WORK_QUEUE")
    ensure_queue_table(snowflake_connect(), SchemaTarget(table=table))
    return table


@pytest.fixture
def queue(snowflake_connect: Callable[..., Any], queue_table: TableRef) -> QueueClient:
    return QueueClient(snowflake_connect(database=queue_table.database), queue_table)


def fetch_rows(queue: QueueClient, where: str = "TRUE") -> list[dict[str, Any]]:
    """Test-only read of the table (the protocol module has no 'dump' statement)."""
    cursor = queue._connection.cursor()
    cursor.execute(
        "SELECT id, status, retry_count, claim_token, error_message, processor_id "
        f"FROM {queue.table.sql} WHERE {where} ORDER BY id"
    )
    names = ["id", "status", "retry_count", "claim_token", "error_message", "processor_id"]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> DemoCertificates:
    return write_demo_certificates(tmp_path_factory.mktemp("certs"))


@pytest.fixture
def start_service(
    certs: DemoCertificates, tmp_path: Path
) -> Iterator[Callable[..., ServerProcess]]:
    started: list[ServerProcess] = []

    def start(**options: Any) -> ServerProcess:
        options.setdefault("latency_ms", 5)
        server = start_mtls_service(certs, tmp_path / f"service-{len(started)}.log", **options)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def make_spec(snowflake_port: int, service_port: int, table: TableRef, **job: Any) -> ProcessorSpec:
    """Small, fast settings for tests; keyword arguments override them."""
    return emulator_spec(
        table,
        snowflake_port,
        service_port,
        endpoint={
            "timeout_seconds": job.pop("timeout_seconds", 5),
            "retries": job.pop("retries", 2),
            "retry_backoff_seconds": 0.05,
        },
        queue={
            "lease_seconds": 300,
            "max_attempts": job.pop("max_attempts", 3),
            "claim_batch": job.pop("claim_batch", 50),
            "retry_delay_seconds": job.pop("retry_delay_seconds", 0),
        },
        job={
            "entries_per_job": 10_000,
            "concurrency": 8,
            "active_deadline_seconds": 120,
            "grace_seconds": 10,
            "flush_every": 50,
            "flush_seconds": 0.5,
            **job,
        },
    )


@dataclass
class WorkerRun:
    process: subprocess.Popen[str]
    termination: Path

    stderr: str = ""

    def wait(self, timeout: float = 120) -> tuple[int, str]:
        _, self.stderr = self.process.communicate(timeout=timeout)
        return self.process.returncode, self.stderr

    def summary(self) -> dict[str, Any]:
        return dict(json.loads(self.termination.read_text()))


@pytest.fixture
def start_worker(
    snowflake_server: ServerProcess, certs: DemoCertificates, tmp_path: Path
) -> Iterator[Callable[..., WorkerRun]]:
    """Run `python -m snowflake_worker` with the environment a Job would get."""
    runs: list[WorkerRun] = []

    def start(
        spec: ProcessorSpec,
        name: str = "job-0",
        cert_dir: Path | None = None,
        **env_overrides: str,
    ) -> WorkerRun:
        termination = tmp_path / f"{name}.termination"
        termination.write_text("")
        env = worker_environment(spec, name, cert_dir=str(cert_dir or certs.client_dir))
        env.update(SFP_TERMINATION_MESSAGE_PATH=str(termination), **env_overrides)
        env.update(PATH=os.environ["PATH"], PYTHONUNBUFFERED="1")
        process = subprocess.Popen(
            [sys.executable, "-m", "snowflake_worker"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        run = WorkerRun(process, termination)
        runs.append(run)
        return run

    yield start
    for run in runs:
        if run.process.poll() is None:
            run.process.kill()
            run.process.communicate()
