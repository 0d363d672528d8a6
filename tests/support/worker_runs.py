"""The real worker as a subprocess with the environment a Job would give it, and the local
mTLS service it calls: started, handed to the test, stopped afterwards."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from snowflake_devtools.certificates import DemoCertificates
from snowflake_devtools.mtls_service import start_mtls_service
from snowflake_devtools.processes import ServerProcess
from snowflake_devtools.specs import emulator_spec
from snowflake_operator.kube.worker_environment import worker_environment
from snowflake_operator.spec.model import ProcessorSpec
from snowflake_worker.identifiers import TableRef
from snowflake_worker.queue import QueueClient

StartService = Callable[..., ServerProcess]


def make_spec(snowflake_port: int, service_port: int, table: TableRef, **job: Any) -> ProcessorSpec:
    """Small, fast settings for tests; keyword arguments override them (``endpoint``: a
    dict of further spec.endpoint fields, snake_case)."""
    return emulator_spec(
        table,
        snowflake_port,
        service_port,
        endpoint={
            "timeout_seconds": job.pop("timeout_seconds", 5),
            "retries": job.pop("retries", 2),
            "retry_backoff_seconds": 0.05,
            **job.pop("endpoint", {}),
        },
        queue={
            "lease_seconds": 300,
            "max_attempts": job.pop("max_attempts", 3),
            "claim_batch": job.pop("claim_batch", 50),
            **{key: job.pop(key) for key in ("claim_seconds", "claim_max") if key in job},
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
    """One ``python -m snowflake_worker`` process and the file it leaves its summary in."""

    process: subprocess.Popen[str]
    termination: Path

    stderr: str = ""

    def wait(self, timeout: float = 120) -> tuple[int, str]:
        _, self.stderr = self.process.communicate(timeout=timeout)
        return self.process.returncode, self.stderr

    def summary(self) -> dict[str, Any]:
        return dict(json.loads(self.termination.read_text()))


class StartWorker:
    """Starts workers; :meth:`kill_all` ends the ones still running."""

    def __init__(self, certs: DemoCertificates, directory: Path) -> None:
        self.certs = certs
        self.directory = directory
        self.runs: list[WorkerRun] = []

    def __call__(
        self,
        spec: ProcessorSpec,
        name: str = "job-0",
        cert_dir: Path | None = None,
        launched_at: datetime | None = None,
        **env_overrides: str,
    ) -> WorkerRun:
        """Run `python -m snowflake_worker` with the environment a Job would get
        (launched_at: when its Job was created, as the operator passes it)."""
        termination = self.directory / f"{name}.termination"
        termination.write_text("")
        env = worker_environment(
            spec, name, launched_at=launched_at, cert_dir=str(cert_dir or self.certs.client_dir)
        )
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
        self.runs.append(run)
        return run

    def kill_all(self) -> None:
        for run in self.runs:
            if run.process.poll() is None:
                run.process.kill()
                run.process.communicate()


@contextmanager
def worker_processes(certs: DemoCertificates, directory: Path) -> Iterator[StartWorker]:
    """A way to start workers (termination files go to ``directory``); none outlives it."""
    start = StartWorker(certs, directory)
    try:
        yield start
    finally:
        start.kill_all()


@contextmanager
def mtls_services(
    certs: DemoCertificates, directory: Path, latency_ms: int, log_name: str = "mtls"
) -> Iterator[StartService]:
    """A way to start mTLS services (``latency_ms`` unless told otherwise, logs in
    ``directory``); every one started is stopped at the end."""
    started: list[ServerProcess] = []

    def start(**options: Any) -> ServerProcess:
        options.setdefault("latency_ms", latency_ms)
        log = directory / f"{log_name}-{len(started)}.log"
        server = start_mtls_service(certs, log, **options)
        started.append(server)
        return server

    try:
        yield start
    finally:
        for server in started:
            server.stop()


@dataclass
class WorkerWorld:
    """What a worker test needs: the queue in the Snowflake emulator, the demo
    certificates, and ways to start mTLS services and worker processes against them."""

    queue: QueueClient
    snowflake_port: int
    certs: DemoCertificates
    start_service: StartService
    start: StartWorker

    @property
    def table(self) -> TableRef:
        return self.queue.table

    def spec(
        self, service_port: int, *, snowflake_port: int | None = None, **job: Any
    ) -> ProcessorSpec:
        """:func:`make_spec` for this queue (and this emulator unless ``snowflake_port``)."""
        port = self.snowflake_port if snowflake_port is None else snowflake_port
        return make_spec(port, service_port, self.table, **job)
