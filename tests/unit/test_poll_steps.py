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

    def settled_by(self, jobs: Any) -> dict[str, tuple[int, int]]:
        return {}  # the Jobs here failed their preflight: they settled nothing


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


class SettledQueue(Queue):
    """The table says what each Job settled; ``broken``: the SELECT fails."""

    def __init__(self, settled: dict[str, tuple[int, int]], broken: bool = False) -> None:
        self.settled, self.broken = settled, broken
        self.asked: list[list[str]] = []

    def recover_expired_leases(self, *, lease_seconds: int, max_attempts: int) -> LeaseRecovery:
        return LeaseRecovery(requeued=4, dead_lettered=2)

    def settled_by(self, jobs: Any) -> dict[str, tuple[int, int]]:
        self.asked.append(list(jobs))
        if self.broken:
            raise RuntimeError("000625: too many statements waiting")
        return {job: self.settled[job] for job in jobs if job in self.settled}


def test_totals_come_from_the_table_so_a_killed_worker_still_counts() -> None:
    """A worker killed by SIGKILL, evicted or force-deleted leaves no summary, yet the rows
    it completed are completed: the totals count what the table says each counted Job
    settled (seen on the real cluster: summaries alone gave 2,216 of 2,400), plus what
    lease recovery dead-lettered. When the table cannot be read, the summaries stand in."""
    from snowflake_operator.poll.run import FoldedTotals, counted_totals

    before = {"completed": 100, "failed": 3}
    folded = FoldedTotals({"completed": 140, "failed": 3}, ("killed", "done", "evicted"))
    table = SettledQueue({"killed": (37, 0), "done": (40, 1), "evicted": (12, 0)})
    recovery = LeaseRecovery(requeued=4, dead_lettered=2)
    assert counted_totals(before, folded, table, recovery, suspended=False) == {
        "completed": 100 + 37 + 40 + 12,
        "failed": 3 + 1 + 2,
    }
    assert table.asked == [["killed", "done", "evicted"]]
    broken = SettledQueue({}, broken=True)
    assert counted_totals(before, folded, broken, None, suspended=False) == folded.totals
    assert counted_totals(before, folded, table, None, suspended=True) == folded.totals
    nothing = FoldedTotals(before, ())
    assert counted_totals(before, nothing, table, None, suspended=False) == before
