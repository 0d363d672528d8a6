"""`snowflake-processor reconcile-once` (CronJob mode, no CRD) as a process, against the
Kubernetes emulator, the Snowflake emulator and moto's S3: one poll per run, Jobs owned by
the spec ConfigMap, the status in a ConfigMap with events on it, the operator's admission
messages, two runs in one minute launching once, and the idle gate kept between runs.
(With the real CronJob and Job controllers: tests/e2e/test_cronjob_mode_on_cluster.py.)"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from snowflake_operator.constants import LAUNCHED_BY_ANNOTATION
from snowflake_operator.cronjob.configmap_status import IDLE_GATE_ANNOTATION, status_from_data
from snowflake_operator.poll.certificate_bundle import secret_name
from snowflake_operator.spec.admission import Refusal, admit
from snowflake_operator.spec.reference_policy import ReferencePolicy
from snowflake_operator.spec.table_claims import TableClaim
from tests.support.operator_world import NAMESPACE, OperatorWorld
from tests.support.queues import fill

pytestmark = pytest.mark.integration

NAME = "orders"


@dataclass(frozen=True)
class Outcome:
    code: int
    report: dict[str, Any]
    stderr: str


class CronJobWorld:
    """A processor without the CRD: its spec in a file and in the ConfigMap orders-spec."""

    def __init__(self, world: OperatorWorld, tmp_path: Path, **spec: Any) -> None:
        self.world = world
        self.spec = world.manifest(NAME, **spec)["spec"]
        self.spec_file = tmp_path / "spec.yaml"
        self.write_spec(self.spec)
        owner = {"metadata": {"name": f"{NAME}-spec"}, "data": {"spec.yaml": "{}"}}
        self.owner = world.core.create_namespaced_config_map(NAMESPACE, owner)

    def write_spec(self, spec: dict[str, Any]) -> None:
        self.spec_file.write_text(yaml.safe_dump(spec))

    def command(self) -> list[str]:
        executable = Path(sys.executable).with_name("snowflake-processor")
        return [
            str(executable),
            "reconcile-once",
            NAME,
            "-n",
            NAMESPACE,
            "--spec",
            str(self.spec_file),
            "--development-emulator-login",  # the tests' Snowflake is the emulator
        ]

    def run(self) -> Outcome:
        done = subprocess.run(self.command(), capture_output=True, text=True, timeout=120)
        return outcome(done.returncode, done.stdout, done.stderr)

    def status_map(self) -> Any:
        return self.world.core.read_namespaced_config_map(f"{NAME}-status", NAMESPACE)

    def status(self) -> dict[str, Any]:
        return status_from_data(self.status_map().data)

    def events(self) -> dict[str, Any]:
        return {
            e.reason: e
            for e in self.world.events()
            if e.involved_object.kind == "ConfigMap" and e.involved_object.name == f"{NAME}-status"
        }


def outcome(code: int, stdout: str, stderr: str) -> Outcome:
    lines = stdout.strip().splitlines()
    return Outcome(code, json.loads(lines[-1]) if lines else {}, stderr)


def same_minute_slot() -> None:
    """Start at least 15 s before a minute ends, so runs started now share a slot."""
    if datetime.now(UTC).second > 45:
        time.sleep(61 - datetime.now(UTC).second)


def condition(status: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(c for c in status["conditions"] if c["type"] == kind)


def test_one_run_launches_jobs_owned_by_the_spec_configmap_and_writes_its_status(
    world: OperatorWorld, tmp_path: Path
) -> None:
    fill(world.queue, 250)
    cron = CronJobWorld(world, tmp_path)
    result = cron.run()
    assert result.code == 0, result.stderr
    assert result.report["backlog"] == 250
    assert len(result.report["launched"]) == 3 and result.report["already_existed"] == []
    jobs = world.batch.list_namespaced_job(NAMESPACE).items
    assert sorted(j.metadata.name for j in jobs) == sorted(result.report["launched"])
    for job in jobs:
        (owner,) = job.metadata.owner_references
        assert (owner.kind, owner.name, owner.uid) == (
            "ConfigMap",
            "orders-spec",
            cron.owner.metadata.uid,
        )
        assert owner.controller is True and not owner.block_owner_deletion
        assert job.metadata.annotations[LAUNCHED_BY_ANNOTATION]  # this run's host name
    secret = world.secret(secret_name(NAME))
    assert [o.uid for o in secret.metadata.owner_references] == [cron.owner.metadata.uid]

    status = cron.status()
    assert status["backlog"] == 250 and status["activeJobs"] == 3 and status["pending"] == 250
    assert status["totals"] == {"completed": 0, "failed": 0}
    assert condition(status, "Ready")["status"] == "True"
    assert status["certificates"]["secretName"] == secret_name(NAME)
    assert isinstance(status["lastPollTime"], str)
    assert cron.status_map().data["backlog"] == "250"  # readable as it is
    events = cron.events()
    assert {"JobsLaunched", "CertificatesSynced"} <= set(events)

    # A second run in the same minute sees the Jobs (a list call): nothing more to launch.
    again = cron.run()
    assert again.code == 0 and again.report["planned"] == [] and again.report["launched"] == []
    assert len(world.batch.list_namespaced_job(NAMESPACE).items) == 3


def test_two_runs_at_once_launch_each_job_once(world: OperatorWorld, tmp_path: Path) -> None:
    fill(world.queue, 250)
    cron = CronJobWorld(world, tmp_path)
    same_minute_slot()
    processes = [
        subprocess.Popen(cron.command(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    results = [outcome(p.wait(120), *p.communicate()) for p in processes]
    assert all("planned" in r.report for r in results), results  # each says what it did
    launched = [job for r in results for job in r.report["launched"]]
    jobs = world.batch.list_namespaced_job(NAMESPACE).items
    assert len(jobs) == 3 and len(launched) == 3, [r.report for r in results]
    assert sorted(launched) == sorted(j.metadata.name for j in jobs)
    planned = [r.report["planned"] for r in results if r.report.get("planned")]
    assert all(p == planned[0] for p in planned)  # the same names: the loser gets 409s
    # Both may write the status: the one that read it first wins, the other says so.
    for result in results:
        assert result.code == 0 or "changed during this run" in result.stderr, result.stderr
        assert result.code == 0 or result.report["status_written"] is False


def test_two_runs_creating_the_certificates_secret_at_once_both_succeed(
    world: OperatorWorld, tmp_path: Path
) -> None:
    """Both runs find no Secret and create it; the API server holds the creates, so the
    second gets 409 AlreadyExists. That run looks again, finds the Secret the first wrote
    from the same objects, and goes on: a concurrent create is not a certificates failure."""
    fill(world.queue, 250)
    cron = CronJobWorld(world, tmp_path)
    world.kube.delay_writes("create", "secrets", 3)
    same_minute_slot()
    processes = [
        subprocess.Popen(cron.command(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    results = [outcome(p.wait(120), *p.communicate()) for p in processes]
    creates = world.kube.requests(action="create", resource="secrets")
    assert [c["status"] for c in creates] in ([201, 409], [409, 201]), creates
    jobs = sorted(j.metadata.name for j in world.batch.list_namespaced_job(NAMESPACE).items)
    assert len(jobs) == 3
    for result in results:
        assert sorted(result.report["planned"]) == jobs, result  # certificates ready in both
        # Exit 0, or 1 with the one line of a lost status write; never the certificates.
        assert result.code == 0 or result.stderr.strip().splitlines() == [
            f"reconcile-once: {result.report['reason']}"
        ]
        assert "CertificatesSynced" not in result.stderr, result
    assert condition(cron.status(), "CertificatesSynced")["status"] == "True"


@pytest.mark.parametrize(
    ("hostile", "invalid", "launches"),
    [
        # Five failed Jobs in a row may be true: one probe Job at a time, not none for ever.
        (
            {"launchBackoffUntil": "9999-12-31T00:00:00Z", "consecutiveFailedJobs": "5"},
            ["launchBackoffUntil"],
            1,
        ),
        ({"totals": "[1]"}, ["totals"], 3),
        ({"conditions": "[" * 50_000 + "]" * 50_000}, ["conditions"], 3),
        (
            {"consecutiveFailedJobs": "-3", "totals": '{"completed": "many"}'},
            ["totals", "consecutiveFailedJobs"],
            3,
        ),
    ],
    ids=["backoff-forever", "totals-a-list", "deep-nesting", "wrong-types"],
)
def test_a_status_configmap_written_by_hand_is_replaced_never_obeyed(
    world: OperatorWorld,
    tmp_path: Path,
    hostile: dict[str, str],
    invalid: list[str],
    launches: int,
) -> None:
    """Whoever may edit ConfigMaps in the namespace can write the status; a run reads what
    it needs of it (totals, launch backoff, conditions) only as far as it is valid, says
    which fields it replaced, and goes on polling."""
    fill(world.queue, 250)
    cron = CronJobWorld(world, tmp_path)
    status_map = {"metadata": {"name": f"{NAME}-status"}, "data": hostile}
    world.core.create_namespaced_config_map(NAMESPACE, status_map)
    result = cron.run()
    assert result.code == 0, result.stderr
    assert len(result.report["launched"]) == launches
    warning = cron.events()["StatusInvalid"]
    assert warning.type == "Warning"
    assert all(field in warning.message for field in invalid), warning.message
    status = cron.status()
    assert status["totals"] == {"completed": 0, "failed": 0}
    assert status.get("launchBackoffUntil") is None
    assert cron.run().code == 0  # the status it wrote is valid: no warning the next time
    assert [e.reason for e in world.events()].count("StatusInvalid") == 1


def test_an_invalid_spec_is_refused_with_the_operators_own_message(
    world: OperatorWorld, tmp_path: Path
) -> None:
    fill(world.queue, 10)
    cron = CronJobWorld(world, tmp_path)
    bad = {**cron.spec, "job": {**cron.spec["job"], "cpu": "3"}}
    cron.write_spec(bad)
    result = cron.run()
    expected = admit(bad, ReferencePolicy((".*",), (".*",), ()), TableClaim("", "", ""), [])
    assert isinstance(expected, Refusal)
    assert result.code == 2
    assert result.stderr.strip().splitlines() == [
        f"reconcile-once: InvalidSpec: {expected.message}"
    ]
    ready = condition(cron.status(), "Ready")
    assert (ready["status"], ready["reason"], ready["message"]) == (
        "False",
        "InvalidSpec",
        expected.message,
    )
    assert cron.events()["InvalidSpec"].message == expected.message
    assert world.batch.list_namespaced_job(NAMESPACE).items == []


def test_finished_jobs_are_counted_into_the_totals_once_and_deleted(
    world: OperatorWorld, tmp_path: Path
) -> None:
    fill(world.queue, 42)
    cron = CronJobWorld(world, tmp_path)
    assert cron.run().code == 0
    (job,) = world.batch.list_namespaced_job(NAMESPACE).items
    world.finish(job)  # as the Job controller would, with the worker's summary on its pod
    world.settle_as(job, 40, 2)  # what its worker left in the table
    world.worker_pod(job, {"completed": 40, "failed": 2})
    result = cron.run()
    assert result.code == 0, result.stderr
    assert result.report["counted_jobs"] == [job.metadata.name]
    assert cron.status()["totals"] == {"completed": 40, "failed": 2}
    remaining = {j.metadata.name for j in world.batch.list_namespaced_job(NAMESPACE).items}
    assert job.metadata.name not in remaining  # deleted once counted (history limit 0)
    assert "JobSucceeded" in cron.events()
    assert cron.run().code == 0
    assert cron.status()["totals"] == {"completed": 40, "failed": 2}  # not counted twice


def test_the_idle_gate_sleeps_across_runs(world: OperatorWorld, tmp_path: Path) -> None:
    """An empty queue: the first run's full poll finds it idle and keeps the table's
    signature on the status ConfigMap; the next run compares it without a warehouse."""
    cron = CronJobWorld(world, tmp_path)
    first = cron.run()
    assert first.code == 0 and first.report["idle"] is False
    assert json.loads(cron.status_map().metadata.annotations[IDLE_GATE_ANNOTATION])["signature"]
    second = cron.run()
    assert second.code == 0 and second.report["idle"] is True
    fill(world.queue, 5)  # the table changed: the next run wakes up and launches
    third = cron.run()
    assert third.code == 0 and third.report["idle"] is False and len(third.report["launched"]) == 1


def test_a_missing_spec_file_or_owner_is_one_line_and_exit_2(
    world: OperatorWorld, tmp_path: Path
) -> None:
    cron = CronJobWorld(world, tmp_path)
    cron.spec_file.unlink()
    missing = cron.run()
    assert missing.code == 2
    assert missing.stderr.strip().splitlines() == [
        f"reconcile-once: cannot read the spec file {cron.spec_file}: No such file or directory"
    ]
    cron.write_spec(cron.spec)
    world.core.delete_namespaced_config_map(f"{NAME}-spec", NAMESPACE)
    orphan = cron.run()
    assert orphan.code == 2 and len(orphan.stderr.strip().splitlines()) == 1
    assert f"ConfigMap {NAMESPACE}/{NAME}-spec does not exist" in orphan.stderr


def test_fields_of_a_newer_crd_are_left_out_with_a_warning_as_the_operator_does(
    world: OperatorWorld, tmp_path: Path
) -> None:
    fill(world.queue, 5)
    cron = CronJobWorld(world, tmp_path)
    cron.write_spec({**cron.spec, "job": {**cron.spec["job"], "futureField": 1}})
    result = cron.run()
    assert result.code == 0, result.stderr
    assert result.report["unknown_fields"] == ["spec.job.futureField"]
    assert len(result.report["launched"]) == 1  # the rest of the spec is used
    assert "spec.job.futureField" in cron.events()["UnknownFields"].message
