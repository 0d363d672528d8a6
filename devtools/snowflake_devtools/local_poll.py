"""The operator's poll (snowflake_operator.poll.run.run_poll) with local edges: Jobs as worker
processes, the demo's certificates on disk, a queue client the caller owns."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from snowflake_operator.poll.certificate_bundle import CertificatesOutcome
from snowflake_operator.poll.idle_gate import IdleGate
from snowflake_operator.poll.job_backend import JobBackend
from snowflake_operator.poll.run import PollEdges, PollResult, run_poll
from snowflake_operator.spec.model import ProcessorSpec
from snowflake_worker.queue import QueueClient


@dataclass
class LocalCertificates:
    """Certificates already on disk (the demo's): always ready, nothing to sync."""

    def ensure(self, spec: ProcessorSpec, now: datetime, *, launching: bool) -> CertificatesOutcome:
        return CertificatesOutcome(True, "certificates present")


@dataclass
class GivenQueue:
    """The caller's queue client; None with the reason when it has none right now."""

    queue: QueueClient | None
    error: str | None = None

    def open(self, spec: ProcessorSpec) -> tuple[QueueClient | None, str | None]:
        return self.queue, self.error

    def drop(self) -> None:
        """The caller reconnects (it sees the error in the result)."""


def local_poll(
    name: str,
    spec: ProcessorSpec,
    queue: QueueClient | None,
    jobs: JobBackend,
    now: datetime,
    *,
    idle_gate: IdleGate | None = None,
    snowflake_error: str | None = None,
) -> PollResult:
    edges = PollEdges(
        certificates=LocalCertificates(),
        queues=GivenQueue(queue, snowflake_error),
        jobs=jobs,
        idle_gate=idle_gate,
    )
    return run_poll(name, spec, edges, now)
