"""One poll's steps in order (poll.run_poll), with its edges in memory: what a poll that
fails half-way leaves to the next one. The Kubernetes and Snowflake sides of the same
steps run for real in tests/integration/test_operator*.py."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from snowflake_operator.poll.certificate_bundle import CertificatesOutcome
from snowflake_operator.poll.job_history import JobRecord, job_record
from snowflake_operator.poll.run import PollEdges, run_poll
from snowflake_operator.spec.model import ProcessorSpec
from snowflake_worker.queue_records import LeaseRecovery, QueueCounts
from tests.support.specs import MINIMAL_SPEC, processor_spec

NOW = datetime(2026, 11, 26, 10, 0, 0, tzinfo=UTC)
FATAL = json.dumps({"event": "fatal", "error": "the service at https://x is unreachable"})


class Queue:
    def recover_expired_leases(self, *, lease_seconds: int, max_attempts: int) -> LeaseRecovery:
        return LeaseRecovery(0, 0)

    def counts(self, *, max_attempts: int) -> QueueCounts:
        return QueueCounts(5000, 5000, 0, 0, 0, 30)


class Queues:
    def open(self, spec: ProcessorSpec) -> tuple[Any, str | None]:
        return Queue(), None

    def drop(self) -> None:
        pass


class Certificates:
    def ensure(self, spec: ProcessorSpec, now: datetime, *, launching: bool) -> CertificatesOutcome:
        return CertificatesOutcome(True, "certificates present", secret_name="c")


class Jobs:
    """Three Jobs that failed their preflight; launching fails until ``api_up``."""

    def __init__(self) -> None:
        failed = {"type": "Failed", "status": "True", "lastTransitionTime": "2026-11-26T09:59:00Z"}
        done = {"conditions": [failed], "failed": 1}
        self.finished = [job_record(f"j{i}", {}, done) for i in range(3)]
        self.counted: list[str] = []
        self.launched: list[str] = []
        self.api_up = False

    def unfinished_count(self) -> int:
        return 0

    def launch(self, name: str, spec: ProcessorSpec, certificates_secret: str) -> bool:
        if not self.api_up:
            raise RuntimeError("the API server refused the Job")
        self.launched.append(name)
        return True

    def records(self) -> list[JobRecord]:
        return [r for r in self.finished if r.name not in self.counted]

    def summaries(self) -> dict[str, str | None]:
        return {r.name: FATAL for r in self.finished}

    def mark_counted(self, name: str) -> None:
        self.counted.append(name)

    def delete(self, name: str) -> None:
        pass


def test_a_poll_that_fails_to_launch_leaves_its_finished_jobs_to_the_next_one() -> None:
    """The folded Jobs are marked counted only once the poll went through: their totals
    and their place in the launch backoff's streak travel in the status it writes."""
    spec = processor_spec(MINIMAL_SPEC, job={"launchBackoff": {"afterFailedJobs": 5}})
    jobs = Jobs()
    edges = PollEdges(certificates=Certificates(), queues=Queues(), jobs=jobs, history=jobs)
    with pytest.raises(RuntimeError):
        run_poll("orders", spec, edges, NOW)
    assert jobs.counted == []  # nothing lost: the next poll folds them again
    jobs.api_up = True
    result = run_poll("orders", spec, edges, NOW, {"totals": {"completed": 10, "failed": 0}})
    assert sorted(jobs.counted) == ["j0", "j1", "j2"]
    assert result.status["consecutiveFailedJobs"] == 3  # below the threshold of 5: launching
    assert result.status["totals"] == {"completed": 10, "failed": 0}
    assert len(jobs.launched) == 3  # ceil(5000 / 2000)
    assert [reason for _, reason, _ in result.events].count("JobFailed") == 3
