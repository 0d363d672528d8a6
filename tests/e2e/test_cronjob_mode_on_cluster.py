"""CronJob mode on the real cluster (for clusters where no CRD may be installed): the chart
with `mode: cronjob` in one namespace, no CRD, no operator, a Role in that namespace only.
The real CronJob controller starts one run a minute (`snowflake-processor reconcile-once`
from the operator image); the runs launch worker Jobs that drain the emulator's queue,
fold their summaries into the status ConfigMap and delete them. Two runs at once
(kubectl create job --from=cronjob) launch each Job once; a suspended CronJob, then a
deleted one, launches nothing; the uninstall garbage-collects the Jobs and the
certificates Secret with the spec ConfigMap.
Figures: `cronjob_mode` in `make e2e`'s JSON line."""

from __future__ import annotations

import contextlib
import json
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from snowflake_operator.cronjob.configmap_status import status_from_data
from snowflake_worker.queue import QueueClient
from tests.e2e import figures
from tests.e2e.commands import Commands
from tests.e2e.helpers import wait_until
from tests.e2e.host_services import HostServices
from tests.e2e.processors import jobs_of, new_queue, pods_of, processor_manifest
from tests.e2e.release import Release, install_cronjob_mode
from tests.support.deploy_tools import tool
from tests.support.queues import fill, statuses
from tests.support.terraform_config import TF_DIR, fargate_selectors, load_config, variable_default

NAME = "e2e-cron"
ENTRIES, POISON = 200, 3
ENTRIES_PER_JOB, MAX_ACTIVE = 100, 3
RUN_SELECTOR = f"snowflake-processor.dev/reconciler={NAME}"
PROCESSOR_SELECTOR = f"snowflake-processor.dev/processor={NAME}"


class CronJobWorld:
    """The release, its queue, and what the cluster shows of them."""

    def __init__(
        self, release: Release, queue: QueueClient, api_client: Any, commands: Commands
    ) -> None:
        self.release, self.queue, self.api, self.commands = release, queue, api_client, commands
        self.namespace = release.namespace
        self.batch: Any = client.BatchV1Api(api_client)
        self.core: Any = client.CoreV1Api(api_client)

    def runs(self) -> list[Any]:
        """The CronJob's runs: Jobs it (or kubectl create job --from) created."""
        jobs: list[Any] = self.batch.list_namespaced_job(
            self.namespace, label_selector=RUN_SELECTOR
        ).items
        return jobs

    def workers(self) -> list[Any]:
        return jobs_of(self.api, self.namespace, NAME)

    def status(self) -> dict[str, Any]:
        found = self.core.read_namespaced_config_map(f"{NAME}-status", self.namespace)
        return status_from_data(found.data)

    def terminal(self) -> int:
        counts = Counter(statuses(self.queue).values())
        return counts.get("completed", 0) + counts.get("failed", 0)

    def run_report(self, job: str) -> dict[str, Any]:
        """The JSON line a run printed (its log also holds JSON log lines on stderr)."""
        log = self.commands.kubectl("logs", f"job/{job}", "-n", self.namespace)
        for line in reversed(log.splitlines()):
            with contextlib.suppress(ValueError):
                report = json.loads(line)
                if isinstance(report, dict) and "planned" in report:
                    return report
        raise AssertionError(f"run {job} printed no report:\n{log}")


@pytest.fixture(scope="module")
def cronjob_world(
    commands: Commands,
    services: HostServices,
    project_images: tuple[str, ...],
    api_client: Any,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[CronJobWorld]:
    namespace = f"e2e-cron-{uuid.uuid4().hex[:6]}"
    queue = new_queue(services)
    fill(queue, ENTRIES - POISON)
    queue.enqueue((f"poison{i}", {"poison": True}) for i in range(POISON))
    bucket = services.certificates_bucket()
    spec = processor_manifest(
        NAME,
        namespace,
        queue,
        services,
        bucket,
        # Finished Jobs must outlast the minute until the next run counts them.
        job={
            "entriesPerJob": ENTRIES_PER_JOB,
            "maxActiveJobs": MAX_ACTIVE,
            "ttlSecondsAfterFinished": 300,
        },
    )["spec"]
    values = tmp_path_factory.mktemp("helm-cron") / "values.json"
    release = install_cronjob_mode(
        commands, services, values, namespace, [{"name": NAME, "spec": spec}]
    )
    figures.record(cronjob_mode={"helm": "deployed"})
    try:
        yield CronJobWorld(release, queue, api_client, commands)
    finally:
        commands.run("helm", "uninstall", release.name, "-n", namespace, "--wait", check=False)
        commands.kubectl("delete", "namespace", namespace, "--ignore-not-found", "--wait=false")


def wait_past(moment: datetime, seconds: float, what: str) -> None:
    """Until ``seconds`` after ``moment``: past a minute boundary, a scheduled run is due."""
    wait_until(lambda: (datetime.now(UTC) - moment).total_seconds() > seconds, 120, what, 5)


def cronjob_figures(**found: Any) -> None:
    figures.FIGURES.setdefault("cronjob_mode", {}).update(found)


@pytest.mark.timeout(900)
def test_cronjob_mode_drains_the_queue_with_the_real_cronjob_and_job_controllers(
    cronjob_world: CronJobWorld, services: HostServices, commands: Commands
) -> None:
    world = cronjob_world
    manifest = commands.helm("get", "manifest", world.release.name, "-n", world.namespace)
    kinds = {
        line.split(":", 1)[1].strip() for line in manifest.splitlines() if line.startswith("kind:")
    }
    assert kinds == {"ServiceAccount", "ConfigMap", "Role", "RoleBinding", "CronJob"}, kinds
    before = services.service_stats()
    started = time.monotonic()
    seen_workers: dict[str, Any] = {}

    def drained() -> bool:
        for job in world.workers():
            seen_workers[job.metadata.name] = job
        return world.terminal() == ENTRIES

    wait_until(drained, 420, "the CronJob's runs to drain the queue", interval=3)
    drain_seconds = time.monotonic() - started

    # A later run folds the workers' summaries into the totals and deletes their Jobs.
    wanted = {"completed": ENTRIES - POISON, "failed": POISON}
    wait_until(
        lambda: {k: (world.status().get("totals") or {}).get(k) for k in wanted} == wanted,
        180,
        "status totals in the ConfigMap to add up",
        interval=3,
    )
    status = world.status()
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "True", status
    assert status["backlog"] == 0 and status["failed"] == POISON
    counts = Counter(statuses(world.queue).values())
    duplicates = services.service_stats()["duplicates"] - before["duplicates"]
    lost = ENTRIES - counts.get("completed", 0) - counts.get("failed", 0)
    runs = world.runs()
    succeeded = [r for r in runs if (r.status.succeeded or 0) > 0]
    assert succeeded, "no run of the CronJob succeeded"
    # Runs come from the CronJob controller: owned by the CronJob.
    assert all(r.metadata.owner_references[0].kind == "CronJob" for r in runs)
    # Jobs launched once: each worker Job's entries were its own (no more Jobs than the
    # backlog asked for, each owned by the spec ConfigMap).
    spec_map = world.core.read_namespaced_config_map(f"{NAME}-spec", world.namespace)
    for job in seen_workers.values():
        (owner,) = job.metadata.owner_references
        assert (owner.kind, owner.uid) == ("ConfigMap", spec_map.metadata.uid)
    duplicate_launches = max(0, len(seen_workers) - -(-ENTRIES // ENTRIES_PER_JOB))
    cronjob_figures(
        drained=lost == 0,
        entries=ENTRIES,
        lost=lost,
        duplicates=duplicates,
        worker_jobs=len(seen_workers),
        runs=len(runs),
        drain_seconds=round(drain_seconds, 1),
        duplicate_launches=duplicate_launches,
    )
    assert counts == Counter({"completed": ENTRIES - POISON, "failed": POISON})
    assert duplicates == 0 and duplicate_launches == 0

    # The runs' pods would run on Fargate: the jobs profile's labels (its namespace is
    # Terraform's jobs namespace; this test's namespace stands in for it).
    jobs_namespace = variable_default(load_config(TF_DIR), "jobs_namespace")
    selectors = fargate_selectors(load_config(TF_DIR))
    run_pods = world.core.list_namespaced_pod(world.namespace, label_selector=RUN_SELECTOR).items
    assert run_pods
    for pod in run_pods:
        assert any(s.matches(jobs_namespace, pod.metadata.labels) for s in selectors)
        assert pod.spec.containers[0].security_context.read_only_root_filesystem is True


def test_the_runs_service_account_has_its_namespaces_rights_and_no_more(
    cronjob_world: CronJobWorld, commands: Commands
) -> None:
    account = f"system:serviceaccount:{cronjob_world.namespace}:snowflake-processor-reconciler"

    def can_i(verb: str, resource: str, namespace: str | None = None) -> bool:
        scope = ["-n", namespace or cronjob_world.namespace] if namespace != "" else ["-A"]
        result = commands.run(
            "kubectl", "auth", "can-i", verb, resource, *scope, "--as", account, check=False
        )
        return result.stdout.strip() == "yes"

    allowed = [
        ("create", "jobs.batch"),
        ("delete", "jobs.batch"),
        ("list", "pods"),
        ("create", "secrets"),
        ("patch", f"configmaps/{NAME}-status"),
        ("get", f"configmaps/{NAME}-spec"),
        ("create", "events"),
    ]
    refused = [
        ("create", "pods"),
        ("list", "secrets"),
        ("patch", f"configmaps/{NAME}-spec"),  # the spec is Helm's, read only
        ("create", "configmaps"),
        ("create", "cronjobs.batch"),
        ("patch", "cronjobs.batch"),
        ("create", "rolebindings.rbac.authorization.k8s.io"),
    ]
    assert [r for r in allowed if not can_i(*r)] == []
    assert [r for r in refused if can_i(*r)] == []
    assert not can_i("create", "jobs.batch", "default")  # another namespace
    assert not can_i("list", "namespaces", "")  # nothing cluster-wide
    cronjob_figures(rbac_namespace_only=True)


@pytest.mark.timeout(600)
def test_two_runs_at_once_launch_each_job_once_and_a_suspended_cronjob_launches_nothing(
    cronjob_world: CronJobWorld, commands: Commands
) -> None:
    world = cronjob_world
    commands.kubectl(
        "patch", "cronjob", NAME, "-n", world.namespace, "-p", '{"spec": {"suspend": true}}'
    )
    suspended_at = datetime.now(UTC)
    fill(world.queue, 250, prefix="overlap")
    workers_before = {j.metadata.name for j in world.workers()}
    runs_before = {r.metadata.name for r in world.runs()}
    if datetime.now(UTC).second > 30:  # both runs in one minute slot
        time.sleep(62 - datetime.now(UTC).second)
    names = [f"{NAME}-overlap-a", f"{NAME}-overlap-b"]
    kubectl = [tool("kubectl"), "--kubeconfig", str(commands.kubeconfig)]
    create = ["create", "job", f"--from=cronjob/{NAME}", "-n", world.namespace]
    starts = [
        subprocess.Popen([*kubectl, *create, name], stdout=subprocess.DEVNULL) for name in names
    ]
    assert [p.wait(60) for p in starts] == [0, 0]

    def finished(name: str) -> bool:
        job = world.batch.read_namespaced_job(name, world.namespace)
        return bool((job.status.succeeded or 0) + (job.status.failed or 0))

    wait_until(lambda: all(finished(n) for n in names), 300, "both runs to finish", interval=2)
    reports = [world.run_report(name) for name in names]
    planned = [set(r["planned"]) for r in reports]
    launched = [job for r in reports for job in r["launched"]]
    new_workers = {j.metadata.name for j in world.workers()} - workers_before
    duplicate_launches = len(launched) - max(len(p) for p in planned)
    assert sorted(launched) == sorted(new_workers), (reports, new_workers)
    assert len(new_workers) == 3  # 250 entries, 100 per Job, at most 3
    assert duplicate_launches == 0, reports
    already_existed = sum(len(r["already_existed"]) for r in reports)

    # Suspended: the CronJob controller started no run, past a minute boundary.
    wait_past(suspended_at, 75, "a minute past the suspension")
    scheduled = {r.metadata.name for r in world.runs()} - runs_before - set(names)
    cronjob_figures(
        overlap_duplicate_launches=duplicate_launches,
        overlap_already_existed=already_existed,
        suspended_runs=len(scheduled),
    )
    assert scheduled == set(), scheduled
    previous = figures.FIGURES["cronjob_mode"].get("duplicate_launches", 0)
    cronjob_figures(duplicate_launches=previous + duplicate_launches)


@pytest.mark.timeout(600)
def test_a_deleted_cronjob_launches_nothing_and_uninstall_collects_what_runs_made(
    cronjob_world: CronJobWorld, commands: Commands
) -> None:
    world = cronjob_world
    commands.kubectl(
        "patch", "cronjob", NAME, "-n", world.namespace, "-p", '{"spec": {"suspend": false}}'
    )
    resumed_at = datetime.now(UTC)

    def scheduled_run_finished() -> bool:
        runs = [r for r in world.runs() if r.metadata.creation_timestamp >= resumed_at]
        return any((r.status.succeeded or 0) + (r.status.failed or 0) for r in runs)

    # Running again (a scheduled run came and went), then deleted: with its runs gone
    # (the garbage collector takes them with the CronJob), nothing launches any more.
    wait_until(scheduled_run_finished, 150, "a scheduled run after resuming", interval=3)
    commands.kubectl("delete", "cronjob", NAME, "-n", world.namespace, "--wait=true")
    wait_until(
        lambda: all(
            pod.status.phase in ("Succeeded", "Failed")
            for pod in world.core.list_namespaced_pod(
                world.namespace, label_selector=RUN_SELECTOR
            ).items
        ),
        120,
        "the deleted CronJob's runs to end",
    )
    deleted_at = datetime.now(UTC)
    fill(world.queue, 50, prefix="after")  # a backlog nobody may launch for
    workers_before = {j.metadata.name for j in world.workers()}
    wait_past(deleted_at, 75, "a minute past the deletion")
    launched = {j.metadata.name for j in world.workers()} - workers_before
    runs = [r for r in world.runs() if r.metadata.creation_timestamp > deleted_at]
    cronjob_figures(deleted_launches=len(launched) + len(runs))
    assert not launched and not runs

    secret = world.status()["certificates"]["secretName"]
    commands.helm("uninstall", world.release.name, "-n", world.namespace, "--wait")

    def collected() -> bool:
        try:
            world.core.read_namespaced_secret(secret, world.namespace)
        except ApiException as error:
            if error.status == 404:
                return not world.workers() and not pods_of(world.api, world.namespace, NAME)
            raise
        return False

    wait_until(collected, 180, "the garbage collector to delete the Jobs and the Secret")
    cronjob_figures(gc_ok=True)
