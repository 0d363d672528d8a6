"""`helm upgrade` from release 0.1.0 to this one, mid-drain, on the real cluster.

Release 0.1.0 (commit e25aa23) is installed as a user installed it: its chart (with its
`crds/`, so its CRD writes its defaults into every resource), its operator and worker
images built from that commit's Dockerfiles. Two resources drain their queues through
its Jobs: one with every Job default (0.5 vCPU / 1Gi, a size this release refuses), one
with a smaller cpu and a TTL of its own. Mid-drain the release is upgraded as
docs/operations.md says (the CRD adopted once, `rbac.scope` kept at the old default):
first without `rbac.scope`, which must be refused by name. Then every resource must be
Ready under the new operator with its stored spec mapped, nothing lost, no poll slot
launched by both releases, the finished Jobs removed by the new rules, and kopf's old
finalizer gone. `helm rollback` is not supported past 0.2.0 (CHANGELOG.md): the test
shows what it does (0.1.0's operator refuses what 0.2.0 wrote, visibly, and loses
nothing) and that rolling forward again serves the queue. Last, the release is
uninstalled before its resources, which must still go at once: nothing Terminating.

This test deletes the CRD before installing 0.1.0, so it runs first among the tests that
use the release (conftest.py orders it) and holds the release lock throughout.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from snowflake_devtools.cluster.locking import file_lock
from snowflake_devtools.cluster.project_images import current_tags
from snowflake_devtools.cluster.settings import cache_root
from snowflake_operator.spec.stored_spec import SPEC_DEFAULTS_ANNOTATION, SPEC_UPGRADED
from snowflake_worker.queue import QueueClient
from tests.e2e import figures, release, upgrade
from tests.e2e.commands import Commands
from tests.e2e.helpers import wait_until
from tests.e2e.host_services import HostServices
from tests.e2e.processors import condition, jobs_of, new_queue, read_processor
from tests.e2e.test_drain_on_cluster import terminal_counts
from tests.support.queues import fill

DEFAULTS = "upgrade-defaults"  # every Job default of 0.1.0
OWN_TTL = "upgrade-own-ttl"  # cpu 0.25 and a TTL of its own
ENTRIES = {DEFAULTS: 400, OWN_TTL: 200}
MORE_AFTER_ROLLBACK = 20
KOPF_FINALIZER = "kopf.zalando.org/KopfFinalizerMarker"
VERSION = (release.ROOT / "VERSION").read_text().strip()


def _done(queue: QueueClient) -> int:
    counts = terminal_counts(queue)
    return counts.get("completed", 0) + counts.get("failed", 0)


def _events(api_client: Any, namespace: str, reason: str) -> list[Any]:
    core: Any = client.CoreV1Api(api_client)
    found: list[Any] = core.list_namespaced_event(
        namespace, field_selector=f"reason={reason}"
    ).items
    return found


def _upgrade_values(services: HostServices, jobs_ns: str, **more: Any) -> dict[str, Any]:
    values = release.chart_values(services, jobs_ns)
    del values["metrics"]  # this test looks at the resources, not at the alerts
    values["allowed"] = {"secrets": [upgrade.CERTIFICATES_SECRET]}
    values.update(more)
    return values


@pytest.mark.timeout(1800)
def test_an_upgrade_from_0_1_0_mid_drain_keeps_every_resource_running(
    commands: Commands,
    services: HostServices,
    api_client: Any,
    earlier_release_images: dict[str, str],
    project_images: tuple[str, ...],
    tmp_path: Path,
) -> None:
    operator_ns, jobs_ns = release.terraform_namespaces()
    with file_lock(cache_root() / "release.lock"):
        release.uninstall(commands, operator_ns, jobs_ns)
        upgrade.remove_crd(commands)
        try:
            _install_0_1_0_then_upgrade(
                commands, services, api_client, operator_ns, jobs_ns, tmp_path
            )
        finally:
            release.uninstall(commands, operator_ns, jobs_ns)


def _install_0_1_0_then_upgrade(
    commands: Commands,
    services: HostServices,
    api_client: Any,
    operator_ns: str,
    jobs_ns: str,
    tmp_path: Path,
) -> None:
    for namespace in (operator_ns, jobs_ns):
        commands.apply(release.namespace_manifest(namespace))
    commands.apply(upgrade.certificates_secret(services, jobs_ns))
    queues = {name: new_queue(services) for name in ENTRIES}
    for name, count in ENTRIES.items():
        fill(queues[name], count)
    duplicates_before = services.service_stats()["duplicates"]

    old_values = upgrade.helm_values_file(
        tmp_path, "values-0.1.0.json", upgrade.earlier_values(jobs_ns)
    )
    # 0.1.0's chart installs its crds/ itself; this API server refuses that CRD as shipped
    # (upgrade.py says why), so it goes in first, fixed, and the chart skips it.
    crd_defaults_dropped = upgrade.install_earlier_crd(commands)
    assert crd_defaults_dropped == 2
    commands.helm(
        "install", release.RELEASE, str(upgrade.earlier_chart()), "-n", operator_ns,
        "-f", str(old_values), "--skip-crds", "--wait", "--timeout", "5m",
    )  # fmt: skip
    commands.apply(
        upgrade.processor_0_1_0(DEFAULTS, jobs_ns, queues[DEFAULTS], services, {"maxActiveJobs": 1})
    )
    commands.apply(
        upgrade.processor_0_1_0(
            OWN_TTL, jobs_ns, queues[OWN_TTL], services,
            {"maxActiveJobs": 1, "cpu": "0.25", "ttlSecondsAfterFinished": 120},
        )
    )  # fmt: skip
    stored = read_processor(api_client, jobs_ns, DEFAULTS)["spec"]["job"]
    # 0.1.0's CRD wrote its defaults into the stored object: what this release must read.
    assert (stored["cpu"], stored["memory"], stored["ttlSecondsAfterFinished"]) == (
        "0.5",
        "1Gi",
        3600,
    )
    old_worker = upgrade.earlier_tags()["worker"]
    new_worker = current_tags(release.ROOT)["worker"]

    with upgrade.watching_jobs(api_client, jobs_ns) as jobs:
        wait_until(
            lambda: _done(queues[DEFAULTS]) >= 50 and _done(queues[OWN_TTL]) >= 25,
            600,
            "release 0.1.0 to drain part of each queue",
            interval=2,
        )
        assert jobs.launched_with(old_worker) > 0
        finalizers = read_processor(api_client, jobs_ns, DEFAULTS)["metadata"].get("finalizers")
        assert finalizers == [KOPF_FINALIZER]  # what 0.1.0 put on every resource

        # As docs/install.md says for a release whose chart still had crds/: adopt it once.
        release.adopt_crd(commands, operator_ns)
        release.apply_s3_credentials(commands, operator_ns)
        post_render = release.development_login(tmp_path)
        narrowing = upgrade.helm_values_file(
            tmp_path, "values-default-scope.json", _upgrade_values(services, jobs_ns)
        )
        refused = commands.run(
            "helm", "upgrade", release.RELEASE, str(release.CHART), "-n", operator_ns,
            "-f", str(narrowing), *post_render, "--timeout", "5m", check=False, timeout=420,
        )  # fmt: skip
        assert refused.returncode != 0 and "rbac.scope" in refused.stderr, refused
        new_values = upgrade.helm_values_file(
            tmp_path,
            "values.json",
            _upgrade_values(services, jobs_ns, rbac={"scope": "cluster"}),
        )
        began = time.monotonic()
        commands.helm(
            "upgrade", release.RELEASE, str(release.CHART), "-n", operator_ns,
            "-f", str(new_values), *post_render, "--wait", "--timeout", "5m",
        )  # fmt: skip
        upgrade_seconds = time.monotonic() - began

        # Every resource Ready under the new operator, its stored spec mapped once.
        for name in ENTRIES:
            upgrade.wait_ready(api_client, jobs_ns, name, timeout=300)
        mapped = {name: read_processor(api_client, jobs_ns, name) for name in ENTRIES}
        for resource in mapped.values():
            assert resource["metadata"]["annotations"][SPEC_DEFAULTS_ANNOTATION] == VERSION
            assert KOPF_FINALIZER not in (resource["metadata"].get("finalizers") or [])
        defaults_job, own_job = mapped[DEFAULTS]["spec"]["job"], mapped[OWN_TTL]["spec"]["job"]
        assert (defaults_job["cpu"], defaults_job["memory"]) == ("0.5", "1792Mi")
        assert defaults_job["ttlSecondsAfterFinished"] == 300
        assert defaults_job["successfulJobsHistoryLimit"] == 0
        assert defaults_job["failedJobsHistoryLimit"] == 0
        assert (own_job["cpu"], own_job["memory"]) == ("0.25", "1792Mi")
        assert own_job["ttlSecondsAfterFinished"] == 120  # set by its author: kept
        upgraded = {e.involved_object.name for e in _events(api_client, jobs_ns, SPEC_UPGRADED)}
        assert upgraded == set(ENTRIES)

        for name, queue in queues.items():
            wait_until(
                lambda q=queue, n=name: _done(q) == ENTRIES[n],
                900,
                f"{name}'s queue to drain after the upgrade",
                interval=2,
            )
        assert jobs.launched_with(new_worker) > 0
        # Finished Jobs go by the new rules (history 0: deleted once counted), those
        # 0.1.0 launched included.
        wait_until(
            lambda: not any(jobs_of(api_client, jobs_ns, name) for name in ENTRIES),
            300,
            "every finished Job to be removed",
            interval=2,
        )
        launched_twice = jobs.slots_launched_by_both()
        most_unfinished = dict(jobs.most_unfinished)

    lost = {name: ENTRIES[name] - _done(queue) for name, queue in queues.items()}
    duplicates = services.service_stats()["duplicates"] - duplicates_before
    rollback = _rollback_then_forward(
        commands, services, api_client, operator_ns, jobs_ns, queues[DEFAULTS],
        [*post_render, "-f", str(new_values)],
    )  # fmt: skip
    nothing_terminating = _uninstall_before_resources(commands, api_client, operator_ns, jobs_ns)
    figures.record(
        upgrade={
            "from": upgrade.RELEASE_0_1_0.version,
            "to": VERSION,
            "resources_ready": len(mapped),
            "lost": sum(lost.values()),
            "duplicate_launches": launched_twice,
            "duplicate_calls": duplicates,
            "most_unfinished_jobs": most_unfinished,
            "jobs_launched": {
                "0.1.0": jobs.launched_with(old_worker),
                VERSION: jobs.launched_with(new_worker),
            },
            "upgrade_seconds": round(upgrade_seconds, 1),
            "rollback": rollback,
            "uninstall_first_leaves_nothing_terminating": nothing_terminating,
        }
    )
    assert lost == dict.fromkeys(ENTRIES, 0)
    assert launched_twice == 0
    assert all(count <= 1 for count in most_unfinished.values()), most_unfinished
    assert nothing_terminating


def _rollback_then_forward(
    commands: Commands,
    services: HostServices,
    api_client: Any,
    operator_ns: str,
    jobs_ns: str,
    queue: QueueClient,
    upgrade_args: list[str],
) -> dict[str, Any]:
    """`helm rollback` to 0.1.0: its operator must refuse what 0.2.0 wrote (Ready False,
    InvalidSpec), launch nothing and lose nothing; upgrading again serves the queue."""
    history = json.loads(commands.helm("history", release.RELEASE, "-n", operator_ns, "-o", "json"))
    (first,) = [h["revision"] for h in history if h["app_version"] == upgrade.RELEASE_0_1_0.version]
    commands.helm(
        "rollback", release.RELEASE, str(first), "-n", operator_ns, "--wait", "--timeout", "5m"
    )
    fill(queue, MORE_AFTER_ROLLBACK, prefix="after-rollback")

    def refused() -> str | None:
        resource = read_processor(api_client, jobs_ns, DEFAULTS)
        for item in resource.get("status", {}).get("conditions", []):
            if item.get("type") == "Ready" and item.get("status") == "False":
                return str(item.get("reason"))
        return None

    reason = wait_until(refused, 180, "0.1.0's operator to report what it makes of the resource")
    time.sleep(10)  # a few polls of 0.1.0's operator
    pending = MORE_AFTER_ROLLBACK + ENTRIES[DEFAULTS] - _done(queue)
    launched = len(jobs_of(api_client, jobs_ns, DEFAULTS))
    began = time.monotonic()
    commands.helm(
        "upgrade", release.RELEASE, str(release.CHART), "-n", operator_ns, *upgrade_args,
        "--wait", "--timeout", "5m",
    )  # fmt: skip
    wait_until(
        lambda: _done(queue) == ENTRIES[DEFAULTS] + MORE_AFTER_ROLLBACK,
        600,
        "the entries enqueued after the rollback to drain once rolled forward",
        interval=2,
    )
    assert reason == "InvalidSpec" and pending == MORE_AFTER_ROLLBACK and launched == 0, (
        reason,
        pending,
        launched,
    )
    assert condition(read_processor(api_client, jobs_ns, DEFAULTS), "Ready") == "True"
    return {
        "supported": False,
        "old_operator_reports": reason,
        "launched_after_rollback": launched,
        "entries_kept": pending,
        "forward_again_drained_seconds": round(time.monotonic() - began, 1),
    }


def _uninstall_before_resources(
    commands: Commands, api_client: Any, operator_ns: str, jobs_ns: str
) -> bool:
    """The wrong order: the release first, then the resources, which no operator watches
    any more. With no finalizer they go at once."""
    commands.helm("uninstall", release.RELEASE, "-n", operator_ns, "--wait", "--timeout", "3m")
    deleted = commands.run(
        "kubectl", "delete", "sfp", "--all", "-n", jobs_ns, "--wait=true", "--timeout=60s",
        check=False,
    )  # fmt: skip
    left = commands.kubectl("get", "sfp", "-n", jobs_ns, "-o", "name")
    return deleted.returncode == 0 and not left.strip()
