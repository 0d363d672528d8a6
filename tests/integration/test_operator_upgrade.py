"""Upgrading from release 0.1.0 with the real operator against the Kubernetes emulator:
resources 0.1.0 stored keep running, and none is left Terminating by a finalizer.

The emulator applies no CRD defaults: the resources here carry what 0.1.0's CRD wrote into
etcd at creation (crds/snowflakeprocessors.yaml at the commit 0.1.0 was cut from), as a
cluster holds them after `helm upgrade`."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from kubernetes import client

from snowflake_operator.constants import GROUP, PLURAL, VERSION
from snowflake_operator.daemon.handlers import upgrade_stored_spec
from snowflake_operator.spec.stored_spec import SPEC_DEFAULTS_ANNOTATION, SPEC_UPGRADED
from tests.support.operator_world import NAMESPACE, OperatorWorld, Processor
from tests.support.polling import wait_for
from tests.support.ports import closed_port
from tests.support.queues import fill

pytestmark = pytest.mark.integration

KOPF_FINALIZER = "kopf.zalando.org/KopfFinalizerMarker"  # what 0.1.0's operator put on
# spec sections as 0.1.0's CRD defaulted them (the emulator's own settings beside them).
RELEASE_0_1_0_JOB = {
    "concurrency": 32,
    "graceSeconds": 20,
    "flushEvery": 200,
    "flushSeconds": 2.0,
    "imagePullPolicy": "IfNotPresent",
    "serviceAccountName": "snowflake-processor-worker",
    "cpu": "0.5",
    "memory": "1Gi",
    "ttlSecondsAfterFinished": 3600,
    "successfulJobsHistoryLimit": 3,
    "failedJobsHistoryLimit": 5,
}
RELEASE_0_1_0_SPEC: dict[str, Any] = {
    "endpoint": {"timeoutSeconds": 10, "retries": 3, "retryBackoffSeconds": 0.5},
    "queue": {"leaseSeconds": 900, "maxAttempts": 5, "claimBatch": 200, "retryDelaySeconds": 60},
    "job": RELEASE_0_1_0_JOB,
    "idlePollSeconds": 1800,
    "suspend": False,
    "logLevel": "INFO",
}


def _create_as_0_1_0_stored_it(world: OperatorWorld, name: str) -> Processor:
    body = world.manifest(name, **RELEASE_0_1_0_SPEC)
    body["metadata"]["finalizers"] = [KOPF_FINALIZER]
    world.custom.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, body)
    return Processor(world, name)


def _upgrade_events(world: OperatorWorld, name: str) -> list[Any]:
    return [e for e in world.events(SPEC_UPGRADED) if e.involved_object.name == name]


def _polls(world: OperatorWorld, name: str, more: int = 2) -> None:
    """Wait for ``more`` polls of ``name`` by an operator just started (its metrics
    endpoint, which counts them, may not answer yet)."""

    def answering() -> bool:
        try:
            world.polls(name)
        except OSError:
            return False
        return True

    wait_for(answering, what="the operator's metrics endpoint")
    world.wait_for_polls(name, more)


def _gone(world: OperatorWorld, name: str) -> bool:
    try:
        world.custom.get_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, name)
    except client.exceptions.ApiException as exc:
        return exc.status == 404
    return False


def test_a_resource_0_1_0_stored_runs_and_its_spec_is_written_back_once(
    world: OperatorWorld,
) -> None:
    """0.1.0 stored cpu 0.5 / memory 1Gi, which this release refuses (Fargate bills 1Gi as
    2 GB): the resource becomes Ready and launches Jobs of the size it was billed as, with
    one Warning event and the new values written back, its Job history and TTL brought to
    this release's defaults; a restarted operator changes nothing more."""
    fill(world.queue, 100)
    old = _create_as_0_1_0_stored_it(world, "old")
    with world.run():
        ready = old.wait_for_condition("Ready", status="True")
        (job,) = wait_for(lambda: old.jobs() or None, what="a Job")
        (event,) = wait_for(lambda: _upgrade_events(world, "old") or None, what="the warning")
    resource = old.resource()
    with world.run():  # a restart: the upgrade is not done twice
        _polls(world, "old")
    assert ready["reason"] == "Polling"
    stored = resource["spec"]["job"]
    assert (stored["cpu"], stored["memory"]) == ("0.5", "1792Mi")
    assert stored["ttlSecondsAfterFinished"] == 300
    assert (stored["successfulJobsHistoryLimit"], stored["failedJobsHistoryLimit"]) == (0, 0)
    assert stored["concurrency"] == 32  # what needed nothing is as it was
    assert resource["metadata"]["annotations"][SPEC_DEFAULTS_ANNOTATION] == "0.2.0"
    assert KOPF_FINALIZER not in (resource["metadata"].get("finalizers") or [])
    limits = job.spec.template.spec.containers[0].resources.limits
    assert (limits["cpu"], limits["memory"]) == ("0.5", "1792Mi")
    assert job.spec.ttl_seconds_after_finished == 300
    assert event.type == "Warning"
    assert "job.memory 1Gi -> 1792Mi" in event.message
    assert "job.ttlSecondsAfterFinished 3600 -> 300" in event.message
    assert len(_upgrade_events(world, "old")) == 1 and (event.count or 1) == 1


def test_a_value_set_after_the_upgrade_is_kept(world: OperatorWorld) -> None:
    """The old defaults are changed once: a user who sets them again keeps them."""
    old = _create_as_0_1_0_stored_it(world, "kept")
    with world.run():
        wait_for(lambda: _upgrade_events(world, "kept") or None, what="the upgrade")
        old.patch_spec({"job": {"successfulJobsHistoryLimit": 3}})
        _polls(world, "kept")
    with world.run():  # and at a restart
        _polls(world, "kept")
    assert old.resource()["spec"]["job"]["successfulJobsHistoryLimit"] == 3
    assert len(_upgrade_events(world, "kept")) == 1


def test_a_resource_deleted_while_no_operator_runs_is_gone(world: OperatorWorld) -> None:
    """Uninstalling the operator before the resources (or deleting their namespace) must
    leave nothing Terminating: the operator puts no finalizer on a resource."""
    fresh = world.create("fresh")
    with world.run():
        fresh.wait_for_condition("Ready")
        _polls(world, "fresh")
    assert not fresh.resource()["metadata"].get("finalizers")
    world.delete("fresh")
    assert _gone(world, "fresh")


def test_a_finalizer_0_1_0_left_is_removed(world: OperatorWorld) -> None:
    old = _create_as_0_1_0_stored_it(world, "held")
    with world.run():
        wait_for(
            lambda: not old.resource()["metadata"].get("finalizers"), what="the finalizer gone"
        )
    world.delete("held")
    assert _gone(world, "held")


def test_a_deleted_resource_is_polled_no_more(world: OperatorWorld) -> None:
    """Without a finalizer kopf does not stop a deleted resource's daemon: the DELETED
    event does, so no poll writes the status of a resource that is gone."""
    fill(world.queue, 10)
    world.create("short")
    with world.run():
        _polls(world, "short")
        world.delete("short")
        wait_for(lambda: _gone(world, "short"), what="deleted")
        seen = len(world.kube.requests(name="short", subresource="status"))
        other = world.create("other")  # polls on: time passes for "short" too
        world.wait_for_polls("other", 3)
        other.wait_for_condition("Ready")
        after = len(world.kube.requests(name="short", subresource="status"))
    assert after == seen


def test_a_failed_write_back_never_keeps_the_loop_from_starting(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The API server refusing or unreachable: the upgrade is reported and skipped (the
    resource runs with the size read as billed), not raised into the daemon."""
    configuration = client.Configuration()
    configuration.host = f"http://127.0.0.1:{closed_port()}"
    body = {
        "metadata": {"name": "old", "namespace": NAMESPACE, "uid": "u"},
        "spec": {"job": dict(RELEASE_0_1_0_JOB)},
    }
    with client.ApiClient(configuration) as api:
        asyncio.run(asyncio.wait_for(upgrade_stored_spec(api, body, lambda: True), 30))
    (record,) = [r for r in caplog.records if r.getMessage() == "stored spec not upgraded"]
    assert "old" in str(getattr(record, "processor", ""))
    assert "Failed to establish a new connection" in str(getattr(record, "error", ""))
